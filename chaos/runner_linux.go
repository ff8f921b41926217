//go:build linux

package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"

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
	Logf               func(format string, args ...any)
}

// The workload's shape. The numbers keep the machine (two cores shared by
// three nodes, the race-instrumented test process and whatever else runs)
// far enough from saturation that the timing checks test paxosd rather
// than the scheduler, and the history small enough to check in seconds.
const (
	kvWorkers       = 5
	kvKeys          = 4
	kvThink         = 2 * time.Millisecond
	kvOpTimeout     = 5 * time.Second
	lockWorkers     = 3
	electionWorkers = 3
	sessionTTL      = 3 * time.Second
	durableThink    = 20 * time.Millisecond
	startupLimit    = 30 * time.Second
	// probeLimit is how long a probe keeps trying after a fault healed
	// (the bound is checked separately): it tells "slow" from "stuck".
	probeLimit = 60 * time.Second
	lockName   = "chaos-lock"
	electName  = "chaos-election"
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
// is a failure of the harness itself.
func RunSchedule(cfg Config, idx int, seed int64) (*Stats, error) {
	s := &schedule{cfg: cfg, idx: idx, seed: seed, st: NewStats(), hist: NewHistory()}
	s.dir = filepath.Join(cfg.Dir, fmt.Sprintf("schedule-%02d-seed-%d", idx, seed))
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, err
	}
	for k := 0; k < kvKeys; k++ {
		s.keys = append(s.keys, fmt.Sprintf("k%d", k))
	}
	s.c = NewCluster(cfg.Net, cfg.Bin, s.dir, cfg.ServeFlags, cfg.FirstFlags)
	defer s.c.KillAll()
	defer func() { _ = cfg.Net.Heal() }()
	for i := range cfg.Net.Nodes {
		if err := s.c.Start(i); err != nil {
			return nil, err
		}
	}
	var err error
	if s.probe, err = s.newClient(0); err != nil {
		return nil, fmt.Errorf("cluster did not come up: %w (logs in %s)", err, s.dir)
	}
	defer s.probe.Close()
	if d, ok := s.probeWrite(startupLimit); !ok {
		return nil, fmt.Errorf("cluster accepted no write within %s of starting (logs in %s)", d, s.dir)
	}

	ctx, stop := context.WithCancel(context.Background())
	wait, err := s.startWorkers(ctx)
	if err != nil {
		stop()
		return nil, err
	}
	err = s.injectFaults()
	stop()
	wait()
	if err != nil {
		return nil, err
	}
	s.finalChecks()
	return s.st, nil
}

// newClient connects a client, with the endpoints rotated by n so that
// the workers spread over the nodes (and requests get forwarded).
func (s *schedule) newClient(n int) (*client.Client, error) {
	eps := s.c.Endpoints()
	k := n % len(eps)
	eps = append(eps[k:], eps[:k]...)
	// A short attempt timeout: a stopped node otherwise holds each call
	// for the default 3 s before the client tries the next one.
	cfg := client.Config{Endpoints: eps, AttemptTimeout: time.Second, DialTimeout: 500 * time.Millisecond}
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
	newClient := func() (*client.Client, error) {
		c, err := s.newClient(len(clients))
		if err == nil {
			clients = append(clients, c)
		}
		return c, err
	}
	rng := rand.New(rand.NewPCG(uint64(s.seed), 1))
	sub := func() *rand.Rand { return rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64())) }
	var runs []func()
	for i := 0; i < kvWorkers; i++ {
		c, err := newClient()
		if err != nil {
			return nil, err
		}
		w := &KVWorker{ID: i, C: c, H: s.hist, Keys: s.keys, Rand: sub(), Gate: &s.gate, Stats: s.st, OpTimeout: kvOpTimeout, Think: kvThink}
		runs = append(runs, func() { w.Run(ctx) })
	}
	c, err := newClient()
	if err != nil {
		return nil, err
	}
	s.dur = &DurableWriter{C: c, Prefix: "durable/", Stats: s.st, Think: durableThink}
	runs = append(runs, func() { s.dur.Run(ctx) })
	for i := 0; i < lockWorkers+electionWorkers; i++ {
		c, err := newClient()
		if err != nil {
			return nil, err
		}
		w := &HolderWorker{ID: i, C: c, Name: lockName, TTL: sessionTTL, Rand: sub(), H: s.hist, Stats: s.st, Tenures: &s.locks, Fence: &s.fence}
		if i >= lockWorkers {
			w.Name, w.Election, w.Tenures = electName, true, &s.leads
		}
		runs = append(runs, func() { w.Run(ctx) })
	}
	if c, err = newClient(); err != nil {
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

// injectFaults runs the plan until the schedule's time is up and the
// whole-cluster crash has happened.
func (s *schedule) injectFaults() error {
	plan := Plan(s.seed, 1000, PlanConfig{Nodes: len(s.cfg.Net.Nodes), ElectionTimeoutMax: s.cfg.ElectionTimeoutMax})
	inj := &Injector{C: s.c}
	start := time.Now()
	crashed := false
	for i, f := range plan {
		if time.Since(start) >= s.cfg.Duration && crashed {
			break
		}
		s.st.Fault(string(f.Kind))
		t0 := s.hist.Now()
		var what string
		if f.Kind == CrashAll {
			crashed = true
			what = "kill -9 of every node"
			s.cfg.Logf("schedule %d, fault %d at %s: %s (%s)", s.idx, i, dur(t0), what, f)
			if err := s.crashAll(f, i); err != nil {
				return err
			}
		} else {
			a, err := inj.Apply(f)
			if err != nil {
				return fmt.Errorf("fault %d (%s): %w", i, f, err)
			}
			what = a.What
			s.cfg.Logf("schedule %d, fault %d at %s: %s (%s)", s.idx, i, dur(t0), what, f)
			time.Sleep(f.Hold)
			if err := a.Heal(); err != nil {
				return fmt.Errorf("healing fault %d (%s): %w", i, f, err)
			}
			s.recovered(f, i)
		}
		s.notes = append(s.notes, Annotation{Start: t0, End: s.hist.Now(), What: fmt.Sprintf("%d: %s", i, what)})
		for _, e := range s.c.Exits() {
			s.st.Anomaly("schedule %d seed %d: %s", s.idx, s.seed, e)
		}
		time.Sleep(f.Quiet)
	}
	return nil
}

// recovered measures how long after fault i healed a write got through.
func (s *schedule) recovered(f Fault, i int) {
	d, ok := s.probeWrite(probeLimit)
	s.st.Recovery(string(f.Kind), d)
	switch {
	case !ok:
		s.st.Anomaly("schedule %d seed %d: no write got through within %s after fault %d (%s) healed (logs in %s)", s.idx, s.seed, probeLimit, i, f, s.dir)
	case d > s.cfg.RecoveryBound:
		s.st.Anomaly("schedule %d seed %d: the first write after fault %d (%s) healed took %s, over the %s bound (logs in %s)",
			s.idx, s.seed, i, f, d.Round(time.Millisecond), s.cfg.RecoveryBound, s.dir)
	}
	s.cfg.Logf("schedule %d, fault %d healed: a write got through after %s", s.idx, i, d.Round(time.Millisecond))
}

// probeWrite writes until a write succeeds or limit passes; it returns how
// long that took.
func (s *schedule) probeWrite(limit time.Duration) (time.Duration, bool) {
	start := time.Now()
	for n := 0; ; n++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := s.probe.Put(ctx, "chaos/probe", []byte(strconv.Itoa(n)))
		cancel()
		if err == nil {
			return time.Since(start), true
		}
		if time.Since(start) > limit {
			return time.Since(start), false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// crashAll kills every node at once while the workers run, keeps the
// cluster down for f.Hold, restarts it, and checks that nothing
// acknowledged was lost. New key-value operations wait (the gate) from the
// crash until the check is done, so that what the check reads is what the
// cluster kept, not what a worker wrote since; the operations in flight at
// the crash go on, and end as they may.
func (s *schedule) crashAll(f Fault, i int) error {
	s.c.KillAll()
	gated := make(chan struct{})
	go func() { s.gate.Lock(); close(gated) }()
	defer func() { <-gated; s.gate.Unlock() }()
	time.Sleep(f.Hold)
	for n := range s.cfg.Net.Nodes {
		if err := s.c.Start(n); err != nil {
			return err
		}
	}
	s.recovered(f, i)
	<-gated // every operation called before the crash has ended
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, key := range s.keys {
		allowed := AllowedAfterCrash(s.hist, key)
		call := s.hist.Now()
		kv, err := s.probe.Get(ctx, key)
		ret := s.hist.Now()
		out := KVOutput{Value: string(kv.Value), Found: err == nil}
		if err != nil && !errors.Is(err, client.ErrNotFound) {
			s.st.Anomaly("schedule %d seed %d: reading %s after the whole-cluster restart: %v", s.idx, s.seed, key, err)
			continue
		}
		s.hist.Add(kvWorkers, KVInput{Op: "get", Key: key}, call, ret, out)
		if !allowed[out.Value] {
			s.st.Anomaly("schedule %d seed %d: after the whole-cluster crash %s reads %q; an acknowledged write is lost (the values a read may return: %v)",
				s.idx, s.seed, key, out.Value, sortedKeys(allowed))
		}
	}
	n, lost, err := s.dur.Check(ctx, s.probe)
	if err != nil {
		s.st.Anomaly("schedule %d seed %d: listing the durable writes after the whole-cluster restart: %v", s.idx, s.seed, err)
	}
	for _, l := range lost {
		s.st.Anomaly("schedule %d seed %d: after the whole-cluster crash: %s", s.idx, s.seed, l)
	}
	s.cfg.Logf("schedule %d: after the whole-cluster crash every key holds an allowed value, and %d acknowledged durable writes are all there (%d lost)", s.idx, n, len(lost))
	return nil
}

// finalChecks runs the checks on what the workers recorded.
func (s *schedule) finalChecks() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, lost, err := s.dur.Check(ctx, s.probe); err != nil {
		s.st.Anomaly("schedule %d seed %d: final listing of the durable writes: %v", s.idx, s.seed, err)
	} else {
		for _, l := range lost {
			s.st.Anomaly("schedule %d seed %d: %s", s.idx, s.seed, l)
		}
	}
	for _, a := range s.locks.Check("lock " + lockName) {
		s.st.Anomaly("schedule %d seed %d: %s", s.idx, s.seed, a)
	}
	for _, a := range s.fence.Check("lock " + lockName) {
		s.st.Anomaly("schedule %d seed %d: %s", s.idx, s.seed, a)
	}
	for _, a := range s.leads.Check("election " + electName) {
		s.st.Anomaly("schedule %d seed %d: %s", s.idx, s.seed, a)
	}
	res, err := s.hist.Check(s.cfg.CheckTimeout, s.dir, s.notes)
	switch {
	case err != nil:
		s.st.Anomaly("schedule %d seed %d: writing the failing history: %v", s.idx, s.seed, err)
	case res.Result == porcupine.Illegal:
		s.st.Anomaly("schedule %d seed %d: the key-value history (%d operations) is NOT linearizable: history %s, visualization %s",
			s.idx, s.seed, s.hist.Len(), res.HistoryFile, res.VisualizationFile)
	case res.Result == porcupine.Unknown:
		s.st.Anomaly("schedule %d seed %d: the linearizability check gave up after %s (%d operations): history %s, visualization %s",
			s.idx, s.seed, s.cfg.CheckTimeout, s.hist.Len(), res.HistoryFile, res.VisualizationFile)
	}
	s.cfg.Logf("schedule %d: %d key-value operations checked in %s (%s); %d lock tenures, %d leaderships",
		s.idx, s.hist.Len(), res.Took.Round(time.Millisecond), res.Result, s.locks.Len(), s.leads.Len())
	for _, e := range s.c.Exits() {
		s.st.Anomaly("schedule %d seed %d: %s", s.idx, s.seed, e)
	}
}
