package service

import (
	"fmt"

	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// Keep-alive batches (wire.OpSessionKeepAliveBatch,
// statemachine/keepalive_batch.go): one command through the log renews
// every session it lists, from protocol 12 and cluster level 12 on.
//
// The state machine refuses a batch below level 12 by itself (as an older
// build refuses the unknown op), so nothing diverges; the node refuses it
// earlier, before it costs a slot, while the level it has applied is
// below 12 (unless it is installing a snapshot and has no state to ask) — the level only rises, so a batch it lets through meets
// level 12 or above on every replica — and on a connection that
// negotiated an older protocol. The client falls back to one
// OpSessionKeepAlive per session when answered so.

// refuseKeepAliveBatch answers c with Invalid and reports true when c is a
// keep-alive batch the node must not propose. It runs on the loop.
func (n *Node) refuseKeepAliveBatch(c *call) bool {
	if c.req.Op != wire.OpSessionKeepAliveBatch {
		return false
	}
	// While the node installs a snapshot it has no state to read the
	// level from: the batch goes on to the log, where every replica's
	// state machine refuses it below level 12 all the same.
	installing := n.installing()
	var msg string
	switch {
	case c.version != 0 && !c.speaks(wire.VersionKeepAliveBatch):
		msg = fmt.Sprintf("a keep-alive batch needs protocol %d; this connection negotiated %d: send one session keep-alive per session",
			wire.VersionKeepAliveBatch, c.version)
	case !installing && n.sm.Level() < statemachine.LevelKeepAliveBatch:
		msg = fmt.Sprintf("keep-alive batches need cluster level %d; the cluster is at level %d until every member runs protocol %d or newer: send one session keep-alive per session",
			statemachine.LevelKeepAliveBatch, n.sm.Level(), wire.VersionKeepAliveBatch)
	default:
		return false
	}
	c.reply(&wire.Response{Err: wire.ErrInvalid, ErrMsg: msg})
	return true
}

// validateKeepAliveBatch checks a batch's ids before it reaches the loop;
// nil if it may go on.
func validateKeepAliveBatch(q *wire.Request) *wire.Response {
	if err := statemachine.ValidateKeepAliveBatch(q.SessionIDs); err != nil {
		resp := resultResponse(statemachine.OpSessionKeepAliveBatch, statemachine.Result{Err: err})
		return &resp
	}
	return nil
}
