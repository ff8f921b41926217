package service

import (
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/paxosd/paxosd/paxos"
)

// The adversarial review of the bootstrap (issue 11, bug 1) found these;
// both chose two values for slot 1 when a quorum of fresh members was
// enough to form a cluster. Formation now needs every member fresh.

// rgFormGated restarts every node of s on an empty disk with --new-cluster
// (those in rejoining with --rejoin): a first start through the bootstrap
// gate.
func rgFormGated(s *sim, rejoining ...*simNode) {
	for _, sn := range s.nodes {
		s.stop(sn)
		sn.fs = vfs.NewStrictMem()
		sn.join, sn.started, sn.wiped = JoinForm, false, false
		if slices.Contains(rejoining, sn) {
			sn.join = JoinRejoin
		}
	}
	for _, sn := range s.nodes {
		s.restart(sn)
	}
}

// rgWipe stops sn and loses its disk; it comes back with the --new-cluster
// left in its unit file.
func rgWipe(s *sim, sn *simNode) {
	s.stop(sn)
	sn.fs = vfs.NewStrictMem()
	sn.join, sn.wiped = JoinForm, true
	s.check.lostDisk(sn)
}

// Node 3 never voted (a late first start); node 2 loses its disk and comes
// back with the --new-cluster left in its unit file while node 1, which
// holds the only other copy of the state, reboots. Nodes 2 and 3 are both
// fresh: they must not form a second cluster.
func TestRegressBootstrapWipedVoterAndNeverVotedDoNotForm(t *testing.T) {
	s := rgSim(t, 7, nil)
	n1, n2, n3 := s.nodes[0], s.nodes[1], s.nodes[2]
	s.stop(n3) // not started yet in this story
	n3.fs = vfs.NewStrictMem()
	n3.join, n3.started, n3.wiped = JoinForm, false, false
	rgLeader(t, s)
	if err := s.runFor(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	rgWipe(s, n2)
	s.stop(n1)
	s.restart(n2)
	s.restart(n3)
	if err := s.runFor(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if !n2.n.boot.active || !n3.n.boot.active {
		t.Fatalf("with node 1 down, node 2 (wiped) gated=%v and node 3 (never voted) gated=%v: a fresh quorum formed", n2.n.boot.active, n3.n.boot.active)
	}
	s.restart(n1)
	if err := s.runFor(5 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// All three form together; node 3 is cut off right after forming and never
// votes; later node 2 is wiped (back with --new-cluster) while node 1 is
// down. Node 3, formed but fresh, and node 2 must not form a second cluster.
func TestRegressBootstrapWipedVoterAndFormedNonVoterDoNotForm(t *testing.T) {
	s := rgSim(t, 9, nil)
	rgFormGated(s)
	n1, n2, n3 := s.nodes[0], s.nodes[1], s.nodes[2]
	rgRunUntil(t, s, 10*time.Second, "node 3 formed", func() bool { return !n3.n.boot.active })
	for _, o := range []*simNode{n1, n2} {
		s.net.cut[[2]paxos.NodeID{o.id, n3.id}] = true
		s.net.cut[[2]paxos.NodeID{n3.id, o.id}] = true
	}
	if err := s.runFor(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if !n3.n.fresh() {
		t.Fatal("setup: node 3 voted although cut off")
	}
	rgWipe(s, n2)
	s.stop(n1)
	s.net.cut = map[[2]paxos.NodeID]bool{}
	s.restart(n2)
	if err := s.runFor(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	s.restart(n1)
	if err := s.runFor(5 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// A new cluster whose third member starts with --rejoin (left in its unit
// file, or added to a --new-cluster one: --rejoin wins): the rejoining
// member told the others it held state, so they never formed and it never
// caught up.
func TestRegressBootstrapRejoinDoesNotBlockFormation(t *testing.T) {
	s := rgSim(t, 9, nil)
	rgFormGated(s, s.nodes[2])
	rgRunUntil(t, s, 60*time.Second, "every member voting", func() bool {
		for _, sn := range s.nodes {
			if !sn.up() || sn.n.boot.active || sn.n.rejoin.active {
				return false
			}
		}
		return s.leader() != 0
	})
}
