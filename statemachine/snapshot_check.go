package statemachine

import (
	"io"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/paxosd/paxosd/paxos"
)

// Checking a snapshot without restoring it: a node about to replace its
// state with a snapshot's checks the snapshot first, while it still has
// its state, and without holding a second one (service/install.go).

// SnapshotInfo is what CheckSnapshot found in a snapshot.
type SnapshotInfo struct {
	// Applied is the slot the state is as of.
	Applied paxos.Slot
	// Keys and LiveBytes count its keys and their len(key)+len(value)
	// (the quota's usage once restored).
	Keys      int
	LiveBytes uint64
	// Revision is the store revision, Fence the last fencing token (or
	// election term) handed out, ClusterID the cluster's id (nil: none
	// yet), Level the cluster level; Sessions, Locks and Elections count
	// the open sessions and the lock and election records (paxosd
	// snapshot status prints them).
	Revision, Fence            uint64
	ClusterID                  []byte
	Level                      uint64
	Sessions, Locks, Elections int
}

// CheckSnapshot reads a snapshot as RestoreFrom does, both passes, and
// makes every check RestoreFrom makes, but keeps none of the keys: it
// needs the memory of the small tables (clients, sessions, locks,
// elections, the watch history), not of the state. What it accepts,
// RestoreFrom restores, short of the bytes changing in between or memory
// running out: a node checks a snapshot with it before it lets go of the
// state the snapshot replaces.
func CheckSnapshot(opts SMOptions, open func() (io.Reader, error), size int64) (SnapshotInfo, error) {
	_, info, err := restoreStream(opts, open, size, false)
	return info, err
}

// decodeBytesInto is dec.DecodeBytes reading into *buf: the same input
// accepted, nil for a nil value.
func decodeBytesInto(dec *msgpack.Decoder, buf *[]byte) ([]byte, error) {
	n, err := dec.DecodeBytesLen()
	if err != nil || n < 0 {
		return nil, err
	}
	if cap(*buf) < n {
		*buf = make([]byte, n)
	}
	b := (*buf)[:n]
	return b, dec.ReadFull(b)
}
