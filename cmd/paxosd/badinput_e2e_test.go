package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/paxosd/paxosd/service/servicetest"
)

// TestCLIBadInput: client commands with names, keys, values or TTLs out of
// range fail with one line naming the problem and the limit: exit status 2
// for what the command line itself gets wrong, 1 for what the cluster
// refuses (the default limits: keys and names 4096 bytes, values 1 MiB).
func TestCLIBadInput(t *testing.T) {
	c := servicetest.Start(t, 1)
	long := func(c string) string { return strings.Repeat(c, 4097) }
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"kv", "put", "", "v"}, 1, "paxosd: error: key must not be empty"},
		{[]string{"kv", "get", ""}, 1, "paxosd: error: key must not be empty"},
		{[]string{"kv", "watch", ""}, 1, "paxosd: error: key must not be empty"},
		{[]string{"kv", "put", long("k"), "v"}, 1, "paxosd: error: key is 4097 bytes; the limit is 4096"},
		{[]string{"kv", "ls", long("p")}, 1, "paxosd: error: prefix is 4097 bytes; the limit is 4096"},
		{[]string{"kv", "put", "k", strings.Repeat("v", 1<<20+1)}, 1,
			"paxosd: error: value is 1048577 bytes; the limit is 1048576 (--value-bytes-max)"},
		{[]string{"kv", "put", "k\xff", "v"}, 1, "paxosd: error: key is not valid UTF-8"},
		{[]string{"lock", "", "--wait=false"}, 2, "paxosd: lock: NAME is empty"},
		{[]string{"lock", long("n"), "--wait=false"}, 1, "paxosd: error: name is 4097 bytes; the limit is 4096"},
		{[]string{"lock", "l\xff", "--wait=false"}, 1, "paxosd: error: name is not valid UTF-8"},
		{[]string{"lock", "a", "--ttl", "0s"}, 2, "paxosd: --ttl 0s is outside [1s, 1h0m0s]"},
		{[]string{"lock", "a", "--ttl", "500ms", "--", "true"}, 2, "paxosd: --ttl 500ms is outside [1s, 1h0m0s]"},
		{[]string{"lock", "a", "--ttl", "2h"}, 2, "paxosd: --ttl 2h0m0s is outside [1s, 1h0m0s]"},
		{[]string{"lock", "a", "--lock-delay", "2m"}, 2, "paxosd: --lock-delay 2m0s is longer than the longest allowed, 1m0s"},
		{[]string{"elect", "", "--value", "v"}, 2, "paxosd: elect: NAME is empty"},
		{[]string{"elect", "sched", "--value", "v", "--ttl", "10ms"}, 2, "paxosd: --ttl 10ms is outside [1s, 1h0m0s]"},
		{[]string{"elect", long("e"), "--leader"}, 1, "paxosd: error: name is 4097 bytes; the limit is 4096"},
		{[]string{"elect", "e", "--value", strings.Repeat("v", 1<<20+1)}, 1,
			"paxosd: error: value is 1048577 bytes; the limit is 1048576 (--value-bytes-max)"},
	}
	for _, tc := range cases {
		var out, errb bytes.Buffer
		code := run(append(tc.args, "--endpoints", c.Endpoints[0], "--timeout", "5s"), &out, &errb)
		if code != tc.code || errb.String() != tc.want+"\n" {
			name := strings.Join(tc.args, " ")
			if len(name) > 50 {
				name = name[:50] + "..."
			}
			t.Errorf("paxosd %s: exit %d, stderr %q\nwant exit %d, %q", name, code, errb.String(), tc.code, tc.want)
		}
	}
}
