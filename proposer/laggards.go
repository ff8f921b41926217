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
//     voter whose disk stalls still acknowledges those), and the rule is
//     judged again for every batch of slots: once they are no quorum, the
//     laggards get new slots again;
//   - a slot no quorum voted for in time is sent again to every acceptor
//     that has not voted, laggards included (retransmit), and a laggard
//     that votes is no laggard for an election timeout: with a voter slow
//     to vote (its disk, or the leader's own) the rule would cost a
//     retransmit interval per slot, and it stops paying it; so does a
//     healthy follower further away than the others, whose reports lag
//     the quorum's progress by its own round trip;
//   - a laggard whose catch-up loses the race with the leader's writes
//     (it gains no ground over laggardJudgeChecks election timeouts in
//     which it moved) is taken back: it then catches up a fixed gap, as
//     before the rule, at the price of the memory the rule saves; once it
//     stands still for long (down, or fetching a snapshot) it is judged
//     afresh.

// laggardMark is a laggard's race with the leader's writes: the election
// timeouts in which it moved since the race started, the ground it gained
// in them (what its lag shrank by), how many checks in a row it has
// stood still, and its lag and watermark at the last check.
type laggardMark struct {
	moved, still int
	gained       int64
	lag, last    paxos.Slot
}

// laggardJudgeChecks is how many election timeouts in which it moved a
// laggard's race runs before it is judged (1.5 s at the defaults), and
// how many in a row it must stand still to start a new race (down;
// fetching and installing a snapshot). The checks in which it stands still
// count for neither side: a pause (a collection, a compaction) does not
// lose a race that the follower's catch-up wins while it runs.
const laggardJudgeChecks = 10

// laggard reports whether follower id is left out of new slots' Accepts
// when the others make a quorum: its last reported watermark is more than
// Config.LaggardSlots behind commit, it has not voted lately, and its
// catch-up is not losing the race. A follower that has reported nothing
// to this leader is not one: nothing is known of it.
func (p *Proposer) laggard(id paxos.NodeID, commit paxos.Slot) bool {
	c, ok := p.followerCommit[id]
	if !ok || commit <= c+paxos.Slot(p.cfg.LaggardSlots) || p.keptIn[id] {
		return false
	}
	// One that voted within an election timeout is none: a healthy
	// follower further away than the others reports a watermark as old
	// as its own round trip, which can trail the quorum's progress by
	// more than LaggardSlots; and a laggard that a retransmission reached
	// voted because no quorum did in time: its vote is wanted.
	at, voted := p.votedAt[id]
	return !voted || p.ticks-at >= int64(p.cfg.ElectionTicks)
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
// race with the leader's writes (laggardMark) gained no ground over
// laggardJudgeChecks timeouts in which they moved, and forgets what it
// knew of followers no longer far behind, and of those that stood still
// for long: a laggard taken back that then went down (out of memory,
// holding the head) is left out again once back.
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
		case !ok:
		case c <= m.last:
			if m.still++; m.still >= laggardJudgeChecks {
				delete(p.keptIn, id)
				m.moved, m.gained = 0, 0
			}
		default:
			m.still, m.moved, m.gained = 0, m.moved+1, m.gained+int64(m.lag)-int64(lag)
			if m.moved >= laggardJudgeChecks {
				if m.gained <= 0 {
					p.keptIn[id] = true
				}
				m.moved, m.gained = 0, 0
			}
		}
		m.lag, m.last = lag, c
		p.laggardMarks[id] = m
	}
}

// TakenBack lists the followers taken back for losing their race with
// the leader's writes (judgeLaggards), in no order.
func (p *Proposer) TakenBack() []paxos.NodeID {
	if p.role != Leader {
		return nil
	}
	var out []paxos.NodeID
	for id := range p.keptIn {
		out = append(out, id)
	}
	return out
}
