package statemachine

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/paxosd/paxosd/paxos"
)

// BenchmarkSnapshotAtScale measures, on a state of 1,000,000 keys of
// 256-byte values, what a snapshot
// costs the loop (View) against the work moved off it (WriteTo, Hash,
// CheckSnapshot, RestoreFrom), and the live heap per byte of key and value. Run it alone:
//
//	go test ./statemachine -run '^$' -bench SnapshotAtScale -benchtime 1x
func BenchmarkSnapshotAtScale(b *testing.B) {
	const keys, valueBytes = 1_000_000, 256
	sm := NewStateMachine(SMOptions{})
	value := bytes.Repeat([]byte{'v'}, valueBytes)
	live := 0
	for i := 0; i < keys; i++ {
		c := putCmd(fmt.Sprintf("key/%012d", i*7919%keys), "")
		c.Value = bytes.Clone(value)
		sm.ApplyCommand(paxos.Slot(i+1), &c)
		live += len(c.Key) + valueBytes
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heapPerLive := float64(ms.HeapAlloc) / float64(live)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.ReportMetric(heapPerLive, "heap/live")
		start := time.Now()
		v, err := sm.View()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(time.Since(start).Microseconds()), "view-µs")

		// The loop goes on while the view is encoded: a put to every
		// 10th key copies the tree's nodes it touches.
		start = time.Now()
		for k := 0; k < keys; k += 10 {
			c := putCmd(fmt.Sprintf("key/%012d", k), "x")
			sm.ApplyCommand(paxos.Slot(keys+k+1), &c)
		}
		b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(keys/10), "put-after-view-ns")

		var buf bytes.Buffer
		buf.Grow(live + live/4) // as the store's chunks would: no regrowth to time
		start = time.Now()
		n, err := v.WriteTo(&buf)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "encode-ms")
		b.ReportMetric(float64(n)/float64(live), "snapshot/live")

		start = time.Now()
		if _, err := v.Hash(SMOptions{}); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "hash-ms")

		data := buf.Bytes()
		start = time.Now()
		if _, err := CheckSnapshot(SMOptions{}, func() (io.Reader, error) { return bytes.NewReader(data), nil }, int64(len(data))); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "check-ms")

		start = time.Now()
		restored, err := RestoreFrom(SMOptions{}, func() (io.Reader, error) { return bytes.NewReader(data), nil }, int64(len(data)))
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "restore-ms")

		// The heap a restarted node starts with: the restored state alone.
		sm, v, data, buf = nil, nil, nil, bytes.Buffer{}
		runtime.GC()
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapAlloc)/float64(live), "restored-heap/live")
		runtime.KeepAlive(restored)
	}
}

// BenchmarkApplyPutAtScale measures decode+apply of a put overwriting a
// random one of 1,000,000 keys (the bench-scale workload), where each
// lookup walks a tree too large for the caches:
//
//	go test ./statemachine -run '^$' -bench ApplyPutAtScale
func BenchmarkApplyPutAtScale(b *testing.B) {
	const keys = 1_000_000
	sm := NewStateMachine(SMOptions{})
	value := bytes.Repeat([]byte{'v'}, 256)
	for i := 0; i < keys; i++ {
		c := putCmd(fmt.Sprintf("key/%012d", i), "")
		c.Value = bytes.Clone(value)
		sm.ApplyCommand(paxos.Slot(i+1), &c)
	}
	cmds := make([][]byte, 4096)
	for i := range cmds {
		cmds[i] = EncodeCommand(&Command{Op: OpPut, Key: fmt.Sprintf("key/%012d", (i*7919+i*i*104729)%keys), Value: value})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sm.Apply(paxos.Slot(keys+i+1), cmds[i%len(cmds)])
	}
}

// BenchmarkCollectorAtScale measures what the garbage collector pays for a
// state of 1,000,000 keys of 256 bytes written as a node writes them
// (encoded commands, decoded and applied): the time of one full collection
// (the median of five) and the live heap per byte of key and value. A
// node under load collects every few seconds, and each collection marks
// every object of the state:
//
//	go test ./statemachine -run '^$' -bench CollectorAtScale -benchtime 1x
func BenchmarkCollectorAtScale(b *testing.B) {
	const keys = 1_000_000
	sm := NewStateMachine(SMOptions{})
	value := bytes.Repeat([]byte{'v'}, 256)
	live := 0
	for i := 0; i < keys; i++ {
		key := fmt.Sprintf("bench/scale/key/%d", i*7919%keys)
		sm.Apply(paxos.Slot(i+1), EncodeCommand(&Command{Op: OpPut, Key: key, Value: value}))
		live += len(key) + len(value)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var took []time.Duration
		for range 5 {
			start := time.Now()
			runtime.GC()
			took = append(took, time.Since(start))
		}
		slices.Sort(took)
		b.ReportMetric(float64(took[2].Microseconds())/1000, "gc-ms")
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapAlloc)/float64(live), "heap/live")
		b.ReportMetric(float64(ms.HeapObjects)/keys, "objects/key")
	}
	runtime.KeepAlive(sm)
}
