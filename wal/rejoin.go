package wal

import (
	"errors"
	"math"

	"github.com/cockroachdb/pebble"
	"github.com/paxosd/paxosd/paxos"
)

// ErrNoStore: Open with Options.MustExist found no store in the directory.
// For a member of a running cluster that means its data was lost, and with
// it the promises it made: it must rejoin (RejoinTarget) rather than vote
// as if it had promised nothing.
var ErrNoStore = errors.New("wal: the data directory holds no store")

// IsNoStore reports whether err is Open's refusal of a missing store.
func IsNoStore(err error) bool {
	return errors.Is(err, ErrNoStore) || errors.Is(err, pebble.ErrDBDoesNotExist)
}

// keyRejoin marks a node rebuilding after its data was lost: it must not
// vote until its watermark reaches the stored slot. It is written before
// the node takes part in anything, so a crash mid-rejoin resumes the rejoin.
var keyRejoin = []byte("m/rejoin")

// RejoinUnknown is the rejoin target before the other members have told
// the node how far the cluster got.
const RejoinUnknown = paxos.Slot(math.MaxUint64)

// SetRejoin durably records that the node must not vote until its
// watermark reaches target (RejoinUnknown: until it learns the target).
func (s *Store) SetRejoin(target paxos.Slot) error {
	unlock, err := s.lockForWrite()
	if err != nil {
		return err
	}
	defer unlock()
	return s.db.Set(keyRejoin, appendSlotValue(nil, target), pebble.Sync)
}

// ClearRejoin durably ends the rejoin: the node votes again.
func (s *Store) ClearRejoin() error {
	unlock, err := s.lockForWrite()
	if err != nil {
		return err
	}
	defer unlock()
	return s.db.Delete(keyRejoin, pebble.Sync)
}

// Rejoin returns the rejoin target, and whether a rejoin is under way.
func (s *Store) Rejoin() (paxos.Slot, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, false, ErrClosed
	}
	raw, ok, err := get(s.db, keyRejoin)
	if err != nil || !ok {
		return 0, false, err
	}
	t, err := decodeSlotValue("rejoin target", raw)
	return t, err == nil, err
}
