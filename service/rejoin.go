package service

import (
	"context"
	"fmt"
	"sort"
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
//  2. It asks every other member for the highest ballot it knows and its
//     watermark. Every one must answer: any quorum that counted one of the
//     forgotten promises or votes shares a member with them.
//  3. It raises its promise to the highest ballot (so it never accepts under
//     a ballot it may have promised away), and sets its target: the highest
//     watermark plus the leader's window, past every slot that can hold a
//     vote it forgot.
//  4. It follows the leader and catches up (log or snapshot) but sends no
//     Promise, Accepted, PreVote or Prepare until its own watermark reaches
//     the target (proposing empty commands to get there if the cluster is
//     idle); then it clears the record and votes again.

// rejoinState is the loop's view of a rejoin.
type rejoinState struct {
	active bool
	target paxos.Slot // wal.RejoinUnknown until the probe answers
	ticks  int        // ticks spent waiting for the target
}

// rejoinProbe is what the other members answered.
type rejoinProbe struct {
	ballot paxos.Ballot
	commit paxos.Slot
}

// openStore opens the data directory as cfg.Join allows and reports
// whether the node is rejoining.
func openStore(cfg Config) (*wal.Store, rejoinState, error) {
	id := wal.Identity{ClusterID: cfg.ClusterID, NodeID: cfg.ID}
	store, err := wal.Open(cfg.DataDir, id, wal.Options{NoSync: cfg.NoSync, MustExist: cfg.Join == JoinExisting})
	if err != nil {
		if cfg.Join == JoinExisting && wal.IsNoStore(err) {
			return nil, rejoinState{}, fmt.Errorf("node %d: data directory %s holds no state; a member that ran before and lost its data must not vote with the promises it forgot: "+
				"start it with --rejoin to rebuild it from the other members (it votes again once caught up), or, if this is a new cluster, start each node the first time with --new-cluster",
				cfg.ID, cfg.DataDir)
		}
		return nil, rejoinState{}, err
	}
	target, rejoining, err := store.Rejoin()
	if err != nil {
		store.Close()
		return nil, rejoinState{}, err
	}
	if cfg.Join == JoinRejoin && !rejoining {
		if !store.IsNew() {
			store.Close()
			return nil, rejoinState{}, fmt.Errorf("node %d: --rejoin is for a member whose data directory was lost, but %s holds this node's state: start it without --rejoin", cfg.ID, cfg.DataDir)
		}
		if err := store.SetRejoin(wal.RejoinUnknown); err != nil {
			store.Close()
			return nil, rejoinState{}, err
		}
		target, rejoining = wal.RejoinUnknown, true
	}
	return store, rejoinState{active: rejoining, target: target}, nil
}

// mutedWhileRejoining reports whether m is a vote, or asks for one, which
// a rejoining node must not send.
func mutedWhileRejoining(m paxos.Message) bool {
	switch m.Type {
	case paxos.MsgPromise, paxos.MsgAccepted, paxos.MsgPreVote, paxos.MsgPrepare:
		return true
	}
	return false
}

// probeForRejoin asks every other member for its ballot and watermark
// until all have answered, and hands the highest of each to the loop.
func (n *Node) probeForRejoin() {
	answered := map[paxos.NodeID]wire.NodeStatus{}
	lastLog := time.Time{}
	for {
		for id, addr := range n.cfg.Peers {
			if id == n.cfg.ID || answered[id].ID != 0 {
				continue
			}
			if st, err := n.askStatus(id, addr); err == nil {
				answered[id] = st
			}
		}
		if len(answered) == len(n.cfg.Peers)-1 {
			break
		}
		if time.Since(lastLog) > 5*time.Second {
			lastLog = time.Now()
			var missing []int
			for id := range n.cfg.Peers {
				if _, ok := answered[id]; !ok && id != n.cfg.ID {
					missing = append(missing, int(id))
				}
			}
			sort.Ints(missing)
			n.log.Warn().Ints("waiting_for", missing).Msg("rejoining: every other member must answer before this node may vote again")
		}
		select {
		case <-n.stop:
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
	var p rejoinProbe
	for _, st := range answered {
		p.ballot = paxos.MaxBallot(p.ballot, st.Ballot)
		p.commit = max(p.commit, st.Commit)
	}
	select {
	case n.rejoinProbed <- p:
	case <-n.stop:
	}
}

// askStatus asks member id at addr for its own status.
func (n *Node) askStatus(id paxos.NodeID, addr string) (wire.NodeStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	sc, err := wire.DialClient(ctx, addr, n.cfg.ClusterID, n.cfg.FrameBytesMax)
	if err != nil {
		return wire.NodeStatus{}, err
	}
	mux := wire.NewMux(sc)
	defer mux.Close()
	resp, err := mux.Call(ctx, &wire.Request{ID: 1, Op: wire.OpStatus})
	if err != nil {
		return wire.NodeStatus{}, err
	}
	for _, st := range resp.Status {
		if st.ID == id {
			return st, nil
		}
	}
	return wire.NodeStatus{}, fmt.Errorf("node %d did not report its own status", id)
}

// onRejoinProbe sets the rejoin's target from the members' answers.
func (n *Node) onRejoinProbe(p rejoinProbe) {
	n.r.RaisePromise(p.ballot)
	target := p.commit + paxos.Slot(n.cfg.WindowSlots)
	if err := n.store.SetRejoin(target); err != nil {
		n.log.Error().Err(err).Msg("rejoining: cannot record the target")
		return
	}
	n.rejoin.target = target
	n.log.Info().Str("ballot", p.ballot.String()).Uint64("target", uint64(target)).
		Msg("rejoining: promise raised; this node votes again once its watermark reaches the target")
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

// checkRejoin ends the rejoin once the watermark reaches the target.
func (n *Node) checkRejoin() {
	if !n.rejoin.active || n.rejoin.target == wal.RejoinUnknown || n.r.Status().Commit < n.rejoin.target {
		return
	}
	if err := n.store.ClearRejoin(); err != nil {
		n.log.Error().Err(err).Msg("rejoining: cannot clear the record")
		return
	}
	n.rejoin.active = false
	n.log.Info().Uint64("commit", uint64(n.r.Status().Commit)).Msg("rejoined: this node votes again")
}
