package paxos

import "fmt"

// NodeID names a member of the cluster. Zero is not a valid node id; it
// stands for "none" (for example, no known leader).
type NodeID uint32

// Slot numbers a position in the replicated log. Slots start at 1; zero
// means "none" (for example, nothing committed yet).
type Slot uint64

// Ballot orders proposers' attempts to lead. Ballots compare by Round, then
// by Node, so two nodes never share a ballot. The zero Ballot is below every
// ballot a proposer uses.
type Ballot struct {
	Round uint64
	Node  NodeID
}

// Compare returns -1, 0 or +1 as b is below, equal to, or above o.
func (b Ballot) Compare(o Ballot) int {
	switch {
	case b.Round < o.Round:
		return -1
	case b.Round > o.Round:
		return 1
	case b.Node < o.Node:
		return -1
	case b.Node > o.Node:
		return 1
	}
	return 0
}

// Less reports whether b orders before o.
func (b Ballot) Less(o Ballot) bool { return b.Compare(o) < 0 }

// IsZero reports whether b is the zero ballot (never used by a proposer).
func (b Ballot) IsZero() bool { return b == Ballot{} }

// Next returns the ballot node uses to take over after seeing b: one round
// higher, owned by node.
func (b Ballot) Next(node NodeID) Ballot { return Ballot{Round: b.Round + 1, Node: node} }

// MaxBallot returns the larger of a and b.
func MaxBallot(a, b Ballot) Ballot {
	if a.Less(b) {
		return b
	}
	return a
}

func (b Ballot) String() string { return fmt.Sprintf("%d.%d", b.Round, b.Node) }
