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
	laggards      prometheus.Gauge
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
	clusterLevel    prometheus.Gauge
	// membershipVersion and members: the configuration in force (members.go).
	membershipVersion prometheus.Gauge
	members           *prometheus.GaugeVec

	snapshots        prometheus.Counter
	snapshotBytes    prometheus.Gauge
	snapshotInstalls prometheus.Counter
	snapshotSent     prometheus.Counter

	// What an SRE alerts on (docs/OPERATIONS.md, contrib/prometheus).
	requestSeconds   *prometheus.HistogramVec // by op
	peerRTT          *prometheus.HistogramVec // by peer
	hasLeader        prometheus.Gauge
	noLeaderSeconds  prometheus.Counter
	leaderCommit     prometheus.Gauge
	applyLag         prometheus.Gauge
	snapshotSeconds  *prometheus.HistogramVec // by phase
	snapshotFailures *prometheus.CounterVec   // by phase
	peerRejected     *prometheus.CounterVec   // by reason (peercheck.go)
	authFailures     prometheus.Counter
	streamsOpen      prometheus.Gauge
	watchesHeld      prometheus.Counter // watch_slow.go
	watchesEndedSlow prometheus.Counter
	shed             *prometheus.CounterVec // by priority (busy.go)
	backlogBytes     prometheus.Gauge

	// loop is the bookkeeping behind some of the above; only the node's
	// loop touches it.
	loop loopMetrics
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
		laggards:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "paxosd_laggards", Help: "Followers far behind that the leader leaves out of new slots' Accepts while they catch up."}),
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
		authFailures:  prometheus.NewCounter(prometheus.CounterOpts{Name: "paxosd_auth_failures_total", Help: "Failed authentications (client and HTTP), refusals of a source that failed too often included."}),

		stateMismatches: prometheus.NewCounter(prometheus.CounterOpts{Name: "paxosd_state_mismatches_total", Help: "State hash reports (see the state check) that differ from a quorum's: a member whose state diverged."}),
		stateDiverged:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "paxosd_state_diverged", Help: "1 once this node found its own state differs from a quorum's: it answers no client until rebuilt."}),
		clusterLevel:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "paxosd_cluster_level", Help: "The cluster level this node applied (0 until every member spoke the protocol version of the leader's highest level); it only rises, and no build below it may rejoin."}),

		snapshots:        prometheus.NewCounter(prometheus.CounterOpts{Name: "paxosd_snapshots_total", Help: "Snapshots this node took (the log below each was deleted)."}),
		snapshotBytes:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "paxosd_snapshot_bytes", Help: "Size of the newest snapshot taken."}),
		snapshotInstalls: prometheus.NewCounter(prometheus.CounterOpts{Name: "paxosd_snapshot_installs_total", Help: "Snapshots fetched from the leader and installed."}),
		snapshotSent:     prometheus.NewCounter(prometheus.CounterOpts{Name: "paxosd_snapshot_sent_bytes_total", Help: "Snapshot bytes served to catching-up nodes."}),

		// 100µs (a lease read on an idle leader) to 6.5s (a request
		// outliving a failover; the default request timeout is 10s).
		requestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "paxosd_request_duration_seconds",
			Help:    "Time from a client request's arrival to its answer, by operation (waiting lock acquires, campaigns and streams excluded).",
			Buckets: prometheus.ExponentialBuckets(100e-6, 2, 17)}, []string{"op"}),
		// 50µs (loopback) to 1.6s: beyond an election timeout the
		// follower is lost anyway.
		peerRTT: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "paxosd_peer_rtt_seconds",
			Help:    "Leader only: time from a heartbeat to the peer's acknowledgement of it (network both ways plus the peer's loop).",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16)}, []string{"peer"}),
		hasLeader:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "paxosd_has_leader", Help: "1 while this node knows a leader (itself included). A leader that loses its quorum steps down within an election timeout."}),
		noLeaderSeconds: prometheus.NewCounter(prometheus.CounterOpts{Name: "paxosd_no_leader_seconds_total", Help: "Seconds this node knew no leader: no quorum could be reached, or an election was under way."}),
		leaderCommit:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "paxosd_leader_commit_index", Help: "The highest chosen watermark a leader announced to this node (its own, on the leader)."}),
		applyLag:        prometheus.NewGauge(prometheus.GaugeOpts{Name: "paxosd_apply_lag_slots", Help: "Slots the leader has chosen that this node has not applied yet."}),
		// 1ms to 131s: a small state encodes in a millisecond, a
		// multi-GiB transfer takes minutes.
		snapshotSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "paxosd_snapshot_duration_seconds",
			Help:    "Snapshot work by phase: encode (on the loop), write (to the WAL), take (encode to durable), fetch (from the leader, and checked), install (decode off the loop, the node without a state meanwhile).",
			Buckets: prometheus.ExponentialBuckets(1e-3, 2, 18)}, []string{"phase"}),
		snapshotFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paxosd_snapshot_failures_total",
			Help: "Snapshots that failed, by phase: encode, fetch, install."}, []string{"phase"}),
		streamsOpen: prometheus.NewGauge(prometheus.GaugeOpts{Name: "paxosd_streams",
			Help: "Open watches and election observers on this node (clients spread them over the members)."}),
		watchesHeld: prometheus.NewCounter(prometheus.CounterOpts{Name: "paxosd_watches_held_total",
			Help: "Times a watch was held at its revision because its client left too many answers unread (WatchBacklogBytes); it resumes from the history."}),
		watchesEndedSlow: prometheus.NewCounter(prometheus.CounterOpts{Name: "paxosd_watches_ended_slow_total",
			Help: "Watches ended with err SlowWatcher after being held too long; their clients resume them from their revision."}),
		shed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paxosd_requests_shed_total",
			Help: "Client requests an overloaded node refused before proposing them (err Busy, or Unavailable to clients below protocol 13), by priority: write (shed first), lock, keepalive (shed last)."}, []string{"priority"}),
		backlogBytes:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "paxosd_backlog_bytes", Help: "Bytes of client commands waiting for the log (the larger of this node's waiting calls and its proposal queue with the values in flight), sampled every 100 ms; past shares of --backlog-bytes-max the node sheds requests."}),
		membershipVersion: prometheus.NewGauge(prometheus.GaugeOpts{Name: "paxosd_membership_version", Help: "The version of the configuration in force as this node applied it (1: the first, from --peers; one more per member change)."}),
		members: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "paxosd_members",
			Help: "Members of the configuration in force as this node applied it, by role (voter, learner)."}, []string{"role"}),
		peerRejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paxosd_peer_messages_rejected_total",
			Help: "Messages from peer connections that no honest member sends, by reason (docs/SECURITY.md): each closed its connection."}, []string{"reason"}),
	}
	for _, c := range []prometheus.Collector{m.proposals, m.slotsApplied, m.cmdsApplied, m.batchCmds, m.inFlight, m.laggards, m.commitIndex,
		m.appliedIndex, m.fsync, m.elections, m.leaderChanges, m.isLeader, m.requests, m.sessions, m.locksHeld, m.locksWaiting, m.leaseReads, m.authFailures,
		m.stateMismatches, m.stateDiverged, m.clusterLevel, m.snapshots, m.snapshotBytes, m.snapshotInstalls, m.snapshotSent,
		m.requestSeconds, m.peerRTT, m.hasLeader, m.noLeaderSeconds, m.leaderCommit, m.applyLag, m.snapshotSeconds, m.snapshotFailures,
		m.peerRejected, m.shed, m.backlogBytes, m.streamsOpen, m.watchesHeld, m.watchesEndedSlow, m.membershipVersion, m.members} {
		f(c)
	}
	// Every phase's series exists from the start, at zero: an alert on
	// increase(...) sees the first failure, and a dashboard shows 0
	// rather than "no data".
	for _, phase := range []string{"encode", "write", "take", "fetch", "install"} {
		m.snapshotSeconds.WithLabelValues(phase)
	}
	for _, phase := range []string{"encode", "fetch", "install"} {
		m.snapshotFailures.WithLabelValues(phase)
	}
	for _, p := range priorityLabels {
		m.shed.WithLabelValues(p)
	}
	for _, reason := range peerRejectReasons {
		m.peerRejected.WithLabelValues(reason)
	}
	return m
}

// sample refreshes the gauges that mirror state (called from the loop).
func (n *Node) sampleMetrics() {
	st := n.r.Status()
	n.m.inFlight.Set(float64(st.InFlight))
	n.noteLaggards()
	n.m.streamsOpen.Set(float64(n.streams.len()))
	n.m.commitIndex.Set(float64(st.Commit))
	applied := n.appliedSlot()
	n.m.appliedIndex.Set(float64(applied))
	// A follower's own watermark trails the leader's by the Accepts in
	// flight; the leader's announced one is what clients wait on.
	leaderCommit := max(st.LeaderCommit, st.Commit)
	n.m.leaderCommit.Set(float64(leaderCommit))
	if leaderCommit > applied {
		n.m.applyLag.Set(float64(leaderCommit - applied))
	} else {
		n.m.applyLag.Set(0)
	}
	if n.installing() {
		return // the gauges of the state keep the dropped state's figures
	}
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

// opLabel is a request's op label: the operation's name, or "invalid" for
// a number this version does not know, so a client sending garbage cannot
// create series.
func opLabel(o wire.Op) string {
	if !o.Valid() {
		return "invalid"
	}
	return o.String()
}

// resultLabel is a request's result label: "ok", or the error code's name.
func resultLabel(c wire.ErrCode) string {
	if c == wire.ErrNone {
		return "ok"
	}
	return c.String()
}
