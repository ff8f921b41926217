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
// A driver takes a Ready and, in this order: makes Ready.Persist durable (one
// synced write), sends Ready.Messages, and applies Ready.Decided. A Promise
// or Accepted in Messages depends on Persist: sending it before the write is
// durable breaks Paxos, because a restarted acceptor would forget a promise
// it already gave.
package paxos
