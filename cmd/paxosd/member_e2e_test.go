package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startJoiner starts node id at addr with --join through the cluster's
// first member, on data dir dir (empty for a new member), appended to c
// so that the test's cleanup stops it; extra flags follow.
func (c *cluster) startJoiner(id int, addr, dir string, extra ...string) int {
	c.t.Helper()
	logf, err := os.OpenFile(filepath.Join(c.dir, fmt.Sprintf("node%d.log", id)), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(c.bin, "serve", "--id", fmt.Sprint(id), "--listen", addr, "--join", c.addrs[0],
		"--data-dir", dir, "--log-format", "json")
	cmd.Args = append(cmd.Args, extra...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.addrs = append(c.addrs, addr)
	c.procs = append(c.procs, cmd)
	return len(c.procs) - 1
}

type membersOut struct {
	Version uint64 `json:"version"`
	Members []struct {
		ID      uint32 `json:"id"`
		Addr    string `json:"addr"`
		Learner bool   `json:"learner"`
	} `json:"members"`
}

func (c *cluster) members(endpoints []string) membersOut {
	c.t.Helper()
	out, err := c.cli(endpoints, "member", "list", "-w", "json")
	if err != nil {
		c.t.Fatal(err)
	}
	var m membersOut
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		c.t.Fatalf("member list -w json: %v: %q", err, out)
	}
	return m
}

// TestMembershipCommands runs every member command against real
// processes: a learner added and joined with --join on an empty data
// directory, promoted once caught up, moved to a new address, the leader
// removed under writes, and the errors an operator meets.
func TestMembershipCommands(t *testing.T) {
	c := startCluster(t)
	eps := c.addrs[:3]
	if _, err := c.cli(eps, "kv", "put", "before", "1"); err != nil {
		t.Fatal(err)
	}
	free := freePorts(t, 2)
	addr4, moved4 := free[0], free[1]
	dir4 := filepath.Join(c.dir, "node4")

	// A node whose id the membership does not name refuses to join.
	out, err := exec.Command(c.bin, "serve", "--id", "4", "--listen", addr4, "--join", c.addrs[0], "--data-dir", dir4).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "run 'paxosd member add 4="+addr4+"' first") {
		t.Fatalf("join before member add: %v: %s", err, out)
	}

	// A new cluster takes membership changes once its leader has raised
	// the cluster level (every member speaks protocol 16): a moment after
	// it forms, later under load. Until then the change is refused.
	waitFor(t, "the cluster level that allows membership changes", 20*time.Second, func() bool {
		out, err := c.cli(eps, "member", "add", "4="+addr4, "--learner")
		if err != nil && strings.Contains(err.Error(), "membership changes need cluster level") {
			return false
		}
		if err != nil || !strings.Contains(out, "membership version 2 is in force") {
			t.Fatalf("member add: %v: %s", err, out)
		}
		return true
	})
	if _, err := c.cli(eps, "member", "add", "4="+addr4); err == nil || !strings.Contains(err.Error(), "node 4 is already a member") {
		t.Fatalf("member add twice: %v", err)
	}
	i4 := c.startJoiner(4, addr4, dir4)
	if out, err := c.cli(eps, "member", "promote", "4", "--wait"); err != nil || !strings.Contains(out, "membership version 3 is in force") {
		t.Fatalf("member promote --wait: %v: %s", err, out)
	}
	m := c.members(eps)
	if m.Version != 3 || len(m.Members) != 4 || m.Members[3].ID != 4 || m.Members[3].Learner {
		t.Fatalf("members after the promotion: %+v", m)
	}
	// The joined node serves what was written before it joined, and after.
	if _, err := c.cli(eps, "kv", "put", "after", "2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "node 4 to serve both keys", 20*time.Second, func() bool {
		a, err1 := c.cli([]string{addr4}, "kv", "get", "before", "--serializable")
		b, err2 := c.cli([]string{addr4}, "kv", "get", "after", "--serializable")
		return err1 == nil && err2 == nil && strings.TrimSpace(a) == "1" && strings.TrimSpace(b) == "2"
	})

	// Node 4 moves: stopped, its new address recorded, restarted there
	// from its own data directory.
	c.kill(i4)
	if out, err := c.cli(eps, "member", "update", "4="+moved4); err != nil || !strings.Contains(out, moved4) {
		t.Fatalf("member update: %v: %s", err, out)
	}
	c.startJoiner(4, moved4, dir4)
	if _, err := c.cli(eps, "kv", "put", "moved", "3"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "node 4 to serve at its new address", 20*time.Second, func() bool {
		v, err := c.cli([]string{moved4}, "kv", "get", "moved", "--serializable")
		return err == nil && strings.TrimSpace(v) == "3"
	})

	// The leader is removed; writes go on, and the removed node sends its
	// clients elsewhere.
	l := c.leader()
	if l < 0 {
		t.Fatal("no leader")
	}
	all := []string{c.addrs[0], c.addrs[1], c.addrs[2], moved4}
	if out, err := c.cli(all, "member", "remove", fmt.Sprint(l+1)); err != nil || !strings.Contains(out, "membership version 5 is in force") {
		t.Fatalf("member remove of the leader: %v: %s", err, out)
	}
	var rest []string
	for i, a := range all {
		if i != l {
			rest = append(rest, a)
		}
	}
	if _, err := c.cli(rest, "kv", "put", "last", "4"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.cli([]string{c.addrs[l]}, "kv", "get", "last"); err == nil || !strings.Contains(err.Error(), "not a member of the cluster any more") {
		t.Fatalf("the removed node answered: %v", err)
	}
	m = c.members(rest)
	if m.Version != 5 || len(m.Members) != 3 {
		t.Fatalf("members after removing node %d: %+v", l+1, m)
	}
	for _, x := range m.Members {
		if int(x.ID) == l+1 || x.Learner {
			t.Fatalf("members after removing node %d: %+v", l+1, m)
		}
	}

	// Node 4, a voter added since the bootstrap (no --peers names it),
	// loses its data directory: --rejoin --join takes the membership
	// from the cluster and rebuilds it; it votes again once caught up.
	c.kill(len(c.procs) - 1)
	if err := os.RemoveAll(dir4); err != nil {
		t.Fatal(err)
	}
	var other string
	for _, a := range rest {
		if a != moved4 {
			other = a
			break
		}
	}
	removedAddr := c.addrs[l]
	// Plain --join again (a unit file's) is refused: the cluster has
	// heard from node 4, whose promises are gone with its disk.
	out, err = exec.Command(c.bin, "serve", "--id", "4", "--listen", moved4, "--join", other, "--data-dir", dir4).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "has taken part in the cluster already") || !strings.Contains(string(out), "--rejoin --join") {
		t.Fatalf("--join again on node 4's lost data directory: %v: %s", err, out)
	}
	if err := os.RemoveAll(dir4); err != nil {
		t.Fatal(err)
	}
	c.addrs[0] = other // startJoiner joins through c.addrs[0]
	c.startJoiner(4, moved4, dir4, "--rejoin")
	for i := 0; i < 300; i++ { // past the rejoin's target: the watermark plus the window
		if _, err := c.cli(rest, "kv", "put", fmt.Sprintf("r%d", i%5), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	log4 := filepath.Join(c.dir, "node4.log")
	waitFor(t, "node 4 to rejoin and vote again", 30*time.Second, func() bool {
		b, _ := os.ReadFile(log4)
		return strings.Contains(string(b), "rejoining with the cluster's membership") && strings.Contains(string(b), "rejoined: this node votes again")
	})
	waitFor(t, "node 4 to serve what was written while it rebuilt", 20*time.Second, func() bool {
		v, err := c.cli([]string{moved4}, "kv", "get", "r4", "--serializable")
		return err == nil && strings.TrimSpace(v) == "299"
	})
	// The removed node cannot rejoin under its old id.
	out, err = exec.Command(c.bin, "serve", "--id", fmt.Sprint(l+1), "--listen", removedAddr, "--rejoin", "--join", other,
		"--data-dir", filepath.Join(c.dir, "removed")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "it was removed, or never added") {
		t.Fatalf("--rejoin --join of a removed id: %v: %s", err, out)
	}
}
