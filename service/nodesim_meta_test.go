package service

import (
	"fmt"
	"hash/fnv"
	"strings"
	"testing"
	"time"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/statemachine"
)

// The same seed gives the same run, event for event: a failure replays
// exactly. (The trace covers every event, message and log line.)
func TestNodeSimDeterministic(t *testing.T) {
	for _, seed := range []int64{3, 8} {
		var sums [2]uint64
		var stats [2]simStats
		for i := range sums {
			h := fnv.New64a()
			opts := defaultSimOptions()
			opts.faultTime /= 2
			opts.trace = func(l string) { h.Write([]byte(l)) }
			s := newSim(seed, opts)
			if err := s.run(); err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			sums[i], stats[i] = h.Sum64(), s.stats
		}
		if sums[0] != sums[1] || stats[0] != stats[1] {
			t.Errorf("seed %d ran differently twice: traces %x and %x, stats %+v and %+v", seed, sums[0], sums[1], stats[0], stats[1])
		}
	}
}

// simFailures runs seeds from 0 until one fails (or max have run), and
// returns its error.
func simFailures(t *testing.T, max int, opts simOptions) (int64, error) {
	t.Helper()
	for seed := int64(0); seed < int64(max); seed++ {
		if err := newSim(seed, opts).run(); err != nil {
			return seed, err
		}
	}
	return -1, nil
}

// The checkers catch a broken assumption about clocks (the design assumes
// rates within 10% of each other). A leader whose clock runs 2.4 times
// slower than its followers' keeps counting its lease after they have
// counted out the election timeout they pledged: cut off, it still holds
// a lease when they elect another leader, and the lease check says so.
func TestLeaseCheckCatchesClocksBeyondTheBound(t *testing.T) {
	s := rgSim(t, 7, nil)
	l := rgLeader(t, s)
	for _, sn := range s.nodes {
		sn.rate = 2.4
		if sn == l {
			sn.rate = 1
		}
	}
	if err := s.runFor(200 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	for _, o := range s.nodes {
		if o != l {
			s.net.cut[[2]paxos.NodeID{l.id, o.id}], s.net.cut[[2]paxos.NodeID{o.id, l.id}] = true, true
		}
	}
	err := s.runFor(time.Second)
	if err == nil || !strings.Contains(err.Error(), "still held a lease") {
		t.Fatalf("clocks 2.4x apart: %v, want a leader elected while the old one still held its lease", err)
	}
	t.Log(err)
}

// And a client whose clock runs at half speed keeps its session (and the
// lock it holds) long after the cluster expired it and granted the lock to
// another: some seed shows two clients holding a lock at once — or, first,
// the cluster ending a session its client still counts as alive
// (simChecker.checkOwned).
func TestNodeSimCatchesSlowClientClocks(t *testing.T) {
	opts := defaultSimOptions()
	opts.clientRate = 0.5
	seed, err := simFailures(t, 40, opts)
	if err == nil {
		t.Fatal("40 seeds with clients' clocks at half speed found nothing")
	}
	if !strings.Contains(err.Error(), "held by client") && !strings.Contains(err.Error(), "by its own reckoning") {
		t.Fatalf("seed %d failed, but neither as two holders at once nor as a session ended early: %v", seed, err)
	}
	t.Logf("seed %d: %v", seed, err)
}

// The checkers catch a node whose state, restored from a snapshot at start
// or installed from the leader's, is not the state every other replica had
// at that slot: here the fencing counter goes back, so tokens would be
// handed out again.
func TestNodeSimCatchesDamagedRestores(t *testing.T) {
	opts := defaultSimOptions()
	opts.tamper = func(sm *statemachine.StateMachine) { sm.TamperFence(0) }
	seed, err := simFailures(t, 20, opts)
	if err == nil {
		t.Fatal("20 seeds with damaged restores found nothing")
	}
	if !strings.Contains(err.Error(), "differs from the state after that slot") {
		t.Fatalf("seed %d failed, but not on the restored state: %v", seed, err)
	}
	t.Log(fmt.Sprintf("seed %d: %v", seed, err))
}
