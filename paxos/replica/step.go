package replica

import (
	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/proposer"
)

// Step handles one message addressed to this node. Messages for other
// nodes, of unknown type or malformed (see wellFormed) are ignored: the
// network is not trusted to be tidy. A message from a node this node's
// configuration does not name is heard all the same — a node that lags
// does not know the members added since, the leader among them, and a
// leader that lags campaigns in the configuration of the slots it lags
// on, which may name members removed since — but it counts for nothing
// it should not: every tally (promises, votes, acknowledgements, PreVote
// grants) counts only the voters of the configuration it is for, and a
// PreVote is granted only to a voter of this node's configuration (a
// removed node that missed its removal is answered with the news instead:
// catchUpPeer).
func (r *Replica) Step(m paxos.Message) {
	if m.To != r.cfg.ID || !r.wellFormed(m) {
		return
	}
	r.observeRole(func() { r.step(m) })
}

func (r *Replica) step(m paxos.Message) {
	switch m.Type {
	case paxos.MsgPreVote:
		r.send(r.prop.HandlePreVote(m, r.learn.Commit()))
		r.catchUpPeer(m.From, m.Commit)
	case paxos.MsgPreVoteReply:
		// A voter that answers from behind may not know this node at all:
		// one that lagged through the membership changes that added it
		// still campaigns in its old configuration, asking only members
		// that may be gone, and refuses this node's PreVotes as from a
		// stranger. Then nobody else would catch it up, and a quorum
		// that needs its vote never forms (node simulation, seed 70293).
		// Once per voter and PreVote ballot: a late or repeated answer
		// brings nothing new, and each batch is read from the log. And
		// again at a later round of the same ballot (it repeats from round
		// to round while nothing higher is seen) if the voter reports no
		// progress since: it lost what the first catch-up gave it (it
		// crashed before that was durable; a snapshot offer's address,
		// which it keeps in memory only), and was otherwise never caught
		// up again (node simulation, seed 81530). A voter that moves from
		// one round to the next is being caught up by someone: it is left
		// to them, and judged again at the next round. Progress counts
		// from the voter's last answer, not from the catch-up: a voter
		// that had just restarted moved once by replaying its own log,
		// then stood still, and was never caught up again (node
		// simulation, TestLaggingVoterAnswersNewMember).
		current := r.prop.Role() == proposer.PreCandidate && m.Ballot == r.prop.PreVoteBallot()
		round := r.prop.PreVoteRound()
		r.msgs = append(r.msgs, r.prop.OnPreVoteReply(m, r.acc.Promised(), r.learn.Commit())...)
		last, sent := r.preVoteCaughtUp[m.From]
		switch {
		case !current:
		case !sent || last.ballot != m.Ballot || last.round != round && m.Commit <= last.commit:
			r.preVoteCaughtUp[m.From] = preVoteCatchUp{ballot: m.Ballot, round: round, commit: m.Commit}
			r.catchUpPeer(m.From, m.Commit)
		case last.round != round:
			// It moved since its last answer: note where it is now.
			r.preVoteCaughtUp[m.From] = preVoteCatchUp{ballot: m.Ballot, round: round, commit: m.Commit}
		}
	case paxos.MsgPrepare:
		r.stepPrepare(m)
	case paxos.MsgPromise:
		r.stepPromise(m)
	case paxos.MsgAccept:
		r.stepAccept(m)
	case paxos.MsgAccepted:
		r.stepAccepted(m)
	case paxos.MsgNack:
		r.prop.OnNack(m)
	case paxos.MsgHeartbeat:
		r.stepHeartbeat(m)
	case paxos.MsgHeartbeatAck:
		r.stepHeartbeatAck(m)
	case paxos.MsgDecide:
		r.stepDecide(m)
	case paxos.MsgTimeoutNow:
		r.msgs = append(r.msgs, r.prop.HandleTimeoutNow(m, r.acc.Promised(), r.learn.Commit())...)
	case paxos.MsgForward:
		if r.prop.Role() == proposer.Leader {
			for _, c := range m.Cmds {
				_ = r.prop.Propose(c) // a full queue drops it; the client retries
			}
		}
	}
}

func (r *Replica) send(m paxos.Message) { r.msgs = append(r.msgs, m) }

// stepPrepare answers a Prepare — unless it asks for a new promise while
// this node is in lease (it leads, or heard from a leader within an
// election timeout): the leader's lease rests on its followers refusing
// Prepares, not only PreVotes, so that a PreVote granted before a
// follower acknowledged the leader cannot be turned into a promise after
// (the Prepare is dropped, as etcd drops votes in lease). A Prepare at the
// ballot already promised is answered again (a repeat, or a request for
// the next page), and so is one from the very leadership this node's lease
// pledge is owed to: a leader asking the voters of a configuration that
// took effect while it led (proposer.askCoverage).
func (r *Replica) stepPrepare(m paxos.Message) {
	raises := r.acc.Promised().Less(m.Ballot)
	if m.From != r.cfg.ID && raises && r.prop.InLease() && !r.prop.ReleasedBy(m.Transfer) && !r.prop.Follows(m.Ballot) {
		return
	}
	reply := r.acc.Step(m, r.learn.Commit())
	if reply.Type == 0 {
		// The log could not be read back: no Promise rather than an
		// incomplete one. If the candidate is behind this node's log, it
		// needs the snapshot: say so, as a leader does to a follower.
		// (With membership changes the nodes furthest ahead may be ones
		// that cannot lead, and a lagging voter must catch up through
		// them.)
		if t := r.acc.Truncated(); m.Slot <= t && m.From != r.cfg.ID {
			r.send(paxos.Message{Type: paxos.MsgSnapshot, From: r.cfg.ID, To: m.From, Commit: r.learn.Commit(), Slot: t})
		}
		return
	}
	if reply.Type == paxos.MsgPromise && m.From != r.cfg.ID {
		// Someone is taking over: give it an election timeout to do so,
		// counted again at each page it asks for (a candidate whose pages
		// stop coming in times out and starts over; one that is paging
		// must not be overtaken by a campaign of this node's).
		r.prop.OnPromisedOther(m.Ballot)
	}
	r.prop.Observe(reply.Ballot)
	r.send(reply)
}

func (r *Replica) stepPromise(m paxos.Message) {
	r.prop.Observe(m.Ballot)
	msgs, chosen := r.prop.OnPromise(m, r.learn.Commit())
	for _, e := range chosen {
		r.learn.Choose(e)
	}
	r.msgs = append(r.msgs, msgs...)
}

// pledgedElsewhere reports whether a message of a leadership under ballot
// b must be ignored because this node's lease pledge is owed to another
// one: b is above what this node promised, it follows (or is) another
// leadership, and it is in lease. Such a leader was elected without this
// node — by a quorum of an older configuration, which with a membership
// change need not meet the quorum the lease was counted in — and taking
// its Accepts would promise it b, and its heartbeats would make this node
// follow it, both without a Prepare: its writes could then be chosen in
// the new configuration while the leader this node pledged to still
// serves reads. A node in lease refuses it as it refuses its Prepares; an
// election timeout later (out of lease) it follows it.
func (r *Replica) pledgedElsewhere(b paxos.Ballot) bool {
	return r.acc.Promised().Less(b) && r.prop.InLease() && !r.prop.Follows(b) && b.Node != r.cfg.ID
}

func (r *Replica) stepAccept(m paxos.Message) {
	if r.pledgedElsewhere(m.Ballot) {
		return
	}
	if !m.Ballot.Less(r.acc.Promised()) {
		r.prop.OnLeaderContact(m.Ballot)
	}
	reply := r.acc.Step(m, r.learn.Commit())
	if reply.Type == paxos.MsgNack {
		r.prop.Observe(reply.Ballot)
	} else {
		r.learnFromLeader(m.Ballot, m.Commit)
		reply.Commit = r.learn.Commit()
	}
	r.send(reply)
}

func (r *Replica) stepAccepted(m paxos.Message) {
	if r.prop.Role() != proposer.Leader || m.Ballot != r.prop.Ballot() {
		return
	}
	r.prop.MarkActive(m.From)
	r.prop.NoteVote(m.From, m.Slots)
	r.learn.OnAccepted(m.From, m.Ballot, m.Slots)
}

func (r *Replica) stepHeartbeat(m paxos.Message) {
	if r.pledgedElsewhere(m.Ballot) {
		return
	}
	if m.Ballot.Less(r.acc.Promised()) {
		r.send(paxos.Message{Type: paxos.MsgNack, From: r.cfg.ID, To: m.From, Ballot: r.acc.Promised()})
		return
	}
	r.prop.OnLeaderContact(m.Ballot)
	r.learnFromLeader(m.Ballot, m.Commit)
	r.send(paxos.Message{Type: paxos.MsgHeartbeatAck, From: r.cfg.ID, To: m.From, Ballot: m.Ballot, Commit: r.learn.Commit(), Slot: m.Slot})
}

// stepHeartbeatAck lets the leader see who is alive and push chosen values
// to a follower whose watermark is behind (catch-up). The follower answers
// each Decide with another ack, which tops the stream up to
// catchUpInFlight batches.
func (r *Replica) stepHeartbeatAck(m paxos.Message) {
	if r.prop.Role() != proposer.Leader || m.Ballot != r.prop.Ballot() {
		return
	}
	if m.Slot != 0 {
		r.prop.OnHeartbeatAck(m.From, uint64(m.Slot))
	} else {
		r.prop.MarkActive(m.From)
	}
	r.prop.NoteFollowerCommit(m.From, m.Commit)
	// A follower a few slots behind is normal while slots are pipelined:
	// the next Accept or commit announcement tells it. Only a watermark
	// behind what the leader had chosen a heartbeat interval ago means the
	// follower missed something.
	if m.Commit >= r.settledCommit {
		delete(r.catchups, m.From)
		return
	}
	now := r.prop.Ticks()
	commit := r.learn.Commit()
	cu, ok := r.catchups[m.From]
	if ok && m.Commit > cu.acked {
		// Progress: the stream is alive, however slowly the follower
		// applies (a follower slower than an election timeout per batch
		// had the stream restarted under every ack, the same batches
		// queued again and again). Its restarts are forgotten only if it
		// moves within an election timeout: one slower is that slow.
		if now-cu.progressed < int64(r.cfg.ElectionTicks) {
			cu.restarts = 0
		}
		cu.acked, cu.tick, cu.progressed = m.Commit, now, now
		r.catchups[m.From] = cu
	}
	from := m.Commit + 1
	if ok && m.Commit < cu.sentTo && now-cu.tick < int64(r.cfg.ElectionTicks)<<min(cu.restarts, 3) {
		if cu.snapshot {
			return // it fetches the snapshot: log above it would wait in its memory
		}
		r.resendGap(m, &cu, now, commit)
		// A stream is running: acks that arrive while its batches are on
		// their way must not start another stream of the same entries.
		// The batches the follower's watermark passed have arrived.
		i := 0
		for i < len(cu.ends) && cu.ends[i] <= m.Commit {
			i++
		}
		cu.ends = cu.ends[i:]
		if len(cu.ends) >= catchUpInFlight {
			return
		}
		from = cu.sentTo + 1
	} else {
		if ok && m.Commit < cu.sentTo && !cu.snapshot && m.Commit >= r.acc.Truncated() {
			// A stream that stalled: no progress for an election
			// timeout (twice as long after each restart, up to eight).
			// The batch the follower waits for was lost, or it is slow:
			// that one batch again; the others stay counted in flight.
			if r.sendCatchUpBatch(m, m.Commit+1, commit, commit) != 0 {
				cu.tick, cu.restarts = now, cu.restarts+1
				r.catchups[m.From] = cu
			}
			return
		}
		// None, or it was a snapshot offer: start from the follower's
		// watermark.
		if t := r.acc.Truncated(); m.Commit < t {
			// What the follower lacks starts below our log: it needs the
			// snapshot. Fetching one can outlast an election timeout; the
			// node layer ignores a repeat while a fetch runs.
			r.catchups[m.From] = catchup{sentTo: t, tick: now, progressed: now, snapshot: true, acked: m.Commit}
			r.send(paxos.Message{Type: paxos.MsgSnapshot, From: r.cfg.ID, To: m.From, Ballot: m.Ballot, Commit: commit, Slot: t})
			return
		}
		cu = catchup{acked: m.Commit, progressed: now}
	}
	sent := false
	for len(cu.ends) < catchUpInFlight && from <= commit {
		last := r.sendCatchUpBatch(m, from, commit, commit)
		if last == 0 {
			break
		}
		cu.ends, cu.sentTo, from, sent = append(cu.ends, last), last, last+1, true
	}
	if sent {
		cu.tick = now
		r.catchups[m.From] = cu
	}
}

// resendGap sends again, at once, the catch-up batches an ack shows lost.
// A follower's ack to a Decide names the Decide's last slot (in Slots); if
// its watermark is below that Decide's first slot, it lacks slots the
// leader sent before it, and since a peer's messages arrive in the order
// they were sent (wire.Transport: one connection; it drops messages,
// never reorders them), those batches were lost: a connection that broke,
// a sender's queue that was full. Left to the stall timer, which sends
// one batch again per election timeout (doubling), a stream that lost a
// window of batches crawled: every batch sent after the lost ones arrived
// across the gap and was counted in flight, and each stall mended one
// batch (node simulation seed 95203: 28 slots every 1.2 s for 40 s while
// the leader wrote 110). A slow follower's acks name each batch as it
// takes it in, its watermark with it: no gap, nothing resent. Resent once
// per watermark (gapResent): the acks to the batches after the gap name
// the same watermark until the resent ones arrive, and an older ack (a
// duplicate, a late one) names a lower one. A network that reorders (the
// simulations') makes this resend batches merely late: duplicates, which
// a follower ignores (an adversarial review measured up to four batches
// per watermark, not growing).
func (r *Replica) resendGap(m paxos.Message, cu *catchup, now int64, commit paxos.Slot) {
	if len(m.Slots) != 1 || m.Slots[0] <= m.Commit+1 || m.Commit < cu.acked || m.Commit < cu.gapResent || m.Commit < r.acc.Truncated() {
		return // no gap; a stale ack; or this gap's batches already resent
	}
	named := m.Slots[0]
	// The gap ends where the named batch begins: after the end of the
	// batch sent before it, if still counted in flight.
	to := named - 1
	for _, e := range cu.ends {
		if e < named && e > m.Commit {
			to = e
		}
	}
	cu.gapResent = m.Commit + 1 // 0 stays "none", and a follower at 0 is served too
	for from, n := m.Commit+1, 0; n < catchUpInFlight && from <= to; n++ {
		last := r.sendCatchUpBatch(m, from, to, commit)
		if last == 0 {
			break
		}
		from, cu.tick = last+1, now
	}
	r.catchups[m.From] = *cu
}

// sendCatchUpBatch sends the follower whose ack m is, as a Decide of m's
// ballot, the chosen entries from slot from up to to (at most
// BatchBytesMax of them), and returns the last slot sent (0: none, the
// log holds none there).
func (r *Replica) sendCatchUpBatch(m paxos.Message, from, to, commit paxos.Slot) paxos.Slot {
	entries := r.acc.EntriesRange(from, to, r.cfg.BatchBytesMax)
	if len(entries) == 0 {
		return 0
	}
	r.send(paxos.Message{Type: paxos.MsgDecide, From: r.cfg.ID, To: m.From, Ballot: m.Ballot, Commit: commit, Entries: entries})
	return entries[len(entries)-1].Slot
}

// stepDecide takes chosen values from the leader. A chosen value is a fact
// whatever the sender's ballot, so they are learned even from a leader this
// node no longer follows — but only from the leader of the ballot the
// message names (wellFormed), or, under no ballot, from a node that does
// not lead and answers this node's PreVote (catchUpPeer): that one is no
// leader's contact, and is not acknowledged.
func (r *Replica) stepDecide(m paxos.Message) {
	for _, e := range m.Entries {
		r.learn.Choose(e)
	}
	r.learn.NoteLeaderCommit(m.Commit)
	r.advance()
	if m.Ballot.IsZero() || m.Ballot.Less(r.acc.Promised()) || r.pledgedElsewhere(m.Ballot) {
		return
	}
	r.prop.OnLeaderContact(m.Ballot)
	ack := paxos.Message{Type: paxos.MsgHeartbeatAck, From: r.cfg.ID, To: m.From, Ballot: m.Ballot, Commit: r.learn.Commit()}
	if len(m.Entries) > 0 {
		// Naming the Decide answered lets the leader see batches lost
		// before it (resendGap).
		ack.Slots = []paxos.Slot{m.Entries[len(m.Entries)-1].Slot}
	}
	r.send(ack)
}

// learnFromLeader marks chosen the slots up to the leader's watermark whose
// local entry was accepted under the leader's own ballot: the leader of a
// ballot proposes one value per slot, so that entry is the chosen value.
// Slots whose entry is missing or older wait for catch-up.
func (r *Replica) learnFromLeader(b paxos.Ballot, leaderCommit paxos.Slot) {
	r.learn.NoteLeaderCommit(leaderCommit)
	start := r.learn.Commit() + 1
	end := leaderCommit
	if end > start+followerScanMax {
		end = start + followerScanMax
	}
	for s := start; s <= end; s++ {
		if r.learn.IsChosen(s) {
			continue
		}
		if e, ok := r.acc.Entry(s); ok && e.Ballot == b {
			r.learn.Choose(e)
		}
	}
}

// catchUpPeer sends a node that asked for votes (or, not able to
// campaign, for news) with a watermark behind this node's the chosen
// values it lacks: a batch of them under no ballot, or a snapshot offer
// if they start below this node's log. A leader does this for its
// followers; this is for when there is none, or none that can reach the
// node: with membership changes the nodes furthest ahead may be ones that
// cannot lead, and a voter that lags must learn through them that it
// votes. Each PreVote brings one batch.
func (r *Replica) catchUpPeer(to paxos.NodeID, theirs paxos.Slot) {
	commit := r.learn.Commit()
	if theirs >= commit {
		return
	}
	if t := r.acc.Truncated(); theirs < t {
		r.send(paxos.Message{Type: paxos.MsgSnapshot, From: r.cfg.ID, To: to, Commit: commit, Slot: t})
		return
	}
	// Up to catchUpPages batches at once: the node asks again only an
	// election timeout later, and one batch per timeout of small entries
	// (the no-ops of a padding) would take long to cross an activation.
	from := theirs + 1
	for i := 0; i < catchUpPages && from <= commit; i++ {
		entries := r.acc.EntriesRange(from, commit, r.cfg.BatchBytesMax)
		if len(entries) == 0 {
			return
		}
		r.send(paxos.Message{Type: paxos.MsgDecide, From: r.cfg.ID, To: to, Commit: commit, Entries: entries})
		from = entries[len(entries)-1].Slot + 1
	}
}

// catchUpPages bounds the batches one PreVote is answered with.
const catchUpPages = 16
