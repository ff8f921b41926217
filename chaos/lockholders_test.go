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
	net := newTestNetwork(t, 3)
	cleanUpOnSignal(t, net)
	bin := buildPaxosd(t)
	serveFlags, firstFlags := resolveServeFlags(t, bin, *flagServe)
	dir := *flagDir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "paxosd-chaos-locks-"); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("paxosd serve flags: %q; logs and data under %s", serveFlags, dir)
	lc := LocksConfig{
		Config: Config{
			Net: net, Bin: bin, ServeFlags: serveFlags, FirstFlags: firstFlags, Dir: dir,
			Duration: *flagDuration, RecoveryBound: *flagBound,
			ElectionTimeoutMax: electionTimeoutMax(serveFlags),
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
			t.Errorf("lock holders seed %d: %d anomalies (logs in %s)", sseed, n, ScheduleDir(dir, i, sseed))
		} else if !*flagKeep {
			os.RemoveAll(ScheduleDir(dir, i, sseed))
		}
	}
	if !failed && !*flagKeep && *flagDir == "" {
		os.RemoveAll(dir)
	}
}
