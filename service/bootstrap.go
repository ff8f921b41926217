package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/wal"
	"github.com/paxosd/paxosd/wire"
)

// Safe bootstrap (docs/DESIGN.md, "Cluster identity and safe bootstrap").
//
// A store that holds nothing but its identity record — no promise, entry,
// snapshot, rejoin record, nor the mark that its node formed the cluster
// (wal.SetFormed) — is unvetted: it may be new, or re-created after its
// directory was wiped, and then its node has forgotten promises and votes.
// Its node must not vote until it knows which. Whatever flags it was given,
// it starts gated: its replica is frozen (no tick, no input, no output), it
// answers status saying it is fresh, and it asks every other member for
// its status each round:
//
//   - An answer carries the cluster's uuid: the cluster exists. If its
//     voters list this node, it voted before and lost its data: the node
//     stops with one line pointing at --rejoin. Otherwise it never voted
//     (a late first start): it joins by the rejoin procedure (rejoin.go),
//     which is safe whatever it forgot.
//   - An answer holds state without a uuid (a cluster still forming, or a
//     member of an older version): wait for the uuid.
//   - With --new-cluster (Config.Join = JoinForm), when every other member
//     answers fresh, three rounds in a row: the cluster is new. The node
//     durably marks its store formed, and once that is on disk, votes as
//     any member does. Every member, not a quorum: a fresh quorum can hold
//     a wiped voter (this node) and members that never voted while the
//     members holding the cluster's state are unreachable.
//
// Formation cannot deadlock while members crash: a formed node reports
// fresh until it has voted, and a node that voted was granted a PreVote by
// a quorum, every one of them formed and marked, who restart ungated.

// bootstrapRounds is how many rounds in a row must allow formation.
const bootstrapRounds = 3

// bootstrapEvery spaces the rounds.
const bootstrapEvery = 500 * time.Millisecond

// bootstrapState is the loop's view of a gated start.
type bootstrapState struct {
	active  bool // the node is gated
	mayForm bool // --new-cluster: the node may form a new cluster
	rounds  int  // consecutive rounds that allowed formation
	// forming is set once the formed mark is submitted, as formSeq;
	// formed once it is durable: the node then waits, still frozen, until
	// every other member has formed too (or barrierRounds pass), so that
	// none votes before a member that is a round behind has formed.
	forming, formed bool
	formSeq         uint64
	barrier         int
	logged          time.Time // when the gate last said what it waits for
}

// probeAnswer is one member's answer to a bootstrap round.
type probeAnswer struct {
	st      wire.NodeStatus
	reached bool // connected: an error then means it is paused or slow
	err     error
}

// bootstrapProbe asks every other member for its status (after a delay)
// and brings the answers back to the loop.
func (n *Node) bootstrapProbe(after time.Duration) {
	ids := n.otherMembers()
	n.bg.run(after, func(ctx context.Context) func() {
		got := make(map[paxos.NodeID]probeAnswer, len(ids))
		for _, id := range ids {
			st, reached, err := n.probeStatus(ctx, id)
			got[id] = probeAnswer{st: st, reached: reached, err: err}
		}
		return func() { n.onBootstrapAnswers(got) }
	})
}

// onBootstrapAnswers decides, from one round of answers, whether the gated
// node stops, joins, forms, or asks again.
func (n *Node) onBootstrapAnswers(got map[paxos.NodeID]probeAnswer) {
	if !n.boot.active || n.boot.forming && !n.boot.formed || n.failed != nil {
		return
	}
	if n.boot.formed {
		n.waitForOthersToForm(got)
		return
	}
	var uuid []byte
	var uuidFrom paxos.NodeID
	var fresh, stateful, silent, absent []int
	anyFormed := false
	for _, id := range n.otherMembers() {
		a := got[id]
		switch {
		case a.err != nil && a.reached:
			silent = append(silent, int(id))
		case a.err != nil:
			absent = append(absent, int(id))
		case len(a.st.ClusterUUID) > 0:
			if uuid != nil && string(uuid) != string(a.st.ClusterUUID) {
				n.fail(fmt.Errorf("%w: node %d: members %d and %d report different cluster uuids (%x, %x): --peers names members of two clusters", errRefusedStart, n.cfg.ID, uuidFrom, id, uuid, a.st.ClusterUUID))
				return
			}
			uuid, uuidFrom = a.st.ClusterUUID, id
			for _, v := range a.st.Voters {
				if v == uint64(n.cfg.ID) {
					n.fail(lostDataError{n.cfg.ID, uuid, n.cfg.DataDir})
					return
				}
			}
		case a.st.Fresh:
			fresh = append(fresh, int(id))
			anyFormed = anyFormed || a.st.Formed
		default:
			stateful = append(stateful, int(id))
		}
	}
	if uuid != nil {
		n.joinExisting(uuid)
		return
	}
	var wait string
	switch {
	case len(stateful) > 0:
		wait = fmt.Sprintf("members %v hold state but the cluster has no uuid yet (it is forming, or they run a version before 2): waiting for it; "+
			"if this node's data directory was lost, restart it with --rejoin", stateful)
	case len(silent) > 0:
		wait = fmt.Sprintf("members %v accept connections but do not answer: waiting for them (a paused member may hold state)", silent)
	case !n.boot.mayForm:
		wait = "no cluster has formed yet, and this node does not form one without --new-cluster"
	case len(absent) > 0:
		// Every member, not a quorum: a quorum of fresh members can hold
		// one whose data was wiped (this node, say) while the members that
		// hold the cluster's state are unreachable.
		wait = fmt.Sprintf("a new cluster forms once every member answers as new as this one; fresh: %v, not answering: %v", append(fresh, int(n.cfg.ID)), absent)
	}
	if wait != "" {
		n.boot.rounds = 0
		if now := n.clock.Now(); now.Sub(n.boot.logged) >= 5*time.Second {
			n.boot.logged = now
			n.log.Warn().Msg("bootstrap: not voting yet: " + wait)
		}
		n.bootstrapProbe(bootstrapEvery)
		return
	}
	if anyFormed {
		// Another member formed on the same evidence: join it now, while
		// it waits for the rest to form.
		n.boot.rounds = bootstrapRounds
	}
	if n.boot.rounds++; n.boot.rounds < bootstrapRounds {
		n.bootstrapProbe(bootstrapEvery)
		return
	}
	if !n.submit(walJob{formed: true}) {
		return
	}
	n.boot.forming, n.boot.formSeq = true, n.submitted
	n.log.Info().Ints("fresh", append(fresh, int(n.cfg.ID))).Msg("bootstrap: forming a new cluster: every member is fresh")
}

// checkBootstrap notes when a formation's mark is durable (the node
// restarts ungated from then on) and waits for the others to form.
func (n *Node) checkBootstrap() {
	if n.boot.active && n.boot.forming && !n.boot.formed && n.durable >= n.boot.formSeq {
		n.boot.formed = true
		n.bootstrapProbe(0)
	}
}

// barrierRounds bounds the wait of a formed node for the others to form:
// a member that crashed meanwhile restarts ungated or forms at once when
// it sees a formed member, so the wait is only for one that is slow.
const barrierRounds = 10

// waitForOthersToForm ends the gate once every other member has formed
// (or holds state), or after barrierRounds rounds.
func (n *Node) waitForOthersToForm(got map[paxos.NodeID]probeAnswer) {
	var waiting []int
	for _, id := range n.otherMembers() {
		if a := got[id]; a.err != nil || a.st.Fresh && !a.st.Formed {
			waiting = append(waiting, int(id))
		}
	}
	if n.boot.barrier++; len(waiting) > 0 && n.boot.barrier < barrierRounds {
		n.bootstrapProbe(bootstrapEvery)
		return
	}
	n.boot.active = false
	ev := n.log.Info()
	if len(waiting) > 0 {
		ev = n.log.Warn().Ints("not_formed", waiting)
	}
	ev.Msg("bootstrap: formed; this node votes")
}

// joinExisting turns a gated node that never voted into a rejoining one:
// the cluster formed without it (a late first start).
func (n *Node) joinExisting(uuid []byte) {
	if !n.submit(walJob{rejoin: &rejoinJob{set: true, target: wal.RejoinUnknown}}) {
		return
	}
	// Muted from here on (rejoin.go): the record reaches the disk before
	// anything this node sends could count as a vote.
	n.boot.active = false
	n.rejoin = rejoinState{active: true, target: wal.RejoinUnknown, durableCommit: n.rejoin.durableCommit}
	n.log.Info().Str("cluster_uuid", fmt.Sprintf("%x", uuid)).
		Msg("bootstrap: joining a cluster formed without this node: catching up before voting")
	n.probeForRejoin(0)
}

// lostDataError is the one line a member that voted before and lost its
// data stops with. It matches ErrLostData.
type lostDataError struct {
	id   paxos.NodeID
	uuid []byte
	dir  string
}

func (e lostDataError) Error() string {
	return fmt.Sprintf("node %d voted in cluster %x before, and its data directory %s holds no state: it lost its data; "+
		"restart it once with --rejoin to rebuild it from the other members", e.id, e.uuid, e.dir)
}

func (e lostDataError) Is(target error) bool {
	return target == ErrLostData || target == errRefusedStart
}

// errRefusedStart marks a node that stops because starting would be unsafe
// (its error says why and what to do), not because its disk failed.
var errRefusedStart = errors.New("service: refused to start")

// ErrLostData: a member that voted before came back without its data and
// was not started with --rejoin.
var ErrLostData = errors.New("service: a member that voted before lost its data")

// probeStatus asks member id for its own status; reached says the
// connection was made (so an error is the member's silence, not absence).
func (n *Node) probeStatus(ctx context.Context, id paxos.NodeID) (wire.NodeStatus, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	pc, err := n.peers.dial(ctx, id)
	if err != nil {
		return wire.NodeStatus{}, false, err
	}
	defer pc.Close()
	resp, err := pc.Call(ctx, &wire.Request{ID: 1, Op: wire.OpStatus})
	if err != nil {
		return wire.NodeStatus{}, true, err
	}
	if resp.Err != wire.ErrNone {
		return wire.NodeStatus{}, true, fmt.Errorf("node %d: %s", id, resp.ErrMsg)
	}
	for _, st := range resp.Status {
		if st.ID == id {
			return st, true, nil
		}
	}
	return wire.NodeStatus{}, true, fmt.Errorf("node %d did not report its own status", id)
}

// otherMembers lists the members but this node.
func (n *Node) otherMembers() []paxos.NodeID {
	var out []paxos.NodeID
	for _, id := range n.book.members() {
		if id != n.cfg.ID {
			out = append(out, id)
		}
	}
	return out
}

// fresh reports whether this node has never voted and holds no state:
// what a bootstrap probe of another node needs to hear, stated positively.
// A node rebuilding with --rejoin is fresh too while its (raised) promise
// is still zero: every member it asked was fresh, so no state exists to
// protect, and it must not keep a new cluster from forming (a --rejoin
// left in a unit file when a cluster is deployed anew).
func (n *Node) fresh() bool {
	if n.boot.active {
		return true
	}
	st := n.r.Status()
	// A node installing a snapshot (install.go) is getting the state of a
	// cluster that exists: not fresh.
	return st.Promised.IsZero() && st.Commit == 0 && st.MaxSlot == 0 &&
		!n.installing() && n.sm.Applied() == 0 && n.sm.ClusterID() == nil
}
