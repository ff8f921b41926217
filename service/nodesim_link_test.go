package service

import (
	"fmt"
	"net"
	"time"

	"github.com/paxosd/paxosd/wire"
)

// simConn is a client's connection to one node incarnation, as the node's
// loop sees it (clientConn): answers are corked and delivered together at
// Uncork, encoded and decoded as on the wire, after a network delay.
type simConn struct {
	l      *simLink
	node   *simNode
	inc    int
	corked [][]byte // encoded answers
	closed bool
	name   simAddr
	// up and down are when the last request and the last answer arrive:
	// a connection is a byte stream, so neither overtakes the one before.
	up, down time.Duration
	// readRate, when not 0, is how many bytes a second the client reads
	// (a slow watcher, simParams.slowReaders); unread counts the bytes
	// of answers sent and not read yet: the node's Backlog.
	readRate float64
	unread   int64
	// frames counts the answers sent and not read yet.
	frames int
}

// fifo returns the delay after which something sent now on a stream
// whose last item arrives at *last arrives, and moves *last.
func (s *sim) fifo(last *time.Duration) time.Duration {
	at := max(s.now+s.latency(), *last)
	*last = at
	return at - s.now
}

func (c *simConn) Cork(resp *wire.Response) (bool, error) {
	if c.closed {
		return false, wire.ErrClosed
	}
	// Encoded at once, as a real connection does: a node changes resp
	// once Cork returns (a shared answer's pairs, hidden for one call,
	// are put back; auth.go), slices and all.
	c.corked = append(c.corked, wire.EncodeResponse(nil, resp))
	return len(c.corked) == 1, nil
}

func (c *simConn) CorkShared(id uint64, sh *wire.SharedResponse) (bool, error) {
	r := sh.Response
	r.ID = id
	return c.Cork(&r)
}

func (c *simConn) Uncork() error {
	batch := c.corked
	c.corked = nil
	for _, body := range batch {
		c.deliver(body)
	}
	return nil
}

func (c *simConn) TrySend(resp *wire.Response) error {
	if c.closed {
		return wire.ErrClosed
	}
	c.deliver(wire.EncodeResponse(nil, resp))
	return nil
}

func (c *simConn) Close() error {
	c.closed = true
	return nil
}

func (c *simConn) RemoteAddr() net.Addr { return c.name }

func (c *simConn) Queued() int { return c.frames }

func (c *simConn) Backlog() int64 {
	n := c.unread
	for _, body := range c.corked {
		n += int64(len(body))
	}
	return n
}

// Version: the clients of odd index speak protocol 6, so the simulation
// runs the answers of both sides of wire.VersionClientAnswers — except
// client 1, a lock client that moves money between accounts in
// transactions (version 8) under its locks' fencing tokens, and in odd
// seeds the watch clients, whose watches then get progress
// notifications (version 11).
func (c *simConn) Version() uint32 { return c.l.c.version() }

func (c *simClient) version() uint32 {
	if c.idx%2 == 1 && c.idx != 1 && !(c.role == roleWatch && c.s.seed%2 == 1) {
		return wire.VersionClientAnswers - 1
	}
	return wire.ProtocolVersion
}

// deliver carries one answer back to the client.
func (c *simConn) deliver(body []byte) {
	s := c.l.c.s
	delay := s.fifo(&c.down)
	if c.readRate > 0 {
		c.down += time.Duration(float64(len(body)) / c.readRate * float64(time.Second))
		delay = c.down - s.now
	}
	c.unread += int64(len(body))
	c.frames++
	s.at(delay, nil, func() {
		c.unread -= int64(len(body))
		c.frames--
		if c.closed || c.l.conn != c {
			return
		}
		r, err := wire.DecodeResponse(body)
		if err != nil {
			s.failf("a response does not decode: %v", err)
			return
		}
		c.l.receive(r)
	})
}

// simLink is one activity of a client (its operations, its session's
// keep-alives, a stream) with the connection it uses and the calls under
// way on it. Like the Go client, it retries an operation with the same
// client id and sequence number — elsewhere — until it gets an answer that
// settles it or gives up, leaving its outcome unknown.
type simLink struct {
	c    *simClient
	name string
	// as is the user the link acts as in a seed with auth
	// (nodesim_auth_test.go): root when empty. arrived, if set, is told
	// where and when each request reached a node.
	as      string
	arrived func(id uint64, sn *simNode, inc int)
	cid     uint64
	seq     uint64
	open    map[uint64]bool // sequence numbers not settled yet
	conn    *simConn
	reqID   uint64
	calls   map[uint64]*simCall
}

// simCall is one request under way on a link's connection.
type simCall struct {
	q      *wire.Request
	stream bool
	onResp func(*wire.Response)
	onFail func()
}

func newSimLink(c *simClient, name string, cid uint64) *simLink {
	return &simLink{c: c, name: name, cid: cid, open: map[uint64]bool{}, calls: map[uint64]*simCall{}}
}

// busy reports whether a call is under way.
func (l *simLink) busy() bool { return len(l.calls) > 0 }

// connect gives the link a connection to a node that runs, preferring
// want.
func (l *simLink) connect(want *simNode) bool {
	s := l.c.s
	if l.conn != nil && !l.conn.closed && l.conn.node.up() && l.conn.node.inc == l.conn.inc {
		if want == nil || want == l.conn.node {
			return true
		}
	}
	l.disconnect()
	if want == nil || !want.up() {
		var ups []*simNode
		for _, sn := range s.nodes {
			if sn.up() {
				ups = append(ups, sn)
			}
		}
		if len(ups) == 0 {
			return false
		}
		want = ups[s.rng.Intn(len(ups))]
	}
	l.reqID++
	l.conn = &simConn{l: l, node: want, inc: want.inc, name: simAddr(fmt.Sprintf("client%d/%s#%d", l.c.idx, l.name, l.reqID))}
	if l.c.role == roleWatch && l == l.c.obs {
		l.conn.readRate = s.p.slowReaders
	}
	return true
}

// disconnect closes the connection: the node drops its waiting calls and
// streams, and every call under way fails.
func (l *simLink) disconnect() {
	conn := l.conn
	if conn == nil {
		return
	}
	l.conn = nil
	conn.closed = true
	s := l.c.s
	s.onNode(conn.node, conn.inc, s.fifo(&conn.up), nil, func(n *Node) { n.handleCall(&call{conn: conn, closed: true}) })
	l.failAll()
}

// broken is told that the connection's node stopped.
func (l *simLink) broken(sn *simNode) {
	if l.conn != nil && l.conn.node == sn {
		l.conn.closed = true
		l.conn = nil
		s := l.c.s
		s.at(s.latency(), nil, l.failAll)
	}
}

func (l *simLink) failAll() {
	calls := l.calls
	l.calls = map[uint64]*simCall{}
	for _, id := range sortedIDs(calls) {
		if f := calls[id].onFail; f != nil {
			f()
		}
	}
}

// send sends q on the link's connection (connecting if need be): onResp
// gets each answer (a stream gets many), onFail is called if the
// connection breaks or, unless timeout is 0, no answer came in time.
func (l *simLink) send(q *wire.Request, timeout time.Duration, want *simNode, onResp func(*wire.Response), onFail func()) {
	s := l.c.s
	if !l.connect(want) {
		s.at(50*time.Millisecond, nil, onFail)
		return
	}
	conn := l.conn
	l.reqID++
	q.ID = l.reqID
	if timeout > 0 {
		q.TimeoutMs = uint32(timeout / time.Millisecond)
	}
	call := &simCall{q: q, stream: q.Op.IsStream(), onResp: onResp, onFail: onFail}
	l.calls[q.ID] = call
	body := wire.EncodeRequest(nil, q)
	s.onNode(conn.node, conn.inc, s.fifo(&conn.up), func() string { return fmt.Sprintf("client %d/%s -> node %d: %s", l.c.idx, l.name, conn.node.id, q.Op) }, func(n *Node) {
		if conn.closed {
			return
		}
		dq, err := wire.DecodeRequest(body)
		if err != nil {
			s.failf("a request does not decode: %v", err)
			return
		}
		if l.arrived != nil {
			l.arrived(dq.ID, conn.node, conn.inc)
		}
		cl, resp := n.newCallAs(conn, dq, s.identityOf(l))
		if resp != nil {
			n.replyNow(conn, dq, resp)
			return
		}
		if n.installing() {
			s.stats.installCalls++
		}
		n.handleCall(cl)
	})
	if timeout > 0 {
		id := q.ID
		s.at(timeout+10*time.Millisecond, nil, func() {
			if l.calls[id] == call {
				delete(l.calls, id)
				if call.onFail != nil {
					call.onFail()
				}
			}
		})
	}
}

// receive routes an answer to its call.
func (l *simLink) receive(r *wire.Response) {
	call, ok := l.calls[r.ID]
	if !ok {
		return
	}
	if !call.stream || r.StreamEnd {
		delete(l.calls, r.ID)
	}
	if call.onResp != nil {
		call.onResp(r)
	}
}

// cancel asks the node to end the blocking call or stream id.
func (l *simLink) cancel(id uint64) {
	if _, ok := l.calls[id]; !ok || l.conn == nil {
		return
	}
	l.c.s.stats.cancels++
	l.send(&wire.Request{Op: wire.OpCancel, CancelID: id}, 0, l.conn.node, nil, nil)
}

// retryable reports whether an answer leaves the operation unsettled: the
// node could not serve it, so it may be retried (elsewhere, or after the
// wait a Busy answer asks for).
func retryable(r *wire.Response) bool {
	switch r.Err {
	case wire.ErrNotLeader, wire.ErrUnavailable, wire.ErrTimeout, wire.ErrBusy:
		return true
	}
	return false
}

// do runs an operation through the log with the link's client id and a
// new sequence number: q is sent (again, elsewhere, after a pause) until
// an answer settles it, or until giveUp has passed; done gets the answer,
// or nil if the outcome is unknown.
func (l *simLink) do(q *wire.Request, giveUp time.Duration, done func(*wire.Response)) {
	s := l.c.s
	l.seq++
	seq := l.seq
	l.open[seq] = true
	q.ClientID, q.Seq = l.cid, seq
	deadline := s.now + giveUp
	var attempt func(want *simNode)
	finish := func(r *wire.Response) {
		delete(l.open, seq)
		done(r)
	}
	attempt = func(want *simNode) {
		if s.now >= deadline {
			finish(nil)
			return
		}
		q.AckedBelow = l.ackedBelow()
		cq := *q
		l.send(&cq, min(time.Second, deadline-s.now), want, func(r *wire.Response) {
			if !retryable(r) {
				finish(r)
				return
			}
			if r.Err == wire.ErrBusy {
				// The same node, after the wait it asked for and some
				// jitter, as the Go client does.
				s.stats.busy++
				wait := time.Duration(r.RetryAfterMs) * time.Millisecond
				wait += time.Duration(s.rng.Int63n(int64(wait)/2 + 1))
				var same *simNode
				if l.conn != nil {
					same = l.conn.node
				}
				s.at(wait, nil, func() { attempt(same) })
				return
			}
			var next *simNode
			if r.LeaderHint != 0 {
				next = s.node(r.LeaderHint)
			}
			if next == nil || (l.conn != nil && next == l.conn.node) {
				l.disconnect()
			}
			s.at(time.Duration(10+s.rng.Intn(40))*time.Millisecond, nil, func() { attempt(next) })
		}, func() {
			l.disconnect()
			s.at(time.Duration(10+s.rng.Intn(40))*time.Millisecond, nil, func() { attempt(nil) })
		})
	}
	attempt(nil)
}

// ackedBelow is the lowest sequence number not settled yet.
func (l *simLink) ackedBelow() uint64 {
	low := l.seq + 1
	for seq := range l.open {
		low = min(low, seq)
	}
	return low
}

func sortedIDs(m map[uint64]*simCall) []uint64 {
	ids := make([]uint64, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	for i := 1; i < len(ids); i++ {
		for j := i; j > 0 && ids[j] < ids[j-1]; j-- {
			ids[j], ids[j-1] = ids[j-1], ids[j]
		}
	}
	return ids
}
