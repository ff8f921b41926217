package statemachine

import (
	"container/heap"
	"fmt"
	"slices"
)

// SessionInfo describes a session.
type SessionInfo struct {
	ID uint64
	// TTLMs is the session's time to live; RemainingMs what is left of it
	// on the cluster clock (the state machine's Clock) before it expires.
	TTLMs       uint64
	RemainingMs uint64
	// Locks are the locks it holds, Waiting those it waits for, and
	// Elections those it leads or campaigns in; each sorted.
	Locks     []string
	Waiting   []string
	Elections []string
}

// session is one open session.
//
// Its deadline counts from the first clock command applied after its open
// or latest keep-alive (renew marks a session waiting for that command; its
// deadline meanwhile is clock + ttl, provisionally). The clock applied when
// a keep-alive arrives may lag real time by up to one clock interval and a
// commit, so counting from it could expire a session before the client,
// counting the TTL from when it sent the keep-alive, gives up on it; a clock
// command that comes after the keep-alive in the log was proposed after the
// leader received it, so its Now is a later reading.
//
// Invariants: deadline > the clock after every command (sessions with an
// earlier deadline are expired by the clock command that passes it); renew
// iff the id is in sessionTable.renewed; locks
// holds exactly the names of the locks whose holder is id, waits those
// with a waiter of id, elections those where id leads or is a candidate.
type session struct {
	id       uint64
	ttl      uint64 // ms
	deadline uint64 // cluster ms
	// owner is the user that opened it (from LevelAuth on, when its
	// client had authenticated; "" otherwise): only that user or root may
	// use it (service/auth.go).
	owner string
	// ending is set while the session's holdings are being released, so
	// that nothing is granted to it meanwhile.
	ending    bool
	renew     bool
	heapIndex int // position in sessionTable.byDeadline, -1 when out
	// locks, waits and elections are nil until the session first holds,
	// waits for or campaigns in something (add): most sessions of a large
	// population hold nothing, and three empty maps each would triple
	// the objects the garbage collector scans (at 300,000 sessions, most
	// of a leader's CPU). Reading, ranging over and deleting from a nil
	// map need no check.
	locks     map[string]struct{}
	waits     map[string]struct{}
	elections map[string]struct{}
}

// add puts name into *set, making the map on first use.
func add(set *map[string]struct{}, name string) {
	if *set == nil {
		*set = map[string]struct{}{}
	}
	(*set)[name] = struct{}{}
}

// sessionTable holds the open sessions.
//
// Invariants: m and byDeadline hold the same sessions; byDeadline is a
// min-heap on (deadline, id); last >= every id ever given (ids are never
// reused); renewed lists, in the order of their renewal, the open sessions
// with renew set.
type sessionTable struct {
	last       uint64
	m          map[uint64]*session
	byDeadline sessionHeap
	renewed    []uint64
}

func newSessionTable() sessionTable { return sessionTable{m: make(map[uint64]*session)} }

func (s *session) info(clock uint64) SessionInfo {
	si := SessionInfo{ID: s.id, TTLMs: s.ttl}
	if s.deadline > clock {
		si.RemainingMs = s.deadline - clock
	}
	si.Locks = sortedKeysOrNil(s.locks)
	si.Waiting = sortedKeysOrNil(s.waits)
	si.Elections = sortedKeysOrNil(s.elections)
	return si
}

func sortedKeysOrNil(m map[string]struct{}) []string {
	if len(m) == 0 {
		return nil
	}
	return sortedKeys(m)
}

// errNoSession is the error for a command naming session id, which does
// not exist.
func errNoSession(id uint64) error {
	return fmt.Errorf("%w: session %d does not exist (expired, closed, or never opened)", ErrSessionExpired, id)
}

// liveSession returns session id, or nil.
func (sm *StateMachine) liveSession(id uint64) *session { return sm.sessions.m[id] }

// dying reports whether s must not be granted anything: it is being ended,
// or its deadline has passed and the clock command now applying will
// expire it.
func (sm *StateMachine) dying(s *session) bool {
	return s == nil || s.ending || s.deadline <= sm.clock
}

func (sm *StateMachine) sessionOpen(c *Command) Result {
	t := &sm.sessions
	t.last++
	s := &session{
		id: t.last, ttl: c.TTLMs, deadline: sm.clock + c.TTLMs,
	}
	if sm.level >= LevelAuth {
		s.owner = c.User
	}
	t.m[s.id] = s
	heap.Push(&t.byDeadline, s)
	t.markRenewed(s)
	return Result{Revision: sm.kv.rev, Session: s.info(sm.clock)}
}

func (sm *StateMachine) sessionKeepAlive(c *Command) Result {
	s := sm.liveSession(c.SessionID)
	if s == nil {
		return Result{Err: errNoSession(c.SessionID), Revision: sm.kv.rev}
	}
	s.deadline = sm.clock + s.ttl
	heap.Fix(&sm.sessions.byDeadline, s.heapIndex)
	sm.sessions.markRenewed(s)
	return Result{Revision: sm.kv.rev, Session: s.info(sm.clock)}
}

// markRenewed makes the next clock command restart s's deadline.
func (t *sessionTable) markRenewed(s *session) {
	if !s.renew {
		s.renew = true
		t.renewed = append(t.renewed, s.id)
	}
}

// restartRenewed sets the deadline of the sessions opened or kept alive
// since the last clock command to the clock (just advanced) plus their
// TTL.
func (sm *StateMachine) restartRenewed() {
	t := &sm.sessions
	for _, id := range t.renewed {
		s := t.m[id]
		if s == nil || !s.renew {
			continue // closed since
		}
		s.renew = false
		if d := sm.clock + s.ttl; d > s.deadline {
			s.deadline = d
			heap.Fix(&t.byDeadline, s.heapIndex)
		}
	}
	t.renewed = t.renewed[:0]
}

func (sm *StateMachine) sessionClose(c *Command) Result {
	s := sm.liveSession(c.SessionID)
	if s == nil {
		return Result{Err: errNoSession(c.SessionID), Revision: sm.kv.rev}
	}
	info := s.info(sm.clock)
	sm.endSession(s, false)
	info.RemainingMs = 0
	return Result{Revision: sm.kv.rev, Session: info}
}

// endSession ends s, closed (expired false) or expired, and releases what
// it holds, each kind in name order: its locks (with their lock-delay if it
// expired), its waiting lock acquires (answered ErrSessionExpired), its
// elections (a leader resigns, a candidacy is withdrawn and answered
// ErrSessionExpired), and last its ephemeral keys, deleted at one new
// revision (ephemeral.go).
func (sm *StateMachine) endSession(s *session, expired bool) {
	s.ending = true
	for _, name := range sortedKeys(s.locks) {
		sm.releaseHeld(sm.locks.m[name], expired)
	}
	for _, name := range sortedKeys(s.waits) {
		l := sm.locks.m[name]
		w := l.removeWaiter(s.id)
		delete(s.waits, name)
		sm.answer(w.client, w.seq, Result{Err: sessionEndedErr(s.id, expired, "lock "+quote(name)), Revision: sm.kv.rev})
		sm.gcLock(l)
	}
	for _, name := range sortedKeys(s.elections) {
		e := sm.elect.m[name]
		if e.leader == s.id {
			sm.handOver(e)
			continue
		}
		cd := e.removeCandidate(s.id)
		delete(s.elections, name)
		sm.answer(cd.client, cd.seq, Result{Err: sessionEndedErr(s.id, expired, "election "+quote(name)), Revision: sm.kv.rev})
	}
	sm.deleteSessionKeys(s)
	t := &sm.sessions
	if s.heapIndex >= 0 {
		heap.Remove(&t.byDeadline, s.heapIndex)
	}
	if s.renew {
		t.renewed = slices.DeleteFunc(t.renewed, func(id uint64) bool { return id == s.id })
	}
	delete(t.m, s.id)
}

func sessionEndedErr(id uint64, expired bool, waitedFor string) error {
	how := "was closed"
	if expired {
		how = "expired"
	}
	return fmt.Errorf("%w: session %d %s while waiting for %s", ErrSessionExpired, id, how, waitedFor)
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

// expireSessions ends, in session id order, every session whose deadline
// is at or before the clock.
func (sm *StateMachine) expireSessions() {
	t := &sm.sessions
	var due []uint64
	for len(t.byDeadline) > 0 && t.byDeadline[0].deadline <= sm.clock {
		due = append(due, heap.Pop(&t.byDeadline).(*session).id)
	}
	if len(due) == 0 {
		return
	}
	slices.Sort(due)
	for _, id := range due {
		sm.endSession(t.m[id], true)
	}
}

// Sessions returns the open sessions in id order, as of the applied state
// (a local read, not linearizable).
func (sm *StateMachine) Sessions() []SessionInfo {
	ids := sortedKeys(sm.sessions.m)
	out := make([]SessionInfo, len(ids))
	for i, id := range ids {
		out[i] = sm.sessions.m[id].info(sm.clock)
	}
	return out
}

// Session returns session id, if it is open.
func (sm *StateMachine) Session(id uint64) (SessionInfo, bool) {
	s := sm.sessions.m[id]
	if s == nil {
		return SessionInfo{}, false
	}
	return s.info(sm.clock), true
}

// SessionCount returns the number of open sessions.
func (sm *StateMachine) SessionCount() int { return len(sm.sessions.m) }

// sessionHeap orders sessions by deadline, then id.
type sessionHeap = indexedHeap[*session]

func (s *session) heapLess(o *session) bool {
	if s.deadline != o.deadline {
		return s.deadline < o.deadline
	}
	return s.id < o.id
}

func (s *session) setHeapIndex(i int) { s.heapIndex = i }
