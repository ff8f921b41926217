package proposer

import "github.com/paxosd/paxosd/paxos"

// Tick advances time by one tick. promised is the local acceptor's promise
// and commit the local chosen watermark; settled reports which acceptors'
// votes an in-flight slot still needs (for retransmission).
func (p *Proposer) Tick(promised paxos.Ballot, commit paxos.Slot, settled func(paxos.Slot, paxos.NodeID) bool) []paxos.Message {
	p.ticks++
	p.sinceLeader++
	if p.role == Leader {
		return p.tickLeader(commit, settled)
	}
	p.electionElapsed++
	if !p.view.Current().IsVoter(p.id) {
		// A learner, or a node not (or no longer) in the configuration
		// as far as it knows: it follows, and never campaigns. Without a
		// leader for an election timeout it still sends PreVotes — which
		// it never acts on — because whoever is ahead of it answers one
		// with what it lacks (the replica's catch-up): the configuration
		// it lags behind may be one in which it votes, and nobody else
		// may be able to lead.
		if p.role != Follower {
			p.Abdicate()
		}
		if p.electionElapsed < p.electionTimeout {
			return nil
		}
		p.electionElapsed, p.leader = 0, 0
		p.resetElectionTimeout()
		probe := paxos.MaxBallot(p.maxSeen, promised).Next(p.id)
		return p.broadcast(paxos.Message{Type: paxos.MsgPreVote, Ballot: probe, Commit: commit}, false)
	}
	if p.electionElapsed < p.electionTimeout {
		return p.resendPrepares()
	}
	return p.startPreVote(promised, commit)
}

// resendPrepares asks again, once per retransmit interval, the acceptors
// whose Promise is not all in: the first Prepare or a page request may
// have been lost, and waiting for the election timeout would throw away
// the pages already collected.
func (p *Proposer) resendPrepares() []paxos.Message {
	if p.role != Candidate || p.ticks-p.prepareTick < p.retransmitTicks() {
		return nil
	}
	p.prepareTick = p.ticks
	var out []paxos.Message
	for _, id := range p.view.Voters() {
		if id == p.id || p.votes[id] {
			continue
		}
		p.promisedFrom[id] = p.from
		from, paging := p.pageFrom[id]
		if !paging {
			from = p.from
		}
		out = append(out, paxos.Message{Type: paxos.MsgPrepare, From: p.id, To: id, Ballot: p.ballot, Slot: from, More: true, Transfer: p.transfer})
	}
	return out
}

func (p *Proposer) tickLeader(commit paxos.Slot, settled func(paxos.Slot, paxos.NodeID) bool) []paxos.Message {
	var out []paxos.Message
	p.heartbeatElapsed++
	current := p.view.Current()
	if p.heartbeatElapsed >= p.cfg.HeartbeatTicks {
		p.heartbeatElapsed = 0
		if !current.IsVoter(p.id) {
			// The configuration in force no longer has this node vote (it
			// was removed, or made a learner): hand leadership, giving
			// the lease up explicitly, to a voter that knows it votes (its
			// watermark is past the change) and answered lately. Until
			// one does, lead on: the others may not know of the change
			// yet, and this node is the one to tell them. Tried every
			// heartbeat interval: writes wait meanwhile.
			if p.handoverAfter == 0 {
				p.handoverAfter = commit
			}
			if to := p.handoverTarget(current); to != 0 {
				if m, err := p.TransferTo(to); err == nil {
					return append(out, m)
				}
			}
		}
		out = append(out, p.heartbeatRound(commit)...)
		out = append(out, p.retransmit(commit, settled)...)
	}
	p.electionElapsed++
	if p.electionElapsed < p.cfg.ElectionTicks {
		return out
	}
	p.electionElapsed = 0
	p.active[p.id] = true
	if !current.IsQuorum(func(id paxos.NodeID) bool { return p.active[id] }) {
		p.stepDown(p.ballot) // check-quorum: we may be cut off from a majority
		return out
	}
	p.active = map[paxos.NodeID]bool{}
	p.judgeLaggards(commit)
	if len(p.inflight) > 0 && commit == p.commitAtCheck {
		p.stalledChecks++
		if p.stalledChecks >= 2 {
			p.stepDown(p.ballot) // heartbeats prove progress, not just liveness
			return out
		}
	} else {
		p.stalledChecks = 0
	}
	p.commitAtCheck = commit
	return out
}

// heartbeatRound broadcasts a heartbeat carrying a fresh round number (in
// Slot); the round's acknowledgements extend the leader's lease.
func (p *Proposer) heartbeatRound(commit paxos.Slot) []paxos.Message {
	p.hbRound++
	if len(p.hbRoundTick) > 4*p.cfg.ElectionTicks {
		// Rounds nobody acknowledged; they can no longer extend the lease.
		p.hbRoundTick, p.hbAcks = map[uint64]int64{}, map[uint64]map[paxos.NodeID]bool{}
	}
	p.hbRoundTick[p.hbRound] = p.ticks
	p.hbAcks[p.hbRound] = map[paxos.NodeID]bool{}
	return p.broadcast(paxos.Message{Type: paxos.MsgHeartbeat, Ballot: p.ballot, Commit: commit, Slot: paxos.Slot(p.hbRound)}, false)
}

// startPreVote begins a campaign without disturbing anyone: nothing is
// promised or persisted until a quorum says a new leader is welcome.
func (p *Proposer) startPreVote(promised paxos.Ballot, commit paxos.Slot) []paxos.Message {
	p.role = PreCandidate
	p.leader = 0
	p.transfer = paxos.Ballot{}
	p.electionElapsed = 0
	p.resetElectionTimeout()
	p.prevoteBallot = paxos.MaxBallot(p.maxSeen, promised).Next(p.id)
	p.preVoteRounds++
	p.votes = map[paxos.NodeID]bool{p.id: true}
	p.rejects = map[paxos.NodeID]bool{}
	if p.view.Current().IsQuorum(func(id paxos.NodeID) bool { return p.votes[id] }) {
		return p.becomeCandidate(promised, commit)
	}
	return p.sendTo(p.view.Current().Voters(), paxos.Message{Type: paxos.MsgPreVote, Ballot: p.prevoteBallot, Commit: commit}, false)
}

// PreVoteBallot is the probe ballot of this node's current (or last)
// PreVote round.
func (p *Proposer) PreVoteBallot() paxos.Ballot { return p.prevoteBallot }

// PreVoteRound numbers this node's current (or last) PreVote round: one
// more for each round started, whatever its ballot.
func (p *Proposer) PreVoteRound() uint64 { return p.preVoteRounds }

// HandlePreVote answers another node's PreVote. It grants only out of lease
// (see InLease): this node has gone a whole election timeout without
// hearing from a leader (its own campaigning does not restart that count,
// and a node that just restarted and forgot whom it heard from grants
// nothing for as long), so a healthy leader keeps its followers and its
// lease stays sound; and only if the candidate's watermark is not behind
// ours (so the most up-to-date reachable node wins and Phase 1 stays
// small).
func (p *Proposer) HandlePreVote(m paxos.Message, commit paxos.Slot) paxos.Message {
	current := p.view.Current()
	// A node that cannot lead itself (a learner, or a voter of the
	// configuration its lagging candidate still campaigns in, removed
	// since) does not insist on a candidate as far ahead as itself: it may
	// be that no voter is.
	ahead := m.Commit >= commit || !current.IsVoter(p.id)
	grant := !p.InLease() && ahead && current.IsVoter(m.From)
	return paxos.Message{Type: paxos.MsgPreVoteReply, From: p.id, To: m.From, Ballot: m.Ballot, Commit: commit, Reject: !grant}
}

// OnPreVoteReply counts PreVote answers; a quorum of grants starts Phase 1.
func (p *Proposer) OnPreVoteReply(m paxos.Message, promised paxos.Ballot, commit paxos.Slot) []paxos.Message {
	if p.role != PreCandidate || m.Ballot != p.prevoteBallot {
		return nil
	}
	if m.Reject {
		p.rejects[m.From] = true
		if p.view.Current().IsQuorum(func(id paxos.NodeID) bool { return p.rejects[id] }) {
			p.role = Follower // wait for the leader, or for the next timeout
		}
		return nil
	}
	p.votes[m.From] = true
	if !p.view.Current().IsQuorum(func(id paxos.NodeID) bool { return p.votes[id] }) {
		return nil
	}
	return p.becomeCandidate(promised, commit)
}

// becomeCandidate starts Phase 1 under a fresh ballot, covering every slot
// from the first one this node does not know to be chosen. The caller
// (the replica) makes this node's own acceptor promise the ballot, and the
// Prepares leave only once that promise is durable (paxos.NeedsPersist):
// a node that crashes and restarts then never campaigns again under a
// ballot an earlier incarnation may have used. The Prepares go to the
// voters of the current and of the next configuration: the candidate
// leads once a quorum of the configuration of its first slot promised,
// and proposes in the next configuration's slots once a quorum of that
// one did too (covered).
func (p *Proposer) becomeCandidate(promised paxos.Ballot, commit paxos.Slot) []paxos.Message {
	p.role = Candidate
	p.ballot = paxos.MaxBallot(p.maxSeen, promised).Next(p.id)
	p.Observe(p.ballot)
	p.from = commit + 1
	p.votes = map[paxos.NodeID]bool{}
	p.promisedFrom = map[paxos.NodeID]paxos.Slot{}
	p.pageFrom = map[paxos.NodeID]paxos.Slot{}
	p.recovered = map[paxos.Slot]paxos.Entry{}
	p.chosenSeen = map[paxos.Slot]paxos.Entry{}
	p.maxReported = 0
	p.prepareTick = p.ticks
	voters := p.view.Voters()
	for _, id := range voters {
		p.promisedFrom[id] = p.from
	}
	return p.sendTo(voters, paxos.Message{Type: paxos.MsgPrepare, Ballot: p.ballot, Slot: p.from, More: true, Transfer: p.transfer}, true)
}

// OnPromise collects Phase 1 answers. A Promise may come in pages (More):
// each page must start where the previous one ended, and the next one is
// asked for with a Prepare from the slot after its last entry; an acceptor
// counts once its last page is in. With a quorum the node leads: it
// returns the messages to send and the entries it learned are chosen; it
// proposes the recovered values (and no-ops for holes) from Flush on. A
// leader takes Promises too: those of the voters of a configuration that
// took effect while it led (askCoverage).
func (p *Proposer) OnPromise(m paxos.Message, commit paxos.Slot) (msgs []paxos.Message, chosen []paxos.Entry) {
	if (p.role != Candidate && p.role != Leader) || m.Ballot != p.ballot || p.votes[m.From] {
		return nil, nil
	}
	base, asked := p.promisedFrom[m.From]
	if !asked {
		return nil, nil // not a Prepare of ours: stale or stray
	}
	want, paging := p.pageFrom[m.From]
	if !paging {
		want = base
	}
	if m.Slot != want || (m.More && len(m.Entries) == 0) ||
		(len(m.Entries) > 0 && m.Entries[len(m.Entries)-1].Slot > base+paxos.SlotsAheadMax) {
		return nil, nil // a stale or repeated page, or a malformed or absurd one
	}
	if p.role == Candidate {
		// A page is progress: the election is not timing out while the
		// Promises come in, however many pages they take.
		p.electionElapsed = 0
	}
	chosen = p.record(m)
	if m.More {
		next := m.Entries[len(m.Entries)-1].Slot + 1
		p.pageFrom[m.From] = next
		return []paxos.Message{{Type: paxos.MsgPrepare, From: p.id, To: m.From, Ballot: p.ballot, Slot: next, More: true}}, chosen
	}
	p.votes[m.From] = true
	delete(p.pageFrom, m.From)
	if p.role == Leader || !p.view.At(p.from).IsQuorum(func(id paxos.NodeID) bool { return p.votes[id] }) {
		return nil, chosen
	}
	return p.becomeLeader(commit)
}

// record notes the entries a Promise (page) reports: the highest-ballot
// value per slot, and which are chosen (at or below the sender's
// watermark). A leader notes only the slots it has not proposed at yet
// (those it has were covered by a quorum of their configuration already)
// and returns the ones it learned are chosen.
func (p *Proposer) record(m paxos.Message) (chosen []paxos.Entry) {
	for _, e := range m.Entries {
		if p.role == Leader && e.Slot < p.nextSlot {
			continue
		}
		if e.Slot > p.maxReported {
			p.maxReported = e.Slot
		}
		if e.Slot <= m.Commit {
			if _, ok := p.chosenSeen[e.Slot]; !ok {
				p.chosenSeen[e.Slot] = e
				if p.role == Leader {
					chosen = append(chosen, e)
				}
			}
		}
		if r, ok := p.recovered[e.Slot]; !ok || r.Ballot.Less(e.Ballot) {
			p.recovered[e.Slot] = e
		}
	}
	if p.role == Leader && p.maxReported > p.readyFrom {
		// An earlier leader may have had these chosen and acknowledged.
		p.readyFrom = p.maxReported
	}
	return chosen
}

func (p *Proposer) becomeLeader(commit paxos.Slot) (msgs []paxos.Message, chosen []paxos.Entry) {
	p.role = Leader
	p.leader = p.id
	p.leaderBallot, p.transfer = p.ballot, paxos.Ballot{}
	p.electionElapsed, p.heartbeatElapsed, p.stalledChecks = 0, 0, 0
	p.active = map[paxos.NodeID]bool{}
	p.hbRoundTick, p.hbAcks, p.leaseTick = map[uint64]int64{}, map[uint64]map[paxos.NodeID]bool{}, -1
	p.commitAtCheck = commit
	p.inflight, p.inflightBytes = map[paxos.Slot]proposal{}, 0
	p.inflightLow = commit + 1
	p.followerCommit, p.handoverAfter = map[paxos.NodeID]paxos.Slot{}, 0
	p.heardAt, p.votedAt, p.votedTo = map[paxos.NodeID]int64{}, map[paxos.NodeID]int64{}, map[paxos.NodeID]paxos.Slot{}
	p.laggardMarks, p.keptIn = map[paxos.NodeID]laggardMark{}, map[paxos.NodeID]bool{}
	p.nextSlot = max(p.from, commit+1)
	for s := range p.recovered {
		if s < p.nextSlot {
			delete(p.recovered, s)
		}
	}
	for s := p.nextSlot; s <= p.maxReported; s++ {
		if e, ok := p.chosenSeen[s]; ok {
			chosen = append(chosen, e)
		}
	}
	p.readyFrom = max(p.maxReported, p.nextSlot-1)
	if at := p.view.PendingAt(); at != 0 {
		p.padTo = at - 1
	}
	msgs = p.heartbeatRound(commit)
	return msgs, chosen
}

// handoverTarget picks the voter of m to hand leadership to: one that
// answered in the last check period with a watermark at least
// handoverAfter, the one furthest ahead; 0 if none, or while fewer than a
// quorum of m's voters are known that far: until then the voters that
// lag may still take the older configuration for the one in force, and
// this node is the one to tell them.
func (p *Proposer) handoverTarget(m paxos.Membership) paxos.NodeID {
	if !m.IsQuorum(func(id paxos.NodeID) bool { c, ok := p.followerCommit[id]; return ok && c >= p.handoverAfter }) {
		return 0
	}
	var best paxos.NodeID
	for _, id := range m.Voters() {
		c, ok := p.followerCommit[id]
		if id == p.id || !p.active[id] || !ok || c < p.handoverAfter {
			continue
		}
		if best == 0 || c > p.followerCommit[best] {
			best = id
		}
	}
	return best
}

// NoteFollowerCommit records the watermark a follower reported.
func (p *Proposer) NoteFollowerCommit(id paxos.NodeID, commit paxos.Slot) {
	if c, ok := p.followerCommit[id]; p.role == Leader && (!ok || commit > c) {
		p.followerCommit[id] = commit
	}
}
