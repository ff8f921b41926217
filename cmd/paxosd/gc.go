package main

import (
	"math"
	"os"
	"runtime/debug"
	"time"

	"github.com/paxosd/paxosd/service"
	"github.com/paxosd/paxosd/wal"
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
	// what the kernel counts besides, and the collector overshoots a soft
	// limit while it catches up with a burst of allocation (with 16 MiB,
	// nodes of a million keys peaked 15 to 21 MB over the bound; with 40
	// MiB, a node rejoining by snapshot 6 MB over and, with 1 KiB values,
	// steady nodes 10 MB over: make bench-scale). 64 MiB costs the
	// collector a tenth of its room at a million 256-byte values.
	memoryMargin = 64 << 20
	// memoryEvery is how often the limit follows the data.
	memoryEvery = 2 * time.Second
)

// limitMemoryForLoad sets the process's soft memory limit, before its
// nodes start, to the bound of the states their data directories hold
// (estimated from their snapshot files). Without it a node decoding its
// snapshot at start runs under Go's default, no limit and GOGC=100, and its
// heap grows to about twice the state while it decodes: a node of a
// million 1 KiB values peaked at 2.36 GB against its 2.15 GB bound on every
// restart. followMemory takes over once the nodes run. It does nothing if
// the operator set GOMEMLIMIT.
func limitMemoryForLoad(dataDirs ...string) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	var stored uint64
	for _, dir := range dataDirs {
		stored += wal.SnapshotFilesBytes(dir)
	}
	if stored == 0 {
		return // a new or small node: the collector's own pacing is fine
	}
	debug.SetMemoryLimit(memoryLimit(stored))
}

// limitMemoryForReplay sets the process's soft memory limit to the bound
// of the state its (one) node decoded, before the node replays its log:
// the snapshot files overstate the state (revisions and framing, about
// 30 bytes a key: a limit 58 MB high at a million keys of 256 bytes), and
// a replay's garbage fills the heap up to the limit, so a follower
// restarted after an outage peaked 13 MB over its bound. It does nothing
// if the operator set GOMEMLIMIT.
func limitMemoryForReplay(live uint64) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetMemoryLimit(memoryLimit(live))
}

// memoryLimit is the soft memory limit for nodes holding live bytes of
// keys and values.
func memoryLimit(live uint64) int64 {
	return int64(min(uint64(memoryBase-memoryMargin)+memoryPerLiveByte*live, math.MaxInt64))
}

// followMemory keeps the process's soft memory limit at the bound of the
// data the nodes hold, until stop is closed. It does nothing if the
// operator set GOMEMLIMIT.
func followMemory(stop <-chan struct{}, nodes ...*service.Node) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	set := func() {
		var live uint64
		for _, n := range nodes {
			live += n.LiveBytes()
		}
		debug.SetMemoryLimit(memoryLimit(live))
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
