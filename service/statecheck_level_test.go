package service

import (
	"fmt"
	"testing"
	"time"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/statemachine"
)

// The state check across the cluster levels that change the hash's kind
// (statecheck.go, statemachine/hash.go): below statemachine.LevelHashEncoding
// the members report the legacy hash, from it on the snapshot encoding's.
// Scripted runs (regress_test.go), with the checkers on: they compare
// every report with the hash of the state after its check slot
// (simChecker.checkReports).

// lvSpeak makes every node of s believe that every other member's
// connection negotiated protocol version *v (the simulation's nodes
// otherwise take every member for one of their own build), so that the
// leader raises the level to LevelMax only once *v reaches it.
func lvSpeak(s *sim, v *uint32) {
	for _, sn := range s.nodes {
		sn.n.peerVersion = func(paxos.NodeID) uint32 { return *v }
	}
}

// lvPut proposes a put on l's loop and runs the cluster until every node
// applied it, with the checkers on.
func lvPut(t *testing.T, s *sim, l *simNode, key string) {
	t.Helper()
	before := l.n.sm.Applied()
	scPutQuiet(s, l, key)
	rgRunUntil(t, s, time.Second, "every node applied the put", func() bool {
		if l.n.sm.Applied() == before {
			return false
		}
		for _, sn := range s.nodes {
			if sn.n.sm.Applied() != l.n.sm.Applied() {
				return false
			}
		}
		return true
	})
}

// scPutQuiet proposes a put on l's loop without running the cluster.
func scPutQuiet(s *sim, l *simNode, key string) {
	s.stats.ops++
	cmd := statemachine.EncodeCommand(&statemachine.Command{Op: statemachine.OpPut, Key: key, Value: []byte("v"),
		ClientID: 0x9003, Seq: uint64(s.stats.ops)})
	s.runOn(l, l.inc, func(n *Node) { _ = n.r.Propose(cmd) })
}

// lvSetLevel raises the level on l's loop (as the leader of a build whose
// LevelMax is level would) and waits until every node applied it.
func lvSetLevel(t *testing.T, s *sim, l *simNode, level uint64) {
	t.Helper()
	cmd := statemachine.EncodeCommand(&statemachine.Command{Op: statemachine.OpLevel, Level: level})
	s.runOn(l, l.inc, func(n *Node) { _ = n.r.Propose(cmd) })
	rgRunUntil(t, s, time.Second, fmt.Sprintf("every node at level %d", level), func() bool {
		for _, sn := range s.nodes {
			if sn.n.sm.Level() != level {
				return false
			}
		}
		return true
	})
}

// TestStateCheckAcrossLevelHashEncoding: a cluster at level 5 reports
// legacy hashes; once every member speaks protocol 6 the leader raises the
// level to 6 — here in the very slot the next check is for, whose state is
// the first of the new kind — and from then on the members report the
// encoding hash. The reports of the check slots before, at and after the
// change are each of one kind and equal: every kept check slot has the
// three members' reports, each the hash of the state after it, nobody
// counts a mismatch and nobody is convicted.
func TestStateCheckAcrossLevelHashEncoding(t *testing.T) {
	s := rgSim(t, 204, nil)
	speak := uint32(statemachine.LevelDedupBytes)
	lvSpeak(s, &speak)
	l := rgLeader(t, s)
	lvSetLevel(t, s, l, statemachine.LevelDedupBytes)
	every := uint64(l.n.cfg.StateCheckSlots)
	for i := 0; uint64(l.n.sm.Applied()) < 2*every; i++ {
		lvPut(t, s, l, fmt.Sprintf("k%d", i%7))
	}
	if err := s.runFor(50 * time.Millisecond); err != nil { // the reports for the last check slot
		t.Fatal(err)
	}
	for i := 0; (uint64(l.n.sm.Applied())+1)%every != 0; i++ {
		lvPut(t, s, l, fmt.Sprintf("k%d", i%7))
	}
	// The next slot is a check slot: raise the level now, as the leader of
	// a build whose highest level is 6 would (this build's LevelMax is
	// higher, and the members "speak" 5, so it proposes none of its own).
	lvSetLevel(t, s, l, statemachine.LevelHashEncoding)
	var change paxos.Slot
	for slot := paxos.Slot(1); slot <= s.check.maxSlot; slot++ {
		if s.check.levels[slot] == statemachine.LevelHashEncoding {
			change = slot
			break
		}
	}
	if uint64(change)%every != 0 {
		t.Fatalf("setup: the level changed at slot %d, not at a check slot (every %d)", change, every)
	}
	for i := 0; l.n.sm.Applied() < change+paxos.Slot(2*every); i++ {
		lvPut(t, s, l, fmt.Sprintf("k%d", i%7))
	}
	if err := s.runFor(50 * time.Millisecond); err != nil {
		t.Fatal(err)
	}

	// The kept check slots: one at level 5, the change, two after it.
	for _, sn := range s.nodes {
		if sn.n.check.diverged != 0 || counterValue(sn.n.m.stateMismatches) != 0 {
			t.Fatalf("node %d: diverged at %d, %v mismatches", sn.id, sn.n.check.diverged, counterValue(sn.n.m.stateMismatches))
		}
		for _, slot := range []paxos.Slot{change - paxos.Slot(every), change, change + paxos.Slot(every), change + paxos.Slot(2*every)} {
			rs := sn.n.check.reports[slot]
			if len(rs) != len(s.nodes) {
				t.Fatalf("node %d holds %d reports for check slot %d (level %d), want %d", sn.id, len(rs), slot, s.check.levels[slot], len(s.nodes))
			}
			for from, r := range rs {
				if r.hash != s.check.hashes[slot] {
					t.Fatalf("node %d holds node %d's report %016x for check slot %d, the state's hash is %016x", sn.id, from, r.hash, slot, s.check.hashes[slot])
				}
			}
		}
	}
	if s.check.levels[change-1] != statemachine.LevelDedupBytes || s.stats.encodingReports == 0 || s.stats.stateReports == s.stats.encodingReports {
		t.Fatalf("setup: level %d before the change; %d reports, %d at level 6", s.check.levels[change-1], s.stats.stateReports, s.stats.encodingReports)
	}
}

// TestStateCheckConvictsAtEachHashKind: a replica whose state was changed
// behind the log's back is convicted at level 5 (legacy hash) and at level
// 6 (encoding hash) alike, whichever part of the state changed: the others
// count the mismatch and stay in service.
func TestStateCheckConvictsAtEachHashKind(t *testing.T) {
	for _, level := range []uint64{statemachine.LevelDedupBytes, statemachine.LevelHashEncoding} {
		for _, tc := range []struct {
			what   string
			tamper func(sm *statemachine.StateMachine)
		}{
			{"a key", func(sm *statemachine.StateMachine) { sm.TamperPut("evil", []byte("x")) }},
			{"the fence count", func(sm *statemachine.StateMachine) { sm.TamperFence(1000) }}, // 0 here: no lock was held
		} {
			t.Run(fmt.Sprintf("level %d, %s", level, tc.what), func(t *testing.T) {
				s := rgSim(t, 205, nil)
				speak := uint32(level)
				lvSpeak(s, &speak)
				l := rgLeader(t, s)
				if level < statemachine.LevelMax {
					lvSetLevel(t, s, l, level) // a leader of a level-5 build
				}
				rgRunUntil(t, s, time.Second, fmt.Sprintf("every node at level %d", level), func() bool {
					for _, sn := range s.nodes {
						if sn.n.sm.Level() != level {
							return false
						}
					}
					return true
				})
				bad := rgFollowers(s, l)[0]
				for i := 0; i < 3; i++ {
					lvPut(t, s, l, "k")
				}
				s.runOn(bad, bad.inc, func(n *Node) { tc.tamper(n.sm) })
				scUntil(t, s, 5*time.Second, "the tampered node convicted", func() bool {
					if bad.n.diverged.Load() {
						return true
					}
					scPut(s, l, "k", "v")
					return false
				})
				for _, sn := range rgFollowers(s, bad) {
					scUntil(t, s, time.Second, fmt.Sprintf("node %d counting the mismatch", sn.id), func() bool {
						return counterValue(sn.n.m.stateMismatches) >= 1
					})
					if sn.n.diverged.Load() || sn.n.sm.Level() != level {
						t.Fatalf("node %d: diverged %v, level %d", sn.id, sn.n.diverged.Load(), sn.n.sm.Level())
					}
				}
			})
		}
	}
}
