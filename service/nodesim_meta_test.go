package service

import (
	"fmt"
	"hash/fnv"
	"strings"
	"testing"
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

// The checkers catch a broken assumption: with clocks whose rates differ
// by far more than the documented 10%, a leader's lease outlives the
// followers' promise not to elect anyone else, and a client's session
// outlives the cluster's count of it. Some seed must then show a stale
// read or two clients holding a lock at once.
func TestNodeSimCatchesClocksBeyondTheBound(t *testing.T) {
	opts := defaultSimOptions()
	opts.clockSkewMax = 1.5
	seed, err := simFailures(t, 60, opts)
	if err == nil {
		t.Fatal("60 seeds with clock rates up to 2.5x apart found nothing")
	}
	msg := err.Error()
	if !strings.Contains(msg, "linearizable") && !strings.Contains(msg, "held by client") {
		t.Fatalf("seed %d failed, but not as a stale read or a double holder: %v", seed, err)
	}
	t.Logf("seed %d: %v", seed, err)
}

// The checkers catch a node whose state, restored from a snapshot at start
// or installed from the leader's, is not the state every other replica had
// at that slot: here the fencing counter goes back, so tokens would be
// handed out again.
func TestNodeSimCatchesDamagedRestores(t *testing.T) {
	opts := defaultSimOptions()
	opts.tamper = func(sm *StateMachine) { sm.fence = 0 }
	seed, err := simFailures(t, 20, opts)
	if err == nil {
		t.Fatal("20 seeds with damaged restores found nothing")
	}
	if !strings.Contains(err.Error(), "differs from the state after that slot") {
		t.Fatalf("seed %d failed, but not on the restored state: %v", seed, err)
	}
	t.Log(fmt.Sprintf("seed %d: %v", seed, err))
}
