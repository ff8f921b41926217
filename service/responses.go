package service

import (
	"errors"
	"strings"

	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// This file is the one place where the state machine's types become the
// wire protocol's. Both packages define a KV, a LeaderInfo, a SessionInfo, a
// LockInfo, an Op and their errors because neither may import the other
// (statemachine is pure and deterministic; wire knows only the protocol), so
// each pair has exactly one conversion here, statemachine → wire: a
// function for the structs, errorCodes for the errors. (The other way, a
// request becomes a command in commandFields, server.go; the Op numbers are
// the same in both packages, TestOpNumbers, so a conversion is a cast.)
// Clients use the wire types themselves (client.KV = wire.KV).

// errorCodes maps the state machine's errors to wire error codes, most
// specific first (ErrTooLarge also matches ErrInvalid): the one table from
// state machine sentinels to wire codes.
var errorCodes = []struct {
	err  error
	code wire.ErrCode
}{
	{statemachine.ErrNotFound, wire.ErrNotFound},
	{statemachine.ErrTooLarge, wire.ErrTooLarge},
	{statemachine.ErrSessionExpired, wire.ErrSessionExpired},
	{statemachine.ErrLockHeld, wire.ErrLockHeld},
	{statemachine.ErrNotHeld, wire.ErrNotHeld},
	{statemachine.ErrCanceled, wire.ErrCanceled},
	{statemachine.ErrFenced, wire.ErrFenced},
	{statemachine.ErrNotElectionLeader, wire.ErrNotElectionLeader},
	{statemachine.ErrCompacted, wire.ErrCompacted},
	{statemachine.ErrQuotaExceeded, wire.ErrQuotaExceeded},
	{statemachine.ErrPermissionDenied, wire.ErrPermissionDenied},
	{statemachine.ErrInvalid, wire.ErrInvalid},
	{statemachine.ErrStaleRequest, wire.ErrInvalid},
}

// resultResponse translates a state machine result into a wire response.
func resultResponse(op statemachine.Op, r statemachine.Result) wire.Response {
	resp := wire.Response{
		Revision:  r.Revision,
		Found:     r.Found,
		KV:        wireKV(r.KV),
		Succeeded: r.Succeeded,
		Session:   wireSession(r.Session),
		Token:     r.Token,
		Held:      r.Held,
		Lock:      wireLock(r.Lock),
		Leader:    wireLeader(r.Leader),
		KVs:       wireKVs(r.KVs),
	}
	if op == statemachine.OpTxn {
		resp.TxnResults = wireTxnResults(r.Txn)
	}
	// A keep-alive batch's ids that no longer exist.
	resp.ExpiredSessions = r.Expired
	if r.More && len(r.KVs) > 0 { // a List cut short by its limit
		resp.More, resp.NextKey = true, r.KVs[len(r.KVs)-1].Key+"\x00"
	}
	if r.Err == nil {
		if op == statemachine.OpCAS && !r.Succeeded {
			resp.Err, resp.ErrMsg = wire.ErrCASFailed, "compare failed: the key's value or revision differs"
		}
		return resp
	}
	// The package prefix means nothing to a client.
	resp.Err, resp.ErrMsg = wire.ErrInternal, strings.TrimPrefix(r.Err.Error(), "service: ")
	for _, ec := range errorCodes {
		if errors.Is(r.Err, ec.err) {
			resp.Err = ec.code
			break
		}
	}
	return resp
}

func wireKV(kv statemachine.KV) wire.KV {
	return wire.KV{Key: kv.Key, Value: kv.Value, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision, Version: kv.Version}
}

// wireKVs converts a listing; none is nil.
func wireKVs(kvs []statemachine.KV) []wire.KV {
	if len(kvs) == 0 {
		return nil
	}
	out := make([]wire.KV, len(kvs))
	for i, kv := range kvs {
		out[i] = wireKV(kv)
	}
	return out
}

func wireSession(s statemachine.SessionInfo) wire.SessionInfo {
	return wire.SessionInfo{ID: s.ID, TTLMs: s.TTLMs, RemainingMs: s.RemainingMs, Locks: s.Locks, Waiting: s.Waiting, Elections: s.Elections}
}

func wireSessions(ss []statemachine.SessionInfo) []wire.SessionInfo {
	out := make([]wire.SessionInfo, len(ss))
	for i, s := range ss {
		out[i] = wireSession(s)
	}
	return out
}

func wireLock(l statemachine.LockInfo) wire.LockInfo {
	return wire.LockInfo{Name: l.Name, Holder: l.Holder, Token: l.Token, Waiters: l.Waiters, DelayUntilMs: l.DelayUntil}
}

func wireLocks(ls []statemachine.LockInfo) []wire.LockInfo {
	out := make([]wire.LockInfo, len(ls))
	for i, l := range ls {
		out[i] = wireLock(l)
	}
	return out
}

func wireLeader(l statemachine.LeaderInfo) wire.LeaderInfo {
	return wire.LeaderInfo{Election: l.Name, Session: l.Session, Value: l.Value, Term: l.Term, Seq: l.Seq, Revision: l.Revision}
}

func wireChange(election string, c statemachine.LeaderChange) wire.LeaderInfo {
	return wire.LeaderInfo{Election: election, Session: c.Session, Value: c.Value, Term: c.Term, Seq: c.Seq, Revision: c.Revision}
}

func wireEvents(evs []statemachine.KVEvent) []wire.WatchEvent {
	out := make([]wire.WatchEvent, len(evs))
	for i, e := range evs {
		out[i] = wire.WatchEvent{Type: wire.EventType(e.Type), KV: wireKV(e.KV), PrevKV: wireKV(e.PrevKV)}
	}
	return out
}
