package statemachine

import "errors"

// Snapshot format.
//
// A snapshot is one MessagePack array of three to ten elements:
//
//	version 1: [ "paxosd/statemachine", 1, SnapshotState ]
//	version 2: [ "paxosd/statemachine", 2, SnapshotState, SnapIdentity ]
//	version 3: [ "paxosd/statemachine", 3, SnapshotState, SnapIdentity, SnapQuota ]
//	version 4: [ "paxosd/statemachine", 4, SnapshotState, SnapIdentity, SnapQuota, SnapLevel ]
//	version 5: [ "paxosd/statemachine", 5, SnapshotState, SnapIdentity, SnapQuota, SnapLevel, [SnapTxnResult] ]
//	version 6: [ "paxosd/statemachine", 6, SnapshotState, SnapIdentity, SnapQuota, SnapLevel, [SnapTxnResult], [SnapBinding] ]
//	version 7: [ "paxosd/statemachine", 7, SnapshotState, SnapIdentity, SnapQuota, SnapLevel, [SnapTxnResult], [SnapBinding], SnapAuth ]
//	version 8: [ "paxosd/statemachine", 8, SnapshotState, SnapIdentity, SnapQuota, SnapLevel, [SnapTxnResult], [SnapBinding], SnapAuth, SnapMembers ]
//
// The magic string tells a state machine snapshot from other bytes, the
// version selects the layout of the elements after it. Version 2 adds the
// cluster's identity (identity.go); a state without one is still written
// as version 1, so members of an older version read every snapshot taken
// before the cluster's id exists — and the id is proposed only once every
// member speaks a version that knows it (service/bootstrap.go). Version 3
// adds the space quota (quota.go) and is written only once one is set, which
// a leader proposes only once every member reads version 3. Version 4 adds
// the cluster level (level.go) and is written only once it is above 0,
// which a leader raises only once every member reads version 4; in it the
// quota may be 0 (none set). Version 5 adds the operations' results of the
// transactions the duplicate table keeps (txn.go), the one part of a
// Result that SnapResult cannot hold, and is written from LevelTxn on
// (version 4 below it, from level 5). Version 6 adds the ephemeral keys'
// bindings to their sessions (ephemeral.go) and is written from
// LevelEphemeral on; version 7 adds the users, roles and sessions' owners
// (auth_snapshot.go) and is written from LevelAuth on; version 8 adds the
// cluster's membership (members_snapshot.go) and is written from
// LevelMembership on. Every struct of the
// layout (SnapshotState and the Snap* types it holds) is encoded as an
// array of its fields in declaration order (msgpack "as_array"), integers in
// their shortest form. A change to any of these structs, to the numbering of
// snapshotErrors, or to what a field means, is a new format version.
//
// The encoding is deterministic: it holds no maps, every table is a list in
// a defined order (keys, client ids, session ids, lock and election names
// ascending; queues, rings and the renewed list in their own order), so
// replicas in the same state produce the same bytes. There is no checksum:
// the snapshot transport checks integrity.

// SnapshotFormatVersion is the newest version of the encoding: Snapshot
// writes it once the cluster level is LevelMembership or more, version 7
// once it is LevelAuth or more, version 6 once
// it is LevelEphemeral or more, version 5
// once it is LevelTxn or more, version 4 once it
// is above 0, else version 3 once a quota
// is set, else version 2, or version 1 for a state without a cluster
// identity either; RestoreStateMachine reads all eight.
const SnapshotFormatVersion = 8

// snapshotMagic opens every state machine snapshot.
const snapshotMagic = "paxosd/statemachine"

// ErrBadSnapshot: RestoreStateMachine was given bytes that are not a
// snapshot it can restore: corrupt, of another format version, inconsistent,
// or taken with other SMOptions. The wrapped message says which.
var ErrBadSnapshot = errors.New("service: bad state machine snapshot")

// snapshotErrors numbers the sentinel errors that a stored Result's error
// may wrap: a snapshot records, for such an error, its message and the
// numbers of every sentinel errors.Is matches (ErrTooLarge comes with
// ErrInvalid). The numbers are part of the snapshot format: never reuse or
// renumber one; a new sentinel takes a new number. (The wire error codes of
// service/responses.go cannot serve: they are one code per error and map
// ErrStaleRequest and ErrInvalid to the same code.)
var snapshotErrors = [...]error{
	1:  ErrNotFound,
	2:  ErrInvalid,
	3:  ErrTooLarge,
	4:  ErrStaleRequest,
	5:  ErrSessionExpired,
	6:  ErrLockHeld,
	7:  ErrNotHeld,
	8:  ErrCanceled,
	9:  ErrFenced,
	10: ErrNotElectionLeader,
	11: ErrCompacted,
	12: ErrQuotaExceeded,
	13: ErrPermissionDenied,
}

// SnapshotSentinels returns the sentinel errors that a stored Result's
// error keeps across a snapshot: after a restore, errors.Is matches the same
// of these as before (and the message is the same). An error that wraps
// none keeps only its message.
func SnapshotSentinels() []error {
	var out []error
	for _, s := range snapshotErrors {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

// SnapshotState is the replicated state as a snapshot holds it (format
// version 1): everything that decides the results of future commands (all
// that Hash covers) and the answers of local reads.
//
// Included: the applied slot, the store with its revision, the
// duplicate-detection table with every stored Result (errors included), the
// cluster clock, the fence counter, sessions (deadlines, the renewed list),
// locks (holders, waiter queues, lock-delays), elections (leader, candidate
// queue, change numbering and the kept changes), and the newest part of the
// KV change history that watches read (at most snapshotHistoryMax events
// and snapshotHistoryBytesMax bytes of keys and values). A replica restored
// from a snapshot observes elections exactly as the replica that took it,
// and serves the same watches from the carried part of the history on; a
// watch from further back gets ErrCompacted there. The history decides no
// command's result, so this costs no agreement between replicas.
//
// Left out, because they are derived from the above and rebuilt by
// RestoreStateMachine: the key index, the heaps (client eviction order,
// session deadlines) and their positions, each session's sets of held,
// awaited and joined locks and elections, the set of locks in a lock-delay,
// the byte count of the KV history. Left out because they are empty between
// commands: the untaken late answers (Snapshot refuses while there are
// any) and the sessions' ending flags.
type SnapshotState struct {
	_msgpack struct{} `msgpack:",as_array"`

	// Options are the SMOptions (defaults filled in) of the state machine
	// that took the snapshot; it restores only with the same.
	Options  SnapOptions
	Applied  uint64
	Revision uint64
	Clock    uint64
	Fence    uint64
	// KVs are the keys in increasing key order.
	KVs []SnapKV
	// Clients is the duplicate-detection table in increasing id order.
	Clients []SnapClient
	// LastSession is the last session id given out.
	LastSession uint64
	// Sessions are the open sessions in increasing id order.
	Sessions []SnapSession
	// Renewed lists the sessions opened or kept alive since the last clock
	// command, in the order of their renewal.
	Renewed []uint64
	// Locks are the lock records in increasing name order.
	Locks []SnapLock
	// Elections are the election records in increasing name order.
	Elections []SnapElection
	// KVHistoryDropped is the highest revision dropped from the KV history
	// or left out of the snapshot (0: none); KVHistory the carried events
	// in revision order.
	KVHistoryDropped uint64
	KVHistory        []SnapKVEvent

	// Identity is the envelope's fourth element (version 2), not part of
	// this array.
	Identity SnapIdentity `msgpack:"-"`
	// Quota is the envelope's fifth element (version 3).
	Quota SnapQuota `msgpack:"-"`
	// Level is the envelope's sixth element (version 4).
	Level SnapLevel `msgpack:"-"`
	// Txns is the envelope's seventh element (version 5): the
	// operations' results of the stored results that are transactions',
	// in the order of Clients and their Results.
	Txns []SnapTxnResult `msgpack:"-"`
	// Bindings is the envelope's eighth element (version 6): the
	// ephemeral keys' sessions, in increasing key order.
	Bindings []SnapBinding `msgpack:"-"`
	// Auth is the envelope's ninth element (version 7): users, roles,
	// the auth switch and the sessions' owners (auth_snapshot.go).
	Auth SnapAuth `msgpack:"-"`
	// Members is the envelope's tenth element (version 8): the
	// configuration in force and the one waiting for its activation
	// slot (members_snapshot.go).
	Members SnapMembers `msgpack:"-"`

	// keysUnread: the keys were checked but not kept (CheckSnapshot), so
	// the restore cannot look a bound key up.
	keysUnread bool
}

// SnapBinding binds ephemeral key Key to session Session (ephemeral.go).
type SnapBinding struct {
	_msgpack struct{} `msgpack:",as_array"`

	Key     string
	Session uint64
}

// SnapTxnResult is the operations' results of a stored transaction
// result: that of client Client's command Seq, whose other fields
// (Succeeded, Revision, Err) its SnapResult holds. A transaction whose
// branch had no operation has none.
type SnapTxnResult struct {
	_msgpack struct{} `msgpack:",as_array"`

	Client, Seq uint64
	Ops         []SnapTxnOpResult
}

// SnapTxnOpResult is a TxnOpResult.
type SnapTxnOpResult struct {
	_msgpack struct{} `msgpack:",as_array"`

	Type    uint8
	Found   bool
	KV      SnapKV
	KVs     []SnapKV
	More    bool
	Deleted uint64
}

// SnapLevel is the cluster level (version 4, never 0: a state at level 0
// is written as an older version) and the options that only a level
// brought into effect, which the restore checks like SnapOptions: before
// the level they decided nothing, so older versions need not carry them.
// The bytes the duplicate table counts are not kept: the restore
// recomputes them from the stored results.
type SnapLevel struct {
	_msgpack struct{} `msgpack:",as_array"`

	Level         uint64
	DedupBytesMax int64
}

// SnapQuota is the space quota in bytes (version 3, never 0: a state
// without a quota is written as an older version; version 4 may hold 0,
// none set). The usage is not kept: the restore recomputes it from the
// keys.
type SnapQuota struct {
	_msgpack struct{} `msgpack:",as_array"`

	Limit uint64
}

// SnapIdentity is the cluster's id (empty: none yet) and the members that
// ever voted, ascending.
type SnapIdentity struct {
	_msgpack struct{} `msgpack:",as_array"`

	ClusterID []byte
	Voters    []uint64
}

// SnapOptions are SMOptions in a snapshot.
type SnapOptions struct {
	_msgpack struct{} `msgpack:",as_array"`

	KeyBytesMax, ValueBytesMax, ClientsMax, ResultsPerClientMax int64
	KVHistoryMax, KVHistoryBytesMax, ElectionHistoryMax         int64
}

// SnapKV is a KV.
type SnapKV struct {
	_msgpack struct{} `msgpack:",as_array"`

	Key                                  string
	Value                                []byte
	CreateRevision, ModRevision, Version uint64
}

// SnapClient is a client's duplicate-detection entry.
type SnapClient struct {
	_msgpack struct{} `msgpack:",as_array"`

	ID, Floor, LastSlot uint64
	Results             []SnapSeqResult // increasing Seq
}

// SnapSeqResult is the stored result of a client's command Seq.
type SnapSeqResult struct {
	_msgpack struct{} `msgpack:",as_array"`

	Seq    uint64
	Result SnapResult
}

// SnapResult is a Result.
type SnapResult struct {
	_msgpack struct{} `msgpack:",as_array"`

	Err       *SnapError // nil: no error
	Revision  uint64
	Found     bool
	KV        SnapKV
	KVs       []SnapKV
	More      bool
	Succeeded bool
	Session   SnapSessionInfo
	Token     uint64
	Pending   bool
	Held      bool
	Lock      SnapLockInfo
	Leader    SnapLeaderInfo
}

// SnapError is a Result's error: its message, and the numbers (see
// snapshotErrors) of the sentinels it wraps, in increasing order.
type SnapError struct {
	_msgpack struct{} `msgpack:",as_array"`

	Msg string
	Is  []uint8
}

// SnapSessionInfo is a SessionInfo.
type SnapSessionInfo struct {
	_msgpack struct{} `msgpack:",as_array"`

	ID, TTLMs, RemainingMs    uint64
	Locks, Waiting, Elections []string
}

// SnapLockInfo is a LockInfo.
type SnapLockInfo struct {
	_msgpack struct{} `msgpack:",as_array"`

	Name          string
	Holder, Token uint64
	Waiters       []uint64
	DelayUntil    uint64
}

// SnapLeaderInfo is a LeaderInfo.
type SnapLeaderInfo struct {
	_msgpack struct{} `msgpack:",as_array"`

	Name                string
	Session             uint64
	Value               []byte
	Term, Seq, Revision uint64
}

// SnapSession is an open session. Whether it waits for the next clock
// command to restart its deadline is its presence in
// SnapshotState.Renewed.
type SnapSession struct {
	_msgpack struct{} `msgpack:",as_array"`

	ID, TTLMs, Deadline uint64
}

// SnapLock is a lock record.
type SnapLock struct {
	_msgpack struct{} `msgpack:",as_array"`

	Name                                   string
	Holder, Token, HolderDelay, DelayUntil uint64
	Waiters                                []SnapWaiter // in the order they will be served
}

// SnapWaiter is a waiting lock acquire.
type SnapWaiter struct {
	_msgpack struct{} `msgpack:",as_array"`

	Session, Client, Seq, Delay uint64
}

// SnapElection is an election record.
type SnapElection struct {
	_msgpack struct{} `msgpack:",as_array"`

	Name       string
	Leader     uint64
	Value      []byte
	Term       uint64
	Candidates []SnapCandidate // in the order they will be served
	Seq        uint64
	History    []SnapLeaderChange // the kept changes, oldest first
}

// SnapCandidate is a waiting campaign.
type SnapCandidate struct {
	_msgpack struct{} `msgpack:",as_array"`

	Session     uint64
	Value       []byte
	Client, Seq uint64
}

// SnapLeaderChange is a LeaderChange.
type SnapLeaderChange struct {
	_msgpack struct{} `msgpack:",as_array"`

	Seq, Session   uint64
	Value          []byte
	Term, Revision uint64
}

// SnapKVEvent is a KVEvent.
type SnapKVEvent struct {
	_msgpack struct{} `msgpack:",as_array"`

	Revision   uint64
	Type       uint8
	KV, PrevKV SnapKV
}
