package service

import (
	"testing"
	"time"

	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// TestAuthAcrossLevelChange: a cluster whose members negotiate protocol 8
// with each other (a rolling upgrade under way) stays below level 10; a
// user command and a session open with an owner that reach its log anyway
// (proposed by a member of this build) change nothing on any replica but
// the session, which has no owner; once every member speaks 10 the leader
// raises the level, and the same commands apply on all. The scripted
// simulation's checkers compare every replica's state after every slot.
func TestAuthAcrossLevelChange(t *testing.T) {
	s := rgSim(t, 210, nil)
	speak := uint32(wire.VersionTxn) // 8
	lvSpeak(s, &speak)
	l := rgLeader(t, s)
	lvSetLevel(t, s, l, statemachine.LevelTxn)
	propose := func(c statemachine.Command) {
		cmd := statemachine.EncodeCommand(&c)
		s.runOn(l, l.inc, func(n *Node) { _ = n.r.Propose(cmd) })
	}
	propose(statemachine.Command{Op: statemachine.OpUserAdd, ClientID: 0x9010, Seq: 1, Name: "root", Value: []byte("hash")})
	propose(statemachine.Command{Op: statemachine.OpSessionOpen, ClientID: 0x9010, Seq: 2, TTLMs: 60000, User: "alice"})
	lvPut(t, s, l, "k")
	if err := s.runFor(500 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	for _, sn := range s.nodes {
		if _, ok := sn.n.sm.Auth().User("root"); ok || sn.n.sm.Level() != statemachine.LevelTxn || sn.n.sm.SessionCount() != 1 ||
			sn.n.sm.SessionOwner(1) != "" {
			t.Fatalf("node %d below level 10: level %d, root added %v, %d sessions, owner %q", sn.id, sn.n.sm.Level(), ok,
				sn.n.sm.SessionCount(), sn.n.sm.SessionOwner(1))
		}
	}
	speak = wire.ProtocolVersion
	rgRunUntil(t, s, 2*time.Second, "every node at level 10", func() bool {
		for _, sn := range s.nodes {
			if sn.n.sm.Level() < statemachine.LevelAuth {
				return false
			}
		}
		return true
	})
	propose(statemachine.Command{Op: statemachine.OpUserAdd, ClientID: 0x9010, Seq: 3, Name: "root", Value: []byte("hash")})
	propose(statemachine.Command{Op: statemachine.OpAuthEnable, ClientID: 0x9010, Seq: 4})
	propose(statemachine.Command{Op: statemachine.OpSessionOpen, ClientID: 0x9010, Seq: 5, TTLMs: 60000, User: "alice"})
	lvPut(t, s, l, "k")
	for _, sn := range s.nodes {
		u, ok := sn.n.sm.Auth().User("root")
		if !ok || string(u.Hash) != "hash" || !sn.n.sm.Auth().Enabled || sn.n.sm.SessionOwner(2) != "alice" {
			t.Fatalf("node %d at level 10: root %+v %v, enabled %v, session 2's owner %q", sn.id, u, ok, sn.n.sm.Auth().Enabled, sn.n.sm.SessionOwner(2))
		}
	}
}
