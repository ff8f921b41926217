package statemachine

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/paxosd/paxosd/paxos"

	"github.com/vmihailenco/msgpack/v5"
)

// Snapshot encodes the whole replicated state as of Applied() (see
// SnapshotState for what it holds), deterministically: state machines in
// the same state give the same bytes. RestoreStateMachine rebuilds it.
// It is View and WriteTo into memory: the node streams a View instead.
func (sm *StateMachine) Snapshot() ([]byte, error) {
	v, err := sm.View()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := v.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// SnapshotView is the replicated state as of one applied slot, frozen: the
// state machine goes on applying while the view is encoded elsewhere.
// Taking it costs O(1) for the key-value store, whatever its size (a
// copy-on-write clone of the tree), and a copy of the rest (the duplicate
// table, sessions, locks, elections and the newest watch history), which
// are bounded and small beside the keys.
//
// A view is read-only and safe to use from another goroutine than the
// state machine's.
type SnapshotView struct {
	version uint64
	st      *SnapshotState // KVs nil: they stream from kv
	kv      kvStore
}

// View freezes the state for a snapshot. Take it between values: after
// ApplyValue (or the last command of a value), never halfway through a
// value's commands, since the snapshot stands for slot Applied() as a
// whole. The late answers of the commands applied so far must have been
// taken (TakeAnswers): they are not part of the replicated state, and a
// snapshot with untaken answers would lose them for the clients waiting;
// View returns an error rather than do so.
func (sm *StateMachine) View() (*SnapshotView, error) {
	if len(sm.answers) > 0 {
		return nil, fmt.Errorf("service: snapshot at slot %d with %d late answers not taken (call TakeAnswers first)", sm.applied, len(sm.answers))
	}
	version := sm.snapshotVersion()
	if err := sm.checkMembersView(version); err != nil {
		return nil, err
	}
	return &SnapshotView{version: version, st: sm.snapshotState(), kv: sm.kv.clone()}, nil
}

// snapshotVersion is the format version a snapshot of the state is
// written in: the oldest that holds the state, so that members of an
// older build read the snapshots of a cluster that uses nothing new. It
// depends on the state alone, so replicas in the same state write (and,
// from LevelHashEncoding on, hash) the same version.
func (sm *StateMachine) snapshotVersion() uint64 {
	switch {
	case sm.level >= LevelMembership:
		return SnapshotFormatVersion
	case sm.level >= LevelAuth:
		return 7
	case sm.level >= LevelEphemeral:
		return 6
	case sm.level >= LevelTxn:
		return 5
	case sm.level > 0:
		return 4
	case sm.quota.set:
		return 3
	case !sm.ident.empty():
		return 2
	default:
		return 1
	}
}

// Applied is the slot the view stands for.
func (v *SnapshotView) Applied() paxos.Slot { return paxos.Slot(v.st.Applied) }

// Keys is the number of keys in the view.
func (v *SnapshotView) Keys() int { return v.kv.len() }

// WriteTo encodes the view to w, deterministically, streaming: it holds no
// more than one key's encoding at a time beyond what w buffers. The bytes
// are those of the snapshot format (SnapshotState) and share nothing with
// the state machine.
func (v *SnapshotView) WriteTo(w io.Writer) (int64, error) {
	cw := &countingWriter{w: w}
	if err := encodeSnapshot(cw, v.version, v.st, v.kv.len(), v.kv.eachSnapKV); err != nil {
		return cw.n, fmt.Errorf("service: encoding the snapshot: %w", err)
	}
	return cw.n, nil
}

// eachSnapKV yields the keys in key order as a snapshot holds them, until
// yield fails.
func (s *kvStore) eachSnapKV(yield func(*SnapKV) error) error {
	var err error
	var skv SnapKV // one for all: yield does not keep it
	s.ascendFrom("", func(kv KV) bool {
		skv = snapKV(kv)
		err = yield(&skv)
		return err == nil
	})
	return err
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// snapshotStateFields is the number of fields of SnapshotState on the wire
// (it is encoded as an array; Identity is not one of them).
const snapshotStateFields = 14

// encodeSnapshot encodes the envelope, with version, and st, whose KVs
// (nkv of them) eachKV yields in key order instead of st.KVs. The bytes
// are exactly those of msgpack's encoding of the envelope with st.KVs
// holding them: SnapshotState is an array, so its fields are written one
// by one in their order.
func encodeSnapshot(w io.Writer, version uint64, st *SnapshotState, nkv int, eachKV func(yield func(*SnapKV) error) error) error {
	enc := msgpack.NewEncoder(w)
	enc.UseCompactInts(true)
	// version 1; version 2 adds the identity, 3 the quota, 4 the level, 5
	// the transactions' results, 6 the bindings, 7 the auth state, 8 the
	// membership
	elems := 3
	for _, since := range []uint64{2, 3, 4, 5, 6, 7, 8} {
		if version >= since {
			elems++
		}
	}
	if err := enc.EncodeArrayLen(elems); err != nil {
		return err
	}
	if err := enc.EncodeString(snapshotMagic); err != nil {
		return err
	}
	if err := enc.EncodeUint(version); err != nil {
		return err
	}
	if err := enc.EncodeArrayLen(snapshotStateFields); err != nil {
		return err
	}
	if err := encodeAll(enc, &st.Options, st.Applied, st.Revision, st.Clock, st.Fence); err != nil {
		return err
	}
	if err := enc.EncodeArrayLen(nkv); err != nil {
		return err
	}
	written := 0
	if err := eachKV(func(kv *SnapKV) error {
		written++
		return encodeSnapKV(enc, kv)
	}); err != nil {
		return err
	}
	if written != nkv {
		return fmt.Errorf("%d keys announced, %d written", nkv, written)
	}
	if err := encodeSnapClients(enc, st.Clients); err != nil {
		return err
	}
	if err := encodeAll(enc, st.LastSession, st.Sessions, st.Renewed, st.Locks, st.Elections,
		st.KVHistoryDropped, st.KVHistory); err != nil {
		return err
	}
	if version >= 2 {
		if err := enc.Encode(&st.Identity); err != nil {
			return err
		}
	}
	if version >= 3 {
		if err := enc.Encode(&st.Quota); err != nil {
			return err
		}
	}
	if version >= 4 {
		if err := enc.Encode(&st.Level); err != nil {
			return err
		}
	}
	if version >= 5 {
		if err := enc.Encode(st.Txns); err != nil {
			return err
		}
	}
	if version >= 6 {
		if err := enc.Encode(st.Bindings); err != nil {
			return err
		}
	}
	if version >= 7 {
		if err := enc.Encode(&st.Auth); err != nil {
			return err
		}
	}
	if version >= 8 {
		return enc.Encode(&st.Members)
	}
	return nil
}

// snapTxnResult is the stored result of client's transaction seq, ops.
func snapTxnResult(client, seq uint64, ops []TxnOpResult) SnapTxnResult {
	st := SnapTxnResult{Client: client, Seq: seq, Ops: make([]SnapTxnOpResult, len(ops))}
	for i := range ops {
		o := &ops[i]
		so := SnapTxnOpResult{Type: uint8(o.Type), Found: o.Found, KV: snapKV(o.KV), More: o.More, Deleted: o.Deleted}
		if o.KVs != nil {
			so.KVs = make([]SnapKV, len(o.KVs))
			for j, kv := range o.KVs {
				so.KVs[j] = snapKV(kv)
			}
		}
		st.Ops[i] = so
	}
	return st
}

// encodeSnapKV writes kv as msgpack's reflection would (an array of its
// five fields; a nil value as nil), without reflection: a snapshot of a
// million keys spends most of its time here.
func encodeSnapKV(enc *msgpack.Encoder, kv *SnapKV) error {
	if err := enc.EncodeArrayLen(5); err != nil {
		return err
	}
	if err := enc.EncodeString(kv.Key); err != nil {
		return err
	}
	if err := enc.EncodeBytes(kv.Value); err != nil {
		return err
	}
	if err := enc.EncodeUint(kv.CreateRevision); err != nil {
		return err
	}
	if err := enc.EncodeUint(kv.ModRevision); err != nil {
		return err
	}
	return enc.EncodeUint(kv.Version)
}

func encodeAll(enc *msgpack.Encoder, vs ...any) error {
	for _, v := range vs {
		if err := enc.Encode(v); err != nil {
			return err
		}
	}
	return nil
}

// snapshotState copies the state but for the keys (a view streams those
// from its copy of the tree) into its snapshot form. Byte slices that
// nothing changes in place are shared, not copied.
func (sm *StateMachine) snapshotState() *SnapshotState {
	st := sm.snapshotTables()
	sm.snapshotKVHistory(st)
	return st
}

// snapshotTables is snapshotState without the KV history, which the
// encoding hash leaves out (hash.go) and need not copy.
func (sm *StateMachine) snapshotTables() *SnapshotState {
	st := &SnapshotState{
		// Copied: a view is encoded while the state machine goes on, and
		// an OpVoter inserts into the voters in place.
		Identity: SnapIdentity{ClusterID: slices.Clone(sm.ident.id), Voters: slices.Clone(sm.ident.voters)},
		Quota:    SnapQuota{Limit: sm.quota.limit},
		Level:    SnapLevel{Level: sm.level, DedupBytesMax: int64(sm.opts.DedupBytesMax)},
		Options:  snapOptions(&sm.opts),
		Applied:  uint64(sm.applied),
		Revision: sm.kv.rev,
		Clock:    sm.clock,
		Fence:    sm.fence,
		Bindings: sm.snapshotBindings(),
		Members:  sm.snapMembers(),
	}

	ids := sm.dedup.sortedIDs()
	st.Clients = make([]SnapClient, len(ids))
	for i, id := range ids {
		e := sm.dedup.clients[id]
		c := SnapClient{ID: e.id, Floor: e.floor, LastSlot: uint64(e.lastSlot), Results: make([]SnapSeqResult, len(e.results))}
		for j := range e.results {
			c.Results[j] = SnapSeqResult{Seq: e.results[j].seq, Result: snapResult(&e.results[j].res)}
			if txn := e.results[j].res.Txn; len(txn) > 0 {
				st.Txns = append(st.Txns, snapTxnResult(e.id, e.results[j].seq, txn))
			}
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
	st.Auth = sm.snapAuth(sids)

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
	return st
}

// snapshotKVHistory copies the newest of the KV history into st.
func (sm *StateMachine) snapshotKVHistory(st *SnapshotState) {
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
	// Never part of a revision (a transaction's events): the cut moves
	// past the rest of the revision it fell in.
	for first > 0 && first < h.events.len() && h.events.at(first).Revision == h.events.at(first-1).Revision {
		first++
	}
	if first > 0 {
		st.KVHistoryDropped = h.events.at(first - 1).Revision
	}
	st.KVHistory = make([]SnapKVEvent, h.events.len()-first)
	for i := range st.KVHistory {
		ev := h.events.at(first + i)
		st.KVHistory[i] = SnapKVEvent{Revision: ev.Revision, Type: uint8(ev.Type), KV: snapKV(ev.KV), PrevKV: snapKV(ev.PrevKV)}
	}
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

// encodeState encodes st, keys included, as a snapshot of the given
// format version.
func encodeState(version uint64, st *SnapshotState) ([]byte, error) {
	var buf bytes.Buffer
	err := encodeSnapshot(&buf, version, st, len(st.KVs), func(yield func(*SnapKV) error) error {
		for i := range st.KVs {
			if err := yield(&st.KVs[i]); err != nil {
				return err
			}
		}
		return nil
	})
	return buf.Bytes(), err
}

// Hash returns the agreement hash (hash.go) of the state the view froze,
// computed off the state machine (a replica hashes a million keys without
// stopping), of the kind the view's own level says: the level is
// replicated, so every replica hashes its state at a given slot the same
// way. From LevelHashEncoding on it streams the view's encoding into the
// hash; below, the view's tables are restored into a state machine of
// their own, sharing the frozen keys, for the legacy hash. opts are the
// state machine's.
func (v *SnapshotView) Hash(opts SMOptions) (uint64, error) {
	if v.st.Level.Level >= LevelHashEncoding {
		return encodingHash(v.version, v.st, &v.kv)
	}
	opts.EnsureDefaults()
	kv := v.kv.clone()
	sm, err := v.st.restore(opts, &kv)
	if err != nil {
		return 0, err
	}
	return sm.legacyHash(), nil
}

// Revision is the store revision of the view.
func (v *SnapshotView) Revision() uint64 { return v.st.Revision }
