package service

import (
	"errors"
	"time"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/wire"
)

// call is one client request on its way through the node loop.
type call struct {
	req      *wire.Request
	cmd      []byte // the encoded Command, for requests that go through the log
	deadline time.Time
	reply    func(*wire.Response)
}

// callKey identifies a command across retries and connections.
type callKey struct{ client, seq uint64 }

func (k callKey) less(o callKey) bool {
	if k.client != o.client {
		return k.client < o.client
	}
	return k.seq < o.seq
}

// handleCall runs in the loop: local requests are answered at once, others
// are proposed and wait for their command to be applied.
func (n *Node) handleCall(c *call) {
	switch {
	case c.req.Op == wire.OpStatus:
		c.reply(&wire.Response{Status: []wire.NodeStatus{n.status()}})
		return
	case c.req.Serializable && (c.req.Op == wire.OpGet || c.req.Op == wire.OpList):
		c.reply(n.localRead(c.req))
		return
	}
	key := callKey{c.req.ClientID, c.req.Seq}
	if err := n.r.Propose(c.cmd); err != nil {
		c.reply(n.notLeader(err))
		return
	}
	n.waiters[key] = append(n.waiters[key], c)
}

func (n *Node) notLeader(err error) *wire.Response {
	if errors.Is(err, paxos.ErrBusy) {
		return &wire.Response{Err: wire.ErrUnavailable, ErrMsg: "leader is overloaded: too many pending proposals"}
	}
	resp := &wire.Response{Err: wire.ErrNotLeader, ErrMsg: "no leader is known yet (election in progress)"}
	if l := n.r.Status().Leader; l != 0 {
		resp.LeaderHint = l
		resp.LeaderAddr = n.cfg.Peers[l]
	}
	return resp
}

func (n *Node) localRead(q *wire.Request) *wire.Response {
	resp := &wire.Response{Revision: n.sm.Revision()}
	if q.Op == wire.OpGet {
		kv, ok := n.sm.Get(q.Key)
		if !ok {
			resp.Err, resp.ErrMsg = wire.ErrNotFound, "key not found: "+q.Key
			return resp
		}
		resp.Found, resp.KV = true, wireKV(kv)
		return resp
	}
	for _, kv := range n.sm.List(q.Prefix, int(q.Limit)) {
		resp.KVs = append(resp.KVs, wireKV(kv))
	}
	return resp
}

// expireWaiters answers requests whose deadline passed with a timeout; the
// client may retry with the same sequence number, which is safe.
func (n *Node) expireWaiters(now time.Time) {
	for k, cs := range n.waiters {
		kept := cs[:0]
		for _, c := range cs {
			if now.After(c.deadline) {
				c.reply(&wire.Response{Err: wire.ErrTimeout, ErrMsg: "request timed out waiting for the cluster to commit it"})
				continue
			}
			kept = append(kept, c)
		}
		if len(kept) == 0 {
			delete(n.waiters, k)
		} else {
			n.waiters[k] = kept
		}
	}
}

func (n *Node) failWaiters(code wire.ErrCode, msg string) {
	for k, cs := range n.waiters {
		for _, c := range cs {
			c.reply(&wire.Response{Err: code, ErrMsg: msg})
		}
		delete(n.waiters, k)
	}
}

func (n *Node) status() wire.NodeStatus {
	st := n.r.Status()
	return wire.NodeStatus{
		ID:        st.ID,
		Addr:      n.cfg.Peers[st.ID],
		Role:      st.Role.String(),
		Ballot:    st.Ballot,
		Leader:    st.Leader,
		Commit:    st.Commit,
		Applied:   n.sm.Applied(),
		Connected: true,
	}
}

func wireKV(kv KV) wire.KV {
	return wire.KV{Key: kv.Key, Value: kv.Value, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision, Version: kv.Version}
}

// resultResponse translates a state machine result into a wire response.
func resultResponse(op Op, r Result) *wire.Response {
	resp := &wire.Response{Revision: r.Revision, Found: r.Found, KV: wireKV(r.KV), Succeeded: r.Succeeded}
	for _, kv := range r.KVs {
		resp.KVs = append(resp.KVs, wireKV(kv))
	}
	switch {
	case r.Err == nil:
		if op == OpCAS && !r.Succeeded {
			resp.Err, resp.ErrMsg = wire.ErrCASFailed, "compare failed: the key's value or revision differs"
		}
	case errors.Is(r.Err, ErrNotFound):
		resp.Err, resp.ErrMsg = wire.ErrNotFound, r.Err.Error()
	case errors.Is(r.Err, ErrTooLarge):
		resp.Err, resp.ErrMsg = wire.ErrTooLarge, r.Err.Error()
	case errors.Is(r.Err, ErrInvalid), errors.Is(r.Err, ErrStaleRequest):
		resp.Err, resp.ErrMsg = wire.ErrInvalid, r.Err.Error()
	default:
		resp.Err, resp.ErrMsg = wire.ErrInternal, r.Err.Error()
	}
	return resp
}
