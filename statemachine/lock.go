package statemachine

import (
	"fmt"
	"slices"
)

// LockInfo describes a lock.
type LockInfo struct {
	Name string
	// Holder is the session holding it (0 = free) and Token the fencing
	// token of that grant.
	Holder uint64
	Token  uint64
	// Waiters are the sessions waiting for it, in the order they will be
	// served.
	Waiters []uint64
	// DelayUntil, while a lock-delay keeps the lock free after its
	// holder's session expired, is the cluster time (ms) until which it is
	// not granted; 0 = none.
	DelayUntil uint64
}

// lock is the state of one lock name.
//
// Invariants: holder == 0 iff token == 0; holder == 0 with waiters only
// while delayUntil != 0 (a free lock out of its delay is granted at once);
// delayUntil != 0 implies holder == 0 and delayUntil > the clock after
// every command; a free lock with no waiters and no delay does not exist
// (its record is deleted: the global fence counter keeps its tokens
// growing); every waiter's session is open and waits only once.
type lock struct {
	name        string
	holder      uint64 // session, 0 = free
	token       uint64
	holderDelay uint64 // the holder's LockDelayMs, applied if its session expires
	waiters     []lockWaiter
	delayUntil  uint64 // cluster ms; 0 = not in a lock-delay
}

// lockWaiter is a waiting acquire: its session, the (ClientID, Seq) of the
// request to answer when it is granted, and its lock-delay.
type lockWaiter struct {
	session, client, seq, delay uint64
}

// lockTable holds the locks that are held, waited for or in a lock-delay.
//
// Invariant: delayed holds exactly the names of the locks with delayUntil
// != 0.
type lockTable struct {
	m       map[string]*lock
	delayed map[string]struct{}
}

func newLockTable() lockTable {
	return lockTable{m: make(map[string]*lock), delayed: make(map[string]struct{})}
}

func (l *lock) info() LockInfo {
	li := LockInfo{Name: l.name, Holder: l.holder, Token: l.token, DelayUntil: l.delayUntil}
	if len(l.waiters) > 0 {
		li.Waiters = make([]uint64, len(l.waiters))
		for i, w := range l.waiters {
			li.Waiters[i] = w.session
		}
	}
	return li
}

func (l *lock) waiterIndex(session uint64) int {
	return slices.IndexFunc(l.waiters, func(w lockWaiter) bool { return w.session == session })
}

// removeWaiter takes session's entry out of the queue and returns it; the
// session must be waiting.
func (l *lock) removeWaiter(session uint64) lockWaiter {
	i := l.waiterIndex(session)
	if i < 0 {
		panic(fmt.Sprintf("service: session %d is not waiting for lock %q", session, l.name))
	}
	w := l.waiters[i]
	l.waiters = slices.Delete(l.waiters, i, i+1)
	return w
}

func (sm *StateMachine) lockAcquire(c *Command) Result {
	s := sm.liveSession(c.SessionID)
	if s == nil {
		return Result{Err: errNoSession(c.SessionID), Revision: sm.kv.rev}
	}
	l := sm.locks.m[c.Name]
	if l == nil {
		l = &lock{name: c.Name}
		sm.locks.m[c.Name] = l
	}
	if l.holder == s.id {
		return Result{Revision: sm.kv.rev, Token: l.token, Lock: l.info()}
	}
	if l.holder == 0 && len(l.waiters) == 0 && l.delayUntil == 0 {
		token := sm.grant(l, s, c.LockDelayMs)
		return Result{Revision: sm.kv.rev, Token: token, Lock: l.info()}
	}
	if !c.Wait {
		return Result{Err: lockHeldErr(l, sm.clock), Revision: sm.kv.rev, Lock: l.info()}
	}
	if _, waiting := s.waits[l.name]; waiting {
		// The session waits already: one entry, answering the newest
		// request. An older, different request is withdrawn.
		w := &l.waiters[l.waiterIndex(s.id)]
		old := *w
		w.client, w.seq, w.delay = c.ClientID, c.Seq, c.LockDelayMs
		if old.client != c.ClientID || old.seq != c.Seq {
			sm.answer(old.client, old.seq, Result{
				Err:      fmt.Errorf("%w: a newer acquire of lock %q by session %d replaced this one", ErrCanceled, l.name, s.id),
				Revision: sm.kv.rev,
			})
		}
	} else {
		l.waiters = append(l.waiters, lockWaiter{session: s.id, client: c.ClientID, seq: c.Seq, delay: c.LockDelayMs})
		add(&s.waits, l.name)
	}
	return Result{Revision: sm.kv.rev, Pending: true, Lock: l.info()}
}

func lockHeldErr(l *lock, clock uint64) error {
	if l.holder != 0 {
		return fmt.Errorf("%w: lock %q is held by session %d", ErrLockHeld, l.name, l.holder)
	}
	if l.delayUntil != 0 {
		return fmt.Errorf("%w: lock %q is in its lock-delay for %d ms more (its holder's session expired)", ErrLockHeld, l.name, l.delayUntil-min(clock, l.delayUntil))
	}
	return fmt.Errorf("%w: lock %q has %d waiters", ErrLockHeld, l.name, len(l.waiters))
}

// grant gives l to s with a new fencing token.
func (sm *StateMachine) grant(l *lock, s *session, delay uint64) uint64 {
	sm.fence++
	l.holder, l.token, l.holderDelay = s.id, sm.fence, delay
	add(&s.locks, l.name)
	return sm.fence
}

func (sm *StateMachine) lockRelease(c *Command) Result {
	s := sm.liveSession(c.SessionID)
	if s == nil {
		return Result{Err: errNoSession(c.SessionID), Revision: sm.kv.rev}
	}
	l := sm.locks.m[c.Name]
	_, waiting := s.waits[c.Name]
	switch {
	case l != nil && l.holder == s.id:
		sm.releaseHeld(l, false)
		return Result{Revision: sm.kv.rev}
	case waiting:
		w := l.removeWaiter(s.id)
		delete(s.waits, l.name)
		sm.answer(w.client, w.seq, Result{
			Err:      fmt.Errorf("%w: session %d stopped waiting for lock %q", ErrCanceled, s.id, l.name),
			Revision: sm.kv.rev,
		})
		sm.gcLock(l)
		return Result{Revision: sm.kv.rev}
	}
	return Result{Err: fmt.Errorf("%w: session %d neither holds nor waits for lock %q", ErrNotHeld, s.id, c.Name), Revision: sm.kv.rev}
}

// releaseHeld frees l from its holder. After an expiry (expired) the
// holder's lock-delay, if any, keeps it free for that long; otherwise the
// next waiter gets it at once.
func (sm *StateMachine) releaseHeld(l *lock, expired bool) {
	if s := sm.sessions.m[l.holder]; s != nil {
		delete(s.locks, l.name)
	}
	delay := l.holderDelay
	l.holder, l.token, l.holderDelay = 0, 0, 0
	if expired && delay > 0 {
		l.delayUntil = sm.clock + delay
		sm.locks.delayed[l.name] = struct{}{}
		return
	}
	sm.grantNext(l)
}

// grantNext gives the free lock l to its first waiter whose session is not
// ending (a waiter whose session is ending is answered ErrSessionExpired),
// or deletes it if nobody waits.
func (sm *StateMachine) grantNext(l *lock) {
	for len(l.waiters) > 0 {
		w := l.waiters[0]
		l.waiters = l.waiters[1:] // no pointers inside: nothing to clear
		if len(l.waiters) == 0 {
			l.waiters = nil
		}
		s := sm.sessions.m[w.session]
		if s != nil {
			delete(s.waits, l.name)
		}
		if sm.dying(s) {
			sm.answer(w.client, w.seq, Result{Err: sessionEndedErr(w.session, true, "lock "+quote(l.name)), Revision: sm.kv.rev})
			continue
		}
		token := sm.grant(l, s, w.delay)
		sm.answer(w.client, w.seq, Result{Revision: sm.kv.rev, Token: token, Lock: l.info()})
		return
	}
	sm.gcLock(l)
}

// gcLock deletes l's record if it is free, unwaited and out of any delay.
func (sm *StateMachine) gcLock(l *lock) {
	if l.holder == 0 && len(l.waiters) == 0 && l.delayUntil == 0 {
		delete(sm.locks.m, l.name)
	}
}

// endDelays ends, in name order, the lock-delays that the clock has
// reached, granting those locks to their waiters.
func (sm *StateMachine) endDelays() {
	if len(sm.locks.delayed) == 0 {
		return
	}
	for _, name := range sortedKeys(sm.locks.delayed) {
		l := sm.locks.m[name]
		if l.delayUntil > sm.clock {
			continue
		}
		delete(sm.locks.delayed, name)
		l.delayUntil = 0
		sm.grantNext(l)
	}
}

func (sm *StateMachine) lockCheck(c *Command) Result {
	l := sm.locks.m[c.Name]
	if l == nil {
		return Result{Revision: sm.kv.rev, Lock: LockInfo{Name: c.Name}}
	}
	return Result{Revision: sm.kv.rev, Held: l.holder != 0 && l.token == c.Token, Lock: l.info()}
}

// checkFence returns ErrFenced unless lock name is held with token.
func (sm *StateMachine) checkFence(name string, token uint64) error {
	l := sm.locks.m[name]
	switch {
	case l == nil || l.holder == 0:
		return fmt.Errorf("%w: lock %q is not held (token %d)", ErrFenced, name, token)
	case l.token != token:
		return fmt.Errorf("%w: lock %q is held with token %d, not %d", ErrFenced, name, l.token, token)
	}
	return nil
}

// Locks returns the locks that are held, waited for or in a lock-delay,
// sorted by name, as of the applied state (a local read).
func (sm *StateMachine) Locks() []LockInfo {
	names := sortedKeys(sm.locks.m)
	out := make([]LockInfo, len(names))
	for i, name := range names {
		out[i] = sm.locks.m[name].info()
	}
	return out
}

// Lock returns lock name's state; false if it is free with nobody waiting.
func (sm *StateMachine) Lock(name string) (LockInfo, bool) {
	l := sm.locks.m[name]
	if l == nil {
		return LockInfo{}, false
	}
	return l.info(), true
}

// LockCount returns the number of locks held, waited for or in a
// lock-delay.
func (sm *StateMachine) LockCount() int { return len(sm.locks.m) }
