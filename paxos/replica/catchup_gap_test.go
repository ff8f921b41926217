package replica_test

import (
	"testing"

	"github.com/paxosd/paxosd/paxos"
)

// A catch-up stream that loses a window of batches (a connection that
// broke, a sender's queue that was full) mends at once: the follower's ack
// to the next batch names it (version 20), its watermark is below it, and
// the leader sends the lost batches again (resendGap). Before, every batch
// sent after the lost ones was counted in flight, and each stall sent one
// batch again: a stream that lost its window crawled at one batch per
// election timeout (doubling, up to eight), as the node simulation's seed
// 95203 did for 40 s. Here 300 slots behind, the first three catch-up
// batches after the first are lost; the follower must be caught up
// within a few election timeouts.
func TestCatchUpMendsALostWindow(t *testing.T) {
	// catchUp runs a catch-up of 300 slots (a batch each: 600-byte
	// values) losing the leader's Decides numbered in lose, and returns
	// the ticks it took.
	catchUp := func(lose func(n int) bool) (ticks, decides int) {
		c := revCluster(t, 300, 1)
		for i := 0; i < 60*electionTicks; i++ {
			c.tick()
			filterNet(c, func(m paxos.Message) bool {
				if m.To != 3 || m.Type != paxos.MsgDecide || m.Ballot.IsZero() {
					return false
				}
				decides++
				return lose(decides)
			})
			if c.nodes[3].Status().Commit >= c.nodes[1].Status().Commit {
				return i, decides
			}
		}
		t.Fatalf("node 3 did not catch up in %d ticks: its watermark %d, the leader's %d",
			60*electionTicks, c.nodes[3].Status().Commit, c.nodes[1].Status().Commit)
		return 0, 0
	}
	base, _ := catchUp(func(int) bool { return false })
	lossy, decides := catchUp(func(n int) bool { return n >= 2 && n <= 4 })
	t.Logf("caught up after %d ticks without losses, %d with three batches lost (%d Decides sent)", base, lossy, decides)
	if lossy > base+2*electionTicks {
		t.Errorf("losing three batches cost the catch-up %d ticks, more than two election timeouts (%d)", lossy-base, 2*electionTicks)
	}
}
