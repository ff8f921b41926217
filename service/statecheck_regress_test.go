package service

import (
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/proposer"
	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// Regression tests of the state check (statecheck.go), from an adversarial
// review. They make a replica diverge on purpose, so the simulation's own
// checkers (which compare every replica's state) object: scRun ignores
// them, and the tests look at the nodes' own verdicts instead.

func scRun(s *sim, d time.Duration) {
	end := s.now + d
	for s.now < end {
		s.err = nil
		_ = s.runFor(time.Millisecond)
	}
	s.err = nil
}

func scUntil(t *testing.T, s *sim, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := s.now + d
	for !cond() {
		if s.now >= end {
			t.Fatalf("t=%s: %s did not happen within %s: %s", s.now, what, d, s.progress())
		}
		scRun(s, time.Millisecond)
	}
}

func scLeader(t *testing.T, s *sim) *simNode {
	t.Helper()
	var l *simNode
	scUntil(t, s, 5*time.Second, "a leader", func() bool {
		l = nil
		for _, sn := range s.nodes {
			if sn.up() && sn.n.r.Status().Role == proposer.Leader && !sn.n.diverged.Load() {
				l = sn
			}
		}
		return l != nil
	})
	return l
}

// scPut proposes a put on l's loop and lets it settle (a slot each).
func scPut(s *sim, l *simNode, key, value string) {
	s.stats.ops++
	cmd := statemachine.EncodeCommand(&statemachine.Command{Op: statemachine.OpPut, Key: key, Value: []byte(value), ClientID: 0x9001, Seq: uint64(s.stats.ops)})
	s.runOn(l, l.inc, func(n *Node) { _ = n.r.Propose(cmd) })
	scRun(s, 5*time.Millisecond)
}

func scGet(key string) *wire.Request {
	return &wire.Request{Op: wire.OpGet, Key: key, Serializable: true, ClientID: 0x9002, Seq: 1}
}

// A node the state check found diverged stays out after a restart: the
// verdict is on its disk, since replaying the same disk rebuilds the same
// wrong state. (It used to live in memory only: restarted, the node
// answered clients from its wrong state again, and could lead.)
func TestDivergedVerdictSurvivesRestart(t *testing.T) {
	s := rgSim(t, 201, nil)
	l := scLeader(t, s)
	f := rgFollowers(s, l)[0]
	scPut(s, l, "victim", "good")
	for i := 0; i < 3; i++ {
		scPut(s, l, fmt.Sprintf("k%d", i), "v")
	}
	scUntil(t, s, time.Second, "f caught up", func() bool { return f.n.sm.Applied() == l.n.sm.Applied() })
	// A damaged log entry on f's disk: the victim put now says "evil".
	es, err := f.store.Entries(1, f.n.r.Status().Commit, 0)
	if err != nil {
		t.Fatal(err)
	}
	damaged := false
	for _, e := range es {
		for i, raw := range e.Value.Cmds {
			if c, err := statemachine.DecodeCommand(raw); err == nil && c.Op == statemachine.OpPut && c.Key == "victim" {
				c.Value = []byte("evil")
				cmds := append([][]byte(nil), e.Value.Cmds...)
				cmds[i] = statemachine.EncodeCommand(&c)
				e.Value = paxos.Value{Kind: paxos.ValueBatch, Cmds: cmds}
				if err := f.store.Save(paxos.Persist{Entries: []paxos.Entry{e}}); err != nil {
					t.Fatal(err)
				}
				damaged = true
			}
		}
	}
	if !damaged {
		t.Fatal("setup: the victim put is not in f's log")
	}
	s.stop(f)
	s.err = nil // the checkers object to the damage: the test looks at the node's own verdict
	s.restart(f)
	scUntil(t, s, 5*time.Second, "f flagged as diverged", func() bool {
		if f.n.diverged.Load() {
			return true
		}
		scPut(s, l, "tick", "x")
		return false
	})
	scRun(s, 50*time.Millisecond) // the verdict's write is durable
	s.stop(f)
	s.err = nil // the checkers object to the damage: the test looks at the node's own verdict
	s.restart(f)
	if !f.n.diverged.Load() || f.n.divergedRefusal(scGet("victim")) == nil {
		t.Fatalf("after a restart node %d, found diverged before, answers clients again", f.id)
	}
}

// A wrong state copied by snapshot install must not outvote the healthy
// member. The leader's state diverges between two check slots; a member
// that lost its disk rebuilds from the leader's snapshot before the next
// one; there the leader and the rebuilt member report the same wrong hash
// — but the rebuilt member's report witnesses the leader's state, not a
// state of its own, so there is no quorum of independent witnesses, and
// the one healthy member is not convicted. (It was, and its log line told
// the operator to rebuild it from the wrong snapshot.)
func TestCopiedStateDoesNotOutvoteHealthyMember(t *testing.T) {
	s := rgSim(t, 202, func(p *simParams) {
		p.snapshotEntries, p.snapshotKeep = 10, 2
		p.window = 4
	})
	const every = 200
	setEvery := func() {
		for _, sn := range s.nodes {
			if sn.up() {
				sn.n.cfg.StateCheckSlots = every
			}
		}
	}
	setEvery()
	l := scLeader(t, s)
	fs := rgFollowers(s, l)
	healthy, lost := fs[0], fs[1]
	for l.n.sm.Applied()%every < 3 || l.n.sm.Applied() < every {
		scPut(s, l, "k", "v")
	}
	scUntil(t, s, time.Second, "all caught up", func() bool {
		return healthy.n.sm.Applied() == l.n.sm.Applied() && lost.n.sm.Applied() == l.n.sm.Applied()
	})
	s.runOn(l, l.inc, func(n *Node) { n.sm.TamperPut("evil", []byte("x")) }) // a bug, a bit flip
	for i := 0; i < 12; i++ {
		scPut(s, l, "k", "v")
	}
	s.stop(lost)
	lost.fs, lost.join, lost.wiped = vfs.NewStrictMem(), JoinRejoin, true
	s.check.lostDisk(lost)
	s.err = nil
	s.restart(lost)
	setEvery()
	scUntil(t, s, 3*time.Second, "the rebuilt node installed the leader's snapshot", func() bool {
		return counterValue(lost.n.m.snapshotInstalls) >= 1
	})
	if _, copied := lost.n.sm.Get("evil"); !copied {
		t.Fatal("setup: the rebuilt node does not hold the leader's wrong state")
	}
	for i := 0; i < 2*every && l.up() && l.n.r.Status().Role == proposer.Leader; i++ {
		scPut(s, l, "k", "v")
	}
	if healthy.n.diverged.Load() {
		t.Errorf("the healthy member %d was convicted by the leader %d and a copy of its state (%d)", healthy.id, l.id, lost.id)
	}
}

// A node found diverged steps down and takes no part (no votes, no
// campaigns), so the healthy members elect a leader of their own and a
// member rebuilding with --rejoin gets its snapshot from it and finishes.
// (A diverged leader used to keep leading while refusing snapshot reads,
// so no member behind its log could ever be rebuilt.)
func TestDivergedLeaderStandsAside(t *testing.T) {
	s := rgSim(t, 203, func(p *simParams) {
		p.nodes = 5
		p.snapshotEntries, p.snapshotKeep = 10, 2
		p.window = 4
	})
	l := scLeader(t, s)
	lost := rgFollowers(s, l)[1]
	for i := 0; i < 3; i++ {
		scPut(s, l, "k", "v")
	}
	s.runOn(l, l.inc, func(n *Node) { n.sm.TamperPut("evil", []byte("x")) })
	scUntil(t, s, 5*time.Second, "the leader flagged", func() bool {
		if l.n.diverged.Load() {
			return true
		}
		scPut(s, l, "k", "v")
		return false
	})
	s.stop(lost)
	lost.fs, lost.join, lost.wiped = vfs.NewStrictMem(), JoinRejoin, true
	s.check.lostDisk(lost)
	s.err = nil
	s.restart(lost)
	s.p.rpcFail = 0
	var nl *simNode
	scUntil(t, s, 5*time.Second, "a healthy leader", func() bool {
		for _, sn := range s.nodes {
			if sn != l && sn.up() && sn.n.r.Status().Role == proposer.Leader {
				nl = sn
				return true
			}
		}
		return false
	})
	scUntil(t, s, 10*time.Second, "the rebuilt node voting again", func() bool {
		scPut(s, nl, "k", "v")
		return !lost.n.rejoin.active
	})
	if l.n.r.Status().Role == proposer.Leader {
		t.Errorf("the diverged node %d leads", l.id)
	}
	if _, evil := lost.n.sm.Get("evil"); evil {
		t.Errorf("the rebuilt node %d holds the diverged leader's wrong state", lost.id)
	}
}

// A state check costs time in proportion to the state: the stride between
// checks grows with it, in powers of two, and a small state is checked at
// every interval.
func TestStateCheckStride(t *testing.T) {
	for _, tc := range []struct {
		used, want uint64
	}{
		{0, 1},
		{stateCheckStrideBytes, 1},
		{stateCheckStrideBytes + 1, 2},
		{3 * stateCheckStrideBytes, 4},
		{1_000_000 * (11 + 256), 8}, // a million 11-byte keys of 256-byte values: 7.96 strides
		{8 << 30, 256},
	} {
		if got := checkStride(tc.used); got != tc.want {
			t.Errorf("checkStride(%d) = %d, want %d", tc.used, got, tc.want)
		}
	}
}
