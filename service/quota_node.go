package service

import (
	"fmt"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/proposer"
	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// quotaProtocol is the protocol version that knows the space quota
// (statemachine/quota.go). A member of an older version neither applies
// the quota commands nor enforces a quota, so no quota command enters the
// log before every member speaks it: were one applied, the new members
// would refuse puts the old ones apply, and the replicas would diverge.
const quotaProtocol = 4

// proposeQuota is the leader's side of the default quota: once every
// member speaks quotaProtocol, a leader whose state has no quota proposes
// the configured default (OpQuotaDefault, which applies only while none is
// set, so it never undoes a client's quota set), once per leadership
// (ownProposal, level_node.go).
//
// The quota predates the cluster level (level_node.go), which gates the
// behaviour changes after it; it keeps its own command, which clusters
// of protocol 4 already apply.
func (n *Node) proposeQuota() {
	if n.installing() {
		return // not caught up (install.go)
	}
	n.proposeOnce(&n.quota, quotaProtocol, !n.sm.Quota().Set,
		&statemachine.Command{Op: statemachine.OpQuotaDefault, Quota: n.cfg.DefaultQuotaBytes})
}

// refuseQuotaSet answers an OpQuotaSet that this node must not propose,
// and reports whether it did: a follower sends the client to the leader
// (which alone knows what every member negotiated with it), and a leader
// refuses while a member speaks an older protocol.
func (n *Node) refuseQuotaSet(c *call) bool {
	if n.r.Status().Role != proposer.Leader {
		c.reply(n.notLeader(nil))
		return true
	}
	id, v := n.memberBelow(quotaProtocol)
	if id == 0 {
		return false
	}
	c.reply(&wire.Response{Err: wire.ErrInvalid, ErrMsg: quotaGateMessage(id, v)})
	return true
}

// quotaGateMessage is the refusal of a quota set while member id
// negotiated protocol version v (0: it has not connected).
func quotaGateMessage(id paxos.NodeID, v uint32) string {
	if v == 0 {
		return fmt.Sprintf("quota set needs every member at protocol %d or newer; node %d is not connected to the leader yet", quotaProtocol, id)
	}
	return fmt.Sprintf("quota set needs every member at protocol %d or newer; upgrade node %d first", quotaProtocol, id)
}

// memberBelow returns the first other member (in id order) whose last
// connection negotiated a protocol version below v, and that version; 0
// if there is none.
func (n *Node) memberBelow(v uint32) (paxos.NodeID, uint32) {
	if n.peerVersion == nil {
		return 0, 0
	}
	for _, id := range n.otherMembers() {
		if pv := n.peerVersion(id); pv < v {
			return id, pv
		}
	}
	return 0, 0
}

// quotaResponse answers an OpQuotaGet from this node's applied state.
// Until the cluster applied a quota, it reports the default this node
// would propose, marked as not set.
func (n *Node) quotaResponse() *wire.Response {
	q := n.sm.Quota()
	limit := q.Limit
	if !q.Set {
		limit = n.cfg.DefaultQuotaBytes
	}
	return &wire.Response{Revision: n.sm.Revision(), QuotaUsed: q.Used, QuotaBytes: limit, QuotaSet: q.Set}
}
