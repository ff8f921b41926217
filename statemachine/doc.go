// Package statemachine is paxosd's replicated state machine: a key-value
// store with duplicate detection, a cluster clock, sessions, locks with
// fencing tokens and leader elections, together with the log format of its
// commands (Command, EncodeCommand, DecodeCommand) and its snapshot format
// (Snapshot, RestoreStateMachine). It is deterministic and does no I/O; the
// node (package service) drives it, applying every chosen slot in order.
//
// Its error sentinels keep the "service: " prefix they had when the state
// machine lived in package service: a Result's error message is part of the
// replicated state (Hash covers it, snapshots carry it), so it must not
// change.
//
// # The state machine
//
// StateMachine holds the replicated state. The node applies every chosen
// slot to it in slot order, with Apply (one encoded Command), ApplyCommand
// (a decoded one) or ApplyValue (a whole paxos.Value). Every replica applies
// the same commands in the same order, so every replica must end in the
// same state and return the same Results and the same late Answers; Hash
// digests the state so that the node's state check (and tests) can check
// this (hash.go says what it covers at each cluster level).
//
// # Determinism rules
//
// Apply is a pure function of the state and the command bytes:
//
//   - no clock: time exists inside the state machine only as the cluster
//     clock, which moves when an OpClock command (proposed by the leader,
//     see below) is applied; replicas never read their own clocks while
//     applying;
//   - no I/O, no goroutines, no randomness;
//   - no map iteration order in any result or decision: lists come from a
//     sorted key index or are sorted, sessions expire in id order, locks
//     and elections are released in name order, the duplicate table is
//     hashed in client-id order, and eviction picks a victim by a total
//     order;
//   - limits (SMOptions) are part of the state machine's definition: every
//     replica must run with the same options;
//   - a malformed command is answered with ErrInvalid and changes nothing;
//     Apply never panics on input. It panics only when the caller breaks
//     slot order.
//
// # Revisions
//
// As in etcd, the store revision starts at 0 and grows by one with each
// change (a put, a delete of an existing key, a successful cas). Each key
// records the revision that created it (CreateRevision), that last changed
// it (ModRevision) and the number of puts since creation (Version). Every
// Result carries the store revision after the command. A cas compares
// PrevValue against the value and/or PrevRevision against ModRevision;
// PrevRevision 0 means "the key must not exist", which makes a create-only
// put. A failed cas is Succeeded == false, not an error. Sessions, locks and
// elections do not move the revision.
//
// # The cluster clock
//
// The state machine's time is Clock(), in milliseconds. It starts at 0 and
// only moves when an OpClock command is applied: clock = max(clock, Now),
// so it never goes back, whatever order clock commands from an old and a
// new leader end up in. Applying an OpClock then, deterministically, starts
// the deadlines of the sessions opened or kept alive since the previous
// clock command (see Sessions), expires every session whose deadline is at
// or before the clock (in session id order) and ends the lock-delays that
// have run out (in lock name order), granting those locks to their
// waiters. Nothing else reads time: without clock commands nothing ever
// expires.
//
// OpClock is internal. Only the leader node proposes it, with ClientID 0
// (the state machine refuses a clock command that carries a client id, and
// the node refuses it from clients). The leader sets Now to the clock it
// last saw applied plus the time its own monotonic clock measured since
// then, so cluster time advances by the time that some leader actually saw
// pass, never by wall-clock readings that differ between machines.
//
// # Sessions
//
// OpSessionOpen{TTLMs} opens a session with a new id (from a counter
// starting at 1; ids are never reused); the TTL must be
// SessionTTLMinMs..SessionTTLMaxMs (1 s to 1 h). OpSessionKeepAlive renews
// it; OpSessionKeepAliveBatch (from LevelKeepAliveBatch) renews each live
// session of its SessionIDs the same way and reports the others in
// Result.Expired. OpSessionClose ends it. Keep-alive or close of a session that does not
// exist (expired, closed, never opened) is ErrSessionExpired. Results carry
// a SessionInfo with the time left (RemainingMs) on the cluster clock.
//
// The deadline after an open or keep-alive is clock + TTL where clock is
// the cluster clock set by the first OpClock applied after it (until then,
// provisionally, the clock already applied + TTL). The clock already applied
// when a keep-alive arrives can lag real time by up to one clock interval
// and a commit; counting from it would let the cluster expire a session
// slightly before a client that counts the TTL from the moment it sent the
// keep-alive gives up on it — and then grant its locks while the client
// still acts on them. A clock command that follows the keep-alive in the
// log was proposed after it (a leader assigns slots in the order it
// proposes, and a later leader's new slots follow every slot chosen before
// its election), so its Now is a reading taken after the keep-alive
// reached the leader — or a smaller one, from a new leader that does not
// count the time before its election, which only errs toward keeping the
// session. The cost: a session may outlive its TTL by one clock interval.
//
// When a session ends, closed or expired, everything it holds is released,
// in this order and each kind in name order: the locks it holds (after an
// expiry with the lock-delay their acquire asked for; after a close at
// once), its waiting lock acquires (answered ErrSessionExpired), its
// elections (as leader it resigns; as candidate it leaves, its campaign
// answered ErrSessionExpired), and last (from LevelEphemeral on) the keys
// bound to it by puts with its SessionID, deleted at one new revision
// (ephemeral.go). A lock or a leadership is never handed to a
// session that the same clock command is expiring: such a waiter is
// answered ErrSessionExpired and skipped.
//
// # Why a failover neither expires a healthy client nor keeps a dead one
//
// Session deadlines are points on the replicated cluster clock, and the
// clock is itself replicated state: every replica, and so every future
// leader, knows the last applied clock value — the checkpoint. A new
// leader resumes from it, adding only time it measures itself from the
// moment it leads (remaining TTLs are thus checkpointed through the log with
// every clock command, at no cost per session). Hence:
//
//   - A failover never expires a healthy client. The time without a leader
//     (the election) is not counted, and during it no client could have
//     reached a leader to keep its session alive anyway. Nor does the clock
//     jump: a new leader with a fast or wrong wall clock cannot expire
//     anyone, since only monotonic elapsed time is added. Cluster time runs
//     no faster than real time (up to clock-rate drift), and a deadline
//     counts from a clock reading taken after the keep-alive reached the
//     leader (see Sessions), so a client that counts its TTL on its own
//     monotonic clock from the moment it sent its last acknowledged
//     keep-alive declares its session lost no later than the cluster
//     expires it; a margin covers the drift.
//   - A failover never makes a session immortal. A deadline is absolute on
//     the cluster clock: a leader change does not reset it to a full TTL
//     (the bug of etcd issues 9395 and 13294, where every new leader
//     renewed every lease and repeated leader changes kept dead sessions
//     alive). Only a keep-alive moves a deadline. Each leader's tenure
//     advances the clock, so a session that stops sending keep-alives
//     expires once TTL of leader time has passed: after its TTL plus the
//     leaderless gaps in between, however often the leader changes.
//
// # Locks and fencing tokens
//
// OpLockAcquire{Name, SessionID, Wait, LockDelayMs} takes a lock for a
// session (which must exist, else ErrSessionExpired). If the session holds
// it already, the answer is its current token (idempotent). If the lock is
// free, has no waiters and is not in a lock-delay, it is granted with a new
// token. Otherwise a try (Wait false) fails with ErrLockHeld and a Result.Lock
// showing the holder; a blocking acquire is queued (first come, first
// served; one entry per session, answering the newest request) and answered
// Pending. OpLockRelease frees a held lock (the next waiter gets it at
// once) or withdraws a waiting acquire (answered ErrCanceled); otherwise it
// is ErrNotHeld. OpLockCheck{Name, Token} reports whether Token is the
// current holder's token (Result.Held): a linearizable check, as it goes
// through the log.
//
// Tokens come from one counter shared by every lock grant and every
// election term: it starts at 0 and grows by one per grant. A lock's tokens
// therefore strictly grow across all its grants, even though the record of
// a free lock nobody waits for is deleted, so a resource can refuse a
// holder whose token is older than one it has seen. A fenced write — a put,
// delete or cas with FenceName and FenceToken — succeeds only while lock
// FenceName is held with exactly FenceToken; otherwise it fails with
// ErrFenced and changes nothing.
//
// The lock-delay (Chubby): LockDelayMs, at most LockDelayMaxMs, keeps the
// lock free for that long after its holder's session expires, since the
// old holder may still be running and unaware. It does not apply after a
// release or a session close: the holder said it was done.
//
// # Elections
//
// Elections follow etcd's concurrency.Election. OpCampaign{Name, SessionID,
// Value}: with no leader the session leads, in a new term whose number is a
// token from the shared counter (Result.Token and Leader.Term); the leader
// campaigning again gets its current leadership; anyone else is queued
// (first come, first served) and answered Pending, and later when it leads.
// OpProclaim sets the leader's value (same term); by anyone else it is
// ErrNotElectionLeader. OpResign by the leader hands leadership to the
// next candidate, in a new term, or leaves the election without a leader;
// by a candidate it withdraws the campaign (answered ErrCanceled).
// OpLeader reads the leader (ErrNotFound when there is none).
//
// Every change of an election — a new leader, a proclaimed value, no leader
// any more — gets the next number of the election's sequence (1, 2, 3...
// with no gaps) and goes into its history as a LeaderChange with the store
// revision at that point. Observers read it with ElectionChanges(name,
// afterSeq) and resume from the last number they saw. Election records are
// never deleted, so the numbering of a name never restarts.
//
// # Waiting commands and late answers
//
// A blocking acquire or a campaign that must wait is answered Pending. Its
// real answer is produced later, while applying another command (a
// release, a resign, a session close, a clock command that expires a
// session or ends a lock-delay): a grant, a leadership, ErrCanceled or
// ErrSessionExpired. The state machine collects these as Answers, each for
// the (ClientID, Seq) of the waiting command, in a deterministic order;
// the node takes them with TakeAnswers after applying and answers the
// clients waiting for those requests.
//
// # Histories
//
// Two bounded histories serve streams. They are derived from the commands
// — deterministic, but not replicated state. The KV history is not part of
// Hash (a snapshot carries only its newest part); the elections' kept
// changes are, from LevelHashEncoding on (hash.go):
//
//   - KV events for watches: every put, delete and successful cas appends a
//     KVEvent (for a delete, KV holds the key and the revision of the
//     deletion; PrevKV the pair before). The latest SMOptions.KVHistoryMax
//     events are kept, fewer if they exceed SMOptions.KVHistoryBytesMax.
//     KVEvents(fromRevision, key, prefix, max) returns ErrCompacted if a
//     change at or after fromRevision was dropped; OldestRevision says from
//     where the history is complete.
//   - Each election keeps its latest SMOptions.ElectionHistoryMax changes;
//     ElectionChanges returns ErrCompacted if change afterSeq+1 was dropped.
//
// A restored backup starts a new cluster from a snapshot
// (StartNewCluster, newcluster.go): every session ends, revisions, tokens,
// terms, session ids and change numbers continue a bump above the old
// ones, and both histories start compacted at the new numbers, so a watch
// or an observe resumed from the old cluster gets ErrCompacted.
//
// # Local queries
//
// The node reads applied state directly (no log, not linearizable) for
// status, lists and streams: Get, List, Revision, Applied, Clock, Sessions,
// Session, SessionCount, Locks, Lock, LockCount, LeaderOf, ElectionChanges,
// KVEvents and OldestRevision. Results share byte slices (values) with the
// state machine; callers must not modify them.
//
// # Duplicate detection contract
//
// The table of recent answers is replicated state, included in Hash (and in
// snapshots, when they exist): a retry after a leader change must find the
// same answer on the new leader.
//
//   - A command carries (ClientID, Seq). Clients number their requests and
//     retry a request with the same pair, on any node.
//   - For each client the state machine keeps the Result of every applied
//     mutating command — put, delete, cas, session open, keep-alive and
//     close, lock acquire and release, campaign, proclaim, resign — with Seq
//     >= the client's floor. A command whose (ClientID, Seq) was applied
//     already returns the stored Result and is not applied again: the
//     revision does not move, a keep-alive does not extend the TTL again, a
//     waiting acquire is not queued twice.
//   - A waiting command's stored result is Pending until its late answer
//     replaces it: a retry while it waits returns Pending again, a retry
//     after returns the grant (or the error it ended with).
//   - Every command carries AckedBelow: the client has its answers for all
//     Seq below it. The floor rises to AckedBelow (it never falls) and the
//     results below it are forgotten. A command with Seq below the floor
//     whose result is not stored is answered with ErrStaleRequest and
//     changes nothing; it may or may not have been applied before, and the
//     state machine can no longer tell.
//   - A client that leaves more than SMOptions.ResultsPerClientMax results
//     unacknowledged loses the oldest that is not Pending: its floor rises
//     past it. Pending results are never dropped for room (they may then
//     sit below the floor); once answered they count like any other.
//   - Reads (get, list, lock check, leader) are never stored and never
//     refused as stale: running one again is harmless. They raise the floor
//     and count as activity of a client already in the table, but do not
//     add one.
//   - ClientID 0 turns duplicate detection off: the command is always
//     applied. OpClock and the other internal commands (OpLevel...) always
//     have ClientID 0.
//   - The table holds at most SMOptions.ClientsMax clients. A new client
//     beyond that evicts the one whose last command came in the oldest slot,
//     the smaller ClientID first among equals, so every replica evicts the
//     same client. An evicted client is forgotten entirely, Pending results
//     included: a retry of one of its earlier commands is applied again (a
//     retried acquire of a session that already waits or holds is
//     harmless: it keeps one queue entry, or returns the current token).
//   - From cluster level LevelDedupBytes on (see The cluster level), the
//     stored results also hold at most SMOptions.DedupBytesMax bytes,
//     counted per result as a fixed overhead (dedupResultOverhead, 384)
//     plus the keys and values of KV and KVs and the other parts a client
//     sizes (an election's name and value, a lock's name and waiters, a
//     session's lists of names). After every valid command, while over:
//     the least recently active client other than the command's own is
//     evicted, in the order above and as entirely; then, if the command's
//     own client alone is over, its oldest results that are not Pending
//     are forgotten and its floor raised past them, so that their retries
//     get ErrStaleRequest and are never applied twice. Pending results are
//     never forgotten for room. The count is derived from the stored
//     results (recomputed on restore, never in a snapshot), so it is the
//     same on every replica. Below that level the bound decides nothing:
//     the table behaves as in builds without it, as the older members of a
//     mixed cluster do.
//   - Invalid commands never touch the table.
//
// # The cluster level
//
// Level() is the replicated switch for behaviour changes (level.go), like
// etcd's cluster version: 0 at first, raised (never lowered) by the
// internal OpLevel{Level}, which a leader proposes once every member speaks
// a protocol version at least that level, so every replica changes
// behaviour at the same slot. Levels are numbered after the protocol
// version that brought them: LevelDedupBytes (5, the duplicate table
// bounded by bytes) is the first, LevelHashEncoding (6, Hash computed from
// the snapshot encoding) the second; LevelMax is the highest this build
// implements, and an OpLevel above it is refused. The level is in Hash and
// in snapshots (format 4) only once above 0.
//
// # Command encoding
//
// A Command travels through the log as a msgpack array of its fields in
// this fixed order; trailing fields at their zero value are omitted, and
// new fields are only ever appended:
//
//	[ ClientID uint, Seq uint, AckedBelow uint, Op uint,
//	  Key str, Value bin|nil, PrevValue bin|nil, PrevRevision uint|nil,
//	  Prefix str, Limit uint,
//	  SessionID uint, TTLMs uint, Name str, Token uint, Wait bool,
//	  LockDelayMs uint, Now uint, FenceName str, FenceToken uint,
//	  HashSlot uint, StateHash uint, Reporter uint, Source uint,
//	  Quota uint, Level uint,
//	  Compares [[Target uint, Result uint, Key str, Value bin|nil, Number uint]...],
//	  Then [[Type uint, Key str, Value bin|nil, Prefix bool, Limit uint]...],
//	  Else [same as Then],
//	  User str, Role str, Perm uint, SessionIDs [uint...] ]
//
// nil in PrevValue or PrevRevision means "no such condition". Commands
// written before the coordination fields existed decode unchanged. The
// encoding is deterministic: EncodeCommand of equal commands gives equal
// bytes. Op numbers are shared with package wire and never reused: 1 put,
// 2 get, 3 delete, 4 cas, 5 list, 7 session open, 8 keep-alive, 9 close,
// 11 lock acquire, 12 release, 13 check, 15 campaign, 16 proclaim,
// 17 resign, 18 leader, 22 clock, 24 state hash (a member's report for the
// state check, service/statecheck.go: it changes nothing), 25 cluster id,
// 26 voter, 28 quota set, 30 quota default, 31 level, 32 txn (from
// cluster level 8, txn.go), 33-42 the user, role and auth commands (from
// cluster level 10, auth.go: Value is a bcrypt hash, never a password;
// User, on a session command, the user the node authenticated), 47
// keep-alive batch (from cluster level 12, keepalive_batch.go); 6, 10,
// 14, 19, 20, 21, 23, 27, 29 and 43-46 are wire-only operations served
// from local state, which the state machine refuses.
package statemachine
