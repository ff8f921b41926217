package statemachine

import "github.com/paxosd/paxosd/paxos"

// The cluster's membership is replicated state like any other: the
// configuration values chosen through the log (paxos.ValueConfig), folded
// by the same rule the protocol core uses (paxos.Configs.Apply), so that
// the state machine and the replica of every member agree on who is a
// member from which slot on. A snapshot carries it, so that a node
// restored from one (or joining the cluster through one) knows the
// configuration of the slots after it.

// Members returns the membership as of Applied: zero (Current version
// 0) until SetBootstrapMembers.
func (sm *StateMachine) Members() paxos.Configs { return sm.members.Clone() }

// SetBootstrapMembers sets the membership a state machine starts from, if
// it has none yet: the cluster's first configuration (version 1), which
// the members that form a cluster are given at start (--peers) and the
// log does not hold. A state machine that applied a configuration value,
// or was restored from a snapshot that holds one, keeps its own.
func (sm *StateMachine) SetBootstrapMembers(c paxos.Configs) {
	if sm.members.Current.Version == 0 {
		sm.members = c.Clone()
	}
}

// applyMembers folds the value chosen at slot into the membership.
func (sm *StateMachine) applyMembers(slot paxos.Slot, v paxos.Value) {
	if sm.members.Current.Version == 0 {
		return
	}
	sm.members.Apply(slot, v)
}

// MembersVersions returns the version of the configuration in force and
// of the latest one chosen (the same unless a change waits to take
// effect): a cheap way to notice a change.
func (sm *StateMachine) MembersVersions() (current, latest uint64) {
	return sm.members.Current.Version, sm.members.Latest().Version
}
