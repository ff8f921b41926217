package service

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/paxosd/paxosd/paxos"
)

// TestSnapshotFetchIsPaced: a node rejoining by a snapshot of about 3 MiB
// with --snapshot-fetch-rate 2 MiB/s copies it in no less than the time
// the rate allows for every chunk but the last (the pace waits between
// chunks); in-process without a rate it takes milliseconds.
func TestSnapshotFetchIsPaced(t *testing.T) {
	const rate = 2 << 20
	c := startTunedCluster(t, func(c *Config) {
		c.SnapshotEntries, c.SnapshotKeepEntries, c.SnapshotFetchRate = 20, 5, rate
	})
	leader := c.waitLeader()
	lagging := leader%3 + 1
	ctx, cl := c.client(60 * time.Second)
	c.nodes[lagging].Stop()
	delete(c.nodes, lagging)
	value := bytes.Repeat([]byte("v"), 64<<10)
	for i := 0; i < 48; i++ { // 3 MiB of state
		if _, err := cl.Put(ctx, fmt.Sprintf("big%02d", i), value); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 60; i++ { // snapshots past the lagging node
		if _, err := cl.Put(ctx, "small", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	ln := c.nodes[leader]
	for start := time.Now(); onLoop(ln, func() paxos.Slot { return ln.r.Status().Truncated }) < 60; time.Sleep(20 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatal("the leader's log is not truncated 10 s after the puts")
		}
	}
	c.start(lagging)
	n := c.nodes[lagging]
	var fetch *dto.Histogram
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if onLoop(n, func() float64 { return counterValue(n.m.snapshotInstalls) }) >= 1 {
			var m dto.Metric
			if err := n.m.snapshotSeconds.WithLabelValues("fetch").(interface{ Write(*dto.Metric) error }).Write(&m); err != nil {
				t.Fatal(err)
			}
			fetch = m.GetHistogram()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d installed no snapshot within 30 s", lagging)
		}
	}
	size := onLoop(n, func() uint64 { return n.snap.size })
	if size < 3<<20 {
		t.Fatalf("the installed snapshot has %d bytes; the test wants over 3 MiB", size)
	}
	least := time.Duration(float64(size-snapshotChunkBytes) / rate * float64(time.Second))
	took := time.Duration(fetch.GetSampleSum() * float64(time.Second))
	t.Logf("%d fetches of %d bytes took %v in all (the rate allows no less than %v)", fetch.GetSampleCount(), size, took, least)
	if took < least {
		t.Errorf("the fetch of %d bytes took %v at %d bytes a second: the rate allows no less than %v", size, took, rate, least)
	}
}
