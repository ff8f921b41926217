package service

import (
	"fmt"
	"testing"
	"time"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/statemachine"
)

// A follower catching up on a disk slower than its network acknowledges
// only what it has made durable (holdsAck), so the leader's stream waits
// for its disk: the log it has learned but not yet written stays within
// the stream's window of batches. Before, its acknowledgements counted
// what it had learned, the stream went as fast as the network, and the
// whole catch-up queued up in its WAL writer (each batch holding its
// received frame: tens of megabytes at a million keys).
//
// And it snapshots only every catchUpSnapshotWait times the usual log
// while it catches up: a snapshot's view keeps every value overwritten
// during its encoding alive, and a catch-up overwrites fast.
func TestCatchUpWaitsForTheFollowersDisk(t *testing.T) {
	const batchBytes = 4 << 10
	s := rgSim(t, 41, func(p *simParams) {
		p.batchBytes, p.valueBytes, p.frameBytes = batchBytes, 1<<10, 64<<10
		p.window = 16
	})
	l := scLeader(t, s)
	var f *simNode
	for _, sn := range s.nodes {
		if sn != l {
			f = sn
			break
		}
	}
	s.stop(f)
	// catchUpSlots and then some: the follower is catching up, not
	// following, when it comes back.
	const slots = 2 * catchUpSlots
	value := make([]byte, 200)
	for i := 0; i < slots; i++ {
		s.stats.ops++
		cmd := statemachine.EncodeCommand(&statemachine.Command{Op: statemachine.OpPut, Key: fmt.Sprintf("k%05d", i),
			Value: value, ClientID: 0x9004, Seq: uint64(s.stats.ops)})
		s.runOn(l, l.inc, func(n *Node) { _ = n.r.Propose(cmd) })
		scRun(s, time.Millisecond)
	}
	commit := l.n.r.Status().Commit
	if commit < slots/2 {
		t.Fatalf("the leader chose %d slots, want about %d", commit, slots)
	}
	// Back on a disk whose syncs take 20-60 ms, against a network of
	// 0.3 ms: left to the network, the whole catch-up would queue.
	f.slowUntil, f.slowSync = s.now+time.Hour, 40*time.Millisecond
	s.p.syncMin, s.p.syncMax = 20*time.Millisecond, 20*time.Millisecond
	// The follower (alone: the others started with the parameters
	// before) snapshots every 200 slots when following.
	const every = 200
	s.p.snapshotEntries = every
	s.restart(f)
	if !f.up() {
		t.Fatal("the follower did not restart")
	}
	// What the follower has learned and not yet made durable: the
	// command bytes in the writes its journal has not begun.
	queued := func() int {
		n := 0
		for _, j := range f.journal.queue {
			for _, e := range j.p.Entries {
				for _, c := range e.Value.Cmds {
					n += len(c)
				}
			}
		}
		return n
	}
	most, samples := 0, 0
	var snapshots []paxos.Slot // the follower's, taken while catching up
	last := f.n.snap.last
	scUntil(t, s, 60*time.Second, "the follower caught up", func() bool {
		if f.n == nil {
			t.Fatal("the follower stopped")
		}
		if catchingUp(f.n.sm.Applied(), f.n.r.Status().LeaderCommit) {
			most, samples = max(most, queued()), samples+1
		}
		if at := f.n.snap.last; at != last {
			if catchingUp(at, commit) && at < last+catchUpSnapshotWait*every {
				t.Errorf("the follower took a snapshot at slot %d while catching up, %d slots after the one before (at %d), want %d or more", at, at-last, last, catchUpSnapshotWait*every)
			}
			snapshots, last = append(snapshots, at), at
		}
		return f.n.sm.Applied() >= commit
	})
	t.Logf("the follower's snapshots during and after its catch-up: %v", snapshots)
	if len(snapshots) == 0 {
		t.Error("the follower took no snapshot: the check of their spacing checked nothing")
	}
	if samples == 0 {
		t.Fatal("the follower was never seen catching up")
	}
	// The stream's window of batches, one more resent after a stall, and
	// one more for what rides on heartbeats; the rest is slack for the
	// batches a write starts with.
	bound := (4 + 2) * batchBytes
	t.Logf("catch-up of %d slots on a slow disk: at most %d command bytes learned and not yet written (bound %d), %d samples", commit, most, bound, samples)
	if most > bound {
		t.Errorf("a follower catching up on a slow disk queued %d command bytes not yet written, more than the stream's window (%d)", most, bound)
	}
}
