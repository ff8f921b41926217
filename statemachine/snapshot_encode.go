package statemachine

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

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
	// The oldest version that holds the state, so that members of an
	// older build read the snapshots of a cluster that uses nothing new.
	version := uint64(SnapshotFormatVersion)
	switch {
	case sm.quota.set:
	case !sm.ident.empty():
		version = 2
	default:
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
	elems := 3 // version 1; version 2 adds the identity, 3 the quota
	if version >= 2 {
		elems++
	}
	if version >= 3 {
		elems++
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
	if version >= 2 {
		if err := enc.Encode(&st.Identity); err != nil {
			return nil, err
		}
	}
	if version >= 3 {
		if err := enc.Encode(&st.Quota); err != nil {
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
		Quota:    SnapQuota{Limit: sm.quota.limit},
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
