package statemachine

import (
	"errors"
	"fmt"
	"slices"

	"github.com/paxosd/paxosd/paxos"
)

var (
	// ErrNotFound: get or delete of a key that does not exist (Found is
	// false), or a leader query for an election without a leader. List
	// never returns it; an empty list is not an error.
	ErrNotFound = errors.New("service: not found")
	// ErrInvalid: the command is malformed or breaks a limit; it changed
	// nothing. The wrapped message says what is wrong.
	ErrInvalid = errors.New("service: invalid argument")
	// ErrTooLarge: a key or value exceeds its limit. It is always returned
	// together with ErrInvalid (errors.Is matches both).
	ErrTooLarge = errors.New("service: too large")
	// ErrStaleRequest: the command's Seq is below its client's floor, so its
	// answer (if it was ever applied) has been forgotten. The command was
	// not applied now; whether an earlier copy of it was is unknown.
	ErrStaleRequest = errors.New("service: stale request: its answer was already forgotten")
	// ErrSessionExpired: the command names a session that does not exist
	// (it expired, was closed, or never was); or, as the answer to a
	// waiting lock acquire or campaign, the session ended while it waited.
	ErrSessionExpired = errors.New("service: session expired")
	// ErrLockHeld: a lock acquire that does not wait found the lock taken
	// (or in its lock-delay, or with waiters ahead). Result.Lock shows the
	// lock's state.
	ErrLockHeld = errors.New("service: lock held")
	// ErrNotHeld: a release of a lock that the session neither holds nor
	// waits for.
	ErrNotHeld = errors.New("service: lock not held")
	// ErrCanceled: the answer to a waiting lock acquire or campaign that
	// its session withdrew (a release or resign while waiting, or a newer
	// request of the same session replacing it).
	ErrCanceled = errors.New("service: canceled")
	// ErrFenced: a fenced write whose token is not the current holder's
	// token of its lock; nothing was written.
	ErrFenced = errors.New("service: fenced: the lock token is not the current holder's")
	// ErrNotElectionLeader: a proclaim or resign by a session that does not
	// lead the election. The wrapped message names the election.
	ErrNotElectionLeader = errors.New("service: not the leader of election")
	// ErrCompacted: a history query (KVEvents, ElectionChanges) asked for
	// events that were already dropped from the bounded history.
	ErrCompacted = errors.New("service: history compacted: the requested events are no longer kept")

	// ErrPermissionDenied: the command acts on a session that belongs to
	// another user (auth.go); nothing changed.
	ErrPermissionDenied = errors.New("service: permission denied")
)

// Limits of the coordination commands, part of the state machine's
// definition.
const (
	SessionTTLMinMs = 1000    // shortest session TTL: 1 s
	SessionTTLMaxMs = 3600000 // longest session TTL: 1 h
	LockDelayMaxMs  = 60000   // longest lock-delay: 1 min
)

// Result is the answer to one command.
//
// A failed compare-and-set is not an error: it is Err == nil with
// Succeeded == false (as in etcd), and KV holds the key's current state so
// the caller can see why.
//
// Pending means the command (a lock acquire or campaign that waits) has
// been queued: its real answer comes later, as an Answer from TakeAnswers,
// when the lock is granted or the campaign won (or the wait ends with an
// error). A retry of a pending command returns Pending again until then,
// and the real answer after.
type Result struct {
	Err      error  // nil, or wraps one of the Err variables of this package
	Revision uint64 // the store revision after the command
	// Found says whether KV holds a key: for get the key read, for put and
	// delete the previous KV, for cas the KV before the command.
	Found     bool
	KV        KV
	KVs       []KV // list: the matching keys, sorted by key
	More      bool // list: more keys matched than Limit allowed
	Succeeded bool // cas: the condition held and the value was written; txn: the compares held

	Session SessionInfo // session open and keep-alive: the session
	Token   uint64      // lock acquire: the fencing token; campaign: the term
	Pending bool        // lock acquire or campaign: queued, answered later
	Held    bool        // lock check: the token is the current holder's
	Lock    LockInfo    // lock acquire, check, ErrLockHeld: the lock's state
	Leader  LeaderInfo  // campaign, proclaim, resign, leader: the leader

	// Txn: a transaction's results, one per operation of the branch that
	// ran (Succeeded: the Then branch, else the Else branch).
	Txn []TxnOpResult

	// Expired: a keep-alive batch's ids that name no live session (in the
	// batch's order); every other id was renewed.
	Expired []uint64
}

// Answer is the late answer to a waiting command (Result.Pending), produced
// while applying another command: a release, resign, session end or clock
// advance that grants the lock or hands over the leadership.
type Answer struct {
	ClientID, Seq uint64 // the waiting command's
	Result        Result
}

// SMOptions configures a StateMachine. The zero value is valid: each zero
// field takes the default its comment states. Every replica must use the
// same options, since they decide which commands are rejected.
type SMOptions struct {
	// KeyBytesMax bounds key, prefix and lock/election name length.
	// Default 4096.
	KeyBytesMax int
	// ValueBytesMax bounds value length. Default 1 MiB.
	ValueBytesMax int
	// ClientsMax bounds the clients in the duplicate-detection table.
	// Default 100000.
	ClientsMax int
	// ResultsPerClientMax bounds the results kept for one client that does
	// not acknowledge them (AckedBelow). Default 1024. The results of
	// waiting commands (Pending) are kept beyond it until answered.
	ResultsPerClientMax int
	// KVHistoryMax bounds the KV change events kept for watches (the most
	// recent ones). Default 16384.
	KVHistoryMax int
	// KVHistoryBytesMax bounds the bytes of keys and values those events
	// hold: the oldest are dropped beyond it, however few. Default 16 MiB.
	KVHistoryBytesMax int
	// ElectionHistoryMax bounds the leadership changes kept per election
	// for observers. Default 1024.
	ElectionHistoryMax int
	// DedupBytesMax bounds the bytes of the results the duplicate-detection
	// table keeps (see dedup_bytes.go for how they are counted), once the
	// cluster level is LevelDedupBytes or more; below it, it decides
	// nothing. Default 64 MiB.
	DedupBytesMax int
}

// EnsureDefaults fills the zero fields of o with their defaults.
func (o *SMOptions) EnsureDefaults() {
	if o.KeyBytesMax == 0 {
		o.KeyBytesMax = 4096
	}
	if o.ValueBytesMax == 0 {
		o.ValueBytesMax = 1 << 20
	}
	if o.ClientsMax == 0 {
		o.ClientsMax = 100000
	}
	if o.ResultsPerClientMax == 0 {
		o.ResultsPerClientMax = 1024
	}
	if o.KVHistoryMax == 0 {
		o.KVHistoryMax = 16384
	}
	if o.KVHistoryBytesMax == 0 {
		o.KVHistoryBytesMax = 16 << 20
	}
	if o.ElectionHistoryMax == 0 {
		o.ElectionHistoryMax = 1024
	}
	if o.DedupBytesMax == 0 {
		o.DedupBytesMax = 64 << 20
	}
}

// Validate reports options that EnsureDefaults cannot fix.
func (o *SMOptions) Validate() error {
	if o.KeyBytesMax < 0 || o.ValueBytesMax < 0 || o.ClientsMax < 0 || o.ResultsPerClientMax < 0 ||
		o.KVHistoryMax < 0 || o.KVHistoryBytesMax < 0 || o.ElectionHistoryMax < 0 || o.DedupBytesMax < 0 {
		return fmt.Errorf("%w: negative state machine limit in %+v", ErrInvalid, *o)
	}
	return nil
}

// StateMachine is the replicated state: the key-value store, the
// duplicate-detection table, the cluster clock, sessions, locks and
// elections. It is deterministic (see the package comment) and not safe for
// concurrent use; the node loop owns it.
//
// Invariant: every command applied so far came with a slot <= applied.
type StateMachine struct {
	opts    SMOptions
	applied paxos.Slot
	kv      kvStore
	dedup   dedupTable

	// clock is the cluster time in ms: the largest Now of the OpClock
	// commands applied. Nothing else moves it.
	clock uint64
	// fence is the last fencing token handed out, to a lock grant or an
	// election term: tokens grow across every lock and election.
	fence uint64

	sessions sessionTable
	locks    lockTable
	elect    electionTable
	// ident is the cluster's id and the members that ever voted
	// (identity.go): not part of Hash.
	ident clusterIdentity
	// quota is the space quota and the bytes of the live keys (quota.go).
	quota spaceQuota
	// level is the cluster level (level.go): which behaviours of newer
	// builds are on. It never decreases.
	level uint64
	// bound binds ephemeral keys to their sessions (ephemeral.go).
	bound bindings
	// auth is the users, roles and auth switch (auth.go), copied on
	// write; nil: none yet.
	auth *AuthState
	// members is the cluster's membership as of applied (members.go);
	// its Current version 0 until the node sets the bootstrap one.
	members paxos.Configs

	// kvHist holds the recent KV changes for watches: derived from the
	// commands, deterministic, but not part of Hash.
	kvHist kvHistory
	// answers collects the late answers produced since the last
	// TakeAnswers.
	answers []Answer
}

// NewStateMachine returns an empty state machine. It panics if opts fail
// Validate, a programming error.
func NewStateMachine(opts SMOptions) *StateMachine {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		panic(err)
	}
	return &StateMachine{
		opts:     opts,
		kv:       newKVStore(),
		dedup:    newDedupTable(&opts),
		sessions: newSessionTable(),
		locks:    newLockTable(),
		elect:    newElectionTable(),
		bound:    newBindings(),
		kvHist:   newKVHistory(opts.KVHistoryMax, opts.KVHistoryBytesMax),
	}
}

// Applied returns the slot of the last command or value applied.
func (sm *StateMachine) Applied() paxos.Slot { return sm.applied }

// Revision returns the store revision: the number of changes made so far.
func (sm *StateMachine) Revision() uint64 { return sm.kv.rev }

// Get reads key locally (a serializable read). The returned Value is shared
// with the state machine and must not be modified.
func (sm *StateMachine) Get(key string) (KV, bool) { return sm.kv.get(key) }

// List reads locally the keys that start with prefix, sorted, at most limit
// of them (limit <= 0: all). The Values are shared and must not be modified.
func (sm *StateMachine) List(prefix string, limit int) []KV {
	kvs, _ := sm.kv.list(prefix, limit)
	return kvs
}

// TakeAnswers returns the late answers to waiting commands produced by the
// commands applied since the last call, in the order they were produced,
// and forgets them. Every replica produces the same sequence; the node calls
// it after applying and answers the clients waiting for those (ClientID,
// Seq) pairs.
func (sm *StateMachine) TakeAnswers() []Answer {
	a := sm.answers
	sm.answers = nil
	return a
}

// ApplyValue applies the chosen value of slot: each command of a batch in
// order, or nothing for any other kind such as a no-op (which still
// advances Applied). It returns one Result per command.
func (sm *StateMachine) ApplyValue(slot paxos.Slot, v paxos.Value) []Result {
	sm.advance(slot)
	sm.applyMembers(slot, v)
	if v.Kind != paxos.ValueBatch {
		return nil
	}
	res := make([]Result, len(v.Cmds))
	for i, cmd := range v.Cmds {
		res[i] = sm.Apply(slot, cmd)
	}
	return res
}

// Apply decodes and applies one command chosen in slot. Slots must not
// decrease (the commands of one slot share it); a smaller slot panics, since
// it means the caller broke slot order. Apply never panics on a command's
// contents: a malformed command yields ErrInvalid and changes nothing but
// Applied.
//
// The Result's KV, KVs and Leader.Value share bytes with the state machine;
// the caller must not modify them.
func (sm *StateMachine) Apply(slot paxos.Slot, cmd []byte) Result {
	sm.advance(slot)
	c, err := DecodeCommand(cmd)
	if err != nil {
		return Result{Err: err, Revision: sm.kv.rev}
	}
	return sm.apply(slot, &c)
}

// ApplyCommand applies an already decoded command chosen in slot; it is
// Apply for a caller that decoded the command itself (the node does, to
// find the client waiting for it). The state machine keeps c's byte slices
// (values, names): the caller must not modify them afterwards.
func (sm *StateMachine) ApplyCommand(slot paxos.Slot, c *Command) Result {
	sm.advance(slot)
	return sm.apply(slot, c)
}

func (sm *StateMachine) advance(slot paxos.Slot) {
	if slot < sm.applied {
		panic(fmt.Sprintf("service: apply of slot %d after slot %d", slot, sm.applied))
	}
	sm.applied = slot
	sm.members.Settle(slot)
}

// apply runs a decoded command through validation, duplicate detection and
// execution, then, from LevelDedupBytes on, bounds the duplicate table's
// bytes (dedup_bytes.go): after the command, since late answers it
// produced may have grown stored results of any client.
func (sm *StateMachine) apply(slot paxos.Slot, c *Command) Result {
	if err := sm.validate(c); err != nil {
		return Result{Err: err, Revision: sm.kv.rev}
	}
	r, own := sm.applyValid(slot, c)
	if sm.level >= LevelDedupBytes {
		sm.dedup.boundBytes(own)
	}
	return r
}

// applyValid runs a valid command through duplicate detection and
// execution, and returns its result and its client's entry (nil if it has
// none in the table).
func (sm *StateMachine) applyValid(slot paxos.Slot, c *Command) (Result, *clientEntry) {
	t := &sm.dedup
	if c.ClientID == 0 {
		return sm.exec(c), nil
	}
	if !c.Op.mutating() {
		// Reads are never stored nor refused: running one again is
		// harmless. They still count as activity and carry AckedBelow.
		e := t.touch(c.ClientID, slot, false)
		if e != nil {
			t.raiseFloor(e, c.AckedBelow)
		}
		return sm.exec(c), e
	}
	e := t.touch(c.ClientID, slot, true)
	t.raiseFloor(e, c.AckedBelow) // AckedBelow <= Seq: c's own result survives
	// A stored result is looked up before the floor: the result of a
	// waiting command may sit below the floor (see clientEntry).
	if r, ok := e.result(c.Seq); ok {
		return r, e
	}
	if c.Seq < e.floor {
		return Result{Err: ErrStaleRequest, Revision: sm.kv.rev}, e
	}
	r := sm.exec(c)
	t.store(e, c.Seq, r)
	return r, e
}

func (sm *StateMachine) validate(c *Command) error {
	if !c.Op.valid() {
		return fmt.Errorf("%w: unknown op %d (not a log command)", ErrInvalid, uint8(c.Op))
	}
	if c.ClientID != 0 && c.AckedBelow > c.Seq {
		return fmt.Errorf("%w: acked-below %d above seq %d", ErrInvalid, c.AckedBelow, c.Seq)
	}
	switch c.Op {
	case OpList:
		if len(c.Prefix) > sm.opts.KeyBytesMax {
			return fmt.Errorf("%w: %w: prefix is %d bytes, limit %d", ErrInvalid, ErrTooLarge, len(c.Prefix), sm.opts.KeyBytesMax)
		}
		return nil
	case OpPut, OpGet, OpDelete, OpCAS:
		return sm.validateKV(c)
	case OpSessionOpen:
		if c.TTLMs < SessionTTLMinMs || c.TTLMs > SessionTTLMaxMs {
			return fmt.Errorf("%w: session TTL %d ms out of range: it must be %d..%d ms (1 s to 1 h)",
				ErrInvalid, c.TTLMs, SessionTTLMinMs, SessionTTLMaxMs)
		}
		return nil
	case OpSessionKeepAlive, OpSessionClose:
		return validateSessionID(c)
	case OpLockCheck, OpLeader:
		return sm.validateName(c.Name, "name")
	case OpLockAcquire, OpLockRelease, OpCampaign, OpProclaim, OpResign:
		if err := sm.validateName(c.Name, "name"); err != nil {
			return err
		}
		if err := validateSessionID(c); err != nil {
			return err
		}
		if c.Op == OpLockAcquire && c.LockDelayMs > LockDelayMaxMs {
			return fmt.Errorf("%w: lock-delay %d ms out of range: at most %d ms (1 min)", ErrInvalid, c.LockDelayMs, LockDelayMaxMs)
		}
		if (c.Op == OpCampaign || c.Op == OpProclaim) && len(c.Value) > sm.opts.ValueBytesMax {
			return fmt.Errorf("%w: %w: value is %d bytes, limit %d", ErrInvalid, ErrTooLarge, len(c.Value), sm.opts.ValueBytesMax)
		}
		return nil
	case OpQuotaSet, OpQuotaDefault:
		return validateQuota(c)
	case OpLevel:
		return validateLevel(c)
	case OpTxn:
		return sm.validateTxn(c)
	case OpUserAdd, OpUserDelete, OpUserGrantRole, OpUserRevokeRole, OpRoleAdd, OpRoleDelete, OpRoleGrant, OpRoleRevoke,
		OpAuthEnable, OpAuthDisable:
		return sm.validateAuth(c)
	case OpSessionKeepAliveBatch:
		return sm.validateKeepAliveBatch(c)
	case OpClusterID:
		if len(c.Value) != ClusterIDBytes {
			return fmt.Errorf("%w: cluster id of %d bytes, want %d", ErrInvalid, len(c.Value), ClusterIDBytes)
		}
		fallthrough
	case OpClock, OpStateHash, OpVoter:
		if c.ClientID != 0 {
			return fmt.Errorf("%w: %s command from client %d: only nodes propose it, with client id 0", ErrInvalid, c.Op, c.ClientID)
		}
		return nil
	}
	panic(fmt.Sprintf("service: validate misses op %d", c.Op))
}

func validateSessionID(c *Command) error {
	if c.SessionID == 0 {
		return fmt.Errorf("%w: %s without a session id", ErrInvalid, c.Op)
	}
	return nil
}

func (sm *StateMachine) validateName(name, what string) error {
	if name == "" {
		return fmt.Errorf("%w: empty %s", ErrInvalid, what)
	}
	if len(name) > sm.opts.KeyBytesMax {
		return fmt.Errorf("%w: %w: %s is %d bytes, limit %d", ErrInvalid, ErrTooLarge, what, len(name), sm.opts.KeyBytesMax)
	}
	return nil
}

func (sm *StateMachine) validateKV(c *Command) error {
	if c.Key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalid)
	}
	if len(c.Key) > sm.opts.KeyBytesMax {
		return fmt.Errorf("%w: %w: key is %d bytes, limit %d", ErrInvalid, ErrTooLarge, len(c.Key), sm.opts.KeyBytesMax)
	}
	if c.Op.fenceable() {
		if c.FenceName == "" && c.FenceToken != 0 {
			return fmt.Errorf("%w: fence token %d without a fence lock name", ErrInvalid, c.FenceToken)
		}
		if c.FenceName != "" {
			if err := sm.validateName(c.FenceName, "fence lock name"); err != nil {
				return err
			}
		}
	}
	if c.Op != OpPut && c.Op != OpCAS {
		return nil
	}
	if len(c.Value) > sm.opts.ValueBytesMax {
		return fmt.Errorf("%w: %w: value is %d bytes, limit %d", ErrInvalid, ErrTooLarge, len(c.Value), sm.opts.ValueBytesMax)
	}
	if c.Op == OpCAS {
		if !c.HasPrevValue && !c.HasPrevRevision {
			return fmt.Errorf("%w: cas without a condition (prev value or prev revision)", ErrInvalid)
		}
		if len(c.PrevValue) > sm.opts.ValueBytesMax {
			return fmt.Errorf("%w: %w: prev value is %d bytes, limit %d", ErrInvalid, ErrTooLarge, len(c.PrevValue), sm.opts.ValueBytesMax)
		}
	}
	return nil
}

// exec runs a valid command.
func (sm *StateMachine) exec(c *Command) Result {
	if err := sm.checkOwner(c); err != nil {
		return Result{Err: err, Revision: sm.kv.rev}
	}
	switch c.Op {
	case OpPut, OpGet, OpDelete, OpCAS, OpList:
		return sm.execKV(c)
	case OpSessionOpen:
		return sm.sessionOpen(c)
	case OpSessionKeepAlive:
		return sm.sessionKeepAlive(c)
	case OpSessionClose:
		return sm.sessionClose(c)
	case OpLockAcquire:
		return sm.lockAcquire(c)
	case OpLockRelease:
		return sm.lockRelease(c)
	case OpLockCheck:
		return sm.lockCheck(c)
	case OpCampaign:
		return sm.campaign(c)
	case OpProclaim:
		return sm.proclaim(c)
	case OpResign:
		return sm.resign(c)
	case OpLeader:
		return sm.leaderQuery(c)
	case OpClock:
		sm.advanceClock(c.Now)
		return Result{Revision: sm.kv.rev}
	case OpStateHash:
		return Result{Revision: sm.kv.rev} // the nodes read the report; the state keeps nothing of it
	case OpClusterID, OpVoter:
		sm.ident.apply(c)
		return Result{Revision: sm.kv.rev}
	case OpQuotaSet, OpQuotaDefault:
		return sm.execQuota(c)
	case OpLevel:
		return sm.execLevel(c)
	case OpTxn:
		return sm.execTxn(c)
	case OpUserAdd, OpUserDelete, OpUserGrantRole, OpUserRevokeRole, OpRoleAdd, OpRoleDelete, OpRoleGrant, OpRoleRevoke,
		OpAuthEnable, OpAuthDisable:
		return sm.execAuth(c)
	case OpSessionKeepAliveBatch:
		return sm.sessionKeepAliveBatch(c)
	}
	panic(fmt.Sprintf("service: exec of unvalidated op %d", c.Op))
}

// execKV runs a key-value command, recording changes in the KV history.
func (sm *StateMachine) execKV(c *Command) Result {
	s := &sm.kv
	if c.FenceName != "" && c.Op.fenceable() {
		if err := sm.checkFence(c.FenceName, c.FenceToken); err != nil {
			return Result{Err: err, Revision: s.rev}
		}
	}
	switch c.Op {
	case OpPut:
		sid, err := sm.putSession(c)
		if err != nil {
			return Result{Err: err, Revision: s.rev}
		}
		cur, found := s.get(c.Key)
		if err := sm.quotaCheck(c.Key, c.Value, cur, found); err != nil {
			return Result{Err: err, Revision: s.rev}
		}
		kv, prev, found := s.put(c.Key, c.Value)
		sm.quotaPut(c.Key, c.Value, prev, found)
		if sid != 0 {
			sm.bound.bind(c.Key, sid)
		} else {
			sm.bound.unbind(c.Key)
		}
		sm.kvHist.add(KVEvent{Revision: s.rev, Type: EventPut, KV: kv, PrevKV: prev})
		return Result{Revision: s.rev, Found: found, KV: prev}
	case OpGet:
		kv, found := s.get(c.Key)
		if !found {
			return Result{Err: errKeyNotFound(c.Key), Revision: s.rev}
		}
		return Result{Revision: s.rev, Found: true, KV: kv}
	case OpDelete:
		prev, found := s.del(c.Key)
		if !found {
			return Result{Err: errKeyNotFound(c.Key), Revision: s.rev}
		}
		sm.quotaDel(prev)
		sm.bound.unbind(c.Key)
		sm.kvHist.add(KVEvent{Revision: s.rev, Type: EventDelete, KV: KV{Key: prev.Key, ModRevision: s.rev}, PrevKV: prev})
		return Result{Revision: s.rev, Found: true, KV: prev}
	case OpCAS:
		cur, found, ok := s.casHolds(c)
		if ok {
			// Only a cas whose comparison holds would write, so only
			// it can exceed the quota; a failed comparison stays one.
			if err := sm.quotaCheck(c.Key, c.Value, cur, found); err != nil {
				return Result{Err: err, Revision: s.rev, Found: found, KV: cur}
			}
			kv, _, _ := s.put(c.Key, c.Value)
			sm.quotaPut(c.Key, c.Value, cur, found)
			sm.bound.unbind(c.Key) // a cas carries no session: the key is permanent
			sm.kvHist.add(KVEvent{Revision: s.rev, Type: EventPut, KV: kv, PrevKV: cur})
		}
		return Result{Revision: s.rev, Found: found, KV: cur, Succeeded: ok}
	case OpList:
		kvs, more := s.list(c.Prefix, int(c.Limit))
		return Result{Revision: s.rev, KVs: kvs, More: more}
	}
	panic(fmt.Sprintf("service: execKV of op %d", c.Op))
}

func errKeyNotFound(key string) error { return fmt.Errorf("%w: key %q", ErrNotFound, key) }

// answer delivers the late answer r to the waiting command (client, seq):
// it is queued for TakeAnswers and replaces the Pending result stored for
// duplicate detection, so that a retry finds the real answer.
func (sm *StateMachine) answer(client, seq uint64, r Result) {
	sm.answers = append(sm.answers, Answer{ClientID: client, Seq: seq, Result: r})
	if client == 0 {
		return
	}
	if e := sm.dedup.clients[client]; e != nil {
		sm.dedup.resolve(e, seq, r)
	}
}

// Clock returns the cluster time in ms: the largest Now of the OpClock
// commands applied so far (0 before the first).
func (sm *StateMachine) Clock() uint64 { return sm.clock }

// sortedKeys returns the keys of m in increasing order.
func sortedKeys[K ~string | ~uint64, V any](m map[K]V) []K {
	ks := make([]K, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
