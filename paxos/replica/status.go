package replica

import (
	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/proposer"
)

// Status is a snapshot of a replica's protocol state, for operators.
type Status struct {
	ID           paxos.NodeID
	Role         proposer.Role
	Ballot       paxos.Ballot
	Promised     paxos.Ballot
	Leader       paxos.NodeID
	Commit       paxos.Slot
	LeaderCommit paxos.Slot
	NextSlot     paxos.Slot
	InFlight     int
	Pending      int
}

// Status returns the replica's current status.
func (r *Replica) Status() Status {
	return Status{
		ID:           r.cfg.ID,
		Role:         r.prop.Role(),
		Ballot:       r.prop.Ballot(),
		Promised:     r.acc.Promised(),
		Leader:       r.prop.Leader(),
		Commit:       r.learn.Commit(),
		LeaderCommit: r.learn.LeaderCommit(),
		NextSlot:     r.prop.NextSlot(),
		InFlight:     r.prop.InFlight(),
		Pending:      r.prop.Pending(),
	}
}

// Entry returns the entry this node holds for slot (chosen if slot is at or
// below Status().Commit).
func (r *Replica) Entry(slot paxos.Slot) (paxos.Entry, bool) { return r.acc.Entry(slot) }
