package statemachine

import (
	"encoding/binary"
	"hash"
	"hash/fnv"
)

// The legacy hash: the agreement hash of every state below
// LevelHashEncoding (hash.go). It is a second serialization of the state,
// field by field into fnv-64a, kept by hand beside the snapshot encoding.
// Members of older builds compute exactly this, so a cluster below level 6
// compares it in the state check and its value must never change
// (TestLevelZeroAsBefore pins it). Nothing new goes in here: state added
// from level 6 on is covered by the snapshot encoding. It can go once no
// supported build runs a cluster below level 6.

// legacyHash digests applied slot, store revision, every key with its
// value and revisions, the duplicate-detection table with its stored
// results, the clock, the fence counter, sessions, locks and elections
// (not their histories), and the cluster level once above 0 — not the
// derived histories, not the cluster identity, not the space quota (see
// quota.go and level.go).
func (sm *StateMachine) legacyHash() uint64 {
	h := hasher{h: fnv.New64a()}
	h.u64(uint64(sm.applied))
	h.u64(sm.kv.rev)
	h.u64(uint64(sm.kv.len()))
	sm.kv.ascendFrom("", func(kv KV) bool {
		h.kv(kv)
		return true
	})
	ids := sm.dedup.sortedIDs()
	h.u64(uint64(len(ids)))
	for _, id := range ids {
		e := sm.dedup.clients[id]
		h.u64(e.id)
		h.u64(e.floor)
		h.u64(uint64(e.lastSlot))
		h.u64(uint64(len(e.results)))
		for _, sr := range e.results {
			h.u64(sr.seq)
			h.result(&sr.res)
		}
	}
	h.u64(sm.clock)
	h.u64(sm.fence)
	sm.sessions.legacyHash(&h)
	sm.locks.legacyHash(&h)
	sm.elect.legacyHash(&h)
	if sm.level > 0 {
		// Only then: a state at level 0 hashes as in builds without
		// levels, so members of a mixed cluster agree.
		h.u64(sm.level)
	}
	return h.h.Sum64()
}

func (t *sessionTable) legacyHash(h *hasher) {
	h.u64(t.last)
	h.u64s(t.renewed)
	ids := sortedKeys(t.m)
	h.u64(uint64(len(ids)))
	for _, id := range ids {
		s := t.m[id]
		h.u64(s.id)
		h.u64(s.ttl)
		h.u64(s.deadline)
		h.bool(s.renew)
		h.strs(sortedKeys(s.locks))
		h.strs(sortedKeys(s.waits))
		h.strs(sortedKeys(s.elections))
	}
}

func (t *lockTable) legacyHash(h *hasher) {
	names := sortedKeys(t.m)
	h.u64(uint64(len(names)))
	for _, name := range names {
		l := t.m[name]
		h.str(l.name)
		h.u64(l.holder)
		h.u64(l.token)
		h.u64(l.holderDelay)
		h.u64(l.delayUntil)
		h.u64(uint64(len(l.waiters)))
		for _, w := range l.waiters {
			h.u64(w.session)
			h.u64(w.client)
			h.u64(w.seq)
			h.u64(w.delay)
		}
	}
}

func (t *electionTable) legacyHash(h *hasher) {
	names := sortedKeys(t.m)
	h.u64(uint64(len(names)))
	for _, name := range names {
		e := t.m[name]
		h.str(e.name)
		h.u64(e.leader)
		h.bytes(e.value)
		h.u64(e.term)
		h.u64(e.seq)
		h.u64(uint64(len(e.candidates)))
		for _, c := range e.candidates {
			h.u64(c.session)
			h.bytes(c.value)
			h.u64(c.client)
			h.u64(c.seq)
		}
	}
}

// hasher feeds length-prefixed fields to the legacy hash, so that
// different states cannot produce the same byte stream.
type hasher struct {
	h   hash.Hash64
	buf [8]byte
}

func (h *hasher) u64(v uint64) {
	binary.BigEndian.PutUint64(h.buf[:], v)
	h.h.Write(h.buf[:])
}

func (h *hasher) bytes(b []byte) {
	h.u64(uint64(len(b)))
	h.h.Write(b)
}

func (h *hasher) str(s string) {
	h.u64(uint64(len(s)))
	h.h.Write([]byte(s))
}

func (h *hasher) bool(b bool) {
	if b {
		h.u64(1)
	} else {
		h.u64(0)
	}
}

func (h *hasher) strs(ss []string) {
	h.u64(uint64(len(ss)))
	for _, s := range ss {
		h.str(s)
	}
}

func (h *hasher) u64s(vs []uint64) {
	h.u64(uint64(len(vs)))
	for _, v := range vs {
		h.u64(v)
	}
}

func (h *hasher) kv(kv KV) {
	h.str(kv.Key)
	h.bytes(kv.Value)
	h.u64(kv.CreateRevision)
	h.u64(kv.ModRevision)
	h.u64(kv.Version)
}

func (h *hasher) result(r *Result) {
	if r.Err == nil {
		h.str("")
	} else {
		h.str(r.Err.Error())
	}
	h.u64(r.Revision)
	h.bool(r.Found)
	h.kv(r.KV)
	h.u64(uint64(len(r.KVs)))
	for _, kv := range r.KVs {
		h.kv(kv)
	}
	h.bool(r.More)
	h.bool(r.Succeeded)
	h.sessionInfo(&r.Session)
	h.u64(r.Token)
	h.bool(r.Pending)
	h.bool(r.Held)
	h.lockInfo(&r.Lock)
	h.leaderInfo(&r.Leader)
}

func (h *hasher) sessionInfo(s *SessionInfo) {
	h.u64(s.ID)
	h.u64(s.TTLMs)
	h.u64(s.RemainingMs)
	h.strs(s.Locks)
	h.strs(s.Waiting)
	h.strs(s.Elections)
}

func (h *hasher) lockInfo(l *LockInfo) {
	h.str(l.Name)
	h.u64(l.Holder)
	h.u64(l.Token)
	h.u64s(l.Waiters)
	h.u64(l.DelayUntil)
}

func (h *hasher) leaderInfo(l *LeaderInfo) {
	h.str(l.Name)
	h.u64(l.Session)
	h.bytes(l.Value)
	h.u64(l.Term)
	h.u64(l.Revision)
	h.u64(l.Seq)
}
