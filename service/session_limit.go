package service

import (
	"fmt"

	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// The per-client limit on open sessions (Config.SessionsPerClientMax). A
// client that leaks sessions (opens one per request and never closes it)
// would otherwise fill the cluster until every member's memory and every
// leader's clock commands carry hundreds of thousands of sessions nobody
// keeps alive, for a TTL each. The unit is the client id every request
// carries: one per client process (a Go client.Client, a Python Client),
// kept across its reconnects and retries, unlike a connection; and there
// whether or not auth is on, unlike a user. The state machine does not
// record which client opened a session, so the node counts what it saw:
// the sessions opened through it (the answers it gave) that still exist,
// and the opens it has waiting for the log, and refuses a SessionOpen past
// the limit before proposing it. A client that opens through several
// members may hold up to the limit through each; that bounds a leak, which
// is the point. A client id is chosen by the client, so this is no defence
// against a hostile one: users and roles are (docs/SECURITY.md).

// DefaultSessionsPerClientMax is Config.SessionsPerClientMax's default.
const DefaultSessionsPerClientMax = 10000

// versionQuotaExceeded is the protocol version that brought err
// QuotaExceeded (with the space quota): an older client gets Invalid.
const versionQuotaExceeded = 4

// sessionCounts is the loop's account of the sessions opened through this
// node, by client id.
type sessionCounts struct {
	// open: the sessions each client opened through this node that may
	// still exist (pruned against the state machine when it matters).
	open map[uint64]map[uint64]struct{}
	// tracked is Σ len(open[c]); opening the opens waiting for the log.
	tracked int
	opening map[uint64]int
}

// clientSessions is how many sessions client has, or is opening, through
// this node.
func (n *Node) clientSessions(client uint64) int {
	return len(n.sessCounts.open[client]) + n.sessCounts.opening[client]
}

// refuseSessionOpen refuses c, a SessionOpen, when its client already has
// the limit of sessions through this node. It runs before c is proposed.
func (n *Node) refuseSessionOpen(c *call) bool {
	limit := n.cfg.SessionsPerClientMax
	if c.req.Op != wire.OpSessionOpen || limit < 0 {
		return false
	}
	client := c.req.ClientID
	if n.clientSessions(client) < limit || n.installing() {
		// Installing a snapshot, the node has no state to tell which of
		// the client's sessions still exist: rather than refuse a client
		// whose sessions expired meanwhile, it lets the open through (the
		// limit bounds a leak; an install is brief).
		return false
	}
	n.pruneSessions(client) // some may have expired or been closed elsewhere
	have := n.clientSessions(client)
	if have < limit {
		return false
	}
	resp := &wire.Response{Err: wire.ErrQuotaExceeded, ErrMsg: fmt.Sprintf(
		"too many sessions: client %#x has %d sessions open through node %d, the limit (--sessions-per-client-max); close sessions it no longer needs",
		client, have, n.cfg.ID)}
	if !c.speaks(versionQuotaExceeded) {
		resp.Err = wire.ErrInvalid // a code it knows
	}
	c.reply(resp)
	return true
}

// pruneSessions forgets client's sessions that no longer exist (the
// caller makes sure the node has a state machine: not installing).
func (n *Node) pruneSessions(client uint64) {
	set := n.sessCounts.open[client]
	for id := range set {
		if _, ok := n.sm.Session(id); !ok {
			delete(set, id)
			n.sessCounts.tracked--
		}
	}
	if len(set) == 0 {
		delete(n.sessCounts.open, client)
	}
}

// noteSessionAnswer counts the session an answered SessionOpen opened for
// client (a retry's answer names the same session again), and forgets
// one it closed. Sessions that expire, or that are closed through other
// members, are forgotten by pruneSessions: at the limit, and over every
// client once this node tracks twice the sessions that exist, so the
// account costs memory in proportion to the live sessions (and time, once
// per doubling) even under churn.
// closed is the session a SessionClose named.
func (n *Node) noteSessionAnswer(client uint64, op statemachine.Op, res *statemachine.Result, closed uint64) {
	if res.Err != nil || client == 0 {
		return
	}
	sc := &n.sessCounts
	switch op {
	case statemachine.OpSessionOpen:
		id := res.Session.ID
		if sc.open == nil {
			sc.open = map[uint64]map[uint64]struct{}{}
		}
		set := sc.open[client]
		if set == nil {
			set = map[uint64]struct{}{}
			sc.open[client] = set
		}
		if _, ok := set[id]; !ok {
			set[id] = struct{}{}
			sc.tracked++
		}
		if sc.tracked > 2*n.sm.SessionCount()+1024 {
			for c := range sc.open {
				n.pruneSessions(c)
			}
		}
	case statemachine.OpSessionClose:
		if set := sc.open[client]; set != nil {
			if _, ok := set[closed]; ok {
				delete(set, closed)
				sc.tracked--
			}
		}
	}
}

// openingWait and openingDone count a SessionOpen while it waits for the
// log, so that opens sent together cannot pass the limit together.
func (n *Node) openingWait(c *call) {
	if c.req.Op != wire.OpSessionOpen || c.req.ClientID == 0 {
		return
	}
	if n.sessCounts.opening == nil {
		n.sessCounts.opening = map[uint64]int{}
	}
	n.sessCounts.opening[c.req.ClientID]++
	c.opening = true
}

func (n *Node) openingDone(c *call) {
	if !c.opening {
		return
	}
	c.opening = false
	if n.sessCounts.opening[c.req.ClientID]--; n.sessCounts.opening[c.req.ClientID] <= 0 {
		delete(n.sessCounts.opening, c.req.ClientID)
	}
}
