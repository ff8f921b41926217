package service

import (
	"errors"
	"sort"
	"time"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/proposer"
	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// The loop's handlers. Each input is one call — step (a peer's message),
// handleCall (a client request), release (writes made durable), tick, or a
// background job's continuation — and afterInputs follows one or more of
// them: it hands the replica's work to the journal and the network, applies
// what was decided, and answers. Whoever drives the node (Node.run, or the
// simulation) calls them from one goroutine at a time and stops calling
// once n.failed is set.

// sendPeer sends m to its peer. A Snapshot offer carries this node's
// address (version 18): the node it goes to may know none for it, having
// lagged through the membership change that added this node, and its
// members that do may all be gone; it then had no way to fetch the
// snapshot, nor to vote in the configuration it did not know, and a
// quorum that needed its vote never formed (node simulation, seed 81530).
func (n *Node) sendPeer(m paxos.Message) {
	if m.Type == paxos.MsgSnapshot {
		m.Addr = n.book.addr(n.cfg.ID)
	}
	n.transport.Send(m)
}

// step hands a peer's message to the replica; a MsgSnapshot is the node's
// business (the snapshot moves outside the protocol core).
func (n *Node) step(m paxos.Message) {
	if n.boot.active {
		return // frozen until it knows whether it may vote (bootstrap.go)
	}
	n.noteCommit(m)
	if m.Type == paxos.MsgSnapshot && m.Addr != "" && n.book.addr(m.From) != m.Addr {
		// A Snapshot offer says where its sender is (version 18): learned
		// if this node's membership does not name it (a member added
		// since), replacing an address learned before (it moved); the
		// membership's own address wins.
		if n.book.learn(map[paxos.NodeID]string{m.From: m.Addr}) {
			n.publishPeers()
		}
	}
	if n.book.addr(m.From) == "" {
		n.learnAddresses() // ask the members this node knows (members_learn.go)
	}
	if m.Type == paxos.MsgSnapshot {
		n.onSnapshotOffer(m)
		return
	}
	n.heartbeatAcked(m)
	n.r.Step(m)
}

// tick advances the replica's clock by one tick; now is when it happened.
func (n *Node) tick(now time.Time) {
	if n.boot.active {
		// Frozen: no election timer, no proposals (bootstrap.go).
		n.trackLeader(now)
		if n.tickCount++; n.tickCount%10 == 0 {
			n.expireWaiters(now)
			n.sampleMetrics()
		}
		return
	}
	n.r.Tick()
	n.countLeaderless(now)
	n.trackLeader(now)
	n.ticks.tick(now)
	n.rates.tick(now)
	n.sampleDrain(now)
	n.proposeClock(now)
	n.rejoinFiller()
	if n.tickCount++; n.tickCount%10 == 0 {
		n.expireWaiters(now)
		n.settleMemberCalls(now)
		n.sampleMetrics()
		n.notifyProgress()
		n.proposeIdentity()
		n.proposeQuota()
		n.proposeLevel()
	}
}

// afterInputs does what the inputs since the last call left to do.
func (n *Node) afterInputs() {
	if n.failed != nil {
		return
	}
	n.processReady()
	n.noticeLeaderChange()
	n.maybeSnapshot()
	if !n.installing() {
		n.liveBytes.Store(n.sm.Quota().Used)
		n.publishAuth() // before the answers: a client told "user added" may authenticate at once
	}
	n.checkRejoin()
	n.checkBootstrap()
	n.noteIdentity()
	// The answers before the commit announcements, and both before the
	// streams: a put's answer must not wait while every watch is sent the
	// put's event (thousands of them on a busy node), here or on a
	// follower (sendAnnounces).
	n.uncork()
	n.sendAnnounces()
	n.pushStreams()
	n.uncork()
}

// sendAnnounces sends the leader's commit announcements held back by
// processReady. An announcement (a heartbeat outside the rounds, carrying
// only the new watermark) makes every follower apply the slots it names
// and push their events to its watches at once: with thousands of
// watches that is milliseconds of CPU on each follower, and on a machine
// the members share it took the cores the leader's answer to the writer
// of those slots needed (a writer's put p99 went from 3 to 7 ms with
// 10,000 watchers; docs/BENCHMARKS.md). Sent after the answers, it costs
// the followers the few microseconds of the answers' writes.
func (n *Node) sendAnnounces() {
	for i, m := range n.announces {
		n.sendPeer(m)
		n.announces[i] = paxos.Message{}
	}
	n.announces = n.announces[:0]
}

// isAnnounce reports whether m is a commit announcement: a heartbeat that
// is not one of the leader's rounds (which the liveness and the lease
// count on, and which leave at once).
func isAnnounce(m paxos.Message) bool {
	return m.Type == paxos.MsgHeartbeat && m.Slot == 0
}

// fail stops the node for good: it cannot make its writes durable, so it
// must neither vote nor acknowledge anything more (or it has no state to
// run on: errInstallFailed, install.go). Every waiting client is told. The
// driver stops calling the handlers.
func (n *Node) fail(err error) {
	if n.failed != nil {
		return
	}
	n.failed = err
	switch {
	case errors.Is(err, errRefusedStart):
		n.log.Error().Msg(err.Error())
	case errors.Is(err, errInstallFailed):
		n.log.Error().Err(err).Msg("the node stops: it cannot run without a state")
	default:
		n.log.Error().Err(err).Msg("cannot persist: the node stops rather than acknowledge what it could not make durable")
	}
	n.failWaiters(wire.ErrUnavailable, "node failed: "+err.Error())
	n.uncork()
}

// submit hands j to the journal as the next write. A journal that has
// failed fails the node.
func (n *Node) submit(j walJob) bool {
	n.submitted++
	j.seq = n.submitted
	if err := n.journal.submit(j); err != nil {
		n.fail(err)
		return false
	}
	return true
}

// processReady hands the replica's writes to the journal, sends the
// messages that promise nothing at once and holds those that must wait
// for every write before them (paxos.Ready.AfterPersist) until it is
// durable, and applies what was decided — a chosen value is a fact,
// whether or not this node has synced it yet. Messages to this node go
// straight back into the replica; commit announcements wait for the
// answers (sendAnnounces).
func (n *Node) processReady() {
	for n.failed == nil {
		rd := n.r.Ready()
		if rd.IsEmpty() {
			return
		}
		if !rd.Persist.IsEmpty() {
			if !n.submit(walJob{p: rd.Persist}) {
				return
			}
			if rd.Persist.Commit != 0 {
				n.jobCommits = append(n.jobCommits, jobCommit{n.submitted, rd.Persist.Commit})
			}
		}
		var self []paxos.Message
		for _, m := range rd.Messages {
			switch {
			case n.muted(m):
				// Not a vote until caught up (rejoin.go).
			case m.To == n.cfg.ID:
				self = append(self, m)
			case n.holdsAck(m):
				n.held = append(n.held, heldMessage{seq: n.submitted, m: m})
			case isAnnounce(m):
				n.announces = append(n.announces, m) // after the answers
			default:
				n.heartbeatSent(m)
				n.sendPeer(m)
			}
		}
		for _, m := range rd.AfterPersist {
			switch {
			case n.muted(m):
			case n.durable < n.submitted:
				n.held = append(n.held, heldMessage{seq: n.submitted, m: m})
			case m.To == n.cfg.ID:
				self = append(self, m)
			default:
				n.sendPeer(m)
			}
		}
		for _, m := range self {
			n.r.Step(m)
		}
		n.apply(rd.Decided)
	}
}

// holdsAck reports whether an acknowledgement to the leader waits, like
// a vote, for this node's writes before it to be durable: while the node
// catches up, and after that while an earlier one still waits (so that
// they reach the leader in order).
//
// The leader's catch-up stream sends a batch more each time the
// follower's acknowledged watermark passes one (replica.stepHeartbeatAck),
// and that watermark is what the follower has learned, which it has not
// necessarily made durable. A follower whose disk is slower than its
// network and its apply (one rejoining a loaded cluster on a shared disk)
// then takes batches as fast as they come, and they wait in its WAL
// writer's queue, each holding its whole received frame: tens of
// megabytes at a million keys (docs/BENCHMARKS.md, "A rejoin that gives
// way"). Acknowledged once durable, the stream goes at the pace of the
// follower's disk, with at most its window of batches not yet written.
// Any acknowledgement may be late without harm: the leader learns less
// soon, never something untrue.
func (n *Node) holdsAck(m paxos.Message) bool {
	if m.Type != paxos.MsgHeartbeatAck || n.durable >= n.submitted {
		return false
	}
	for _, h := range n.held {
		if h.m.Type == paxos.MsgHeartbeatAck {
			return true
		}
	}
	return catchingUp(n.appliedSlot(), n.r.Status().LeaderCommit)
}

// release sends (or steps) the held messages whose writes are now durable,
// and lets the replica drop from memory what is durable, applied, and old.
func (n *Node) release(seq uint64) {
	if seq > n.durable {
		n.durable = seq
	}
	n.snapshotDurable(n.durable)
	i := 0
	var durableCommit paxos.Slot
	for ; i < len(n.jobCommits) && n.jobCommits[i].seq <= n.durable; i++ {
		durableCommit = n.jobCommits[i].commit
	}
	if i > 0 {
		n.jobCommits = append(n.jobCommits[:0], n.jobCommits[i:]...)
		n.rejoin.durableCommit = max(n.rejoin.durableCommit, durableCommit)
		if durableCommit > logRetainSlots {
			n.r.Compact(durableCommit - logRetainSlots)
		}
	}
	i = 0
	for ; i < len(n.held) && n.held[i].seq <= n.durable; i++ {
		if m := n.held[i].m; m.To == n.cfg.ID {
			n.r.Step(m)
		} else {
			n.sendPeer(m)
		}
	}
	n.held = append(n.held[:0], n.held[i:]...)
}

// apply runs chosen commands through the state machine and answers the
// clients waiting for them. While the node installs a snapshot they wait
// for the new state (holdDecided).
func (n *Node) apply(decided []paxos.Entry) {
	if n.installing() {
		n.holdDecided(decided)
		return
	}
	for _, e := range decided {
		n.m.slotsApplied.Inc()
		n.m.batchCmds.Observe(float64(len(e.Value.Cmds)))
		n.m.cmdsApplied.Add(float64(len(e.Value.Cmds)))
		for _, c := range e.Value.Cmds {
			n.snap.logBytes += uint64(len(c))
		}
		if e.Value.Kind != paxos.ValueBatch {
			n.sm.ApplyValue(e.Slot, e.Value) // a no-op still advances Applied
		} else {
			for _, raw := range e.Value.Cmds {
				cmd, err := statemachine.DecodeCommand(raw)
				if err != nil {
					n.sm.Apply(e.Slot, raw) // rejected the same way on every replica
					continue
				}
				res := n.sm.ApplyCommand(e.Slot, &cmd)
				if cmd.ClientID != 0 { // not the leader's clock or state check
					n.rates.applied(1)
				}
				if cmd.Op == statemachine.OpStateHash {
					n.onStateHash(&cmd)
				}
				n.answer(callKey{cmd.ClientID, cmd.Seq}, cmd.Op, res)
				// Blocking requests granted by this command (a release
				// handing a lock to the next waiter, an expiry, a
				// resignation).
				for _, a := range n.sm.TakeAnswers() {
					n.answer(callKey{a.ClientID, a.Seq}, 0, a.Result)
				}
			}
		}
		n.syncMembers()
		if n.obs != nil {
			n.obs.applied(e, n.sm)
		}
		n.reportState(e.Slot)
	}
	n.startSaves() // between values: a view stands for whole slots
}

// proposeClock advances the replicated cluster clock while this node leads
// and something depends on it (see leaderClock).
func (n *Node) proposeClock(now time.Time) {
	if n.installing() {
		return // not caught up either
	}
	needed := n.sm.SessionCount() > 0 || n.sm.LockCount() > 0
	if needed && uint64(n.sm.Applied()) < uint64(n.r.Status().Commit) {
		return // not caught up: the applied clock may be behind
	}
	if t, ok := n.clusterClock.next(now.Sub(n.started), n.sm.Clock(), needed); ok {
		// Only this leader's measurement justifies the time: if it is
		// deposed first, the command is dropped, not forwarded.
		_ = n.r.ProposeOwn(statemachine.EncodeCommand(&statemachine.Command{Op: statemachine.OpClock, Now: t}))
	}
}

// noticeLeaderChange logs leadership changes and re-proposes every waiting
// command when a new leader appears: a command forwarded to a leader that
// died is lost, and re-proposing at once (deduplicated by client id and
// sequence) answers the client as soon as the new leader commits instead of
// after its timeout.
func (n *Node) noticeLeaderChange() {
	st := n.r.Status()
	if st.Leader == n.lastLeader && st.Role == n.lastRole {
		return
	}
	n.leading.Store(st.Role == proposer.Leader)
	n.led.Store(st.Leader != 0)
	n.leaderID.Store(uint32(st.Leader))
	if st.Leader != n.lastLeader && st.Leader != 0 {
		n.m.leaderChanges.Inc()
	}
	if st.Leader != 0 {
		n.m.hasLeader.Set(1)
	} else {
		n.m.hasLeader.Set(0)
	}
	if st.Role == proposer.Leader {
		n.m.isLeader.Set(1)
	} else {
		n.m.isLeader.Set(0)
	}
	if st.Role == proposer.Leader && n.lastRole != proposer.Leader {
		n.m.elections.Inc()
		n.clusterClock.start(n.clock.Now().Sub(n.started), n.stateClock())
		n.log.Info().Str("ballot", st.Ballot.String()).Uint64("commit", uint64(st.Commit)).Msg("became leader")
		n.handedTo = 0
		if n.obs != nil {
			n.obs.led(st.Ballot)
		}
	} else if st.Role != proposer.Leader {
		n.clusterClock.active = false
		if n.lastRole == proposer.Leader && st.Leader == 0 && n.handedTo != 0 {
			n.log.Info().Str("ballot", st.Ballot.String()).Uint32("to", uint32(n.handedTo)).Msg("stepped down as leader: leadership handed over")
		} else if n.lastRole == proposer.Leader && st.Leader == 0 {
			// Not deposed by a higher ballot: the check-quorum (or the
			// stalled-commit check) gave up. Worth a warning: writes stop
			// until a quorum elects a leader again.
			n.log.Warn().Str("ballot", st.Ballot.String()).Uint64("commit", uint64(st.Commit)).
				Msg("stepped down as leader: a quorum stopped acknowledging within an election timeout, or commits stalled")
		}
		if st.Leader != n.lastLeader && st.Leader != 0 {
			n.log.Info().Uint32("leader", uint32(st.Leader)).Str("ballot", st.Ballot.String()).Msg("following leader")
		}
	}
	n.lastLeader, n.lastRole = st.Leader, st.Role
	if st.Leader == 0 {
		return
	}
	n.reproposeWaiting()
	n.processReady()
}

// reproposeWaiting proposes again, in a fixed order, the command of every
// call waiting for one (not those queued in the state machine: their
// answer comes from a later command).
func (n *Node) reproposeWaiting() {
	for _, k := range n.waitingKeys(nil) {
		if c := n.waiters[k][0]; !c.queued {
			_ = n.r.Propose(c.cmd)
		}
	}
}

// waitingKeys returns the keys of the waiting calls (those for which keep
// returns true, or all), sorted: the loop answers and re-proposes in an
// order that does not depend on map iteration, so the simulation replays
// exactly.
func (n *Node) waitingKeys(keep func(callKey) bool) []callKey {
	keys := make([]callKey, 0, len(n.waiters))
	for k := range n.waiters {
		if keep == nil || keep(k) {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].less(keys[j]) })
	return keys
}
