package wal

import (
	"github.com/cockroachdb/pebble"
)

// keyFormed marks a store whose node was let take part in the cluster:
// it formed the cluster with the others (service: bootstrap.go), or it was
// created for a cluster known to be new (paxosd dev, tests). A store that
// holds neither this mark nor any promise, entry, snapshot or rejoin record
// is unvetted: it may have been re-created after its directory was wiped,
// so its node must find out whether it voted before it votes again. The
// mark goes away only with the data directory.
var keyFormed = []byte("m/formed")

// SetFormed durably records that the node may take part in the cluster.
func (s *Store) SetFormed() error {
	unlock, err := s.lockForWrite()
	if err != nil {
		return err
	}
	defer unlock()
	return s.db.Set(keyFormed, []byte{formatVersion}, pebble.Sync)
}

// Formed reports whether SetFormed was recorded.
func (s *Store) Formed() (bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return false, ErrClosed
	}
	_, ok, err := get(s.db, keyFormed)
	return ok, err
}
