//go:build linux

package chaos

import (
	"flag"
	"math/rand/v2"
	"os"
	"testing"
	"time"
)

// The lock-holders schedule's flags. It runs only when asked
// (-chaos.locks, make chaos-locks): 20,000 sessions are minutes of a
// shared machine's two cores, too much for every `make test`.
var (
	flagLocks         = flag.Bool("chaos.locks", false, "run TestChaosLocks, the lock-holders schedule (make chaos-locks)")
	flagLocksSessions = flag.Int("chaos.locks-sessions", 20000, "lock holders: sessions, each holding a lock of its own")
	flagLocksConns    = flag.Int("chaos.locks-conns", 16, "lock holders: client connections the sessions share (one client.Client each)")
	flagLocksShared   = flag.Int("chaos.locks-shared", 100, "lock holders: shared locks, each held by one session and waited for by others")
	flagLocksWaiters  = flag.Int("chaos.locks-waiters", 3, "lock holders: waiters in line for each shared lock")
	flagLocksTTL      = flag.Duration("chaos.locks-ttl", 10*time.Second, "lock holders: the sessions' TTL")
	flagLocksOutage   = flag.Duration("chaos.locks-outage", 0, "lock holders: the longest fault that leaves no majority (the leader killed and another node cut off); 0: TTL/4")
	flagLocksHold     = flag.Duration("chaos.locks-hold", 10*time.Second, "lock holders: how long the sessions are held without a fault first (the members' CPU for their keep-alives)")
	flagLocksRuns     = flag.Int("chaos.locks-runs", 1, "lock holders: schedules to run, each on a fresh cluster (seed, seed+1, ...)")
	flagLocksRevoke   = flag.Int("chaos.locks-revoke", 0, "lock holders: revoke this many sessions during the second fault, to see the checks fail")
)

// TestChaosLocks is the lock-holders schedule: many sessions, each
// holding a lock, kept alive by the Go client through kills of the leader
// and partitions; not one may be lost, and no lock may change hands. See
// docs/CHAOS.md, "Lock holders".
func TestChaosLocks(t *testing.T) {
	if !*flagLocks {
		t.Skip("the lock-holders schedule runs with -chaos.locks (make chaos-locks)")
	}
	if testing.Short() {
		t.Skip("fault-injection suite: multi-process, skipped with -short")
	}
	seed := *flagSeed
	if seed == 0 {
		seed = 1 + rand.Int64N(1<<31)
	}
	outage := *flagLocksOutage
	if outage == 0 {
		outage = *flagLocksTTL / 4
	}
	t.Logf("seed %d; replay: go test ./chaos -run 'TestChaosLocks$' -v -count=1 -chaos.locks -chaos.seed %d (with the same -chaos.locks-* flags)", seed, seed)
	base := chaosSetup(t, "paxosd-chaos-locks-")
	t.Logf("paxosd serve flags: %q; logs and data under %s", base.ServeFlags, base.Dir)
	lc := LocksConfig{
		Config: Config{
			Net: base.Net, Bin: base.Bin, ServeFlags: base.ServeFlags, FirstFlags: base.FirstFlags, Dir: base.Dir,
			Duration: *flagDuration, RecoveryBound: *flagBound,
			ElectionTimeoutMax: electionTimeoutMax(base.ServeFlags),
			Logf:               t.Logf,
		},
		Sessions: *flagLocksSessions, Conns: *flagLocksConns, Shared: *flagLocksShared,
		WaitersPer: *flagLocksWaiters, Parallel: 256,
		TTL: *flagLocksTTL, Outage: outage, QuietHold: *flagLocksHold,
		ListEvery: 2 * time.Second, Revoke: *flagLocksRevoke,
		FinalLimit: 20 * time.Second, OpTimeout: 10 * time.Second, CheckTokens: true,
	}
	failed := false
	for i := 0; i < *flagLocksRuns; i++ {
		sseed := seed + int64(i)
		start := time.Now()
		rep, st, err := RunLocks(lc, i, sseed)
		if err != nil {
			t.Fatalf("lock holders seed %d: %v\n%s\n%s", sseed, err, rep, st.Summary())
		}
		t.Logf("LOCK HOLDERS run %d/%d, seed %d, done in %s\n%s\n%s", i+1, *flagLocksRuns, sseed, time.Since(start).Round(time.Second), rep, st.Summary())
		if n := len(st.Anomalies()); n > 0 {
			failed = true
			t.Errorf("lock holders seed %d: %d anomalies (logs in %s)", sseed, n, ScheduleDir(base.Dir, i, sseed))
		} else if !*flagKeep {
			os.RemoveAll(ScheduleDir(base.Dir, i, sseed))
		}
	}
	if !failed && !*flagKeep && *flagDir == "" {
		os.RemoveAll(base.Dir)
	}
}
