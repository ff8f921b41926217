package wire

import (
	"fmt"

	"github.com/paxosd/paxosd/paxos"
)

// Op is the operation a client Request asks for.
//
// To add an operation: add a constant at the end (never renumber), add its
// fields at the end of requestFields/responseFields (and the structs), and
// document both in docs/PROTOCOL.md.
type Op uint8

const (
	// OpPut sets Key to Value. Response: Revision; Found and KV hold the
	// previous key-value pair if there was one (with OmitPrev, Found
	// alone).
	OpPut Op = iota + 1
	// OpGet reads Key. Response: Found, KV.
	OpGet
	// OpDelete removes Key. Response: Revision; Found and KV hold the
	// deleted pair if there was one (with OmitPrev, Found alone).
	OpDelete
	// OpCAS sets Key to Value if the comparison holds: the current value
	// equals PrevValue (when HasPrevValue) and the current mod revision
	// equals PrevRevision (when HasPrevRevision; 0 = the key must not
	// exist). Response: Succeeded and Revision; when the comparison fails,
	// Err is ErrCASFailed and Found/KV hold the current pair.
	OpCAS
	// OpList lists keys starting with Prefix, in key order, at most Limit
	// of them (0 = no limit). Response: KVs, Revision, More, NextKey. With
	// PageBytes (version 4) it reads one page of a paged listing.
	OpList
	// OpStatus reports the cluster as this node sees it. Response: Status.
	OpStatus

	// Sessions, locks and elections: see docs/PROTOCOL.md for every op's
	// fields, answers and errors.

	// OpSessionOpen opens a session with a TTL of TTLMs. Response:
	// Session (its ID and TTL).
	OpSessionOpen
	// OpSessionKeepAlive restarts the TTL of session SessionID.
	// Response: Session; ErrSessionExpired if it has ended.
	OpSessionKeepAlive
	// OpSessionClose ends session SessionID, releasing its locks, queue
	// places and elections.
	OpSessionClose
	// OpSessionList lists the sessions (at most Limit). Response: Sessions.
	OpSessionList
	// OpLockAcquire takes lock Name for session SessionID: at once if it
	// is free (out of any lock-delay, nobody waiting), else, with Wait,
	// when its turn comes (first come, first served: a blocking call), or
	// without Wait fails with ErrLockHeld.
	// LockDelayMs keeps the lock free that long after the session expires
	// holding it. Response: Token (the fencing token), Lock.
	OpLockAcquire
	// OpLockRelease releases lock Name held by session SessionID, or
	// withdraws the session from its queue. ErrNotHeld if it did neither.
	OpLockRelease
	// OpLockCheck reports whether Token is the current holder's token of
	// lock Name. Response: Held, Lock.
	OpLockCheck
	// OpLockList lists the locks whose name starts with Prefix (at most
	// Limit). Response: Locks.
	OpLockList
	// OpCampaign makes session SessionID a candidate in election Name,
	// offering Value; it blocks until the session leads. Response:
	// Leader, Token (= Leader.Term).
	OpCampaign
	// OpProclaim changes the value of election Name's leader, which must
	// be session SessionID (else ErrNotElectionLeader). Response: Leader.
	OpProclaim
	// OpResign ends session SessionID's leadership of (or candidacy in)
	// election Name. Response: Leader, the election's new state.
	OpResign
	// OpLeader reads election Name's leader. Response: Leader, Token
	// (its term); ErrNotFound when it has none.
	OpLeader
	// OpObserve streams election Name's leadership changes after change
	// number AfterSeq (0: starting with the current one). Each Response
	// carries one change in Leader.
	OpObserve
	// OpWatch streams the changes of Key (of the keys starting with Key,
	// with WatchPrefix) from revision FromRevision (0: from now). Each
	// Response carries Events.
	OpWatch
	// OpCancel ends the stream, or stops the server's wait for the
	// blocking call, whose request ID is CancelID on the same connection.
	OpCancel

	// Op 22 is reserved for the state machine's internal clock command:
	// it is never valid on the wire.
	opReservedClock

	// OpSnapshotRead reads the contacted node's stored snapshot: up to
	// Limit bytes from Offset of the snapshot SnapSlot/SnapSize/SnapCRC
	// names (SnapSlot 0: whichever it holds now). Response: SnapSlot,
	// SnapSize, SnapCRC and Data; ErrNotFound if it holds no snapshot,
	// ErrCompacted if it has replaced the one named. A node catching up
	// from the leader's snapshot uses it, chunk by chunk.
	OpSnapshotRead

	// Ops 24, 25 and 26 are reserved for the state machine's internal
	// commands (state hash reports, cluster uuid, voters): never valid on
	// the wire.

	// OpLeaderTransfer (version 3) asks the leader to hand its leadership
	// to member TargetNode (0: the most caught-up member it can reach),
	// giving up its lease first. Response: LeaderHint, the member asked to
	// take over; ErrNotLeader (with the leader's address) from a follower.
	OpLeaderTransfer Op = 27

	// OpQuotaSet (version 4) sets the cluster's space quota to QuotaBytes,
	// through the log. A leader refuses it with ErrInvalid until every
	// member speaks version 4. Response: Revision.
	OpQuotaSet Op = 28
	// OpQuotaGet (version 4) reads the space quota from the contacted
	// node's state. Response: QuotaUsed, QuotaBytes, QuotaSet.
	OpQuotaGet Op = 29

	// Op 30 is reserved for the state machine's internal default-quota
	// command, and op 31 for its internal cluster level command (version
	// 5): never valid on the wire.

	// OpTxn (version 8) is a transaction: Compares, then ThenOps when
	// every compare holds, else ElseOps, through the log as one command
	// whose writes share one revision. The cluster applies it from
	// cluster level 8 on (every member at version 8); before, it answers
	// ErrInvalid. Response: Succeeded (the compares held), TxnResults
	// (one per operation of the branch that ran), Revision.
	OpTxn Op = 32

	// Users, roles and auth (version 10; docs/PROTOCOL.md "Users, roles
	// and auth"). Ops 33 to 42 go through the log (the node hashes a
	// UserAdd's password and proposes the hash), from cluster level 10
	// on, and only root may send them while auth is enabled.

	// OpUserAdd adds user Name with password Value (empty: no password,
	// a client certificate only).
	OpUserAdd Op = 33
	// OpUserDelete deletes user Name.
	OpUserDelete Op = 34
	// OpUserGrantRole gives user Name role Role.
	OpUserGrantRole Op = 35
	// OpUserRevokeRole takes role Role from user Name.
	OpUserRevokeRole Op = 36
	// OpRoleAdd adds role Name.
	OpRoleAdd Op = 37
	// OpRoleDelete deletes role Name, taking it from every user.
	OpRoleDelete Op = 38
	// OpRoleGrant lets role Name do Perm on the keys, locks and elections
	// whose name starts with Prefix.
	OpRoleGrant Op = 39
	// OpRoleRevoke takes role Name's permission on Prefix away.
	OpRoleRevoke Op = 40
	// OpAuthEnable turns checking on (refused until user root exists).
	OpAuthEnable Op = 41
	// OpAuthDisable turns checking off.
	OpAuthDisable Op = 42
	// OpUserList lists the users. Response: Users.
	OpUserList Op = 43
	// OpRoleList lists the roles. Response: Roles.
	OpRoleList Op = 44
	// OpAuthStatus reports whether auth is enabled, and the connection's
	// user. Response: AuthEnabled, User.
	OpAuthStatus Op = 45
	// OpAuthenticate authenticates the connection as user Name with
	// password Value; every later request on it is that user's. Response:
	// User; ErrAuthFailed.
	OpAuthenticate Op = 46

	// OpSessionKeepAliveBatch (version 12) restarts the TTL of every
	// session in SessionIDs (at most KeepAliveBatchMax), as one command
	// through the log. The cluster applies it from cluster level 12 on;
	// before, it answers ErrInvalid. Response: ExpiredSessions, the ids
	// of the batch that no longer exist; every other one was renewed.
	OpSessionKeepAliveBatch Op = 47

	// OpSnapshotSave (version 14) is a stream: the contacted node takes a
	// snapshot of its state at a linearizable point (a barrier through
	// the log, with ClientID and Seq: the state holds every write
	// acknowledged before the request) and streams it. The first
	// response carries SnapSlot and Revision (the state's slot and store
	// revision), every later one a chunk of the snapshot in Data, the
	// last (StreamEnd) SnapSlot, Revision, SnapSize and SnapCRC (CRC-32C of
	// the bytes sent). Root only while auth is enabled. paxosd snapshot
	// save writes it to a backup file.
	OpSnapshotSave Op = 48
	// OpMemberList (version 16) asks for the cluster's membership:
	// Members (each member's address, role, and, as the leader sees it,
	// reachability, watermark and lag) and ConfigVersion. Any member
	// answers from its applied state; the leader's answer has the lag.
	OpMemberList Op = 49
	// OpMemberAdd (version 16) adds member MemberID at MemberAddr, a
	// learner if MemberLearner; OpMemberPromote makes learner MemberID a
	// voter; OpMemberRemove removes MemberID; OpMemberUpdate moves
	// MemberID to MemberAddr. The leader proposes the new configuration
	// and answers once it is in force, with Members and ConfigVersion.
	// Root only while auth is enabled. A change while another is in
	// progress is refused with err MemberConflict.
	OpMemberAdd     Op = 50
	OpMemberPromote Op = 51
	OpMemberRemove  Op = 52
	OpMemberUpdate  Op = 53
)

// KeepAliveBatchMax bounds the session ids of one
// OpSessionKeepAliveBatch: 4096 ids are at most 36 KiB in a frame and in
// a log command.
const KeepAliveBatchMax = 4096

var opNames = [...]string{
	OpPut:    "Put",
	OpGet:    "Get",
	OpDelete: "Delete",
	OpCAS:    "CAS",
	OpList:   "List",
	OpStatus: "Status",

	OpSessionOpen:      "SessionOpen",
	OpSessionKeepAlive: "SessionKeepAlive",
	OpSessionClose:     "SessionClose",
	OpSessionList:      "SessionList",
	OpLockAcquire:      "LockAcquire",
	OpLockRelease:      "LockRelease",
	OpLockCheck:        "LockCheck",
	OpLockList:         "LockList",
	OpCampaign:         "Campaign",
	OpProclaim:         "Proclaim",
	OpResign:           "Resign",
	OpLeader:           "Leader",
	OpObserve:          "Observe",
	OpWatch:            "Watch",
	OpCancel:           "Cancel",
	OpSnapshotRead:     "SnapshotRead",
	OpLeaderTransfer:   "LeaderTransfer",
	OpQuotaSet:         "QuotaSet",
	OpQuotaGet:         "QuotaGet",
	OpTxn:              "Txn",
	OpUserAdd:          "UserAdd",
	OpUserDelete:       "UserDelete",
	OpUserGrantRole:    "UserGrantRole",
	OpUserRevokeRole:   "UserRevokeRole",
	OpRoleAdd:          "RoleAdd",
	OpRoleDelete:       "RoleDelete",
	OpRoleGrant:        "RoleGrant",
	OpRoleRevoke:       "RoleRevoke",
	OpAuthEnable:       "AuthEnable",
	OpAuthDisable:      "AuthDisable",
	OpUserList:         "UserList",
	OpRoleList:         "RoleList",
	OpAuthStatus:       "AuthStatus",
	OpAuthenticate:     "Authenticate",

	OpSessionKeepAliveBatch: "SessionKeepAliveBatch",
	OpSnapshotSave:          "SnapshotSave",
	OpMemberList:            "MemberList",
	OpMemberAdd:             "MemberAdd",
	OpMemberPromote:         "MemberPromote",
	OpMemberRemove:          "MemberRemove",
	OpMemberUpdate:          "MemberUpdate",
}

func (o Op) String() string {
	if int(o) < len(opNames) && opNames[o] != "" {
		return opNames[o]
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// Valid reports whether o is an operation this version knows. The decoder
// accepts unknown operations so that the server can answer ErrInvalid with
// the request's id instead of closing the connection.
// Ops 22, 24 to 26, 30 and 31, reserved for the state machine's internal
// commands, are not valid.
func (o Op) Valid() bool {
	return o >= OpPut && o <= OpSnapshotRead && o != opReservedClock || o >= OpLeaderTransfer && o <= OpQuotaGet || o == OpTxn ||
		o >= OpUserAdd && o <= OpAuthenticate || o == OpSessionKeepAliveBatch || o == OpSnapshotSave || o.IsMember()
}

// IsMember reports whether o is a member operation (version 16).
func (o Op) IsMember() bool { return o >= OpMemberList && o <= OpMemberUpdate }

// ChangesMembers reports whether o proposes a new configuration.
func (o Op) ChangesMembers() bool { return o >= OpMemberAdd && o <= OpMemberUpdate }

// IsAuthAdmin reports whether o manages users, roles or auth (ops 33 to
// 45): root's alone while auth is enabled.
func (o Op) IsAuthAdmin() bool { return o >= OpUserAdd && o <= OpAuthStatus }

// IsStream reports whether o opens a stream (OpWatch, OpObserve,
// OpSnapshotSave): one request answered by many responses, the last one
// with StreamEnd set.
func (o Op) IsStream() bool { return o == OpWatch || o == OpObserve || o == OpSnapshotSave }

// Blocking reports whether q is a blocking call: an ordinary request whose
// single answer may come much later (OpLockAcquire with Wait,
// OpCampaign), which OpCancel can stop the server waiting for.
func (q *Request) Blocking() bool {
	return (q.Op == OpLockAcquire && q.Wait) || q.Op == OpCampaign
}

// ErrCode says why a request failed. Codes are never renumbered; a client
// treats an unknown code like ErrInternal.
type ErrCode uint8

const (
	// ErrNone: the request succeeded.
	ErrNone ErrCode = iota
	// ErrNotLeader: this node cannot serve the request; retry at
	// LeaderHint/LeaderAddr when set, else at another node.
	ErrNotLeader
	// ErrNotFound: the key (or other named object) does not exist.
	ErrNotFound
	// ErrCASFailed: a compare-and-set's comparison did not hold; nothing
	// was written (Succeeded is false, Found/KV hold the current pair).
	ErrCASFailed
	// ErrInvalid: the request is malformed (unknown op, empty key...).
	ErrInvalid
	// ErrTooLarge: a key, value or answer exceeds a size limit.
	ErrTooLarge
	// ErrTimeout: the request did not complete in time; it may or may not
	// have been applied (retry with the same ClientID and Seq to find out).
	ErrTimeout
	// ErrUnavailable: no quorum or the node is shutting down; retry later.
	ErrUnavailable
	// ErrInternal: a bug or an unexpected failure on the server.
	ErrInternal
	// ErrSessionExpired: the session named by the request has ended.
	ErrSessionExpired
	// ErrLockHeld: a try-lock found the lock held by someone else.
	ErrLockHeld
	// ErrNotHeld: the session neither holds nor waits for the lock it
	// releases.
	ErrNotHeld
	// ErrCanceled: an OpCancel ended the blocking call or the stream; or
	// the session withdrew the wait (a release or resign while waiting, or
	// a newer acquire or campaign of the same session took its place).
	ErrCanceled
	// ErrFenced: a fenced write's token no longer holds its lock; nothing
	// was written.
	ErrFenced
	// ErrCompacted: a watch asked for revisions (an observe for changes)
	// no longer kept; CompactRevision is the oldest revision still
	// available.
	ErrCompacted
	// ErrNotElectionLeader: the session does not lead the election it
	// proclaims in (or neither leads nor campaigns in the one it resigns
	// from).
	ErrNotElectionLeader
	// ErrQuotaExceeded (version 4): the write would grow the keys' bytes
	// beyond the cluster's space quota; nothing was written. Deletes and
	// writes that do not grow still succeed.
	ErrQuotaExceeded
	// ErrAuthRequired (version 10): auth is enabled and the connection
	// has not authenticated.
	ErrAuthRequired
	// ErrAuthFailed (version 10): an OpAuthenticate's user or password is
	// wrong, or its source made too many failed attempts.
	ErrAuthFailed
	// ErrPermissionDenied (version 10): the connection's user may not do
	// this; nothing changed.
	ErrPermissionDenied
	// ErrBusy (version 13): the node is overloaded and shed the request
	// before proposing it; RetryAfterMs says when to send it again (with
	// the same ClientID and Seq). Only a client that negotiated version
	// 13 gets it: an older one is answered ErrUnavailable instead.
	ErrBusy
	// ErrSlowWatcher (version 15): the node ended the watch because its
	// client read the watch's responses too slowly (the connection's
	// unread responses stayed above the node's bound); nothing was lost:
	// the response's revision is the watch's position, and the client
	// resumes after it (another connection or member may serve it
	// faster). An older client is told ErrUnavailable instead.
	ErrSlowWatcher
	// ErrMemberConflict (version 16): a membership change refused because
	// another is in progress (proposed, or chosen and not yet in force),
	// or because the membership changed since the request was made, or
	// because it makes no sense for the membership as it is (adding a
	// member twice, promoting a voter, removing the last voter, promoting
	// a learner too far behind). Read the membership again (OpMemberList)
	// before retrying.
	ErrMemberConflict
)

var errCodeNames = [...]string{
	ErrNone:           "None",
	ErrNotLeader:      "NotLeader",
	ErrNotFound:       "NotFound",
	ErrCASFailed:      "CASFailed",
	ErrInvalid:        "Invalid",
	ErrTooLarge:       "TooLarge",
	ErrTimeout:        "Timeout",
	ErrUnavailable:    "Unavailable",
	ErrInternal:       "Internal",
	ErrSessionExpired: "SessionExpired",
	ErrLockHeld:       "LockHeld",

	ErrNotHeld:           "NotHeld",
	ErrCanceled:          "Canceled",
	ErrFenced:            "Fenced",
	ErrCompacted:         "Compacted",
	ErrNotElectionLeader: "NotElectionLeader",
	ErrQuotaExceeded:     "QuotaExceeded",
	ErrAuthRequired:      "AuthRequired",
	ErrAuthFailed:        "AuthFailed",
	ErrPermissionDenied:  "PermissionDenied",
	ErrBusy:              "Busy",
	ErrSlowWatcher:       "SlowWatcher",
	ErrMemberConflict:    "MemberConflict",
}

func (c ErrCode) String() string {
	if int(c) < len(errCodeNames) && errCodeNames[c] != "" {
		return errCodeNames[c]
	}
	return fmt.Sprintf("ErrCode(%d)", uint8(c))
}

// Request is a client's request. Byte slices decoded from a frame alias the
// frame body.
type Request struct {
	// ID identifies the request on its connection; the response echoes
	// it. Many requests may be in flight; responses come in any order.
	ID uint64
	Op Op
	// ClientID and Seq identify the operation across connections and
	// retries: the state machine applies a (ClientID, Seq) once and
	// answers a retry with the remembered answer. ClientID 0 opts out.
	ClientID uint64
	Seq      uint64
	// AckedBelow promises that the client has received the answer to
	// every Seq below it, so the server may forget those answers.
	AckedBelow uint64
	Key        string
	Value      []byte
	// Prefix selects the keys of an OpList.
	Prefix string
	// PrevValue is the value an OpCAS compares with, when HasPrevValue.
	PrevValue    []byte
	HasPrevValue bool
	// PrevRevision is the mod revision an OpCAS compares with, when
	// HasPrevRevision; 0 means the key must not exist.
	PrevRevision    uint64
	HasPrevRevision bool
	// Serializable lets OpGet/OpList answer from this node's applied
	// state, which may be stale, instead of a linearizable read.
	Serializable bool
	// Limit bounds the keys of an OpList; 0 means no limit.
	Limit uint32
	// TimeoutMs is the client's deadline hint in milliseconds (0 = none).
	TimeoutMs uint32

	// SessionID names the session an op acts for or on (session, lock
	// and election ops).
	SessionID uint64
	// TTLMs is the time to live of the session OpSessionOpen opens.
	TTLMs uint64
	// Name names a lock or an election.
	Name string
	// Token is the fencing token an OpLockCheck asks about.
	Token uint64
	// Wait makes OpLockAcquire wait for a held lock instead of failing
	// with ErrLockHeld.
	Wait bool
	// LockDelayMs, on OpLockAcquire: if the session expires while holding
	// the lock, the lock stays free this long (0 = none).
	LockDelayMs uint64
	// FenceName and FenceToken make an OpPut, OpDelete or OpCAS a fenced
	// write: it applies only while lock FenceName is held with token
	// FenceToken, else fails with ErrFenced. An empty FenceName means an
	// ordinary write.
	FenceName  string
	FenceToken uint64
	// FromRevision starts an OpWatch at this revision (0 = from now:
	// changes after the current revision).
	FromRevision uint64
	// WatchPrefix makes an OpWatch watch the keys starting with Key.
	WatchPrefix bool
	// AfterSeq resumes an OpObserve after this change number (0 = start
	// with the current leader).
	AfterSeq uint64
	// CancelID is the request ID an OpCancel cancels.
	CancelID uint64
	// SnapSlot, SnapSize and SnapCRC name the snapshot an OpSnapshotRead
	// reads (SnapSlot 0: the current one), and Offset where to read.
	SnapSlot paxos.Slot
	SnapSize uint64
	SnapCRC  uint32
	Offset   uint64
	// TargetNode is the member an OpLeaderTransfer hands leadership to
	// (version 3; 0: the leader chooses).
	TargetNode paxos.NodeID
	// StartKey, Revision and PageBytes (version 4) make an OpList a paged
	// listing: PageBytes != 0 asks for one page of about that many bytes
	// (the server may cap it lower; at least one key), from StartKey
	// (inclusive; "" = the prefix's first key), read at store Revision (0
	// = now). The answer's More and NextKey say where the next page
	// starts; every page passes the first page's Revision back. A server
	// of version 3 ignores the three and answers the whole listing from
	// the prefix's first key, so a client sends them only on a connection
	// that negotiated version 4 (ServerConn.Version).
	StartKey  string
	Revision  uint64
	PageBytes uint32
	// QuotaBytes is the space quota an OpQuotaSet sets (version 4).
	QuotaBytes uint64
	// Compares, ThenOps and ElseOps are an OpTxn's (version 8).
	Compares []Compare
	ThenOps  []TxnOp
	ElseOps  []TxnOp
	// Role and Perm (version 10): the role of an OpUserGrantRole or
	// OpUserRevokeRole, the permission of an OpRoleGrant.
	Role string
	Perm Perm
	// SessionIDs are the sessions an OpSessionKeepAliveBatch renews
	// (version 12).
	SessionIDs []uint64
	// MemberID, MemberAddr and MemberLearner (version 16): the member an
	// OpMemberAdd, OpMemberPromote, OpMemberRemove or OpMemberUpdate is
	// about, its address, and whether it joins as a learner.
	MemberID      uint64
	MemberAddr    string
	MemberLearner bool
	// OmitPrev (version 17): a Put or a Delete is answered without the
	// previous pair (Found still says whether there was one). A client
	// that never reads it saves the node encoding, and both ends sending
	// and decoding, a value per write: up to a whole value's bytes on
	// every overwrite. Nothing of it enters the log; an older node
	// ignores it and answers with the pair.
	OmitPrev bool
}

// Perm is what a role may do under a prefix (version 10).
type Perm uint8

const (
	PermRead      Perm = 1
	PermWrite     Perm = 2
	PermReadWrite Perm = 3
)

func (p Perm) String() string {
	switch p {
	case PermRead:
		return "read"
	case PermWrite:
		return "write"
	case PermReadWrite:
		return "readwrite"
	}
	return fmt.Sprintf("Perm(%d)", uint8(p))
}

// UserInfo describes a user (version 10): never its password or hash.
type UserInfo struct {
	Name  string
	Roles []string
	// HasPassword: it can authenticate with a password (else only with a
	// client certificate).
	HasPassword bool
}

// RoleInfo describes a role (version 10).
type RoleInfo struct {
	Name  string
	Perms []RolePerm
}

// RolePerm is one permission of a role: Perm on the keys, locks and
// elections whose name starts with Prefix.
type RolePerm struct {
	Prefix string
	Perm   Perm
}

// CompareTarget says what a Compare reads (version 8).
type CompareTarget uint8

const (
	// CompareValue: the key's value (bytes); never holds for a missing key.
	CompareValue CompareTarget = 1
	// CompareVersion: the key's version (0: missing).
	CompareVersion CompareTarget = 2
	// CompareCreate: the key's create revision (0: missing).
	CompareCreate CompareTarget = 3
	// CompareMod: the key's mod revision (0: missing).
	CompareMod CompareTarget = 4
	// CompareExists: 1 if the key exists, 0 if not.
	CompareExists CompareTarget = 5
	// CompareToken: the fencing token of lock Key while it is held, 0
	// while it is free.
	CompareToken CompareTarget = 6
)

// CompareResult is the relation a Compare requires: what it reads
// <relation> its operand.
type CompareResult uint8

const (
	CompareEqual    CompareResult = 1
	CompareNotEqual CompareResult = 2
	CompareLess     CompareResult = 3
	CompareGreater  CompareResult = 4
)

// Compare is one condition of an OpTxn.
type Compare struct {
	Target CompareTarget
	Result CompareResult
	// Key is the key, or the lock's name (CompareToken).
	Key string
	// Value is CompareValue's operand, Number every other target's.
	Value  []byte
	Number uint64
}

// TxnOpType is the kind of an OpTxn's operation.
type TxnOpType uint8

const (
	// TxnPut sets Key to Value.
	TxnPut TxnOpType = 1
	// TxnDelete deletes Key; with Prefix, every key starting with Key.
	TxnDelete TxnOpType = 2
	// TxnGet reads Key; with Prefix, lists the keys starting with Key
	// (at most Limit, 0 = all).
	TxnGet TxnOpType = 3
)

// TxnOp is one operation of an OpTxn's branch.
type TxnOp struct {
	Type   TxnOpType
	Key    string
	Value  []byte
	Prefix bool
	Limit  uint32
}

// TxnResult is the result of one operation of the branch that ran.
type TxnResult struct {
	Type TxnOpType
	// Found says whether KV holds a pair: a put's previous pair, a
	// single-key delete's deleted pair, a get's pair.
	Found bool
	KV    KV
	// KVs: a prefix get's pairs in key order; More: its limit cut it.
	KVs  []KV
	More bool
	// Deleted counts the keys a delete removed.
	Deleted uint64
}

// KV is a key-value pair with its revisions.
type KV struct {
	Key   string
	Value []byte
	// CreateRevision is the store revision that created the key;
	// ModRevision the one that last changed it (CreateRevision <=
	// ModRevision); Version counts changes since creation (1 = created).
	CreateRevision uint64
	ModRevision    uint64
	Version        uint64
}

// NodeStatus is one member as seen by the node answering an OpStatus.
type NodeStatus struct {
	ID   paxos.NodeID
	Addr string
	// Role is "leader", "follower" or "candidate".
	Role string
	// Ballot is the highest ballot the node knows of.
	Ballot paxos.Ballot
	// Leader is the leader the node knows of (0 = none).
	Leader paxos.NodeID
	// Commit is the node's chosen watermark; Applied <= Commit.
	Commit  paxos.Slot
	Applied paxos.Slot
	// Connected reports whether the answering node has a live connection
	// to this one (true for itself).
	Connected bool
	// Promised is the highest ballot the node promised (at least what it
	// has made durable); AcceptedMax the highest slot it holds a value for
	// (at least Commit); WindowSlots its --window. A member rebuilding
	// after a lost data directory reads them from every other member
	// (service: rejoin).
	Promised    paxos.Ballot
	AcceptedMax paxos.Slot
	WindowSlots uint64
	// Fresh (version 2) says the node has never voted and holds no state:
	// a new member, or one whose data directory was wiped. Stated
	// positively, so that a status without it (an older node) reads as
	// "not fresh", the safe answer for a node deciding whether the cluster
	// is new. ClusterUUID is the cluster's uuid as the node knows it
	// (empty: not yet), Voters the members the cluster recorded as having
	// voted. All three only for the answering node itself.
	Fresh       bool
	ClusterUUID []byte
	Voters      []uint64
	// Formed (version 3) says the node may vote: it formed the cluster,
	// or holds state. A fresh node that formed waits for the others to
	// form too before it votes (service: bootstrap).
	Formed bool
}

// SessionInfo describes a session.
type SessionInfo struct {
	ID uint64
	// TTLMs is the session's time to live (as granted: the server may
	// clamp what was asked for); RemainingMs what is left of it as the
	// answering node counts.
	TTLMs       uint64
	RemainingMs uint64
	// Locks are the locks it holds, Waiting those it waits for, and
	// Elections those it leads or campaigns in.
	Locks     []string
	Waiting   []string
	Elections []string
}

// LockInfo describes a lock.
type LockInfo struct {
	Name string
	// Holder is the session holding it (0 = free) and Token the fencing
	// token of that grant.
	Holder uint64
	Token  uint64
	// Waiters are the sessions waiting for it, first come first.
	Waiters []uint64
	// DelayUntilMs, while a lock-delay keeps the lock free after its
	// holder's session expired: the cluster clock time (ms, the state
	// machine's replicated clock) until which it is not granted; 0 = none.
	DelayUntilMs uint64
}

// LeaderInfo is the state of an election, as of one leadership change.
type LeaderInfo struct {
	Election string
	// Session is the leader's session (0 = no leader); Value what it
	// proclaimed.
	Session uint64
	Value   []byte
	// Term grows with every new leader of the election: the leader's
	// fencing token.
	Term uint64
	// Seq numbers the election's changes (a new leader, a proclaimed
	// value, no leader any more): 1, 2, 3... with no gaps.
	Seq uint64
	// Revision is the store revision at which the change was applied.
	Revision uint64
}

// EventType says what a WatchEvent did to its key.
type EventType uint8

const (
	// EventPut: the key was created or changed; KV is the new pair.
	EventPut EventType = 1
	// EventDelete: the key was deleted; KV holds the key and, as
	// ModRevision, the revision of the deletion.
	EventDelete EventType = 2
)

func (t EventType) String() string {
	switch t {
	case EventPut:
		return "Put"
	case EventDelete:
		return "Delete"
	}
	return fmt.Sprintf("EventType(%d)", uint8(t))
}

// WatchEvent is one change an OpWatch reports.
type WatchEvent struct {
	Type EventType
	KV   KV
	// PrevKV is the pair before the change, when the server provides it
	// (an empty Key means it does not, or that there was none).
	PrevKV KV
}

// Response answers the Request with the same ID.
type Response struct {
	ID  uint64
	Err ErrCode
	// ErrMsg explains Err for humans; empty on success.
	ErrMsg string
	// LeaderHint and LeaderAddr name the leader, if known, with
	// ErrNotLeader.
	LeaderHint paxos.NodeID
	LeaderAddr string
	// Revision is the store revision after the operation (writes) or at
	// which it was served (reads).
	Revision uint64
	// Found reports whether KV holds a pair (see each Op); for a Put or
	// Delete with OmitPrev, whether there was a previous pair, which KV
	// then leaves out.
	Found bool
	KV    KV
	// KVs are the pairs of an OpList, in key order.
	KVs []KV
	// Status lists the members, for OpStatus.
	Status []NodeStatus
	// Succeeded reports whether an OpCAS wrote (then Err is ErrNone).
	Succeeded bool

	// Session describes the session an OpSessionOpen opened, an
	// OpSessionKeepAlive kept alive or an OpSessionClose closed.
	Session SessionInfo
	// Sessions lists the sessions, for OpSessionList.
	Sessions []SessionInfo
	// Token is the fencing token an OpLockAcquire was granted, or the
	// leader's term (OpCampaign, OpProclaim, OpLeader).
	Token uint64
	// Held reports, for OpLockCheck, whether the token holds the lock.
	Held bool
	// Lock describes the lock an op acted on or asked about.
	Lock LockInfo
	// Locks lists the locks, for OpLockList.
	Locks []LockInfo
	// Leader is the election's state (OpCampaign, OpProclaim, OpResign,
	// OpLeader) or one change of it (each OpObserve response).
	Leader LeaderInfo
	// Events are the changes one OpWatch response carries, in revision
	// order.
	Events []WatchEvent
	// CompactRevision, with ErrCompacted on an OpWatch: the oldest
	// revision still available.
	CompactRevision uint64
	// StreamEnd marks the last response of a stream (OpWatch, OpObserve):
	// after an OpCancel for it (Err is ErrCanceled) or an error.
	StreamEnd bool
	// SnapSlot, SnapSize and SnapCRC describe the snapshot an
	// OpSnapshotRead read, and Data holds the bytes read.
	SnapSlot paxos.Slot
	SnapSize uint64
	SnapCRC  uint32
	Data     []byte
	// More (version 4) says an OpList answer stopped before the end of
	// the listing (its limit, or a paged listing's byte bound); NextKey is
	// then the StartKey of the next page: the last key with "\x00"
	// appended.
	More    bool
	NextKey string
	// QuotaUsed and QuotaBytes answer an OpQuotaGet (version 4): the
	// bytes of the live keys and values, and the quota; QuotaSet says
	// whether the cluster has applied a quota (only then is it enforced;
	// until then QuotaBytes is the default the node would propose).
	QuotaUsed  uint64
	QuotaBytes uint64
	QuotaSet   bool
	// TxnResults answer an OpTxn (version 8): one per operation of the
	// branch that ran (Succeeded: the compares held, the then branch).
	TxnResults []TxnResult
	// Users, Roles (version 10) answer OpUserList and OpRoleList;
	// AuthEnabled and User answer OpAuthStatus (User also
	// OpAuthenticate): the user the connection acts as ("" = none).
	Users       []UserInfo
	Roles       []RoleInfo
	AuthEnabled bool
	User        string
	// ExpiredSessions answers an OpSessionKeepAliveBatch (version 12): the
	// ids of the batch that no longer exist, in the batch's order; every
	// other id was renewed.
	ExpiredSessions []uint64
	// RetryAfterMs, with ErrBusy (version 13): how long the client should
	// wait before sending the request again, from the node's backlog.
	RetryAfterMs uint64
	// Members and ConfigVersion (version 16) answer the member
	// operations: the configuration (in force, or for a change the one it
	// made) and its version.
	Members       []MemberInfo
	ConfigVersion uint64
}

var requestFields = []field[Request]{
	uintField("id", func(q *Request) *uint64 { return &q.ID }),
	uintField("op", func(q *Request) *Op { return &q.Op }),
	uintField("client_id", func(q *Request) *uint64 { return &q.ClientID }),
	uintField("seq", func(q *Request) *uint64 { return &q.Seq }),
	uintField("acked_below", func(q *Request) *uint64 { return &q.AckedBelow }),
	strField("key", func(q *Request) *string { return &q.Key }),
	binField("value", func(q *Request) *[]byte { return &q.Value }),
	strField("prefix", func(q *Request) *string { return &q.Prefix }),
	binField("prev_value", func(q *Request) *[]byte { return &q.PrevValue }),
	boolField("has_prev_value", func(q *Request) *bool { return &q.HasPrevValue }),
	uintField("prev_revision", func(q *Request) *uint64 { return &q.PrevRevision }),
	boolField("has_prev_revision", func(q *Request) *bool { return &q.HasPrevRevision }),
	boolField("serializable", func(q *Request) *bool { return &q.Serializable }),
	uintField("limit", func(q *Request) *uint32 { return &q.Limit }),
	uintField("timeout_ms", func(q *Request) *uint32 { return &q.TimeoutMs }),
	uintField("session_id", func(q *Request) *uint64 { return &q.SessionID }),
	uintField("ttl_ms", func(q *Request) *uint64 { return &q.TTLMs }),
	strField("name", func(q *Request) *string { return &q.Name }),
	uintField("token", func(q *Request) *uint64 { return &q.Token }),
	boolField("wait", func(q *Request) *bool { return &q.Wait }),
	uintField("lock_delay_ms", func(q *Request) *uint64 { return &q.LockDelayMs }),
	strField("fence_name", func(q *Request) *string { return &q.FenceName }),
	uintField("fence_token", func(q *Request) *uint64 { return &q.FenceToken }),
	uintField("from_revision", func(q *Request) *uint64 { return &q.FromRevision }),
	boolField("watch_prefix", func(q *Request) *bool { return &q.WatchPrefix }),
	uintField("after_seq", func(q *Request) *uint64 { return &q.AfterSeq }),
	uintField("cancel_id", func(q *Request) *uint64 { return &q.CancelID }),
	uintField("snap_slot", func(q *Request) *paxos.Slot { return &q.SnapSlot }),
	uintField("snap_size", func(q *Request) *uint64 { return &q.SnapSize }),
	uintField("snap_crc", func(q *Request) *uint32 { return &q.SnapCRC }),
	uintField("offset", func(q *Request) *uint64 { return &q.Offset }),
	uintField("target_node", func(q *Request) *paxos.NodeID { return &q.TargetNode }),
	strField("start_key", func(q *Request) *string { return &q.StartKey }),
	uintField("revision", func(q *Request) *uint64 { return &q.Revision }),
	uintField("page_bytes", func(q *Request) *uint32 { return &q.PageBytes }),
	uintField("quota_bytes", func(q *Request) *uint64 { return &q.QuotaBytes }),
	listField("compares", func(q *Request) *[]Compare { return &q.Compares }, compareFields),
	listField("then_ops", func(q *Request) *[]TxnOp { return &q.ThenOps }, txnOpFields),
	listField("else_ops", func(q *Request) *[]TxnOp { return &q.ElseOps }, txnOpFields),
	strField("role", func(q *Request) *string { return &q.Role }),
	uintField("perm", func(q *Request) *Perm { return &q.Perm }),
	// version 12 (keep-alive batches)
	uintListField("session_ids", func(q *Request) *[]uint64 { return &q.SessionIDs }),
	uintField("member_id", func(q *Request) *uint64 { return &q.MemberID }),
	strField("member_addr", func(q *Request) *string { return &q.MemberAddr }),
	boolField("member_learner", func(q *Request) *bool { return &q.MemberLearner }),
	// version 17
	boolField("omit_prev", func(q *Request) *bool { return &q.OmitPrev }),
}

var userInfoFields = []field[UserInfo]{
	strField("name", func(u *UserInfo) *string { return &u.Name }),
	strListField("roles", func(u *UserInfo) *[]string { return &u.Roles }),
	boolField("has_password", func(u *UserInfo) *bool { return &u.HasPassword }),
}

var rolePermFields = []field[RolePerm]{
	strField("prefix", func(p *RolePerm) *string { return &p.Prefix }),
	uintField("perm", func(p *RolePerm) *Perm { return &p.Perm }),
}

var roleInfoFields = []field[RoleInfo]{
	strField("name", func(r *RoleInfo) *string { return &r.Name }),
	listField("perms", func(r *RoleInfo) *[]RolePerm { return &r.Perms }, rolePermFields),
}

var compareFields = []field[Compare]{
	uintField("target", func(c *Compare) *CompareTarget { return &c.Target }),
	uintField("result", func(c *Compare) *CompareResult { return &c.Result }),
	strField("key", func(c *Compare) *string { return &c.Key }),
	binField("value", func(c *Compare) *[]byte { return &c.Value }),
	uintField("number", func(c *Compare) *uint64 { return &c.Number }),
}

var txnOpFields = []field[TxnOp]{
	uintField("type", func(o *TxnOp) *TxnOpType { return &o.Type }),
	strField("key", func(o *TxnOp) *string { return &o.Key }),
	binField("value", func(o *TxnOp) *[]byte { return &o.Value }),
	boolField("prefix", func(o *TxnOp) *bool { return &o.Prefix }),
	uintField("limit", func(o *TxnOp) *uint32 { return &o.Limit }),
}

var txnResultFields = []field[TxnResult]{
	uintField("type", func(r *TxnResult) *TxnOpType { return &r.Type }),
	boolField("found", func(r *TxnResult) *bool { return &r.Found }),
	structField("kv", func(r *TxnResult) *KV { return &r.KV }, kvFields),
	listField("kvs", func(r *TxnResult) *[]KV { return &r.KVs }, kvFields),
	boolField("more", func(r *TxnResult) *bool { return &r.More }),
	uintField("deleted", func(r *TxnResult) *uint64 { return &r.Deleted }),
}

var kvFields = []field[KV]{
	strField("key", func(kv *KV) *string { return &kv.Key }),
	binField("value", func(kv *KV) *[]byte { return &kv.Value }),
	uintField("create_revision", func(kv *KV) *uint64 { return &kv.CreateRevision }),
	uintField("mod_revision", func(kv *KV) *uint64 { return &kv.ModRevision }),
	uintField("version", func(kv *KV) *uint64 { return &kv.Version }),
}

var nodeStatusFields = []field[NodeStatus]{
	uintField("id", func(s *NodeStatus) *paxos.NodeID { return &s.ID }),
	strField("addr", func(s *NodeStatus) *string { return &s.Addr }),
	strField("role", func(s *NodeStatus) *string { return &s.Role }),
	uintField("ballot_round", func(s *NodeStatus) *uint64 { return &s.Ballot.Round }),
	uintField("ballot_node", func(s *NodeStatus) *paxos.NodeID { return &s.Ballot.Node }),
	uintField("leader", func(s *NodeStatus) *paxos.NodeID { return &s.Leader }),
	uintField("commit", func(s *NodeStatus) *paxos.Slot { return &s.Commit }),
	uintField("applied", func(s *NodeStatus) *paxos.Slot { return &s.Applied }),
	boolField("connected", func(s *NodeStatus) *bool { return &s.Connected }),
	uintField("promised_round", func(s *NodeStatus) *uint64 { return &s.Promised.Round }),
	uintField("promised_node", func(s *NodeStatus) *paxos.NodeID { return &s.Promised.Node }),
	uintField("accepted_max", func(s *NodeStatus) *paxos.Slot { return &s.AcceptedMax }),
	uintField("window_slots", func(s *NodeStatus) *uint64 { return &s.WindowSlots }),
	boolField("fresh", func(s *NodeStatus) *bool { return &s.Fresh }),
	binField("cluster_uuid", func(s *NodeStatus) *[]byte { return &s.ClusterUUID }),
	uintListField("voters", func(s *NodeStatus) *[]uint64 { return &s.Voters }),
	boolField("formed", func(s *NodeStatus) *bool { return &s.Formed }),
}

var sessionInfoFields = []field[SessionInfo]{
	uintField("id", func(s *SessionInfo) *uint64 { return &s.ID }),
	uintField("ttl_ms", func(s *SessionInfo) *uint64 { return &s.TTLMs }),
	uintField("remaining_ms", func(s *SessionInfo) *uint64 { return &s.RemainingMs }),
	strListField("locks", func(s *SessionInfo) *[]string { return &s.Locks }),
	strListField("waiting", func(s *SessionInfo) *[]string { return &s.Waiting }),
	strListField("elections", func(s *SessionInfo) *[]string { return &s.Elections }),
}

var lockInfoFields = []field[LockInfo]{
	strField("name", func(l *LockInfo) *string { return &l.Name }),
	uintField("holder", func(l *LockInfo) *uint64 { return &l.Holder }),
	uintField("token", func(l *LockInfo) *uint64 { return &l.Token }),
	uintListField("waiters", func(l *LockInfo) *[]uint64 { return &l.Waiters }),
	uintField("delay_until_ms", func(l *LockInfo) *uint64 { return &l.DelayUntilMs }),
}

var leaderInfoFields = []field[LeaderInfo]{
	strField("election", func(l *LeaderInfo) *string { return &l.Election }),
	uintField("session", func(l *LeaderInfo) *uint64 { return &l.Session }),
	binField("value", func(l *LeaderInfo) *[]byte { return &l.Value }),
	uintField("term", func(l *LeaderInfo) *uint64 { return &l.Term }),
	uintField("seq", func(l *LeaderInfo) *uint64 { return &l.Seq }),
	uintField("revision", func(l *LeaderInfo) *uint64 { return &l.Revision }),
}

var watchEventFields = []field[WatchEvent]{
	uintField("type", func(e *WatchEvent) *EventType { return &e.Type }),
	structField("kv", func(e *WatchEvent) *KV { return &e.KV }, kvFields),
	structField("prev_kv", func(e *WatchEvent) *KV { return &e.PrevKV }, kvFields),
}

var responseFields = []field[Response]{
	uintField("id", func(s *Response) *uint64 { return &s.ID }),
	uintField("err", func(s *Response) *ErrCode { return &s.Err }),
	strField("err_msg", func(s *Response) *string { return &s.ErrMsg }),
	uintField("leader_hint", func(s *Response) *paxos.NodeID { return &s.LeaderHint }),
	strField("leader_addr", func(s *Response) *string { return &s.LeaderAddr }),
	uintField("revision", func(s *Response) *uint64 { return &s.Revision }),
	boolField("found", func(s *Response) *bool { return &s.Found }),
	structField("kv", func(s *Response) *KV { return &s.KV }, kvFields),
	listField("kvs", func(s *Response) *[]KV { return &s.KVs }, kvFields),
	listField("status", func(s *Response) *[]NodeStatus { return &s.Status }, nodeStatusFields),
	boolField("succeeded", func(s *Response) *bool { return &s.Succeeded }),
	structField("session", func(s *Response) *SessionInfo { return &s.Session }, sessionInfoFields),
	listField("sessions", func(s *Response) *[]SessionInfo { return &s.Sessions }, sessionInfoFields),
	uintField("token", func(s *Response) *uint64 { return &s.Token }),
	boolField("held", func(s *Response) *bool { return &s.Held }),
	structField("lock", func(s *Response) *LockInfo { return &s.Lock }, lockInfoFields),
	listField("locks", func(s *Response) *[]LockInfo { return &s.Locks }, lockInfoFields),
	structField("leader", func(s *Response) *LeaderInfo { return &s.Leader }, leaderInfoFields),
	listField("events", func(s *Response) *[]WatchEvent { return &s.Events }, watchEventFields),
	uintField("compact_revision", func(s *Response) *uint64 { return &s.CompactRevision }),
	boolField("stream_end", func(s *Response) *bool { return &s.StreamEnd }),
	uintField("snap_slot", func(s *Response) *paxos.Slot { return &s.SnapSlot }),
	uintField("snap_size", func(s *Response) *uint64 { return &s.SnapSize }),
	uintField("snap_crc", func(s *Response) *uint32 { return &s.SnapCRC }),
	binField("data", func(s *Response) *[]byte { return &s.Data }),
	boolField("more", func(s *Response) *bool { return &s.More }),
	strField("next_key", func(s *Response) *string { return &s.NextKey }),
	uintField("quota_used", func(s *Response) *uint64 { return &s.QuotaUsed }),
	uintField("quota_bytes", func(s *Response) *uint64 { return &s.QuotaBytes }),
	boolField("quota_set", func(s *Response) *bool { return &s.QuotaSet }),
	listField("txn_results", func(s *Response) *[]TxnResult { return &s.TxnResults }, txnResultFields),
	listField("users", func(s *Response) *[]UserInfo { return &s.Users }, userInfoFields),
	listField("roles", func(s *Response) *[]RoleInfo { return &s.Roles }, roleInfoFields),
	boolField("auth_enabled", func(s *Response) *bool { return &s.AuthEnabled }),
	strField("user", func(s *Response) *string { return &s.User }),
	// version 12 (keep-alive batches)
	uintListField("expired_sessions", func(s *Response) *[]uint64 { return &s.ExpiredSessions }),
	// version 13 (back-pressure)
	uintField("retry_after_ms", func(s *Response) *uint64 { return &s.RetryAfterMs }),
	listField("members", func(s *Response) *[]MemberInfo { return &s.Members }, memberInfoFields),
	uintField("config_version", func(s *Response) *uint64 { return &s.ConfigVersion }),
}

// EncodeRequest appends the body of a request frame carrying q to dst.
func EncodeRequest(dst []byte, q *Request) []byte {
	return appendFrameBody(dst, FrameRequest, q, requestFields)
}

// DecodeRequest decodes a request frame body. Byte slices in the result
// alias body. Unknown operations decode (see Op.Valid).
func DecodeRequest(body []byte) (*Request, error) {
	q := new(Request)
	if err := decodeFrameBody(body, FrameRequest, q, requestFields); err != nil {
		return nil, err
	}
	return q, nil
}

// EncodeResponse appends the body of a response frame carrying s to dst.
func EncodeResponse(dst []byte, s *Response) []byte {
	return appendFrameBody(dst, FrameResponse, s, responseFields)
}

// DecodeResponse decodes a response frame body. Byte slices in the result
// alias body.
func DecodeResponse(body []byte) (*Response, error) {
	s := new(Response)
	if err := decodeFrameBody(body, FrameResponse, s, responseFields); err != nil {
		return nil, err
	}
	return s, nil
}
