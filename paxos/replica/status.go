package replica

import (
	"slices"

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
	// Truncated is the highest slot gone from the log (see Truncate).
	Truncated paxos.Slot
	NextSlot  paxos.Slot
	// MaxSlot is the highest slot this node's acceptor holds a value for
	// (at least Commit once the log is caught up).
	MaxSlot  paxos.Slot
	InFlight int
	Pending  int
	// Ticks counts Tick calls; LeaseTick is the tick of the newest
	// heartbeat a quorum acknowledged (-1: no lease; see
	// proposer.LeaseTick); ReadReady says the leader's watermark covers
	// every slot it recovered, so its applied state has every write any
	// leader acknowledged.
	Ticks     int64
	LeaseTick int64
	ReadReady bool
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
		Truncated:    r.acc.Truncated(),
		NextSlot:     r.prop.NextSlot(),
		MaxSlot:      r.acc.MaxSlot(),
		InFlight:     r.prop.InFlight(),
		Pending:      r.prop.Pending(),
		Ticks:        r.prop.Ticks(),
		LeaseTick:    r.prop.LeaseTick(),
		ReadReady:    r.prop.ReadReady(r.learn.Commit()),
	}
}

// Laggards lists, in id order, the followers this leader leaves out of
// the Accepts of the next slots while they catch up (proposer.Laggards).
func (r *Replica) Laggards() []paxos.NodeID {
	c := r.learn.Commit()
	set := r.prop.Laggards(c, c+1, c+1)
	if set == nil {
		return nil
	}
	out := make([]paxos.NodeID, 0, len(set))
	for id := range set {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// Entry returns the entry this node holds for slot (chosen if slot is at or
// below Status().Commit).
func (r *Replica) Entry(slot paxos.Slot) (paxos.Entry, bool) { return r.acc.Entry(slot) }

// LaggardsTakenBack lists, in id order, the followers far behind that this
// leader sends new slots again because their catch-up lost ground to its
// writes (proposer.TakenBack).
func (r *Replica) LaggardsTakenBack() []paxos.NodeID {
	out := r.prop.TakenBack()
	slices.Sort(out)
	return out
}
