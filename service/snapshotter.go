package service

import (
	"time"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wal"
)

// Snapshots keep the data directory bounded. Every Config.SnapshotEntries
// applied slots the loop encodes the state machine and hands it to the WAL
// writer, in order with the Persists: one synced batch stores it and
// deletes the log below it (but for SnapshotKeepEntries slots). Once that
// batch is durable the replica is told (Replica.Truncate), and from then on
// sends a follower that lacks the deleted slots a MsgSnapshot; the follower
// fetches the snapshot (snapfetch.go) and installs it here.

// snapshotJob is a snapshot for the WAL writer to store.
type snapshotJob struct {
	slot     paxos.Slot
	data     []byte
	truncate paxos.Slot
	meta     wal.SnapshotMeta // set once stored
	took     time.Duration
	started  time.Time // when the loop began encoding it (the node's clock)
}

// installJob is a snapshot from the leader for the WAL writer to install.
type installJob struct {
	meta wal.SnapshotMeta
	data []byte
}

// snapshotState is the loop's bookkeeping of snapshots.
type snapshotState struct {
	// last is the slot of the newest snapshot taken or installed.
	last paxos.Slot
	// inFlight is the snapshot job submitted as seq, not yet durable.
	inFlight *snapshotJob
	seq      uint64
	// fetching is set while a fetch of the leader's snapshot runs, which
	// began at fetchStart.
	fetching   bool
	fetchStart time.Time
}

// maybeSnapshot takes a snapshot when SnapshotEntries slots were applied
// since the last one. The encoding runs on the loop (the state machine is
// the loop's); the write runs on the WAL writer.
func (n *Node) maybeSnapshot() {
	applied := n.sm.Applied()
	if n.snap.inFlight != nil || applied < n.snap.last+paxos.Slot(n.cfg.SnapshotEntries) {
		return
	}
	start := n.clock.Now()
	data, err := n.sm.Snapshot()
	n.snapshotTimed("encode", start)
	if err != nil {
		n.m.snapshotFailures.WithLabelValues("encode").Inc()
		n.log.Error().Err(err).Uint64("slot", uint64(applied)).Msg("cannot encode a snapshot; the log keeps growing until the next attempt")
		n.snap.last = applied
		return
	}
	if n.obs != nil {
		n.obs.snapshotted(applied, data)
	}
	var truncate paxos.Slot
	if keep := paxos.Slot(n.cfg.SnapshotKeepEntries); applied > keep {
		truncate = applied - keep
	}
	job := &snapshotJob{slot: applied, data: data, truncate: truncate, started: start}
	if !n.submit(walJob{snap: job}) {
		return
	}
	n.snap.inFlight, n.snap.seq = job, n.submitted
	n.log.Debug().Uint64("slot", uint64(applied)).Int("bytes", len(data)).Dur("encode_ms", n.clock.Now().Sub(start)).Msg("snapshot submitted")
}

// snapshotDurable finishes the snapshot in flight once its write is
// durable (seq is the newest durable write): the log below it is gone, so
// the replica must stop offering it.
func (n *Node) snapshotDurable(seq uint64) {
	job := n.snap.inFlight
	if job == nil || seq < n.snap.seq {
		return
	}
	n.snap.inFlight = nil
	n.snap.last = max(n.snap.last, job.slot)
	n.r.Truncate(job.truncate)
	n.m.snapshots.Inc()
	n.m.snapshotBytes.Set(float64(job.meta.Size))
	n.m.snapshotSeconds.WithLabelValues("write").Observe(job.took.Seconds())
	n.snapshotTimed("take", job.started)
	n.log.Info().Uint64("slot", uint64(job.slot)).Uint64("bytes", job.meta.Size).
		Uint64("log_truncated_to", uint64(job.truncate)).Dur("write_ms", job.took).Msg("snapshot taken")
}

// snapshotFetched is a fetch's outcome, sent to the loop.
type snapshotFetched struct {
	from paxos.NodeID // the member the snapshot came from
	meta wal.SnapshotMeta
	data []byte
	err  error
}

// installSnapshot replaces the state machine and the log with a snapshot
// fetched from the leader, if it is still news.
func (n *Node) installSnapshot(f snapshotFetched) {
	n.snap.fetching = false
	n.snapshotTimed("fetch", n.snap.fetchStart)
	if f.err != nil {
		n.m.snapshotFailures.WithLabelValues("fetch").Inc()
		n.log.Warn().Err(f.err).Msg("snapshot transfer failed; it resumes when the leader offers it again")
		return
	}
	if commit := n.r.Status().Commit; f.meta.Slot <= commit {
		n.log.Info().Uint64("snapshot_slot", uint64(f.meta.Slot)).Uint64("commit", uint64(commit)).Msg("fetched snapshot no longer needed")
		return
	}
	start := n.clock.Now()
	sm, err := statemachine.RestoreStateMachine(n.smOptions(), f.data)
	n.snapshotTimed("install", start)
	if err != nil {
		n.m.snapshotFailures.WithLabelValues("install").Inc()
		n.log.Error().Err(err).Str("snapshot", f.meta.String()).Msg("cannot decode the leader's snapshot")
		return
	}
	// The install is queued behind every write submitted so far, and every
	// later write (and every Promise or Accepted held for durability)
	// waits behind it, so the replica may move on at once.
	if !n.submit(walJob{install: &installJob{meta: f.meta, data: f.data}}) {
		return
	}
	n.jobCommits = append(n.jobCommits, jobCommit{n.submitted, f.meta.Slot})
	n.sm = sm
	if n.obs != nil {
		n.obs.installed(sm)
	}
	n.r.Restore(f.meta.Slot)
	n.snap.last = max(n.snap.last, f.meta.Slot)
	n.stateInstalled(f.from)
	n.answerSkipped()
	n.m.snapshotInstalls.Inc()
	n.log.Info().Uint64("slot", uint64(f.meta.Slot)).Uint64("bytes", f.meta.Size).Msg("installed the leader's snapshot")
}

// answerSkipped settles the calls waiting for commands in the slots an
// installed snapshot skipped. A command that changed the state has its
// result in the snapshot's duplicate table; a read (a linearizable get or
// list through the log) leaves no trace there, so it is proposed again,
// to be answered from a state at least as new as the one it missed — as
// is any other command not found, which either comes in a later slot or
// was lost (the state machine applies a retry once).
func (n *Node) answerSkipped() {
	for _, k := range n.waitingKeys(nil) {
		cs := n.waiters[k]
		if res, ok := n.sm.StoredResult(k.client, k.seq); ok {
			n.answer(k, statemachine.Op(cs[0].req.Op), res)
		} else if !cs[0].queued {
			_ = n.r.Propose(cs[0].cmd)
		}
	}
}

// valueBytesLimit is the state machine's own bound on a value. What a
// state machine accepts must be the same on every replica, or replicas
// diverge (and refuse each other's snapshots), so no per-node setting may
// decide it: Config.ValueBytesMax only bounds what a node admits from its
// clients, and must not exceed this.
const valueBytesLimit = 64 << 20

// smOptions are the state machine options every node uses: the same
// everywhere, whatever the node's Config.
func smOptions(Config) statemachine.SMOptions {
	return statemachine.SMOptions{ValueBytesMax: valueBytesLimit}
}

func (n *Node) smOptions() statemachine.SMOptions { return smOptions(n.cfg) }
