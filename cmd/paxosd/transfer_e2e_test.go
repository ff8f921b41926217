package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLeaderTransfer: `paxosd leader transfer ID` moves the leadership to
// ID; a leader that receives SIGTERM hands its leadership over before it
// stops (its log says to whom), and the cluster keeps writing.
func TestLeaderTransfer(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	c := startCluster(t)
	waitFor(t, "a leader", 20*time.Second, func() bool { return c.leader() >= 0 })
	if _, err := c.cli(c.addrs, "kv", "put", "k", "1"); err != nil {
		t.Fatal(err)
	}
	old := c.leader()
	to := (old + 1) % 3
	out, err := c.cli(c.addrs, "leader", "transfer", fmt.Sprint(to+1))
	if err != nil {
		c.dumpLogs()
		t.Fatal(err)
	}
	if want := fmt.Sprintf("node %d leads", to+1); !strings.Contains(out, want) {
		t.Fatalf("leader transfer printed %q, want %q", out, want)
	}
	if l := c.leader(); l != to {
		t.Fatalf("after the transfer node %d leads, want node %d", l+1, to+1)
	}
	if _, err := c.cli(c.addrs, "leader", "transfer", "9"); err == nil || !strings.Contains(err.Error(), "not a member") {
		t.Fatalf("transfer to a non-member: %v", err)
	}

	// SIGTERM to the leader: it hands over, then stops.
	p := c.procs[to]
	p.Process.Signal(syscall.SIGTERM)
	p.Wait()
	c.procs[to] = nil
	logPath := filepath.Join(c.dir, fmt.Sprintf("node%d.log", to+1))
	if !logHas(logPath, `"message":"leadership handed over"`) {
		c.dumpLogs()
		t.Fatalf("the leader stopped by SIGTERM did not hand its leadership over; its log has no such line")
	}
	var survivors []string
	for i, a := range c.addrs {
		if i != to {
			survivors = append(survivors, a)
		}
	}
	if _, err := c.cli(survivors, "kv", "put", "k", "2"); err != nil {
		c.dumpLogs()
		t.Fatal(err)
	}
}

// dumpLogs shows every node's log (info and above) in the test's output.
func (c *cluster) dumpLogs() {
	for i := range c.addrs {
		b, _ := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("node%d.log", i+1)))
		var keep []string
		for _, l := range strings.Split(string(b), "\n") {
			if !strings.Contains(l, `"level":"debug"`) {
				keep = append(keep, l)
			}
		}
		c.t.Logf("node %d log:\n%s", i+1, strings.Join(keep, "\n"))
	}
}
