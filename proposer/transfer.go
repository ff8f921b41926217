package proposer

import (
	"fmt"

	"github.com/paxosd/paxosd/paxos"
)

// Leadership transfer (docs/DESIGN.md, "Leadership transfer"), as Raft's
// TimeoutNow:
//
//  1. The leader of ballot b steps down at once: it stops proposing and
//     serving lease reads (its lease is given up before anything else is
//     sent), and sends MsgTimeoutNow{Ballot: b} to the target.
//  2. The target, if it still follows the leader of b and heard from it
//     within an election timeout, campaigns at once (no PreVote), its
//     Prepares carrying Transfer = b.
//  3. A member in lease refuses Prepares — the lease a leader reads under
//     rests on it — except one whose Transfer names the very leadership
//     it pledged to: that leader gave its lease up before asking. A member
//     that has since followed a newer leader refuses as before, so a stale
//     or duplicated TimeoutNow cannot break anyone else's lease.
//
// If the target never campaigns (it is down, or the message is lost), the
// old leader, now a follower, and the others elect as after a crash, one
// election timeout later.

// TransferTo hands leadership to member to: it steps down and returns the
// MsgTimeoutNow to send. It fails unless this node leads and to is another
// member.
func (p *Proposer) TransferTo(to paxos.NodeID) (paxos.Message, error) {
	if p.role != Leader {
		return paxos.Message{}, paxos.ErrNoLeader
	}
	if to == p.id || !p.view.Current().IsVoter(to) {
		return paxos.Message{}, fmt.Errorf("proposer: cannot hand leadership to node %d: not another voting member", to)
	}
	b := p.ballot
	p.stepDown(b)
	// Keep the pledge to our own (now given up) leadership for an election
	// timeout: no PreVote of a third node is granted while the target
	// takes over, and the target's Prepare, naming b, is still promised.
	p.leaderBallot, p.sinceLeader = b, 0
	return paxos.Message{Type: paxos.MsgTimeoutNow, From: p.id, To: to, Ballot: b}, nil
}

// HandleTimeoutNow starts a campaign at once if m comes from the leader
// this node follows, under the ballot it follows it at, and that leader is
// fresh in mind (within an election timeout); otherwise it ignores m.
func (p *Proposer) HandleTimeoutNow(m paxos.Message, promised paxos.Ballot, commit paxos.Slot) []paxos.Message {
	if p.role == Leader || p.role == Candidate || m.Ballot.Node != m.From || !p.view.Current().IsVoter(p.id) ||
		m.Ballot != p.leaderBallot || p.sinceLeader >= p.cfg.ElectionTicks {
		return nil
	}
	msgs := p.becomeCandidateFor(m.Ballot, promised, commit)
	return msgs
}

// becomeCandidateFor campaigns with Prepares that name the leadership
// handed over.
func (p *Proposer) becomeCandidateFor(from paxos.Ballot, promised paxos.Ballot, commit paxos.Slot) []paxos.Message {
	p.transfer = from
	p.electionElapsed = 0
	p.resetElectionTimeout()
	return p.becomeCandidate(promised, commit)
}

// ReleasedBy reports whether a Prepare carrying transfer may be promised
// although this node is in lease: transfer names the leadership this node
// pledged its lease to, which its leader gave up when it handed over.
func (p *Proposer) ReleasedBy(transfer paxos.Ballot) bool {
	return !transfer.IsZero() && transfer == p.leaderBallot && p.role != Leader
}

// Follows reports whether b is the leadership this node follows (and
// pledged its lease to), so a Prepare under b breaks no lease.
func (p *Proposer) Follows(b paxos.Ballot) bool {
	return !b.IsZero() && b == p.leaderBallot && p.role != Leader
}
