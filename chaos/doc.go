// Package chaos is paxosd's fault-injection suite: real `paxosd serve`
// processes, each in a network namespace of its own, and a test
// (TestChaos) that runs clients against them while it injects faults
// chosen at random from a printed seed, then checks what the clients saw.
//
// Faults: kill -9 and restart of a node, SIGSTOP/SIGCONT pauses longer than
// the election timeout, partitions (the leader cut off, a minority cut off,
// a bridge, a one-way cut), packet loss and delay, a crash and restart
// of the whole cluster, and an operator replacing a member (member remove,
// its data deleted, member add of a new id, serve --join, member promote
// --wait: run_replace_linux.go). Checks: the key-value history is linearizable
// (porcupine), lock holders never overlap and fencing tokens only grow,
// election leaders never overlap and terms only grow, no acknowledged write
// is lost across the whole-cluster crash, and the cluster accepts a write
// again within a stated bound after each fault heals.
//
// The package holds the harness (namespaces, iptables, an NFQUEUE packet
// delayer, the node processes, the fault schedule, the workloads and the
// checkers); the test itself is in chaos_test.go. docs/CHAOS.md says how
// to run it, what each fault and check is, and how to replay a seed.
//
// A second test, TestChaosLocks (make chaos-locks, off unless
// -chaos.locks), is the lock-holders schedule: 20,000 sessions, each
// holding a lock, kept alive by the Go client alone through kills of the
// leader and partitions; not one may be lost, and no lock may change
// hands (run_lockholders_linux.go).
//
// Everything here needs Linux, root, `ip` and `iptables`; without them the
// test skips itself and says why.
package chaos
