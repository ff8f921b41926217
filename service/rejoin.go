package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/wal"
	"github.com/paxosd/paxosd/wire"
)

// A member whose data directory was lost has forgotten the promises and
// votes it made. Voting again as if it had made none could let two values
// be chosen for one slot, so it rejoins instead (Config.Join = JoinRejoin):
//
//  1. It records durably that it is rejoining, before anything else, so a
//     crash mid-rejoin resumes the rejoin rather than voting.
//  2. It asks every other member for its promise, the highest slot it
//     holds a value for, its watermark and its window. Every one must
//     answer: any quorum that counted one of the forgotten promises or
//     votes shares a member with them. The members are those of the
//     configurations it knows (current and next): at first those it was
//     started with (--peers, or the cluster's answer to --rejoin --join),
//     then, as it catches up, those of every configuration it applies —
//     a member it had not asked is asked before the rejoin ends, and the
//     target rises with its answer (step 4 explains why that suffices).
//  3. It raises its promise to the highest promise or ballot reported (so
//     it never accepts under a ballot it may have promised away), and sets
//     its target: the highest slot any of them holds plus the largest
//     window, past every slot that can hold a vote it forgot (a leader
//     proposes at most a window beyond its watermark, every chosen slot
//     is held by some other member, and so is anything a later leader
//     re-proposed). The raised promise goes to the journal before the
//     target, so a target on disk always has its promise there too.
//  4. It follows the leader and catches up (log or snapshot) but sends no
//     Promise, Accepted, PreVote or Prepare — nor, until its raised promise
//     is durable, any acknowledgement a leader's lease could count — until
//     its durable watermark reaches the target and it has applied the
//     slots up to it (proposing empty commands to get there if the
//     cluster is idle), and every member of the configurations it then
//     knows has answered; then it clears the record — in the journal,
//     after the writes that hold the slots up to the target — and once
//     that is durable, votes again.
//
// Why the members it knows once it has applied up to the target T are
// enough, however stale the membership it started with: a slot S > T it
// may have voted on is governed by a configuration chosen at S-α or
// before (paxos.ActivationSlots). If that is at or below T, the node has
// applied it, so it is the current or the next configuration and its
// members were asked: one of them holds S (a chosen or re-proposed slot)
// or S is within a window of what one holds, so S <= T, a contradiction.
// If it is above T, a member holds a slot above T, which T exceeds.

// rejoinState is the loop's view of a rejoin.
type rejoinState struct {
	active bool
	target paxos.Slot // wal.RejoinUnknown until the probe answers
	ticks  int        // ticks spent waiting for the target
	// answered holds the probe's answers so far; probeLogged when the
	// probe last said whom it waits for.
	answered    map[paxos.NodeID]wire.NodeStatus
	probeLogged time.Time
	// counted are the members whose answers the target covers; probing is
	// set while a round of the probe is out.
	counted map[paxos.NodeID]bool
	probing bool
	// targetSeq is the write that stored the target (after the raised
	// promise); durableCommit the highest watermark known durable;
	// clearing is set once the clearing of the record is submitted, as
	// clearSeq.
	targetSeq     uint64
	durableCommit paxos.Slot
	clearing      bool
	clearSeq      uint64
}

// openStore opens the data directory as cfg.Join allows and reports
// whether the node is rejoining, and whether it starts gated
// (bootstrap.go). The one-shot flags are harmless on a store that holds
// its node's state: --new-cluster does nothing there, and --rejoin only
// warns.
func openStore(cfg Config) (*wal.Store, rejoinState, bootstrapState, error) {
	id := wal.Identity{ClusterID: cfg.ClusterID, NodeID: cfg.ID}
	store, err := wal.Open(cfg.DataDir, id, wal.Options{FS: cfg.FS, MemTableBytes: cfg.MemTableBytes, NoSync: cfg.NoSync, MustExist: cfg.Join == JoinExisting})
	if err != nil {
		if cfg.Join == JoinExisting && wal.IsNoStore(err) {
			return nil, rejoinState{}, bootstrapState{}, noStoreError{fmt.Sprintf("node %d: data directory %s holds no state; a member that ran before and lost its data must not vote with the promises it forgot: "+
				"start it with --rejoin to rebuild it from the other members (it votes again once caught up), or, if this is a new cluster, start each node the first time with --new-cluster",
				cfg.ID, cfg.DataDir)}
		}
		return nil, rejoinState{}, bootstrapState{}, err
	}
	rejoin, boot, err := vetStore(cfg, store)
	if err != nil {
		store.Close()
		return nil, rejoinState{}, bootstrapState{}, err
	}
	return store, rejoin, boot, nil
}

// noStoreError is openStore's refusal of a missing store; it matches
// wal.ErrNoStore.
type noStoreError struct{ msg string }

func (e noStoreError) Error() string        { return e.msg }
func (e noStoreError) Is(target error) bool { return target == wal.ErrNoStore }

// vetStore decides how a node starts on its opened store: as it left off,
// rejoining, or gated until it knows whether it may vote.
func vetStore(cfg Config, store *wal.Store) (rejoinState, bootstrapState, error) {
	target, rejoining, err := store.Rejoin()
	if err != nil {
		return rejoinState{}, bootstrapState{}, err
	}
	if rejoining {
		if cfg.Join != JoinRejoin {
			cfg.Logger.Info().Uint32("node", uint32(cfg.ID)).Msg("a rejoin is under way in this data directory: resuming it (the node votes once caught up)")
		}
		return rejoinState{active: true, target: target}, bootstrapState{}, nil
	}
	vetted, err := storeVetted(store)
	if err != nil {
		return rejoinState{}, bootstrapState{}, err
	}
	switch {
	case vetted && cfg.Join == JoinRejoin:
		cfg.Logger.Warn().Uint32("node", uint32(cfg.ID)).Str("data_dir", cfg.DataDir).
			Msg("--rejoin ignored: the data directory holds this node's state (--rejoin is for a member whose data directory was lost; drop it from the command line)")
	case vetted:
	case cfg.Join == JoinRejoin:
		if err := store.SetRejoin(wal.RejoinUnknown); err != nil {
			return rejoinState{}, bootstrapState{}, err
		}
		return rejoinState{active: true, target: wal.RejoinUnknown}, bootstrapState{}, nil
	case cfg.Join == JoinCreate:
		// A cluster new by construction (paxosd dev, tests): no gate.
		if err := store.SetFormed(); err != nil {
			return rejoinState{}, bootstrapState{}, err
		}
	default:
		return rejoinState{}, bootstrapState{active: true, mayForm: cfg.Join == JoinForm}, nil
	}
	return rejoinState{}, bootstrapState{}, nil
}

// storeVetted reports whether the store shows its node may vote: it holds
// a promise, an entry, a watermark or a snapshot (its node took part), or
// the mark that its node formed the cluster. Anything else may be a store
// re-created after its directory was wiped.
func storeVetted(store *wal.Store) (bool, error) {
	if formed, err := store.Formed(); err != nil || formed {
		return formed, err
	}
	st, err := store.LoadTail()
	if err != nil {
		return false, err
	}
	if !st.Promised.IsZero() || len(st.Entries) > 0 || st.Commit > 0 || st.Truncated > 0 {
		return true, nil
	}
	meta, err := store.Snapshot()
	if errors.Is(err, wal.ErrNoSnapshot) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return meta.Slot > 0, nil
}

// muted reports whether a rejoining node must not send m: a vote, or a
// request for one, until it has caught up; and an acknowledgement of a
// leader until its raised promise is durable. A leader's lease counts the
// acknowledgements of its heartbeats, each a pledge not to help anyone
// else take over for an election timeout — a pledge worth nothing from a
// node that has forgotten the newer leader it promised (it cannot refuse
// the deposed one), until its promise is raised above every promise the
// others hold.
func (n *Node) muted(m paxos.Message) bool {
	if n.check.diverged != 0 {
		// A node whose state diverged takes no further part: its votes
		// could carry its wrong log to others (statecheck.go).
		switch m.Type {
		case paxos.MsgPromise, paxos.MsgAccepted, paxos.MsgPreVote, paxos.MsgPrepare:
			return true
		}
	}
	if n.boot.active {
		return true // gated: nothing leaves (bootstrap.go)
	}
	if !n.rejoin.active {
		return false
	}
	switch m.Type {
	case paxos.MsgPromise, paxos.MsgAccepted, paxos.MsgPreVote, paxos.MsgPrepare:
		return true
	case paxos.MsgHeartbeatAck:
		return n.rejoin.target == wal.RejoinUnknown || n.durable < n.rejoin.targetSeq
	}
	return false
}

// probeRetry is how long the probe waits before asking again the members
// that have not answered.
const probeRetry = 500 * time.Millisecond

// probeForRejoin asks every other member whose answer the target does
// not cover yet for its status (after a delay), and goes on until all
// have; then it sets (or raises) the target.
func (n *Node) probeForRejoin(after time.Duration) {
	ask := n.unasked()
	n.rejoin.probing = true
	n.bg.run(after, func(ctx context.Context) func() {
		got := map[paxos.NodeID]wire.NodeStatus{}
		for _, id := range ask {
			if st, err := n.askStatus(ctx, id); err == nil {
				got[id] = st
			}
		}
		return func() { n.onProbeAnswers(got) }
	})
}

// unasked returns the other members, as this node knows the membership,
// that have neither answered this round nor been counted in the target.
func (n *Node) unasked() []paxos.NodeID {
	var ids []paxos.NodeID
	for _, id := range n.book.members() {
		if id == n.cfg.ID || n.rejoin.counted[id] {
			continue
		}
		if _, ok := n.rejoin.answered[id]; !ok {
			ids = append(ids, id)
		}
	}
	return ids
}

// onProbeAnswers records a round of the probe's answers.
func (n *Node) onProbeAnswers(got map[paxos.NodeID]wire.NodeStatus) {
	n.rejoin.probing = false
	if !n.rejoin.active || n.rejoin.clearing {
		return
	}
	if n.rejoin.answered == nil {
		n.rejoin.answered = map[paxos.NodeID]wire.NodeStatus{}
	}
	for id, st := range got {
		n.rejoin.answered[id] = st
	}
	missing := n.unasked()
	if len(missing) == 0 {
		n.setRejoinTarget()
		return
	}
	if now := n.clock.Now(); now.Sub(n.rejoin.probeLogged) > 5*time.Second {
		n.rejoin.probeLogged = now
		n.log.Warn().Ints("waiting_for", idsInts(missing)).Msg("rejoining: every other member must answer before this node may vote again")
	}
	n.probeForRejoin(probeRetry)
}

// askStatus asks member id for its own status.
func (n *Node) askStatus(ctx context.Context, id paxos.NodeID) (wire.NodeStatus, error) {
	st, _, err := n.probeStatus(ctx, id)
	return st, err
}

// setRejoinTarget raises the promise and sets the target from the
// members' answers (see the steps above); a target set before only
// rises.
func (n *Node) setRejoinTarget() {
	var ballot paxos.Ballot
	var last paxos.Slot
	window := uint64(n.cfg.WindowSlots)
	for _, st := range n.rejoin.answered {
		ballot = paxos.MaxBallot(ballot, paxos.MaxBallot(st.Promised, st.Ballot))
		last = max(last, st.AcceptedMax, st.Commit)
		window = max(window, st.WindowSlots)
	}
	n.r.RaisePromise(ballot)
	n.processReady() // the raised promise goes to the journal first
	target := last + paxos.Slot(window)
	if n.rejoin.target != wal.RejoinUnknown {
		target = max(target, n.rejoin.target)
	}
	if !n.submit(walJob{rejoin: &rejoinJob{set: true, target: target}}) {
		return
	}
	if n.rejoin.counted == nil {
		n.rejoin.counted = map[paxos.NodeID]bool{}
	}
	for id := range n.rejoin.answered {
		n.rejoin.counted[id] = true
	}
	n.rejoin.target, n.rejoin.targetSeq, n.rejoin.answered = target, n.submitted, nil
	n.log.Info().Str("ballot", ballot.String()).Uint64("target", uint64(target)).Ints("asked", sortedInts(n.rejoin.counted)).
		Msg("rejoining: promise raised; this node votes again once its watermark reaches the target")
}

// sortedInts returns the ids of set in order, for a log line.
func sortedInts(set map[paxos.NodeID]bool) []int {
	ids := make([]int, 0, len(set))
	for id := range set {
		ids = append(ids, int(id))
	}
	slices.Sort(ids)
	return ids
}

// rejoinFiller proposes an empty command each tick while the rejoin waits
// for the watermark to pass its target: in an idle cluster nothing else
// would move it there. An empty command is rejected by every replica alike
// (ErrInvalid, no client, no effect but the slot it takes).
func (n *Node) rejoinFiller() {
	if !n.rejoin.active || n.rejoin.target == wal.RejoinUnknown {
		return
	}
	st := n.r.Status()
	if st.Commit >= n.rejoin.target {
		return
	}
	_ = n.r.Propose([]byte{})
	if n.rejoin.ticks++; n.rejoin.ticks%rejoinStallTicks == 0 {
		// Only a quorum of voting members moves the watermark. If another
		// member is rejoining too, a majority has lost its state and this
		// waits for good: say so.
		n.log.Warn().Uint64("commit", uint64(st.Commit)).Uint64("target", uint64(n.rejoin.target)).Uint32("leader", uint32(st.Leader)).
			Msg("rejoining: still waiting for the watermark to reach the target; it takes a quorum of members that vote. " +
				"If another member is rejoining too, a majority of the cluster lost its data: restore one of them from a backup")
	}
}

// rejoinStallTicks is how often a rejoin that has not finished says so.
const rejoinStallTicks = 1000

// checkRejoin ends the rejoin: once the durable watermark reaches the
// target, the node has applied up to it and every member of the
// membership it then knows has answered (asking those it had not, which
// may raise the target), it submits the clearing of the record, and once
// that is durable the node votes again.
func (n *Node) checkRejoin() {
	switch {
	case !n.rejoin.active || n.rejoin.target == wal.RejoinUnknown:
	case !n.rejoin.clearing:
		if n.rejoin.probing {
			return
		}
		if ask := n.unasked(); len(ask) > 0 {
			n.log.Info().Ints("asking", idsInts(ask)).
				Msg("rejoining: the membership names members the probe has not asked: asking them before this node votes")
			n.probeForRejoin(0)
			return
		}
		if n.rejoin.durableCommit >= n.rejoin.target && n.appliedSlot() >= n.rejoin.target {
			if n.submit(walJob{rejoin: &rejoinJob{}}) {
				n.rejoin.clearing, n.rejoin.clearSeq = true, n.submitted
			}
		}
	case n.durable >= n.rejoin.clearSeq:
		n.rejoin.active = false
		n.log.Info().Uint64("commit", uint64(n.r.Status().Commit)).Msg("rejoined: this node votes again")
	}
}

// idsInts converts ids for a log line.
func idsInts(ids []paxos.NodeID) []int {
	out := make([]int, len(ids))
	for i, id := range ids {
		out[i] = int(id)
	}
	return out
}
