package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/proposer"
	"github.com/paxosd/paxosd/wire"
)

// Leadership transfer (proposer/transfer.go): a leader that is asked to,
// or that receives SIGTERM, hands its leadership to a caught-up member
// and gives its lease up explicitly, so writes pause for one election
// round instead of an election timeout.

// errNotLeading: only the leader can hand leadership over.
var errNotLeading = errors.New("this node does not lead")

// noteCommit records a peer's watermark from the messages that carry it,
// for choosing the most caught-up member to hand leadership to, and when
// it last voted (a Promise or Accepted): what the leader records as the
// cluster's voters (identity_node.go) and prefers to hand over to.
func (n *Node) noteCommit(m paxos.Message) {
	switch m.Type {
	case paxos.MsgHeartbeatAck, paxos.MsgAccepted, paxos.MsgPromise:
	default:
		return
	}
	if n.peerCommit == nil {
		n.peerCommit, n.peerVoted, n.peerHeard = map[paxos.NodeID]paxos.Slot{}, map[paxos.NodeID]int{}, map[paxos.NodeID]int{}
	}
	n.peerCommit[m.From] = max(n.peerCommit[m.From], m.Commit)
	n.peerHeard[m.From] = n.tickCount
	if m.Type != paxos.MsgHeartbeatAck {
		n.peerVoted[m.From] = n.tickCount
	}
}

// transferTarget checks the member asked for, or (to = 0) chooses the one
// with the highest watermark among those that can take over.
func (n *Node) transferTarget(to paxos.NodeID) (paxos.NodeID, error) {
	if to != 0 {
		if to == n.cfg.ID {
			return 0, fmt.Errorf("node %d already leads", to)
		}
		if !n.book.has(to) {
			return 0, fmt.Errorf("node %d is not a member", to)
		}
		if !n.book.current().IsVoter(to) {
			return 0, fmt.Errorf("node %d is a learner: only a voting member can lead", to)
		}
		if !n.canTakeOver(to) {
			return 0, fmt.Errorf("node %d cannot take leadership over: it is unreachable or runs a version older than protocol 3", to)
		}
		return to, nil
	}
	// Prefer a member that voted lately: one still rejoining (or gated)
	// acknowledges heartbeats but sends no Promise or Accepted, and would
	// not campaign.
	recent := func(id paxos.NodeID) bool {
		t, ok := n.peerVoted[id]
		return ok && n.tickCount-t < 4*n.cfg.ElectionTicks
	}
	var best paxos.NodeID
	voters := n.book.current()
	for _, id := range n.otherMembers() {
		if !voters.IsVoter(id) || !n.canTakeOver(id) {
			continue
		}
		if best == 0 || recent(id) && !recent(best) || recent(id) == recent(best) && n.peerCommit[id] > n.peerCommit[best] {
			best = id
		}
	}
	if best == 0 {
		return 0, errors.New("no other member can take leadership over (all unreachable, or older than protocol 3)")
	}
	return best, nil
}

// canTakeOver reports whether member id is reachable (its last dial
// succeeded: a connection being redialed still counts, the TimeoutNow
// waits in its queue) and speaks a version that knows MsgTimeoutNow (an
// older one would close the connection on it). A node without a
// versioned transport (the simulation) runs one version throughout.
func (n *Node) canTakeOver(id paxos.NodeID) bool {
	if n.tcp == nil {
		return true
	}
	st := n.tcp.Stats(id)
	return !st.Unreachable && st.Version >= 3
}

// handOver hands this leader's leadership to member to (0: the most
// caught-up one), on the loop.
func (n *Node) handOver(to paxos.NodeID) (paxos.NodeID, error) {
	if n.r.Status().Role != proposer.Leader {
		return 0, errNotLeading
	}
	target, err := n.transferTarget(to)
	if err != nil {
		return 0, err
	}
	if err := n.r.TransferLeadership(target); err != nil {
		return 0, err
	}
	n.handedTo = target // for the step-down's log line
	n.log.Info().Uint32("to", uint32(target)).Uint64("commit", uint64(n.r.Status().Commit)).
		Uint64("target_commit", uint64(n.peerCommit[target])).Msg("handing leadership over; lease given up")
	return target, nil
}

// callTransfer answers an OpLeaderTransfer.
func (n *Node) callTransfer(c *call) {
	target, err := n.handOver(c.req.TargetNode)
	switch {
	case errors.Is(err, errNotLeading):
		c.reply(n.notLeader(nil))
	case err != nil:
		c.reply(&wire.Response{Err: wire.ErrInvalid, ErrMsg: err.Error()})
	default:
		c.reply(&wire.Response{LeaderHint: target, LeaderAddr: n.book.addr(target)})
	}
}

// TransferLeadership hands leadership to member to (0: the most caught-up
// member) if this node leads, and waits until another leader is known or
// ctx ends. It returns the new leader (0 if none was seen in time). A node
// that does not lead returns at once with no error.
func (n *Node) TransferLeadership(ctx context.Context, to paxos.NodeID) (paxos.NodeID, error) {
	type result struct {
		target paxos.NodeID
		err    error
	}
	done := make(chan result, 1)
	select {
	case n.deferred <- func() {
		t, err := n.handOver(to)
		done <- result{t, err}
	}:
	case <-n.done:
		return 0, errors.New("node stopped")
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	var r result
	select {
	case r = <-done:
	case <-n.done:
		return 0, errors.New("node stopped")
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	if errors.Is(r.err, errNotLeading) {
		return 0, nil
	}
	if r.err != nil {
		return 0, r.err
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if l := paxos.NodeID(n.leaderID.Load()); l != 0 && l != n.cfg.ID {
			return l, nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return 0, nil
		}
	}
}
