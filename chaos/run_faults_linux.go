//go:build linux

package chaos

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/paxosd/paxosd/client"
)

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
		if err := s.revive(); err != nil {
			return err
		}
		if (f.Kind == LoseDisk || f.Kind == Replace) && !s.awaitRejoins() {
			continue // a stuck rejoin is an anomaly already; another lost disk would only pile on
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
		} else if f.Kind == Replace {
			s.cfg.Logf("schedule %d, fault %d at %s: replacing a member (%s)", s.idx, i, dur(t0), f)
			var err error
			if what, err = s.replaceMember(f, inj); err != nil {
				return fmt.Errorf("fault %d (%s): %w", i, f, err)
			}
			s.cfg.Logf("schedule %d, fault %d done after %s: %s", s.idx, i, dur(s.hist.Now()-t0), what)
			s.recovered(f, i)
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
		time.Sleep(f.Quiet)
	}
	return s.revive()
}

// awaitRejoins waits until no node is rebuilding a lost data directory.
// A second lost disk while one node is still rejoining leaves two of three
// members without their votes, which paxosd does not survive
// (chaos/FINDINGS.md, F1): the suite's fault model is at most one lost
// disk at a time. A rejoin that takes longer than rejoinLimit is an
// anomaly.
func (s *schedule) awaitRejoins() bool {
	start := time.Now()
	for i := range s.cfg.Net.Nodes {
		for s.c.Rejoining(i) {
			if time.Since(start) > rejoinLimit {
				s.st.Anomaly("schedule %d seed %d: node %d has not finished rejoining %s after the last fault healed (logs in %s)",
					s.idx, s.seed, s.c.ID(i), rejoinLimit, s.dir)
				return false
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		s.cfg.Logf("schedule %d: waited %s for a node to finish rejoining", s.idx, d.Round(time.Millisecond))
	}
	return true
}

// revive reports every node that ended on its own as an anomaly, and
// starts it again so that the schedule can go on.
func (s *schedule) revive() error {
	exits := s.c.Exits()
	for _, e := range exits {
		s.st.Anomaly("schedule %d seed %d: %s", s.idx, s.seed, e)
	}
	if len(exits) == 0 {
		return nil
	}
	for i := range s.cfg.Net.Nodes {
		if !s.c.Running(i) {
			if err := s.c.Start(i); err != nil {
				return err
			}
		}
	}
	return nil
}

// recovered measures how long after fault i healed a write got through.
// A slow recovery is logged with what the probe last saw and what the
// nodes say of themselves, to tell the client's failover from the
// cluster's.
func (s *schedule) recovered(f Fault, i int) {
	d, errs := s.probeWrite(probeLimit)
	ok := d <= probeLimit
	s.st.Recovery(string(f.Kind), d)
	switch {
	case !ok:
		s.st.Anomaly("schedule %d seed %d: no write got through within %s after fault %d (%s) healed (logs in %s)", s.idx, s.seed, probeLimit, i, f, s.dir)
	case d > s.cfg.RecoveryBound:
		s.st.Anomaly("schedule %d seed %d: the first write after fault %d (%s) healed took %s, over the %s bound (logs in %s)",
			s.idx, s.seed, i, f, d.Round(time.Millisecond), s.cfg.RecoveryBound, s.dir)
	}
	s.cfg.Logf("schedule %d, fault %d healed: a write got through after %s", s.idx, i, d.Round(time.Millisecond))
	if d > time.Second {
		s.cfg.Logf("schedule %d, fault %d: slow recovery; failed probes: %s; nodes now: %s", s.idx, i, summarizeErrors(errs), s.c.StatusLine())
	}
}

// probeWrite writes until a write succeeds or limit passes. It returns how
// long that took (more than limit: none succeeded) and the errors of the
// failed attempts.
func (s *schedule) probeWrite(limit time.Duration) (time.Duration, []error) {
	start := time.Now()
	var errs []error
	for n := 0; ; n++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := s.probe.Put(ctx, "chaos/probe", []byte(strconv.Itoa(n)))
		cancel()
		if err == nil {
			return time.Since(start), errs
		}
		errs = append(errs, err)
		if d := time.Since(start); d > limit {
			return d, errs
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// summarizeErrors counts distinct error texts.
func summarizeErrors(errs []error) string {
	count := map[string]int{}
	for _, e := range errs {
		count[e.Error()]++
	}
	var parts []string
	for _, k := range sortedKeys(count) {
		parts = append(parts, fmt.Sprintf("%dx %q", count[k], k))
	}
	return strings.Join(parts, "; ")
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
	bad := 0
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
		// Client number kvWorkers (one past the workers') is the suite's own.
		s.hist.Add(kvWorkers, KVInput{Op: "get", Key: key}, call, ret, out)
		if !allowed[out.Value] {
			bad++
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
	s.cfg.Logf("schedule %d: after the whole-cluster crash %d of %d keys hold a value they may (the others lost an acknowledged write); %d of %d acknowledged durable writes are there",
		s.idx, len(s.keys)-bad, len(s.keys), n-len(lost), n)
	return nil
}
