package service

import (
	"testing"
	"time"

	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// TestTxnAcrossLevelChange: a cluster whose members negotiate protocol 7
// with each other (a rolling upgrade under way) stays below level 8, and
// a transaction that reaches its log anyway (proposed by a member of this
// build) changes nothing on any replica; once every member speaks 8 the
// leader raises the level, and the same transaction applies on all. The
// scripted simulation's checkers compare every replica's state after
// every slot.
func TestTxnAcrossLevelChange(t *testing.T) {
	s := rgSim(t, 206, nil)
	speak := uint32(wire.VersionClientAnswers) // 7
	lvSpeak(s, &speak)
	l := rgLeader(t, s)
	lvSetLevel(t, s, l, statemachine.LevelHashEncoding) // what a cluster of protocol-7 builds runs at
	txn := func(seq uint64) {
		cmd := statemachine.EncodeCommand(&statemachine.Command{Op: statemachine.OpTxn, ClientID: 0x9004, Seq: seq,
			Then: []statemachine.TxnOp{{Type: statemachine.TxnPut, Key: "t", Value: []byte("v")}, {Type: statemachine.TxnPut, Key: "u", Value: []byte("v")}}})
		s.runOn(l, l.inc, func(n *Node) { _ = n.r.Propose(cmd) })
	}
	txn(1)
	lvPut(t, s, l, "k")                                      // after the txn's slot: every node applied it
	if err := s.runFor(500 * time.Millisecond); err != nil { // many rounds of the leader's own proposals
		t.Fatal(err)
	}
	rev := l.n.sm.Revision()
	for _, sn := range s.nodes {
		if _, ok := sn.n.sm.Get("t"); ok || sn.n.sm.Level() != statemachine.LevelHashEncoding || sn.n.sm.Revision() != rev {
			t.Fatalf("node %d below level 8: level %d, revision %d (want %d), key t applied %v", sn.id, sn.n.sm.Level(), sn.n.sm.Revision(), rev, ok)
		}
	}
	speak = wire.ProtocolVersion
	rgRunUntil(t, s, 2*time.Second, "every node at level 8", func() bool {
		for _, sn := range s.nodes {
			if sn.n.sm.Level() < statemachine.LevelTxn {
				return false
			}
		}
		return true
	})
	txn(2)
	lvPut(t, s, l, "k")
	for _, sn := range s.nodes {
		t1, ok1 := sn.n.sm.Get("t")
		u, ok2 := sn.n.sm.Get("u")
		if !ok1 || !ok2 || t1.ModRevision != rev+1 || u.ModRevision != rev+1 {
			t.Fatalf("node %d at level 8: t %+v %v, u %+v %v, want both at revision %d", sn.id, t1, ok1, u, ok2, rev+1)
		}
	}
}
