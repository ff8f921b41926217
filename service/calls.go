package service

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// call is one client request on its way through the node loop.
type call struct {
	conn     clientConn // the connection it came on (streams, cancel)
	req      *wire.Request
	cmd      []byte // the encoded Command, for requests that go through the log
	deadline time.Time
	// node answers through conn (Node.corkAnswer), counting and timing
	// the request from arrived (countAnswer; answered: the first answer
	// was counted); onReply, if set, takes the answers instead (a test's
	// call). Neither may keep resp once it returns: the loop builds the
	// answers of applied commands in one Response it reuses (Node.answer).
	node     *Node
	arrived  time.Time
	answered bool
	onReply  func(*wire.Response)
	// queued: the state machine answered Pending (a lock or campaign
	// wait); the answer comes from a later command, so the call is not
	// re-proposed when the leader changes.
	queued bool
	// closed marks the pseudo-call HandleClient sends when its connection
	// ends, so the loop drops that connection's streams and waiters.
	closed bool
	// start is when the loop took it to propose (zero for calls answered
	// without the log): the status page's latency runs from there to the
	// answer, a timeout included.
	start time.Time
	// version is the protocol version of the client's connection (0 when
	// unknown: answered as an old client is).
	version uint32
	// who is the connection's user (auth.go).
	who identity
	// weight is the bytes this call adds to the node's backlog while it
	// waits for its command (busy.go); 0 once it no longer does. opening:
	// a SessionOpen counted against its client's limit meanwhile
	// (session_limit.go).
	weight  int
	opening bool
}

// speaks reports whether the call's client speaks protocol version v: it
// gets the answers docs/PROTOCOL.md gives from that version on.
func (c *call) speaks(v uint32) bool { return c.version >= v }

// reply sends the call its answer (or, for a stream, its next one). It
// runs on the loop.
func (c *call) reply(resp *wire.Response) {
	if c.hidesPair() {
		// Found still says whether there was a pair. resp may be shared
		// with other calls, and is encoded before reply returns.
		kv := resp.KV
		resp.KV = wire.KV{}
		defer func() { resp.KV = kv }()
	}
	if c.req.Op == wire.OpTxn && c.node != nil {
		defer c.node.hideTxnPairs(c, resp)()
	}
	if c.onReply != nil {
		c.onReply(resp)
		return
	}
	c.node.corkAnswer(c, resp)
}

// hidesPair reports whether c's answer leaves out the key-value pair a
// Put, a Delete (the previous pair) or a failed CAS (the current one)
// reports: the client asked for none (omit_prev, version 17), or its
// user may write the key but not read it — a write-only grant must not
// read values through the answers to its writes (etcd asks read
// permission for prev_kv likewise).
func (c *call) hidesPair() bool {
	switch c.req.Op {
	case wire.OpPut, wire.OpDelete:
		if c.req.OmitPrev {
			return true
		}
	case wire.OpCAS:
	default:
		return false
	}
	return c.node != nil && !c.node.mayRead(c, c.req.Key)
}

// corkAnswer adds resp to the answers for c's connection that the loop
// sends at the end of its iteration (uncork): one write for many answers,
// and never a wait for a slow client (see answerFailed).
func (n *Node) corkAnswer(c *call, resp *wire.Response) {
	resp.ID = c.req.ID
	endsStream(c.req, resp)
	n.countAnswer(c, resp.Err)
	first, err := c.conn.Cork(resp)
	if errors.Is(err, wire.ErrFrameTooLarge) {
		tl := tooLargeAnswer(resp.ID, err)
		if c.req.Op == wire.OpTxn && resp.Err == wire.ErrNone {
			// Its writes are in: say so, or the client takes TooLarge
			// for a refusal.
			tl.Revision, tl.Succeeded = resp.Revision, resp.Succeeded
			tl.ErrMsg = fmt.Sprintf("the transaction was applied (revision %d, compares held: %v), but its answer does not fit in a frame (%v): read less in it (a limit on its prefix gets)",
				resp.Revision, resp.Succeeded, err)
		}
		if c.req.Op.IsStream() {
			// A push too large for a frame ends its stream: the client
			// cannot resume past what it never got.
			tl.StreamEnd = true
			n.streams.remove(streamKey{c.conn, c.req.ID})
		}
		first, err = c.conn.Cork(tl)
	}
	switch {
	case err != nil:
		n.answerFailed(c.conn, err)
	case first:
		n.corked = append(n.corked, c.conn)
	}
}

// corkShared is corkAnswer for a response many streams get alike (a
// watch push), encoded once (wire.SharedResponse).
func (n *Node) corkShared(c *call, sh *wire.SharedResponse) {
	if c.onReply != nil {
		r := sh.Response
		c.reply(&r)
		return
	}
	first, err := c.conn.CorkShared(c.req.ID, sh)
	if errors.Is(err, wire.ErrFrameTooLarge) {
		r := sh.Response
		n.corkAnswer(c, &r) // which ends the stream, saying why
		return
	}
	n.countAnswer(c, wire.ErrNone)
	switch {
	case err != nil:
		n.answerFailed(c.conn, err)
	case first:
		n.corked = append(n.corked, c.conn)
	}
}

// callKey identifies a command across retries and connections.
type callKey struct{ client, seq uint64 }

func (c *call) key() callKey { return callKey{c.req.ClientID, c.req.Seq} }

func (k callKey) less(o callKey) bool {
	if k.client != o.client {
		return k.client < o.client
	}
	return k.seq < o.seq
}

// farFuture is the deadline of a blocking call the client gave no deadline:
// it waits until answered, cancelled, or its connection closes.
var farFuture = time.Unix(1<<40, 0)

// handleCall runs in the loop: local requests are answered at once, others
// are proposed and wait for their command to be applied.
func (n *Node) handleCall(c *call) {
	switch {
	case c.closed:
		n.dropConn(c.conn)
		return
	case n.refuseUnauthorized(c):
		return
	case c.req.Op == wire.OpStatus:
		c.reply(&wire.Response{Status: n.memberStatuses()})
		return
	case n.refuseRemoved(c):
		return
	case n.refuseWhileInstalling(c):
		return
	case authLocal(c.req.Op):
		c.reply(n.authAnswer(c))
		return
	case c.req.Op == wire.OpSessionList:
		resp := &wire.Response{Revision: n.sm.Revision(), Sessions: wireSessions(n.sm.Sessions())}
		n.filterForUser(c, resp)
		c.reply(resp)
		return
	case c.req.Op == wire.OpLockList:
		resp := &wire.Response{Revision: n.sm.Revision(), Locks: wireLocks(n.sm.Locks())}
		n.filterForUser(c, resp)
		c.reply(resp)
		return
	case c.req.Op == wire.OpWatch || c.req.Op == wire.OpObserve:
		n.openStream(c)
		return
	case c.req.Op == wire.OpCancel:
		n.cancel(c)
		return
	case c.req.Op == wire.OpLeaderTransfer:
		n.callTransfer(c)
		return
	case c.req.Op.IsMember():
		n.callMember(c)
		return
	case n.pinnedHere(c.req):
		c.reply(n.listRead(c.req))
		return
	case c.req.Op == wire.OpQuotaGet:
		c.reply(n.quotaResponse())
		return
	case c.req.Op == wire.OpQuotaSet && n.refuseQuotaSet(c):
		return
	case n.refuseEphemeralPut(c):
		return
	case n.refuseKeepAliveBatch(c):
		return
	case n.refuseSessionOpen(c):
		return
	case c.req.Serializable && (c.req.Op == wire.OpGet || c.req.Op == wire.OpList):
		c.reply(n.localRead(c.req))
		return
	case (c.req.Op == wire.OpGet || c.req.Op == wire.OpList) && n.leaseRead(c):
		return
	}
	if n.refuseWithoutQuorum(c) || n.shed(c) {
		return
	}
	key := c.key()
	c.start = n.clock.Now()
	switch err := n.r.Propose(c.cmd); {
	case errors.Is(err, paxos.ErrNoLeader):
		// An election is under way: keep the call and propose it the moment
		// a leader appears (noticeLeaderChange), rather than send the
		// client into a retry loop that would only add its backoff to the
		// failover time.
	case errors.Is(err, paxos.ErrBusy):
		// The replica's own bound on its queue (by count or bytes).
		n.refuseBusy(c, priorityOf(c.req.Op), len(c.cmd))
		return
	case err != nil:
		c.reply(n.notLeader(err))
		return
	default:
		n.m.proposals.Inc()
	}
	n.waiters[key] = append(n.waiters[key], c)
	n.wait(c)
}

// answer replies to every call waiting for key with res, unless res says
// the command is now queued in the state machine (its answer comes later).
func (n *Node) answer(key callKey, op statemachine.Op, res statemachine.Result) {
	cs := n.waiters[key]
	if len(cs) == 0 {
		return
	}
	if res.Pending {
		for _, c := range cs {
			c.queued = true
			n.unwait(c, true)
		}
		return
	}
	n.noteSessionAnswer(key.client, op, &res, cs[0].req.SessionID)
	now := n.clock.Now()
	for _, c := range cs {
		n.unwait(c, true)
		// A queued call's wait for a lock or a campaign is not latency.
		if !c.queued && !c.start.IsZero() {
			n.rates.observe(now.Sub(c.start))
		}
	}
	// One Response reused for every answer: encoded as soon as it is
	// given to reply, it would otherwise be 600 bytes of garbage for
	// every write, a tenth of what a node allocates per write.
	resp := &n.answerScratch
	*resp = resultResponse(op, res)
	defer func() { *resp = wire.Response{} }() // holds no value until the next
	for i, c := range cs {
		if c.req.Op == wire.OpSnapshotSave {
			n.saveReady(c, resp) // the barrier passed: the save starts between values
			continue
		}
		r := resp
		switch {
		case op == statemachine.OpList && paged(c.req):
			// The log carried only a barrier (see commandOf): the page is
			// read now, with the state exactly as the command found it.
			r = n.listRead(c.req)
		case i > 0:
			cp := *resp
			r = &cp
		}
		if n.lastLeader != n.cfg.ID && n.lastLeader != 0 {
			// Tell the client where the leader is: answering there saves
			// the forwarding hop (the client library moves its requests
			// over).
			r.LeaderHint, r.LeaderAddr = n.lastLeader, n.book.addr(n.lastLeader)
		}
		if op == statemachine.OpDelete && r.Err == wire.ErrNotFound && c.speaks(wire.VersionClientAnswers) {
			// Deleting a missing key succeeds, found false, as in etcd;
			// an older client was told NotFound. A copy: resp is shared
			// with the other calls.
			cp := *r
			cp.Err, cp.ErrMsg = wire.ErrNone, ""
			r = &cp
		}
		c.reply(r)
	}
	delete(n.waiters, key)
}

func (n *Node) notLeader(err error) *wire.Response {
	if errors.Is(err, paxos.ErrBusy) {
		return &wire.Response{Err: wire.ErrUnavailable, ErrMsg: "leader is overloaded: too many pending proposals"}
	}
	resp := &wire.Response{Err: wire.ErrNotLeader, ErrMsg: "no leader is known yet (election in progress)"}
	if l := n.r.Status().Leader; l != 0 {
		resp.LeaderHint = l
		resp.LeaderAddr = n.book.addr(l)
		resp.ErrMsg = fmt.Sprintf("node %d is not the leader: node %d is (%s)", n.cfg.ID, l, resp.LeaderAddr)
	}
	return resp
}

func (n *Node) localRead(q *wire.Request) *wire.Response {
	if q.Op == wire.OpGet {
		resp := &wire.Response{Revision: n.sm.Revision()}
		kv, ok := n.sm.Get(q.Key)
		if !ok {
			resp.Err, resp.ErrMsg = wire.ErrNotFound, "key not found: "+q.Key
			return resp
		}
		resp.Found, resp.KV = true, wireKV(kv)
		return resp
	}
	return n.listRead(q)
}

// expireWaiters answers requests whose deadline passed with a timeout; the
// client may retry with the same sequence number, which is safe.
func (n *Node) expireWaiters(now time.Time) {
	n.failWithoutQuorum(now) // quorum.go
	n.removeWaiters(func(c *call) bool { return now.After(c.deadline) }, func(c *call) {
		if !c.queued && !c.start.IsZero() {
			n.rates.observe(now.Sub(c.start)) // an outage shows in the p99
		}
		c.reply(&wire.Response{Err: wire.ErrTimeout, ErrMsg: "request timed out waiting for the cluster to commit it"})
	})
}

// removeWaiters stops waiting for the calls that match, handing each to
// then (which may answer it), in key order; nil then drops them silently.
func (n *Node) removeWaiters(match func(*call) bool, then func(*call)) {
	var removed []*call
	for k, cs := range n.waiters {
		kept := cs[:0]
		for _, c := range cs {
			if !match(c) {
				kept = append(kept, c)
			} else {
				removed = append(removed, c)
			}
		}
		if len(kept) == 0 {
			delete(n.waiters, k)
		} else {
			n.waiters[k] = kept
		}
	}
	for _, c := range removed {
		n.unwait(c, false)
	}
	if then == nil {
		return
	}
	sort.SliceStable(removed, func(i, j int) bool { return removed[i].key().less(removed[j].key()) })
	for _, c := range removed {
		then(c)
	}
}

func (n *Node) failWaiters(code wire.ErrCode, msg string) {
	for _, k := range n.waitingKeys(nil) {
		for _, c := range n.waiters[k] {
			n.unwait(c, false)
			c.reply(&wire.Response{Err: code, ErrMsg: msg})
		}
		delete(n.waiters, k)
	}
	n.endStreams(code, msg)
}

// memberStatuses answers OpStatus: this node's own status first (what
// clients that read only the first entry take), then every other member
// in id order with what this node knows of it, its id, address and whether
// a connection to it is up, so that a client given one endpoint learns the
// whole membership ('paxosd status').
func (n *Node) memberStatuses() []wire.NodeStatus {
	out := []wire.NodeStatus{n.status()}
	for _, id := range n.book.members() {
		if id == n.cfg.ID {
			continue
		}
		out = append(out, wire.NodeStatus{ID: id, Addr: n.book.addr(id), Connected: n.tcp != nil && n.tcp.Connected(id)})
	}
	return out
}

func (n *Node) status() wire.NodeStatus {
	st := n.r.Status()
	s := wire.NodeStatus{
		ID:          st.ID,
		Addr:        n.book.addr(st.ID),
		Role:        st.Role.String(),
		Ballot:      st.Ballot,
		Leader:      st.Leader,
		Commit:      st.Commit,
		Applied:     n.appliedSlot(),
		Connected:   true,
		Promised:    st.Promised,
		AcceptedMax: max(st.MaxSlot, st.Commit),
		WindowSlots: uint64(n.cfg.WindowSlots),
	}
	n.selfStatus(&s)
	return s
}
