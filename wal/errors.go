package wal

import (
	"errors"
	"fmt"

	"github.com/paxosd/paxosd/paxos"
)

var (
	// ErrIdentityMismatch marks an Open of a data directory that belongs to
	// another cluster or another node. Reusing it would let one node vote
	// with another's promises, so it is never overridden silently; the
	// error's message names both identities (see IdentityMismatchError).
	ErrIdentityMismatch = errors.New("wal: data directory belongs to another cluster or node")
	// ErrCorrupt marks stored bytes that cannot be decoded, or that Pebble
	// itself reports as corrupt. A corrupt store is not safe to vote from:
	// the operator must restore or rebuild the node.
	ErrCorrupt = errors.New("wal: corrupt data")
	// ErrClosed is returned by every method of a closed Store.
	ErrClosed = errors.New("wal: store is closed")
	// ErrInvalidIdentity marks an Identity that Open refuses (empty cluster
	// id, zero node id, oversized cluster id).
	ErrInvalidIdentity = errors.New("wal: invalid identity")
)

// IdentityMismatchError says which identity a data directory holds and which
// one the caller asked for. It matches ErrIdentityMismatch with errors.Is.
type IdentityMismatchError struct {
	Dir    string
	Stored Identity
	Want   Identity
}

func (e *IdentityMismatchError) Error() string {
	return fmt.Sprintf("wal: data directory %s belongs to cluster %q node %d, not cluster %q node %d",
		e.Dir, e.Stored.ClusterID, e.Stored.NodeID, e.Want.ClusterID, e.Want.NodeID)
}

// Is makes errors.Is(err, ErrIdentityMismatch) hold.
func (e *IdentityMismatchError) Is(target error) bool { return target == ErrIdentityMismatch }

// corruptf returns an error wrapping ErrCorrupt; what names the record
// ("entry at slot 7", "promised ballot") so an operator knows where to look.
func corruptf(what, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrCorrupt, what, fmt.Sprintf(format, args...))
}

// panicBackwards reports a caller bug: a Persist that would lower the
// promised ballot or the commit watermark. Returning an error would invite
// the caller to carry on; a lowered promise breaks Paxos safety, so the
// process must stop (STYLE principle 10).
func panicBackwards(what string, stored, next any) {
	panic(fmt.Sprintf("wal: Save would move the %s backwards from %v to %v; the caller must never lower it", what, stored, next))
}

// panicSlotZero reports an entry for slot 0, which the paxos package reserves
// for "none".
func panicSlotZero(e paxos.Entry) {
	panic(fmt.Sprintf("wal: Save of an entry at slot 0 (%s); slots start at 1", e))
}
