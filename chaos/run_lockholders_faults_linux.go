//go:build linux

package chaos

// The lock-holders schedule's faults (run_lockholders_linux.go has the
// rest): PlanLocks's faults applied, the failover measured, and the
// sessions revoked on purpose.

import (
	"context"
	"fmt"
	"time"

	"github.com/paxosd/paxosd/client"
)

// injectFaults runs PlanLocks(seed) until lc.Duration has passed.
func (r *locksRun) injectFaults() error {
	s := r.schedule
	plan := PlanLocks(s.seed, 1000, len(s.cfg.Net.Nodes), r.lc.Outage)
	inj := &Injector{C: s.c}
	start := time.Now()
	for i, f := range plan {
		if time.Since(start) >= s.cfg.Duration && i >= 2 {
			break
		}
		if err := s.revive(); err != nil {
			return err
		}
		r.mu.Lock()
		r.minRemain = -1
		r.mu.Unlock()
		fr := FaultReport{Hold: f.Hold, LeaderBefore: s.c.Leader()}
		lost0 := r.w.Lost()
		r.cpu.sample() // the CPU of a node about to be killed
		s.st.Fault(string(f.Kind))
		faultStart := time.Now()
		a, err := r.apply(inj, f)
		if err != nil {
			return fmt.Errorf("fault %d (%s): %w", i, f, err)
		}
		fr.What = a.What
		if f.Kind != Mixed && (f.Target == TheLeader || f.Node == fr.LeaderBefore) {
			fr.What += " (the leader)"
		}
		s.cfg.Logf("lock holders: fault %d at %s (the nodes' log time): %s for %s", i, faultStart.UTC().Format("15:04:05.000"), fr.What, f.Hold)
		first, elected := make(chan time.Duration, 1), make(chan time.Duration, 1)
		pctx, stopProbe := context.WithCancel(context.Background())
		lctx, stopLeader := context.WithCancel(context.Background())
		go func() { first <- r.firstWrite(pctx, faultStart) }()
		go func() { elected <- r.newLeader(lctx, faultStart, fr.LeaderBefore) }()
		time.Sleep(f.Hold)
		if i == 1 && r.lc.Revoke > 0 {
			r.revoke()
		}
		healStart := time.Now()
		if err := a.Heal(); err != nil {
			stopProbe()
			stopLeader()
			return fmt.Errorf("healing fault %d (%s): %w", i, f, err)
		}
		healed := time.Now()
		fr.HealTook = healed.Sub(healStart)
		d, _ := s.probeWrite(probeLimit)
		fr.Recovery = d
		s.st.Recovery(string(f.Kind), d)
		switch {
		case d > probeLimit:
			s.st.Anomaly("no write got through within %s after fault %d (%s) healed (logs in %s)", probeLimit, i, a.What, s.dir)
		case d > s.cfg.RecoveryBound:
			s.st.Anomaly("the first write after fault %d (%s) healed took %s, over the %s bound", i, a.What, d.Round(time.Millisecond), s.cfg.RecoveryBound)
		}
		stopProbe()
		fr.Failover = <-first
		fr.FailoverDuring = fr.Failover >= 0 && faultStart.Add(fr.Failover).Before(healStart)
		if fr.Failover < 0 {
			fr.Failover = healed.Sub(faultStart) + d
		}
		time.Sleep(f.Quiet)
		stopLeader()
		fr.Elected = <-elected
		fr.LeaderAfter = s.c.Leader()
		fr.Lost = r.w.Lost() - lost0
		r.mu.Lock()
		fr.MinRemaining = r.minRemain
		r.mu.Unlock()
		r.rep.Faults = append(r.rep.Faults, fr)
		s.cfg.Logf("lock holders: fault %d healed: first write %s after its start, %s after the heal; %d sessions lost so far",
			i, fr.Failover.Round(time.Millisecond), d.Round(time.Millisecond), r.w.Lost())
	}
	return s.revive()
}

// apply starts fault f. The Mixed fault of PlanLocks kills the leader
// first, then cuts off the Node-th of the other nodes, so that no
// majority is left.
func (r *locksRun) apply(inj *Injector, f Fault) (Applied, error) {
	if f.Kind != Mixed {
		return inj.Apply(f)
	}
	n := len(r.c.Net.Nodes)
	leader := inj.leaderOr(0)
	var others []int
	for i := 0; i < n; i++ {
		if i != leader {
			others = append(others, i)
		}
	}
	kill, err := inj.Apply(Fault{Kind: Kill, Node: leader})
	if err != nil {
		return Applied{}, err
	}
	cut, err := inj.Apply(Fault{Kind: IsolateNode, Node: others[f.Node%len(others)]})
	if err != nil {
		return Applied{}, fmt.Errorf("%w (and %v)", err, kill.Heal())
	}
	return Applied{
		What: fmt.Sprintf("%s (the leader), and at the same time %s: no majority", kill.What, cut.What),
		Heal: func() error { return errorsJoin(cut.Heal(), kill.Heal()) },
	}, nil
}

// quickAttempt is the failover probe's attempt timeout: a write takes a
// few ms, an election a few hundred.
const quickAttempt = 200 * time.Millisecond

// firstWrite writes until a write gets through or ctx ends, and returns
// how long after start the first one did (-1: none did).
func (r *locksRun) firstWrite(ctx context.Context, start time.Time) time.Duration {
	for n := 0; ctx.Err() == nil; n++ {
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := r.quick.Put(wctx, "chaos/failover", []byte(fmt.Sprint(n)))
		cancel()
		if err == nil {
			return time.Since(start)
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
	return -1
}

// newLeader asks every node for its role until one other than before
// says it leads, and returns how long after start that was (-1: none did
// before ctx ended).
func (r *locksRun) newLeader(ctx context.Context, start time.Time, before int) time.Duration {
	unc := client.Unconnected(r.c.ClientConfig(r.c.Endpoints()))
	for ctx.Err() == nil {
		sctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		st := unc.Status(sctx)
		cancel()
		for i, m := range st {
			if i != before && m.Err == nil && m.Status.Role == "leader" {
				return time.Since(start)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	return -1
}

// revoke ends the first lc.Revoke sessions through the cluster, as an
// operator would (paxosd session revoke): to see the checks fail. The
// first sessions hold the shared locks, so their waiters get them.
func (r *locksRun) revoke() {
	for i := 0; i < r.lc.Revoke && i < len(r.ids); i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := r.probe.RevokeSession(ctx, r.ids[i])
		cancel()
		if err == nil {
			r.rep.Revoked++
		}
	}
	r.cfg.Logf("lock holders: revoked %d sessions on purpose (-chaos.locks-revoke)", r.rep.Revoked)
}
