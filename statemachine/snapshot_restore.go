package statemachine

import (
	"bufio"
	"bytes"
	"container/heap"
	"fmt"
	"io"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/paxosd/paxosd/paxos"
)

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
// its derived structures (heaps, per-session sets). opts must be the
// options of the state machine that took it (the same after
// EnsureDefaults): they decide what every replica rejects and evicts, so a
// replica restored under others would diverge from its peers.
//
// It never panics on its input: bytes that are corrupt, of another format
// version or inconsistent (references to missing sessions, unsorted
// tables, broken invariants) give an error wrapping ErrBadSnapshot. Invalid
// opts give ErrInvalid. The state machine keeps no reference to data.
func RestoreStateMachine(opts SMOptions, data []byte) (*StateMachine, error) {
	return RestoreFrom(opts, func() (io.Reader, error) { return bytes.NewReader(data), nil }, int64(len(data)))
}

// RestoreFrom is RestoreStateMachine reading the size bytes of a snapshot
// from a stream instead of memory: the node restores a snapshot of any
// size without holding its bytes. open is called twice, for two passes:
// the first checks the encoding's shape (that no declared length exceeds
// the bytes left, so hostile input cannot make it allocate much), the
// second builds the state machine key by key.
func RestoreFrom(opts SMOptions, open func() (io.Reader, error), size int64) (*StateMachine, error) {
	sm, _, err := restoreStream(opts, open, size, true)
	return sm, err
}

// restoreStream is RestoreFrom, and with keep false CheckSnapshot (the
// state machine it returns then holds no keys).
func restoreStream(opts SMOptions, open func() (io.Reader, error), size int64, keep bool) (*StateMachine, SnapshotInfo, error) {
	var info SnapshotInfo
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, info, err
	}
	r, err := open()
	if err != nil {
		return nil, info, err
	}
	if err := checkMsgpackShape(bufio.NewReaderSize(r, 64<<10), size); err != nil {
		return nil, info, badSnapshot("%v", err)
	}
	if r, err = open(); err != nil {
		return nil, info, err
	}
	kv := newKVStore()
	var last string
	// Checking, nothing keeps a value: they are read into one buffer, so
	// the pass makes next to no garbage while the state it is to replace
	// is still in memory.
	var values *[]byte
	if !keep {
		values = new([]byte)
	}
	st, err := decodeSnapshot(bufio.NewReaderSize(r, 64<<10), values, func(st *SnapshotState, i int, skv SnapKV) error {
		kv.rev = st.Revision
		if err := kv.checkOne(i, last, skv); err != nil {
			return err
		}
		if keep {
			// Keys come in order: Load appends at the tree's end
			// without a search from the root.
			kv.load(restoreKV(skv))
		}
		last = skv.Key
		info.Keys++
		info.LiveBytes += kvBytes(skv.Key, skv.Value)
		return nil
	})
	if err != nil {
		return nil, info, err
	}
	st.keysUnread = !keep
	if keep {
		kv.loaded()
	}
	sm, err := st.restore(opts, &kv)
	if err != nil {
		return nil, info, err
	}
	info.Applied = sm.Applied()
	info.Revision, info.Fence, info.ClusterID, info.Level = sm.kv.rev, sm.fence, sm.ident.id, sm.level
	info.Sessions, info.Locks, info.Elections = len(sm.sessions.m), len(sm.locks.m), len(sm.elect.m)
	return sm, info, nil
}

func badSnapshot(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadSnapshot}, args...)...)
}

// decodeSnapshotState decodes a snapshot's envelope and state, keys
// included, without checking the state's consistency.
func decodeSnapshotState(data []byte) (*SnapshotState, error) {
	if err := checkMsgpackShape(bufio.NewReader(bytes.NewReader(data)), int64(len(data))); err != nil {
		return nil, badSnapshot("%v", err)
	}
	return decodeSnapshot(bytes.NewReader(data), nil, nil)
}

// decodeSnapshot decodes a snapshot's envelope and state from r, which
// checkMsgpackShape passed. The keys go to onKV one by one, in order, if
// it is set (the state's fields before them are decoded by then), and to
// st.KVs if not. With values set, every key's value is read into
// *values, reused: valid only during its onKV call.
func decodeSnapshot(r io.Reader, values *[]byte, onKV func(st *SnapshotState, i int, kv SnapKV) error) (*SnapshotState, error) {
	dec := msgpack.NewDecoder(r)
	dec.DisallowUnknownFields(true)
	n, err := dec.DecodeArrayLen()
	if err != nil || n < 3 || n > 2+SnapshotFormatVersion {
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
	if want := 2 + v; uint64(n) != want {
		return nil, badSnapshot("format version %d with %d elements, want %d", v, n, want)
	}
	st := new(SnapshotState)
	if n, err := dec.DecodeArrayLen(); err != nil || n != snapshotStateFields {
		return nil, badSnapshot("decoding version %d: state of %d fields, want %d (%v)", v, n, snapshotStateFields, err)
	}
	if err := decodeAll(dec, &st.Options, &st.Applied, &st.Revision, &st.Clock, &st.Fence); err != nil {
		return nil, badSnapshot("decoding version %d: %v", v, err)
	}
	nkv, err := dec.DecodeArrayLen()
	if err != nil || nkv < 0 {
		return nil, badSnapshot("decoding version %d: keys: %d (%v)", v, nkv, err)
	}
	var scratch []byte
	for i := 0; i < nkv; i++ {
		skv, err := decodeSnapKV(dec, values, &scratch)
		if err != nil {
			return nil, badSnapshot("decoding version %d: key %d: %v", v, i, err)
		}
		if onKV == nil {
			st.KVs = append(st.KVs, skv)
		} else if err := onKV(st, i, skv); err != nil {
			return nil, err
		}
	}
	if onKV == nil && st.KVs == nil {
		st.KVs = []SnapKV{}
	}
	if err := decodeAll(dec, &st.Clients, &st.LastSession, &st.Sessions, &st.Renewed, &st.Locks, &st.Elections,
		&st.KVHistoryDropped, &st.KVHistory); err != nil {
		return nil, badSnapshot("decoding version %d: %v", v, err)
	}
	if v >= 2 {
		if err := dec.Decode(&st.Identity); err != nil {
			return nil, badSnapshot("decoding version %d identity: %v", v, err)
		}
	}
	if v >= 3 {
		if err := dec.Decode(&st.Quota); err != nil {
			return nil, badSnapshot("decoding version %d quota: %v", v, err)
		}
		if v == 3 && st.Quota.Limit == 0 {
			return nil, badSnapshot("version %d without a quota", v)
		}
	}
	if v >= 4 {
		if err := dec.Decode(&st.Level); err != nil {
			return nil, badSnapshot("decoding version %d level: %v", v, err)
		}
		if st.Level.Level == 0 || st.Level.Level > LevelMax {
			return nil, badSnapshot("version %d at cluster level %d: this build implements levels 1 to %d", v, st.Level.Level, LevelMax)
		}
		if (v >= 5) != (st.Level.Level >= LevelTxn) {
			return nil, badSnapshot("version %d at cluster level %d: version 5 is written from level %d on, and only then", v, st.Level.Level, LevelTxn)
		}
	}
	if v >= 5 {
		if err := dec.Decode(&st.Txns); err != nil {
			return nil, badSnapshot("decoding version %d transactions: %v", v, err)
		}
	}
	if v >= 4 && (v >= 6) != (st.Level.Level >= LevelEphemeral) {
		return nil, badSnapshot("version %d at cluster level %d: version 6 is written from level %d on, and only then", v, st.Level.Level, LevelEphemeral)
	}
	if v >= 6 {
		if err := dec.Decode(&st.Bindings); err != nil {
			return nil, badSnapshot("decoding version %d key bindings: %v", v, err)
		}
	}
	if v >= 4 && (v >= 7) != (st.Level.Level >= LevelAuth) {
		return nil, badSnapshot("version %d at cluster level %d: version 7 is written from level %d on, and only then", v, st.Level.Level, LevelAuth)
	}
	if v >= 7 {
		if err := dec.Decode(&st.Auth); err != nil {
			return nil, badSnapshot("decoding version %d auth: %v", v, err)
		}
	}
	if v >= 4 && (v >= 8) != (st.Level.Level >= LevelMembership) {
		return nil, badSnapshot("version %d at cluster level %d: version 8 is written from level %d on, and only then", v, st.Level.Level, LevelMembership)
	}
	if v >= 8 {
		if err := dec.Decode(&st.Members); err != nil {
			return nil, badSnapshot("decoding version %d membership: %v", v, err)
		}
	}
	return st, nil
}

func decodeAll(dec *msgpack.Decoder, vs ...any) error {
	for _, v := range vs {
		if err := dec.Decode(v); err != nil {
			return err
		}
	}
	return nil
}

// restore checks st and builds its state machine, with kv as its keys
// (restored and checked as they were decoded; st.KVs is not used).
func (st *SnapshotState) restore(opts SMOptions, kv *kvStore) (*StateMachine, error) {
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
	if st.Level.Level > 0 && st.Level.DedupBytesMax != int64(opts.DedupBytesMax) {
		return nil, badSnapshot("taken with a duplicate table bound of %d bytes, restoring with %d: every replica must use the same",
			st.Level.DedupBytesMax, opts.DedupBytesMax)
	}
	sm := NewStateMachine(opts)
	sm.applied = paxos.Slot(st.Applied)
	sm.kv.rev = st.Revision
	sm.clock = st.Clock
	sm.fence = st.Fence
	sm.kv = *kv
	sm.kv.rev = st.Revision
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
	sm.restoreQuota(st.Quota.Limit)
	sm.level = st.Level.Level
	if err := sm.restoreBindings(st); err != nil {
		return nil, err
	}
	if err := sm.restoreAuth(st); err != nil {
		return nil, err
	}
	if err := sm.restoreMembers(st); err != nil {
		return nil, err
	}
	return sm, nil
}

func restoreKV(s SnapKV) KV {
	return KV{Key: s.Key, Value: s.Value, CreateRevision: s.CreateRevision, ModRevision: s.ModRevision, Version: s.Version}
}

// checkOne checks skv, the i-th key of a snapshot, whose previous key was
// last, against s's revision.
func (s *kvStore) checkOne(i int, last string, skv SnapKV) error {
	if skv.Key == "" || i > 0 && skv.Key <= last {
		return badSnapshot("key %d (%q) empty or out of order", i, skv.Key)
	}
	if skv.Version == 0 || skv.CreateRevision == 0 || skv.CreateRevision > skv.ModRevision || skv.ModRevision > s.rev {
		return badSnapshot("key %q: bad revisions %+v at store revision %d", skv.Key, skv, s.rev)
	}
	return nil
}

func (sm *StateMachine) restoreDedup(st *SnapshotState) error {
	t := &sm.dedup
	if len(st.Clients) > t.clientsMax {
		return badSnapshot("%d clients, limit %d", len(st.Clients), t.clientsMax)
	}
	t.byAge = make(clientHeap, 0, len(st.Clients))
	ti := 0 // the next of st.Txns
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
			if ti < len(st.Txns) && st.Txns[ti].Client == sc.ID && st.Txns[ti].Seq == r.Seq {
				if res.Txn, err = restoreTxnOps(st.Txns[ti].Ops); err != nil {
					return badSnapshot("client %d, seq %d: %v", sc.ID, r.Seq, err)
				}
				ti++
			}
			e.results[j] = seqResult{seq: r.Seq, res: res}
			e.bytes += resultBytes(&res)
		}
		t.bytes += e.bytes
		t.clients[e.id] = e
		t.byAge = append(t.byAge, e)
	}
	heap.Init(&t.byAge)
	if ti != len(st.Txns) {
		return badSnapshot("transaction result %d (client %d, seq %d) without a stored result, or out of order",
			ti, st.Txns[ti].Client, st.Txns[ti].Seq)
	}
	return nil
}

func restoreTxnOps(sops []SnapTxnOpResult) ([]TxnOpResult, error) {
	if len(sops) == 0 {
		return nil, fmt.Errorf("transaction result without operations")
	}
	ops := make([]TxnOpResult, len(sops))
	for i, so := range sops {
		t := TxnOpType(so.Type)
		if t != TxnPut && t != TxnDelete && t != TxnGet {
			return nil, fmt.Errorf("transaction result of unknown type %d", so.Type)
		}
		o := TxnOpResult{Type: t, Found: so.Found, KV: restoreKV(so.KV), More: so.More, Deleted: so.Deleted}
		if so.KVs != nil {
			o.KVs = make([]KV, len(so.KVs))
			for j, kv := range so.KVs {
				o.KVs[j] = restoreKV(kv)
			}
		}
		ops[i] = o
	}
	return ops, nil
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
			add(&s.locks, l.name)
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
			add(&s.waits, l.name)
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
			add(&s.elections, e.name)
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
			add(&s.elections, e.name)
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
		// A revision may hold several events (a transaction's), never
		// one at or below the dropped revision.
		if ev.Revision < prev || ev.Revision <= h.dropped || ev.Revision > sm.kv.rev || ev.Type != EventPut && ev.Type != EventDelete {
			return badSnapshot("KV history event at revision %d (type %d) out of order or range", ev.Revision, se.Type)
		}
		prev = ev.Revision
		h.events.push(ev)
		h.bytes += ev.size()
	}
	return nil
}
