package chaos

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/paxosd/paxosd/wire"
)

// The lock-holders schedule's judges, without a cluster: a list that
// shows the baseline passes, and each way a lock can stop being what the
// baseline says is caught and told apart.
func TestCompareLocks(t *testing.T) {
	base := map[string]Grant{
		"a": {Holder: 1, Token: 10},
		"b": {Holder: 2, Token: 11, Waiters: []uint64{3, 4}},
	}
	same := []wire.LockInfo{
		{Name: "a", Holder: 1, Token: 10},
		{Name: "b", Holder: 2, Token: 11, Waiters: []uint64{3, 4}},
		{Name: "someone else's", Holder: 9, Token: 99},
	}
	if d := CompareLocks(base, same); len(d) != 0 {
		t.Fatalf("the baseline itself differs from the baseline: %v", d)
	}
	for name, tc := range map[string]struct {
		got     []wire.LockInfo
		changed bool   // ChangedHands
		says    string // in String()
	}{
		"another holder": {
			got:     []wire.LockInfo{{Name: "a", Holder: 5, Token: 12}, same[1]},
			changed: true, says: "changed hands",
		},
		"the same holder with a new token (released and taken again)": {
			got:     []wire.LockInfo{{Name: "a", Holder: 1, Token: 13}, same[1]},
			changed: true, says: "changed hands",
		},
		"a waiter holds it": {
			got:     []wire.LockInfo{same[0], {Name: "b", Holder: 3, Token: 14, Waiters: []uint64{4}}},
			changed: true, says: "changed hands",
		},
		"free": {
			got:  []wire.LockInfo{{Name: "a"}, same[1]},
			says: "is free",
		},
		"not listed": {
			got:  []wire.LockInfo{same[1]},
			says: "not in the list",
		},
		"a waiter left": {
			got:  []wire.LockInfo{same[0], {Name: "b", Holder: 2, Token: 11, Waiters: []uint64{4}}},
			says: "waiters [4], were [3 4]",
		},
		"the waiters' order changed": {
			got:  []wire.LockInfo{same[0], {Name: "b", Holder: 2, Token: 11, Waiters: []uint64{4, 3}}},
			says: "waiters [4 3]",
		},
	} {
		d := CompareLocks(base, tc.got)
		if len(d) != 1 {
			t.Errorf("%s: want one difference, got %v", name, d)
			continue
		}
		if d[0].ChangedHands() != tc.changed || !strings.Contains(d[0].String(), tc.says) {
			t.Errorf("%s: got %q (changed hands %v), want one saying %q (changed hands %v)", name, d[0], d[0].ChangedHands(), tc.says, tc.changed)
		}
	}
}

func TestMissingSessionsAndMinRemaining(t *testing.T) {
	got := []wire.SessionInfo{{ID: 1, RemainingMs: 9000}, {ID: 3, RemainingMs: 4000}, {ID: 7, RemainingMs: 100}}
	if m := MissingSessions([]uint64{1, 2, 3, 4}, got); !slices.Equal(m, []uint64{2, 4}) {
		t.Errorf("missing sessions: got %v, want [2 4]", m)
	}
	if m := MinRemaining(map[uint64]bool{1: true, 3: true}, got); m != 4000 {
		t.Errorf("least TTL left of sessions 1 and 3: got %d ms, want 4000 (session 7 is not ours)", m)
	}
	if m := MinRemaining(map[uint64]bool{2: true}, got); m != -1 {
		t.Errorf("least TTL left with none of ours listed: got %d, want -1", m)
	}
}

// TestPlanLocks: a seed always gives the same faults; the first is a kill
// of the leader and the second a partition; the faults that leave no
// majority last at most the outage bound.
func TestPlanLocks(t *testing.T) {
	outage := 2500 * time.Millisecond
	for seed := int64(1); seed <= 50; seed++ {
		p := PlanLocks(seed, 40, 3, outage)
		if q := PlanLocks(seed, 40, 3, outage); len(q) != len(p) || q[7].String() != p[7].String() || q[39].Hold != p[39].Hold {
			t.Fatalf("seed %d: two plans differ", seed)
		}
		if p[0].Kind != Kill || p[0].Target != TheLeader {
			t.Fatalf("seed %d: first fault %s, want a kill of the leader", seed, p[0])
		}
		if p[1].Kind != IsolateLeader && p[1].Kind != IsolateNode {
			t.Fatalf("seed %d: second fault %s, want a partition", seed, p[1])
		}
		kinds := map[FaultKind]bool{}
		for _, f := range p {
			kinds[f.Kind] = true
			if f.Kind == Mixed && (f.Hold > outage || f.Net != IsolateNode || f.Also == nil || f.Also.Kind != Kill || f.Node >= 2) {
				t.Fatalf("seed %d: a no-majority fault %s held %s (bound %s), node %d", seed, f, f.Hold, outage, f.Node)
			}
			if f.Hold <= 0 || f.Quiet <= 0 || f.Node < 0 || f.Node >= 3 {
				t.Fatalf("seed %d: fault %s: hold %s, quiet %s, node %d", seed, f, f.Hold, f.Quiet, f.Node)
			}
		}
		if len(kinds) != 4 {
			t.Errorf("seed %d: 40 faults of only %d kinds", seed, len(kinds))
		}
	}
}
