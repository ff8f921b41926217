package learner

import (
	"reflect"
	"testing"

	"github.com/paxosd/paxosd/paxos"
)

// The references are to Lamport, "Paxos Made Simple" (2001).

func members(n int) func(paxos.Slot) paxos.Membership {
	m := membership(n)
	return func(paxos.Slot) paxos.Membership { return m }
}

func membership(n int) paxos.Membership {
	var m paxos.Membership
	for i := 1; i <= n; i++ {
		m.Members = append(m.Members, paxos.Member{ID: paxos.NodeID(i)})
	}
	return m
}

var (
	b11 = paxos.Ballot{Round: 1, Node: 1}
	b22 = paxos.Ballot{Round: 2, Node: 2}
	x   = paxos.Value{Kind: paxos.ValueBatch, Cmds: [][]byte{[]byte("x")}}
)

type vote struct {
	from   paxos.NodeID
	ballot paxos.Ballot
}

func slotsOf(es []paxos.Entry) []paxos.Slot {
	var out []paxos.Slot
	for _, e := range es {
		out = append(out, e.Slot)
	}
	return out
}

// Reference: §2.2 (a value is chosen when a single proposal with that value
// has been accepted by a majority) and §2.3. Votes count per (slot,
// ballot), once per member: a duplicate Accepted, one from a non-member or
// one under another ballot adds nothing.
func TestOnAcceptedCountsAQuorumPerSlotAndBallot(t *testing.T) {
	for _, tc := range []struct {
		name   string
		nodes  int
		votes  []vote
		chosen bool
	}{
		{"3 nodes, one vote", 3, []vote{{1, b22}}, false},
		{"3 nodes, two votes", 3, []vote{{1, b22}, {2, b22}}, true},
		{"5 nodes, two votes", 5, []vote{{1, b22}, {2, b22}}, false},
		{"5 nodes, three votes", 5, []vote{{1, b22}, {4, b22}, {5, b22}}, true},
		{"duplicate vote", 3, []vote{{1, b22}, {1, b22}}, false},
		{"non-member vote", 3, []vote{{1, b22}, {9, b22}}, false},
		{"other ballot", 3, []vote{{1, b22}, {2, b11}, {3, b11}}, false},
		{"5 nodes, duplicates then quorum", 5, []vote{{1, b22}, {1, b22}, {2, b22}, {2, b22}, {3, b22}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := New(members(tc.nodes), 0)
			l.Expect(1, b22, x)
			n := 0
			for _, v := range tc.votes {
				n += l.OnAccepted(v.from, v.ballot, []paxos.Slot{1})
			}
			if l.IsChosen(1) != tc.chosen || (n == 1) != tc.chosen {
				t.Errorf("IsChosen = %v after %d newly chosen, want %v", l.IsChosen(1), n, tc.chosen)
			}
		})
	}
}

// Reference: §3 (each instance is a separate Paxos run). One Accepted
// listing several slots votes for each; each slot is chosen on its own
// quorum, and a vote arriving after the slot was chosen changes nothing.
func TestOnAcceptedCountsEachSlotSeparately(t *testing.T) {
	l := New(members(3), 0)
	l.Expect(1, b22, x)
	l.Expect(2, b22, x)
	if n := l.OnAccepted(1, b22, []paxos.Slot{1, 2}); n != 0 {
		t.Fatalf("one vote chose %d slots", n)
	}
	if n := l.OnAccepted(2, b22, []paxos.Slot{2}); n != 1 || l.IsChosen(1) || !l.IsChosen(2) {
		t.Fatalf("chose %d; IsChosen(1)=%v IsChosen(2)=%v, want only slot 2", n, l.IsChosen(1), l.IsChosen(2))
	}
	if n := l.OnAccepted(3, b22, []paxos.Slot{2}); n != 0 {
		t.Errorf("a late vote re-chose slot 2 (%d)", n)
	}
}

// Reference: §3 (a server executes commands in order, so chosen commands
// after a gap wait until the gap is filled). Advance hands out only the
// contiguous prefix after the watermark; a hole blocks everything behind it.
func TestAdvanceReturnsOnlyContiguousPrefix(t *testing.T) {
	l := New(members(3), 0)
	l.Choose(paxos.Entry{Slot: 1, Ballot: b11, Value: x})
	l.Choose(paxos.Entry{Slot: 3, Ballot: b11, Value: x})
	l.Choose(paxos.Entry{Slot: 4, Ballot: b11, Value: x})
	if got := slotsOf(l.Advance()); !reflect.DeepEqual(got, []paxos.Slot{1}) || l.Commit() != 1 {
		t.Fatalf("Advance = %v, commit %d; want [1], 1", got, l.Commit())
	}
	if got := l.Advance(); got != nil {
		t.Fatalf("Advance with a hole at 2 = %v, want nothing", got)
	}
	l.Choose(paxos.Entry{Slot: 2, Ballot: b11, Value: x})
	if got := slotsOf(l.Advance()); !reflect.DeepEqual(got, []paxos.Slot{2, 3, 4}) || l.Commit() != 4 {
		t.Errorf("Advance after filling the hole = %v, commit %d; want [2 3 4], 4", got, l.Commit())
	}
}

// Reference: §2.3 (a chosen value never changes). Slots at or below the
// watermark are already delivered, so choosing one again is ignored, and
// the first value recorded for a pending slot stays.
func TestChooseAtOrBelowCommitIsIgnored(t *testing.T) {
	l := New(members(3), 5)
	l.Choose(paxos.Entry{Slot: 3, Ballot: b11, Value: x})
	l.Choose(paxos.Entry{Slot: 5, Ballot: b11, Value: x})
	if got := l.Advance(); got != nil || l.Commit() != 5 {
		t.Fatalf("Advance = %v, commit %d; want nothing, 5", got, l.Commit())
	}
	l.Choose(paxos.Entry{Slot: 6, Ballot: b11, Value: x})
	l.Choose(paxos.Entry{Slot: 6, Ballot: b22, Value: paxos.Noop})
	got := l.Advance()
	if want := []paxos.Entry{{Slot: 6, Ballot: b11, Value: x}}; !reflect.DeepEqual(got, want) {
		t.Errorf("Advance = %v, want %v", got, want)
	}
}

// Reference: §2.4 (only the distinguished proposer's ballot is live). After
// ResetTallies the votes counted for the old ballot are forgotten, so they
// can never combine with later ones into a quorum.
func TestResetTalliesForgetsVotes(t *testing.T) {
	l := New(members(3), 0)
	l.Expect(1, b22, x)
	l.OnAccepted(1, b22, []paxos.Slot{1})
	if !l.Voted(1, 1) {
		t.Fatal("vote from 1 not recorded")
	}
	l.ResetTallies()
	if l.Voted(1, 1) {
		t.Error("Voted(1, 1) after ResetTallies")
	}
	if n := l.OnAccepted(2, b22, []paxos.Slot{1}); n != 0 || l.IsChosen(1) {
		t.Error("a vote counted before ResetTallies still made a quorum")
	}
}
