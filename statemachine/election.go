package statemachine

import (
	"fmt"
	"slices"
)

// LeaderInfo is the state of an election as of its latest change.
type LeaderInfo struct {
	Name string
	// Session is the leader's session (0 = no leader); Value what it
	// proclaimed (shared with the state machine: do not modify).
	Session uint64
	Value   []byte
	// Term is the leadership's fencing token: a new token from the same
	// counter as lock tokens for every new leader (a proclaim keeps it).
	Term uint64
	// Seq and Revision are those of the election's latest change (see
	// LeaderChange).
	Seq      uint64
	Revision uint64
}

// LeaderChange is one entry of an election's history: a new leader, a
// proclaimed value, or no leader any more (Session 0, Term 0).
type LeaderChange struct {
	// Seq numbers the election's changes 1, 2, 3... with no gaps.
	Seq     uint64
	Session uint64
	Value   []byte
	Term    uint64
	// Revision is the store revision when the change was applied.
	Revision uint64
}

// election is the state of one election name.
//
// Invariants: leader == 0 implies no candidates (a leaderless election
// promotes its first candidate at once); the leader is not a candidate;
// every candidate's session is open and campaigns once; seq is the Seq of
// the latest change, and history holds the latest of them.
type election struct {
	name       string
	leader     uint64 // session, 0 = none
	value      []byte
	term       uint64
	candidates []candidate
	seq        uint64
	history    changeRing
}

// candidate is a waiting campaign: its session, value, and the (ClientID,
// Seq) of the request to answer when it leads.
type candidate struct {
	session     uint64
	value       []byte
	client, seq uint64
}

// electionTable holds the elections. Records are never deleted: an
// election keeps its history (and its change numbering) when nobody
// campaigns any more.
type electionTable struct {
	m map[string]*election
}

func newElectionTable() electionTable { return electionTable{m: make(map[string]*election)} }

func (e *election) info() LeaderInfo {
	li := LeaderInfo{Name: e.name, Session: e.leader, Value: e.value, Term: e.term, Seq: e.seq}
	if last, ok := e.history.last(); ok {
		li.Revision = last.Revision
	}
	return li
}

func (e *election) candidateIndex(session uint64) int {
	return slices.IndexFunc(e.candidates, func(c candidate) bool { return c.session == session })
}

// removeCandidate takes session's candidacy out of the queue and returns
// it; the session must be a candidate.
func (e *election) removeCandidate(session uint64) candidate {
	i := e.candidateIndex(session)
	if i < 0 {
		panic(fmt.Sprintf("service: session %d is not a candidate in election %q", session, e.name))
	}
	c := e.candidates[i]
	e.candidates = slices.Delete(e.candidates, i, i+1)
	return c
}

func (sm *StateMachine) campaign(c *Command) Result {
	s := sm.liveSession(c.SessionID)
	if s == nil {
		return Result{Err: errNoSession(c.SessionID), Revision: sm.kv.rev}
	}
	e := sm.elect.m[c.Name]
	if e == nil {
		e = &election{name: c.Name}
		sm.elect.m[c.Name] = e
	}
	switch {
	case e.leader == s.id:
		return Result{Revision: sm.kv.rev, Token: e.term, Leader: e.info()}
	case e.leader == 0:
		sm.lead(e, s, c.Value)
		return Result{Revision: sm.kv.rev, Token: e.term, Leader: e.info()}
	}
	if _, in := s.elections[e.name]; in {
		// One candidacy per session (it is not the leader), answering the
		// newest request with its value. An older, different request is
		// withdrawn.
		cd := &e.candidates[e.candidateIndex(s.id)]
		old := *cd
		cd.value, cd.client, cd.seq = c.Value, c.ClientID, c.Seq
		if old.client != c.ClientID || old.seq != c.Seq {
			sm.answer(old.client, old.seq, Result{
				Err:      fmt.Errorf("%w: a newer campaign in election %q by session %d replaced this one", ErrCanceled, e.name, s.id),
				Revision: sm.kv.rev,
			})
		}
	} else {
		e.candidates = append(e.candidates, candidate{session: s.id, value: c.Value, client: c.ClientID, seq: c.Seq})
		add(&s.elections, e.name)
	}
	return Result{Revision: sm.kv.rev, Pending: true, Leader: e.info()}
}

// lead makes s the leader of e, in a new term.
func (sm *StateMachine) lead(e *election, s *session, value []byte) {
	sm.fence++
	e.leader, e.value, e.term = s.id, value, sm.fence
	add(&s.elections, e.name)
	sm.recordChange(e)
}

// recordChange appends e's current state to its history.
func (sm *StateMachine) recordChange(e *election) {
	e.seq++
	e.history.add(LeaderChange{Seq: e.seq, Session: e.leader, Value: e.value, Term: e.term, Revision: sm.kv.rev}, sm.opts.ElectionHistoryMax)
}

// handOver ends the current leadership of e: the first candidate whose
// session is not ending leads (its campaign is answered), or nobody does.
func (sm *StateMachine) handOver(e *election) {
	if s := sm.sessions.m[e.leader]; s != nil {
		delete(s.elections, e.name)
	}
	e.leader, e.value, e.term = 0, nil, 0
	for len(e.candidates) > 0 {
		cd := e.candidates[0]
		e.candidates[0] = candidate{} // drop the value reference
		e.candidates = e.candidates[1:]
		if len(e.candidates) == 0 {
			e.candidates = nil
		}
		s := sm.sessions.m[cd.session]
		if sm.dying(s) {
			if s != nil {
				delete(s.elections, e.name)
			}
			sm.answer(cd.client, cd.seq, Result{Err: sessionEndedErr(cd.session, true, "election "+quote(e.name)), Revision: sm.kv.rev})
			continue
		}
		sm.lead(e, s, cd.value)
		sm.answer(cd.client, cd.seq, Result{Revision: sm.kv.rev, Token: e.term, Leader: e.info()})
		return
	}
	sm.recordChange(e)
}

func inElection(s *session, name string) bool {
	_, in := s.elections[name]
	return in
}

func errNotLeader(name string, session uint64) error {
	return fmt.Errorf("%w %q (session %d)", ErrNotElectionLeader, name, session)
}

func (sm *StateMachine) proclaim(c *Command) Result {
	s := sm.liveSession(c.SessionID)
	if s == nil {
		return Result{Err: errNoSession(c.SessionID), Revision: sm.kv.rev}
	}
	e := sm.elect.m[c.Name]
	if e == nil || e.leader != s.id {
		return Result{Err: errNotLeader(c.Name, s.id), Revision: sm.kv.rev}
	}
	e.value = c.Value
	sm.recordChange(e)
	return Result{Revision: sm.kv.rev, Token: e.term, Leader: e.info()}
}

func (sm *StateMachine) resign(c *Command) Result {
	s := sm.liveSession(c.SessionID)
	if s == nil {
		return Result{Err: errNoSession(c.SessionID), Revision: sm.kv.rev}
	}
	e := sm.elect.m[c.Name]
	switch {
	case e != nil && e.leader == s.id:
		sm.handOver(e)
		return Result{Revision: sm.kv.rev, Leader: e.info()}
	case e != nil && inElection(s, e.name):
		cd := e.removeCandidate(s.id)
		delete(s.elections, e.name)
		sm.answer(cd.client, cd.seq, Result{
			Err:      fmt.Errorf("%w: session %d withdrew its candidacy in election %q", ErrCanceled, s.id, e.name),
			Revision: sm.kv.rev,
		})
		return Result{Revision: sm.kv.rev, Leader: e.info()}
	}
	return Result{Err: errNotLeader(c.Name, s.id), Revision: sm.kv.rev}
}

func (sm *StateMachine) leaderQuery(c *Command) Result {
	e := sm.elect.m[c.Name]
	if e == nil || e.leader == 0 {
		return Result{Err: fmt.Errorf("%w: election %q has no leader", ErrNotFound, c.Name), Revision: sm.kv.rev}
	}
	return Result{Revision: sm.kv.rev, Token: e.term, Leader: e.info()}
}

// LeaderOf returns the current leader of election name, as of the applied
// state (a local read); false when it has none.
func (sm *StateMachine) LeaderOf(name string) (LeaderInfo, bool) {
	e := sm.elect.m[name]
	if e == nil || e.leader == 0 {
		return LeaderInfo{}, false
	}
	return e.info(), true
}

// Elections returns every election that ever had a candidate, sorted by
// name, as of the applied state (a local read); those without a leader now
// have Session 0. The Values are shared with the state machine and must
// not be modified.
func (sm *StateMachine) Elections() []LeaderInfo {
	names := sortedKeys(sm.elect.m)
	out := make([]LeaderInfo, len(names))
	for i, name := range names {
		out[i] = sm.elect.m[name].info()
	}
	return out
}

// ElectionChanges returns the changes of election name with Seq above
// afterSeq, oldest first, as of the applied state; none (and no error) for
// an election that never changed or when afterSeq is the latest. It
// returns ErrCompacted when change afterSeq+1 is no longer kept (only the
// latest SMOptions.ElectionHistoryMax are). The Values are shared with the
// state machine and must not be modified.
func (sm *StateMachine) ElectionChanges(name string, afterSeq uint64) ([]LeaderChange, error) {
	e := sm.elect.m[name]
	if e == nil || afterSeq >= e.seq {
		return nil, nil
	}
	first, _ := e.history.first()
	if afterSeq+1 < first.Seq {
		return nil, fmt.Errorf("%w: election %q keeps changes from %d on, %d asked for", ErrCompacted, name, first.Seq, afterSeq+1)
	}
	return e.history.from(int(afterSeq + 1 - first.Seq)), nil
}
