package statemachine

import (
	"bytes"
	"errors"
	"testing"
)

// oldClusterState builds a state with everything a restore must let go
// of: sessions holding a lock and a leadership, a waiter, a candidate, an
// ephemeral key, a lock in a lock-delay, a duplicate table and a watch
// history.
func oldClusterState(t *testing.T) *smHarness {
	h := ephHarness(t)
	h.ok(cs(7, 1, putCmd("a", "1")))
	h.ok(putCmd("b", "2"))
	h.ok(openCmd(60000))                           // session 1
	h.ok(openCmd(60000))                           // session 2
	h.ok(openCmd(1000))                            // session 3
	h.ok(clockCmd(10))                             //
	h.ok(acquireCmd("held", 1, false, 0))          // token 1
	h.ok(cs(8, 1, acquireCmd("held", 2, true, 0))) // waits
	h.ok(campaignCmd("e", 1, "one"))               // term 2
	h.ok(cs(8, 2, campaignCmd("e", 2, "two")))     // candidate
	h.ok(ephPut("eph", "x", 2))                    // ephemeral
	h.ok(acquireCmd("delayed", 3, false, 60000))   // token 3, delay on expiry
	h.ok(clockCmd(5000))                           // session 3 expires: delay
	if l, ok := h.sm.Lock("delayed"); !ok || l.DelayUntil == 0 {
		t.Fatalf("setup: lock delayed = %+v, %v", l, ok)
	}
	return h
}

// TestStartNewCluster: every session is gone with what it held, the
// numbers continue above the old ones, the old revisions and election
// changes are compacted, the keys stay, and the state restores (a
// snapshot of it passes every check a member makes).
func TestStartNewCluster(t *testing.T) {
	h := oldClusterState(t)
	sm := h.sm
	oldRev, oldFence, oldLastSession := sm.Revision(), sm.fence, sm.sessions.last
	oldSeq := sm.elect.m["e"].seq
	id := bytes.Repeat([]byte{7}, ClusterIDBytes)
	const bump = 1000
	rep, err := sm.StartNewCluster(id, bump, testBoot)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sessions != 2 || rep.Locks != 1 || rep.Waiters != 1 || rep.Leaders != 1 || rep.Candidates != 1 || rep.EphemeralKeys != 1 {
		t.Errorf("report %+v: want 2 sessions, 1 lock held, 1 waiter, 1 leader, 1 candidate, 1 ephemeral key", rep)
	}
	// The ephemeral key's deletion took one revision before the bump.
	if sm.Revision() != oldRev+1+bump || rep.Revision != sm.Revision() || sm.fence != oldFence+bump || sm.sessions.last != oldLastSession+bump {
		t.Errorf("revision %d (was %d), fence %d (was %d), last session %d (was %d): want each %d above", sm.Revision(), oldRev, sm.fence, oldFence, sm.sessions.last, oldLastSession, bump)
	}
	if sm.SessionCount() != 0 || sm.LockCount() != 0 || len(sm.dedup.clients) != 0 || len(sm.answers) != 0 {
		t.Errorf("sessions %d, locks %d, clients %d, answers %d: want none", sm.SessionCount(), sm.LockCount(), len(sm.dedup.clients), len(sm.answers))
	}
	if _, ok := sm.Get("eph"); ok {
		t.Error("the ephemeral key survived its session")
	}
	for _, k := range []string{"a", "b"} {
		if kv, ok := sm.Get(k); !ok || kv.ModRevision > oldRev {
			t.Errorf("key %s: %+v, %v: want kept with its old revisions", k, kv, ok)
		}
	}
	if _, err := sm.KVEvents(oldRev, "a", true, 0); !errors.Is(err, ErrCompacted) {
		t.Errorf("a watch resumed at the old revision %d: %v, want ErrCompacted", oldRev, err)
	}
	if _, err := sm.KVEvents(sm.Revision()+1, "a", true, 0); err != nil {
		t.Errorf("a watch from the next revision: %v", err)
	}
	e := sm.elect.m["e"]
	if e.leader != 0 || len(e.candidates) != 0 || e.seq != oldSeq+1+bump { // the resignation, then the bump
		t.Errorf("election: leader %d, %d candidates, seq %d (was %d)", e.leader, len(e.candidates), e.seq, oldSeq)
	}
	if _, err := sm.ElectionChanges("e", oldSeq); !errors.Is(err, ErrCompacted) {
		t.Errorf("an observe resumed after the old change %d: %v, want ErrCompacted", oldSeq, err)
	}
	if !bytes.Equal(sm.ClusterID(), id) || len(sm.Voters()) != 0 {
		t.Errorf("identity %x voters %v", sm.ClusterID(), sm.Voters())
	}

	// The new cluster's first grants are above every old token and id.
	r := h.ok(openCmd(60000))
	if r.Session.ID <= oldLastSession+bump {
		t.Errorf("new session id %d, want above %d", r.Session.ID, oldLastSession+bump)
	}
	g := h.ok(acquireCmd("held", r.Session.ID, false, 0))
	if g.Token <= oldFence+bump {
		t.Errorf("new token %d, want above %d", g.Token, oldFence+bump)
	}

	// A snapshot of it is one every member accepts.
	data, err := sm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	back, err := RestoreStateMachine(SMOptions{}, data)
	if err != nil {
		t.Fatalf("the new cluster's state does not restore: %v", err)
	}
	if back.Hash() != sm.Hash() {
		t.Error("restored hash differs")
	}
}

// TestStartNewClusterDeterministic: two members restoring the same
// snapshot with the same id and bump hold the same state, byte for byte.
func TestStartNewClusterDeterministic(t *testing.T) {
	data, err := oldClusterState(t).sm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	id := bytes.Repeat([]byte{9}, ClusterIDBytes)
	var snaps [][]byte
	for range 2 {
		sm, err := RestoreStateMachine(SMOptions{}, data)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sm.StartNewCluster(id, 1e9, testBoot); err != nil {
			t.Fatal(err)
		}
		b, err := sm.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		snaps = append(snaps, b)
	}
	if !bytes.Equal(snaps[0], snaps[1]) {
		t.Error("two restores of one snapshot differ")
	}
}

func TestStartNewClusterRefuses(t *testing.T) {
	sm := NewStateMachine(SMOptions{})
	if _, err := sm.StartNewCluster(make([]byte, 3), 10, testBoot); !errors.Is(err, ErrInvalid) {
		t.Errorf("short id: %v", err)
	}
	if _, err := sm.StartNewCluster(make([]byte, ClusterIDBytes), 0, testBoot); !errors.Is(err, ErrInvalid) {
		t.Errorf("bump 0: %v", err)
	}
	sm.kv.rev = ^uint64(0) - 5
	if _, err := sm.StartNewCluster(make([]byte, ClusterIDBytes), 10, testBoot); !errors.Is(err, ErrInvalid) {
		t.Errorf("overflow: %v", err)
	}
}
