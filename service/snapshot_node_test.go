package service

import (
	"context"
	"fmt"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/wire"
)

// startSnapCluster starts 3 in-process nodes that snapshot every few
// slots, so tests can make a node fall behind the others' logs.
func startSnapCluster(t *testing.T, every, keep int) *testCluster {
	return startTunedCluster(t, func(c *Config) { c.SnapshotEntries, c.SnapshotKeepEntries = every, keep })
}

// onLoop runs f on n's loop (the state machine and replica are the loop's).
func onLoop[T any](n *Node, f func() T) T {
	ch := make(chan T, 1)
	done := make(chan struct{})
	n.calls <- &call{req: &wire.Request{Op: wire.OpStatus}, reply: func(*wire.Response) { ch <- f(); close(done) }}
	<-done
	return <-ch
}

// A node stopped while the others snapshot and truncate their logs past
// it catches up by snapshot transfer when it returns, then by the log; it
// serves the latest values; and after a restart it loads its own snapshot
// and replays only the log after it.
func TestLaggingNodeCatchesUpBySnapshot(t *testing.T) {
	c := startSnapCluster(t, 20, 5)
	leader := c.waitLeader()
	lagging := leader%3 + 1
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := client.New(ctx, c.endpoints()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.Put(ctx, "before", []byte("x")); err != nil {
		t.Fatal(err)
	}
	c.nodes[lagging].Stop()
	delete(c.nodes, lagging)
	for i := 0; i < 300; i++ { // one slot each: 300 slots, 15 snapshots
		if _, err := cl.Put(ctx, fmt.Sprintf("k%d", i%17), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	ln := c.nodes[leader]
	truncated := onLoop(ln, func() paxos.Slot { return ln.r.Status().Truncated })
	if truncated < 250 {
		t.Fatalf("the leader's log is truncated only to %d after 300 slots with snapshots every 20", truncated)
	}
	c.start(lagging)
	n := c.nodes[lagging]
	want := onLoop(ln, func() uint64 { return ln.sm.Revision() })
	deadline := time.Now().Add(20 * time.Second)
	for onLoop(n, func() uint64 { return n.sm.Revision() }) < want {
		if time.Now().After(deadline) {
			t.Fatalf("node %d did not catch up to revision %d", lagging, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	installs := onLoop(n, func() float64 { return counterValue(n.m.snapshotInstalls) })
	if installs < 1 {
		t.Fatalf("node %d caught up without installing a snapshot", lagging)
	}
	for i := 283; i < 300; i++ {
		key := fmt.Sprintf("k%d", i%17)
		kv, ok := onLoop(n, func() KV { kv, _ := n.sm.Get(key); return kv }), true
		if !ok || string(kv.Value) != fmt.Sprint(i) {
			t.Fatalf("node %d: %s = %q, want %q", lagging, key, kv.Value, fmt.Sprint(i))
		}
	}
	if h1, h2 := onLoop(n, func() uint64 { return n.sm.Hash() }), onLoop(ln, func() uint64 { return ln.sm.Hash() }); h1 != h2 {
		t.Fatalf("state hash %x on the caught-up node, %x on the leader", h1, h2)
	}
	// Writes go on with the caught-up node voting; then it restarts from
	// its own snapshot.
	for i := 0; i < 50; i++ {
		if _, err := cl.Put(ctx, "after", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	n.Stop()
	c.start(lagging)
	n = c.nodes[lagging]
	deadline = time.Now().Add(20 * time.Second)
	for {
		kv, _ := onLoop(n, func() KV { kv, _ := n.sm.Get("after"); return kv }), 0
		if string(kv.Value) == "49" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restarted node %d reads after=%q, want 49", lagging, kv.Value)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func counterValue(c interface{ Write(*dto.Metric) error }) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
