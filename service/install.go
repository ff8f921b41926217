package service

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wal"
	"github.com/paxosd/paxosd/wire"
)

// Installing a fetched snapshot holds one state in memory, not two. A node
// far behind fetches the leader's snapshot (snapfetch.go) and replaces its
// state machine with the snapshot's. Decoding the new state next to the
// old one would make the node's heap peak at both: with a million keys,
// 1 GB for states of 350 MB, far over the bound the project sets
// (2 × live data + 150 MiB). So the install goes in three steps:
//
//  1. Off the loop, the staged bytes are checked in full without keeping
//     the keys (checkStored: the CRC, the encoding's shape, and every
//     check the decoder makes): a damaged snapshot is refused while the
//     node still has its own state, which it goes on serving.
//  2. On the loop, if the snapshot is still news, the node drops its state
//     machine (Node.sm becomes nil) and decodes the snapshot off the loop.
//     Meanwhile it is "installing": it keeps its part in the protocol
//     (votes, writes, acknowledgements) but answers nothing from its state
//     — the reads it would serve locally are refused with ErrUnavailable
//     (retry, here or elsewhere), requests through the log wait for their
//     slot, and chosen slots past the snapshot's are kept to be applied
//     once the new state is in place (those at or below it are in it).
//  3. Back on the loop, the new state is swapped in and the install goes on
//     as it always did: the WAL writer installs the staged snapshot in one
//     synced batch, the replica is told, and the waiting calls whose slots
//     the snapshot skipped are answered.
//
// Nothing durable changes before step 3's WAL write, so a crash at any
// point restarts the node from its own snapshot and log. A decode that
// fails after step 1 passed (the disk changed the bytes in between, or
// memory ran out) stops the node (errInstallFailed): it must not run on
// without a state, and a restart loads its own state from its data
// directory, which the install has not touched, and fetches again. A
// reload in place would do the same with more code, in a case that needs
// a damaged disk or a bug, where stopping with one clear line is better.

// errInstallFailed marks a node stopped because the snapshot it was
// installing could not be decoded after it had dropped its own state.
var errInstallFailed = errors.New("service: snapshot install failed")

// installState is a fetched snapshot on its way in (Node.install; nil:
// none).
type installState struct {
	from paxos.NodeID // the member it came from
	meta wal.SnapshotMeta
	info statemachine.SnapshotInfo // what checkStored found in it
	// active: the node's state machine is dropped and the snapshot is
	// being decoded. Until then the install waits for the background jobs
	// that hold a view of the state (a snapshot's encoding, a state-check
	// hash) to end, and starts no new ones: a view shares the state's keys,
	// so dropping the state while one runs would free nothing until it
	// ends. Those jobs take seconds at most, and cancelling them would
	// throw away a snapshot's worth of writing.
	active bool
	start  time.Time // when the decode started
	// The dropped state's figures, for the answers that report them while
	// active (status, the status page, metrics).
	applied         paxos.Slot
	revision, clock uint64
	clusterID       []byte
	voters          []uint64
	// later holds the chosen slots past meta.Slot that the replica
	// delivered while active, to apply on the new state.
	later []paxos.Entry
}

// snapshotStaged takes a fetch's outcome on the loop: the leader's
// snapshot staged in full and checked (or an error).
func (n *Node) snapshotStaged(from paxos.NodeID, meta wal.SnapshotMeta, info statemachine.SnapshotInfo, err error) {
	n.snapshotTimed("fetch", n.snap.fetchStart)
	if err != nil {
		n.snap.fetching = false
		n.m.snapshotFailures.WithLabelValues("fetch").Inc()
		n.log.Warn().Err(err).Msg("snapshot transfer failed; it resumes when the leader offers it again")
		return
	}
	n.install = &installState{from: from, meta: meta, info: info}
	n.beginInstall()
}

// beginInstall drops the state and starts decoding the staged snapshot, if
// the install is still needed and no background job holds a view of the
// state. Called when a fetch ends and when such a job ends.
func (n *Node) beginInstall() {
	in := n.install
	if in == nil || in.active || n.failed != nil {
		return
	}
	if commit := n.r.Status().Commit; in.meta.Slot <= commit {
		n.install, n.snap.fetching = nil, false
		n.log.Info().Uint64("snapshot_slot", uint64(in.meta.Slot)).Uint64("commit", uint64(commit)).Msg("fetched snapshot no longer needed")
		return
	}
	if n.snap.building || n.check.hashing > 0 {
		return // snapshotWritten or the state check's continuation calls again
	}
	sm := n.sm
	in.active, in.start = true, n.clock.Now()
	in.applied, in.revision, in.clock = sm.Applied(), sm.Revision(), sm.Clock()
	in.clusterID = append([]byte(nil), sm.ClusterID()...)
	in.voters = append([]uint64(nil), sm.Voters()...)
	n.sm = nil
	// The memory limit follows the state the node is building.
	n.liveBytes.Store(in.info.LiveBytes)
	// A stream would get nothing until the swap, then maybe find its
	// revision gone from the new state's history: it resumes elsewhere.
	n.endStreams(wire.ErrUnavailable, n.installingMessage())
	if n.obs != nil {
		n.obs.installing(in.meta.Slot)
	}
	n.log.Info().Str("snapshot", in.meta.String()).Int("keys", in.info.Keys).Uint64("live_bytes", in.info.LiveBytes).
		Uint64("applied", uint64(in.applied)).Msg("installing the leader's snapshot: this node's state is dropped while the snapshot's is decoded")
	store, meta, opts := n.store, in.meta, n.smOptions()
	n.bg.runYielding(func(context.Context) func() {
		// The old state is garbage now, but the collector would notice
		// only once the heap reaches its goal, about twice the heap live
		// at its last cycle, which counted the old state: the new one
		// would be decoded into fresh memory next to it, and the process
		// would peak at both states after all. One collection now lets
		// the decode reuse the old state's memory.
		runtime.GC()
		sm, err := restoreStored(store.OpenStaged, meta, opts)
		if err == nil && sm.Applied() != meta.Slot {
			err = fmt.Errorf("it holds the state as of slot %d", sm.Applied())
		}
		return func() { n.installDecoded(sm, err) }
	})
}

// installing reports whether the node has dropped its state to install a
// snapshot: it has no state machine until installDecoded.
func (n *Node) installing() bool { return n.sm == nil }

// holdDecided takes the chosen slots the replica delivers while the node
// installs: those at or below the snapshot's slot are in the snapshot,
// the later ones wait for the new state.
func (n *Node) holdDecided(decided []paxos.Entry) {
	in := n.install
	for _, e := range decided {
		if e.Slot > in.meta.Slot {
			in.later = append(in.later, e)
		}
	}
}

// installDecoded swaps in the state decoded from the staged snapshot, and
// installs the snapshot durably.
func (n *Node) installDecoded(sm *statemachine.StateMachine, err error) {
	in := n.install
	if in == nil || !in.active {
		return
	}
	n.snapshotTimed("install", in.start)
	if err != nil {
		n.m.snapshotFailures.WithLabelValues("install").Inc()
		n.fail(fmt.Errorf("%w: node %d cannot decode the snapshot %s of node %d, which it checked before dropping its own state: %v; "+
			"its data directory is as it was before the fetch: a restart loads its own state from it and fetches again",
			errInstallFailed, n.cfg.ID, in.meta, in.from, err))
		return
	}
	n.install = nil
	sm.SetBootstrapMembers(n.cfg.bootstrapMembers())
	n.sm = sm
	n.syncMembers()
	n.liveBytes.Store(sm.Quota().Used)
	n.publishAuth()
	if n.obs != nil {
		n.obs.installed(sm)
	}
	n.snap.fetching = false
	if commit := n.r.Status().Commit; in.meta.Slot > commit {
		// The install is queued behind every write submitted so far,
		// and every later write (and every Promise or Accepted held for
		// durability) waits behind it, so the replica may move on at
		// once.
		if !n.submit(walJob{install: &installJob{meta: in.meta}}) {
			return
		}
		n.jobCommits = append(n.jobCommits, jobCommit{n.submitted, in.meta.Slot})
		// The install reads the staging area when the WAL writer gets to
		// it: no other fetch may stage over it before then
		// (snapshotDurable ends the fetch).
		n.snap.fetching, n.snap.installSeq = true, n.submitted
		n.r.Restore(in.meta.Slot, sm.Members())
		n.snap.last = max(n.snap.last, in.meta.Slot)
		n.snap.size, n.snap.logBytes = in.meta.Size, 0
	}
	// Otherwise the log caught up past the snapshot while it was decoded
	// (from a leader that still held the slots): the node's own snapshot
	// and log cover every slot to the watermark already, so nothing is
	// written, and the slots past the snapshot's were kept in later.
	n.stateInstalled(in.from)
	n.apply(in.later)
	n.answerSkipped()
	n.startSaves()
	n.m.snapshotInstalls.Inc()
	n.log.Info().Uint64("slot", uint64(in.meta.Slot)).Uint64("bytes", in.meta.Size).Int("later_slots", len(in.later)).
		Dur("decode_ms", n.clock.Now().Sub(in.start)).Msg("installed the leader's snapshot")
}

// installingMessage is the refusal of what needs the state while the node
// installs a snapshot.
func (n *Node) installingMessage() string {
	return fmt.Sprintf("node %d is installing a snapshot of the leader's state and has no state to read from until it is in place; retry, here or on another node", n.cfg.ID)
}

// refuseWhileInstalling answers, while the node installs a snapshot, a
// request it would answer from its own state without the log (a
// serializable read, a page at a pinned revision, a list of sessions or
// locks, the quota, a watch or observe): ErrUnavailable, which clients
// retry. It reports whether it did. Requests through the log wait for
// their slot instead; a linearizable read never takes the lease path
// meanwhile (leaseUntil).
func (n *Node) refuseWhileInstalling(c *call) bool {
	if !n.installing() {
		return false
	}
	q := c.req
	switch {
	case q.Op == wire.OpSessionList, q.Op == wire.OpLockList, q.Op == wire.OpQuotaGet, q.Op.IsStream(),
		q.Serializable && (q.Op == wire.OpGet || q.Op == wire.OpList), paged(q) && q.Revision != 0:
	default:
		return false
	}
	c.reply(&wire.Response{Err: wire.ErrUnavailable, ErrMsg: n.installingMessage(), StreamEnd: q.Op.IsStream()})
	return true
}

// appliedSlot is the slot the node's state is as of; while it installs a
// snapshot, the dropped state's.
func (n *Node) appliedSlot() paxos.Slot {
	if n.installing() {
		return n.install.applied
	}
	return n.sm.Applied()
}

// stateClock is the cluster clock of the node's state; while it installs
// a snapshot, the dropped state's (older: the leader's clock only ever
// takes it as a floor).
func (n *Node) stateClock() uint64 {
	if n.installing() {
		return n.install.clock
	}
	return n.sm.Clock()
}

// identity returns the cluster's uuid and the voters the node's state
// records; while it installs a snapshot, the dropped state's (the uuid
// never changes once set, and voters are only ever added).
func (n *Node) identity() ([]byte, []uint64) {
	if n.installing() {
		return n.install.clusterID, n.install.voters
	}
	return n.sm.ClusterID(), n.sm.Voters()
}
