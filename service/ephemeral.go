package service

import (
	"fmt"

	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// Ephemeral keys (statemachine/ephemeral.go): a put with a session_id
// binds its key to the session, from protocol 9 and cluster level 9 on.
//
// Below cluster level 9 a state machine applies such a put as every older
// build does, ignoring the session, and the key would outlive it. So the
// node refuses the put before it reaches the log while the level it has
// applied is below 9 — the level only rises, so a put it lets through is
// applied at level 9 or above on every replica — and on a connection that
// negotiated an older protocol, whose client cannot have meant the field.

// refuseEphemeralPut answers c with Invalid and reports true when c is a
// session-bound put the node must not propose. It runs on the loop.
func (n *Node) refuseEphemeralPut(c *call) bool {
	q := c.req
	if q.Op != wire.OpPut || q.SessionID == 0 {
		return false
	}
	var msg string
	switch {
	case c.version != 0 && !c.speaks(wire.VersionEphemeral):
		msg = fmt.Sprintf("a put with a session (an ephemeral key) needs protocol %d; this connection negotiated %d: upgrade the client",
			wire.VersionEphemeral, c.version)
	case n.installing():
		// No state to read the level from (it was dropped for the
		// snapshot's), and below level 9 the log would make the key
		// permanent: the client retries, here or elsewhere.
		c.reply(&wire.Response{Err: wire.ErrUnavailable, ErrMsg: n.installingMessage()})
		return true
	case n.sm.Level() < statemachine.LevelEphemeral:
		msg = fmt.Sprintf("a put with a session (an ephemeral key) needs cluster level %d; the cluster is at level %d until every member runs protocol %d or newer",
			statemachine.LevelEphemeral, n.sm.Level(), wire.VersionEphemeral)
	default:
		return false
	}
	c.reply(&wire.Response{Err: wire.ErrInvalid, ErrMsg: msg})
	return true
}
