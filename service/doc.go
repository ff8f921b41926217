// Package service is the part of paxosd that gives the replicated log its
// meaning: the replicated state machine (a key-value store with duplicate
// detection), the node's event loop that drives the protocol core, and the
// client RPC server.
//
// # The state machine
//
// StateMachine holds the replicated state. The node applies every chosen
// slot to it in slot order, with Apply (one encoded Command) or ApplyValue
// (a whole paxos.Value). Every replica applies the same commands in the same
// order, so every replica must end in the same state and return the same
// Results; Hash digests the state so that tests can check this.
//
// # Determinism rules
//
// Apply is a pure function of the state and the command bytes:
//
//   - no clock: time, when a command needs it (session expiry, lock-delay),
//     is a field that the leader writes into the command when it proposes
//     it; replicas never read their own clocks while applying;
//   - no I/O, no goroutines, no randomness;
//   - no map iteration order in any result or decision: lists come from a
//     sorted key index, the duplicate table is hashed in client-id order,
//     and eviction picks a victim by a total order;
//   - limits (SMOptions) are part of the state machine's definition: every
//     replica must run with the same options;
//   - a malformed command is answered with ErrInvalid and changes nothing;
//     Apply never panics on input. It panics only when the caller breaks
//     slot order.
//
// # Revisions
//
// As in etcd, the store revision starts at 0 and grows by one with each
// change (a put, a delete of an existing key, a successful cas). Each key
// records the revision that created it (CreateRevision), that last changed
// it (ModRevision) and the number of puts since creation (Version). Every
// Result carries the store revision after the command. A cas compares
// PrevValue against the value and/or PrevRevision against ModRevision;
// PrevRevision 0 means "the key must not exist", which makes a create-only
// put. A failed cas is Succeeded == false, not an error.
//
// # Duplicate detection contract
//
// The table of recent answers is replicated state, included in Hash (and in
// snapshots, when they exist): a retry after a leader change must find the
// same answer on the new leader.
//
//   - A command carries (ClientID, Seq). Clients number their requests and
//     retry a request with the same pair, on any node.
//   - For each client the state machine keeps the Result of every applied
//     mutating command (put, delete, cas) with Seq >= the client's floor.
//     A command whose (ClientID, Seq) was applied already returns the stored
//     Result and is not applied again: the revision does not move.
//   - Every command carries AckedBelow: the client has its answers for all
//     Seq below it. The floor rises to AckedBelow (it never falls) and the
//     results below it are forgotten. A command with Seq below the floor is
//     answered with ErrStaleRequest and changes nothing; it may or may not
//     have been applied before, and the state machine can no longer tell.
//   - A client that leaves more than SMOptions.ResultsPerClientMax results
//     unacknowledged loses the oldest: its floor rises past it.
//   - Reads (get, list) are never stored and never refused as stale: running
//     one again is harmless. They raise the floor and count as activity of a
//     client already in the table, but do not add one.
//   - ClientID 0 turns duplicate detection off: the command is always
//     applied.
//   - The table holds at most SMOptions.ClientsMax clients. A new client
//     beyond that evicts the one whose last command came in the oldest slot,
//     the smaller ClientID first among equals, so every replica evicts the
//     same client. An evicted client is forgotten entirely: a retry of one of
//     its earlier commands is applied again. Sessions (a later change) will
//     tie a client's entry to its session, so that it lives exactly as long
//     as the session and is dropped through the log when the session ends.
//   - Invalid commands never touch the table.
//
// # Command encoding
//
// A Command travels through the log as a msgpack array of its fields in
// this fixed order; trailing fields at their zero value are omitted, and
// new fields are only ever appended:
//
//	[ ClientID uint, Seq uint, AckedBelow uint, Op uint,
//	  Key str, Value bin|nil, PrevValue bin|nil, PrevRevision uint|nil,
//	  Prefix str, Limit uint ]
//
// nil in PrevValue or PrevRevision means "no such condition". The encoding
// is deterministic: EncodeCommand of equal commands gives equal bytes.
package service
