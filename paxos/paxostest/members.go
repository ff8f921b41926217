package paxostest

import (
	"fmt"
	"math/rand"

	"github.com/paxosd/paxosd/paxos"
)

// changeMembership has a leader propose a random membership change, as an
// operator would: add a learner under a fresh id (the node starts with an
// empty disk and learns everything from the others), promote a learner,
// demote or remove a voter (the leader itself included), remove a
// learner. Removed nodes keep running — crashing, restarting, campaigning
// — and must disturb nobody. A change refused (one in flight, or the
// proposal is stale) is simply not made.
func (e *Env) changeMembership() error {
	var leader *node
	for _, id := range e.Leaders() {
		leader = e.node(id)
	}
	if leader == nil {
		return nil
	}
	latest := leader.r.Configs().Latest()
	next, what, fresh := e.drawChange(latest)
	if what == "" {
		return nil
	}
	if err := leader.r.ProposeConfig(next); err != nil {
		e.tracef("node %d refuses %s: %v", leader.id, what, err)
		return nil
	}
	e.Stats.ConfigsProposed++
	e.tracef("node %d proposes %s (version %d: voters %v)", leader.id, what, next.Version, next.Voters())
	if fresh != nil {
		// The new node starts as the operator starts one: empty disk,
		// the cluster's first configuration; it replays or installs the
		// rest.
		e.nodes = append(e.nodes, fresh)
		return e.start(fresh)
	}
	return nil
}

// drawChange returns latest changed at random, and a node to start when
// the change adds one.
func (e *Env) drawChange(latest paxos.Membership) (next paxos.Membership, what string, fresh *node) {
	next = latest.Clone()
	next.Version++
	var voters, learners []int
	for i, m := range next.Members {
		if m.Learner {
			learners = append(learners, i)
		} else {
			voters = append(voters, i)
		}
	}
	switch x := e.rng.Intn(14); {
	case x >= 10 && len(next.Members) > 1:
		// A jump: a random non-empty subset of the members votes, the
		// rest learn — no overlap with the old voters is promised, which
		// α-window reconfiguration allows (and single-member changes
		// would hide a Phase 1 that skips the new voters).
		for {
			for i := range next.Members {
				next.Members[i].Learner = e.rng.Intn(2) == 0
			}
			if len(next.Voters()) > 0 {
				return next, "moving the vote to " + fmt.Sprint(next.Voters()), nil
			}
		}
	case x < 3 && len(e.nodes) < e.maxNodes:
		id := paxos.NodeID(len(e.nodes) + 1)
		next.Members = append(next.Members, paxos.Member{ID: id, Learner: true})
		fresh = &node{id: id, store: newMemStore(), rand: rand.New(rand.NewSource(e.opts.Seed*31 + int64(id)))}
		return next, "adding learner " + itoa(id), fresh
	case x < 6 && len(learners) > 0:
		i := learners[e.rng.Intn(len(learners))]
		next.Members[i].Learner = false
		return next, "promoting " + itoa(next.Members[i].ID), nil
	case x < 8 && len(voters) > 1:
		i := voters[e.rng.Intn(len(voters))]
		id := next.Members[i].ID
		next.Members = append(next.Members[:i], next.Members[i+1:]...)
		return next, "removing voter " + itoa(id), nil
	case x < 9 && len(voters) > 1:
		i := voters[e.rng.Intn(len(voters))]
		next.Members[i].Learner = true
		return next, "demoting " + itoa(next.Members[i].ID), nil
	case len(learners) > 0:
		i := learners[e.rng.Intn(len(learners))]
		id := next.Members[i].ID
		next.Members = append(next.Members[:i], next.Members[i+1:]...)
		return next, "removing learner " + itoa(id), nil
	}
	return next, "", nil
}

func itoa(id paxos.NodeID) string {
	const digits = "0123456789"
	if id < 10 {
		return digits[id : id+1]
	}
	return itoa(id/10) + digits[id%10:id%10+1]
}

// members returns the nodes of the configuration in force at the node
// that applied furthest: the ones the liveness phase waits for.
func (e *Env) members() []*node {
	var ahead *node
	for _, n := range e.nodes {
		if ahead == nil || n.applied > ahead.applied {
			ahead = n
		}
	}
	var out []*node
	for _, m := range ahead.configs.Latest().Members {
		out = append(out, e.node(m.ID))
	}
	return out
}
