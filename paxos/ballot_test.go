package paxos_test

import (
	"fmt"
	"testing"
	"testing/quick"

	"github.com/paxosd/paxosd/paxos"
)

// The references are to Lamport, "Paxos Made Simple" (2001).

// refCompare orders ballots the slow, obvious way: as fixed-width decimal
// strings "round/node", compared lexically.
func refCompare(a, b paxos.Ballot) int {
	x := fmt.Sprintf("%020d/%010d", a.Round, a.Node)
	y := fmt.Sprintf("%020d/%010d", b.Round, b.Node)
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// Reference: §2.2 (proposal numbers are totally ordered) and §2.5
// (proposers draw numbers from disjoint sets). Compare, Less and MaxBallot
// agree with the reference order, on small values (many ties) and full-width
// ones.
func TestBallotOrderMatchesReference(t *testing.T) {
	check := func(a, b paxos.Ballot) bool {
		want := refCompare(a, b)
		max := a
		if want < 0 {
			max = b
		}
		return a.Compare(b) == want && b.Compare(a) == -want &&
			a.Less(b) == (want < 0) && paxos.MaxBallot(a, b) == max
	}
	small := func(r1, r2, n1, n2 uint8) bool {
		return check(paxos.Ballot{Round: uint64(r1 % 4), Node: paxos.NodeID(n1 % 4)},
			paxos.Ballot{Round: uint64(r2 % 4), Node: paxos.NodeID(n2 % 4)})
	}
	full := func(r1, r2 uint64, n1, n2 uint32) bool {
		return check(paxos.Ballot{Round: r1, Node: paxos.NodeID(n1)}, paxos.Ballot{Round: r2, Node: paxos.NodeID(n2)})
	}
	if err := quick.Check(small, &quick.Config{MaxCount: 2000}); err != nil {
		t.Error(err)
	}
	if err := quick.Check(full, nil); err != nil {
		t.Error(err)
	}
}

// Reference: §2.4 (a proposer that learns of a higher number picks a higher
// one). Next is above the ballot it follows and owned by the caller; the
// zero ballot is below every ballot a proposer uses.
func TestBallotNextIsAboveAndZeroIsBelow(t *testing.T) {
	f := func(round uint32, node, by uint32) bool {
		b := paxos.Ballot{Round: uint64(round), Node: paxos.NodeID(node)}
		n := b.Next(paxos.NodeID(by))
		return b.Less(n) && n.Node == paxos.NodeID(by) && paxos.Ballot{}.Less(n) && !n.IsZero()
	}
	if err := quick.Check(f, nil); err != nil {
		t.Error(err)
	}
	if !(paxos.Ballot{}).IsZero() || (paxos.Ballot{Node: 1}).IsZero() {
		t.Error("IsZero wrong")
	}
	if s := (paxos.Ballot{Round: 3, Node: 2}).String(); s != "3.2" {
		t.Errorf("String = %q, want 3.2", s)
	}
}
