package paxostest

import (
	"fmt"
	"sort"

	"github.com/paxosd/paxosd/paxos"
)

// memStore is a node's durable state: what survived every Persist. A crash
// loses everything a replica had not yet handed out in a Ready.
type memStore struct {
	promised paxos.Ballot
	entries  map[paxos.Slot]paxos.Entry
	commit   paxos.Slot
}

func newMemStore() *memStore { return &memStore{entries: map[paxos.Slot]paxos.Entry{}} }

// save applies p, checking that durable state never goes backwards.
func (s *memStore) save(p paxos.Persist) error {
	if !p.Promised.IsZero() {
		if p.Promised.Less(s.promised) {
			return fmt.Errorf("promised ballot went backwards: %s after %s", p.Promised, s.promised)
		}
		s.promised = p.Promised
	}
	for _, e := range p.Entries {
		s.entries[e.Slot] = e
	}
	if p.Commit != 0 {
		if p.Commit < s.commit {
			return fmt.Errorf("commit watermark went backwards: %d after %d", p.Commit, s.commit)
		}
		for sl := s.commit + 1; sl <= p.Commit; sl++ {
			if _, ok := s.entries[sl]; !ok {
				return fmt.Errorf("watermark %d persisted without the entry for slot %d", p.Commit, sl)
			}
		}
		s.commit = p.Commit
	}
	return nil
}

func (s *memStore) state() paxos.State {
	st := paxos.State{Promised: s.promised, Commit: s.commit}
	for _, e := range s.entries {
		st.Entries = append(st.Entries, e)
	}
	sort.Slice(st.Entries, func(i, j int) bool { return st.Entries[i].Slot < st.Entries[j].Slot })
	return st
}
