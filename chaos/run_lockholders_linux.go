//go:build linux

package chaos

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paxosd/paxosd/client"
)

// LocksConfig shapes a lock-holders schedule (TestChaosLocks, make
// chaos-locks; docs/CHAOS.md).
type LocksConfig struct {
	Config                  // the cluster's side: Net, Bin, flags, Dir, RecoveryBound, Logf
	Sessions, Conns, Shared int
	WaitersPer, Parallel    int
	TTL                     time.Duration // the sessions' TTL
	Outage                  time.Duration // the longest no-majority fault
	QuietHold               time.Duration // held without faults, for the members' CPU
	ListEvery               time.Duration // how often the lock and session lists are read during the run
	Revoke                  int           // sessions revoked on purpose, to see the checks fail
	FinalLimit              time.Duration // how long the final lists may take to agree on every node
	OpTimeout               time.Duration // one open or lock while the cluster is healthy
	CheckTokens             bool          // confirm the shared locks' tokens linearizably at the end
}

// FaultReport is one fault of a lock-holders schedule as it went.
type FaultReport struct {
	What string
	Hold time.Duration
	// Failover is the time from the fault's start to the first write that
	// got through (while the fault holds, if a majority is left), Recovery
	// from the heal to the first write after it.
	Failover, Recovery time.Duration
	FailoverDuring     bool // the first write got through before the heal
	// Elected is the time from the fault's start until a node other than
	// the leader before it said it leads (-1: none did before the first
	// write after the heal; the leader stayed, or came back).
	Elected time.Duration
	// HealTook is how long healing took (iptables, the restart of a
	// killed node): the fault lasts Hold + HealTook.
	HealTook     time.Duration
	LeaderBefore int // 0-based, -1 unknown
	LeaderAfter  int
	// Lost is how many sessions their client declared lost from this
	// fault's start to the next one's.
	Lost int
	// MinRemaining is the least TTL left that the cluster's list showed
	// for any of the sessions between this fault's start and the next
	// one's, -1 if no list was read.
	MinRemaining time.Duration
}

// LocksReport is what a lock-holders schedule measured and found.
type LocksReport struct {
	Seed              int64
	Sessions, Shared  int
	WaitersPer, Conns int
	TTL               time.Duration
	Open              time.Duration // opening every session with its own lock
	Faults            []FaultReport
	LostByClient      int
	ExpiredByCluster  int // sessions a node's final list lacks (the largest count of any node)
	ChangedHands      int // locks seen with another holder or token, plus waiters granted
	Released          int // locks the final lists show free or missing
	Revoked           int
	// Members' CPU (cores, summed over the three) while opening, while
	// holding with no fault, and from the first fault to the end.
	OpenCores, HoldCores, FaultCores float64
	LoadgenCores                     float64 // the test process, over the whole schedule
	MinRemaining                     time.Duration
}

// String is the report as a few lines.
func (r *LocksReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "lock holders seed %d: %d sessions (TTL %s) over %d connections, each holding its own lock; %d shared locks with %d waiters each\n",
		r.Seed, r.Sessions, r.TTL, r.Conns, r.Shared, r.WaitersPer)
	fmt.Fprintf(&b, "opened with their locks in %s (%.0f/s); members' CPU: %.2f cores opening, %.2f holding without faults, %.2f under faults; test process %.2f cores\n",
		r.Open.Round(time.Millisecond), float64(r.Sessions)/r.Open.Seconds(), r.OpenCores, r.HoldCores, r.FaultCores, r.LoadgenCores)
	for i, f := range r.Faults {
		during := "after the heal"
		if f.FailoverDuring {
			during = "during the fault"
		}
		elected := "no new leader"
		if f.Elected >= 0 {
			elected = "a new leader after " + f.Elected.Round(time.Millisecond).String()
		}
		hold := f.Hold.Round(time.Millisecond).String()
		if f.HealTook > 100*time.Millisecond {
			hold += fmt.Sprintf(" (+ %s to heal)", f.HealTook.Round(time.Millisecond))
		}
		fmt.Fprintf(&b, "  fault %d: %s for %s: %s, first write %s after its start (%s), %s after the heal; leader node %d -> node %d; least TTL left %s; %d sessions lost\n",
			i, f.What, hold, elected, f.Failover.Round(time.Millisecond), during,
			f.Recovery.Round(time.Millisecond), f.LeaderBefore+1, f.LeaderAfter+1, ttlLeft(f.MinRemaining), f.Lost)
	}
	fmt.Fprintf(&b, "sessions lost: %d declared lost by the client, %d expired by the cluster; locks changed hands: %d, released: %d; least TTL left seen: %s",
		r.LostByClient, r.ExpiredByCluster, r.ChangedHands, r.Released, ttlLeft(r.MinRemaining))
	if r.Revoked > 0 {
		fmt.Fprintf(&b, " (%d sessions revoked on purpose)", r.Revoked)
	}
	return b.String()
}

// ttlLeft formats a least TTL left: "none listed" when no list showed
// any of the sessions (all lost, or no list read).
func ttlLeft(d time.Duration) string {
	if d < 0 {
		return "none listed"
	}
	return d.String()
}

// locksRun is one lock-holders schedule. It borrows the fault suite's
// schedule for the cluster, the probe and the recovery measurement.
type locksRun struct {
	*schedule
	lc  LocksConfig
	w   *LockHolders
	rep *LocksReport
	cpu *cpuMeter
	// quick writes the failover probes: a short attempt timeout, so that
	// the time to the first write measures the cluster's failover more
	// than the probe's patience with a node that cannot answer.
	quick *client.Client

	base      map[string]Grant
	ids       []uint64
	mine      map[uint64]bool
	mu        sync.Mutex
	reported  map[string]bool // locks already reported changed
	minRemain time.Duration   // since the last fault started
	lostSeen  int             // sessions declared lost, as scanLost saw them
	// listing: the monitor reads the lists (not during the quiet hold,
	// whose CPU figure is the keep-alives' alone).
	listing atomic.Bool
}

// RunLocks runs one lock-holders schedule: a fresh cluster, the sessions
// and their locks, a quiet hold, the faults of PlanLocks(seed) for
// lc.Duration, a settling time of one TTL, and the final checks. The
// anomalies are in the returned Stats; an error is the harness's own.
func RunLocks(lc LocksConfig, idx int, seed int64) (*LocksReport, *Stats, error) {
	r := &locksRun{
		schedule: &schedule{cfg: lc.Config, idx: idx, seed: seed, st: NewStats(), hist: NewHistory()},
		lc:       lc,
		rep: &LocksReport{Seed: seed, Sessions: lc.Sessions, Shared: lc.Shared, WaitersPer: lc.WaitersPer,
			Conns: lc.Conns, TTL: lc.TTL, MinRemaining: -1},
		reported:  map[string]bool{},
		minRemain: -1,
	}
	err := r.run()
	return r.rep, r.st, err
}

func (r *locksRun) run() error {
	s := r.schedule
	s.dir = ScheduleDir(s.cfg.Dir, s.idx, s.seed)
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return err
	}
	s.c = NewCluster(s.cfg.Net, s.cfg.Bin, s.dir, s.cfg.ServeFlags, s.cfg.FirstFlags)
	defer s.c.KillAll()
	defer func() { _ = s.cfg.Net.Heal() }()
	if err := s.boot(); err != nil {
		return err
	}
	defer s.probe.Close()
	var err error
	r.cpu = newCPUMeter(s.c)
	qcfg := s.c.ClientConfig(s.c.Endpoints())
	qcfg.AttemptTimeout = quickAttempt
	ctx0, cancel0 := context.WithTimeout(context.Background(), 5*time.Second)
	r.quick, err = client.NewWithConfig(ctx0, qcfg)
	cancel0()
	if err != nil {
		return err
	}
	defer r.quick.Close()
	self0, t0 := procCPU(os.Getpid()), time.Now()

	// The clients: the default attempt timeout (3 s), as a program would
	// have, so a call to a node that is cut off waits that long before
	// the client moves on.
	var clients []*client.Client
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for i := 0; i < r.lc.Conns; i++ {
		c, err := s.newClient(i, true)
		if err != nil {
			return err
		}
		clients = append(clients, c)
	}
	r.w = &LockHolders{Clients: clients, N: r.lc.Sessions, TTL: r.lc.TTL, Shared: r.lc.Shared, WaitersPer: r.lc.WaitersPer, Parallel: r.lc.Parallel}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()

	cpuOpen := r.cpu.sample()
	took, err := r.w.Open(ctx, r.lc.OpTimeout, func(n int) {
		if n%5000 == 0 {
			s.cfg.Logf("lock holders: %d/%d sessions open with their locks", n, r.lc.Sessions)
		}
	})
	r.rep.Open = took
	r.rep.OpenCores = (r.cpu.sample() - cpuOpen) / took.Seconds()
	if err != nil {
		return fmt.Errorf("opening the sessions on a healthy cluster: %w (logs in %s)", err, s.dir)
	}
	s.cfg.Logf("lock holders: %d sessions open, each with its own lock, in %s (%.0f/s)", r.lc.Sessions, took.Round(time.Millisecond), float64(r.lc.Sessions)/took.Seconds())
	waitCtx, stopWaiters := context.WithCancel(ctx)
	r.w.StartWaiters(waitCtx)
	if err := r.baseline(); err != nil {
		stopWaiters()
		r.w.Wait()
		return err
	}

	monDone := make(chan struct{})
	monCtx, stopMon := context.WithCancel(ctx)
	go func() { defer close(monDone); r.monitor(monCtx) }()

	holdFrom, cpuHold := time.Now(), r.cpu.sample()
	time.Sleep(r.lc.QuietHold)
	r.rep.HoldCores = (r.cpu.sample() - cpuHold) / time.Since(holdFrom).Seconds()
	s.cfg.Logf("lock holders: held %s without faults: members' CPU %.2f cores", r.lc.QuietHold, r.rep.HoldCores)

	r.listing.Store(true)
	faultFrom, cpuFaults := time.Now(), r.cpu.sample()
	err = r.injectFaults()
	if err == nil {
		// One TTL more: a session whose keep-alives the faults broke
		// expires by then, on the cluster and at its client.
		settle := r.lc.TTL + 2*time.Second
		s.cfg.Logf("lock holders: faults over; settling for %s", settle)
		time.Sleep(settle)
		err = s.revive()
	}
	r.rep.FaultCores = (r.cpu.sample() - cpuFaults) / time.Since(faultFrom).Seconds()
	stopMon()
	<-monDone
	if err != nil {
		stopWaiters()
		r.w.Wait()
		return err
	}
	r.scanLost()
	r.finalChecks()
	stopWaiters()
	r.w.Wait()
	var granted []string
	for name, g := range r.w.GrantedWaiters() {
		r.mu.Lock()
		if !r.reported[name] {
			r.reported[name] = true
			r.rep.ChangedHands++
		}
		r.mu.Unlock()
		granted = append(granted, g...)
	}
	slices.Sort(granted)
	r.someAnomalies(granted, "waits ended with the lock")
	r.someAnomalies(r.w.WaitErrors(), "waits ended otherwise")
	r.rep.LostByClient = r.w.Lost()
	r.rep.LoadgenCores = (procCPU(os.Getpid()) - self0) / time.Since(t0).Seconds()
	return nil
}

// baseline waits until every waiter is in its lock's line, then takes the
// lock list as the baseline: it must show what the clients were told.
func (r *locksRun) baseline() error {
	s := r.schedule
	grants, waiters := r.w.Expected()
	r.ids = r.w.IDs()
	r.mine = make(map[uint64]bool, len(r.ids))
	for _, id := range r.ids {
		r.mine[id] = true
	}
	deadline := time.Now().Add(startupLimit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		locks, err := s.probe.Locks(ctx)
		cancel()
		queued := err == nil
		if queued {
			byName := map[string][]uint64{}
			for _, l := range locks {
				if _, ok := waiters[l.Name]; ok {
					byName[l.Name] = l.Waiters
				}
			}
			for name, want := range waiters {
				got := slices.Sorted(slices.Values(byName[name]))
				if !slices.Equal(got, want) {
					queued = false
					break
				}
			}
		}
		if queued {
			for _, l := range locks {
				if _, ok := waiters[l.Name]; ok {
					g := grants[l.Name]
					g.Waiters = l.Waiters
					grants[l.Name] = g
				}
			}
			r.base = grants
			for _, d := range CompareLocks(r.base, locks) {
				s.st.Anomaly("at the baseline: %s (the client was told session %d token %d)", d, d.Want.Holder, d.Want.Token)
			}
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the lock waiters were not all in line within %s (last error %v; logs in %s)", startupLimit, err, s.dir)
		}
		time.Sleep(200 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sessions, err := s.probe.Sessions(ctx)
	if err != nil {
		return fmt.Errorf("listing the sessions at the baseline: %w", err)
	}
	if missing := MissingSessions(r.ids, sessions); len(missing) > 0 {
		s.st.Anomaly("at the baseline the session list lacks %d of the sessions just opened (first: %v)", len(missing), missing[:min(10, len(missing))])
	}
	s.cfg.Logf("lock holders: baseline: %d locks held, %d waits in line, %d sessions listed", len(r.base), r.lc.Shared*r.lc.WaitersPer, len(sessions))
	return nil
}

// monitor watches the run: every 250 ms for sessions the client declared
// lost, every ListEvery the lock list (a lock held by anyone else, or with
// another token, is a change of hands at once; a lock merely free may be
// an older state of a node that lags, and is left to the final check) and
// the least TTL left of the sessions.
func (r *locksRun) monitor(ctx context.Context) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	lastList := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		r.scanLost()
		if !r.listing.Load() || time.Since(lastList) < r.lc.ListEvery {
			continue
		}
		lastList = time.Now()
		r.cpu.sample()
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		locks, err := r.probe.Locks(lctx)
		if err == nil {
			for _, d := range CompareLocks(r.base, locks) {
				r.noteChange(d, "during the run")
			}
		}
		sessions, err := r.probe.Sessions(lctx)
		cancel()
		if err == nil {
			if m := MinRemaining(r.mine, sessions); m >= 0 {
				r.mu.Lock()
				d := time.Duration(m) * time.Millisecond
				if r.minRemain < 0 || d < r.minRemain {
					r.minRemain = d
				}
				if r.rep.MinRemaining < 0 || d < r.rep.MinRemaining {
					r.rep.MinRemaining = d
				}
				r.mu.Unlock()
			}
		}
	}
}

// someAnomalies records the first 10 of list in full, and how many there
// were in all.
func (r *locksRun) someAnomalies(list []string, what string) {
	for i, a := range list {
		if i == 10 {
			r.st.Anomaly("... %d %s in all", len(list), what)
			break
		}
		r.st.Anomaly("%s", a)
	}
}

// noteChange records a lock that changed hands, once per lock (the first
// 20 as anomalies of their own, then one line for the rest).
func (r *locksRun) noteChange(d LockDiff, when string) bool {
	if !d.ChangedHands() {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reported[d.Name] {
		return true
	}
	r.reported[d.Name] = true
	r.rep.ChangedHands++
	switch {
	case r.rep.ChangedHands <= 20:
		r.st.Anomaly("%s (%s, at %s)", d, when, time.Now().Format("15:04:05.000"))
	case r.rep.ChangedHands == 21:
		r.st.Anomaly("more locks changed hands: see the report's count")
	}
	return true
}

// scanLost makes each session newly declared lost an anomaly (the first
// 20 in full, then a count).
func (r *locksRun) scanLost() {
	for _, l := range r.w.ScanLost() {
		r.mu.Lock()
		r.lostSeen++
		n := r.lostSeen
		r.mu.Unlock()
		switch {
		case n <= 20:
			r.st.Anomaly("session %d (index %d, connection %d) declared lost by its client at %s: %v",
				l.ID, l.Index, l.Index%r.lc.Conns, l.At.Format("15:04:05.000"), l.Err)
		case n == 21:
			r.st.Anomaly("more sessions declared lost by their clients: see the report's count")
		}
	}
}

// finalChecks reads the session and lock lists from every node (each
// through a client that talks to that node only) until they show every
// session and every lock as at the baseline, or lc.FinalLimit passes (a
// node that lags catches up meanwhile; one that does not is reported).
// The shared locks' tokens are then checked linearizably.
func (r *locksRun) finalChecks() {
	s := r.schedule
	for i, ep := range s.c.Endpoints() {
		cfg := s.c.ClientConfig([]string{ep})
		cfg.AttemptTimeout = 2 * time.Second
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := client.NewWithConfig(ctx, cfg)
		cancel()
		if err != nil {
			s.st.Anomaly("final check: cannot reach node %d: %v", i+1, err)
			continue
		}
		var (
			diffs   []LockDiff
			missing []uint64
			lastErr error
		)
		deadline := time.Now().Add(r.lc.FinalLimit)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			locks, err1 := c.Locks(ctx)
			sessions, err2 := c.Sessions(ctx)
			cancel()
			if lastErr = errorsJoin(err1, err2); lastErr == nil {
				diffs, missing = CompareLocks(r.base, locks), MissingSessions(r.ids, sessions)
				if len(diffs) == 0 && len(missing) == 0 {
					break
				}
			}
			if time.Now().After(deadline) {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		c.Close()
		if lastErr != nil {
			s.st.Anomaly("final check: node %d did not list its locks and sessions: %v", i+1, lastErr)
			continue
		}
		r.rep.ExpiredByCluster = max(r.rep.ExpiredByCluster, len(missing))
		if len(missing) > 0 {
			s.st.Anomaly("final check: node %d's session list lacks %d of the %d sessions (expired or ended by the cluster; first: %v)",
				i+1, len(missing), len(r.ids), missing[:min(10, len(missing))])
		}
		released := 0
		for k, d := range diffs {
			if r.noteChange(d, fmt.Sprintf("node %d's final list", i+1)) {
				continue
			}
			if !d.Listed || d.Got.Holder == 0 {
				released++
			}
			if k < 10 {
				s.st.Anomaly("final check, node %d: %s", i+1, d)
			}
		}
		r.rep.Released = max(r.rep.Released, released)
		if len(diffs) > 10 {
			s.st.Anomaly("final check, node %d: %d locks differ from the baseline in all", i+1, len(diffs))
		}
	}
	if !r.lc.CheckTokens {
		return
	}
	for j := 0; j < r.lc.Shared; j++ {
		name := SharedLock(j)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		held, err := s.probe.CheckToken(ctx, name, r.base[name].Token)
		cancel()
		if err == nil && !held {
			s.st.Anomaly("final check: token %d no longer holds lock %s (linearizable check)", r.base[name].Token, name)
		}
	}
}
