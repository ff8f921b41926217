package service

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/paxosd/paxosd/wire"
)

// busyClient sends requests straight into a simulated node's loop, as a
// client of protocol version would, and keeps each one's first answer.
type busyClient struct {
	id      uint64
	seq     uint64
	version uint32
	got     []*wire.Response // by request, nil until answered
	sentAt  []time.Duration
	at      []time.Duration // when each was answered (simulated time)
}

// send hands q to n's loop (within a runOn); it returns q's index.
func (b *busyClient) send(s *sim, n *Node, q *wire.Request) int {
	b.seq++
	q.ClientID, q.Seq = b.id, b.seq
	i := len(b.got)
	b.got = append(b.got, nil)
	b.sentAt = append(b.sentAt, s.now)
	b.at = append(b.at, 0)
	cl, resp := n.newCall(nil, q)
	if resp != nil {
		b.got[i], b.at[i] = resp, s.now
		return i
	}
	cl.version = b.version
	cl.onReply = func(r *wire.Response) {
		if b.got[i] == nil {
			cp := *r
			b.got[i], b.at[i] = &cp, s.now
		}
	}
	n.handleCall(cl)
	return i
}

// answered reports whether every request has its answer.
func (b *busyClient) answered() bool {
	for _, r := range b.got {
		if r == nil {
			return false
		}
	}
	return true
}

// count returns how many answers have code.
func (b *busyClient) count(code wire.ErrCode) int {
	n := 0
	for _, r := range b.got {
		if r != nil && r.Err == code {
			n++
		}
	}
	return n
}

// checkBusy fails t unless every Busy answer of b says when to retry, in
// the words docs/PROTOCOL.md gives, within the node's bounds.
func (b *busyClient) checkBusy(t *testing.T, what string) {
	t.Helper()
	for i, r := range b.got {
		if r == nil || r.Err != wire.ErrBusy {
			continue
		}
		if r.RetryAfterMs < uint64(busyRetryMin/time.Millisecond) || r.RetryAfterMs > uint64(busyRetryMax/time.Millisecond) {
			t.Fatalf("%s %d: retry after %d ms, outside [%v, %v]", what, i, r.RetryAfterMs, busyRetryMin, busyRetryMax)
		}
		if want := fmt.Sprintf("busy: retry after %d ms", r.RetryAfterMs); r.ErrMsg != want {
			t.Fatalf("%s %d: %q, want %q", what, i, r.ErrMsg, want)
		}
	}
}

func shedCount(n *Node, p priority) int {
	return int(testutil.ToFloat64(n.m.shed.WithLabelValues(p.String())))
}

// TestBusyShedsByPriority: requests that arrive at once at a node whose
// backlog bound is small (16 KiB) are shed by priority: writes once the
// backlog holds half the bound, lock operations three quarters, keep-alives
// never before it is full. So locks are taken while writes are refused, and
// every keep-alive goes through. A refusal is err Busy, "busy: retry after
// N ms", to a client of protocol 13, and err Unavailable to an older one,
// and is counted by priority. Whatever was admitted is applied, and once
// it has been the node's account of its backlog is back at zero.
func TestBusyShedsByPriority(t *testing.T) {
	s := rgSim(t, 301, func(p *simParams) { p.backlogBytes = 16 << 10 })
	l := rgLeader(t, s)
	sess := &busyClient{id: 0x5e55, version: wire.ProtocolVersion}
	s.runOn(l, l.inc, func(n *Node) { sess.send(s, n, &wire.Request{Op: wire.OpSessionOpen, TTLMs: 2000}) })
	rgRunUntil(t, s, time.Second, "session open", sess.answered)
	if r := sess.got[0]; r.Err != wire.ErrNone {
		t.Fatalf("open: %s %s", r.Err, r.ErrMsg)
	}
	sid := sess.got[0].Session.ID

	puts := &busyClient{id: 0x9001, version: wire.ProtocolVersion}
	old := &busyClient{id: 0x9002, version: wire.VersionKeepAliveBatch}
	locks := &busyClient{id: 0x9003, version: wire.ProtocolVersion}
	kas := &busyClient{id: 0x9004, version: wire.ProtocolVersion}
	value := []byte(strings.Repeat("v", 1000))
	s.runOn(l, l.inc, func(n *Node) {
		for i := 0; i < 20; i++ {
			puts.send(s, n, &wire.Request{Op: wire.OpPut, Key: fmt.Sprintf("k%02d", i), Value: value})
		}
		old.send(s, n, &wire.Request{Op: wire.OpPut, Key: "old", Value: value})
		for i := 0; i < 20; i++ {
			name := fmt.Sprintf("lock-%02d-%s", i, strings.Repeat("n", 500))
			locks.send(s, n, &wire.Request{Op: wire.OpLockAcquire, Name: name, SessionID: sid})
		}
		for i := 0; i < 20; i++ {
			kas.send(s, n, &wire.Request{Op: wire.OpSessionKeepAlive, SessionID: sid})
		}
	})
	for _, b := range []*busyClient{puts, old, locks, kas} {
		rgRunUntil(t, s, 3*time.Second, "every request answered", b.answered)
	}

	if ok, busy := puts.count(wire.ErrNone), puts.count(wire.ErrBusy); ok == 0 || busy == 0 || ok+busy != 20 {
		t.Fatalf("puts: %d ok, %d busy of 20; want some of each and nothing else", ok, busy)
	}
	if ok, busy := locks.count(wire.ErrNone), locks.count(wire.ErrBusy); ok == 0 || busy == 0 || ok+busy != 20 {
		t.Fatalf("lock acquires: %d ok, %d busy of 20; want some taken while writes were shed, some shed, nothing else", ok, busy)
	}
	if ok := kas.count(wire.ErrNone); ok != 20 {
		t.Fatalf("keep-alives: %d of 20 ok, want all: they are shed only past the whole bound", ok)
	}
	if r := old.got[0]; r.Err != wire.ErrUnavailable || !strings.Contains(r.ErrMsg, "overloaded: retry later") {
		t.Fatalf("a put from a protocol-12 client: %s %q, want Unavailable, overloaded: retry later", r.Err, r.ErrMsg)
	}
	puts.checkBusy(t, "put")
	locks.checkBusy(t, "lock acquire")

	n := l.n
	if got, want := shedCount(n, prioWrite), puts.count(wire.ErrBusy)+1; got != want {
		t.Fatalf("paxosd_requests_shed_total{priority=write} = %d, want %d", got, want)
	}
	if got, want := shedCount(n, prioLock), locks.count(wire.ErrBusy); got != want {
		t.Fatalf("paxosd_requests_shed_total{priority=lock} = %d, want %d", got, want)
	}
	if got := shedCount(n, prioKeepAlive); got != 0 {
		t.Fatalf("paxosd_requests_shed_total{priority=keepalive} = %d, want 0", got)
	}
	if n.busy.waiting != 0 {
		t.Fatalf("every call answered, yet the backlog holds %d bytes", n.busy.waiting)
	}
	for _, sn := range s.nodes {
		if _, ok := sn.n.sm.Session(sid); !ok {
			t.Fatalf("node %d: session %d expired", sn.id, sid)
		}
	}
}

// TestBusyKeepsSessionsUnderOverload: a leader whose disk takes 20–30 ms a
// sync and whose window holds 4 slots of 2 KiB drains some 150 KB of
// commands a second; writers send it 2 MB a second for 4 s, and lock
// checks besides, while a session of TTL 1 s is renewed every 250 ms. The
// node sheds writes (answered Busy, with a retry-after, counted) and keeps
// its backlog near its bound (64 KiB: a few hundred ms of work), so every
// keep-alive goes through in time and the session never expires. Without
// the bound the backlog grows to seconds of work and the session expires
// behind it.
func TestBusyKeepsSessionsUnderOverload(t *testing.T) {
	s := rgSim(t, 302, func(p *simParams) {
		p.backlogBytes = 64 << 10
		p.syncMin, p.syncMax = 20*time.Millisecond, 30*time.Millisecond
		p.window, p.batchBytes = 4, 2<<10
		p.requestTimeout = 20 * time.Second
	})
	l := rgLeader(t, s)
	sess := &busyClient{id: 0x5e55, version: wire.ProtocolVersion}
	s.runOn(l, l.inc, func(n *Node) { sess.send(s, n, &wire.Request{Op: wire.OpSessionOpen, TTLMs: 1000}) })
	rgRunUntil(t, s, time.Second, "session open", sess.answered)
	if r := sess.got[0]; r.Err != wire.ErrNone {
		t.Fatalf("open: %s %s", r.Err, r.ErrMsg)
	}
	sid := sess.got[0].Session.ID

	puts := &busyClient{id: 0x9001, version: wire.ProtocolVersion}
	checks := &busyClient{id: 0x9003, version: wire.ProtocolVersion}
	value := []byte(strings.Repeat("v", 1000))
	start := s.now
	for i := 0; s.now < start+4*time.Second; i++ {
		s.runOn(l, l.inc, func(n *Node) {
			puts.send(s, n, &wire.Request{Op: wire.OpPut, Key: fmt.Sprintf("a%d", i), Value: value})
			puts.send(s, n, &wire.Request{Op: wire.OpPut, Key: fmt.Sprintf("b%d", i), Value: value})
			if i%10 == 0 {
				checks.send(s, n, &wire.Request{Op: wire.OpLockCheck, Name: "l", Token: 1})
			}
			if i%250 == 0 {
				sess.send(s, n, &wire.Request{Op: wire.OpSessionKeepAlive, SessionID: sid})
			}
		})
		if err := s.runFor(time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	rgRunUntil(t, s, 5*time.Second, "every keep-alive answered", sess.answered)
	for i, r := range sess.got[1:] {
		if r.Err != wire.ErrNone {
			t.Fatalf("keep-alive %d (sent at %v): %s %s", i, sess.sentAt[i+1]-start, r.Err, r.ErrMsg)
		}
		if d := sess.at[i+1] - sess.sentAt[i+1]; d > 500*time.Millisecond {
			t.Fatalf("keep-alive %d took %v: over half the session's TTL", i, d)
		}
	}
	for _, sn := range s.nodes {
		if _, ok := sn.n.sm.Session(sid); !ok {
			t.Fatalf("node %d: session %d expired while the cluster was busy", sn.id, sid)
		}
	}
	n := l.n
	busy := puts.count(wire.ErrBusy)
	if busy == 0 || busy != shedCount(n, prioWrite) {
		t.Fatalf("%d puts answered Busy, paxosd_requests_shed_total{priority=write} = %d; want the same, not 0", busy, shedCount(n, prioWrite))
	}
	if got := shedCount(n, prioKeepAlive); got != 0 {
		t.Fatalf("paxosd_requests_shed_total{priority=keepalive} = %d, want 0", got)
	}
	if ok := puts.count(wire.ErrNone); ok == 0 {
		t.Fatal("no put was admitted")
	}
	puts.checkBusy(t, "put")
	t.Logf("puts: %d ok, %d busy; lock checks: %d ok, %d busy; drain rate %.0f bytes/s",
		puts.count(wire.ErrNone), busy, checks.count(wire.ErrNone), checks.count(wire.ErrBusy), n.busy.rate)
}

// pipeClient is a client with many requests in flight, as a Go client
// shared by goroutines: each answer sends the next new request at once,
// and a Busy answer sends the same request again (same seq, acked_below
// brought up to date) after its retry-after and some jitter.
type pipeClient struct {
	s         *sim
	l         *simNode
	id, next  uint64
	first     map[uint64]time.Duration // outstanding seq -> first sent
	end       time.Duration            // no new request after it
	maxWait   time.Duration            // longest first send to success
	ok, busy  int
	value     []byte
	failed    *wire.Response
	oldestHit int // Busy answers to the client's oldest request
}

func (p *pipeClient) ackedBelow() uint64 {
	low := p.next + 1
	for seq := range p.first {
		low = min(low, seq)
	}
	return low
}

func (p *pipeClient) start() {
	p.next++
	p.first[p.next] = p.s.now
	p.send(p.next)
}

func (p *pipeClient) send(seq uint64) {
	s := p.s
	q := &wire.Request{Op: wire.OpPut, Key: fmt.Sprintf("p%d", seq%8), Value: p.value, ClientID: p.id, Seq: seq, AckedBelow: p.ackedBelow()}
	s.runOn(p.l, p.l.inc, func(n *Node) {
		cl, resp := n.newCall(nil, q)
		if resp != nil {
			p.failed = resp
			return
		}
		cl.version = wire.ProtocolVersion
		cl.onReply = func(r *wire.Response) {
			cp := *r
			oldest := q.Seq <= q.AckedBelow
			s.at(0, nil, func() { p.answered(seq, &cp, oldest) })
		}
		n.handleCall(cl)
	})
}

func (p *pipeClient) answered(seq uint64, r *wire.Response, oldest bool) {
	s := p.s
	switch r.Err {
	case wire.ErrBusy:
		p.busy++
		if oldest {
			p.oldestHit++
		}
		wait := time.Duration(r.RetryAfterMs) * time.Millisecond
		wait += time.Duration(s.rng.Int63n(int64(wait)/2 + 1))
		s.at(wait, nil, func() { p.send(seq) })
	case wire.ErrNone:
		p.ok++
		p.maxWait = max(p.maxWait, s.now-p.first[seq])
		delete(p.first, seq)
		if s.now < p.end {
			p.start()
		}
	default:
		if p.failed == nil {
			p.failed = r
		}
	}
}

// TestBusyOldestNotStarved: a client with 16 writes in flight at a node
// that sheds them. Each answer frees room that the client's next new
// request takes at once, while a request refused waits out its
// retry-after: without a margin for the client's oldest request (the one
// whose seq is its acked_below) that request could be refused on every
// try while the newer ones go through, until the state machine forgot
// past it and its retry were refused as stale. With the margin it gets in
// on its next try: no write waits long, however unlucky.
func TestBusyOldestNotStarved(t *testing.T) {
	s := rgSim(t, 304, func(p *simParams) {
		p.backlogBytes = 16 << 10
		p.syncMin, p.syncMax = 20*time.Millisecond, 30*time.Millisecond
		p.window, p.batchBytes = 4, 2<<10
		p.requestTimeout = 20 * time.Second
	})
	l := rgLeader(t, s)
	p := &pipeClient{s: s, l: l, id: 0x919e, first: map[uint64]time.Duration{}, end: s.now + 4*time.Second,
		value: []byte(strings.Repeat("v", 1000))}
	for i := 0; i < 16; i++ {
		p.start()
	}
	rgRunUntil(t, s, 10*time.Second, "every write answered", func() bool { return len(p.first) == 0 || p.failed != nil })
	if p.failed != nil {
		t.Fatalf("a write: %s %s", p.failed.Err, p.failed.ErrMsg)
	}
	t.Logf("%d writes, %d busy answers (%d to the client's oldest request); longest wait %v", p.ok, p.busy, p.oldestHit, p.maxWait)
	if p.busy == 0 {
		t.Fatal("nothing was shed: the test does not overload the node")
	}
	if p.oldestHit != 0 {
		t.Fatalf("the client's oldest request was refused %d times", p.oldestHit)
	}
	if p.maxWait > time.Second {
		t.Fatalf("a write waited %v from its first send to its answer: starved by the client's newer writes", p.maxWait)
	}
}
