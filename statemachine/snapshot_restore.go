package statemachine

import (
	"bytes"
	"container/heap"
	"encoding/binary"
	"fmt"

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
	if err != nil || n < 3 || n > 5 {
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
	if err := dec.Decode(st); err != nil {
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
		if st.Quota.Limit == 0 {
			return nil, badSnapshot("version %d without a quota", v)
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
	sm.restoreQuota(st.Quota.Limit, st.KVs)
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
