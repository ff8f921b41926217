package service

import (
	"fmt"
	"testing"

	"github.com/paxosd/paxosd/paxos"
)

// TestMemberBookLearns: addresses learned for ids the membership does not
// name (asked of the members, or from a Snapshot offer) fill in, a later
// one replaces an earlier (a member that moved), the membership's own
// always wins, a member's learned address goes once the membership names
// it, and no more than learnedMax ids are learned.
func TestMemberBookLearns(t *testing.T) {
	m := paxos.Membership{Version: 1, Members: []paxos.Member{{ID: 1, Addr: "a:1"}, {ID: 2, Addr: "a:2"}, {ID: 3, Addr: "a:3"}}}
	b := newMemberBook(paxos.Bootstrap(m))
	if !b.learn(map[paxos.NodeID]string{4: "old:4"}) || b.addr(4) != "old:4" {
		t.Fatalf("node 4 learned: %q", b.addr(4))
	}
	if b.learn(map[paxos.NodeID]string{4: "old:4"}) {
		t.Error("the same address again reported as new")
	}
	if !b.learn(map[paxos.NodeID]string{4: "new:4"}) || b.addr(4) != "new:4" {
		t.Errorf("node 4 moved: %q, want new:4", b.addr(4))
	}
	if b.learn(map[paxos.NodeID]string{2: "elsewhere:2"}) || b.addr(2) != "a:2" {
		t.Errorf("a member's address replaced by a learned one: %q", b.addr(2))
	}
	// The membership names node 4 at last: its own address, and the
	// learned one is gone.
	m.Version, m.Members = 2, append(m.Members, paxos.Member{ID: 4, Addr: "member:4"})
	b.set(paxos.Configs{Current: m})
	if b.addr(4) != "member:4" || b.learned[4] != "" {
		t.Errorf("node 4 a member: address %q, learned %q", b.addr(4), b.learned[4])
	}
	for i := 0; i < 2*learnedMax; i++ {
		b.learn(map[paxos.NodeID]string{paxos.NodeID(100 + i): fmt.Sprintf("h:%d", i)})
	}
	if len(b.learned) != learnedMax || b.addr(paxos.NodeID(100+learnedMax)) != "" {
		t.Errorf("%d addresses learned (bound %d); node %d's: %q", len(b.learned), learnedMax, 100+learnedMax, b.addr(paxos.NodeID(100+learnedMax)))
	}
	if !b.learn(map[paxos.NodeID]string{100: "moved:100"}) || b.addr(100) != "moved:100" {
		t.Errorf("at the bound, a learned id's new address: %q", b.addr(100))
	}
}
