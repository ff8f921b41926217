package statemachine

import (
	"bufio"
	"fmt"
	"hash/crc64"
)

// The agreement hash: what each member reports for the state check
// (service/statecheck.go), and what tests and the node simulation compare
// between replicas. Replicas that applied the same commands have the same
// hash; replicas whose states differ in what decides the result of a
// future command, a stored answer, or what a local read returns, do not.
//
// Which hash is a function of the state's cluster level (level.go), which
// is replicated: every replica switches at the slot of the OpLevel, so the
// reports for one check slot, each computed on a state as of that slot,
// are all of one kind.
//
//   - Below LevelHashEncoding: legacyHash (hash_legacy.go), a hand-kept
//     field-by-field serialization into fnv-64a, exactly as older builds
//     compute it, so that the members of a mixed cluster agree.
//   - From LevelHashEncoding (6) on: CRC-64 over the state's snapshot
//     encoding (SnapshotView.WriteTo; format 4 at these levels), streamed
//     from the key tree into the CRC, with the sections below replaced by
//     constants. One encoding to maintain instead of two: what a snapshot
//     carries to a lagging member is what the members compare, and a field
//     added to the snapshot is hashed without anyone remembering to add it.
//
// Hashed: the applied slot, the store revision, the clock, the fence
// counter, every key (value, create and mod revisions, version), the
// duplicate-detection table (client ids, floors, last slots, every stored
// Result with its error's message and sentinels), the session counter,
// the sessions (ttl, deadline) and the renewed list, the locks (holder,
// token, lock-delays, waiter queue), the elections (leader, value, term,
// candidate queue, change numbering and the kept changes) and the level;
// from LevelAuth on the users, roles and sessions' owners, and from
// LevelMembership on the membership (the configuration in force, a pending
// one and its activation slot, α: members_snapshot.go), which the format
// of those levels (7, 8) carries.
//
// Replaced by constants, since they are not agreement state, or replicas
// that applied the same commands may legitimately hold them differently:
//
//   - The KV watch history (KVHistoryDropped, KVHistory). A snapshot
//     carries only its newest part, cut by build constants
//     (snapshotHistoryMax, snapshotHistoryBytesMax) rather than by the
//     format, and a replica that restored a snapshot or restarted from
//     one holds only what it carried: how far back the history reaches
//     depends on when the node last did. It decides no command's result.
//   - The options (SnapOptions, SnapLevel.DedupBytesMax). They are node
//     configuration, not state; every replica must run with the same
//     ("Determinism rules", doc.go), and where different ones would make
//     replicas act differently, the effect shows in what is hashed
//     (evicted clients, refused puts), as in the legacy hash.
//   - The cluster identity (SnapIdentity). It decides no command's result,
//     and a member may lack it after applying the same log: one that ran,
//     while the level was still 0 and rollbacks were allowed, a build
//     older than the identity, which refused its commands as unknown
//     (identity.go). Its first level-6 check slot must not convict it for
//     something that decided nothing.
//   - The space quota (SnapQuota), for the same rollback (quota.go): a put
//     that one replica refused and another applied differs in the keys
//     and the stored results, which are hashed.
//
// The elections' kept changes are hashed, though the legacy hash leaves
// them out: they are deterministic — appended only by applied commands,
// bounded by ElectionHistoryMax (an option, the same everywhere), carried
// whole by every snapshot format and restored whole — and the newest gives
// LeaderInfo.Revision.
//
// Nothing else in the encoding depends on the node: the snapshot format
// version is a function of the state (View; 4 at level 6), and every table
// is a list in a defined order. The hashed bytes of a level-6 state must
// not change in a later build that implements level 6, or members of the
// two builds would convict each other: a change to the encoding is a new
// snapshot format version, which (as formats 2 to 4 were) may only be
// written from a new level on. TestHashEncodingPinned pins a value.
//
// Why CRC-64 (ECMA) rather than fnv-64a: at a million keys this hashes
// about 300 MB, off the loop but a core's seconds all the same. fnv-64a
// multiplies once per byte, each multiply waiting for the last; hash/crc64
// with the ECMA table runs slicing-by-8, eight bytes per round of
// independent table lookups, for writes of 64 bytes or more — which the
// buffer in front of it makes every write (the encoder writes a few bytes
// at a time). A CRC is no defence against an adversary, but the state
// check looks for bugs, bit flips and damaged restores: CRC-64 catches
// every change confined to 64 consecutive bits, and others but for 2^-64.

// hashBufferBytes is the buffer between the encoder and the CRC: large
// enough that crc64's per-write cost (it compares its 2 KiB table to find
// the fast path) is a few percent at most, small enough to allocate per
// hash (the node simulation hashes every replica's state after every slot;
// a 32 KiB buffer, allocated and zeroed each time, was most of that cost).
const hashBufferBytes = 8 << 10

// crcTable is hash/crc64's precomputed ECMA table (the one with the fast
// path).
var crcTable = crc64.MakeTable(crc64.ECMA)

// Hash returns the agreement hash of the state: the encoding hash from
// LevelHashEncoding on, the legacy hash below it (see above). It walks
// everything: for the state check and tests, not for hot paths.
func (sm *StateMachine) Hash() uint64 {
	if sm.level < LevelHashEncoding {
		return sm.legacyHash()
	}
	h, err := encodingHash(sm.snapshotVersion(), sm.snapshotTables(), &sm.kv)
	if err != nil {
		// The encoder writes into memory and the state is valid: a bug.
		panic(fmt.Sprintf("statemachine: hashing the encoding of the state at slot %d: %v", sm.applied, err))
	}
	return h
}

// encodingHash is the CRC-64 of the snapshot encoding (format version)
// of st, whose keys kv holds, with the sections that are not agreement
// state replaced by constants (agreementState). The encoding streams
// through a small buffer: it is never whole in memory.
func encodingHash(version uint64, st *SnapshotState, kv *kvStore) (uint64, error) {
	crc := crc64.New(crcTable)
	w := bufio.NewWriterSize(crc, hashBufferBytes)
	if err := encodeSnapshot(w, version, agreementState(st), kv.len(), kv.eachSnapKV); err != nil {
		return 0, err
	}
	if err := w.Flush(); err != nil {
		return 0, err
	}
	return crc.Sum64(), nil
}

// agreementState is st with what the encoding hash leaves out (see above)
// set to zero: each of those sections then encodes as the same few bytes
// whatever the replica holds, and the fields around them stay where the
// format puts them. st itself is not changed (a view's is shared).
func agreementState(st *SnapshotState) *SnapshotState {
	a := *st
	a.Options = SnapOptions{}
	a.KVHistoryDropped, a.KVHistory = 0, nil
	a.Identity = SnapIdentity{}
	a.Quota = SnapQuota{}
	a.Level.DedupBytesMax = 0
	return &a
}
