package main

import (
	"math"
	"os"
	"runtime/debug"
	"time"

	"github.com/paxosd/paxosd/service"
)

// A node keeps its whole key space in memory, so its heap scales with the
// key and value bytes it holds ("live data"): about 1.3 to 1.5 × live
// data once the tree, the keys and the values are counted. The project
// bounds a node's memory at 2 × live data + 150 MiB. Go's collector alone
// does not know that bound: at GOGC=100 it lets the heap grow to twice the
// live heap between collections, near 3 × live data. So a process of
// nodes sets Go's soft memory limit to the bound of the data it holds,
// and follows it as the data grows or shrinks: below the limit the
// collector paces itself by GOGC as usual (cheap for small states); near
// it, it collects as often as needed to stay under. The live heap stays
// well below the limit (1.5 × < 2 ×), so the collector never thrashes.
// An operator who sets GOMEMLIMIT chooses for themselves (docs/DESIGN.md,
// "State at scale").

// Memory bound per node: memoryPerLiveByte × live data + memoryBase.
const (
	memoryPerLiveByte = 2
	memoryBase        = 150 << 20
	// memoryMargin is kept below the bound: the limit covers the Go
	// runtime's memory, not the binary's text, the threads' stacks and
	// what the kernel counts besides (with 16 MiB, nodes of a million keys
	// peaked 15 to 21 MB over the bound: make bench-scale).
	memoryMargin = 40 << 20
	// memoryEvery is how often the limit follows the data.
	memoryEvery = 2 * time.Second
)

// followMemory keeps the process's soft memory limit at the bound of the
// data the nodes hold, until stop is closed. It does nothing if the
// operator set GOMEMLIMIT.
func followMemory(stop <-chan struct{}, nodes ...*service.Node) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	set := func() {
		limit := uint64(memoryBase - memoryMargin)
		for _, n := range nodes {
			limit += memoryPerLiveByte * n.LiveBytes()
		}
		debug.SetMemoryLimit(int64(min(limit, math.MaxInt64)))
	}
	set()
	go func() {
		t := time.NewTicker(memoryEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				set()
			case <-stop:
				return
			}
		}
	}()
}
