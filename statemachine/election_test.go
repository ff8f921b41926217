package statemachine

import (
	"errors"
	"fmt"
	"testing"
)

func TestElection(t *testing.T) {
	tests := []struct {
		name  string
		steps []coordStep
	}{
		{"first campaigner leads, others queue FIFO, resign hands over with a higher term", steps(threeSessions, []coordStep{
			{cmd: cs(1, 1, campaignCmd("e", 1, "one")), token: 1},
			{cmd: cs(2, 1, campaignCmd("e", 2, "two")), pending: true},
			{cmd: cs(3, 1, campaignCmd("e", 3, "three")), pending: true},
			{cmd: cs(1, 2, campaignCmd("e", 1, "again")), token: 1},    // the leader: its term
			{cmd: cs(2, 1, campaignCmd("e", 2, "two")), pending: true}, // retry: still queued once
			{cmd: cs(9, 1, acquireCmd("l", 1, false, 0)), token: 2},    // the counter is shared
			{cmd: cs(1, 3, resignCmd("e", 1)), answers: []wantAnswer{{client: 2, seq: 1, token: 3}}},
			{cmd: cs(2, 1, campaignCmd("e", 2, "two")), token: 3}, // retry after: the term
			{cmd: cs(2, 2, resignCmd("e", 2)), answers: []wantAnswer{{client: 3, seq: 1, token: 4}}},
			{cmd: cs(3, 2, resignCmd("e", 3))},
			{cmd: leaderCmd("e"), err: ErrNotFound},
			{cmd: cs(1, 4, campaignCmd("e", 1, "back")), token: 5},
		})},
		{"proclaim", steps(threeSessions, []coordStep{
			{cmd: cs(1, 1, proclaimCmd("e", 1, "x")), err: ErrNotElectionLeader},
			{cmd: cs(1, 2, campaignCmd("e", 1, "a")), token: 1},
			{cmd: cs(2, 1, campaignCmd("e", 2, "b")), pending: true},
			{cmd: cs(2, 2, proclaimCmd("e", 2, "x")), err: ErrNotElectionLeader},
			{cmd: cs(3, 1, proclaimCmd("e", 3, "x")), err: ErrNotElectionLeader},
			{cmd: cs(1, 3, proclaimCmd("e", 1, "a2")), token: 1},
			{cmd: leaderCmd("e"), token: 1},
			{cmd: cs(1, 4, proclaimCmd("e", 99, "x")), err: ErrSessionExpired},
		})},
		{"resign", steps(threeSessions, []coordStep{
			{cmd: cs(1, 1, resignCmd("e", 1)), err: ErrNotElectionLeader},
			{cmd: cs(1, 2, campaignCmd("e", 1, "a")), token: 1},
			{cmd: cs(2, 1, campaignCmd("e", 2, "b")), pending: true},
			{cmd: cs(3, 1, campaignCmd("e", 3, "c")), pending: true},
			{cmd: cs(2, 2, resignCmd("e", 2)), answers: []wantAnswer{{client: 2, seq: 1, err: ErrCanceled}}},
			{cmd: cs(2, 3, resignCmd("e", 2)), err: ErrNotElectionLeader},
			{cmd: cs(1, 3, resignCmd("e", 1)), answers: []wantAnswer{{client: 3, seq: 1, token: 2}}},
		})},
		{"a newer campaign of a candidate replaces the older", steps(threeSessions, []coordStep{
			{cmd: cs(1, 1, campaignCmd("e", 1, "a")), token: 1},
			{cmd: cs(2, 1, campaignCmd("e", 2, "b")), pending: true},
			{cmd: cs(2, 2, campaignCmd("e", 2, "b2")), pending: true, answers: []wantAnswer{{client: 2, seq: 1, err: ErrCanceled}}},
			{cmd: cs(1, 2, resignCmd("e", 1)), answers: []wantAnswer{{client: 2, seq: 2, token: 2}}},
		})},
		{"session end: the leader resigns, candidates leave", []coordStep{
			{cmd: openCmd(1000)}, {cmd: openCmd(2000)}, {cmd: openCmd(60000)}, {cmd: openCmd(60000)}, {cmd: clockCmd(0)},
			{cmd: cs(1, 1, campaignCmd("e", 1, "a")), token: 1},
			{cmd: cs(2, 1, campaignCmd("e", 2, "b")), pending: true},
			{cmd: cs(3, 1, campaignCmd("e", 3, "c")), pending: true},
			{cmd: cs(4, 1, campaignCmd("e", 4, "d")), pending: true},
			{cmd: clockCmd(1000), answers: []wantAnswer{{client: 2, seq: 1, token: 2}}},
			{cmd: cs(3, 2, closeCmd(3)), answers: []wantAnswer{{client: 3, seq: 1, err: ErrSessionExpired}}},
			{cmd: clockCmd(2000), answers: []wantAnswer{{client: 4, seq: 1, token: 3}}},
			{cmd: cs(4, 2, closeCmd(4))},
			{cmd: leaderCmd("e"), err: ErrNotFound},
		}},
		{"leadership never goes to a session expiring in the same clock step", []coordStep{
			{cmd: openCmd(1000)}, {cmd: openCmd(1000)}, {cmd: openCmd(5000)}, {cmd: clockCmd(0)},
			{cmd: cs(1, 1, campaignCmd("e", 1, "a")), token: 1},
			{cmd: cs(2, 1, campaignCmd("e", 2, "b")), pending: true},
			{cmd: cs(3, 1, campaignCmd("e", 3, "c")), pending: true},
			{cmd: clockCmd(1000), answers: []wantAnswer{{client: 2, seq: 1, err: ErrSessionExpired}, {client: 3, seq: 1, token: 2}}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runCoordSteps(t, SMOptions{}, tt.steps) })
	}
}

// TestElectionHistory: every change gets the next number, with the
// leader, value, term and store revision at that point.
func TestElectionHistory(t *testing.T) {
	h := newSMHarness(t, SMOptions{})
	h.do(openCmd(60000))
	h.do(openCmd(60000))
	h.do(putCmd("k", "v"))                    // revision 1
	h.do(cs(1, 1, campaignCmd("e", 1, "a")))  // 1: session 1 leads, term 1
	h.do(cs(2, 1, campaignCmd("e", 2, "b")))  // queued: no change
	h.do(putCmd("k", "v"))                    // revision 2
	h.do(cs(1, 2, proclaimCmd("e", 1, "a2"))) // 2: value a2
	h.do(cs(1, 3, resignCmd("e", 1)))         // 3: session 2 leads, term 2
	h.do(cs(2, 2, resignCmd("e", 2)))         // 4: no leader
	h.do(cs(1, 4, campaignCmd("e", 1, "c")))  // 5: session 1, term 3
	want := []LeaderChange{
		{Seq: 1, Session: 1, Value: []byte("a"), Term: 1, Revision: 1},
		{Seq: 2, Session: 1, Value: []byte("a2"), Term: 1, Revision: 2},
		{Seq: 3, Session: 2, Value: []byte("b"), Term: 2, Revision: 2},
		{Seq: 4, Revision: 2},
		{Seq: 5, Session: 1, Value: []byte("c"), Term: 3, Revision: 2},
	}
	for after := uint64(0); after <= 6; after++ {
		got, err := h.sm.ElectionChanges("e", after)
		if err != nil {
			t.Fatal(err)
		}
		w := want[min(after, 5):]
		if fmt.Sprint(got) != fmt.Sprint(w) || len(got) != len(w) {
			t.Fatalf("changes after %d: %+v, want %+v", after, got, w)
		}
	}
	if got, err := h.sm.ElectionChanges("never", 0); got != nil || err != nil {
		t.Fatalf("unknown election: %v, %v", got, err)
	}
	l, ok := h.sm.LeaderOf("e")
	if !ok || l.Name != "e" || l.Session != 1 || string(l.Value) != "c" || l.Term != 3 || l.Seq != 5 || l.Revision != 2 {
		t.Fatalf("leader %+v", l)
	}
	if r := h.do(leaderCmd("e")); fmt.Sprint(r.Leader) != fmt.Sprint(l) || r.Token != 3 {
		t.Fatalf("leader query %s, want %+v", describeResult(r), l)
	}
	// The record (and its numbering) outlives its last participant.
	h.do(closeCmd(1))
	if _, ok := h.sm.LeaderOf("e"); ok {
		t.Fatalf("leader after close")
	}
	h.do(cs(2, 3, campaignCmd("e", 2, "d")))
	if got, _ := h.sm.ElectionChanges("e", 5); len(got) != 2 || got[0].Seq != 6 || got[0].Session != 0 || got[1].Seq != 7 || got[1].Term != 4 {
		t.Fatalf("changes after the close: %+v", got)
	}
}

// TestElectionHistoryCompacted: only the latest ElectionHistoryMax changes
// are kept; asking for an older one is ErrCompacted, never a gap.
func TestElectionHistoryCompacted(t *testing.T) {
	h := newSMHarness(t, SMOptions{ElectionHistoryMax: 3})
	h.do(openCmd(60000))
	h.do(cs(1, 1, campaignCmd("e", 1, "0")))
	for i := 1; i < 100; i++ {
		h.do(cs(1, uint64(i+1), proclaimCmd("e", 1, fmt.Sprint(i))))
	}
	// Changes 98, 99, 100 are kept.
	for after := uint64(0); after <= 100; after++ {
		got, err := h.sm.ElectionChanges("e", after)
		switch {
		case after < 97:
			if !errors.Is(err, ErrCompacted) {
				t.Fatalf("after %d: %v, %v; want ErrCompacted", after, got, err)
			}
		default:
			if err != nil || len(got) != int(100-after) {
				t.Fatalf("after %d: %d changes, %v", after, len(got), err)
			}
			for i, ch := range got {
				if ch.Seq != after+1+uint64(i) || string(ch.Value) != fmt.Sprint(after+uint64(i)) {
					t.Fatalf("after %d: change %d is %+v", after, i, ch)
				}
			}
		}
	}
	if n := h.sm.elect.m["e"].history.r.len(); n != 3 {
		t.Fatalf("history holds %d changes", n)
	}
}
