package proposer

import (
	"errors"
	"testing"

	"github.com/paxosd/paxosd/paxos"
)

// TestTransferTo: only a leader hands over, to another member; it steps
// down (no lease: LeaseTick -1) and its TimeoutNow names its ballot.
func TestTransferTo(t *testing.T) {
	p := newProposer(3, nil)
	if _, err := p.TransferTo(2); !errors.Is(err, paxos.ErrNoLeader) {
		t.Fatalf("a follower handed over: %v", err)
	}
	elect(t, p, 0)
	lead := p.Ballot()
	for _, to := range []paxos.NodeID{1, 9} {
		if _, err := p.TransferTo(to); err == nil {
			t.Fatalf("handed over to %d", to)
		}
	}
	m, err := p.TransferTo(2)
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != paxos.MsgTimeoutNow || m.To != 2 || m.Ballot != lead {
		t.Fatalf("TimeoutNow %v, want to node 2 under %s", m, lead)
	}
	if p.Role() != Follower || p.LeaseTick() != -1 || p.Leader() != 0 {
		t.Fatalf("after handing over: role %s, lease tick %d, leader %d", p.Role(), p.LeaseTick(), p.Leader())
	}
	// It still promises the target's transfer Prepare, and no one else's.
	if !p.ReleasedBy(lead) || p.ReleasedBy(b(lead.Round+1, 3)) || p.ReleasedBy(paxos.Ballot{}) {
		t.Fatal("ReleasedBy: the handed-over ballot only")
	}
}

// TestHandleTimeoutNow: a follower campaigns at once, its Prepares naming
// the handed-over ballot, only for the leader it follows at that ballot
// and while that leader is fresh in mind.
func TestHandleTimeoutNow(t *testing.T) {
	lead := b(4, 2)
	follower := func() *Proposer {
		p := newProposer(3, nil)
		p.OnLeaderContact(lead)
		return p
	}
	now := func(from paxos.NodeID, bal paxos.Ballot) paxos.Message {
		return paxos.Message{Type: paxos.MsgTimeoutNow, From: from, To: 1, Ballot: bal}
	}
	for name, c := range map[string]struct {
		m     paxos.Message
		ticks int
	}{
		"another leader's":        {now(3, b(4, 3)), 0},
		"an older ballot":         {now(2, b(3, 2)), 0},
		"sender not the ballot's": {now(3, lead), 0},
		"leader out of mind":      {now(2, lead), electionTicks},
	} {
		p := follower()
		for range c.ticks {
			p.Tick(paxos.Ballot{}, 0, noVotes)
		}
		if msgs := p.HandleTimeoutNow(c.m, paxos.Ballot{}, 0); len(msgs) != 0 || p.Role() == Candidate {
			t.Fatalf("%s: campaigned: %v", name, msgs)
		}
	}
	p := follower()
	msgs := p.HandleTimeoutNow(now(2, lead), lead, 7)
	preps := ofType(msgs, paxos.MsgPrepare)
	if p.Role() != Candidate || len(preps) != 3 {
		t.Fatalf("role %s, Prepares %v", p.Role(), msgs)
	}
	for _, m := range preps {
		if m.Transfer != lead || !lead.Less(m.Ballot) {
			t.Fatalf("Prepare %v: want transfer=%s and a higher ballot", m, lead)
		}
	}
	// A campaign of its own (PreVote) afterwards names no transfer.
	p.stepDown(p.Ballot())
	for _, m := range ofType(preVote(t, p, p.Ballot(), 7), paxos.MsgPrepare) {
		if !m.Transfer.IsZero() {
			t.Fatalf("an ordinary campaign's Prepare names transfer %s", m.Transfer)
		}
	}
}
