package statemachine

import (
	"fmt"

	"github.com/paxosd/paxosd/paxos"
)

// The membership in a snapshot: the envelope's tenth element (format
// version 8, written from LevelMembership on, see snapshot.go).
//
// A node restored from a snapshot, or a follower installing one, learns
// the configuration of the slots after it from here: the log before the
// snapshot's slot is gone, and the configuration values in it with it.
// Without this a node would start again from its --peers, the cluster's
// first configuration, after any number of changes.
//
// It is part of the agreement hash: members that disagree on who votes
// from which slot on have diverged, and the state check must say so.

// SnapMembers is paxos.Configs as of the snapshot's applied slot.
type SnapMembers struct {
	_msgpack struct{} `msgpack:",as_array"`

	// Current is the configuration in force; its Version is never 0.
	Current SnapMembership
	// Next is the change chosen and waiting for its activation slot
	// NextAt; Version 0 (no members, NextAt 0) when none waits.
	Next   SnapMembership
	NextAt uint64
	// Alpha is the cluster's α (0: paxos.ActivationSlots).
	Alpha uint64
}

// SnapMembership is a paxos.Membership.
type SnapMembership struct {
	_msgpack struct{} `msgpack:",as_array"`

	Version uint64
	Members []SnapMember // by increasing ID
}

// SnapMember is a paxos.Member.
type SnapMember struct {
	_msgpack struct{} `msgpack:",as_array"`

	ID      uint64
	Addr    string
	Learner bool
}

// snapMembers returns the membership section of a snapshot of sm: new
// slices, so a view keeps it while the state machine goes on.
func (sm *StateMachine) snapMembers() SnapMembers {
	c := &sm.members
	return SnapMembers{Current: snapMembership(c.Current), Next: snapMembership(c.Next), NextAt: uint64(c.NextAt), Alpha: uint64(c.Alpha)}
}

func snapMembership(m paxos.Membership) SnapMembership {
	out := SnapMembership{Version: m.Version, Members: make([]SnapMember, len(m.Members))}
	for i, x := range m.Members {
		out.Members[i] = SnapMember{ID: uint64(x.ID), Addr: x.Addr, Learner: x.Learner}
	}
	return out
}

// checkMembersView refuses to freeze a state of LevelMembership or more
// that holds no membership, which would be written as a format 8
// snapshot without one. The node sets the bootstrap configuration
// (SetBootstrapMembers) before it applies or snapshots anything, so this
// is a bug; refusing it keeps a snapshot from ever telling a node that
// restores it "no membership", from which the node would fall back to its
// --peers and so to the cluster's first configuration — the very thing a
// format 8 snapshot is there to prevent. The restore refuses such a
// snapshot too. (Hash still encodes the empty section rather than fail: a
// replica without a membership then hashes differently from those with
// one, and the state check says so.)
func (sm *StateMachine) checkMembersView(version uint64) error {
	if version >= 8 && sm.members.Current.Version == 0 {
		return fmt.Errorf("service: snapshot at slot %d, cluster level %d, without a membership (set the bootstrap configuration first)",
			sm.applied, sm.level)
	}
	return nil
}

// restoreMembers checks st.Members and makes it the membership, from
// LevelMembership on; below it the snapshot holds none (nor the section),
// and the membership stays zero for the node to set the bootstrap one.
func (sm *StateMachine) restoreMembers(st *SnapshotState) error {
	sn := &st.Members
	if st.Level.Level < LevelMembership {
		return nil
	}
	var c paxos.Configs
	var err error
	if sn.Current.Version == 0 {
		return badSnapshot("membership of version 0: a snapshot from cluster level %d on holds the configuration in force", LevelMembership)
	}
	if c.Current, err = restoreMembership(&sn.Current); err != nil {
		return badSnapshot("configuration in force: %v", err)
	}
	c.Alpha = paxos.Slot(sn.Alpha)
	if sn.Next.Version == 0 {
		if len(sn.Next.Members) != 0 || sn.NextAt != 0 {
			return badSnapshot("no pending configuration, yet %d members in force from slot %d", len(sn.Next.Members), sn.NextAt)
		}
		sm.members = c
		return nil
	}
	if sn.Next.Version != sn.Current.Version+1 {
		return badSnapshot("pending configuration version %d after version %d: a change adds one", sn.Next.Version, sn.Current.Version)
	}
	if c.Next, err = restoreMembership(&sn.Next); err != nil {
		return badSnapshot("pending configuration: %v", err)
	}
	// A change chosen at slot j is in force from j+α, and pending only
	// while the applied slot is below j+α-1 (paxos.Configs.Settle): j =
	// NextAt-α must be a slot at or below the applied one, and NextAt
	// above the applied slot plus one.
	alpha := uint64(c.Activation())
	if sn.NextAt <= alpha || sn.NextAt-alpha > st.Applied {
		return badSnapshot("pending configuration in force from slot %d with α %d: not chosen at or before the applied slot %d",
			sn.NextAt, alpha, st.Applied)
	}
	if sn.NextAt-1 <= st.Applied {
		return badSnapshot("pending configuration in force from slot %d: already in force at the applied slot %d", sn.NextAt, st.Applied)
	}
	c.NextAt = paxos.Slot(sn.NextAt)
	sm.members = c
	return nil
}

// restoreMembership checks a snapshot's configuration: members by
// strictly increasing id, valid as paxos.Membership.Validate says.
func restoreMembership(sm *SnapMembership) (paxos.Membership, error) {
	m := paxos.Membership{Version: sm.Version}
	for i, x := range sm.Members {
		if i > 0 && x.ID <= sm.Members[i-1].ID {
			return m, fmt.Errorf("version %d: member %d out of order", sm.Version, x.ID)
		}
		if x.ID > uint64(^paxos.NodeID(0)) {
			return m, fmt.Errorf("version %d: member id %d out of range", sm.Version, x.ID)
		}
		m.Members = append(m.Members, paxos.Member{ID: paxos.NodeID(x.ID), Addr: x.Addr, Learner: x.Learner})
	}
	if err := m.Validate(); err != nil {
		return m, fmt.Errorf("version %d: %w", sm.Version, err)
	}
	return m, nil
}
