package statemachine

import (
	"fmt"
	"sort"
)

// The cluster's identity, kept in the replicated state (docs/DESIGN.md,
// "Cluster identity and safe bootstrap"):
//
//   - id: 16 random bytes, proposed (OpClusterID) by the first leader of a
//     cluster whose state has none; the first one applied wins. Every
//     member learns it through the log or a snapshot, and peers compare it
//     in their hellos: a member of one formation never talks to another.
//   - voters: the members that ever promised or accepted (OpVoter, proposed
//     by a leader for each member whose Promise or Accepted it received). A
//     member that comes back with an empty data directory asks the others;
//     if it is listed it has forgotten votes, and it is refused with a line
//     pointing at --rejoin, whatever flags it was given.
//
// Neither decides the result of any command, and neither is part of Hash,
// at any level (hash.go): a member of an older version, which cannot apply
// these commands (it refuses them as unknown, with no effect), must not be
// convicted by the state check for lacking them, nor later, once upgraded,
// for having lacked them.

// ClusterIDBytes is the length of a cluster id (OpClusterID's Value).
const ClusterIDBytes = 16

// clusterIdentity is the cluster's id and the members that ever voted.
type clusterIdentity struct {
	id     []byte   // nil until an OpClusterID is applied
	voters []uint64 // ascending
}

// apply runs a valid OpClusterID or OpVoter.
func (ci *clusterIdentity) apply(c *Command) {
	switch c.Op {
	case OpClusterID:
		if ci.id == nil {
			ci.id = append([]byte(nil), c.Value...)
		}
	case OpVoter:
		i := sort.Search(len(ci.voters), func(i int) bool { return ci.voters[i] >= c.Reporter })
		if i < len(ci.voters) && ci.voters[i] == c.Reporter {
			return
		}
		ci.voters = append(ci.voters, 0)
		copy(ci.voters[i+1:], ci.voters[i:])
		ci.voters[i] = c.Reporter
	}
}

// restore checks and takes a snapshot's identity.
func (ci *clusterIdentity) restore(id []byte, voters []uint64) error {
	if len(id) != 0 && len(id) != ClusterIDBytes {
		return fmt.Errorf("cluster id of %d bytes, want %d", len(id), ClusterIDBytes)
	}
	for i, v := range voters {
		if v == 0 || (i > 0 && v <= voters[i-1]) {
			return fmt.Errorf("voters %v not ascending positive ids", voters)
		}
	}
	if len(id) != 0 {
		ci.id = append([]byte(nil), id...)
	}
	ci.voters = append([]uint64(nil), voters...)
	return nil
}

// empty reports whether there is nothing to carry in a snapshot.
func (ci *clusterIdentity) empty() bool { return ci.id == nil && len(ci.voters) == 0 }

// ClusterID returns the cluster's id, nil until one is applied. The caller
// must not modify it.
func (sm *StateMachine) ClusterID() []byte { return sm.ident.id }

// Voters returns the members that ever voted, ascending. The caller must
// not modify it.
func (sm *StateMachine) Voters() []uint64 { return sm.ident.voters }

// IsVoter reports whether member id ever voted.
func (sm *StateMachine) IsVoter(id uint64) bool {
	v := sm.ident.voters
	i := sort.Search(len(v), func(i int) bool { return v[i] >= id })
	return i < len(v) && v[i] == id
}
