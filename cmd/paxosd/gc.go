package main

import (
	"os"
	"runtime/debug"
)

// nodeGCPercent is the Go heap's growth target a node runs with (GOGC),
// unless GOGC is set in its environment.
//
// A node keeps its whole key space in memory (a B-tree of the pairs), so
// the live heap is about 1.3 × the key and value bytes, and the Go runtime
// lets the heap grow to live × (1 + GOGC/100) before it collects: with
// Go's default of 100, a node with 1 GiB of data would sit at 2.6 GiB,
// beyond the bound of 2 × live data + 150 MiB the project holds a node to.
// 50 caps it near 2 × live: the collector runs twice as often, which costs
// a few percent of CPU on a write-heavy node (measured in docs/DESIGN.md,
// "State at scale"). GOMEMLIMIT is left to the operator: only they know
// what else shares the machine; set it (say, to 80 % of the memory given
// to the node) to trade CPU for a hard ceiling.
const nodeGCPercent = 50

// tuneGC applies nodeGCPercent unless the operator set GOGC.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(nodeGCPercent)
	}
}
