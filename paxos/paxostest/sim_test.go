package paxostest

import (
	"flag"
	"testing"
)

var (
	flagSeed  = flag.Int64("seed", -1, "replay one simulation seed")
	flagSeeds = flag.Int("seeds", 400, "number of seeds TestSim runs")
	flagSteps = flag.Int("steps", 6000, "safety-phase steps per seed")
	flagTrace = flag.Bool("trace", false, "print every step of a -seed run")
)

// TestSim runs the simulation over many seeds, for 3 and 5 nodes. A failure
// prints its seed; `go test ./paxos/paxostest -run TestSim -seed N -trace`
// replays it step by step.
func TestSim(t *testing.T) {
	seeds := make([]int64, 0, *flagSeeds)
	if *flagSeed >= 0 {
		seeds = append(seeds, *flagSeed)
	} else {
		for i := 0; i < *flagSeeds; i++ {
			seeds = append(seeds, int64(i))
		}
	}
	var total Stats
	for _, seed := range seeds {
		nodes := 3
		if seed%2 == 1 {
			nodes = 5
		}
		opts := Options{Seed: seed, Nodes: nodes, Steps: *flagSteps, LivenessRounds: 2000}
		if *flagTrace && *flagSeed >= 0 {
			opts.Trace = func(s string) { t.Log(s) }
		}
		env, err := NewEnv(opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := env.Run(); err != nil {
			t.Fatalf("%v\nreplay: go test ./paxos/paxostest -run TestSim -seed %d -trace", err, seed)
		}
		s := env.Stats
		total.Delivered += s.Delivered
		total.Dropped += s.Dropped
		total.Crashes += s.Crashes
		total.Partitions += s.Partitions
		total.Proposed += s.Proposed
		total.Decided += s.Decided
		total.Snapshots += s.Snapshots
		total.Installs += s.Installs
		total.ConfigsProposed += s.ConfigsProposed
		total.ConfigsApplied += s.ConfigsApplied
	}
	t.Logf("%d seeds: %d messages delivered, %d dropped, %d crashes, %d partitions, %d commands proposed, %d slots chosen, %d snapshots taken, %d installed from a leader, %d membership changes proposed, %d in force",
		len(seeds), total.Delivered, total.Dropped, total.Crashes, total.Partitions, total.Proposed, total.Decided, total.Snapshots, total.Installs, total.ConfigsProposed, total.ConfigsApplied)
	if total.Decided == 0 {
		t.Fatal("no slot was ever chosen: the simulation tests nothing")
	}
	if len(seeds) >= 100 && total.ConfigsApplied < len(seeds)/2 {
		t.Fatalf("only %d membership changes took effect in %d seeds: reconfiguration is barely tested", total.ConfigsApplied, len(seeds))
	}
	if len(seeds) >= 100 && total.Installs == 0 {
		t.Fatal("no snapshot was ever installed from a leader: snapshot catch-up is untested")
	}
}
