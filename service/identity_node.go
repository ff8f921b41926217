package service

import (
	"fmt"
	"io"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/paxos/replica"
	"github.com/paxosd/paxosd/proposer"
	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// identityProposer is the leader's side of the cluster identity
// (statemachine/identity.go): it proposes the cluster's uuid when the state has none,
// and an OpVoter for each member whose Promise or Accepted it received
// that the state does not list yet. Both are leader-only commands
// (ProposeOwn): if this node is deposed first they are dropped, and the
// next leader proposes again what is still missing.
type identityProposer struct {
	// ballot is the leadership the proposals below were made under;
	// voters the OpVoters and uuid whether an OpClusterID was proposed.
	ballot paxos.Ballot
	voters map[paxos.NodeID]bool
	uuid   bool
	// known is set once the node told its transport the uuid.
	known bool
}

// leaderCaughtUp returns the replica's status and whether this node leads
// and has applied everything chosen: when a leader may propose the
// commands only a leader proposes, from a state that is the cluster's.
func (n *Node) leaderCaughtUp() (replica.Status, bool) {
	st := n.r.Status()
	return st, st.Role == proposer.Leader && !n.installing() && uint64(n.sm.Applied()) >= uint64(st.Commit)
}

// proposeIdentity proposes what the replicated identity lacks, while this
// node leads and has applied everything chosen.
func (n *Node) proposeIdentity() {
	st, ok := n.leaderCaughtUp()
	if !ok {
		return
	}
	if st.Ballot != n.ident.ballot {
		n.ident.ballot, n.ident.voters, n.ident.uuid = st.Ballot, map[paxos.NodeID]bool{}, false
	}
	if n.sm.ClusterID() == nil && !n.ident.uuid && n.allMembersSpeak(2) {
		id := make([]byte, statemachine.ClusterIDBytes)
		if _, err := io.ReadFull(n.entropy, id); err != nil {
			n.log.Error().Err(err).Msg("cannot draw a cluster uuid")
			return
		}
		n.ident.uuid = n.r.ProposeOwn(statemachine.EncodeCommand(&statemachine.Command{Op: statemachine.OpClusterID, Value: id})) == nil
	}
	if n.sm.ClusterID() == nil {
		// Voters matter only once there is a uuid to refuse by, and they
		// are new commands an older member cannot apply either.
		return
	}
	for _, id := range n.book.members() {
		// A member voted if this node received its Promise or Accepted
		// (peerVoted, transfer.go); a leader promised and accepted itself.
		_, voted := n.peerVoted[id]
		if (voted || id == n.cfg.ID) && !n.ident.voters[id] && !n.sm.IsVoter(uint64(id)) {
			if n.r.ProposeOwn(statemachine.EncodeCommand(&statemachine.Command{Op: statemachine.OpVoter, Reporter: uint64(id)})) == nil {
				n.ident.voters[id] = true
			}
		}
	}
}

// allMembersSpeak reports whether every other member's last connection
// negotiated at least protocol version v: a command that an older member
// could not apply is proposed only then (its state machine would refuse
// it). A node without a versioned transport (the simulation) runs one
// version throughout.
func (n *Node) allMembersSpeak(v uint32) bool {
	if n.peerVersion == nil {
		return true
	}
	for _, id := range n.otherMembers() {
		if n.peerVersion(id) < v {
			return false
		}
	}
	return true
}

// noteIdentity tells the transport the cluster's uuid once the state has
// one, for the peer hellos, and says so once.
func (n *Node) noteIdentity() {
	id, _ := n.identity()
	if id == nil || n.ident.known {
		return
	}
	n.ident.known = true
	cp := append([]byte(nil), id...)
	n.uuid.Store(&cp)
	n.log.Info().Str("cluster_uuid", fmt.Sprintf("%x", id)).Msg("cluster uuid known")
}

// clusterUUID returns the uuid for the hellos (nil until known); safe to
// call from any goroutine.
func (n *Node) clusterUUID() []byte {
	if p := n.uuid.Load(); p != nil {
		return *p
	}
	return nil
}

// selfStatus adds this node's identity to its own status.
func (n *Node) selfStatus(s *wire.NodeStatus) {
	s.Fresh = n.fresh()
	s.Formed = !n.boot.active || n.boot.formed
	id, voters := n.identity()
	s.ClusterUUID = id
	s.Voters = append([]uint64(nil), voters...) // encoded after the loop moves on
}
