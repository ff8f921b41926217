package main

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/paxosd/paxosd/service/servicetest"
)

// TestStatusFromOneEndpoint: 'paxosd status' given one endpoint shows
// every member, learned from that endpoint's answer; with a member down it
// exits 1 naming it, whether or not the dead member is among the endpoints
// (and lists it once).
func TestStatusFromOneEndpoint(t *testing.T) {
	c := servicetest.Start(t, 3)
	status := func(endpoints ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run([]string{"status", "--endpoints", strings.Join(endpoints, ","), "--timeout", "3s"}, &out, &errb)
		return code, out.String(), errb.String()
	}
	// rows returns each member row's ID, address and role.
	rows := func(out string) [][]string {
		var got [][]string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
			got = append(got, strings.Fields(line)[:3])
		}
		return got
	}
	var out string
	waitFor(t, "a healthy cluster through one endpoint", 10*time.Second, func() bool {
		var code int
		code, out, _ = status(c.Endpoints[0])
		return code == 0
	})
	got := rows(out)
	if len(got) != 3 {
		t.Fatalf("status through one endpoint shows %d members, want 3:\n%s", len(got), out)
	}
	leaders := 0
	for i, r := range got {
		if r[0] != string(rune('1'+i)) || r[1] != c.Endpoints[i] {
			t.Errorf("row %d is %v, want node %d at %s:\n%s", i+1, r, i+1, c.Endpoints[i], out)
		}
		if r[2] == "leader" {
			leaders++
		}
	}
	if leaders != 1 {
		t.Errorf("%d leaders shown, want 1:\n%s", leaders, out)
	}

	// A follower stops (a stopped leader would add "no leader" until the
	// others elect one).
	down := 2
	if got[down][2] == "leader" {
		down = 1
	}
	c.Nodes[down].Stop()
	others := []string{c.Endpoints[0], c.Endpoints[1], c.Endpoints[2]}
	others = append(others[:down], others[down+1:]...)
	for _, eps := range [][]string{{others[0]}, {c.Endpoints[down], others[1]}} {
		code, out, stderr := status(eps...)
		want := fmt.Sprintf("paxosd: error: 1 of 3 nodes unreachable (node %d (%s))\n", down+1, c.Endpoints[down])
		if code != 1 || stderr != want {
			t.Errorf("status --endpoints %v with node %d down: exit %d, stderr %q\nwant exit 1, %q", eps, down+1, code, stderr, want)
		}
		if got := rows(out); len(got) != 3 || !regexp.MustCompile(fmt.Sprintf(`(?m)^%d\s+`, down+1)+regexp.QuoteMeta(c.Endpoints[down])+`\s+unreachable\s`).MatchString(out) {
			t.Errorf("status --endpoints %v with node %d down: want 3 rows, node %d unreachable:\n%s", eps, down+1, down+1, out)
		}
	}
}
