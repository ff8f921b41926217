package wire

import "github.com/paxosd/paxosd/paxos"

// MemberInfo describes one member (version 16), in the answers of the
// member operations.
type MemberInfo struct {
	ID   paxos.NodeID
	Addr string
	// Learner: it receives the log but does not vote.
	Learner bool
	// Next says the member belongs to a configuration chosen but not yet
	// in force (its role there is Learner); Leaving that it is in force
	// but not in the next one.
	Next, Leaving bool
	// Reachable, Commit and Lag are the answering node's view: whether it
	// has a live connection to the member (true for itself), the
	// member's chosen watermark as last heard (the answering node's own
	// for itself), and how many slots it is behind the answering node's
	// watermark. Only a leader hears every member's watermark: the
	// others' Commit is 0 for the rest.
	Reachable bool
	Commit    paxos.Slot
	Lag       uint64
}

var memberInfoFields = []field[MemberInfo]{
	uintField("id", func(m *MemberInfo) *paxos.NodeID { return &m.ID }),
	strField("addr", func(m *MemberInfo) *string { return &m.Addr }),
	boolField("learner", func(m *MemberInfo) *bool { return &m.Learner }),
	boolField("next", func(m *MemberInfo) *bool { return &m.Next }),
	boolField("leaving", func(m *MemberInfo) *bool { return &m.Leaving }),
	boolField("reachable", func(m *MemberInfo) *bool { return &m.Reachable }),
	uintField("commit", func(m *MemberInfo) *paxos.Slot { return &m.Commit }),
	uintField("lag", func(m *MemberInfo) *uint64 { return &m.Lag }),
}
