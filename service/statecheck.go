package service

import (
	"context"
	"fmt"
	"sort"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// The state check notices replicas that diverged (etcd's corruption check,
// done through the log). Every Config.StateCheckSlots applied slots, each
// member hashes its state as of that slot and proposes an OpStateHash
// carrying the slot, the hash, its id, and where its state came from. The
// reports are commands in the log, so every replica sees the same reports
// in the same order and reaches the same verdict: a hash reported by a
// quorum of independent members is the cluster's; a member that reported
// another has diverged.
//
// Independent: a member that installed another's snapshot since its last
// confirmed report holds a copy of that member's state, and its report
// counts as that member's (Source), not as a second witness — otherwise a
// wrong state copied by snapshot onto a second node would outvote the one
// healthy node. A member's report is confirmed when it matches the
// cluster's hash; from then on it is a witness of its own again.
//
// Every node counts each diverged report (paxosd_state_mismatches_total)
// and logs it as an error. A node that finds itself the odd one out
// records it durably (a restart replays the same wrong state, so the
// verdict must outlive it), steps down if it leads, and takes no further
// part: it answers no client, serves no snapshot, and neither votes nor
// campaigns (its votes could carry a wrong log to others). The way out is
// to rebuild it: wipe its data directory and start it with --rejoin.
//
// Reports are best effort: a follower's report forwarded to a leader that
// dies is lost, and a node that installed a snapshot past a check slot has
// no hash for it. A check slot without a quorum of equal independent
// reports decides nothing.
//
// The hash is the state machine's agreement hash (statemachine/hash.go),
// whose kind the cluster level decides: the legacy hash below
// statemachine.LevelHashEncoding, the snapshot encoding's from it on. The
// reports need no level of their own: each is the hash of the state as of
// its check slot (reportState checks that its view is that state), the
// level is part of that state, and the same on every replica at that slot
// — so at the slot that raises the level, and at every other, all the
// reports of a check slot are of one kind and a healthy member is never
// convicted for hashing the other way. A member that could not apply the
// level command (an older build) keeps the old kind and is convicted: it
// no longer behaves as the others.

// stateCheck is the loop's bookkeeping of the state check.
type stateCheck struct {
	// reports holds, per open check slot, each member's report; flagged
	// the reports already counted as mismatches.
	reports map[paxos.Slot]map[paxos.NodeID]stateReport
	flagged map[paxos.Slot]map[paxos.NodeID]bool
	// source is the member whose snapshot this node's state came from
	// since its last confirmed report (0: its own log).
	source paxos.NodeID
	// diverged is the check slot at which this node found that its own
	// state differs from the cluster's (0: it has not).
	diverged paxos.Slot
	// hashing counts the hashes under way off the loop: each holds a view
	// of the state, which a snapshot install waits for (install.go).
	hashing int
}

// stateReport is one member's report for a check slot.
type stateReport struct {
	hash   uint64
	source paxos.NodeID
}

// root is the member whose state a report witnesses.
func (r stateReport) root(reporter paxos.NodeID) paxos.NodeID {
	if r.source != 0 {
		return r.source
	}
	return reporter
}

// stateCheckKept bounds the check slots whose reports are kept: older
// ones will not get more.
const stateCheckKept = 4

// stateCheckStrideBytes is the state size the check spends its base
// interval on: a state of k times this many key and value bytes is checked
// every k-th time (rounded up to a power of two), so that the hash, about a
// second of CPU at a million keys (300 MB), and the tree copies its
// view causes (every page the writes touch while it is held), cost the same
// per slot at any size. At 1,000,000 keys of 256 bytes the check runs
// every 80,000 slots (a minute or two of full load) instead of every
// 10,000, where it took a fifth of each node's CPU.
const stateCheckStrideBytes = 32 << 20

// checkStride is how many Config.StateCheckSlots intervals lie between two
// checks of a state whose keys and values take used bytes: a power of two,
// so that the check slots of a growing state stay check slots of the
// smaller stride.
func checkStride(used uint64) uint64 {
	stride := uint64(1)
	for stride*stateCheckStrideBytes < used {
		stride *= 2
	}
	return stride
}

// isCheckSlot says whether slot, just applied, is one at which the members
// compare their states. It is decided from the replicated state as of slot,
// the same on every replica. A member of an older version that checks at
// every interval only reports at slots where the others do not: such a
// slot gets no quorum and decides nothing.
func (n *Node) isCheckSlot(slot paxos.Slot) bool {
	if n.cfg.StateCheckSlots <= 0 {
		return false
	}
	every := uint64(n.cfg.StateCheckSlots)
	if uint64(slot)%every != 0 {
		return false
	}
	return (uint64(slot)/every)%checkStride(n.sm.Quota().Used) == 0
}

// reportState proposes this node's state hash if slot, just applied, is a
// check slot.
func (n *Node) reportState(slot paxos.Slot) {
	if n.check.diverged != 0 || !n.isCheckSlot(slot) {
		return
	}
	if n.install != nil {
		// A snapshot install waits for the views of the state to go
		// (install.go): this report is skipped, as best effort allows.
		return
	}
	if n.check.hashing > 0 || catchingUp(slot, n.r.Status().LeaderCommit) {
		// A view held while the node applies copies every tree node
		// written and keeps every overwritten value alive until the
		// hash is done. A node catching up applies as fast as it can and
		// passes a check slot every few seconds, and its hashes, starved
		// of CPU, each took tens of seconds: their views together held
		// 170 MB over a rejoining follower's memory bound at a million
		// keys (make bench-scale). So a node hashes one view at a time,
		// and reports only once it follows the leader again; the check
		// slots it skips are judged by the others' reports.
		return
	}
	source := n.check.source
	view, err := n.sm.View()
	if err != nil { // answers not taken: cannot happen between values
		n.log.Error().Err(err).Uint64("slot", uint64(slot)).Msg("state check skipped")
		return
	}
	if view.Applied() != slot {
		// The report names slot, so it must hash the state as of slot,
		// at the level every replica had there (see above): a hash of a
		// later state could be of the other kind, across a level change,
		// and convict a healthy member. (apply calls this right after
		// slot, so it cannot happen.)
		n.log.Error().Uint64("slot", uint64(slot)).Uint64("applied", uint64(view.Applied())).Msg("state check skipped: the state is not the check slot's")
		return
	}
	// Hashing a million keys takes a second: it runs off the loop, on the
	// frozen view, and the report goes out when it is done.
	opts := n.smOptions()
	n.check.hashing++
	n.bg.run(0, func(context.Context) func() {
		hash, err := view.Hash(opts)
		return func() {
			n.check.hashing--
			defer n.beginInstall() // an install may have waited for the view to go
			if err != nil {
				n.log.Error().Err(err).Uint64("slot", uint64(slot)).Msg("cannot hash the state for the state check")
				return
			}
			n.proposeStateHash(slot, hash, source)
		}
	})
}

// proposeStateHash proposes this node's report for a check slot.
func (n *Node) proposeStateHash(slot paxos.Slot, hash uint64, source paxos.NodeID) {
	if n.check.diverged != 0 || !n.book.has(n.cfg.ID) {
		return // a removed node's report would count nowhere (onStateHash)
	}
	cmd := statemachine.EncodeCommand(&statemachine.Command{Op: statemachine.OpStateHash, HashSlot: uint64(slot), StateHash: hash,
		Reporter: uint64(n.cfg.ID), Source: uint64(source)})
	_ = n.r.Propose(cmd) // no leader known: this report is lost, the next one goes
}

// stateInstalled notes that this node's state is now a copy of member
// from's.
func (n *Node) stateInstalled(from paxos.NodeID) { n.check.source = from }

// onStateHash takes a report from the log and judges its check slot.
func (n *Node) onStateHash(c *statemachine.Command) {
	slot, from := paxos.Slot(c.HashSlot), paxos.NodeID(c.Reporter)
	if member := n.book.has(from); !member || slot == 0 {
		return
	}
	sc := &n.check
	if sc.reports == nil {
		sc.reports, sc.flagged = map[paxos.Slot]map[paxos.NodeID]stateReport{}, map[paxos.Slot]map[paxos.NodeID]bool{}
	}
	rs := sc.reports[slot]
	if rs == nil {
		if len(sc.reports) >= stateCheckKept {
			// A late report for a check slot older than every one kept
			// (from a member catching up) must not push out an open one.
			if oldest := sc.oldest(); slot < oldest {
				return
			}
			delete(sc.reports, sc.oldest())
		}
		rs = map[paxos.NodeID]stateReport{}
		sc.reports[slot], sc.flagged[slot] = rs, map[paxos.NodeID]bool{}
	}
	if _, dup := rs[from]; dup {
		return
	}
	rs[from] = stateReport{hash: c.StateHash, source: paxos.NodeID(c.Source)}
	n.judgeState(slot)
}

// oldest is the oldest check slot with reports kept.
func (sc *stateCheck) oldest() paxos.Slot {
	oldest := paxos.Slot(0)
	for s := range sc.reports {
		if oldest == 0 || s < oldest {
			oldest = s
		}
	}
	return oldest
}

// judgeState flags, once a quorum of independent members reported the
// same hash for slot, every member that reported another.
func (n *Node) judgeState(slot paxos.Slot) {
	rs := n.check.reports[slot]
	roots := map[uint64]map[paxos.NodeID]bool{}
	for id, r := range rs {
		if roots[r.hash] == nil {
			roots[r.hash] = map[paxos.NodeID]bool{}
		}
		roots[r.hash][r.root(id)] = true
	}
	quorum := n.book.current().QuorumSize()
	var agreed uint64
	found := false
	for h, witnesses := range roots {
		if len(witnesses) >= quorum {
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
		r := rs[id]
		if r.hash == agreed {
			if id == n.cfg.ID {
				n.check.source = 0 // confirmed: a witness of its own again
			}
			continue
		}
		if n.check.flagged[slot][id] {
			continue
		}
		n.check.flagged[slot][id] = true
		n.m.stateMismatches.Inc()
		n.log.Error().Uint32("member", uint32(id)).Uint64("slot", uint64(slot)).
			Str("hash", fmt.Sprintf("%016x", r.hash)).Str("quorum_hash", fmt.Sprintf("%016x", agreed)).
			Msg("state hash mismatch: this member's state after the slot differs from a quorum's; it must be rebuilt (wipe its data directory, restart it with --rejoin)")
		if id == n.cfg.ID {
			n.divergedAt(slot, true)
		}
	}
}

// divergedAt takes this node out of the cluster's work: its state diverged
// at check slot slot, found now (record: write it down) or before a
// restart.
func (n *Node) divergedAt(slot paxos.Slot, record bool) {
	if n.check.diverged != 0 {
		return
	}
	n.check.diverged = slot
	n.diverged.Store(true)
	n.m.stateDiverged.Set(1)
	n.r.StepDown()
	n.log.Error().Uint64("slot", uint64(slot)).
		Msg("this node's state diverged from the cluster's: it answers no client and takes no part in the log until it is rebuilt (wipe its data directory, restart it with --rejoin)")
	if record {
		n.submit(walJob{diverged: slot})
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
