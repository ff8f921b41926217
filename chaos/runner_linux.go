//go:build linux

package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/paxosd/paxosd/client"
)

// Config is what every schedule of a run shares.
type Config struct {
	Net        *Network
	Bin        string   // the paxosd binary
	ServeFlags []string // extra `paxosd serve` flags
	FirstFlags []string // extra flags for each node's first start
	Dir        string   // each schedule gets a directory in it
	Duration   time.Duration
	// RecoveryBound: after a fault heals, a write must succeed within it.
	RecoveryBound time.Duration
	// ElectionTimeoutMax is the longest election timeout of the nodes.
	ElectionTimeoutMax time.Duration
	CheckTimeout       time.Duration // porcupine's limit
	// SessionTTL is the TTL of the lock and election workers' sessions.
	SessionTTL time.Duration
	// TLS, if set, holds the certificates for the schedules UseTLS picks.
	TLS    *TLSFiles
	UseTLS func(seed int64) bool
	Logf   func(format string, args ...any)
}

// The workload's shape. The numbers keep the machine (two cores shared by
// three nodes, the race-instrumented test process and whatever else runs)
// far enough from saturation that the timing checks test paxosd rather
// than the scheduler, and the history small enough to check in seconds.
const (
	kvWorkers       = 8
	kvKeys          = 4
	kvThink         = 2 * time.Millisecond
	kvOpTimeout     = 5 * time.Second
	lockWorkers     = 3
	electionWorkers = 3
	durableThink    = 20 * time.Millisecond
	startupLimit    = 30 * time.Second
	// probeLimit is how long a probe keeps trying after a fault healed
	// (the bound is checked separately): it tells "slow" from "stuck".
	probeLimit = 60 * time.Second
	// rejoinLimit bounds how long the suite waits, before another
	// lose-disk fault, for the last node that lost its data directory to
	// vote again.
	rejoinLimit = 30 * time.Second
	lockName    = "chaos-lock"
	electName   = "chaos-election"
	// The bank: transfers in transactions under a lock of its own.
	bankWorkers  = 2
	bankAccounts = 4
	bankLock     = "chaos-bank-lock"
)

// schedule is the state of one running schedule.
type schedule struct {
	cfg   Config
	idx   int
	seed  int64
	dir   string
	st    *Stats
	c     *Cluster
	hist  *History
	gate  Gate
	probe *client.Client
	dur   *DurableWriter
	locks Tenures
	leads Tenures
	fence FenceLog
	notes []Annotation
	keys  []string
}

// RunSchedule runs one schedule: a fresh cluster, the workers, the faults
// of Plan(seed) for cfg.Duration (and at least up to the whole-cluster
// crash), then every check. Anomalies go into the returned Stats; an error
// is a failure of the harness itself (the Stats then hold what was found
// until then).
func RunSchedule(cfg Config, idx int, seed int64) (*Stats, error) {
	s := &schedule{cfg: cfg, idx: idx, seed: seed, st: NewStats(), hist: NewHistory()}
	return s.st, s.run()
}

// ScheduleDir is where schedule idx of a run keeps its logs, data and
// failing history.
func ScheduleDir(runDir string, idx int, seed int64) string {
	return filepath.Join(runDir, fmt.Sprintf("schedule-%02d-seed-%d", idx, seed))
}

// boot starts every node of s.c and opens s.probe, once the cluster has
// taken a write; the caller closes s.probe (only when boot succeeded).
func (s *schedule) boot() error {
	for i := range s.cfg.Net.Nodes {
		if err := s.c.Start(i); err != nil {
			return err
		}
	}
	var err error
	if s.probe, err = s.newClient(0, false); err != nil {
		return fmt.Errorf("cluster did not come up: %w (logs in %s)", err, s.dir)
	}
	if d, _ := s.probeWrite(startupLimit); d > startupLimit {
		s.probe.Close()
		return fmt.Errorf("cluster accepted no write within %s of starting (logs in %s)", d, s.dir)
	}
	return nil
}

func (s *schedule) run() error {
	s.dir = ScheduleDir(s.cfg.Dir, s.idx, s.seed)
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return err
	}
	for k := 0; k < kvKeys; k++ {
		s.keys = append(s.keys, fmt.Sprintf("k%d", k))
	}
	s.c = NewCluster(s.cfg.Net, s.cfg.Bin, s.dir, s.cfg.ServeFlags, s.cfg.FirstFlags)
	if s.cfg.TLS != nil && s.cfg.UseTLS != nil && s.cfg.UseTLS(s.seed) {
		s.c.TLS = s.cfg.TLS
	}
	defer s.c.KillAll()
	defer func() { _ = s.cfg.Net.Heal() }()
	if err := s.boot(); err != nil {
		return err
	}
	defer s.probe.Close()
	if s.c.TLS != nil {
		if err := s.enableAuth(startupLimit); err != nil {
			return fmt.Errorf("enabling auth: %w (logs in %s)", err, s.dir)
		}
	}

	ctx, stop := context.WithCancel(context.Background())
	wait, err := s.startWorkers(ctx)
	if err != nil {
		stop()
		return err
	}
	err = s.injectFaults()
	stop()
	wait()
	if err != nil {
		return err
	}
	s.finalChecks()
	return nil
}

// newClient connects a client, with the endpoints rotated by n so that
// the workers spread over the nodes (and requests get forwarded). Most
// clients use a short attempt timeout (a stopped node otherwise holds each
// call for 3 s before the client tries the next one); patient clients keep
// the default 3 s, so that they are still waiting when a node paused for
// a second or two wakes up and answers what it received before the pause:
// the answers a deposed leader must get right.
func (s *schedule) newClient(n int, patient bool) (*client.Client, error) {
	eps := s.c.Endpoints()
	k := n % len(eps)
	eps = append(eps[k:], eps[:k]...)
	cfg := s.c.ClientConfig(eps)
	cfg.AttemptTimeout = time.Second
	if patient {
		cfg.AttemptTimeout = 0 // the client's default
	}
	deadline := time.Now().Add(startupLimit)
	for {
		// New tries each endpoint once: the nodes may still be starting.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := client.NewWithConfig(ctx, cfg)
		cancel()
		if err == nil || time.Now().After(deadline) {
			return c, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startWorkers starts every worker, each with a client of its own; wait
// waits for them to end (once ctx has) and closes the clients.
func (s *schedule) startWorkers(ctx context.Context) (wait func(), err error) {
	var clients []*client.Client
	closeAll := func() {
		for _, c := range clients {
			c.Close()
		}
	}
	defer func() {
		if err != nil {
			closeAll()
		}
	}()
	newClient := func(patient bool) (*client.Client, error) {
		c, err := s.newClient(len(clients), patient)
		if err == nil {
			clients = append(clients, c)
		}
		return c, err
	}
	rng := rand.New(rand.NewPCG(uint64(s.seed), 1))
	sub := func() *rand.Rand { return rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64())) }
	var runs []func()
	for i := 0; i < kvWorkers; i++ {
		c, err := newClient(i%2 == 1)
		if err != nil {
			return nil, err
		}
		w := &KVWorker{ID: i, C: c, H: s.hist, Keys: s.keys, Rand: sub(), Gate: &s.gate, Stats: s.st, OpTimeout: kvOpTimeout, Think: kvThink}
		runs = append(runs, func() { w.Run(ctx) })
	}
	c, err := newClient(false)
	if err != nil {
		return nil, err
	}
	s.dur = &DurableWriter{C: c, Prefix: "durable/", Stats: s.st, Think: durableThink}
	runs = append(runs, func() { s.dur.Run(ctx) })
	for i := 0; i < lockWorkers+electionWorkers; i++ {
		c, err := newClient(false)
		if err != nil {
			return nil, err
		}
		w := &HolderWorker{ID: i, C: c, Name: lockName, TTL: s.cfg.SessionTTL, Rand: sub(), H: s.hist, Stats: s.st, Tenures: &s.locks, Fence: &s.fence}
		if i >= lockWorkers {
			w.Name, w.Election, w.Tenures = electName, true, &s.leads
		}
		runs = append(runs, func() { w.Run(ctx) })
	}
	for i := 0; i < bankWorkers; i++ {
		c, err := newClient(false)
		if err != nil {
			return nil, err
		}
		w := &BankWorker{ID: i, C: c, Lock: bankLock, Accounts: bankAccounts, TTL: s.cfg.SessionTTL, Rand: sub(), Stats: s.st}
		runs = append(runs, func() { w.Run(ctx) })
	}
	if c, err = newClient(false); err != nil {
		return nil, err
	}
	o := &Observer{C: c, Name: electName, Stats: s.st}
	runs = append(runs, func() { o.Run(ctx) })
	var wg sync.WaitGroup
	for _, run := range runs {
		wg.Add(1)
		go func() { defer wg.Done(); run() }()
	}
	return func() { wg.Wait(); closeAll() }, nil
}
