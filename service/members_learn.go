package service

import (
	"context"
	"time"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/wire"
)

// A node that lags behind a membership change hears from members its own
// membership does not name yet — the new leader among them — but has no
// address to answer them at, or to fetch their snapshot from (the node
// simulation's seed 5193: a learner that joined early, stuck for good
// once a member added after it led). So when a message comes from a node
// it has no address for, it asks the nodes it can reach for their member
// lists (OpStatus, which every node answers, a removed one too) and keeps
// the addresses it did not know (memberBook.learned), at most once a
// second. Its membership itself still changes only through the log. The
// members it knows may all be gone (removed and stopped, or down with
// their disks lost): a Snapshot offer therefore carries its sender's
// address (protocol 18, loop.go sendPeer), which the node learns
// likewise, and the sender repeats its offer every PreVote round.

// learnAddressesEvery bounds how often a node asks.
const learnAddressesEvery = time.Second

// learnAddresses asks for the addresses of the members this node does
// not know, if it has not lately.
func (n *Node) learnAddresses() {
	now := n.clock.Now()
	if n.learning || now.Sub(n.learnedAt) < learnAddressesEvery {
		return
	}
	n.learning, n.learnedAt = true, now
	var ids []paxos.NodeID
	for id := range n.book.addresses() {
		if id != n.cfg.ID {
			ids = append(ids, id)
		}
	}
	sortNodeIDs(ids)
	n.bg.run(0, func(ctx context.Context) func() {
		found := map[paxos.NodeID]string{}
		for _, id := range ids {
			n.listedBy(ctx, id, found)
		}
		return func() {
			n.learning = false
			n.book.learn(found)
			if n.tcp != nil {
				n.tcp.SetPeers(n.book.addresses())
			}
		}
	})
}

// listedBy adds the members node id lists, with their addresses, to found.
func (n *Node) listedBy(ctx context.Context, id paxos.NodeID, found map[paxos.NodeID]string) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	pc, err := n.peers.dial(ctx, id)
	if err != nil {
		return
	}
	defer pc.Close()
	resp, err := pc.Call(ctx, &wire.Request{ID: 1, Op: wire.OpStatus})
	if err != nil || resp.Err != wire.ErrNone {
		return
	}
	for _, st := range resp.Status {
		if st.Addr != "" {
			found[st.ID] = st.Addr
		}
	}
}
