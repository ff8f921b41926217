//go:build linux

package chaos

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/anishathalye/porcupine"
)

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
	if bad, err := CheckBank(ctx, s.probe, bankAccounts); err != nil {
		s.st.Anomaly("schedule %d seed %d: final read of the bank accounts: %v", s.idx, s.seed, err)
	} else {
		for _, b := range bad {
			s.st.Anomaly("schedule %d seed %d: %s", s.idx, s.seed, b)
		}
	}
	s.checkTenures(&s.locks, "lock "+lockName, "tenures-lock.json")
	for _, a := range s.fence.Check("lock " + lockName) {
		s.st.Anomaly("schedule %d seed %d: %s", s.idx, s.seed, a)
	}
	s.checkTenures(&s.leads, "election "+electName, "tenures-election.json")
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

// checkTenures reports t's anomalies, and on any writes every tenure to
// file in the schedule's directory (kept after a run with anomalies).
func (s *schedule) checkTenures(t *Tenures, what, file string) {
	anomalies := t.Check(what)
	if len(anomalies) == 0 {
		return
	}
	path := filepath.Join(s.dir, file)
	if err := t.WriteFile(path, s.notes); err != nil {
		path = fmt.Sprintf("(not written: %v)", err)
	}
	for _, a := range anomalies {
		s.st.Anomaly("schedule %d seed %d: %s; tenures in %s", s.idx, s.seed, a, path)
	}
}
