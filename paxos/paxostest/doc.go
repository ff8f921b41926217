// Package paxostest is the deterministic simulation harness: an Env of N
// replicas driven in one goroutine over a seeded network that drops,
// duplicates, reorders and delays messages and partitions nodes, with
// crashes that lose every write not yet persisted and restarts that rebuild
// a replica from its durable state alone.
//
// After every step the Env checks the protocol invariants:
//
//   - no slot is chosen with two values (across all replicas and restarts);
//   - every replica delivers slots contiguously, in order, each with the
//     value chosen for it (so applied prefixes are identical);
//   - only proposed commands (or no-ops) are chosen;
//   - a durable promise never goes backwards, and neither does a durable
//     watermark.
//
// A run then heals the network (liveness phase) and requires that every
// acknowledged command reaches every replica and that new commands commit.
// The same seed replays the same run exactly.
package paxostest
