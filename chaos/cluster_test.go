//go:build linux

package chaos

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRejoiningFollowsTheLog: after Wipe, a node counts as rejoining (and
// gets --rejoin) until its log, from the wipe on, says it rejoined; a
// "rejoined" line from before the wipe does not count.
func TestRejoiningFollowsTheLog(t *testing.T) {
	dir := t.TempDir()
	c := NewCluster(&Network{Nodes: []string{"n1"}, IPs: []string{"10.0.0.1"}}, "paxosd", dir, nil, nil)
	appendLog := func(line string) {
		f, err := os.OpenFile(c.LogPath(0), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(line + "\n"); err != nil {
			t.Fatal(err)
		}
	}
	if c.Rejoining(0) {
		t.Fatal("a node that never lost its disk is rejoining")
	}
	appendLog(`{"message":"` + rejoinedMsg + `"}`) // an earlier rejoin
	if err := os.MkdirAll(filepath.Join(dir, "node1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := c.Wipe(0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node1")); !os.IsNotExist(err) {
		t.Fatalf("data directory still there after Wipe: %v", err)
	}
	if !c.Rejoining(0) {
		t.Fatal("a wiped node is not rejoining (the old log line counted)")
	}
	appendLog(`{"message":"rejoining: promise raised"}`)
	if !c.Rejoining(0) {
		t.Fatal("rejoining ended before the node said so")
	}
	appendLog(`{"message":"` + rejoinedMsg + `"}`)
	if c.Rejoining(0) {
		t.Fatal("still rejoining after the node said it rejoined")
	}
}
