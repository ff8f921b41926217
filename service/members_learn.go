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
			if n.book.learn(found) {
				n.publishPeers()
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

// heardPeerAddr learns the address an accepted peer connection's hello
// gives (version 19) for a node this node knows no address for: without
// it a node that lagged through the change adding the dialer could not
// answer it (the transport reaches only the nodes it has an address for),
// and when every member it knows is gone, nobody else would tell it (a
// voter restarted behind a member added while it was down, with the
// members it knew removed or stopped: no election could ever finish).
//
// Only where the book has none: a hello is sent once per connection, and
// its sender's own log may lag a move of its own (member update, then a
// restart at the new address with the old data), so an address from the
// membership, a former member's, a Snapshot offer's or one the members
// listed is newer than a hello can be. It runs on the server's connection
// goroutine: the book is locked, and publishPeers serializes with the
// loop's updates.
func (n *Node) heardPeerAddr(id paxos.NodeID, addr string) {
	if n.book.addr(id) != "" {
		return
	}
	if !n.book.learn(map[paxos.NodeID]string{id: addr}) {
		n.log.Warn().Uint32("peer", uint32(id)).Str("addr", addr).Int("learned_max", learnedMax).
			Msg("cannot learn the address of a node this node's membership does not name: it holds as many such addresses as it may; this node cannot answer that node until the membership names it")
		return
	}
	n.log.Info().Uint32("peer", uint32(id)).Str("addr", addr).Msg("learned the address of a node this node's membership does not name, from its hello")
	n.publishPeers()
}

// publishPeers hands the transport the book's addresses. The loop and the
// server's goroutines (heardPeerAddr) both call it: under peersMu the
// last to publish published the book as it last was.
func (n *Node) publishPeers() {
	if n.tcp == nil {
		return
	}
	n.peersMu.Lock()
	defer n.peersMu.Unlock()
	n.tcp.SetPeers(n.book.addresses())
}
