package statemachine

import (
	"bytes"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/paxosd/paxosd/paxos"
)

// Snapshot format.
//
// A snapshot is one MessagePack array of three or four elements:
//
//	version 1: [ "paxosd/statemachine", 1, SnapshotState ]
//	version 2: [ "paxosd/statemachine", 2, SnapshotState, SnapIdentity ]
//
// The magic string tells a state machine snapshot from other bytes, the
// version selects the layout of the elements after it. Version 2 adds the
// cluster's identity (identity.go); a state without one is still written
// as version 1, so members of an older version read every snapshot taken
// before the cluster's id exists — and the id is proposed only once every
// member speaks a version that knows it (service/bootstrap.go). Every struct of the
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
// writes it, or version 1 for a state without a cluster identity, and
// RestoreStateMachine reads both.
const SnapshotFormatVersion = 2

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

// Snapshot encodes the whole replicated state as of Applied() (see
// SnapshotState for what it holds), deterministically: state machines in
// the same state give the same bytes. RestoreStateMachine rebuilds it.
//
// Take it between values: after ApplyValue (or the last command of a
// value), never halfway through a value's commands, since the snapshot
// stands for slot Applied() as a whole. The late answers of the commands
// applied so far must have been taken (TakeAnswers): they are not part of
// the replicated state, and a snapshot with untaken answers would lose them
// for the clients waiting; Snapshot returns an error rather than do so.
//
// The state machine is only read; the bytes share nothing with it. It walks
// the whole state: it is not for hot paths.
func (sm *StateMachine) Snapshot() ([]byte, error) {
	if len(sm.answers) > 0 {
		return nil, fmt.Errorf("service: snapshot at slot %d with %d late answers not taken (call TakeAnswers first)", sm.applied, len(sm.answers))
	}
	version := uint64(SnapshotFormatVersion)
	if sm.ident.empty() {
		version = 1
	}
	data, err := encodeSnapshot(version, sm.snapshotState())
	if err != nil {
		return nil, fmt.Errorf("service: encoding the snapshot: %w", err)
	}
	return data, nil
}

// encodeSnapshot encodes the envelope, with version, and st.
func encodeSnapshot(version uint64, st *SnapshotState) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	elems := 3
	if version >= 2 {
		elems = 4
	}
	if err := enc.EncodeArrayLen(elems); err != nil {
		return nil, err
	}
	if err := enc.EncodeString(snapshotMagic); err != nil {
		return nil, err
	}
	if err := enc.EncodeUint(version); err != nil {
		return nil, err
	}
	if err := enc.Encode(st); err != nil {
		return nil, err
	}
	if elems == 4 {
		if err := enc.Encode(&st.Identity); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

// snapshotState copies the state into its snapshot form. Byte slices are
// shared, not copied.
func (sm *StateMachine) snapshotState() *SnapshotState {
	st := &SnapshotState{
		Identity: SnapIdentity{ClusterID: sm.ident.id, Voters: sm.ident.voters},
		Options:  snapOptions(&sm.opts),
		Applied:  uint64(sm.applied),
		Revision: sm.kv.rev,
		Clock:    sm.clock,
		Fence:    sm.fence,
	}

	st.KVs = make([]SnapKV, 0, len(sm.kv.m))
	sm.kv.index.ascend("", func(key string) bool {
		st.KVs = append(st.KVs, snapKV(sm.kv.m[key]))
		return true
	})

	ids := sm.dedup.sortedIDs()
	st.Clients = make([]SnapClient, len(ids))
	for i, id := range ids {
		e := sm.dedup.clients[id]
		c := SnapClient{ID: e.id, Floor: e.floor, LastSlot: uint64(e.lastSlot), Results: make([]SnapSeqResult, len(e.results))}
		for j := range e.results {
			c.Results[j] = SnapSeqResult{Seq: e.results[j].seq, Result: snapResult(&e.results[j].res)}
		}
		st.Clients[i] = c
	}

	st.LastSession = sm.sessions.last
	sids := sortedKeys(sm.sessions.m)
	st.Sessions = make([]SnapSession, len(sids))
	for i, id := range sids {
		s := sm.sessions.m[id]
		st.Sessions[i] = SnapSession{ID: s.id, TTLMs: s.ttl, Deadline: s.deadline}
	}
	st.Renewed = append([]uint64{}, sm.sessions.renewed...)

	names := sortedKeys(sm.locks.m)
	st.Locks = make([]SnapLock, len(names))
	for i, name := range names {
		l := sm.locks.m[name]
		sl := SnapLock{Name: l.name, Holder: l.holder, Token: l.token, HolderDelay: l.holderDelay, DelayUntil: l.delayUntil,
			Waiters: make([]SnapWaiter, len(l.waiters))}
		for j, w := range l.waiters {
			sl.Waiters[j] = SnapWaiter{Session: w.session, Client: w.client, Seq: w.seq, Delay: w.delay}
		}
		st.Locks[i] = sl
	}

	names = sortedKeys(sm.elect.m)
	st.Elections = make([]SnapElection, len(names))
	for i, name := range names {
		e := sm.elect.m[name]
		se := SnapElection{Name: e.name, Leader: e.leader, Value: e.value, Term: e.term, Seq: e.seq,
			Candidates: make([]SnapCandidate, len(e.candidates)), History: make([]SnapLeaderChange, e.history.r.len())}
		for j, c := range e.candidates {
			se.Candidates[j] = SnapCandidate{Session: c.session, Value: c.value, Client: c.client, Seq: c.seq}
		}
		for j := range se.History {
			ch := e.history.r.at(j)
			se.History[j] = SnapLeaderChange{Seq: ch.Seq, Session: ch.Session, Value: ch.Value, Term: ch.Term, Revision: ch.Revision}
		}
		st.Elections[i] = se
	}

	// Only the newest of the watch history goes in: it can be 16 MiB, and a
	// snapshot is written every --snapshot-entries slots and sent whole to
	// lagging nodes. A watch resuming from further back on a node restored
	// from this snapshot gets ErrCompacted and starts over, as after any
	// compaction.
	h := &sm.kvHist
	st.KVHistoryDropped = h.dropped
	first, bytes := h.events.len(), 0
	for first > 0 && h.events.len()-first < snapshotHistoryMax {
		ev := h.events.at(first - 1)
		bytes += len(ev.KV.Key) + len(ev.KV.Value) + len(ev.PrevKV.Key) + len(ev.PrevKV.Value)
		if bytes > snapshotHistoryBytesMax {
			break
		}
		first--
	}
	if first > 0 {
		st.KVHistoryDropped = h.events.at(first - 1).Revision
	}
	st.KVHistory = make([]SnapKVEvent, h.events.len()-first)
	for i := range st.KVHistory {
		ev := h.events.at(first + i)
		st.KVHistory[i] = SnapKVEvent{Revision: ev.Revision, Type: uint8(ev.Type), KV: snapKV(ev.KV), PrevKV: snapKV(ev.PrevKV)}
	}
	return st
}

// The most of the KV watch history a snapshot carries.
const (
	snapshotHistoryMax      = 1024
	snapshotHistoryBytesMax = 256 << 10
)

func snapOptions(o *SMOptions) SnapOptions {
	return SnapOptions{
		KeyBytesMax: int64(o.KeyBytesMax), ValueBytesMax: int64(o.ValueBytesMax),
		ClientsMax: int64(o.ClientsMax), ResultsPerClientMax: int64(o.ResultsPerClientMax),
		KVHistoryMax: int64(o.KVHistoryMax), KVHistoryBytesMax: int64(o.KVHistoryBytesMax),
		ElectionHistoryMax: int64(o.ElectionHistoryMax),
	}
}

func snapKV(kv KV) SnapKV {
	return SnapKV{Key: kv.Key, Value: kv.Value, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision, Version: kv.Version}
}

func snapResult(r *Result) SnapResult {
	sr := SnapResult{
		Revision: r.Revision, Found: r.Found, KV: snapKV(r.KV), More: r.More, Succeeded: r.Succeeded,
		Session: SnapSessionInfo{ID: r.Session.ID, TTLMs: r.Session.TTLMs, RemainingMs: r.Session.RemainingMs,
			Locks: r.Session.Locks, Waiting: r.Session.Waiting, Elections: r.Session.Elections},
		Token: r.Token, Pending: r.Pending, Held: r.Held,
		Lock: SnapLockInfo{Name: r.Lock.Name, Holder: r.Lock.Holder, Token: r.Lock.Token, Waiters: r.Lock.Waiters,
			DelayUntil: r.Lock.DelayUntil},
		Leader: SnapLeaderInfo{Name: r.Leader.Name, Session: r.Leader.Session, Value: r.Leader.Value, Term: r.Leader.Term,
			Seq: r.Leader.Seq, Revision: r.Leader.Revision},
	}
	if r.KVs != nil {
		sr.KVs = make([]SnapKV, len(r.KVs))
		for i, kv := range r.KVs {
			sr.KVs[i] = snapKV(kv)
		}
	}
	if r.Err != nil {
		se := &SnapError{Msg: r.Err.Error()}
		for code, s := range snapshotErrors {
			if s != nil && errors.Is(r.Err, s) {
				se.Is = append(se.Is, uint8(code))
			}
		}
		sr.Err = se
	}
	return sr
}

// restoredError is a Result error read back from a snapshot: it has the
// original's message and wraps the same sentinels, so errors.Is and the
// wire error codes treat it as the original.
type restoredError struct {
	msg  string
	errs []error
}

func (e *restoredError) Error() string   { return e.msg }
func (e *restoredError) Unwrap() []error { return e.errs }

// RestoreStateMachine rebuilds the state machine a Snapshot encoded, with
// its derived structures (key index, heaps, per-session sets). opts must be
// the options of the state machine that took it (the same after
// EnsureDefaults): they decide what every replica rejects and evicts, so a
// replica restored under others would diverge from its peers.
//
// It never panics on its input: bytes that are corrupt, of another format
// version or inconsistent (references to missing sessions, unsorted
// tables, broken invariants) give an error wrapping ErrBadSnapshot. Invalid
// opts give ErrInvalid. The state machine keeps no reference to data.
func RestoreStateMachine(opts SMOptions, data []byte) (*StateMachine, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	st, err := decodeSnapshotState(data)
	if err != nil {
		return nil, err
	}
	return st.restore(opts)
}

func badSnapshot(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadSnapshot}, args...)...)
}

// decodeSnapshotState decodes a snapshot's envelope and state, without
// checking the state's consistency.
func decodeSnapshotState(data []byte) (*SnapshotState, error) {
	// The decoder sizes slices by the lengths the input declares; checking
	// them first keeps every allocation proportional to len(data).
	if err := checkMsgpackShape(data); err != nil {
		return nil, badSnapshot("%v", err)
	}
	dec := msgpack.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields(true)
	n, err := dec.DecodeArrayLen()
	if err != nil || n != 3 && n != 4 {
		return nil, badSnapshot("not a state machine snapshot (no envelope)")
	}
	if magic, err := dec.DecodeString(); err != nil || magic != snapshotMagic {
		return nil, badSnapshot("not a state machine snapshot (magic %q)", magic)
	}
	v, err := dec.DecodeUint64()
	if err != nil {
		return nil, badSnapshot("format version: %v", err)
	}
	if v < 1 || v > SnapshotFormatVersion {
		return nil, badSnapshot("format version %d, this build reads versions 1 to %d", v, SnapshotFormatVersion)
	}
	if want := 2 + min(v, 2); uint64(n) != want {
		return nil, badSnapshot("format version %d with %d elements, want %d", v, n, want)
	}
	st := new(SnapshotState)
	if err := dec.Decode(st); err != nil {
		return nil, badSnapshot("decoding version %d: %v", v, err)
	}
	if v >= 2 {
		if err := dec.Decode(&st.Identity); err != nil {
			return nil, badSnapshot("decoding version %d identity: %v", v, err)
		}
	}
	return st, nil
}

// checkMsgpackShape checks that data is exactly one MessagePack value whose
// every declared length fits in the bytes that follow it: an array or map
// header cannot declare more elements than bytes remain, so a short hostile
// input cannot make the decoder allocate much. Extension types (which the
// format never uses) are refused. It does not recurse.
func checkMsgpackShape(data []byte) error {
	pos := 0
	pending := 1 // values still to read
	need := func(n uint64) error {
		if n > uint64(len(data)-pos) {
			return fmt.Errorf("truncated at byte %d: %d more bytes declared, %d left", pos, n, len(data)-pos)
		}
		return nil
	}
	length := func(size int) (uint64, error) {
		if err := need(uint64(size)); err != nil {
			return 0, err
		}
		var n uint64
		switch size {
		case 1:
			n = uint64(data[pos])
		case 2:
			n = uint64(binary.BigEndian.Uint16(data[pos:]))
		case 4:
			n = uint64(binary.BigEndian.Uint32(data[pos:]))
		}
		pos += size
		return n, nil
	}
	for pending > 0 {
		if pos >= len(data) {
			return fmt.Errorf("truncated: %d values missing at the end", pending)
		}
		c := data[pos]
		pos++
		pending--
		var skip, elems uint64
		var err error
		switch {
		case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3: // fixints, nil, bool
		case c >= 0x80 && c <= 0x8f: // fixmap
			elems = 2 * uint64(c&0x0f)
		case c >= 0x90 && c <= 0x9f: // fixarray
			elems = uint64(c & 0x0f)
		case c >= 0xa0 && c <= 0xbf: // fixstr
			skip = uint64(c & 0x1f)
		case c == 0xc4 || c == 0xd9: // bin8, str8
			skip, err = length(1)
		case c == 0xc5 || c == 0xda: // bin16, str16
			skip, err = length(2)
		case c == 0xc6 || c == 0xdb: // bin32, str32
			skip, err = length(4)
		case c == 0xca: // float32
			skip = 4
		case c == 0xcb: // float64
			skip = 8
		case c >= 0xcc && c <= 0xd3: // uint8..64, int8..64
			skip = 1 << ((c - 0xcc) & 3)
		case c == 0xdc: // array16
			elems, err = length(2)
		case c == 0xdd: // array32
			elems, err = length(4)
		case c == 0xde: // map16
			elems, err = length(2)
			elems *= 2
		case c == 0xdf: // map32
			elems, err = length(4)
			elems *= 2
		default: // 0xc1 (never used), extensions
			return fmt.Errorf("unexpected MessagePack code %#x at byte %d", c, pos-1)
		}
		if err != nil {
			return err
		}
		if err := need(skip); err != nil {
			return err
		}
		pos += int(skip)
		// Every pending value takes at least one byte.
		if err := need(uint64(pending) + elems); err != nil {
			return err
		}
		pending += int(elems)
	}
	if pos != len(data) {
		return fmt.Errorf("%d bytes after the snapshot", len(data)-pos)
	}
	return nil
}

// restore checks st and builds its state machine.
func (st *SnapshotState) restore(opts SMOptions) (*StateMachine, error) {
	// The value limit only decides what later commands may carry, and
	// every replica restores with the same one (it is no node's setting:
	// see valueBytesLimit in service/snapshotter.go), so a snapshot taken
	// under an older limit restores under the current one. Every other
	// option shapes the state.
	want, got := snapOptions(&opts), st.Options
	got.ValueBytesMax = want.ValueBytesMax
	if got != want {
		return nil, badSnapshot("taken with options %+v, restoring with %+v: every replica must use the same", st.Options, want)
	}
	sm := NewStateMachine(opts)
	sm.applied = paxos.Slot(st.Applied)
	sm.kv.rev = st.Revision
	sm.clock = st.Clock
	sm.fence = st.Fence
	if err := sm.restoreKV(st); err != nil {
		return nil, err
	}
	if err := sm.restoreDedup(st); err != nil {
		return nil, err
	}
	if err := sm.restoreSessions(st); err != nil {
		return nil, err
	}
	if err := sm.restoreLocks(st); err != nil {
		return nil, err
	}
	if err := sm.restoreElections(st); err != nil {
		return nil, err
	}
	if err := sm.restoreKVHistory(st); err != nil {
		return nil, err
	}
	if err := sm.ident.restore(st.Identity.ClusterID, st.Identity.Voters); err != nil {
		return nil, badSnapshot("%v", err)
	}
	return sm, nil
}

func restoreKV(s SnapKV) KV {
	return KV{Key: s.Key, Value: s.Value, CreateRevision: s.CreateRevision, ModRevision: s.ModRevision, Version: s.Version}
}

func (sm *StateMachine) restoreKV(st *SnapshotState) error {
	s := &sm.kv
	keys := make([]string, 0, len(st.KVs))
	for i, skv := range st.KVs {
		kv := restoreKV(skv)
		if kv.Key == "" || i > 0 && kv.Key <= keys[i-1] {
			return badSnapshot("key %d (%q) empty or out of order", i, kv.Key)
		}
		if kv.Version == 0 || kv.CreateRevision == 0 || kv.CreateRevision > kv.ModRevision || kv.ModRevision > s.rev {
			return badSnapshot("key %q: bad revisions %+v at store revision %d", kv.Key, skv, s.rev)
		}
		s.m[kv.Key] = kv
		keys = append(keys, kv.Key)
	}
	// Chunks half full: room to grow before a split.
	const per = chunkKeysMax / 2
	for len(keys) > 0 {
		n := min(per, len(keys))
		s.index.chunks = append(s.index.chunks, keys[:n:n])
		keys = keys[n:]
	}
	s.index.n = len(s.m)
	return nil
}

func (sm *StateMachine) restoreDedup(st *SnapshotState) error {
	t := &sm.dedup
	if len(st.Clients) > t.clientsMax {
		return badSnapshot("%d clients, limit %d", len(st.Clients), t.clientsMax)
	}
	t.byAge = make(clientHeap, 0, len(st.Clients))
	var prev uint64
	for i, sc := range st.Clients {
		if sc.ID == 0 || i > 0 && sc.ID <= prev {
			return badSnapshot("client %d: id 0 or out of order", sc.ID)
		}
		prev = sc.ID
		if sc.LastSlot > st.Applied {
			return badSnapshot("client %d: last slot %d after the applied slot %d", sc.ID, sc.LastSlot, st.Applied)
		}
		e := &clientEntry{id: sc.ID, floor: sc.Floor, lastSlot: paxos.Slot(sc.LastSlot), heapIndex: len(t.byAge)}
		if len(sc.Results) > 0 {
			e.results = make([]seqResult, len(sc.Results))
		}
		for j, r := range sc.Results {
			if j > 0 && r.Seq <= sc.Results[j-1].Seq {
				return badSnapshot("client %d: results out of order", sc.ID)
			}
			res, err := restoreResult(&r.Result)
			if err != nil {
				return badSnapshot("client %d, seq %d: %v", sc.ID, r.Seq, err)
			}
			e.results[j] = seqResult{seq: r.Seq, res: res}
		}
		t.clients[e.id] = e
		t.byAge = append(t.byAge, e)
	}
	heap.Init(&t.byAge)
	return nil
}

func restoreResult(s *SnapResult) (Result, error) {
	r := Result{
		Revision: s.Revision, Found: s.Found, KV: restoreKV(s.KV), More: s.More, Succeeded: s.Succeeded,
		Session: SessionInfo{ID: s.Session.ID, TTLMs: s.Session.TTLMs, RemainingMs: s.Session.RemainingMs,
			Locks: s.Session.Locks, Waiting: s.Session.Waiting, Elections: s.Session.Elections},
		Token: s.Token, Pending: s.Pending, Held: s.Held,
		Lock: LockInfo{Name: s.Lock.Name, Holder: s.Lock.Holder, Token: s.Lock.Token, Waiters: s.Lock.Waiters,
			DelayUntil: s.Lock.DelayUntil},
		Leader: LeaderInfo{Name: s.Leader.Name, Session: s.Leader.Session, Value: s.Leader.Value, Term: s.Leader.Term,
			Seq: s.Leader.Seq, Revision: s.Leader.Revision},
	}
	if s.KVs != nil {
		r.KVs = make([]KV, len(s.KVs))
		for i, kv := range s.KVs {
			r.KVs[i] = restoreKV(kv)
		}
	}
	if s.Err != nil {
		e := &restoredError{msg: s.Err.Msg}
		for i, code := range s.Err.Is {
			if int(code) >= len(snapshotErrors) || snapshotErrors[code] == nil || i > 0 && code <= s.Err.Is[i-1] {
				return Result{}, fmt.Errorf("error %q: bad sentinel list %v", s.Err.Msg, s.Err.Is)
			}
			e.errs = append(e.errs, snapshotErrors[code])
		}
		r.Err = e
	}
	return r, nil
}

func (sm *StateMachine) restoreSessions(st *SnapshotState) error {
	t := &sm.sessions
	t.last = st.LastSession
	t.byDeadline = make(sessionHeap, 0, len(st.Sessions))
	var prev uint64
	for i, ss := range st.Sessions {
		if ss.ID == 0 || ss.ID > t.last || i > 0 && ss.ID <= prev {
			return badSnapshot("session %d: id 0, above the last id %d, or out of order", ss.ID, t.last)
		}
		prev = ss.ID
		if ss.TTLMs < SessionTTLMinMs || ss.TTLMs > SessionTTLMaxMs || ss.Deadline <= sm.clock {
			return badSnapshot("session %d: TTL %d ms, deadline %d at clock %d", ss.ID, ss.TTLMs, ss.Deadline, sm.clock)
		}
		s := &session{
			id: ss.ID, ttl: ss.TTLMs, deadline: ss.Deadline, heapIndex: len(t.byDeadline),
			locks: map[string]struct{}{}, waits: map[string]struct{}{}, elections: map[string]struct{}{},
		}
		t.m[s.id] = s
		t.byDeadline = append(t.byDeadline, s)
	}
	heap.Init(&t.byDeadline)
	for _, id := range st.Renewed {
		s := t.m[id]
		if s == nil || s.renew {
			return badSnapshot("renewed session %d does not exist or is listed twice", id)
		}
		s.renew = true
	}
	if len(st.Renewed) > 0 {
		t.renewed = append([]uint64(nil), st.Renewed...)
	}
	return nil
}

func (sm *StateMachine) restoreLocks(st *SnapshotState) error {
	for i, sl := range st.Locks {
		if sl.Name == "" || i > 0 && sl.Name <= st.Locks[i-1].Name {
			return badSnapshot("lock %q: empty name or out of order", sl.Name)
		}
		l := &lock{name: sl.Name, holder: sl.Holder, token: sl.Token, holderDelay: sl.HolderDelay, delayUntil: sl.DelayUntil}
		switch {
		case (l.holder == 0) != (l.token == 0) || l.token > sm.fence:
			return badSnapshot("lock %q: holder %d, token %d, fence counter %d", l.name, l.holder, l.token, sm.fence)
		case l.holder == 0 && l.holderDelay != 0:
			return badSnapshot("lock %q: free with a holder's lock-delay", l.name)
		case l.delayUntil != 0 && (l.holder != 0 || l.delayUntil <= sm.clock):
			return badSnapshot("lock %q: delay until %d with holder %d at clock %d", l.name, l.delayUntil, l.holder, sm.clock)
		case l.holder == 0 && l.delayUntil == 0:
			return badSnapshot("lock %q: free and out of any delay, yet recorded", l.name)
		}
		if l.holder != 0 {
			s := sm.sessions.m[l.holder]
			if s == nil {
				return badSnapshot("lock %q: holder session %d does not exist", l.name, l.holder)
			}
			s.locks[l.name] = struct{}{}
		}
		if len(sl.Waiters) > 0 {
			l.waiters = make([]lockWaiter, len(sl.Waiters))
		}
		for j, w := range sl.Waiters {
			s := sm.sessions.m[w.Session]
			if s == nil || w.Session == l.holder {
				return badSnapshot("lock %q: waiter session %d does not exist or holds it", l.name, w.Session)
			}
			if _, dup := s.waits[l.name]; dup {
				return badSnapshot("lock %q: session %d waits twice", l.name, w.Session)
			}
			s.waits[l.name] = struct{}{}
			l.waiters[j] = lockWaiter{session: w.Session, client: w.Client, seq: w.Seq, delay: w.Delay}
		}
		if l.delayUntil != 0 {
			sm.locks.delayed[l.name] = struct{}{}
		}
		sm.locks.m[l.name] = l
	}
	return nil
}

func (sm *StateMachine) restoreElections(st *SnapshotState) error {
	for i, se := range st.Elections {
		if se.Name == "" || i > 0 && se.Name <= st.Elections[i-1].Name {
			return badSnapshot("election %q: empty name or out of order", se.Name)
		}
		e := &election{name: se.Name, leader: se.Leader, value: se.Value, term: se.Term, seq: se.Seq}
		if e.leader == 0 {
			if e.term != 0 || len(e.value) != 0 || len(se.Candidates) > 0 {
				return badSnapshot("election %q: no leader, yet term %d, a value or %d candidates", e.name, e.term, len(se.Candidates))
			}
		} else {
			s := sm.sessions.m[e.leader]
			if s == nil || e.term == 0 || e.term > sm.fence {
				return badSnapshot("election %q: leader session %d (term %d, fence counter %d) does not exist", e.name, e.leader, e.term, sm.fence)
			}
			s.elections[e.name] = struct{}{}
		}
		if len(se.Candidates) > 0 {
			e.candidates = make([]candidate, len(se.Candidates))
		}
		for j, c := range se.Candidates {
			s := sm.sessions.m[c.Session]
			if s == nil || c.Session == e.leader {
				return badSnapshot("election %q: candidate session %d does not exist or leads", e.name, c.Session)
			}
			if _, dup := s.elections[e.name]; dup {
				return badSnapshot("election %q: session %d campaigns twice", e.name, c.Session)
			}
			s.elections[e.name] = struct{}{}
			e.candidates[j] = candidate{session: c.Session, value: c.Value, client: c.Client, seq: c.Seq}
		}
		n := len(se.History)
		if n == 0 || se.History[n-1].Seq != e.seq || n > sm.opts.ElectionHistoryMax {
			return badSnapshot("election %q: %d changes kept, latest change number %d", e.name, n, e.seq)
		}
		for j, ch := range se.History {
			if j > 0 && ch.Seq != se.History[j-1].Seq+1 {
				return badSnapshot("election %q: change numbers not consecutive", e.name)
			}
			e.history.r.push(LeaderChange{Seq: ch.Seq, Session: ch.Session, Value: ch.Value, Term: ch.Term, Revision: ch.Revision})
		}
		if last := se.History[n-1]; last.Session != e.leader || last.Term != e.term {
			return badSnapshot("election %q: latest change (session %d, term %d) is not the state (leader %d, term %d)",
				e.name, last.Session, last.Term, e.leader, e.term)
		}
		sm.elect.m[e.name] = e
	}
	return nil
}

func (sm *StateMachine) restoreKVHistory(st *SnapshotState) error {
	h := &sm.kvHist
	if st.KVHistoryDropped > sm.kv.rev {
		return badSnapshot("KV history dropped up to revision %d, above the store revision %d", st.KVHistoryDropped, sm.kv.rev)
	}
	h.dropped = st.KVHistoryDropped
	if len(st.KVHistory) > 0 {
		h.events.buf = make([]KVEvent, 0, len(st.KVHistory))
	}
	prev := h.dropped
	for _, se := range st.KVHistory {
		ev := KVEvent{Revision: se.Revision, Type: EventType(se.Type), KV: restoreKV(se.KV), PrevKV: restoreKV(se.PrevKV)}
		if ev.Revision <= prev || ev.Revision > sm.kv.rev || ev.Type != EventPut && ev.Type != EventDelete {
			return badSnapshot("KV history event at revision %d (type %d) out of order or range", ev.Revision, se.Type)
		}
		prev = ev.Revision
		h.events.push(ev)
		h.bytes += ev.size()
	}
	return nil
}
