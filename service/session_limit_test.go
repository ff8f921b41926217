package service

import (
	"strings"
	"testing"
	"time"

	"github.com/paxosd/paxosd/wire"
)

// TestSessionsPerClientLimit: with a limit of 3 sessions per client, a
// client's fourth open through the node is refused before the log with
// err QuotaExceeded naming the limit (Invalid to a client older than
// protocol 4), while another client opens as many; opens sent together
// cannot pass the limit together; a session closed, or expired, frees its
// place; and a client that opens and closes sessions in turn leaves
// nothing behind in the node's account.
func TestSessionsPerClientLimit(t *testing.T) {
	s := rgSim(t, 303, func(p *simParams) { p.sessionsPerClient = 3 })
	l := rgLeader(t, s)
	run := func(b *busyClient, qs ...*wire.Request) []*wire.Response {
		t.Helper()
		first := len(b.got)
		s.runOn(l, l.inc, func(n *Node) {
			for _, q := range qs {
				b.send(s, n, q)
			}
		})
		rgRunUntil(t, s, 2*time.Second, "answers", b.answered)
		return b.got[first:]
	}
	open := func(ttl uint64) *wire.Request { return &wire.Request{Op: wire.OpSessionOpen, TTLMs: ttl} }
	refused := func(r *wire.Response) bool {
		return r.Err == wire.ErrQuotaExceeded && strings.Contains(r.ErrMsg, "too many sessions") &&
			strings.Contains(r.ErrMsg, "has 3 sessions open through node") && strings.Contains(r.ErrMsg, "--sessions-per-client-max")
	}

	a := &busyClient{id: 0xa, version: wire.ProtocolVersion}
	var ids []uint64
	for i := 0; i < 3; i++ {
		r := run(a, open(1000))[0]
		if r.Err != wire.ErrNone {
			t.Fatalf("open %d: %s %s", i, r.Err, r.ErrMsg)
		}
		ids = append(ids, r.Session.ID)
	}
	if r := run(a, open(1000))[0]; !refused(r) {
		t.Fatalf("a fourth open: %s %q, want QuotaExceeded, too many sessions", r.Err, r.ErrMsg)
	}
	old := &busyClient{id: 0xa, version: 3}
	if r := run(old, open(1000))[0]; r.Err != wire.ErrInvalid || !strings.Contains(r.ErrMsg, "too many sessions") {
		t.Fatalf("a fourth open from a protocol-3 connection: %s %q, want Invalid", r.Err, r.ErrMsg)
	}
	b := &busyClient{id: 0xb, version: wire.ProtocolVersion}
	if r := run(b, open(1000))[0]; r.Err != wire.ErrNone {
		t.Fatalf("another client's open: %s %s", r.Err, r.ErrMsg)
	}
	if r := run(a, &wire.Request{Op: wire.OpSessionClose, SessionID: ids[0]})[0]; r.Err != wire.ErrNone {
		t.Fatalf("close: %s %s", r.Err, r.ErrMsg)
	}
	if r := run(a, open(1000))[0]; r.Err != wire.ErrNone {
		t.Fatalf("an open after a close: %s %s", r.Err, r.ErrMsg)
	}

	// Sent together: only the limit's worth is proposed.
	c := &busyClient{id: 0xc, version: wire.ProtocolVersion}
	ok, no := 0, 0
	for _, r := range run(c, open(1000), open(1000), open(1000), open(1000), open(1000)) {
		switch {
		case r.Err == wire.ErrNone:
			ok++
		case refused(r):
			no++
		default:
			t.Fatalf("open sent together: %s %s", r.Err, r.ErrMsg)
		}
	}
	if ok != 3 || no != 2 {
		t.Fatalf("five opens sent together: %d opened, %d refused; want 3 and 2", ok, no)
	}

	// Unrenewed, a's sessions expire (TTL 1 s) and free their places.
	if err := s.runFor(2500 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if r := run(a, open(1000))[0]; r.Err != wire.ErrNone {
			t.Fatalf("open %d after the others expired: %s %s", i, r.Err, r.ErrMsg)
		}
	}

	// Churn below the limit leaves no trace.
	d := &busyClient{id: 0xd, version: wire.ProtocolVersion}
	for i := 0; i < 20; i++ {
		r := run(d, open(10000))[0]
		if r.Err != wire.ErrNone {
			t.Fatalf("churn open %d: %s %s", i, r.Err, r.ErrMsg)
		}
		if r := run(d, &wire.Request{Op: wire.OpSessionClose, SessionID: r.Session.ID})[0]; r.Err != wire.ErrNone {
			t.Fatalf("churn close %d: %s %s", i, r.Err, r.ErrMsg)
		}
	}
	if got := l.n.clientSessions(0xd); got != 0 {
		t.Fatalf("after 20 opens and closes the node counts %d sessions for the client", got)
	}
	if len(l.n.sessCounts.opening) != 0 {
		t.Fatalf("nothing is waiting, yet opens are counted as waiting: %v", l.n.sessCounts.opening)
	}
}
