package replica_test

import (
	"fmt"
	"testing"

	"github.com/paxosd/paxosd/paxos"
)

// (A finding of the third review, of a stall rule that resent the whole
// window: kept against the rule that replaced it, resendGap.)
//
// A follower whose apply pauses vary (a pause just over an election
// timeout, then one just over two, then a quick burst that resets the
// leader's restarts) leaves its watermark exactly where the last stall's
// resent batch ended at the next stall. A leader that took that for a lost
// window and sent it again piled batches up at the follower. The acks that
// name their Decide tell a slow follower (its watermark moves with each
// batch it takes in) from a lossy stream (its watermark stays below the
// batches it names): the queue stays within two windows. (A follower
// slower still, 90 ticks a batch against the stall timer's longest wait of
// eight election timeouts, gets one batch again per stall, and its queue
// grows by one each: a known gap, DESIGN.md "Catch-up".)
func TestReview3StallPatternWindowResends(t *testing.T) {
	for _, pat := range [][]int{{11, 21, 1, 1}, {12, 22, 1, 1, 1}, {11, 1, 21, 1}} {
		t.Run(fmt.Sprint(pat), func(t *testing.T) {
			c := revCluster(t, 300, 1)
			var queue []paxos.Message
			next, k := 0, 0
			sent, most := 0, 0
			for i := 0; i < 900; i++ {
				if len(queue) > 0 && c.now >= next {
					c.net = append(c.net, timedMsg{c.now + 1, queue[0]})
					queue = queue[1:]
					next = c.now + pat[k%len(pat)]
					k++
				}
				c.tick()
				for _, m := range filterNet(c, func(m paxos.Message) bool {
					return m.To == 3 && m.Type == paxos.MsgDecide
				}) {
					queue = append(queue, m)
					sent++
				}
				most = max(most, len(queue))
			}
			t.Logf("%v: %d Decides sent to node 3; up to %d queued (%d now); watermark %d, leader %d",
				pat, sent, most, len(queue), c.nodes[3].Status().Commit, c.nodes[1].Status().Commit)
			if most > 8 {
				t.Errorf("up to %d catch-up batches queued at node 3", most)
			}
		})
	}
}
