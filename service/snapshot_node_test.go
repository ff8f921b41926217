package service

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/statemachine"
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
	n.calls <- &call{req: &wire.Request{Op: wire.OpStatus}, onReply: func(*wire.Response) { ch <- f(); close(done) }}
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
	ctx, cl := c.client(60 * time.Second)
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
	// Snapshots are written in the background: the last ones may still be
	// on their way to disk when the puts return.
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		truncated := onLoop(ln, func() paxos.Slot { return ln.r.Status().Truncated })
		if truncated >= 250 {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("the leader's log is truncated only to %d 10 s after 300 slots with snapshots every 20", truncated)
		}
	}
	c.start(lagging)
	n := c.nodes[lagging]
	want := onLoop(ln, func() uint64 { return ln.sm.Revision() })
	deadline := time.Now().Add(20 * time.Second)
	// (Without a state machine for a moment while it installs the
	// snapshot: install.go.)
	for onLoop(n, func() uint64 {
		if n.installing() {
			return 0
		}
		return n.sm.Revision()
	}) < want {
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
		kv, ok := onLoop(n, func() statemachine.KV { kv, _ := n.sm.Get(key); return kv }), true
		if !ok || string(kv.Value) != fmt.Sprint(i) {
			t.Fatalf("node %d: %s = %q, want %q", lagging, key, kv.Value, fmt.Sprint(i))
		}
	}
	// The same state, compared at the same slot: the leader may have
	// applied commands that move no revision (an internal one, such as
	// the cluster level once the returning member connected) that the
	// caught-up node has yet to apply.
	type slotHash struct {
		slot paxos.Slot
		hash uint64
	}
	at := func(n *Node) slotHash {
		return onLoop(n, func() slotHash { return slotHash{n.sm.Applied(), n.sm.Hash()} })
	}
	for {
		s1, s2 := at(n), at(ln)
		if s1.slot == s2.slot {
			if s1.hash != s2.hash {
				t.Fatalf("state hash %x on the caught-up node, %x on the leader, at slot %d", s1.hash, s2.hash, s1.slot)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d at slot %d, the leader at %d", lagging, s1.slot, s2.slot)
		}
		time.Sleep(20 * time.Millisecond)
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
		kv, _ := onLoop(n, func() statemachine.KV {
			if n.installing() {
				return statemachine.KV{}
			}
			kv, _ := n.sm.Get("after")
			return kv
		}), 0
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

// What the state machine accepts is the same on every replica, whatever
// each node's --value-bytes-max: that flag only bounds what a node admits
// from its own clients. Node 2 admits 8 KiB values, the others 1 KiB: a
// 4 KiB put through node 2 is applied by every replica alike (when the
// flag also set the state machine's limit, nodes 1 and 3 rejected it and
// the replicas diverged), node 1 refuses it from its own client, and a
// node catches up from another's snapshot whatever their flags (when the
// limit was recorded in snapshots as a per-node option, the install was
// refused).
func TestValueLimitIsTheSameOnEveryReplica(t *testing.T) {
	c := startTunedCluster(t, func(cfg *Config) {
		cfg.ValueBytesMax = 1 << 10
		if cfg.ID == 2 {
			cfg.ValueBytesMax = 8 << 10
		}
		cfg.SnapshotEntries, cfg.SnapshotKeepEntries = 10, 2
	})
	c.waitLeader()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	put := func(id paxos.NodeID, seq uint64, key string, value []byte) *wire.Response {
		t.Helper()
		sc, err := wire.DialClient(ctx, c.peers[id], "", 0)
		if err != nil {
			t.Fatal(err)
		}
		mux := wire.NewMux(sc)
		defer mux.Close()
		for {
			resp, err := mux.Call(ctx, &wire.Request{ID: 1, Op: wire.OpPut, ClientID: 77, Seq: seq, AckedBelow: seq, Key: key, Value: value})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Err != wire.ErrNotLeader && resp.Err != wire.ErrUnavailable {
				return resp
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	big := make([]byte, 4<<10)
	if r := put(2, 1, "big", big); r.Err != wire.ErrNone {
		t.Fatalf("a 4 KiB put through node 2 (limit 8 KiB): %s %s", r.Err, r.ErrMsg)
	}
	if r := put(1, 2, "big2", big); r.Err != wire.ErrTooLarge {
		t.Fatalf("a 4 KiB put through node 1 (limit 1 KiB): %s %s, want TooLarge", r.Err, r.ErrMsg)
	}
	lagging := paxos.NodeID(3)
	c.nodes[lagging].Stop()
	delete(c.nodes, lagging)
	for i := 0; i < 60; i++ {
		if r := put(2, uint64(3+i), fmt.Sprintf("k%d", i%7), big[:100+i]); r.Err != wire.ErrNone {
			t.Fatalf("put %d: %s %s", i, r.Err, r.ErrMsg)
		}
	}
	c.start(lagging)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var hashes []uint64
		for _, id := range []paxos.NodeID{1, 2, 3} {
			n := c.nodes[id]
			hashes = append(hashes, onLoop(n, func() uint64 {
				if n.installing() {
					return uint64(id)
				}
				if _, ok := n.sm.Get("big"); !ok || n.sm.Revision() < 61 {
					return uint64(id) // not there yet: differs from the others
				}
				return n.sm.Hash()
			}))
		}
		if hashes[0] == hashes[1] && hashes[1] == hashes[2] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replicas' states differ (hashes %x); node 3 installed %v snapshots", hashes,
				onLoop(c.nodes[3], func() float64 { return counterValue(c.nodes[3].m.snapshotInstalls) }))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A replica whose state silently diverges (here node 3's, changed behind
// the log's back) is noticed by the state check: the members' hash reports
// for the next check slot disagree, every node counts the mismatch, and
// node 3, the odd one out, stops answering clients with a line that says
// why, while the others go on serving.
func TestDivergedReplicaIsNoticed(t *testing.T) {
	c := startTunedCluster(t, func(cfg *Config) { cfg.StateCheckSlots = 8 })
	c.waitLeader()
	ctx, cl := c.client(60 * time.Second)
	if _, err := cl.Put(ctx, "a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	n3 := c.nodes[3]
	onLoop(n3, func() bool { n3.sm.TamperPut("a", []byte("corrupt")); return true })
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		if _, err := cl.Put(ctx, fmt.Sprintf("k%d", i%5), []byte("v")); err != nil {
			t.Fatal(err)
		}
		if onLoop(n3, func() bool { return n3.check.diverged != 0 }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node 3's diverged state was not noticed")
		}
	}
	for _, id := range []paxos.NodeID{1, 2} {
		n := c.nodes[id]
		// Node 3 may hear of the mismatch before the others have applied
		// its report: wait for each (bounded by the deadline).
		var got float64
		for got < 1 && time.Now().Before(deadline) {
			if got = onLoop(n, func() float64 { return counterValue(n.m.stateMismatches) }); got < 1 {
				time.Sleep(10 * time.Millisecond)
			}
		}
		if got < 1 {
			t.Errorf("node %d counted %v mismatches", id, got)
		}
		if onLoop(n, func() bool { return n.check.diverged != 0 }) {
			t.Errorf("node %d thinks it diverged", id)
		}
	}
	sc, err := wire.DialClient(ctx, c.peers[3], "", 0)
	if err != nil {
		t.Fatal(err)
	}
	mux := wire.NewMux(sc)
	defer mux.Close()
	resp, err := mux.Call(ctx, &wire.Request{ID: 1, Op: wire.OpGet, Key: "a", Serializable: true})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Err != wire.ErrUnavailable || !strings.Contains(resp.ErrMsg, "diverged") {
		t.Fatalf("node 3 answered a read with %s %q, want Unavailable saying its state diverged", resp.Err, resp.ErrMsg)
	}
	if _, err := cl.Put(ctx, "after", []byte("x")); err != nil {
		t.Fatalf("the healthy majority stopped serving: %v", err)
	}
}

// snapshotScene is a cluster snapshotting every 20 slots and keeping 5,
// seen from its leader.
type snapshotScene struct {
	t      *testing.T
	c      *testCluster
	leader paxos.NodeID
	ln     *Node
	put    func(count int) // count puts, one slot each
}

func newSnapshotScene(t *testing.T, tune func(*Config)) *snapshotScene {
	c := startTunedCluster(t, func(cfg *Config) {
		cfg.SnapshotEntries, cfg.SnapshotKeepEntries = 20, 5
		if tune != nil {
			tune(cfg)
		}
	})
	s := &snapshotScene{t: t, c: c, leader: c.waitLeader()}
	s.ln = c.nodes[s.leader]
	ctx, cl := c.client(60 * time.Second)
	s.put = func(count int) {
		for i := 0; i < count; i++ {
			if _, err := cl.Put(ctx, fmt.Sprintf("k%d", i%7), []byte("v")); err != nil {
				t.Fatal(err)
			}
		}
	}
	return s
}

// settled returns the leader's newest snapshot's slot once none is under
// way and every running follower reported the leader's applied slot, seen
// so on two loop turns in a row: a leader also holds a snapshot back while
// a member reports a watermark below where it would cut the log
// (memberBehindLog), and decides on the turn after the report.
func (s *snapshotScene) settled() (last, applied paxos.Slot) {
	ln, quiet := s.ln, 0
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(10 * time.Millisecond) {
		busy := false
		var l, a paxos.Slot
		l = onLoop(ln, func() paxos.Slot {
			busy = ln.snap.building || ln.snap.inFlight != nil
			a = ln.sm.Applied()
			for id := range s.c.nodes {
				if id != s.leader && ln.peerCommit[id] < a {
					busy = true // a follower has not reported it yet
				}
			}
			return ln.snap.last
		})
		if busy || l != last || a != applied {
			quiet, last, applied = 0, l, a
			continue
		}
		if quiet++; quiet == 2 {
			return last, applied
		}
	}
	s.t.Fatal("a snapshot stayed under way, or a follower behind, for 10 s")
	return 0, 0
}

// warmUp applies 45 slots and returns the snapshot taken at 40. A follower
// slow to start may have fetched a snapshot meanwhile (the log keeps only
// 5 slots), which held the one at 40 back; both follow once settled, so
// that fetch is over: warmUp forgets it, and the snapshot held back is
// taken.
func (s *snapshotScene) warmUp() paxos.Slot {
	s.put(45)
	s.settled()
	ln := s.ln
	onLoop(ln, func() bool { ln.snap.served, ln.snap.servedAt = ln.chunksServed.Load(), time.Time{}; return true })
	last, applied := s.settled()
	if applied >= last+20 {
		s.t.Fatalf("newest snapshot at %d with %d slots applied, every 20 slots: one held back after warming up", last, applied)
	}
	return last
}

// A node whose snapshot a member is fetching holds its next snapshot back
// (servingSnapshot), so the member finds the log after the snapshot's slot
// once it has installed it, but only up to twice the log it would let
// grow otherwise.
func TestSnapshotHeldWhileServed(t *testing.T) {
	s := newSnapshotScene(t, nil)
	before := s.warmUp()
	onLoop(s.ln, func() bool { s.ln.chunksServed.Add(1); return true }) // a member read a chunk
	s.put(25)
	if last, applied := s.settled(); last != before {
		t.Fatalf("snapshot taken at slot %d while a member fetched the one at %d (applied %d, every 20 slots)", last, before, applied)
	}
	s.put(20)
	if last, applied := s.settled(); last == before || applied-before < 40 {
		t.Fatalf("snapshot at %d with %d slots applied: held for more than twice --snapshot-entries", last, applied)
	}
}

// A leader holds its next snapshot back while a member it heard from
// lately reports a watermark below where the snapshot would cut the log
// (memberBehindLog): the member may be installing another member's
// snapshot, and would lack the log after it. Once the member has not been
// heard from for memberHeardTicks election timeouts (it is down), the
// snapshot is taken.
func TestSnapshotHeldForMemberBehind(t *testing.T) {
	// Election timeouts of 0.3 s: the 25 puts below fit well within the
	// memberHeardTicks of them (3 s) the stopped follower still counts as
	// heard from.
	const electionTicks = 30
	s := newSnapshotScene(t, func(cfg *Config) { cfg.ElectionTicks = electionTicks })
	before := s.warmUp()
	ln, follower := s.ln, s.leader%3+1
	s.c.nodes[follower].Stop()
	delete(s.c.nodes, follower)
	heard := onLoop(ln, func() int { return ln.peerHeard[follower] })
	s.put(25)
	last, applied := s.settled()
	window := memberHeardTicks * electionTicks
	if ticks := onLoop(ln, func() int { return ln.tickCount }); ticks-heard > window {
		t.Skipf("the puts took %d ticks, more than the %d the stopped follower counts as heard from", ticks-heard, window)
	}
	if last != before {
		t.Fatalf("snapshot taken at slot %d (applied %d) while a member heard from lately reported a watermark below %d", last, applied, applied-5)
	}
	for start := time.Now(); time.Since(start) < 15*time.Second; time.Sleep(20 * time.Millisecond) {
		last, ticks := onLoop(ln, func() paxos.Slot { return ln.snap.last }), onLoop(ln, func() int { return ln.tickCount })
		if last == before {
			continue
		}
		if ticks-heard < window {
			t.Fatalf("snapshot taken %d ticks after the stopped member was last heard from, within the %d it counts as heard", ticks-heard, window)
		}
		return
	}
	t.Fatalf("no snapshot within 15 s of a member stopping (newest at %d, applied %d)", before, applied)
}

// TestCatchingUp pins when a node counts as catching up, which doubles the
// log it lets grow before a snapshot (maybeSnapshot).
func TestCatchingUp(t *testing.T) {
	for _, tc := range []struct {
		applied, leaderCommit paxos.Slot
		want                  bool
	}{
		{100, 0, false},    // no leader heard from
		{100, 105, false},  // following, a few slots behind
		{100, 1100, false}, // catchUpSlots behind
		{100, 1101, true},  // further
		{5000, 900000, true},
	} {
		if got := catchingUp(tc.applied, tc.leaderCommit); got != tc.want {
			t.Errorf("catchingUp(applied %d, leader's commit %d) = %v, want %v", tc.applied, tc.leaderCommit, got, tc.want)
		}
	}
}

// TestStateCheckOneViewAtATime checks that a node does not start a
// state-check hash while one is running: each holds a view of the state,
// and views held together while the node applies keep every overwritten
// value and copied tree node alive (reportState).
func TestStateCheckOneViewAtATime(t *testing.T) {
	c := startSnapCluster(t, 1000, 500)
	leader := c.waitLeader()
	ln := c.nodes[leader]
	ctx, cl := c.client(10 * time.Second)
	if _, err := cl.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	hashing := onLoop(ln, func() int {
		saved := ln.cfg.StateCheckSlots
		defer func() { ln.cfg.StateCheckSlots = saved }()
		ln.cfg.StateCheckSlots = 1 // every slot is a check slot
		slot := ln.sm.Applied()
		if !ln.isCheckSlot(slot) {
			t.Errorf("slot %d is not a check slot with a check every slot", slot)
		}
		ln.check.hashing++ // a hash under way
		defer func() { ln.check.hashing-- }()
		ln.reportState(slot)
		return ln.check.hashing
	})
	if hashing != 1 {
		t.Fatalf("%d state-check hashes under way after a report while one ran, want 1", hashing)
	}
}
