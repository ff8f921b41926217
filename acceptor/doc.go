// Package acceptor is the Paxos acceptor as a deterministic state machine.
//
// An Acceptor holds the promised ballot and the accepted (ballot, value) of
// every slot. Step takes a Prepare or an Accept and returns the reply; the
// state changes it made accumulate until the caller collects them with
// TakePersist. The caller must make those writes durable BEFORE it sends any
// reply Step returned: a Promise or Accepted that leaves before its write is
// synced can be forgotten by a crash, and a forgetful acceptor lets two
// values be chosen for one slot.
//
// Invariants:
//   - Promised never decreases.
//   - An accepted entry is replaced only by one with a ballot at least as high.
//   - An entry at or below the replica's chosen watermark holds the chosen
//     value (Learn keeps this true for values learned from others).
package acceptor
