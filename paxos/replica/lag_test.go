package replica_test

import (
	"fmt"
	"testing"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/proposer"
)

// An acceptor needs no log to vote. Node 1 is up to date (its snapshot
// covers slot `ahead`), node 2 restarted far behind (watermark 0), node 3
// is down; node 1 is elected on {1, 2} and proposes "w" at slot ahead+1,
// which node 2 must accept at once: the bound on how far ahead a message
// may place entries counts from the leader's watermark too, not only from
// the receiver's. (Measured from the receiver's alone, nothing would
// commit until node 2 had installed a snapshot, and the leader would be
// deposed for lack of progress meanwhile; found by an adversarial review.)
func TestLaggingFollowerVotes(t *testing.T) {
	for _, ahead := range []paxos.Slot{1 << 19, 1<<20 + 10} {
		t.Run(fmt.Sprintf("ahead=%d", ahead), func(t *testing.T) {
			c := newLatCluster(t, map[paxos.NodeID]paxos.State{
				1: {Commit: ahead, Compacted: ahead, Truncated: ahead},
			})
			c.down[3] = true
			for i := 0; i < 6*electionTicks && c.leader() != 1; i++ {
				c.tick()
			}
			if c.leader() != 1 {
				t.Fatalf("node 1 did not lead: %+v / %+v", c.nodes[1].Status(), c.nodes[2].Status())
			}
			if err := c.nodes[1].Propose([]byte("w")); err != nil {
				t.Fatal(err)
			}
			c.pump()
			stepDowns, wasLeader := 0, true
			for i := 0; i < 20*electionTicks && c.nodes[1].Status().Commit <= ahead; i++ {
				c.tick()
				isLeader := c.nodes[1].Status().Role == proposer.Leader
				if wasLeader && !isLeader {
					stepDowns++
				}
				wasLeader = isLeader
			}
			if got := c.nodes[1].Status().Commit; got <= ahead {
				t.Errorf("slot %d never chosen with nodes 1 and 2 up and connected (node 1 stepped down %d times; node 2 %+v)", ahead+1, stepDowns, c.nodes[2].Status())
			}
		})
	}
}
