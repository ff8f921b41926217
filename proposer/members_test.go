package proposer

import (
	"reflect"
	"testing"

	"github.com/paxosd/paxosd/paxos"
)

// twoConfigs is a view with a change pending: old governs the slots below
// at, next those from at on.
type twoConfigs struct {
	old, next paxos.Membership
	at        paxos.Slot
}

func (v twoConfigs) At(s paxos.Slot) paxos.Membership {
	if s >= v.at {
		return v.next
	}
	return v.old
}
func (v twoConfigs) Current() paxos.Membership { return v.old }
func (v twoConfigs) Nodes() []paxos.NodeID     { return []paxos.NodeID{1, 2, 3, 4, 5} }
func (v twoConfigs) Voters() []paxos.NodeID    { return []paxos.NodeID{1, 2, 3, 4, 5} }
func (v twoConfigs) IsChosen(paxos.Slot) bool  { return false }
func (v twoConfigs) PendingAt() paxos.Slot     { return v.at }
func (v twoConfigs) Activation() paxos.Slot    { return 16 }

func voters(ids ...paxos.NodeID) paxos.Membership {
	m := paxos.Membership{Version: 1}
	for _, id := range ids {
		m.Members = append(m.Members, paxos.Member{ID: id})
	}
	return m
}

// A leader elected by a quorum of the configuration of its first slot
// proposes nothing in the slots of the next configuration — whose voters
// may have accepted values there under an earlier leader that the old
// quorum never saw — until a quorum of the next configuration's voters
// has promised, and then proposes what they reported. Without this (a
// Phase 1 that counts only the old voters) the value slot 4 holds below
// would be overwritten by a client command: two values chosen for one
// slot.
func TestLeaderCoversTheNextConfigurationBeforeProposingInIt(t *testing.T) {
	cfg := paxos.Config{ID: 1, Members: []paxos.NodeID{1, 2, 3}, HeartbeatTicks: heartbeatTicks, ElectionTicks: electionTicks, BatchBytesMax: 1, Rand: &fakeRand{}}
	cfg.EnsureDefaults()
	view := twoConfigs{old: voters(1, 2, 3), next: voters(3, 4, 5), at: 4}
	p := NewWithView(cfg, view)
	preps := prepare(t, p, paxos.Ballot{}, 0)
	if got := recipients(ofType(preps, paxos.MsgPrepare)); !reflect.DeepEqual(got, []paxos.NodeID{1, 2, 3, 4, 5}) {
		t.Fatalf("Prepares to %v, want the voters of both configurations", got)
	}
	bal := preps[0].Ballot
	prom := func(from paxos.NodeID, slot paxos.Slot, entries ...paxos.Entry) paxos.Message {
		return paxos.Message{Type: paxos.MsgPromise, From: from, To: 1, Ballot: bal, Slot: slot, Entries: entries}
	}
	p.OnPromise(prom(1, 1), 0)
	p.OnPromise(prom(2, 1), 0)
	if p.Role() != Leader {
		t.Fatalf("role %s after a quorum of the first slot's configuration, want leader", p.Role())
	}
	for _, c := range []string{"a", "b", "c", "d"} {
		if err := p.Propose([]byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	_, proposed := p.Flush(0)
	if len(proposed) != 3 || proposed[2].Slot != 3 {
		t.Fatalf("proposed %v, want slots 1..3 only (slot 4 is the next configuration's)", proposed)
	}
	// Node 4 reports a value accepted at slot 4 under an earlier ballot.
	// Node 4 reports a value accepted at slot 4 under an earlier ballot
	// (answering the campaign's Prepare from slot 1 or the leader's from
	// slot 4).
	earlier := paxos.Entry{Slot: 4, Ballot: b(1, 5), Value: val("x")}
	p.OnPromise(prom(4, 4, earlier), 0)
	if _, more := p.Flush(0); len(more) != 0 {
		t.Fatalf("proposed %v with one of the next configuration's voters, want nothing", more)
	}
	p.OnPromise(prom(5, 4), 0)
	_, more := p.Flush(0)
	if len(more) == 0 || more[0].Slot != 4 || !more[0].Value.Equal(val("x")) {
		t.Fatalf("proposed %v once the next configuration's quorum promised, want x at slot 4 first", more)
	}
}

// A leader asks the voters of a configuration that takes effect while it
// leads for their promise from the configuration's first slot, and
// proposes there once they answer.
func TestLeaderAsksNewVotersForPromises(t *testing.T) {
	cfg := paxos.Config{ID: 1, Members: []paxos.NodeID{1, 2, 3}, HeartbeatTicks: heartbeatTicks, ElectionTicks: electionTicks, BatchBytesMax: 1, Rand: &fakeRand{}}
	cfg.EnsureDefaults()
	p := NewWithView(cfg, staticView{voters(1, 2, 3)})
	preps := prepare(t, p, paxos.Ballot{}, 0)
	for _, m := range preps[:2] {
		p.OnPromise(promise(m, 0), 0)
	}
	if p.Role() != Leader {
		t.Fatal("not leading")
	}
	// A change chosen meanwhile: from slot 3 on, nodes 1, 4 and 5 vote.
	p.view = twoConfigs{old: voters(1, 2, 3), next: voters(1, 4, 5), at: 3}
	for _, c := range []string{"a", "b", "c"} {
		_ = p.Propose([]byte(c))
	}
	msgs, proposed := p.Flush(0)
	asks := ofType(msgs, paxos.MsgPrepare)
	if len(proposed) != 2 || !reflect.DeepEqual(recipients(asks), []paxos.NodeID{4, 5}) || asks[0].Slot != 3 || asks[0].Ballot != p.Ballot() {
		t.Fatalf("proposed %v and asked %v, want slots 1-2 and Prepares from slot 3 to nodes 4 and 5", proposed, asks)
	}
	p.OnPromise(paxos.Message{Type: paxos.MsgPromise, From: 4, To: 1, Ballot: p.Ballot(), Slot: 3}, 0)
	if _, more := p.Flush(0); len(more) != 1 || more[0].Slot != 3 {
		t.Fatalf("proposed %v after node 4 promised, want slot 3", more)
	}
}
