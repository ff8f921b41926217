// Package replica composes the acceptor, proposer and learner of one server
// into a single deterministic state machine, the equivalent of etcd's
// RawNode. Production (service's node loop) and the simulation
// (paxos/paxostest) drive this same code.
//
// Usage:
//
//	r, _ := replica.New(cfg, state, applied) // state loaded from the WAL
//	for {
//		// feed inputs: r.Step(msg), r.Tick(), r.Propose(cmd)
//		rd := r.Ready()
//		wal.Save(rd.Persist)        // 1. durable, synced — before anything is sent
//		send(rd.Messages)           // 2. messages To this node go back into r.Step
//		apply(rd.Decided)           // 3. in order
//	}
//
// Ready hands over the work accumulated since the previous call, so all the
// writes caused by many inputs share one sync (group commit), and all the
// commands proposed meanwhile share one slot (batching).
package replica
