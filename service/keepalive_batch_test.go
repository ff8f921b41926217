package service

import (
	"strings"
	"testing"
	"time"

	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// kbCall runs q through node l's own validation and loop as a client of
// protocol version would send it, and returns the first answer (nil if
// none came within d).
func kbCall(t *testing.T, s *sim, l *simNode, q *wire.Request, version uint32, d time.Duration) *wire.Response {
	t.Helper()
	var got *wire.Response
	s.runOn(l, l.inc, func(n *Node) {
		cl, resp := n.newCall(nil, q)
		if resp != nil {
			got = resp
			return
		}
		cl.version = version
		cl.onReply = func(r *wire.Response) {
			if got == nil {
				cp := *r
				got = &cp
			}
		}
		n.handleCall(cl)
	})
	rgRunUntil(t, s, d, q.Op.String()+" answered", func() bool { return got != nil })
	return got
}

// TestKeepAliveBatchAcrossLevelChange: while the members negotiate
// protocol 8 with each other (a rolling upgrade under way) the cluster
// stays below level 12: the node refuses a keep-alive batch as invalid
// before it reaches the log, saying what to do, and one that reaches the
// log anyway (proposed by a member of this build) renews nothing on any
// replica, so the session expires on time everywhere. Once every member
// speaks 12 the level rises; then batches renew, their answers list the
// ids that no longer exist, and a session kept alive only by batches
// outlives its TTL many times over. The scripted simulation's checkers
// compare every replica's state after every slot.
func TestKeepAliveBatchAcrossLevelChange(t *testing.T) {
	s := rgSim(t, 212, nil)
	speak := uint32(wire.VersionTxn)
	lvSpeak(s, &speak)
	l := rgLeader(t, s)
	lvSetLevel(t, s, l, statemachine.LevelTxn)
	seq := uint64(0)
	req := func(q *wire.Request) *wire.Request {
		seq++
		q.ClientID, q.Seq = 0x9012, seq
		return q
	}
	open := kbCall(t, s, l, req(&wire.Request{Op: wire.OpSessionOpen, TTLMs: 1000}), wire.ProtocolVersion, time.Second)
	if open.Err != wire.ErrNone {
		t.Fatalf("open: %s %s", open.Err, open.ErrMsg)
	}
	sid := open.Session.ID
	r := kbCall(t, s, l, req(&wire.Request{Op: wire.OpSessionKeepAliveBatch, SessionIDs: []uint64{sid}}), wire.ProtocolVersion, time.Second)
	if r.Err != wire.ErrInvalid || !strings.Contains(r.ErrMsg, "cluster level 12") {
		t.Fatalf("a batch below level 12: %s %q, want Invalid naming level 12", r.Err, r.ErrMsg)
	}
	// Proposed past the node's gate: every replica refuses it alike.
	for i := 0; i < 6; i++ {
		seq++
		cmd := statemachine.EncodeCommand(&statemachine.Command{Op: statemachine.OpSessionKeepAliveBatch, ClientID: 0x9012, Seq: seq, SessionIDs: []uint64{sid}})
		s.runOn(l, l.inc, func(n *Node) { _ = n.r.Propose(cmd) })
		if err := s.runFor(250 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	for _, sn := range s.nodes {
		if _, ok := sn.n.sm.Session(sid); ok {
			t.Fatalf("node %d: session %d (TTL 1 s) outlived 1.5 s of batches below level 12", sn.id, sid)
		}
	}

	speak = wire.ProtocolVersion
	rgRunUntil(t, s, 2*time.Second, "every node at level 12", func() bool {
		for _, sn := range s.nodes {
			if sn.n.sm.Level() < statemachine.LevelKeepAliveBatch {
				return false
			}
		}
		return true
	})
	// A connection of protocol 11 is refused too.
	if r := kbCall(t, s, l, req(&wire.Request{Op: wire.OpSessionKeepAliveBatch, SessionIDs: []uint64{sid}}), 11, time.Second); r.Err != wire.ErrInvalid || !strings.Contains(r.ErrMsg, "protocol 12") {
		t.Fatalf("a batch on a protocol-11 connection: %s %q", r.Err, r.ErrMsg)
	}
	open = kbCall(t, s, l, req(&wire.Request{Op: wire.OpSessionOpen, TTLMs: 1000}), wire.ProtocolVersion, time.Second)
	live := open.Session.ID
	for i := 0; i < 12; i++ { // 3.6 s: more than three TTLs
		r := kbCall(t, s, l, req(&wire.Request{Op: wire.OpSessionKeepAliveBatch, SessionIDs: []uint64{sid, live}}), wire.ProtocolVersion, time.Second)
		if r.Err != wire.ErrNone || len(r.ExpiredSessions) != 1 || r.ExpiredSessions[0] != sid {
			t.Fatalf("batch %d: %s %q, expired %v; want [%d]", i, r.Err, r.ErrMsg, r.ExpiredSessions, sid)
		}
		if err := s.runFor(300 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	for _, sn := range s.nodes {
		if _, ok := sn.n.sm.Session(live); !ok {
			t.Fatalf("node %d: session %d expired while batches renewed it", sn.id, live)
		}
	}
	// Limits, before the log.
	long := make([]uint64, wire.KeepAliveBatchMax+1)
	for i := range long {
		long[i] = live
	}
	if r := kbCall(t, s, l, req(&wire.Request{Op: wire.OpSessionKeepAliveBatch, SessionIDs: long}), wire.ProtocolVersion, time.Second); r.Err != wire.ErrTooLarge || !strings.Contains(r.ErrMsg, "limit is 4096") {
		t.Fatalf("a batch of %d ids: %s %q", len(long), r.Err, r.ErrMsg)
	}
	if r := kbCall(t, s, l, req(&wire.Request{Op: wire.OpSessionKeepAliveBatch}), wire.ProtocolVersion, time.Second); r.Err != wire.ErrInvalid {
		t.Fatalf("an empty batch: %s %q", r.Err, r.ErrMsg)
	}
}

// TestKeepAliveBatchMaxMatches: the wire's limit is the state machine's.
func TestKeepAliveBatchMaxMatches(t *testing.T) {
	if wire.KeepAliveBatchMax != statemachine.SessionKeepAliveBatchMax {
		t.Fatalf("wire.KeepAliveBatchMax %d, statemachine.SessionKeepAliveBatchMax %d", wire.KeepAliveBatchMax, statemachine.SessionKeepAliveBatchMax)
	}
}
