package service

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/wire"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestSlowWatcherHeldThenEnded: a client opens a watch and stops reading
// while 12 MiB of changes come (more than loopback's socket buffers take,
// less than the history keeps, 16 MiB). The node must not buffer them: once the
// connection holds more than WatchBacklogBytes unread, the watch is held
// at its revision, and after WatchSlowAfter ended with err SlowWatcher,
// whose revision is the watch's position. Read afterwards, the stream
// holds every change up to that position, in order and none twice, then
// the end; a watch resumed after it gets the rest.
func TestSlowWatcherHeldThenEnded(t *testing.T) {
	const backlog = 256 << 10
	c := startTunedCluster(t, func(cfg *Config) {
		cfg.WatchBacklogBytes = backlog
		cfg.WatchSlowAfter = time.Second
	})
	leader := c.waitLeader()
	ctx, cl := c.client(60 * time.Second)

	// The watch, on the leader, by hand: a Mux would read it eagerly.
	sc, err := wire.DialClient(ctx, c.peers[leader], "", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	rev0, err := cl.Put(ctx, "other", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Send(&wire.Request{ID: 1, Op: wire.OpWatch, Key: "w/", WatchPrefix: true, FromRevision: rev0 + 1}); err != nil {
		t.Fatal(err)
	}
	value := make([]byte, 96<<10)
	const puts = 128
	var last uint64
	for i := range puts {
		if last, err = cl.Put(ctx, fmt.Sprintf("w/%03d", i), value); err != nil {
			t.Fatal(err)
		}
	}
	n := c.nodes[leader]
	for deadline := time.Now().Add(20 * time.Second); testutil.ToFloat64(n.m.watchesEndedSlow) == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("the watch was never ended as slow (held %v times)", testutil.ToFloat64(n.m.watchesHeld))
		}
		time.Sleep(50 * time.Millisecond)
	}

	next := rev0 + 1
	for {
		resp, err := sc.Recv()
		if err != nil {
			t.Fatalf("reading the watch after revision %d: %v", next-1, err)
		}
		for _, ev := range resp.Events {
			if ev.KV.ModRevision != next {
				t.Fatalf("event at revision %d, want %d (in order, none skipped)", ev.KV.ModRevision, next)
			}
			next++
		}
		if resp.StreamEnd {
			if resp.Err != wire.ErrSlowWatcher {
				t.Fatalf("the watch ended with %v (%s), want SlowWatcher", resp.Err, resp.ErrMsg)
			}
			if resp.Revision != next-1 {
				t.Fatalf("SlowWatcher at revision %d; the events sent end at %d", resp.Revision, next-1)
			}
			if resp.Revision >= last {
				t.Fatalf("the slow watcher got every change (up to %d): it was never held", last)
			}
			t.Logf("ended at revision %d of %d: %s", resp.Revision, last, resp.ErrMsg)
			break
		}
	}
	// Resumed after its position, it gets the rest.
	if err := sc.Send(&wire.Request{ID: 2, Op: wire.OpWatch, Key: "w/", WatchPrefix: true, FromRevision: next}); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	go func() { <-rctx.Done(); sc.Close() }()
	for next <= last {
		resp, err := sc.Recv()
		if err != nil || resp.StreamEnd {
			t.Fatalf("the resumed watch at revision %d: %v %v", next, err, resp)
		}
		for _, ev := range resp.Events {
			if ev.KV.ModRevision != next {
				t.Fatalf("resumed: event at revision %d, want %d", ev.KV.ModRevision, next)
			}
			next++
		}
	}
}

// TestWatchesSpreadOverFollowers: clients whose requests went to the
// leader keep their watches elsewhere: the leader would otherwise send
// every event to every watcher alone while also leading. Under make
// test's load a leader sometimes steps down while the watches open (the
// clients then spread over what they last knew): such an attempt proves
// nothing, and the test starts over on a new cluster, three times at most.
func TestWatchesSpreadOverFollowers(t *testing.T) {
	for attempt := 1; ; attempt++ {
		c := startTestCluster(t)
		leader := c.waitLeader()
		counts := openSpreadWatches(t, c)
		if now := c.waitLeader(); now != leader {
			if attempt == 3 {
				t.Fatalf("leadership moved during each of %d attempts (last: node %d to %d)", attempt, leader, now)
			}
			t.Logf("attempt %d: leadership moved from node %d to %d while the watches opened: starting over", attempt, leader, now)
			for _, n := range c.nodes {
				n.Stop()
			}
			continue
		}
		if counts[leader] != 0 {
			t.Errorf("watches by node %v: %d on the leader (node %d), want none", counts, counts[leader], leader)
		}
		for id, n := range counts {
			if id != leader && n == 0 {
				t.Errorf("watches by node %v: none on follower %d", counts, id)
			}
		}
		return
	}
}

// openSpreadWatches opens a watch from each of 12 clients and returns how
// many each node holds once all are open.
func openSpreadWatches(t *testing.T, c *testCluster) map[paxos.NodeID]int {
	const clients = 12
	for i := range clients {
		ctx, cl := c.client(30 * time.Second)
		if _, err := cl.Put(ctx, fmt.Sprintf("spread/%d", i), nil); err != nil {
			t.Fatal(err)
		}
		cl.Watch(ctx, "spread/", client.WithPrefix())
	}
	open := func(id paxos.NodeID) int { return int(testutil.ToFloat64(c.nodes[id].m.streamsOpen)) }
	for deadline := time.Now().Add(10 * time.Second); ; {
		counts := map[paxos.NodeID]int{}
		total := 0
		for id := range c.nodes {
			counts[id] = open(id)
			total += counts[id]
		}
		if total == clients {
			return counts
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d watches open (by node: %v), want %d", total, counts, clients)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
