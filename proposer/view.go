package proposer

import "github.com/paxosd/paxosd/paxos"

// View is what the proposer reads of its replica's state: the membership
// the chosen log describes at the replica's watermark (paxos.Configs) and
// which slots are known chosen.
type View interface {
	// At returns the configuration that governs slot s; exact for every
	// slot up to the watermark plus paxos.ActivationSlots, which is as far
	// as a leader proposes.
	At(s paxos.Slot) paxos.Membership
	// Current returns the configuration of the slot after the watermark:
	// the one elections, leases and liveness checks count in.
	Current() paxos.Membership
	// Nodes returns every member, voter or learner, of the current and
	// the next configuration: whom a leader talks to.
	Nodes() []paxos.NodeID
	// Voters returns the voters of the current and the next
	// configuration: whom a candidate asks for promises.
	Voters() []paxos.NodeID
	// IsChosen reports whether slot is known chosen.
	IsChosen(s paxos.Slot) bool
	// PendingAt returns the slot from which a chosen change governs, 0
	// if none waits.
	PendingAt() paxos.Slot
	// Activation returns the cluster's α (paxos.Configs.Activation).
	Activation() paxos.Slot
}

// staticView is a fixed configuration, for a proposer used on its own
// (tests): nothing is known chosen beyond what Flush's caller says.
type staticView struct{ m paxos.Membership }

func (v staticView) At(paxos.Slot) paxos.Membership { return v.m }
func (v staticView) Current() paxos.Membership      { return v.m }
func (v staticView) Nodes() []paxos.NodeID {
	out := make([]paxos.NodeID, 0, len(v.m.Members))
	for _, x := range v.m.Members {
		out = append(out, x.ID)
	}
	return out
}
func (v staticView) Voters() []paxos.NodeID   { return v.m.Voters() }
func (v staticView) IsChosen(paxos.Slot) bool { return false }
func (v staticView) PendingAt() paxos.Slot    { return 0 }
func (v staticView) Activation() paxos.Slot   { return paxos.ActivationSlots }

// covered reports whether this leader's Phase 1 covers slot s: a quorum
// of the voters of s's configuration promised its ballot and reported
// everything they accepted from s (or from below it) on. Only then may it
// propose at s. A configuration that takes effect while it leads adds
// voters it never asked (askCoverage): until a quorum of them answers,
// the slots that configuration governs wait.
func (p *Proposer) covered(s paxos.Slot) bool {
	return p.view.At(s).IsQuorum(func(id paxos.NodeID) bool {
		from, ok := p.promisedFrom[id]
		return ok && p.votes[id] && from <= s
	})
}

// Covers reports whether this node leads and its Phase 1 covers slot s.
func (p *Proposer) Covers(s paxos.Slot) bool { return p.role == Leader && p.covered(s) }

// askCoverage asks the voters of slot s's configuration that have not
// promised this leader's ballot for their promise, reporting from s on
// (paged like any Promise), at most once per retransmit interval.
func (p *Proposer) askCoverage(s paxos.Slot) []paxos.Message {
	if p.ticks-p.prepareTick < p.retransmitTicks() && p.askedFrom == s {
		return nil
	}
	p.prepareTick, p.askedFrom = p.ticks, s
	var out []paxos.Message
	for _, id := range p.view.At(s).Voters() {
		if p.votes[id] && p.promisedFrom[id] <= s {
			continue
		}
		// One asked before from another slot (by the campaign, from the
		// first slot it did not know chosen) is asked again from s: its
		// log may no longer reach back to the earlier slot.
		from, paging := p.pageFrom[id]
		if base, asked := p.promisedFrom[id]; !asked || base != s {
			p.promisedFrom[id], p.votes[id] = s, false
			delete(p.pageFrom, id)
			paging = false
		}
		if !paging {
			from = s
		}
		out = append(out, paxos.Message{Type: paxos.MsgPrepare, From: p.id, To: id, Ballot: p.ballot, Slot: from, More: true})
	}
	return out
}
