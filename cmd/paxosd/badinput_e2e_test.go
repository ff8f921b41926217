package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

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

// TestStatusExitStatus: 'paxosd status' exits 0 only with every listed
// node up and one leading; a node down, or no leader, is exit 1 with a
// line saying which.
func TestStatusExitStatus(t *testing.T) {
	c := servicetest.Start(t, 3)
	eps := strings.Join(c.Endpoints, ",")
	status := func() (int, string) {
		var out, errb bytes.Buffer
		code := run([]string{"status", "--endpoints", eps, "--timeout", "2s"}, &out, &errb)
		return code, errb.String()
	}
	deadline := time.Now().Add(10 * time.Second)
	for code, stderr := status(); code != 0; code, stderr = status() {
		if time.Now().After(deadline) {
			t.Fatalf("status of a healthy cluster: exit %d, %q", code, stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.Nodes[2].Stop()
	if code, stderr := status(); code != 1 || !strings.Contains(stderr, "1 of 3 nodes unreachable (node 3 ("+c.Endpoints[2]+"))") {
		t.Errorf("status with node 3 down: exit %d, %q", code, stderr)
	}
	c.Nodes[1].Stop()
	// The last node loses its lease and stops leading within an election
	// timeout or so (at most 300 ms with the defaults; 10 s allowed).
	deadline = time.Now().Add(10 * time.Second)
	for {
		code, stderr := status()
		if code == 1 && strings.Contains(stderr, "no leader, and 2 of 3 nodes unreachable") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status with 2 of 3 nodes down: exit %d, %q", code, stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
