// Package proposer is the Multi-Paxos proposer (and leader) as a
// deterministic state machine.
//
// A proposer is a Follower until it has not heard from a leader for a
// randomized election timeout. It then asks the others whether they would
// welcome a new leader (PreVote: granted only by nodes that have not heard
// from a leader for an election timeout themselves and are not ahead of it),
// so a node returning from a partition cannot depose a healthy leader. With a
// quorum of grants it runs Phase 1 once for every slot it does not know to be
// chosen, re-proposes the highest-ballot value reported for each slot (a
// no-op for holes), and then leads: it assigns new slots to batches of
// commands and keeps up to WindowSlots of them in flight (Phase 2,
// pipelined).
//
// A leader steps down when any Nack shows a higher ballot, when it has not
// heard from a quorum for an election timeout (check-quorum), or when slots
// are in flight and nothing was chosen for two election timeouts (a stalled
// leader must not keep heartbeating while nothing commits).
//
// Time arrives only as Tick calls and randomness through Config.Rand.
package proposer
