package paxostest

import (
	"fmt"
	"github.com/paxosd/paxosd/paxos"
	"sort"
)

// Run executes the safety phase and then the liveness phase, returning the
// first invariant violation or liveness failure.
func (e *Env) Run() error {
	if err := e.safetyPhase(); err != nil {
		return fmt.Errorf("seed %d, step %d (safety phase): %w", e.opts.Seed, e.step, err)
	}
	if err := e.livenessPhase(); err != nil {
		return fmt.Errorf("seed %d, step %d (liveness phase): %w", e.opts.Seed, e.step, err)
	}
	return nil
}

func (e *Env) safetyPhase() error {
	for e.step = 0; e.step < e.opts.Steps; e.step++ {
		if err := e.randomStep(); err != nil {
			return err
		}
	}
	return nil
}

func (e *Env) randomStep() error {
	switch x := e.rng.Float64(); {
	case x < e.faults.CrashRate:
		if alive := e.alive(); len(alive) > 0 {
			e.crash(alive[e.rng.Intn(len(alive))])
		}
		return nil
	case x < e.faults.CrashRate+e.faults.RestartRate:
		for _, n := range e.nodes {
			if n.r == nil {
				return e.restart(n)
			}
		}
		return nil
	case x < e.faults.CrashRate+e.faults.RestartRate+e.faults.PartitionRate:
		e.partition()
		return nil
	}
	alive := e.alive()
	if len(alive) == 0 {
		return nil
	}
	n := alive[e.rng.Intn(len(alive))]
	switch x := e.rng.Intn(100); {
	case x < 45 && len(e.net) > 0:
		return e.deliver(e.rng.Intn(len(e.net)), true)
	case x < 70:
		return e.ready(n)
	case e.asyncDisk && x < 80:
		return e.syncDisk(n)
	case !e.asyncDisk && x < 88, e.asyncDisk && x < 90:
		if e.rng.Intn(15) == 0 {
			return e.changeMembership()
		}
		if e.rng.Intn(100) == 0 {
			// A leader hands over to a random member (an error if it does
			// not lead, or picks itself: nothing happens then).
			to := paxos.NodeID(1 + e.rng.Intn(len(e.nodes)))
			if err := n.r.TransferLeadership(to); err == nil {
				e.tracef("node %d hands leadership to node %d", n.id, to)
			}
			return nil
		}
		n.r.Tick()
	default:
		e.propose(n)
	}
	return nil
}

// livenessPhase heals the network and restarts every node, then runs
// rounds of ticks, deliveries and Readys. It succeeds once every replica
// has applied every acknowledged command and a fresh command proposed after
// the heal has committed everywhere.
func (e *Env) livenessPhase() error {
	e.group = map[paxos.NodeID]int{}
	for _, n := range e.nodes {
		if n.r == nil {
			if err := e.restart(n); err != nil {
				return err
			}
		}
	}
	probe := ""
	for round := 0; round < e.opts.LivenessRounds; round++ {
		e.step++
		for _, n := range e.nodes {
			n.r.Tick()
		}
		if probe == "" || (round%50 == 0 && !e.acked[probe]) {
			for _, n := range e.members() {
				if cmd := e.propose(n); cmd != "" {
					probe = cmd
					break
				}
			}
		}
		for pass := 0; pass < 4; pass++ {
			for _, n := range e.nodes {
				if err := e.ready(n); err != nil {
					return err
				}
				if err := e.syncDisk(n); err != nil {
					return err
				}
			}
			for len(e.net) > 0 {
				if err := e.deliver(0, false); err != nil {
					return err
				}
			}
		}
		if probe != "" && e.acked[probe] && e.converged() {
			e.Stats.ConfigsApplied = int(e.members()[0].configs.Latest().Version - 1)
			return nil
		}
	}
	return fmt.Errorf("no convergence after %d rounds: %s", e.opts.LivenessRounds, e.describeProgress())
}

// converged reports whether every member (of the latest configuration)
// applied every chosen slot. Removed nodes are told nothing after their
// removal takes effect, and need not catch up.
func (e *Env) converged() bool {
	for _, n := range e.members() {
		if n.applied < e.Stats.MaxSlot {
			return false
		}
	}
	return true
}

func (e *Env) describeProgress() string {
	var parts []string
	for _, n := range e.nodes {
		st := n.r.Status()
		parts = append(parts, fmt.Sprintf("node %d: %s ballot %s leader %d applied %d commit %d configs %s", n.id, st.Role, st.Ballot, st.Leader, n.applied, st.Commit, describeConfigs(n.configs)))
	}
	sort.Strings(parts)
	return fmt.Sprintf("max chosen slot %d; %v", e.Stats.MaxSlot, parts)
}

func describeConfigs(c paxos.Configs) string {
	s := fmt.Sprintf("v%d%v", c.Current.Version, c.Current.Voters())
	if c.Pending() {
		s += fmt.Sprintf("->v%d%v@%d", c.Next.Version, c.Next.Voters(), c.NextAt)
	}
	return s
}
