// Package wal keeps an acceptor's durable state in Pebble: its promised
// ballot, the (ballot, value) it accepted for each slot, and the commit
// watermark. It is the only place paxosd's protocol state touches the disk.
//
// # Usage
//
//	st, err := wal.Open(dir, wal.Identity{ClusterID: "prod", NodeID: 2}, wal.Options{})
//	state, err := st.Load()           // restart: feed state to acceptor.New
//	for rd := range readies {         // the node loop
//		if err := st.Save(rd.Persist); err != nil { ... stop the node ... }
//		send(rd.Messages)              // only now: they depend on Persist
//		apply(rd.Decided)
//	}
//
// # Durability contract
//
// Save writes one Persist as ONE Pebble batch committed with pebble.Sync, and
// returns only after the batch is synced to disk. The batch is atomic: after
// a crash either all of a Persist is there or none of it, and every Save
// that returned is there in full. This is group commit: the caller merges a
// whole loop iteration's writes (many Accepts, a Promise, the commit
// watermark) into one Persist and pays for one fsync.
//
// The watermark is lazy. A Persist that holds nothing but the commit
// watermark is committed without a sync: Pebble's log is one sequential
// file, so it reaches the disk with the next synced Save (or snapshot), and
// a crash before that loses only the watermark, never anything after it.
// Nothing depends on the watermark being durable: it is never sent as a
// promise, every entry at or below it was written (synced) before it, and a
// node that restarts with an older watermark replays less and learns the
// rest from its peers. Syncing it would cost every write a second fsync on
// each node (the leader moves its watermark, then tells the followers, who
// move theirs), which on a disk shared by the nodes doubles the latency of
// a lone client's put.
//
// Options.NoSync drops the fsync and with it the contract; it exists for
// tests and benchmarks only.
//
// # The caller's obligations
//
//   - Save before sending: a Promise or Accepted may leave the node only
//     after the Save holding the state it reports has returned.
//   - Never lower the promise or the commit watermark: Save panics if asked
//     to (a caller bug, STYLE principle 10). Entries may be rewritten, with
//     any ballot: a later Save of a slot replaces the stored entry.
//   - One goroutine calls Save. Load and Entries may run concurrently with
//     it and with each other; Load sees a consistent snapshot.
//   - A failed Save, or any error wrapping ErrCorrupt, means the node must
//     stop voting. An I/O error inside Pebble's commit is fatal already (see
//     Options.Logger): after a failed fsync the disk's state is unknown, so
//     retrying the Save could report durable what is not.
//   - A data directory belongs to one (cluster, node). Open refuses another
//     identity with ErrIdentityMismatch. A node whose store IsNew but that
//     voted before lost its promises, and must rejoin under a new id rather
//     than vote again.
//
// # Key layout
//
// Keys sort bytewise, so the big-endian slot makes Pebble's key order the
// slot order, and a range of slots is one iterator:
//
//	+------------------+-------------------------------------------------+
//	| key              | value                                           |
//	+------------------+-------------------------------------------------+
//	| "a/commit"       | ver | slot uvarint                              |
//	| "a/promised"     | ver | round uvarint | node uvarint                |
//	| "e/" slot (8B BE)| ver | round uvarint | node uvarint | kind (1B)    |
//	|                  |     | n uvarint | n × (len uvarint | cmd bytes)  |
//	| "m/identity"     | ver | node uvarint | len uvarint | cluster id    |
//	| "m/rejoin"       | ver | target slot uvarint (rebuilding, see rejoin)  |
//	| "m/diverged"     | ver | check slot uvarint (see SetDiverged)         |
//	| "m/formed"       | ver (the node may take part, see SetFormed)     |
//	+------------------+-------------------------------------------------+
//
// An entry key is 10 bytes:
//
//	+-----+-----+----------------------------------+
//	| 'e' | '/' | slot, uint64 big-endian (8B)     |
//	+-----+-----+----------------------------------+
//
// Every value starts with a format version byte (ver, currently 1); the
// entry's ballot is the one it was accepted under, kind is the
// paxos.ValueKind, and the commands follow in order. Numbers are unsigned
// varints (encoding/binary). A value must be exactly as long as its fields:
// an unknown version, a truncated field, an overflowing varint or trailing
// bytes decode to an error wrapping ErrCorrupt, never a panic. Pebble's own
// block checksums catch bit rot below this layer.
//
// Slot 0 is never stored (it means "none"); a zero promise or commit in a
// Persist means "unchanged" and writes nothing.
package wal
