package replica_test

import (
	"fmt"
	"testing"

	"github.com/paxosd/paxosd/paxos"
)

// A follower that missed slots the leader has since truncated is sent a
// MsgSnapshot, not entries; once it installs the snapshot (Restore) it
// catches up from the log after it and applies on from there.
func TestFollowerBehindTruncatedLogGetsSnapshot(t *testing.T) {
	c := newCluster(t)
	c.elect()
	c.commit("a")
	c.cut = 3
	for i := 0; i < 10; i++ {
		c.commit2(fmt.Sprint("b", i))
	}
	l := c.leader()
	leaderCommit := c.nodes[l].Status().Commit
	for _, id := range []paxos.NodeID{1, 2} {
		c.nodes[id].Truncate(leaderCommit - 2)
	}
	if got := c.nodes[l].Status().Truncated; got != leaderCommit-2 {
		t.Fatalf("leader truncated to %d, want %d", got, leaderCommit-2)
	}
	c.cut = 0
	c.seen = nil
	for i := 0; i < 3*electionTicks && !c.sawSnapshotTo(3); i++ {
		c.tick()
	}
	if !c.sawSnapshotTo(3) {
		t.Fatal("the leader never told node 3 to fetch its snapshot")
	}
	before := c.nodes[3].Status().Commit
	if c.nodes[3].Restore(before, c.nodes[3].Configs()) {
		t.Fatal("Restore at the watermark reported news")
	}
	if !c.nodes[3].Restore(leaderCommit, c.nodes[3].Configs()) {
		t.Fatal("Restore above the watermark refused")
	}
	c.stores[3].commit = leaderCommit // the node's install moves its stored watermark
	c.applied[3] = nil
	c.commit("c")
	a := c.applied[3]
	if len(a) == 0 || a[0].Slot != leaderCommit+1 {
		t.Fatalf("after the snapshot node 3 applied %v, want slots from %d", a, leaderCommit+1)
	}
}

// commit2 is commit for a cluster with a node cut off: it waits for the
// other two only.
func (c *cluster) commit2(cmd string) {
	c.t.Helper()
	if err := c.nodes[c.leader()].Propose([]byte(cmd)); err != nil {
		c.t.Fatal(err)
	}
	for i := 0; i < electionTicks; i++ {
		c.tick()
		a := c.applied[c.leader()]
		if len(a) > 0 && len(a[len(a)-1].Value.Cmds) > 0 && string(a[len(a)-1].Value.Cmds[0]) == cmd {
			return
		}
	}
	c.t.Fatalf("%q not applied at the leader", cmd)
}

func (c *cluster) sawSnapshotTo(id paxos.NodeID) bool {
	for _, m := range c.seen {
		if m.Type == paxos.MsgSnapshot && m.To == id {
			return true
		}
	}
	return false
}
