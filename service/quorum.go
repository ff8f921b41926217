package service

import (
	"fmt"
	"time"

	"github.com/paxosd/paxosd/wire"
)

// Without a quorum no leader is elected (a leader that loses its quorum
// steps down within an election timeout, and a member cut off from the
// others cannot win one), so "this node has known no leader for a while"
// is how a node tells that the cluster cannot commit. A client that speaks
// wire.VersionClientAnswers is then answered err Unavailable: the requests
// that need the log at once, rather than after they waited for a leader;
// and every call it has waiting (a blocking one too, which would otherwise
// wait for ever), rather than a Timeout at its deadline. An older client
// keeps the older answers: a Timeout, or none for a blocking call.
//
// Unavailable promises only what a Timeout does: the request is not known
// to have applied. One proposed before the quorum went may still commit
// (and be remembered for a retry), so the client retries with the same
// client id and sequence number (docs/PROTOCOL.md, "Error codes").

// trackLeader notes when this node lost sight of a leader; it runs on
// every tick.
func (n *Node) trackLeader(now time.Time) {
	if n.lastLeader != 0 {
		n.noLeaderSince = time.Time{}
		return
	}
	if n.noLeaderSince.IsZero() {
		n.noLeaderSince = now
	}
}

// unavailableAfter is how long a node must have known no leader before it
// answers Unavailable: several election timeouts, so that an ordinary
// failover (one timeout, and a round or two of votes) keeps its calls
// waiting for the new leader instead.
func (n *Node) unavailableAfter() time.Duration {
	return max(4*time.Duration(n.cfg.ElectionTicks)*n.cfg.TickInterval, time.Second)
}

// quorumLost reports whether this node has known no leader for
// unavailableAfter.
func (n *Node) quorumLost(now time.Time) bool {
	return !n.noLeaderSince.IsZero() && now.Sub(n.noLeaderSince) >= n.unavailableAfter()
}

func (n *Node) unavailableAnswer(now time.Time) *wire.Response {
	return &wire.Response{Err: wire.ErrUnavailable, ErrMsg: fmt.Sprintf(
		"no quorum: node %d has known no leader for %v; the request is not known to have applied "+
			"(one sent before may still): retry it with the same client id and sequence number, at another member or later",
		n.cfg.ID, now.Sub(n.noLeaderSince).Round(time.Millisecond))}
}

// refuseWithoutQuorum answers c, a call for the log, Unavailable when the
// node has known no leader for a while and c's client speaks
// wire.VersionClientAnswers.
func (n *Node) refuseWithoutQuorum(c *call) bool {
	now := n.clock.Now()
	if !c.speaks(wire.VersionClientAnswers) || !n.quorumLost(now) {
		return false
	}
	c.reply(n.unavailableAnswer(now))
	return true
}

// failWithoutQuorum answers Unavailable every waiting call whose client
// speaks wire.VersionClientAnswers, once the node has known no leader for
// a while. A lock wait or campaign so answered keeps its place in the
// queue (cluster state): the client sends it again to go on waiting. Its
// streams end too: a member cut off from the others would otherwise keep
// its watchers (which a client spreads over the members) silently behind
// for as long as the partition lasts; they resume at a member that has a
// leader.
func (n *Node) failWithoutQuorum(now time.Time) {
	if !n.quorumLost(now) {
		return
	}
	n.removeWaiters(func(c *call) bool { return c.speaks(wire.VersionClientAnswers) }, func(c *call) {
		c.reply(n.unavailableAnswer(now))
	})
	n.streams.each(func(_ streamKey, s *stream) bool {
		if !s.c.speaks(wire.VersionClientAnswers) {
			return true
		}
		resp := n.unavailableAnswer(now)
		resp.StreamEnd = true
		s.c.reply(resp)
		return false
	})
}
