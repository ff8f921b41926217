package service

import (
	"fmt"
	"strings"
	"time"

	"github.com/paxosd/paxosd/internal/linearize"
	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// The liveness phase: once the fault phase ends, everything heals, and
// the cluster must take a fresh write, finish every client's operations
// and converge, every node in service on the same state.

// heal ends the fault phase: the network heals, disks recover, every node
// runs, clocks keep their rates.
func (s *sim) heal() {
	s.tracef("heal: the liveness phase starts")
	s.healed = true
	clear(s.net.cut)
	for _, sn := range s.nodes {
		sn.slowUntil, sn.stalledUntil, sn.failNext = 0, 0, false
		if !sn.up() {
			s.restart(sn)
		}
	}
	s.check.healedAt = s.now
	for _, c := range s.clients {
		c.healed()
	}
	s.at(100*time.Millisecond, nil, s.probe)
}

// probe writes once the cluster is healed, until the write is
// acknowledged: the liveness phase needs one.
func (s *sim) probe() {
	c := s.clients[0]
	if s.probeLink == nil {
		s.probeLink = newSimLink(c, "probe", uint64(s.seed)<<16|0xfff0)
	}
	call := s.now
	in := linearize.KVInput{Op: "put", Key: "probe", Value: fmt.Sprintf("probe@%d", s.now)}
	s.check.written(in.Key, in.Value)
	s.probeLink.do(&wire.Request{Op: wire.OpPut, Key: in.Key, Value: []byte(in.Value)}, livenessTimeMax, func(r *wire.Response) {
		if r == nil {
			s.check.kvOp(-1, in, call, s.now, linearize.KVOutput{Unknown: true})
			s.probe()
			return
		}
		if r.Err != wire.ErrNone {
			s.failf("the probe write failed: %s %s", r.Err, r.ErrMsg)
			return
		}
		s.check.kvOp(-1, in, call, s.now, linearize.KVOutput{})
		s.check.probeOK = true
	})
}

// converged reports whether the liveness phase is done: every node up and
// voting, every client finished, and every replica has applied the same
// slots to the same state, at the cluster level this build implements (a
// leader raises it by itself: every simulated member speaks this build's
// protocol).
func (s *sim) converged() bool {
	if !s.check.probeDone() {
		return false
	}
	for _, c := range s.clients {
		if !c.idle() {
			return false
		}
	}
	if s.op != nil && !s.op.settled() {
		return false
	}
	if s.auth != nil && !s.auth.idle() {
		return false
	}
	var slot paxos.Slot
	var hash uint64
	first := true
	for _, sn := range s.nodes {
		if !sn.serving() {
			continue // removed, or added and not joined (the membership does not name it)
		}
		if !sn.up() || sn.isFrozen() || sn.n.rejoin.active {
			return false
		}
		if sn.n.installing() {
			return false
		}
		a := sn.n.sm.Applied()
		if a != sn.n.r.Status().Commit || a < s.check.maxSlot || sn.n.sm.Level() != statemachine.LevelMax {
			return false
		}
		if first {
			first, slot, hash = false, a, sn.n.sm.Hash()
		} else if a != slot || sn.n.sm.Hash() != hash {
			return false
		}
	}
	return true
}

// progress describes the nodes for a liveness failure.
func (s *sim) progress() string {
	var parts []string
	for _, sn := range s.nodes {
		if !sn.serving() {
			parts = append(parts, fmt.Sprintf("node %d not in service (added %v joined %v removed %v up %v)", sn.id, sn.added, sn.joined, sn.gone, sn.up()))
			continue
		}
		if !sn.up() {
			parts = append(parts, fmt.Sprintf("node %d down", sn.id))
			continue
		}
		st := sn.n.r.Status()
		level := uint64(0) // unknown while it installs a snapshot
		if !sn.n.installing() {
			level = sn.n.sm.Level()
		}
		parts = append(parts, fmt.Sprintf("node %d: %s ballot %s promised %s leader %d commit %d applied %d level %d rejoining %v installing %v",
			sn.id, st.Role, st.Ballot, st.Promised, st.Leader, st.Commit, sn.n.appliedSlot(), level, sn.n.rejoin.active, sn.n.installing()))
	}
	for _, c := range s.clients {
		if !c.idle() {
			parts = append(parts, c.describe())
		}
	}
	parts = append(parts, fmt.Sprintf("probe done: %v, highest slot chosen %d", s.check.probeDone(), s.check.maxSlot))
	return strings.Join(parts, "; ")
}
