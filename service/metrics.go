package service

import (
	"github.com/paxosd/paxosd/wire"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are a node's Prometheus instruments. The loop updates them; the
// HTTP server reads them.
type metrics struct {
	proposals     prometheus.Counter
	slotsApplied  prometheus.Counter
	cmdsApplied   prometheus.Counter
	batchCmds     prometheus.Histogram
	inFlight      prometheus.Gauge
	commitIndex   prometheus.Gauge
	appliedIndex  prometheus.Gauge
	fsync         prometheus.Histogram
	elections     prometheus.Counter
	leaderChanges prometheus.Counter
	isLeader      prometheus.Gauge
	requests      *prometheus.CounterVec
	sessions      prometheus.Gauge
	locksHeld     prometheus.Gauge
	locksWaiting  prometheus.Gauge
	leaseReads    prometheus.Counter

	stateMismatches prometheus.Counter
	stateDiverged   prometheus.Gauge

	snapshots        prometheus.Counter
	snapshotBytes    prometheus.Gauge
	snapshotInstalls prometheus.Counter
	snapshotSent     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := func(c prometheus.Collector) {
		if reg != nil {
			reg.MustRegister(c)
		}
	}
	m := &metrics{
		proposals:     prometheus.NewCounter(prometheus.CounterOpts{Name: "paxosd_proposals_total", Help: "Commands this node proposed (or forwarded)."}),
		slotsApplied:  prometheus.NewCounter(prometheus.CounterOpts{Name: "paxosd_slots_applied_total", Help: "Log slots applied to the state machine."}),
		cmdsApplied:   prometheus.NewCounter(prometheus.CounterOpts{Name: "paxosd_commands_applied_total", Help: "Client commands applied."}),
		batchCmds:     prometheus.NewHistogram(prometheus.HistogramOpts{Name: "paxosd_batch_commands", Help: "Commands per applied slot.", Buckets: prometheus.ExponentialBuckets(1, 2, 12)}),
		inFlight:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "paxosd_slots_in_flight", Help: "Slots the leader proposed that are not chosen yet."}),
		commitIndex:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "paxosd_commit_index", Help: "The chosen watermark."}),
		appliedIndex:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "paxosd_applied_index", Help: "The last slot applied."}),
		fsync:         prometheus.NewHistogram(prometheus.HistogramOpts{Name: "paxosd_wal_save_seconds", Help: "Latency of one synced WAL batch.", Buckets: prometheus.ExponentialBuckets(50e-6, 2, 14)}),
		elections:     prometheus.NewCounter(prometheus.CounterOpts{Name: "paxosd_leadership_won_total", Help: "Times this node became leader."}),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{Name: "paxosd_leader_changes_total", Help: "Times the leader this node follows changed."}),
		isLeader:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "paxosd_is_leader", Help: "1 while this node leads."}),
		requests:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paxosd_client_requests_total", Help: "Client requests answered, by operation and result."}, []string{"op", "result"}),
		sessions:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "paxosd_sessions", Help: "Open sessions."}),
		locksHeld:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "paxosd_locks_held", Help: "Locks held."}),
		locksWaiting:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "paxosd_lock_waiters", Help: "Sessions waiting for locks."}),
		leaseReads:    prometheus.NewCounter(prometheus.CounterOpts{Name: "paxosd_lease_reads_total", Help: "Linearizable reads the leader answered under its lease, without the log."}),

		stateMismatches: prometheus.NewCounter(prometheus.CounterOpts{Name: "paxosd_state_mismatches_total", Help: "State hash reports (see the state check) that differ from a quorum's: a member whose state diverged."}),
		stateDiverged:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "paxosd_state_diverged", Help: "1 once this node found its own state differs from a quorum's: it answers no client until rebuilt."}),

		snapshots:        prometheus.NewCounter(prometheus.CounterOpts{Name: "paxosd_snapshots_total", Help: "Snapshots this node took (the log below each was deleted)."}),
		snapshotBytes:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "paxosd_snapshot_bytes", Help: "Size of the newest snapshot taken."}),
		snapshotInstalls: prometheus.NewCounter(prometheus.CounterOpts{Name: "paxosd_snapshot_installs_total", Help: "Snapshots fetched from the leader and installed."}),
		snapshotSent:     prometheus.NewCounter(prometheus.CounterOpts{Name: "paxosd_snapshot_sent_bytes_total", Help: "Snapshot bytes served to catching-up nodes."}),
	}
	for _, c := range []prometheus.Collector{m.proposals, m.slotsApplied, m.cmdsApplied, m.batchCmds, m.inFlight, m.commitIndex,
		m.appliedIndex, m.fsync, m.elections, m.leaderChanges, m.isLeader, m.requests, m.sessions, m.locksHeld, m.locksWaiting, m.leaseReads,
		m.stateMismatches, m.stateDiverged, m.snapshots, m.snapshotBytes, m.snapshotInstalls, m.snapshotSent} {
		f(c)
	}
	return m
}

// sample refreshes the gauges that mirror state (called from the loop).
func (n *Node) sampleMetrics() {
	st := n.r.Status()
	n.m.inFlight.Set(float64(st.InFlight))
	n.m.commitIndex.Set(float64(st.Commit))
	n.m.appliedIndex.Set(float64(n.sm.Applied()))
	n.m.sessions.Set(float64(n.sm.SessionCount()))
	held, waiting := 0, 0
	for _, l := range n.sm.Locks() {
		if l.Holder != 0 {
			held++
		}
		waiting += len(l.Waiters)
	}
	n.m.locksHeld.Set(float64(held))
	n.m.locksWaiting.Set(float64(waiting))
}

// resultLabel is a request's result label: "ok", or the error code's name.
func resultLabel(c wire.ErrCode) string {
	if c == wire.ErrNone {
		return "ok"
	}
	return c.String()
}
