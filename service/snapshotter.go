package service

import (
	"context"
	"time"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/proposer"
	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wal"
)

// Snapshots keep the data directory bounded. Every Config.SnapshotEntries
// applied slots the loop freezes the state machine (a SnapshotView: O(1)
// for the keys, a copy of the small tables) and a background job streams
// it into the store under a generation of its own, chunk by chunk, while
// the loop goes on applying: the loop never encodes a snapshot, and no
// snapshot is ever whole in memory. Back on the loop, the finished
// snapshot is handed to the WAL writer, in order with the Persists: one
// synced batch makes it the stored one and deletes the log below it (but
// for SnapshotKeepEntries slots). Once that batch is durable the replica
// is told (Replica.Truncate), and from then on sends a follower that lacks
// the deleted slots a MsgSnapshot; the follower fetches the snapshot
// (snapfetch.go), checks it, drops its own state, decodes the snapshot off
// the loop as it streams from its store, and installs it (install.go).

// snapshotLargeBytes is the snapshot size from which a node waits for half
// a snapshot's worth of log before taking the next (maybeSnapshot).
const snapshotLargeBytes = 32 << 20

// snapshotJob is a snapshot for the WAL writer to commit.
type snapshotJob struct {
	slot     paxos.Slot
	w        *wal.SnapshotWriter // finished: the snapshot's chunks are stored
	truncate paxos.Slot
	took     time.Duration
	started  time.Time // when the loop froze the state (the node's clock)
	// stale is set by the WAL writer when a newer snapshot was installed
	// meanwhile: this one was discarded and the log not truncated.
	stale bool
}

// installJob is a fetched snapshot, staged in full and decoded, for the
// WAL writer to install (install.go).
type installJob struct {
	meta wal.SnapshotMeta
}

// snapshotState is the loop's bookkeeping of snapshots.
type snapshotState struct {
	// last is the slot of the newest snapshot taken or installed.
	last paxos.Slot
	// building is set while a background job encodes a view.
	building bool
	// size is the newest snapshot's size in bytes, logBytes the bytes of
	// the values applied since the last view was taken: a snapshot waits
	// until the log it lets go of is worth half of one (maybeSnapshot).
	size, logBytes uint64
	// inFlight is the snapshot job submitted as seq, not yet durable.
	inFlight *snapshotJob
	seq      uint64
	// fetching is set while a fetch of the leader's snapshot runs, which
	// began at fetchStart, and until its install, submitted as
	// installSeq (0: none), is durable.
	fetching   bool
	fetchStart time.Time
	installSeq uint64
	// servedAt is when the loop last saw a member read a chunk of this
	// node's snapshot, served the count of chunks read then
	// (servingSnapshot).
	servedAt time.Time
	served   uint64
	// cutNoted is, per member, the watermark at which a snapshot last cut
	// the log below it (noteLogCutBelowMember).
	cutNoted map[paxos.NodeID]paxos.Slot
}

// snapshotServeGrace is how long after a member last read a chunk of this
// node's snapshot the node holds its next snapshot back (servingSnapshot):
// the member still checks and decodes what it fetched (a few seconds at a
// million keys, more for larger values), then catches up from the log
// after the snapshot's slot, which the next snapshot would delete.
const snapshotServeGrace = 60 * time.Second

// servingSnapshot reports whether a member read a chunk of this node's
// snapshot in the last snapshotServeGrace.
//
// A node that takes its next snapshot while a member fetches the current
// one deletes both what the member is reading (the fetch starts over with
// the new one) and the log after the old one's slot, beyond the
// SnapshotKeepEntries it keeps; the member, once it has installed the old
// one, then lacks the log after it and must fetch and install a whole
// snapshot again. Under load a million keys' transfer and decode outlast
// those 5,000 slots: a follower down for 5 minutes installed twice in a
// row (make bench-scale). So the next snapshot waits for the transfer and
// the grace after it, up to twice the log it would otherwise let grow
// (maybeSnapshot): a member that fetches forever cannot keep the log from
// being truncated, and the data directory stays within its bound.
func (n *Node) servingSnapshot() bool {
	if c := n.chunksServed.Load(); c != n.snap.served {
		n.snap.served, n.snap.servedAt = c, n.clock.Now()
	}
	return !n.snap.servedAt.IsZero() && n.clock.Now().Sub(n.snap.servedAt) < snapshotServeGrace
}

// memberBehindLog reports whether this node leads and a member it heard
// from lately reports a watermark below where a snapshot at applied would
// cut the log: one catching up (after a restart, or a snapshot fetched
// from another member) that would lack the log after what it has. The
// leader serves a member's catch-up from its log, but a member may fetch
// its snapshot from another member (whichever offered first) and so
// never read the leader's (servingSnapshot): a follower down for 5
// minutes installed another member's snapshot, found the leader's log
// cut past it meanwhile, and fetched and decoded a second one, its
// catch-up 16.9 s long (make bench-scale OUTAGE=5m). A member not heard
// from for a few election timeouts (down) holds nothing back, and one
// that lags for good only doubles the log to wait for (maybeSnapshot).
func (n *Node) memberBehindLog(applied paxos.Slot) bool {
	if n.r.Status().Role != proposer.Leader {
		return false
	}
	cut := n.logCutAt(applied)
	for id, c := range n.peerCommit {
		if c < cut && n.tickCount-n.peerHeard[id] <= memberHeardTicks*n.cfg.ElectionTicks && n.book.has(id) {
			return true
		}
	}
	return false
}

// logCutAt is where a snapshot at applied cuts the log: it keeps
// SnapshotKeepEntries slots below the snapshot's.
func (n *Node) logCutAt(applied paxos.Slot) paxos.Slot {
	return applied - min(applied, paxos.Slot(n.cfg.SnapshotKeepEntries))
}

// noteLogCutBelowMember logs, on a leader about to take a snapshot at
// applied, each member whose last reported watermark is below where it
// cuts the log: it will need a snapshot to catch up. It says when the
// member was last heard from, so an operator (and a benchmark) can tell a
// member down from one the hold-back (memberBehindLog) let go. Once per
// member and watermark: a member down for an hour is one line, not one
// per snapshot.
func (n *Node) noteLogCutBelowMember(applied paxos.Slot) {
	if n.r.Status().Role != proposer.Leader {
		return
	}
	cut := n.logCutAt(applied)
	for id, c := range n.peerCommit {
		if c >= cut || !n.book.has(id) || n.snap.cutNoted[id] == c {
			continue
		}
		if n.snap.cutNoted == nil {
			n.snap.cutNoted = map[paxos.NodeID]paxos.Slot{}
		}
		n.snap.cutNoted[id] = c
		n.log.Info().Uint64("member", uint64(id)).Uint64("member_commit", uint64(c)).Uint64("log_cut_to", uint64(cut)).
			Int64("heard_ms_ago", int64(n.tickCount-n.peerHeard[id])*n.cfg.TickInterval.Milliseconds()).
			Msg("snapshot cuts the log below a member's watermark: it will need a snapshot to catch up")
	}
}

// memberHeardTicks is, in election timeouts, how lately a member must have
// reported its watermark to hold the leader's snapshot back: 1.5 s at the
// defaults. Three (450 ms) let a member catching up go while its heap was
// at its limit and it answered slowly: it found the log cut past what it
// had, and fetched a second snapshot (make bench-scale OUTAGE=5m: last
// heard 460 ms before the cut). A member down holds the snapshot back that
// long, no longer.
const memberHeardTicks = 10

// catchUpSlots is how far behind the leader's commit a node applies when
// it is catching up (after a restart, an outage or an install) rather
// than following: a following member applies within a few slots of it.
const catchUpSlots = 1000

// catchingUp reports whether a node that applied up to applied is catching
// up with a leader that announced leaderCommit.
//
// A snapshot taken while a node catches up holds its view for as long as
// the encoding takes, and catching up applies as fast as the node can, so
// the encoding gets little CPU and lasts: a follower rejoining after an
// outage took its first snapshot 20 s into its catch-up, and every key
// written meanwhile kept its old value alive in the view and copied its
// tree node, 170 MB over its memory bound at a million keys (make
// bench-scale). The catch-up applies the log it would let go of soon
// enough: such a node waits for more of it (catchUpSnapshotWait), and
// takes the snapshot once it follows again.
func catchingUp(applied, leaderCommit paxos.Slot) bool {
	return leaderCommit > applied+catchUpSlots
}

// catchUpSnapshotWait is how many times the usual log a node catching up
// waits for before it snapshots. Twice was not enough: a rejoin after a
// five-minute outage at a million keys installs a snapshot and then
// catches up on 110,000 slots or more, which passed twice the log 20 s in,
// and the snapshot's view kept about 100 MB of overwritten values alive
// while the catch-up went on (make bench-scale OUTAGE=5m, session 21:
// 727 MB against a bound of 680). Three times still keeps the data
// directory within its bound: the log waited for (one and a half
// snapshots) plus the snapshot kept plus the one being written is three
// and a half snapshots' size, about 1,030 MB at a million keys against
// 3 × live data + 256 MiB, 1,060 MB.
const catchUpSnapshotWait = 3

// maybeSnapshot starts a snapshot when SnapshotEntries slots were applied
// since the last one, none is under way, and, once snapshots are large
// (snapshotLargeBytes), the values applied since add up to half the last
// snapshot's size; while a member fetches this node's snapshot
// (servingSnapshot) or, on a leader, a member lags behind the log the
// snapshot would cut (memberBehindLog), twice both; while this node
// catches up (catchingUp), three times (catchUpSnapshotWait).
//
// The second condition keeps snapshots of a large state from costing more
// than the log they replace: with a million keys a snapshot is 290 MB
// while 10,000 slots of puts are 30 MB, and writing (and compacting) the
// whole state every 10,000 slots would take most of the disk's and the
// CPU's time. Waiting for half a snapshot's worth of log bounds what
// snapshots write to twice what the log writes, and the data directory to
// about a snapshot and a half plus the one being written. A small state
// snapshots by the slot count alone: it costs little, and a follower
// behind catches up from a short log.
func (n *Node) maybeSnapshot() {
	if n.install != nil {
		return // it would delay (or, once the state is dropped, miss) the install (install.go)
	}
	applied := n.sm.Applied()
	due := func(wait uint64) bool {
		return applied >= n.snap.last+paxos.Slot(wait*uint64(n.cfg.SnapshotEntries)) &&
			(n.snap.size < snapshotLargeBytes || n.snap.logBytes >= wait*n.snap.size/2)
	}
	// servingSnapshot notes the chunks served on every turn (its grace
	// counts from when they were seen).
	serving := n.servingSnapshot()
	if n.snap.building || n.snap.inFlight != nil || !due(1) {
		return
	}
	// This node catching up triples the log to wait for; a member
	// fetching this node's snapshot, or a member behind the log this
	// snapshot would cut, doubles it (asked only once a snapshot is due:
	// they read the replica's status).
	if catchingUp(applied, n.r.Status().LeaderCommit) && !due(catchUpSnapshotWait) {
		return
	}
	if (serving || n.memberBehindLog(applied)) && !due(2) {
		return
	}
	n.noteLogCutBelowMember(applied)
	n.snap.logBytes = 0
	start := n.clock.Now()
	view, err := n.sm.View()
	n.snapshotTimed("view", start)
	if err != nil {
		n.m.snapshotFailures.WithLabelValues("encode").Inc()
		n.log.Error().Err(err).Uint64("slot", uint64(applied)).Msg("cannot take a snapshot; the log keeps growing until the next attempt")
		n.snap.last = applied
		return
	}
	n.snap.building = true
	store := n.store
	n.bg.run(0, func(ctx context.Context) func() {
		encodeStart := n.clock.Now()
		w, err := store.CreateSnapshot(applied)
		if err == nil {
			if _, err = view.WriteTo(w); err == nil {
				_, err = w.Finish()
			}
			if err != nil {
				w.Abort()
			}
		}
		took := n.clock.Now().Sub(encodeStart)
		return func() { n.snapshotWritten(view, w, err, start, took) }
	})
}

// snapshotWritten takes a snapshot that a background job has written (or
// failed to) back on the loop, and submits its commit.
func (n *Node) snapshotWritten(view *statemachine.SnapshotView, w *wal.SnapshotWriter, err error, start time.Time, took time.Duration) {
	n.snap.building = false
	defer n.beginInstall() // an install may have waited for the view to go
	slot := view.Applied()
	n.m.snapshotSeconds.WithLabelValues("encode").Observe(took.Seconds())
	if err != nil {
		n.m.snapshotFailures.WithLabelValues("encode").Inc()
		n.log.Error().Err(err).Uint64("slot", uint64(slot)).Msg("cannot write a snapshot; the log keeps growing until the next attempt")
		n.snap.last = max(n.snap.last, slot)
		return
	}
	if slot <= n.snap.last { // a snapshot from the leader was installed meanwhile
		w.Abort()
		return
	}
	meta := w.Meta()
	if n.obs != nil {
		n.obs.snapshotted(slot, meta)
	}
	job := &snapshotJob{slot: slot, w: w, truncate: n.logCutAt(slot), started: start}
	if !n.submit(walJob{snap: job}) {
		return
	}
	n.snap.inFlight, n.snap.seq = job, n.submitted
	n.log.Debug().Uint64("slot", uint64(slot)).Uint64("bytes", meta.Size).Int("keys", view.Keys()).
		Dur("encode_ms", took).Msg("snapshot written, commit submitted")
}

// snapshotDurable finishes the snapshot in flight once its write is
// durable (seq is the newest durable write): the log below it is gone, so
// the replica must stop offering it.
func (n *Node) snapshotDurable(seq uint64) {
	if n.snap.installSeq != 0 && seq >= n.snap.installSeq {
		n.snap.fetching, n.snap.installSeq = false, 0
	}
	job := n.snap.inFlight
	if job == nil || seq < n.snap.seq {
		return
	}
	n.snap.inFlight = nil
	if job.stale {
		return
	}
	n.snap.last = max(n.snap.last, job.slot)
	n.r.Truncate(job.truncate)
	n.m.snapshots.Inc()
	meta := job.w.Meta()
	n.snap.size = meta.Size
	n.m.snapshotBytes.Set(float64(meta.Size))
	n.m.snapshotSeconds.WithLabelValues("write").Observe(job.took.Seconds())
	n.snapshotTimed("take", job.started)
	n.log.Info().Uint64("slot", uint64(job.slot)).Uint64("bytes", meta.Size).
		Uint64("log_truncated_to", uint64(job.truncate)).Dur("write_ms", job.took).Msg("snapshot taken")
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
