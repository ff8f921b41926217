package service

import (
	"fmt"
	"sort"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/wire"
)

// The state check notices replicas that diverged (etcd's corruption check,
// done through the log). Every Config.StateCheckSlots applied slots, each
// member hashes its state as of that slot and proposes an OpStateHash
// carrying the slot, the hash and its id. The reports are commands in the
// log, so every replica sees the same reports in the same order and
// reaches the same verdict: a hash a quorum reported is the cluster's; a
// member that reported another has diverged. Every node counts each such
// report (paxosd_state_mismatches_total) and logs it as an error; a node
// that finds itself the odd one out stops answering clients (its state is
// wrong, so its answers would be) and says so in every refusal, while it
// goes on taking part in the log, which is not its state. The way out is
// to rebuild it: wipe its data directory and start it with --rejoin.
//
// Reports are best effort: a follower's report forwarded to a leader that
// dies is lost, and a node that installed a snapshot past a check slot has
// no hash for it. A check slot without a quorum of equal reports decides
// nothing.

// stateCheck is the loop's bookkeeping of the state check.
type stateCheck struct {
	// reports holds, per open check slot, each member's reported hash;
	// flagged the reports already counted as mismatches.
	reports map[paxos.Slot]map[paxos.NodeID]uint64
	flagged map[paxos.Slot]map[paxos.NodeID]bool
	// diverged is the check slot at which this node found that its own
	// state differs from a quorum's (0: it has not).
	diverged paxos.Slot
}

// stateCheckKept bounds the check slots whose reports are kept: older
// ones will not get more.
const stateCheckKept = 4

// reportState proposes this node's state hash if slot, just applied, is a
// check slot.
func (n *Node) reportState(slot paxos.Slot) {
	if n.cfg.StateCheckSlots <= 0 || slot%paxos.Slot(n.cfg.StateCheckSlots) != 0 {
		return
	}
	cmd := EncodeCommand(&Command{Op: OpStateHash, HashSlot: uint64(slot), StateHash: n.sm.Hash(), Reporter: uint64(n.cfg.ID)})
	_ = n.r.Propose(cmd) // no leader known: this report is lost, the next one goes
}

// onStateHash takes a report from the log and judges its check slot.
func (n *Node) onStateHash(c *Command) {
	slot, from := paxos.Slot(c.HashSlot), paxos.NodeID(c.Reporter)
	if _, member := n.cfg.Peers[from]; !member || slot == 0 {
		return
	}
	sc := &n.check
	if sc.reports == nil {
		sc.reports, sc.flagged = map[paxos.Slot]map[paxos.NodeID]uint64{}, map[paxos.Slot]map[paxos.NodeID]bool{}
	}
	rs := sc.reports[slot]
	if rs == nil {
		if len(sc.reports) >= stateCheckKept {
			sc.forgetOldest()
		}
		rs = map[paxos.NodeID]uint64{}
		sc.reports[slot], sc.flagged[slot] = rs, map[paxos.NodeID]bool{}
	}
	if _, dup := rs[from]; dup {
		return
	}
	rs[from] = c.StateHash
	n.judgeState(slot)
}

func (sc *stateCheck) forgetOldest() {
	oldest := paxos.Slot(0)
	for s := range sc.reports {
		if oldest == 0 || s < oldest {
			oldest = s
		}
	}
	delete(sc.reports, oldest)
	delete(sc.flagged, oldest)
}

// judgeState flags, once a quorum reported the same hash for slot, every
// member that reported another.
func (n *Node) judgeState(slot paxos.Slot) {
	rs := n.check.reports[slot]
	count := map[uint64]int{}
	for _, h := range rs {
		count[h]++
	}
	quorum := len(n.cfg.Peers)/2 + 1
	var agreed uint64
	found := false
	for h, c := range count {
		if c >= quorum {
			agreed, found = h, true
		}
	}
	if !found {
		return
	}
	ids := make([]paxos.NodeID, 0, len(rs))
	for id := range rs {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		if rs[id] == agreed || n.check.flagged[slot][id] {
			continue
		}
		n.check.flagged[slot][id] = true
		n.m.stateMismatches.Inc()
		n.log.Error().Uint32("member", uint32(id)).Uint64("slot", uint64(slot)).
			Str("hash", fmt.Sprintf("%016x", rs[id])).Str("quorum_hash", fmt.Sprintf("%016x", agreed)).
			Msg("state hash mismatch: this member's state after the slot differs from a quorum's; it must be rebuilt (wipe its data directory, restart it with --rejoin)")
		if id == n.cfg.ID && n.check.diverged == 0 {
			n.check.diverged = slot
			n.diverged.Store(true)
			n.m.stateDiverged.Set(1)
			n.log.Error().Uint64("slot", uint64(slot)).Msg("this node's state diverged from the cluster's: it answers no client from now on")
		}
	}
}

// divergedRefusal is the answer a diverged node gives every client
// request but a status query, or nil. It may be called off the loop.
func (n *Node) divergedRefusal(q *wire.Request) *wire.Response {
	if !n.diverged.Load() || q.Op == wire.OpStatus {
		return nil
	}
	return &wire.Response{Err: wire.ErrUnavailable, ErrMsg: fmt.Sprintf(
		"node %d's state diverged from the cluster's (see its log): it answers no client until it is rebuilt with --rejoin", n.cfg.ID)}
}
