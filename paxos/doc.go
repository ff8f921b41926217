// Package paxos is the vocabulary every Multi-Paxos role shares: node ids,
// ballots, slots, values, the protocol messages, quorum rules, and the Ready
// structure through which the pure protocol core hands its work to a driver.
//
// It contains no I/O, no goroutines and no clock. The roles (acceptor,
// proposer, learner) and their composition (paxos/replica) build on it; the
// node loop in service/ and the simulation in paxos/paxostest drive them.
//
// # Protocol invariants
//
// The tests (paxos/paxostest) check these after every simulated step:
//
//   - at most one value is chosen for any slot;
//   - only proposed values (or no-ops) are chosen;
//   - every replica delivers the same sequence of chosen values, in slot order;
//   - an acceptor's promised ballot never decreases, across crashes too.
//
// # The driver's obligations (see Ready)
//
// The core sorts what may leave at once (Ready.Messages) from what must wait
// for the write (Ready.AfterPersist: Promise, Accepted, Prepare), so every
// driver obeys one send-before-sync rule. A driver takes a Ready and hands
// Ready.Persist to durable storage (one synced batch, in order with the
// earlier ones; it may finish later), sends Ready.Messages at once, sends
// Ready.AfterPersist only once every write handed over so far is durable,
// and applies Ready.Decided. Sending a Promise or Accepted before its write
// is durable breaks Paxos, because a restarted acceptor would forget a
// promise or vote it already gave; sending a Prepare before the candidate's
// own promise of its ballot is durable would let a restarted node campaign
// under that ballot a second time.
package paxos
