package proposer

import "github.com/paxosd/paxosd/paxos"

// A follower far behind the leader (one restarted after an outage, a
// member being added) catches up through the leader's catch-up stream.
// Were it also sent the Accepts for new slots, it would accept them at the
// head of its log and hold each one in memory until its watermark passed
// it, all through a catch-up that can last tens of seconds under load
// (make bench-scale OUTAGE=5m: 100 MB over the rejoining node's memory
// bound). So a leader leaves such laggards out of the Accepts for new
// slots, as a Raft leader sends nothing new to a follower in snapshot
// state, while the others make a quorum without them. Leaving a node out
// is a lost message to Paxos: always safe. It stays live and fast because
//
//   - the others count only if they vote, not merely answer heartbeats (a
//     voter whose disk stalls still acknowledges those), and
//     the rule is judged again for every batch of slots: once they are no
//     quorum, the laggards get new slots again;
//   - a slot no quorum voted for in time is sent again to every acceptor
//     that has not voted, laggards included (retransmit);
//   - a laggard whose catch-up loses the race with the leader's writes
//     (its watermark moves, yet it falls further behind) is taken back:
//     it then catches up a fixed gap, as before the rule, at the price of
//     the memory the rule saves.

// laggardMark is where a laggard stood when its race with the leader's
// writes started (or was last judged), and its watermark at the last
// election timeout.
type laggardMark struct {
	tick int64
	lag  paxos.Slot // the leader's watermark minus its own
	last paxos.Slot // its watermark at the last judgeLaggards
}

// laggardJudgeChecks is how many election timeouts a laggard's catch-up
// is watched before it is judged losing: long enough that a pause (a
// collection, a compaction, the snapshot it installs) is not taken for a
// lost race.
const laggardJudgeChecks = 10

// laggard reports whether follower id is left out of new slots' Accepts
// when the others make a quorum: its last reported watermark is more than
// Config.LaggardSlots behind commit, and its catch-up is not losing the
// race. A follower that has reported nothing to this leader is not one:
// nothing is known of it.
func (p *Proposer) laggard(id paxos.NodeID, commit paxos.Slot) bool {
	c, ok := p.followerCommit[id]
	return ok && commit > c+paxos.Slot(p.cfg.LaggardSlots) && !p.keptIn[id]
}

// NoteVote records that node id (this one included) voted for slots of
// this leader's.
func (p *Proposer) NoteVote(id paxos.NodeID, slots []paxos.Slot) {
	if p.role != Leader {
		return
	}
	p.votedAt[id] = p.ticks
	for _, s := range slots {
		p.votedTo[id] = max(p.votedTo[id], s)
	}
}

// voting reports whether node id counts toward the quorum that lets the
// laggards of slots from on be left out: it answered within an election
// timeout (this node always has), and it voted within a retransmit
// interval or for every slot before from (an idle leader has no recent
// votes to go by). A voter whose disk stalls answers heartbeats but
// votes for nothing.
func (p *Proposer) voting(id paxos.NodeID, from paxos.Slot) bool {
	if at, ok := p.heardAt[id]; id != p.id && (!ok || p.ticks-at >= int64(p.cfg.ElectionTicks)) {
		return false
	}
	at, ok := p.votedAt[id]
	return ok && (p.ticks-at <= p.retransmitTicks() || p.votedTo[id] >= from-1)
}

// Laggards returns the followers this leader leaves out of the Accepts
// for the slots from..to and of the commit announcements, nil if none:
// the laggards, provided that the voters that are not laggards and vote
// (voting) make a quorum of every configuration those slots fall in.
// Without such a quorum every laggard that votes may be needed, and none
// is left out.
func (p *Proposer) Laggards(commit, from, to paxos.Slot) map[paxos.NodeID]bool {
	if p.role != Leader {
		return nil
	}
	var out map[paxos.NodeID]bool
	for _, id := range p.view.Nodes() {
		if id != p.id && p.laggard(id, commit) {
			if out == nil {
				out = map[paxos.NodeID]bool{}
			}
			out[id] = true
		}
	}
	if out == nil {
		return nil
	}
	voting := func(id paxos.NodeID) bool { return !out[id] && p.voting(id, from) }
	// A range of slots spans at most two configurations, the one in
	// force and the next (paxos.Configs.At).
	if !p.view.At(from).IsQuorum(voting) || !p.view.At(to).IsQuorum(voting) {
		return nil
	}
	return out
}

// judgeLaggards, at each election timeout, takes back the laggards whose
// catch-up lost ground over laggardJudgeChecks timeouts in each of which
// it moved (one that stands still is fetching or installing a snapshot,
// or down: leaving it out costs nothing, and its race starts again when
// it moves), and forgets what it knew of followers no longer far behind.
func (p *Proposer) judgeLaggards(commit paxos.Slot) {
	for id, c := range p.followerCommit {
		lag := commit - min(c, commit)
		if lag <= paxos.Slot(p.cfg.LaggardSlots) {
			delete(p.laggardMarks, id)
			delete(p.keptIn, id)
			continue
		}
		m, ok := p.laggardMarks[id]
		switch {
		case !ok || c <= m.last:
			// New to the race, or it stood still: a follower restarted
			// after an outage reported a watermark a little above the one
			// it had, then stood still for seconds while it fetched a
			// snapshot, and was judged to have lost a race it had not run.
			m = laggardMark{tick: p.ticks, lag: lag}
		case p.ticks-m.tick < int64(laggardJudgeChecks*p.cfg.ElectionTicks):
		default:
			if lag >= m.lag {
				p.keptIn[id] = true
			}
			m = laggardMark{tick: p.ticks, lag: lag}
		}
		m.last = c
		p.laggardMarks[id] = m
	}
}
