package wal

import (
	"github.com/cockroachdb/pebble"
	"github.com/paxosd/paxosd/paxos"
)

// keyDiverged marks a node whose state the members' state check found to
// differ from a quorum's (service: statecheck.go). It is kept across
// restarts — replaying the same disk would only rebuild the same wrong
// state — and goes away only with the data directory, when the node is
// rebuilt with --rejoin.
var keyDiverged = []byte("m/diverged")

// SetDiverged durably records that the node's state diverged from the
// cluster's, as found at check slot slot.
func (s *Store) SetDiverged(slot paxos.Slot) error {
	unlock, err := s.lockForWrite()
	if err != nil {
		return err
	}
	defer unlock()
	return s.db.Set(keyDiverged, appendSlotValue(nil, slot), pebble.Sync)
}

// Diverged returns the check slot at which the node was found diverged,
// and whether it was.
func (s *Store) Diverged() (paxos.Slot, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, false, ErrClosed
	}
	raw, ok, err := get(s.db, keyDiverged)
	if err != nil || !ok {
		return 0, false, err
	}
	slot, err := decodeSlotValue("diverged slot", raw)
	return slot, err == nil, err
}
