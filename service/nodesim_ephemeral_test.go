package service

import (
	"strconv"
	"strings"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// Ephemeral keys in the simulation: a lock client (one that speaks
// protocol 9) now and then puts "kephemeral/<its session id>" bound to
// its session. Nobody else writes or deletes those keys, so after every
// slot the checker requires, of the state every replica agrees on (by
// hash):
//
//   - a key present is bound to the session its name gives, and that
//     session is open: a key never outlives its session (closed, expired
//     or revoked);
//   - a key that was present at the previous slot and is gone now went
//     with its session: it is never deleted while its session is open.
//
// The keys live under "k", so the watch of "k" sees each session's deletes
// and checks that their revision arrives whole in one response.

const simEphemeralPrefix = "kephemeral/"

// ephemeralRefusal reports an answer that refuses a session-bound put
// because the cluster is not at level 9 yet (the simulation starts at
// level 0).
func ephemeralRefusal(r *wire.Response) bool {
	return r.Err == wire.ErrInvalid && strings.Contains(r.ErrMsg, "needs cluster level")
}

// putEphemeral puts the session's key, bound to it.
func (ss *simSession) putEphemeral() {
	c, s := ss.c, ss.c.s
	key := simEphemeralPrefix + strconv.FormatUint(ss.id, 10)
	c.main.do(&wire.Request{Op: wire.OpPut, Key: key, Value: []byte(c.value()), SessionID: ss.id}, opGiveUp, func(r *wire.Response) {
		switch {
		case r == nil || ephemeralRefusal(r) || r.Err == wire.ErrSessionExpired:
		case r.Err != wire.ErrNone:
			s.failf("ephemeral put %s: %s %s", key, r.Err, r.ErrMsg)
		default:
			s.stats.ephemeralPuts++
		}
	})
}

// checkEphemeral checks the ephemeral keys' invariants on the state after
// slot; alive holds the open sessions.
func (c *simChecker) checkEphemeral(slot paxos.Slot, sm *statemachine.StateMachine, alive map[uint64]bool) {
	now := map[string]uint64{}
	for _, kv := range sm.List(simEphemeralPrefix, 0) {
		sid, err := strconv.ParseUint(strings.TrimPrefix(kv.Key, simEphemeralPrefix), 10, 64)
		if err != nil {
			c.s.failf("slot %d: unexpected key %q", slot, kv.Key)
			continue
		}
		if got := sm.KeySession(kv.Key); got != sid || !alive[sid] {
			c.s.failf("slot %d: ephemeral key %s bound to session %d (open: %v), want its own session %d, open", slot, kv.Key, got, alive[sid], sid)
		}
		now[kv.Key] = sid
	}
	for key, sid := range c.ephemeral {
		if _, ok := now[key]; ok {
			continue
		}
		if alive[sid] {
			c.s.failf("slot %d: ephemeral key %s deleted while its session %d is open", slot, key, sid)
		}
		c.s.stats.ephemeralEnded++
	}
	c.ephemeral = now
}
