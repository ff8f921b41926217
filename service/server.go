package service

import (
	"errors"
	"fmt"
	"time"

	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// HandleClient serves one client connection (wire.Handler): it validates
// each request and hands it to the node loop; answers go back on the same
// connection in whatever order they complete.
func (n *Node) HandleClient(c *wire.ClientConn) {
	defer func() {
		// Let the loop drop this connection's streams and waiting calls.
		select {
		case n.calls <- &call{conn: c, closed: true}:
		case <-n.stop:
		}
	}()
	who := identity{user: c.CertUser(), node: c.CertNode()}
	for {
		q, err := c.Recv()
		if err != nil {
			return
		}
		if resp := n.authConn(c, q, &who); resp != nil {
			n.replyNow(c, q, resp)
			continue
		}
		cl, resp := n.newCallAs(c, q, who)
		if resp != nil {
			n.replyNow(c, q, resp)
			recycleChunk(q, resp) // encoded: a chunk's buffer may serve the next
			continue
		}
		select {
		case n.calls <- cl:
		case <-n.stop:
			n.replyNow(c, q, &wire.Response{Err: wire.ErrUnavailable, ErrMsg: "node is shutting down"})
			return
		}
	}
}

// newCall validates q, which arrived on conn, and returns the call the loop
// must handle — or, when no loop is needed (a request refused as invalid,
// a snapshot chunk read from the store), the answer to send at once. It
// may run on any goroutine.
func (n *Node) newCall(conn clientConn, q *wire.Request) (*call, *wire.Response) {
	return n.newCallAs(conn, q, identity{})
}

// newCallAs is newCall for a connection that acts as who.
func (n *Node) newCallAs(conn clientConn, q *wire.Request, who identity) (*call, *wire.Response) {
	if resp := n.validate(q); resp != nil {
		return nil, resp
	}
	if resp := n.divergedRefusal(q); resp != nil {
		return nil, resp
	}
	if q.Op == wire.OpSnapshotRead {
		return nil, n.readSnapshot(q) // from the store, off the loop
	}
	cl := &call{conn: conn, req: q, node: n, arrived: n.clock.Now(), deadline: n.deadline(q), who: who}
	if conn != nil {
		cl.version = conn.Version()
	}
	if goesThroughLog(q) {
		c := commandOf(q)
		if u := who.commandUser(); u != "" && sessionOp(q) && n.authLevel.Load() >= statemachine.LevelAuth {
			// The session's owner, and the user the state machine checks
			// against it (statemachine/auth.go); only from the level on,
			// where every member decodes the field.
			c.User = u
		}
		cl.cmd = statemachine.EncodeCommand(&c)
	}
	return cl, nil
}

// replyNow answers q on conn from the caller's goroutine. Its answers are
// refusals or single answers: a stream refused here ends with it.
func (n *Node) replyNow(conn clientConn, q *wire.Request, resp *wire.Response) {
	resp.ID = q.ID
	endsStream(q, resp)
	// Counted, not timed: answered at once without the loop (refused, or
	// a snapshot chunk between members), it says nothing of the service's
	// latency.
	n.m.requests.WithLabelValues(opLabel(q.Op), resultLabel(resp.Err)).Inc()
	err := conn.TrySend(resp)
	if errors.Is(err, wire.ErrFrameTooLarge) {
		err = conn.TrySend(tooLargeAnswer(resp.ID, err))
	}
	if err != nil {
		n.answerFailed(conn, err)
	}
}

// endsStream marks an error answer to a stream request as the stream's
// last (docs/PROTOCOL.md, "Streams": every response but the last has err
// 0): a watch refused before it opened, or ended by an error, gets its
// stream_end, so the client frees its id rather than wait for ever.
func endsStream(q *wire.Request, resp *wire.Response) {
	if resp.Err != wire.ErrNone && q.Op.IsStream() {
		resp.StreamEnd = true
	}
}

// tooLargeAnswer replaces an answer that does not fit in a frame: the
// client is told why, rather than left waiting for an answer that never
// comes.
func tooLargeAnswer(id uint64, err error) *wire.Response {
	return &wire.Response{ID: id, Err: wire.ErrTooLarge,
		ErrMsg: fmt.Sprintf("the answer does not fit in a frame (%v): ask for fewer keys (a paged list, or a limit) or smaller values", err)}
}

// answerFailed handles an answer that could not be sent. A full queue
// means the client is not reading: its connection is closed (the client
// reconnects and retries with the same sequence numbers), since the node
// loop must never wait for a slow client.
func (n *Node) answerFailed(c clientConn, err error) {
	if errors.Is(err, wire.ErrQueueFull) {
		n.log.Warn().Str("client", c.RemoteAddr().String()).Msg("client is not reading its answers: closing its connection")
		go c.Close() // Close flushes first; never from the loop
		return
	}
	n.log.Debug().Err(err).Msg("cannot answer client")
}

// uncork sends the answers the loop corked in this iteration: one write
// per connection.
func (n *Node) uncork() {
	for i, c := range n.corked {
		if err := c.Uncork(); err != nil {
			n.answerFailed(c, err)
		}
		n.corked[i] = nil
	}
	n.corked = n.corked[:0]
}

// deadline is when the node gives up waiting for q's command: the
// client's deadline, or the default — except that a blocking call (a lock
// wait, a campaign) without a client deadline waits as long as its
// connection lives.
func (n *Node) deadline(q *wire.Request) time.Time {
	switch {
	case q.TimeoutMs > 0:
		return n.clock.Now().Add(time.Duration(q.TimeoutMs) * time.Millisecond)
	case blocking(q):
		return farFuture
	}
	return n.clock.Now().Add(n.cfg.RequestTimeout)
}

func blocking(q *wire.Request) bool {
	return (q.Op == wire.OpLockAcquire && q.Wait) || q.Op == wire.OpCampaign
}

// goesThroughLog reports whether q is a command in the log (as opposed to
// something the contacted node answers from its own state).
func goesThroughLog(q *wire.Request) bool {
	switch q.Op {
	case wire.OpStatus, wire.OpSessionList, wire.OpLockList, wire.OpWatch, wire.OpObserve, wire.OpCancel, wire.OpSnapshotRead, wire.OpLeaderTransfer,
		wire.OpQuotaGet, wire.OpUserList, wire.OpRoleList, wire.OpAuthStatus, wire.OpAuthenticate,
		wire.OpMemberList, wire.OpMemberAdd, wire.OpMemberPromote, wire.OpMemberRemove, wire.OpMemberUpdate:
		return false // member changes enter the log as configurations, not commands
	case wire.OpGet, wire.OpList:
		return !q.Serializable
	}
	return true
}

// validate rejects what the state machine would reject anyway, early and
// with a message that names the limit, so a bad request never costs a slot.
func (n *Node) validate(q *wire.Request) *wire.Response {
	invalid := func(format string, args ...any) *wire.Response {
		return &wire.Response{Err: wire.ErrInvalid, ErrMsg: fmt.Sprintf(format, args...)}
	}
	if !q.Op.Valid() || q.Op == opClockWire {
		return invalid("unknown operation %d", q.Op)
	}
	if goesThroughLog(q) && (q.ClientID == 0 || q.Seq == 0) {
		return invalid("client id and sequence number must be set (non-zero)")
	}
	if resp := validateAuthRequest(q); resp != nil {
		return resp
	}
	switch q.Op {
	case wire.OpQuotaSet:
		if q.QuotaBytes == 0 {
			return invalid("a quota of 0 bytes: give the bytes the keys and values may hold, e.g. 8GiB")
		}
	case wire.OpTxn:
		if resp := n.validateTxn(q); resp != nil {
			return resp
		}
	case wire.OpSessionKeepAliveBatch:
		if resp := validateKeepAliveBatch(q); resp != nil {
			return resp
		}
	case wire.OpPut, wire.OpGet, wire.OpDelete, wire.OpCAS, wire.OpWatch:
		if q.Key == "" && !(q.Op == wire.OpWatch && q.WatchPrefix) {
			return invalid("key must not be empty")
		}
	case wire.OpLockAcquire, wire.OpLockRelease, wire.OpLockCheck, wire.OpCampaign,
		wire.OpProclaim, wire.OpResign, wire.OpLeader, wire.OpObserve:
		if q.Name == "" {
			return invalid("a lock or election name must not be empty")
		}
		if len(q.Name) > defaultKeyBytesMax {
			return &wire.Response{Err: wire.ErrTooLarge, ErrMsg: fmt.Sprintf("name is %d bytes; the limit is %d", len(q.Name), defaultKeyBytesMax)}
		}
	}
	if len(q.Key) > defaultKeyBytesMax || len(q.Prefix) > defaultKeyBytesMax {
		what, n := "key", len(q.Key)
		if len(q.Prefix) > n {
			what, n = "prefix", len(q.Prefix)
		}
		return &wire.Response{Err: wire.ErrTooLarge, ErrMsg: fmt.Sprintf("%s is %d bytes; the limit is %d", what, n, defaultKeyBytesMax)}
	}
	// A page's start key is a key, or a key with "\x00" appended (the
	// previous page's next key).
	if len(q.StartKey) > defaultKeyBytesMax+1 {
		return &wire.Response{Err: wire.ErrTooLarge, ErrMsg: fmt.Sprintf("start key is %d bytes; the limit is %d", len(q.StartKey), defaultKeyBytesMax+1)}
	}
	if len(q.Value) > n.cfg.ValueBytesMax || len(q.PrevValue) > n.cfg.ValueBytesMax {
		return &wire.Response{Err: wire.ErrTooLarge, ErrMsg: fmt.Sprintf("value is %d bytes; the limit is %d (--value-bytes-max)", max(len(q.Value), len(q.PrevValue)), n.cfg.ValueBytesMax)}
	}
	return checkUTF8(q) // badinput.go
}

// defaultKeyBytesMax matches SMOptions' default key limit.
const defaultKeyBytesMax = 4096

// opClockWire is the internal clock command's number: only a leader
// proposes it; a client that sends it is refused.
const opClockWire = wire.Op(statemachine.OpClock)

// commandOf returns q's command, by value: it is encoded at once, and a
// pointer would put one more allocation on every write's path.
func commandOf(q *wire.Request) statemachine.Command {
	if q.Op == wire.OpSnapshotSave {
		return saveBarrier(q) // snapshot_save.go
	}
	c := commandFields(q)
	if paged(q) {
		// A linearizable page goes through the log as the List command of
		// version 3, so a mixed cluster applies it alike; but only as a
		// barrier: the node reads the page itself once the command is
		// applied (Node.answer), so no replica builds a listing nobody
		// reads. One key keeps the barrier cheap.
		c.Limit = 1
	}
	return c
}

func commandFields(q *wire.Request) statemachine.Command {
	c := statemachine.Command{
		ClientID:        q.ClientID,
		Seq:             q.Seq,
		AckedBelow:      q.AckedBelow,
		Op:              statemachine.Op(q.Op),
		Key:             q.Key,
		Value:           q.Value,
		Prefix:          q.Prefix,
		PrevValue:       q.PrevValue,
		HasPrevValue:    q.HasPrevValue,
		PrevRevision:    q.PrevRevision,
		HasPrevRevision: q.HasPrevRevision,
		Limit:           q.Limit,
		SessionID:       q.SessionID,
		TTLMs:           q.TTLMs,
		Name:            q.Name,
		Token:           q.Token,
		Wait:            q.Wait,
		LockDelayMs:     q.LockDelayMs,
		FenceName:       q.FenceName,
		FenceToken:      q.FenceToken,
		Quota:           q.QuotaBytes,
		Compares:        txnCompares(q.Compares),
		Then:            txnOps(q.ThenOps),
		Else:            txnOps(q.ElseOps),
		Role:            q.Role,
		Perm:            statemachine.Perm(q.Perm),
		SessionIDs:      q.SessionIDs,
	}
	// A field appended for one op goes into the log only with that op. A
	// member of an older build refuses to decode a command with more
	// fields than it knows, so a stray field a client set on another op
	// (a put carrying session_ids) would be applied by the newer members
	// and refused by the older ones of a rolling upgrade: their states
	// would part. Leaving it out changes nothing, since no other op reads
	// it.
	if q.Op != wire.OpTxn {
		c.Compares, c.Then, c.Else = nil, nil, nil
	}
	if q.Op != wire.OpUserGrantRole && q.Op != wire.OpUserRevokeRole {
		c.Role = ""
	}
	if q.Op != wire.OpRoleGrant {
		c.Perm = 0
	}
	if q.Op != wire.OpSessionKeepAliveBatch {
		c.SessionIDs = nil
	}
	return c
}
