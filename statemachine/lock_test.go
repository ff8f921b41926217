package statemachine

import (
	"errors"
	"slices"
	"testing"
)

// Sessions 1, 2, 3 with a long TTL, opened at clock 0.
var threeSessions = []coordStep{
	{cmd: openCmd(60000)}, {cmd: openCmd(60000)}, {cmd: openCmd(60000)}, {cmd: clockCmd(0)},
}

func steps(parts ...[]coordStep) []coordStep { return slices.Concat(parts...) }

func TestLock(t *testing.T) {
	tests := []struct {
		name  string
		opts  SMOptions
		steps []coordStep
	}{
		{"grants are FIFO and tokens grow across grants", SMOptions{}, steps(threeSessions, []coordStep{
			{cmd: cs(1, 1, acquireCmd("l", 1, true, 0)), token: 1},
			{cmd: cs(2, 1, acquireCmd("l", 2, true, 0)), pending: true},
			{cmd: cs(3, 1, acquireCmd("l", 3, true, 0)), pending: true},
			{cmd: cs(1, 2, releaseCmd("l", 1)), answers: []wantAnswer{{client: 2, seq: 1, token: 2}}},
			{cmd: cs(1, 3, acquireCmd("l", 1, true, 0)), pending: true},
			{cmd: cs(2, 2, releaseCmd("l", 2)), answers: []wantAnswer{{client: 3, seq: 1, token: 3}}},
			{cmd: cs(3, 2, releaseCmd("l", 3)), answers: []wantAnswer{{client: 1, seq: 3, token: 4}}},
			{cmd: cs(1, 4, releaseCmd("l", 1))},
			// The record is gone, but the global counter keeps tokens
			// growing, also across locks.
			{cmd: cs(2, 3, acquireCmd("l", 2, false, 0)), token: 5},
			{cmd: cs(3, 3, acquireCmd("m", 3, false, 0)), token: 6},
		})},
		{"try-lock fails while held, in delay, or with waiters", SMOptions{}, steps(threeSessions, []coordStep{
			{cmd: cs(1, 1, acquireCmd("l", 1, false, 0)), token: 1},
			{cmd: cs(2, 1, acquireCmd("l", 2, false, 0)), err: ErrLockHeld},
			{cmd: cs(2, 2, acquireCmd("l", 2, true, 0)), pending: true},
			{cmd: cs(3, 1, acquireCmd("l", 3, false, 0)), err: ErrLockHeld},
			// A try by a waiting session fails and leaves it waiting.
			{cmd: cs(2, 3, acquireCmd("l", 2, false, 0)), err: ErrLockHeld},
			{cmd: cs(1, 2, releaseCmd("l", 1)), answers: []wantAnswer{{client: 2, seq: 2, token: 2}}},
		})},
		{"acquire by the holder is idempotent", SMOptions{}, steps(threeSessions, []coordStep{
			{cmd: cs(1, 1, acquireCmd("l", 1, false, 0)), token: 1},
			{cmd: cs(1, 2, acquireCmd("l", 1, false, 0)), token: 1},
			{cmd: cs(9, 1, acquireCmd("l", 1, true, 0)), token: 1}, // another client, same session
		})},
		{"retry of a pending acquire waits once and then finds the grant", SMOptions{}, steps(threeSessions, []coordStep{
			{cmd: cs(1, 1, acquireCmd("l", 1, true, 0)), token: 1},
			{cmd: cs(2, 1, acquireCmd("l", 2, true, 0)), pending: true},
			{cmd: cs(2, 1, acquireCmd("l", 2, true, 0)), pending: true}, // retry: deduplicated
			// Without dedup (client 0) it is a new request of the same
			// session: still one entry, answering the newest request; 2/1
			// is withdrawn with ErrCanceled.
			{cmd: acquireCmd("l", 2, true, 0), pending: true, answers: []wantAnswer{{client: 2, seq: 1, err: ErrCanceled}}},
			{cmd: cs(3, 1, acquireCmd("l", 3, true, 0)), pending: true},
			{cmd: cs(1, 2, releaseCmd("l", 1)), answers: []wantAnswer{{client: 0, seq: 0, token: 2}}},
			{cmd: cs(2, 1, acquireCmd("l", 2, true, 0)), err: ErrCanceled},
			{cmd: cs(2, 2, releaseCmd("l", 2)), answers: []wantAnswer{{client: 3, seq: 1, token: 3}}},
			// After the grant a retry returns the grant, not a new wait.
			{cmd: cs(3, 1, acquireCmd("l", 3, true, 0)), token: 3},
		})},
		{"a newer acquire of a waiting session replaces the older", SMOptions{}, steps(threeSessions, []coordStep{
			{cmd: cs(1, 1, acquireCmd("l", 1, true, 0)), token: 1},
			{cmd: cs(2, 1, acquireCmd("l", 2, true, 0)), pending: true},
			{cmd: cs(2, 2, acquireCmd("l", 2, true, 0)), pending: true,
				answers: []wantAnswer{{client: 2, seq: 1, err: ErrCanceled}}},
			{cmd: cs(1, 2, releaseCmd("l", 1)), answers: []wantAnswer{{client: 2, seq: 2, token: 2}}},
			{cmd: cs(2, 1, acquireCmd("l", 2, true, 0)), err: ErrCanceled},
			{cmd: cs(2, 2, acquireCmd("l", 2, true, 0)), token: 2},
		})},
		{"release", SMOptions{}, steps(threeSessions, []coordStep{
			{cmd: cs(1, 1, releaseCmd("l", 1)), err: ErrNotHeld},
			{cmd: cs(1, 2, acquireCmd("l", 1, true, 0)), token: 1},
			{cmd: cs(2, 1, releaseCmd("l", 2)), err: ErrNotHeld},
			{cmd: cs(2, 2, acquireCmd("l", 2, true, 0)), pending: true},
			{cmd: cs(3, 1, acquireCmd("l", 3, true, 0)), pending: true},
			// A waiter's release withdraws it: its acquire is answered
			// ErrCanceled, and the queue moves on without it.
			{cmd: cs(2, 3, releaseCmd("l", 2)), answers: []wantAnswer{{client: 2, seq: 2, err: ErrCanceled}}},
			{cmd: cs(2, 3, releaseCmd("l", 2))}, // retry: same answer
			{cmd: cs(2, 4, releaseCmd("l", 2)), err: ErrNotHeld},
			{cmd: cs(1, 3, releaseCmd("l", 1)), answers: []wantAnswer{{client: 3, seq: 1, token: 2}}},
			{cmd: cs(1, 4, releaseCmd("l", 1)), err: ErrNotHeld},
			{cmd: cs(1, 5, releaseCmd("l", 99)), err: ErrSessionExpired},
			{cmd: cs(1, 6, acquireCmd("l", 99, true, 0)), err: ErrSessionExpired},
		})},
		{"expiry releases and grants the next waiter", SMOptions{}, []coordStep{
			{cmd: openCmd(1000)}, {cmd: openCmd(5000)}, {cmd: clockCmd(0)},
			{cmd: cs(1, 1, acquireCmd("l", 1, true, 0)), token: 1},
			{cmd: cs(2, 1, acquireCmd("l", 2, true, 0)), pending: true},
			{cmd: clockCmd(999)},
			{cmd: clockCmd(1000), answers: []wantAnswer{{client: 2, seq: 1, token: 2}}},
			{cmd: cs(2, 1, acquireCmd("l", 2, true, 0)), token: 2},
			{cmd: checkCmd("l", 1)},
			{cmd: checkCmd("l", 2), held: true},
		}},
		{"lock-delay after expiry", SMOptions{}, []coordStep{
			{cmd: openCmd(1000)}, {cmd: openCmd(5000)}, {cmd: openCmd(5000)}, {cmd: clockCmd(0)},
			{cmd: cs(1, 1, acquireCmd("l", 1, true, 500)), token: 1},
			{cmd: cs(2, 1, acquireCmd("l", 2, true, 0)), pending: true},
			{cmd: clockCmd(1000)}, // session 1 expires; l stays free until 1500
			{cmd: cs(3, 1, acquireCmd("l", 3, false, 0)), err: ErrLockHeld},
			{cmd: checkCmd("l", 1)},
			{cmd: clockCmd(1499)},
			{cmd: clockCmd(1500), answers: []wantAnswer{{client: 2, seq: 1, token: 2}}},
		}},
		{"lock-delay with nobody waiting keeps the lock free", SMOptions{}, []coordStep{
			{cmd: openCmd(1000)}, {cmd: openCmd(5000)}, {cmd: clockCmd(0)},
			{cmd: cs(1, 1, acquireCmd("l", 1, true, 60000)), token: 1},
			{cmd: clockCmd(1000)},
			{cmd: cs(2, 1, acquireCmd("l", 2, false, 0)), err: ErrLockHeld},
			{cmd: cs(2, 2, acquireCmd("l", 2, true, 0)), pending: true},
			{cmd: cs(2, 3, releaseCmd("l", 2)), answers: []wantAnswer{{client: 2, seq: 2, err: ErrCanceled}}},
			{cmd: cs(2, 4, keepCmd(2))},
			{cmd: clockCmd(5000)},
			{cmd: cs(2, 5, keepCmd(2))},
			{cmd: clockCmd(61000)}, // delay over, record collected
			{cmd: cs(2, 6, acquireCmd("l", 2, false, 0)), token: 2},
		}},
		{"no lock-delay after a release or a close", SMOptions{}, steps(threeSessions, []coordStep{
			{cmd: cs(1, 1, acquireCmd("l", 1, true, 60000)), token: 1},
			{cmd: cs(2, 1, acquireCmd("l", 2, true, 60000)), pending: true},
			{cmd: cs(3, 1, acquireCmd("l", 3, true, 60000)), pending: true},
			{cmd: cs(1, 2, releaseCmd("l", 1)), answers: []wantAnswer{{client: 2, seq: 1, token: 2}}},
			{cmd: cs(2, 2, closeCmd(2)), answers: []wantAnswer{{client: 3, seq: 1, token: 3}}},
		})},
		{"close releases everything without delay", SMOptions{}, steps(threeSessions, []coordStep{
			{cmd: cs(1, 1, acquireCmd("a", 1, true, 1000)), token: 1},
			{cmd: cs(1, 2, acquireCmd("b", 1, true, 1000)), token: 2},
			{cmd: cs(2, 1, acquireCmd("b", 2, true, 0)), pending: true},
			{cmd: cs(2, 2, acquireCmd("a", 2, true, 0)), pending: true},
			{cmd: cs(3, 1, acquireCmd("a", 3, true, 0)), pending: true},
			{cmd: cs(2, 3, acquireCmd("c", 2, true, 0)), token: 3},
			{cmd: cs(1, 3, acquireCmd("c", 1, true, 0)), pending: true},
			// Session 1 ends: its locks in name order (a to 2, b to 2),
			// then its waits (c: answered ErrSessionExpired).
			{cmd: cs(1, 4, closeCmd(1)), answers: []wantAnswer{
				{client: 2, seq: 2, token: 4}, {client: 2, seq: 1, token: 5}, {client: 1, seq: 3, err: ErrSessionExpired}}},
		})},
		{"a waiter whose session expires is answered ErrSessionExpired", SMOptions{}, []coordStep{
			{cmd: openCmd(10000)}, {cmd: openCmd(1000)}, {cmd: clockCmd(0)},
			{cmd: cs(1, 1, acquireCmd("l", 1, true, 0)), token: 1},
			{cmd: cs(2, 1, acquireCmd("l", 2, true, 0)), pending: true},
			{cmd: clockCmd(1000), answers: []wantAnswer{{client: 2, seq: 1, err: ErrSessionExpired}}},
			{cmd: cs(2, 1, acquireCmd("l", 2, true, 0)), err: ErrSessionExpired}, // the retry finds it
			{cmd: cs(1, 2, releaseCmd("l", 1))},
		}},
		{"a lock is never granted to a session expiring in the same clock step", SMOptions{}, []coordStep{
			{cmd: openCmd(1000)}, {cmd: openCmd(1000)}, {cmd: openCmd(5000)}, {cmd: clockCmd(0)},
			{cmd: cs(1, 1, acquireCmd("l", 1, true, 0)), token: 1},
			{cmd: cs(2, 1, acquireCmd("l", 2, true, 0)), pending: true},
			{cmd: cs(3, 1, acquireCmd("l", 3, true, 0)), pending: true},
			{cmd: clockCmd(1000), answers: []wantAnswer{{client: 2, seq: 1, err: ErrSessionExpired}, {client: 3, seq: 1, token: 2}}},
		}},
		{"lock check", SMOptions{}, steps(threeSessions, []coordStep{
			{cmd: checkCmd("l", 0)},
			{cmd: checkCmd("l", 1)},
			{cmd: cs(1, 1, acquireCmd("l", 1, false, 0)), token: 1},
			{cmd: checkCmd("l", 1), held: true},
			{cmd: cs(7, 1, checkCmd("l", 0))},
			{cmd: cs(1, 2, releaseCmd("l", 1))},
			{cmd: checkCmd("l", 1)},
			{cmd: cs(2, 1, acquireCmd("l", 2, false, 0)), token: 2},
			{cmd: checkCmd("l", 1)},
			{cmd: checkCmd("l", 2), held: true},
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runCoordSteps(t, tt.opts, tt.steps) })
	}
}

// TestLockInfo checks what ErrLockHeld, pending acquires and Locks report.
func TestLockInfo(t *testing.T) {
	h := newSMHarness(t, SMOptions{})
	for range 3 {
		h.do(openCmd(1000))
	}
	h.do(openCmd(60000))
	h.do(clockCmd(0))
	h.do(cs(1, 1, acquireCmd("b", 1, true, 700)))
	r := h.do(cs(2, 1, acquireCmd("b", 2, true, 0)))
	if !r.Pending || r.Lock.Holder != 1 || r.Lock.Token != 1 || !slices.Equal(r.Lock.Waiters, []uint64{2}) {
		t.Fatalf("pending acquire: %s", describeResult(r))
	}
	h.do(cs(3, 1, acquireCmd("b", 3, true, 0)))
	h.do(cs(3, 2, acquireCmd("a", 3, true, 0)))
	r = h.do(cs(4, 1, acquireCmd("b", 4, false, 0)))
	if !errors.Is(r.Err, ErrLockHeld) || r.Lock.Holder != 1 || !slices.Equal(r.Lock.Waiters, []uint64{2, 3}) {
		t.Fatalf("try-lock: %s", describeResult(r))
	}
	locks := h.sm.Locks()
	if len(locks) != 2 || locks[0].Name != "a" || locks[0].Holder != 3 || locks[1].Name != "b" || h.sm.LockCount() != 2 {
		t.Fatalf("locks %+v", locks)
	}
	// Modifying a returned LockInfo does not touch the state.
	locks[1].Waiters[0] = 99
	if l, _ := h.sm.Lock("b"); l.Waiters[0] != 2 {
		t.Fatalf("Locks shares its waiter slice with the state")
	}
	h.do(keepCmd(4))
	h.do(clockCmd(1000)) // 1, 2, 3 expire: b enters its 700 ms delay
	l, ok := h.sm.Lock("b")
	if !ok || l.Holder != 0 || l.DelayUntil != 1700 || l.Waiters != nil {
		t.Fatalf("b in delay: %+v", l)
	}
	r = h.do(cs(4, 2, acquireCmd("b", 4, false, 0)))
	if !errors.Is(r.Err, ErrLockHeld) || r.Lock.DelayUntil != 1700 {
		t.Fatalf("try-lock in delay: %s", describeResult(r))
	}
	if _, ok := h.sm.Lock("a"); ok {
		t.Fatalf("a survives its holder's expiry")
	}
	h.do(clockCmd(1700))
	if h.sm.LockCount() != 0 {
		t.Fatalf("b survives its delay: %+v", h.sm.Locks())
	}
}

// TestLockPendingResultKept: the stored Pending result of a waiting
// acquire survives ResultsPerClientMax, so a retry while it waits neither
// is refused as stale nor enqueues again, and a retry after the grant gets
// the grant.
func TestLockPendingResultKept(t *testing.T) {
	h := newSMHarness(t, SMOptions{ResultsPerClientMax: 2})
	h.do(openCmd(60000))
	h.do(openCmd(60000))
	h.do(cs(1, 1, acquireCmd("l", 1, false, 0)))
	if r := h.do(cs(2, 1, acquireCmd("l", 2, true, 0))); !r.Pending {
		t.Fatalf("acquire: %s", describeResult(r))
	}
	for seq := uint64(2); seq <= 6; seq++ {
		h.do(cs(2, seq, putCmd("k", "v")))
	}
	e := h.sm.dedup.clients[2]
	if e.floor != 6 || len(e.results) != 2 || !e.results[0].res.Pending || e.results[0].seq != 1 {
		t.Fatalf("floor %d, results %+v", e.floor, e.results)
	}
	if r := h.do(cs(2, 1, acquireCmd("l", 2, true, 0))); !r.Pending {
		t.Fatalf("retry while waiting: %s", describeResult(r))
	}
	if l, _ := h.sm.Lock("l"); !slices.Equal(l.Waiters, []uint64{2}) {
		t.Fatalf("waiters %v", l.Waiters)
	}
	if r := h.do(cs(2, 3, putCmd("k", "v"))); !errors.Is(r.Err, ErrStaleRequest) {
		t.Fatalf("a forgotten put: %s", describeResult(r))
	}
	h.do(cs(1, 2, releaseCmd("l", 1)))
	if a := h.sm.TakeAnswers(); len(a) != 1 || a[0].Result.Token != 2 {
		t.Fatalf("answers %s", describeAnswers(a))
	}
	// A retry after the grant gets the grant, though it is below the
	// floor.
	if r := h.do(cs(2, 1, acquireCmd("l", 2, true, 0))); r.Pending || r.Token != 2 {
		t.Fatalf("retry after the grant: %s", describeResult(r))
	}
	// Answered, the result is an ordinary one again and the oldest: the
	// bound forgets it next.
	h.do(cs(2, 7, putCmd("k", "v")))
	if len(e.results) != 2 || e.results[0].seq != 6 || e.floor != 6 {
		t.Fatalf("after the grant: floor %d, results %+v", e.floor, e.results)
	}
	if r := h.do(cs(2, 1, acquireCmd("l", 2, true, 0))); !errors.Is(r.Err, ErrStaleRequest) {
		t.Fatalf("retry of a forgotten grant: %s", describeResult(r))
	}
	// An acknowledgement drops a pending result like any other.
	h2 := newSMHarness(t, SMOptions{})
	h2.do(openCmd(60000))
	h2.do(openCmd(60000))
	h2.do(cs(1, 1, acquireCmd("l", 1, false, 0)))
	h2.do(cs(1, 3, acquireCmd("m", 1, false, 0)))
	h2.do(cs(2, 2, acquireCmd("m", 2, true, 0)))
	h2.do(fromClient(2, 3, 3, putCmd("k", "v")))
	if r := h2.do(cs(2, 2, acquireCmd("m", 2, true, 0))); !errors.Is(r.Err, ErrStaleRequest) {
		t.Fatalf("retry of an acknowledged wait: %s", describeResult(r))
	}
	h2.do(cs(1, 4, releaseCmd("m", 1)))
	if a := h2.sm.TakeAnswers(); len(a) != 1 || a[0].ClientID != 2 || a[0].Seq != 2 || a[0].Result.Token != 3 {
		t.Fatalf("answers %s", describeAnswers(a))
	}
}

// TestFence: a fenced write succeeds only while its lock is held with
// exactly its token, and a refused one changes nothing.
func TestFence(t *testing.T) {
	h := runCoordSteps(t, SMOptions{}, steps(threeSessions, []coordStep{
		{cmd: fenced(putCmd("k", "x"), "l", 1), err: ErrFenced}, // not held
		{cmd: cs(1, 1, acquireCmd("l", 1, false, 0)), token: 1},
		{cmd: fenced(putCmd("k", "1"), "l", 1)},
		{cmd: fenced(putCmd("k", "x"), "l", 2), err: ErrFenced},
		{cmd: fenced(putCmd("k", "x"), "m", 1), err: ErrFenced}, // another lock
		{cmd: fenced(casValueCmd("k", "1", "2"), "l", 1)},
		{cmd: fenced(casValueCmd("k", "2", "x"), "l", 0), err: ErrFenced},
		{cmd: cs(1, 2, releaseCmd("l", 1))},
		{cmd: cs(2, 1, acquireCmd("l", 2, false, 0)), token: 2},
		{cmd: fenced(putCmd("k", "x"), "l", 1), err: ErrFenced}, // the stale holder
		{cmd: fenced(delCmd("k"), "l", 1), err: ErrFenced},
		{cmd: cs(5, 1, fenced(delCmd("k"), "l", 1)), err: ErrFenced},
		{cmd: cs(5, 1, fenced(delCmd("k"), "l", 1)), err: ErrFenced}, // retry: stored
		{cmd: fenced(putCmd("k", "3"), "l", 2)},
	}))
	kv, _ := h.sm.Get("k")
	if string(kv.Value) != "3" || kv.Version != 3 || h.sm.Revision() != 3 {
		t.Fatalf("k = %s at revision %d", describeKV(kv), h.sm.Revision())
	}
	if r := h.do(fenced(delCmd("k"), "l", 2)); r.Err != nil || h.sm.Revision() != 4 {
		t.Fatalf("fenced delete: %s", describeResult(r))
	}
}
