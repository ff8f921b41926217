package replica_test

import (
	"testing"

	"github.com/paxosd/paxosd/paxos"
)

// (A finding of the second review: see laggard_review2_test.go.)
//
// A follower whose catch-up batches each take longer than an election
// timeout to take in (a follower at its memory limit, a slow apply: P
// ticks a batch, P > ElectionTicks; its heartbeat acks, cheap, are not
// delayed) makes the leader's stream look stalled at every ack (nothing
// sent for an election timeout), and each restart sends catchUpInFlight
// batches again from the follower's watermark, on top of those still
// queued at the follower: the queue of batches waiting at the follower
// grows without bound. Before the change each restart sent one batch.
func TestReview2SlowFollowerDuplicateStreams(t *testing.T) {
	const P = 12 // ticks a Decide takes to apply, > electionTicks (10)
	c := revCluster(t, 300, 1)
	var queue []paxos.Message // Decides waiting at node 3, in order
	lastApply := -P
	sent, most := 0, 0
	entries := map[paxos.Slot]int{}
	for i := 0; i < 600; i++ {
		if len(queue) > 0 && c.now-lastApply >= P {
			c.net = append(c.net, timedMsg{c.now + 1, queue[0]})
			queue, lastApply = queue[1:], c.now
		}
		c.tick()
		for _, m := range filterNet(c, func(m paxos.Message) bool {
			return m.To == 3 && m.Type == paxos.MsgDecide
		}) {
			queue = append(queue, m)
			sent++
			for _, e := range m.Entries {
				entries[e.Slot]++
			}
		}
		most = max(most, len(queue))
	}
	dup := 0
	for _, n := range entries {
		dup = max(dup, n)
	}
	t.Logf("after 600 ticks: %d Decides sent to node 3 (%d distinct slots, each up to %d times); up to %d waiting at node 3 (%d now); its watermark %d, the leader's %d",
		sent, len(entries), dup, most, len(queue), c.nodes[3].Status().Commit, c.nodes[1].Status().Commit)
	if most > 8 {
		t.Errorf("up to %d catch-up batches queued at node 3, growing: duplicate streams", most)
	}
}
