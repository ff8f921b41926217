package paxos

// Membership is the set of nodes that vote. A quorum is any strict majority.
type Membership struct {
	Nodes []NodeID
}

// Size returns the number of voting members.
func (m Membership) Size() int { return len(m.Nodes) }

// QuorumSize returns the smallest number of members that forms a majority.
func (m Membership) QuorumSize() int { return len(m.Nodes)/2 + 1 }

// Contains reports whether id is a member.
func (m Membership) Contains(id NodeID) bool {
	for _, n := range m.Nodes {
		if n == id {
			return true
		}
	}
	return false
}

// IsQuorum reports whether the members for which has returns true form a
// majority. Non-members never count.
func (m Membership) IsQuorum(has func(NodeID) bool) bool {
	n := 0
	for _, id := range m.Nodes {
		if has(id) {
			n++
		}
	}
	return n >= m.QuorumSize()
}
