package statemachine

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// Commands of the coordination primitives, for tests.
func openCmd(ttl uint64) Command { return Command{Op: OpSessionOpen, TTLMs: ttl} }
func keepCmd(sid uint64) Command { return Command{Op: OpSessionKeepAlive, SessionID: sid} }
func closeCmd(sid uint64) Command {
	return Command{Op: OpSessionClose, SessionID: sid}
}
func acquireCmd(name string, sid uint64, wait bool, delay uint64) Command {
	return Command{Op: OpLockAcquire, Name: name, SessionID: sid, Wait: wait, LockDelayMs: delay}
}
func releaseCmd(name string, sid uint64) Command {
	return Command{Op: OpLockRelease, Name: name, SessionID: sid}
}
func checkCmd(name string, token uint64) Command {
	return Command{Op: OpLockCheck, Name: name, Token: token}
}
func campaignCmd(name string, sid uint64, value string) Command {
	return Command{Op: OpCampaign, Name: name, SessionID: sid, Value: []byte(value)}
}
func proclaimCmd(name string, sid uint64, value string) Command {
	return Command{Op: OpProclaim, Name: name, SessionID: sid, Value: []byte(value)}
}
func resignCmd(name string, sid uint64) Command {
	return Command{Op: OpResign, Name: name, SessionID: sid}
}
func leaderCmd(name string) Command { return Command{Op: OpLeader, Name: name} }
func clockCmd(now uint64) Command   { return Command{Op: OpClock, Now: now} }
func fenced(c Command, name string, token uint64) Command {
	c.FenceName, c.FenceToken = name, token
	return c
}

// coordStep is one command of a scripted coordination test: the result it
// must give (error class, token, pending, held) and the late answers it
// must produce, in order.
type coordStep struct {
	cmd     Command
	err     error
	token   uint64
	pending bool
	held    bool
	answers []wantAnswer
}

type wantAnswer struct {
	client, seq uint64
	err         error
	token       uint64
}

// c1 etc. give a command a client and sequence number.
func cs(client, seq uint64, c Command) Command { return fromClient(client, seq, 0, c) }

func runCoordSteps(t *testing.T, opts SMOptions, steps []coordStep) *smHarness {
	t.Helper()
	h := newSMHarness(t, opts)
	for i, s := range steps {
		r := h.do(s.cmd)
		if errClass(r.Err) != s.err || r.Token != s.token || r.Pending != s.pending || r.Held != s.held {
			t.Fatalf("step %d %s:\n got  %s\n want err=%v token=%d pending=%v held=%v", i, s.cmd.String(), describeResult(r), s.err, s.token, s.pending, s.held)
		}
		got := h.sm.TakeAnswers()
		if len(got) != len(s.answers) {
			t.Fatalf("step %d %s: answers %s, want %v", i, s.cmd.String(), describeAnswers(got), s.answers)
		}
		for j, w := range s.answers {
			a := got[j]
			if a.ClientID != w.client || a.Seq != w.seq || errClass(a.Result.Err) != w.err || a.Result.Token != w.token || a.Result.Pending {
				t.Fatalf("step %d %s: answer %d is %s, want %+v", i, s.cmd.String(), j, describeAnswers(got[j:j+1]), w)
			}
		}
		checkCoordInvariants(t, h.sm)
	}
	return h
}

func describeAnswers(as []Answer) string {
	s := "["
	for i, a := range as {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%d/%d:%s", a.ClientID, a.Seq, describeResult(a.Result))
	}
	return s + "]"
}

func TestSessionOpenKeepAliveExpire(t *testing.T) {
	h := runCoordSteps(t, SMOptions{}, []coordStep{
		{cmd: cs(1, 1, openCmd(1000))}, // session 1
		{cmd: cs(1, 2, openCmd(5000))}, // session 2
		{cmd: clockCmd(0)},             // deadlines 1000 and 5000
		{cmd: clockCmd(800)},
		{cmd: cs(1, 3, keepCmd(1))},
		{cmd: clockCmd(900)},  // session 1: deadline 1900
		{cmd: clockCmd(1000)}, // would have expired without the keep-alive
		{cmd: clockCmd(500)},  // the clock never goes back
		{cmd: cs(1, 4, keepCmd(1))},
		{cmd: clockCmd(1000)}, // session 1: deadline 2000
		{cmd: clockCmd(1999)},
		{cmd: cs(1, 5, keepCmd(2))},
		{cmd: clockCmd(2000)}, // session 1 expires; session 2: deadline 7000
		{cmd: cs(1, 6, keepCmd(1)), err: ErrSessionExpired},
		{cmd: cs(1, 7, closeCmd(1)), err: ErrSessionExpired},
		{cmd: cs(1, 8, openCmd(1000))}, // session 3: ids are never reused
		{cmd: cs(1, 9, closeCmd(3))},
		{cmd: cs(1, 10, keepCmd(3)), err: ErrSessionExpired},
		{cmd: cs(1, 11, keepCmd(99)), err: ErrSessionExpired},
	})
	if got := h.sm.Sessions(); len(got) != 1 || got[0].ID != 2 || got[0].TTLMs != 5000 || got[0].RemainingMs != 5000 {
		t.Fatalf("sessions %+v, want only session 2 with 5000 ms left", got)
	}
	if h.sm.Clock() != 2000 || h.sm.SessionCount() != 1 {
		t.Fatalf("clock %d, %d sessions", h.sm.Clock(), h.sm.SessionCount())
	}
}

// TestSessionDeadlineFromNextClock: a session's TTL counts from the first
// clock command after its open or keep-alive, whose Now the leader read
// after receiving it, not from the clock already applied, which may lag:
// the cluster never expires a session before a client counting from when
// it sent the keep-alive gives up on it.
func TestSessionDeadlineFromNextClock(t *testing.T) {
	h := newSMHarness(t, SMOptions{})
	h.do(clockCmd(5000))
	h.do(openCmd(1000))
	if s, _ := h.sm.Session(1); s.RemainingMs != 1000 {
		t.Fatalf("remaining %d right after the open", s.RemainingMs)
	}
	h.do(clockCmd(5100)) // the deadline is 6100, not 6000
	h.do(clockCmd(6000))
	if h.sm.SessionCount() != 1 {
		t.Fatalf("expired 1000 ms after the clock applied before the open, not after the first one after it")
	}
	h.do(clockCmd(6100))
	if h.sm.SessionCount() != 0 {
		t.Fatalf("alive past its deadline")
	}
	// A jump right after a keep-alive restarts the deadline from the
	// jump (the keep-alive came just before); the next one expires it.
	h.do(openCmd(1000))
	h.do(clockCmd(1 << 40))
	if h.sm.SessionCount() != 1 {
		t.Fatalf("expired by the clock command that followed its open")
	}
	h.do(clockCmd(1<<40 + 1000))
	if h.sm.SessionCount() != 0 {
		t.Fatalf("alive past its deadline")
	}
	// Several keep-alives between two clock commands, and a close in
	// between, are fine.
	h.do(openCmd(2000)) // 3
	h.do(openCmd(2000)) // 4
	h.do(keepCmd(3))
	h.do(keepCmd(3))
	h.do(closeCmd(4))
	h.do(keepCmd(3))
	h.do(clockCmd(1<<40 + 1500))
	if s, ok := h.sm.Session(3); !ok || s.RemainingMs != 2000 || len(h.sm.sessions.renewed) != 0 {
		t.Fatalf("session 3: %+v, %v; renewed %v", s, ok, h.sm.sessions.renewed)
	}
	checkCoordInvariants(t, h.sm)
}

// TestSessionResults checks the SessionInfo of open, keep-alive and close,
// and that a retried keep-alive does not extend the TTL again.
func TestSessionResults(t *testing.T) {
	h := newSMHarness(t, SMOptions{})
	h.do(clockCmd(100))
	r := h.do(cs(1, 1, openCmd(3000)))
	if r.Err != nil || r.Session.ID != 1 || r.Session.TTLMs != 3000 || r.Session.RemainingMs != 3000 {
		t.Fatalf("open: %s", describeResult(r))
	}
	h.do(clockCmd(1100)) // deadline 4100
	r = h.do(cs(1, 2, keepCmd(1)))
	if r.Err != nil || r.Session.RemainingMs != 3000 {
		t.Fatalf("keep-alive: %s", describeResult(r))
	}
	h.do(clockCmd(2100)) // deadline 5100
	if r2 := h.do(cs(1, 2, keepCmd(1))); !resultEqual(r2, r) {
		t.Fatalf("retried keep-alive: %s, want the first answer %s", describeResult(r2), describeResult(r))
	}
	h.do(clockCmd(3100))
	if s, ok := h.sm.Session(1); !ok || s.RemainingMs != 2000 {
		t.Fatalf("a retried keep-alive extended the session: %+v", s)
	}
	h.do(cs(1, 3, acquireCmd("b", 1, false, 0)))
	h.do(cs(1, 4, acquireCmd("a", 1, false, 0)))
	h.do(cs(1, 5, campaignCmd("e", 1, "v")))
	if s, _ := h.sm.Session(1); !slices.Equal(s.Locks, []string{"a", "b"}) || !slices.Equal(s.Elections, []string{"e"}) || s.Waiting != nil {
		t.Fatalf("session holdings %+v", s)
	}
	r = h.do(cs(1, 6, closeCmd(1)))
	if r.Err != nil || r.Session.ID != 1 || !slices.Equal(r.Session.Locks, []string{"a", "b"}) || r.Session.RemainingMs != 0 {
		t.Fatalf("close: %s", describeResult(r))
	}
	if h.sm.LockCount() != 0 || h.sm.SessionCount() != 0 {
		t.Fatalf("close left %d locks, %d sessions", h.sm.LockCount(), h.sm.SessionCount())
	}
	if _, ok := h.sm.LeaderOf("e"); ok {
		t.Fatalf("closed session still leads")
	}
}

// TestSessionTTLBounds: TTLs outside 1 s .. 1 h are refused with a message
// that names the range.
func TestSessionTTLBounds(t *testing.T) {
	h := newSMHarness(t, SMOptions{})
	for _, ttl := range []uint64{0, 1, 999, 3600001, 1 << 63} {
		r := h.do(openCmd(ttl))
		if !errors.Is(r.Err, ErrInvalid) || !strings.Contains(r.Err.Error(), "1000..3600000 ms") {
			t.Fatalf("TTL %d: %v", ttl, r.Err)
		}
	}
	for _, ttl := range []uint64{1000, 3600000} {
		if r := h.do(openCmd(ttl)); r.Err != nil {
			t.Fatalf("TTL %d: %v", ttl, r.Err)
		}
	}
}

// TestSessionClockNotAdvanced: without clock commands nothing expires,
// however many other commands are applied.
func TestSessionClockNotAdvanced(t *testing.T) {
	h := newSMHarness(t, SMOptions{})
	h.do(openCmd(1000))
	h.do(cs(1, 1, acquireCmd("l", 1, false, 0)))
	for i := 0; i < 5000; i++ {
		h.do(putCmd("k", "v"))
	}
	h.do(clockCmd(999))
	if h.sm.SessionCount() != 1 || h.sm.LockCount() != 1 {
		t.Fatalf("session expired without its TTL passing on the cluster clock")
	}
	// A jump of the clock expires it at once.
	h.do(clockCmd(1 << 40))
	if h.sm.SessionCount() != 0 || h.sm.LockCount() != 0 {
		t.Fatalf("clock jump: %d sessions, %d locks left", h.sm.SessionCount(), h.sm.LockCount())
	}
	if h.sm.Clock() != 1<<40 {
		t.Fatalf("clock %d", h.sm.Clock())
	}
}

// TestSessionExpiryOrder: the sessions a clock command expires end in id
// order, whatever their deadlines, and everything they held is released.
func TestSessionExpiryOrder(t *testing.T) {
	h := newSMHarness(t, SMOptions{})
	h.do(openCmd(3000)) // 1: deadline 3000
	h.do(openCmd(1000)) // 2: deadline 1000
	h.do(openCmd(2000)) // 3: deadline 2000
	h.do(openCmd(9000)) // 4
	h.do(clockCmd(0))
	// Sessions 1..3 each hold a lock the others wait for, so the order of
	// the expiries shows in the answers.
	h.do(cs(1, 1, acquireCmd("a", 1, true, 0)))
	h.do(cs(2, 1, acquireCmd("b", 2, true, 0)))
	h.do(cs(3, 1, acquireCmd("c", 3, true, 0)))
	h.do(cs(4, 1, acquireCmd("a", 4, true, 0)))
	h.do(cs(4, 2, acquireCmd("b", 4, true, 0)))
	h.do(cs(4, 3, acquireCmd("c", 4, true, 0)))
	h.sm.TakeAnswers()
	h.do(clockCmd(5000))
	got := h.sm.TakeAnswers()
	want := []uint64{1, 2, 3} // acquires of a (session 1's), b, c in session id order
	if len(got) != 3 {
		t.Fatalf("answers %s", describeAnswers(got))
	}
	for i, a := range got {
		if a.ClientID != 4 || a.Seq != want[i] || a.Result.Err != nil || a.Result.Token != uint64(4+i) {
			t.Fatalf("answers %s, want grants to 4/1, 4/2, 4/3 with tokens 4, 5, 6", describeAnswers(got))
		}
	}
	checkCoordInvariants(t, h.sm)
}

// checkCoordInvariants checks the invariants of sessions, locks and
// elections that hold after every command.
func checkCoordInvariants(t testing.TB, sm *StateMachine) {
	t.Helper()
	st := &sm.sessions
	if len(st.m) != len(st.byDeadline) {
		t.Fatalf("%d sessions, %d in the deadline heap", len(st.m), len(st.byDeadline))
	}
	for i, s := range st.byDeadline {
		if s.heapIndex != i || st.m[s.id] != s {
			t.Fatalf("deadline heap out of sync at %d", i)
		}
	}
	renewed := map[uint64]bool{}
	for _, id := range st.renewed {
		if renewed[id] || st.m[id] == nil || !st.m[id].renew {
			t.Fatalf("renewed list %v: bad entry %d", st.renewed, id)
		}
		renewed[id] = true
	}
	holds := map[string]uint64{}
	for id, s := range st.m {
		if s.id != id || id > st.last || s.ending {
			t.Fatalf("session %d: bad record %+v (last %d)", id, s, st.last)
		}
		if s.renew != renewed[id] {
			t.Fatalf("session %d: renew %v, in the renewed list %v", id, s.renew, renewed[id])
		}
		if s.deadline <= sm.clock {
			t.Fatalf("session %d: deadline %d not after the clock %d", id, s.deadline, sm.clock)
		}
		for name := range s.locks {
			if other, ok := holds[name]; ok {
				t.Fatalf("lock %q held by sessions %d and %d", name, other, id)
			}
			holds[name] = id
			if l := sm.locks.m[name]; l == nil || l.holder != id {
				t.Fatalf("session %d thinks it holds %q: %+v", id, name, l)
			}
		}
		for name := range s.waits {
			if l := sm.locks.m[name]; l == nil || l.waiterIndex(id) < 0 {
				t.Fatalf("session %d thinks it waits for %q", id, name)
			}
		}
		for name := range s.elections {
			e := sm.elect.m[name]
			if e == nil || e.leader != id && e.candidateIndex(id) < 0 {
				t.Fatalf("session %d thinks it is in election %q", id, name)
			}
		}
	}
	for name, l := range sm.locks.m {
		if l.name != name {
			t.Fatalf("lock %q named %q", name, l.name)
		}
		if (l.holder == 0) != (l.token == 0) {
			t.Fatalf("lock %q: holder %d token %d", name, l.holder, l.token)
		}
		if l.holder != 0 && holds[name] != l.holder {
			t.Fatalf("lock %q: holder %d does not know", name, l.holder)
		}
		if l.holder != 0 && l.token > sm.fence {
			t.Fatalf("lock %q: token %d above the fence counter %d", name, l.token, sm.fence)
		}
		if l.delayUntil != 0 && (l.holder != 0 || l.delayUntil <= sm.clock) {
			t.Fatalf("lock %q: delay until %d, holder %d, clock %d", name, l.delayUntil, l.holder, sm.clock)
		}
		if _, ok := sm.locks.delayed[name]; ok != (l.delayUntil != 0) {
			t.Fatalf("lock %q: delayed set out of sync", name)
		}
		if l.holder == 0 && len(l.waiters) > 0 && l.delayUntil == 0 {
			t.Fatalf("lock %q is free, out of delay, with waiters", name)
		}
		if l.holder == 0 && len(l.waiters) == 0 && l.delayUntil == 0 {
			t.Fatalf("lock %q: free record not collected", name)
		}
		seen := map[uint64]bool{}
		for _, w := range l.waiters {
			s := st.m[w.session]
			if s == nil || seen[w.session] || w.session == l.holder {
				t.Fatalf("lock %q: bad waiter %+v", name, w)
			}
			if _, ok := s.waits[name]; !ok {
				t.Fatalf("lock %q: waiter %d does not know", name, w.session)
			}
			seen[w.session] = true
		}
	}
	if len(sm.locks.delayed) > len(sm.locks.m) {
		t.Fatalf("delayed set larger than the lock table")
	}
	for name, e := range sm.elect.m {
		if e.leader == 0 && (len(e.candidates) > 0 || e.term != 0) {
			t.Fatalf("election %q: no leader but %d candidates, term %d", name, len(e.candidates), e.term)
		}
		if e.leader != 0 {
			s := st.m[e.leader]
			if s == nil || e.term == 0 || e.term > sm.fence {
				t.Fatalf("election %q: bad leader %d term %d", name, e.leader, e.term)
			}
			if _, ok := s.elections[name]; !ok {
				t.Fatalf("election %q: leader %d does not know", name, e.leader)
			}
		}
		seen := map[uint64]bool{}
		for _, c := range e.candidates {
			s := st.m[c.session]
			if s == nil || seen[c.session] || c.session == e.leader {
				t.Fatalf("election %q: bad candidate %+v", name, c)
			}
			if _, ok := s.elections[name]; !ok {
				t.Fatalf("election %q: candidate %d does not know", name, c.session)
			}
			seen[c.session] = true
		}
		if last, ok := e.history.last(); !ok || last.Seq != e.seq || last.Session != e.leader || last.Term != e.term {
			t.Fatalf("election %q: latest change %+v, state leader %d term %d seq %d", name, last, e.leader, e.term, e.seq)
		}
	}
}
