package service

import (
	"testing"
	"time"

	"github.com/paxosd/paxosd/proposer"
	"github.com/paxosd/paxosd/wire"
)

// A voter restarted behind a member added while it was down, with every
// member it knew gone, must still be reached by that member (the story of
// cmd/paxosd's TestLaggingVoterHearsNewMember, in the node simulation).
// Three nodes; node L (not the leader) stops; node 4 is added, joins and is
// promoted; a third original node is removed and stops, the last one stops
// too. L restarts knowing only the bootstrap's three: the quorum of the
// new voters needs L and node 4, and only node 4 can tell L so. Node 4
// dials L, but L knows no address for node 4 and cannot answer its
// PreVotes (a node sends only to the nodes it has an address for, as the
// transport does) until node 4's hello says where it is (protocol 19).
func TestLaggingVoterAnswersNewMember(t *testing.T) {
	for seed := int64(1); seed <= 8; seed++ {
		lagVoterStory(t, seed)
	}
}

func lagVoterStory(t *testing.T, seed int64) {
	s := newScripted(seed, rgParams)
	defer s.shutdown()
	l := scLeader(t, s)
	// The lagging node is the first that does not lead; the other two
	// (the leader among them) go.
	var lagging *simNode
	var gone []*simNode
	for _, sn := range s.nodes {
		if sn != l && lagging == nil {
			lagging = sn
		} else {
			gone = append(gone, sn)
		}
	}
	scPut(s, l, "before", "1")
	s.stop(lagging)

	op := newSimOperator(s)
	n4 := op.newNode()
	ask := func(what string, q *wire.Request) {
		t.Helper()
		done := false
		var resp *wire.Response
		scUntil(t, s, 30*time.Second, what, func() bool {
			if done && resp != nil && resp.Err == wire.ErrNone {
				return true
			}
			if !op.busy {
				done, resp = false, nil
				op.call(q, func(r *wire.Response) { done, resp = true, r })
			}
			return false
		})
	}
	// The cluster takes membership changes once its leader raised the
	// level (every member at protocol 16): a moment after it formed.
	ask("node 4 added as a learner", &wire.Request{Op: wire.OpMemberAdd, MemberID: uint64(n4.id), MemberAddr: "node4:7401", MemberLearner: true})
	scUntil(t, s, 30*time.Second, "node 4 to join", func() bool {
		if !n4.joined && !n4.joining {
			op.join(n4)
		}
		return n4.up()
	})
	ask("node 4 promoted", &wire.Request{Op: wire.OpMemberPromote, MemberID: uint64(n4.id)})
	ask("the first original node removed", &wire.Request{Op: wire.OpMemberRemove, MemberID: uint64(gone[0].id)})
	for _, sn := range gone {
		s.stop(sn)
		sn.gone = true
	}
	s.tracef("story: node %d restarts behind; nodes %d and %d are gone", lagging.id, gone[0].id, gone[1].id)
	s.restart(lagging)
	for end := s.now + 30*time.Second; ; scRun(s, time.Millisecond) {
		if lagging.up() && lagging.n.r.Status().Role == proposer.Leader || n4.up() && n4.n.r.Status().Role == proposer.Leader {
			return
		}
		if s.now >= end {
			t.Fatalf("seed %d, t=%s: no leader among node %d (lagging) and node 4 within 30 s: %s\nlast events:\n%s", seed, s.now, lagging.id, s.progress(), s.ring.String())
		}
	}
}
