// Package service is the part of paxosd that gives the replicated log its
// meaning on a node: the node's event loop that drives the protocol core and
// applies every chosen slot, in order, to the replicated state machine
// (package statemachine, which also defines the log format of commands and
// the snapshot format), and the client RPC server.
//
// # The node
//
// A Node's loop is a set of handlers (loop.go) that one goroutine at a time
// calls with one input each — a peer's message, a client call, writes
// reported durable, a tick, a background job's result — and that reach the
// world only through narrow edges (edges.go): a journal that makes writes
// durable in order and reports later how far it got, a transport, a clock,
// client connections, a peer dialer and background work. Node.run drives
// them in production over Pebble, TCP and the system clock; the seeded
// node simulation (nodesim_*_test.go) drives the same handlers over fakes.
// What may leave before the write is durable is decided by the protocol
// core (paxos.Ready.AfterPersist), not here.
//
// The node proposes the state machine's internal commands itself: the
// leader's clock (OpClock, nodeclock.go), the state check's reports
// (OpStateHash, statecheck.go), the cluster's identity (OpClusterID and
// OpVoter, identity_node.go), the default quota (OpQuotaDefault,
// quota_node.go) and the cluster level (OpLevel, level_node.go). It
// refuses them from clients: their numbers are not wire operations
// (wire.Op.Valid), so validate answers "unknown operation".
//
// # Backups
//
// A snapshot save (wire.OpSnapshotSave, snapshot_save.go) streams a view of
// the state taken after a barrier through the log; CheckBackup and
// RestoreBackup (backup.go) read the backup file back and write a new
// cluster's data directory from it (statemachine.StartNewCluster says what
// a restore keeps). docs/BACKUP.md is the operator's guide.
package service
