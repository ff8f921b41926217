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
	// truncated: entries at or below it were deleted; snap covers them.
	truncated paxos.Slot
	snap      snapshot
}

// snapshot is a node's state machine as of slot: the digest of every value
// chosen up to it, and the Workload applier's own bytes if it has any.
type snapshot struct {
	slot    paxos.Slot
	digest  uint64
	data    []byte
	configs paxos.Configs
}

// takeSnapshot stores snap and deletes the entries at or below truncate.
func (s *memStore) takeSnapshot(snap snapshot, truncate paxos.Slot) {
	s.snap = snap
	s.truncateTo(truncate)
}

func (s *memStore) truncateTo(upTo paxos.Slot) {
	for sl := range s.entries {
		if sl <= upTo {
			delete(s.entries, sl)
		}
	}
	if upTo > s.truncated {
		s.truncated = upTo
	}
}

// install replaces the log up to snap.slot with snap, as a follower does
// with a snapshot fetched from the leader.
func (s *memStore) install(snap snapshot) {
	s.snap = snap
	s.truncateTo(snap.slot)
	if snap.slot > s.commit {
		s.commit = snap.slot
	}
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
		for sl := max(s.commit, s.truncated) + 1; sl <= p.Commit; sl++ {
			if _, ok := s.entries[sl]; !ok {
				return fmt.Errorf("watermark %d persisted without the entry for slot %d", p.Commit, sl)
			}
		}
		s.commit = p.Commit
	}
	return nil
}

func (s *memStore) state() paxos.State {
	st := paxos.State{Promised: s.promised, Commit: s.commit, Truncated: s.truncated}
	for _, e := range s.entries {
		st.Entries = append(st.Entries, e)
	}
	sort.Slice(st.Entries, func(i, j int) bool { return st.Entries[i].Slot < st.Entries[j].Slot })
	return st
}

// Entries reads stored entries back (paxos.LogReader), as the WAL does.
func (s *memStore) Entries(from, to paxos.Slot, maxBytes int) ([]paxos.Entry, error) {
	var out []paxos.Entry
	n := 0
	for sl := from; sl <= to && sl != 0; sl++ {
		e, ok := s.entries[sl]
		if !ok {
			continue
		}
		if maxBytes > 0 && len(out) > 0 && n+e.WireBytes() > maxBytes {
			break
		}
		n += e.WireBytes()
		out = append(out, e)
		if sl == to {
			break
		}
	}
	return out, nil
}

// tail is what a node restarting from its WAL loads (wal.LoadTail): the
// entries above the watermark; the rest stays on "disk".
func (s *memStore) tail() paxos.State {
	st := s.state()
	st.Compacted = st.Commit
	kept := st.Entries[:0]
	for _, e := range st.Entries {
		if e.Slot > st.Commit {
			kept = append(kept, e)
		}
	}
	st.Entries = kept
	return st
}
