package learner

import "github.com/paxosd/paxosd/paxos"

// Learner tracks chosen slots for one replica. Not safe for concurrent use.
type Learner struct {
	// configAt names the configuration whose voters decide slot s (the
	// replica's, exact for every slot this node proposes at).
	configAt func(paxos.Slot) paxos.Membership
	// commit is the chosen watermark: every slot at or below it has been
	// chosen and returned by Advance. Invariant: commit only grows.
	commit paxos.Slot
	// chosen holds slots known chosen above commit, waiting for the hole
	// before them to fill.
	chosen map[paxos.Slot]paxos.Entry
	// tallies count Accepted votes for the values this node proposed.
	tallies map[paxos.Slot]*tally
	// leaderCommit is the highest watermark any leader has told us of.
	leaderCommit paxos.Slot
}

type tally struct {
	ballot paxos.Ballot
	value  paxos.Value
	voters []paxos.NodeID
}

func (t *tally) has(id paxos.NodeID) bool {
	for _, v := range t.voters {
		if v == id {
			return true
		}
	}
	return false
}

// New returns a learner whose slots up to commit are already delivered.
func New(configAt func(paxos.Slot) paxos.Membership, commit paxos.Slot) *Learner {
	return &Learner{
		configAt: configAt,
		commit:   commit,
		chosen:   map[paxos.Slot]paxos.Entry{},
		tallies:  map[paxos.Slot]*tally{},
	}
}

// Commit returns the chosen watermark.
func (l *Learner) Commit() paxos.Slot { return l.commit }

// LeaderCommit returns the highest watermark heard from a leader (at least
// Commit); the difference is how far this node lags.
func (l *Learner) LeaderCommit() paxos.Slot {
	if l.leaderCommit < l.commit {
		return l.commit
	}
	return l.leaderCommit
}

// NoteLeaderCommit records a leader's watermark.
func (l *Learner) NoteLeaderCommit(c paxos.Slot) {
	if c > l.leaderCommit {
		l.leaderCommit = c
	}
}

// IsChosen reports whether slot is known chosen (delivered or waiting).
func (l *Learner) IsChosen(slot paxos.Slot) bool {
	if slot <= l.commit {
		return true
	}
	_, ok := l.chosen[slot]
	return ok
}

// Expect starts counting votes for value, proposed by this node at slot
// under ballot.
func (l *Learner) Expect(slot paxos.Slot, ballot paxos.Ballot, value paxos.Value) {
	if l.IsChosen(slot) {
		return
	}
	l.tallies[slot] = &tally{ballot: ballot, value: value}
}

// Voted reports whether from's Accepted for slot has been counted.
func (l *Learner) Voted(slot paxos.Slot, from paxos.NodeID) bool {
	t := l.tallies[slot]
	return t != nil && t.has(from)
}

// OnAccepted counts from's vote for slots under ballot. Votes for a ballot
// other than the one this node proposed under are ignored: a value is
// chosen only when a quorum accepted it under one ballot — a quorum of the
// voters of the slot's own configuration. It returns the number of slots
// that became chosen.
func (l *Learner) OnAccepted(from paxos.NodeID, ballot paxos.Ballot, slots []paxos.Slot) int {
	n := 0
	for _, s := range slots {
		t := l.tallies[s]
		if t == nil || t.ballot != ballot || t.has(from) {
			continue
		}
		m := l.configAt(s)
		if !m.IsVoter(from) {
			continue
		}
		t.voters = append(t.voters, from)
		if m.IsQuorum(t.has) {
			l.Choose(paxos.Entry{Slot: s, Ballot: t.ballot, Value: t.value})
			n++
		}
	}
	return n
}

// Choose records that e is chosen.
func (l *Learner) Choose(e paxos.Entry) {
	delete(l.tallies, e.Slot)
	if e.Slot <= l.commit {
		return
	}
	if _, ok := l.chosen[e.Slot]; !ok {
		l.chosen[e.Slot] = e
	}
}

// Advance returns the newly deliverable prefix of chosen slots, in order,
// and moves the watermark past them.
func (l *Learner) Advance() []paxos.Entry {
	var out []paxos.Entry
	for {
		e, ok := l.chosen[l.commit+1]
		if !ok {
			return out
		}
		delete(l.chosen, e.Slot)
		l.commit = e.Slot
		out = append(out, e)
	}
}

// Restore moves the watermark to slot, which an installed snapshot covers,
// and forgets what it knew about the slots below. It does nothing unless
// slot is above the watermark.
func (l *Learner) Restore(slot paxos.Slot) {
	if slot <= l.commit {
		return
	}
	l.commit = slot
	for s := range l.chosen {
		if s <= slot {
			delete(l.chosen, s)
		}
	}
	for s := range l.tallies {
		if s <= slot {
			delete(l.tallies, s)
		}
	}
	l.NoteLeaderCommit(slot)
}

// ResetTallies forgets all vote counts: the node no longer leads under the
// ballot they were for.
func (l *Learner) ResetTallies() {
	if len(l.tallies) > 0 {
		l.tallies = map[paxos.Slot]*tally{}
	}
}
