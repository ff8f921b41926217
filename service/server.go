package service

import (
	"fmt"
	"time"

	"github.com/paxosd/paxosd/wire"
)

// HandleClient serves one client connection (wire.Handler): it validates
// each request and hands it to the node loop; answers go back on the same
// connection in whatever order they complete.
func (n *Node) HandleClient(c *wire.ClientConn) {
	for {
		q, err := c.Recv()
		if err != nil {
			return
		}
		id := q.ID
		reply := func(resp *wire.Response) {
			resp.ID = id
			if err := c.Send(resp); err != nil {
				n.log.Debug().Err(err).Msg("cannot answer client")
			}
		}
		if resp := n.validate(q); resp != nil {
			reply(resp)
			continue
		}
		cl := &call{req: q, reply: reply, deadline: time.Now().Add(n.timeout(q))}
		if goesThroughLog(q) {
			cl.cmd = EncodeCommand(commandOf(q))
		}
		select {
		case n.calls <- cl:
		case <-n.stop:
			reply(&wire.Response{Err: wire.ErrUnavailable, ErrMsg: "node is shutting down"})
			return
		}
	}
}

func (n *Node) timeout(q *wire.Request) time.Duration {
	if q.TimeoutMs > 0 {
		return time.Duration(q.TimeoutMs) * time.Millisecond
	}
	return n.cfg.RequestTimeout
}

func goesThroughLog(q *wire.Request) bool {
	switch q.Op {
	case wire.OpStatus:
		return false
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
	switch q.Op {
	case wire.OpPut, wire.OpGet, wire.OpDelete, wire.OpCAS, wire.OpList, wire.OpStatus:
	default:
		return invalid("unknown operation %d", q.Op)
	}
	if goesThroughLog(q) && (q.ClientID == 0 || q.Seq == 0) {
		return invalid("client id and sequence number must be set (non-zero)")
	}
	switch q.Op {
	case wire.OpPut, wire.OpGet, wire.OpDelete, wire.OpCAS:
		if q.Key == "" {
			return invalid("key must not be empty")
		}
	}
	if len(q.Key) > defaultKeyBytesMax || len(q.Prefix) > defaultKeyBytesMax {
		return &wire.Response{Err: wire.ErrTooLarge, ErrMsg: fmt.Sprintf("key is %d bytes; the limit is %d", max(len(q.Key), len(q.Prefix)), defaultKeyBytesMax)}
	}
	if len(q.Value) > n.cfg.ValueBytesMax || len(q.PrevValue) > n.cfg.ValueBytesMax {
		return &wire.Response{Err: wire.ErrTooLarge, ErrMsg: fmt.Sprintf("value is %d bytes; the limit is %d (--value-bytes-max)", max(len(q.Value), len(q.PrevValue)), n.cfg.ValueBytesMax)}
	}
	return nil
}

// defaultKeyBytesMax matches SMOptions' default key limit.
const defaultKeyBytesMax = 4096

func commandOf(q *wire.Request) *Command {
	return &Command{
		ClientID:        q.ClientID,
		Seq:             q.Seq,
		AckedBelow:      q.AckedBelow,
		Op:              Op(q.Op),
		Key:             q.Key,
		Value:           q.Value,
		Prefix:          q.Prefix,
		PrevValue:       q.PrevValue,
		HasPrevValue:    q.HasPrevValue,
		PrevRevision:    q.PrevRevision,
		HasPrevRevision: q.HasPrevRevision,
		Limit:           q.Limit,
	}
}
