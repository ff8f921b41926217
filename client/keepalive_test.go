package client

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/paxosd/paxosd/wire"
)

// fakeCluster answers a keepAliver's requests as a cluster would, and
// records them.
type fakeCluster struct {
	mu sync.Mutex
	// renewed: per session, the times its renewals were answered.
	renewed map[uint64][]time.Time
	// sizes: the ids of each batch request, in order.
	sizes   []int
	singles int
	// expired: ids the cluster no longer has.
	expired map[uint64]bool
	// old: a server below protocol 12 (the client refuses to send it a
	// batch); invalid: a cluster below level 12 (answers Invalid).
	old, invalid bool
	// hang: batch requests block until released (ignoring ctx), then
	// succeed.
	hang chan struct{}
	// silent: this many more batch requests get no answer: each waits
	// for its ctx to end (a node that holds calls it cannot commit).
	silent int
	// fail: requests fail (the cluster unreachable) while set.
	fail bool
	// denied: sessions of another user: a batch holding one, or a
	// keep-alive of one, is refused PermissionDenied.
	denied map[uint64]bool
}

func newFakeCluster() *fakeCluster {
	return &fakeCluster{renewed: map[uint64][]time.Time{}, expired: map[uint64]bool{}}
}

func (f *fakeCluster) send(ctx context.Context, q *wire.Request) (*wire.Response, error) {
	f.mu.Lock()
	hang, fail := f.hang, f.fail
	f.mu.Unlock()
	if fail {
		time.Sleep(time.Millisecond)
		return nil, fmt.Errorf("%w: cannot reach any endpoint", ErrUnavailable)
	}
	switch q.Op {
	case wire.OpSessionKeepAliveBatch:
		if f.old {
			return nil, fmt.Errorf("%w: a keep-alive batch needs protocol version 12", ErrUnsupported)
		}
		if f.invalid {
			return &wire.Response{Err: wire.ErrInvalid, ErrMsg: "keep-alive batches need cluster level 12"}, nil
		}
		if hang != nil {
			<-hang
		}
		f.mu.Lock()
		silent := f.silent > 0
		if silent {
			f.silent--
		}
		f.mu.Unlock()
		if silent {
			<-ctx.Done()
			return nil, fmt.Errorf("%w: %w", ErrTimeout, ctx.Err())
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, id := range q.SessionIDs {
			if f.denied[id] {
				return &wire.Response{Err: wire.ErrPermissionDenied, ErrMsg: "session belongs to another user"}, nil
			}
		}
		f.sizes = append(f.sizes, len(q.SessionIDs))
		resp := &wire.Response{}
		for _, id := range q.SessionIDs {
			if f.expired[id] {
				resp.ExpiredSessions = append(resp.ExpiredSessions, id)
				continue
			}
			f.renewed[id] = append(f.renewed[id], time.Now())
		}
		return resp, nil
	case wire.OpSessionKeepAlive:
		f.mu.Lock()
		defer f.mu.Unlock()
		f.singles++
		if f.denied[q.SessionID] {
			return &wire.Response{Err: wire.ErrPermissionDenied}, nil
		}
		if f.expired[q.SessionID] {
			return &wire.Response{Err: wire.ErrSessionExpired}, nil
		}
		f.renewed[q.SessionID] = append(f.renewed[q.SessionID], time.Now())
		return &wire.Response{}, nil
	}
	return nil, fmt.Errorf("unexpected %s", q.Op)
}

// kaHarness is a Client whose keepAliver talks to a fakeCluster.
type kaHarness struct {
	c    *Client
	f    *fakeCluster
	next uint64
}

func newKAHarness(f *fakeCluster) *kaHarness {
	c := &Client{}
	c.kaOnce.Do(func() { c.ka = newKeepAliver(f.send) })
	return &kaHarness{c: c, f: f}
}

// open adds a session with ttl, as if its open had just been sent.
func (h *kaHarness) open(ttl time.Duration) *Session {
	h.next++
	s := &Session{c: h.c, id: h.next, ttl: ttl, done: make(chan struct{})}
	h.c.keepAliver().add(s, time.Now())
	return s
}

func (h *kaHarness) closeAll(ss []*Session) {
	for _, s := range ss {
		s.end(nil)
	}
}

func alive(t *testing.T, ss []*Session) {
	t.Helper()
	for _, s := range ss {
		select {
		case <-s.Done():
			t.Fatalf("session %d (TTL %s) lost: %v", s.ID(), s.TTL(), s.Err())
		default:
		}
	}
}

// TestKeepAliverBatches: 10,000 sessions opened over 300 ms are renewed
// by a handful of batch requests (split at the id limit), not one request
// each, and none is lost; once aligned, a round of renewals is one batch
// (or the parts of one).
func TestKeepAliverBatches(t *testing.T) {
	f := newFakeCluster()
	h := newKAHarness(f)
	const n = 10000
	ttl := 1500 * time.Millisecond
	var ss []*Session
	for i := 0; i < n; i++ {
		ss = append(ss, h.open(ttl))
		if i%1000 == 999 {
			time.Sleep(30 * time.Millisecond)
		}
	}
	defer h.closeAll(ss)
	time.Sleep(2600 * time.Millisecond) // at least four rounds of TTL/3
	alive(t, ss)
	f.mu.Lock()
	defer f.mu.Unlock()
	total := 0
	for _, size := range f.sizes {
		if size > wire.KeepAliveBatchMax {
			t.Fatalf("a batch of %d ids, over the limit %d", size, wire.KeepAliveBatchMax)
		}
		total += size
	}
	// Every session is renewed in every round (a batch leaves none out),
	// however late a loaded machine runs the rounds: the counts differ by
	// at most one (a round under way when the test looks), and at least
	// two rounds ran (2.6 s is over five TTL/3).
	least, most := len(f.renewed[ss[0].id]), 0
	for _, s := range ss {
		least, most = min(least, len(f.renewed[s.id])), max(most, len(f.renewed[s.id]))
	}
	if least < 2 || most-least > 1 {
		t.Fatalf("sessions renewed between %d and %d times in 2.6 s with a TTL of %s: want every one in every round, at least 2", least, most, ttl)
	}
	// Each round takes ceil(10000/4096) = 3 requests; the first round or
	// two may take more, until the sessions fall into step.
	rounds := total / n
	if len(f.sizes) > 3*rounds+6 || f.singles != 0 {
		t.Fatalf("%d batch requests (%d singles) for %d rounds of %d sessions: sizes %v", len(f.sizes), f.singles, rounds, n, f.sizes)
	}
	t.Logf("%d sessions, %d rounds: %d batch requests", n, rounds, len(f.sizes))
}

// TestKeepAliverRetriesASilentNode: the first two keep-alive batches get
// no answer at all (a leader cut off from the others holds them for over a
// second before answering Unavailable). A session of a 2 s TTL survives:
// each request gives up halfway to the loss deadline and the retry gets
// through. With the loss deadline itself as the request's deadline, the
// first silent request outlived the session (chaos finding F2: cutting
// off the leader lost sessions of a 2 s TTL).
func TestKeepAliverRetriesASilentNode(t *testing.T) {
	f := newFakeCluster()
	f.silent = 2
	h := newKAHarness(f)
	s := h.open(2 * time.Second)
	defer h.closeAll([]*Session{s})
	time.Sleep(3 * time.Second)
	alive(t, []*Session{s})
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.silent != 0 || len(f.renewed[s.id]) == 0 {
		t.Fatalf("%d silent requests left, %d renewals: the test did not run as meant", f.silent, len(f.renewed[s.id]))
	}
}

// TestKeepAliverTTLs: sessions of different TTLs in one client are each
// renewed between TTL/6 and TTL/3 (plus scheduling slack) after the last
// renewal, never lost.
func TestKeepAliverTTLs(t *testing.T) {
	f := newFakeCluster()
	h := newKAHarness(f)
	ttls := []time.Duration{600 * time.Millisecond, 900 * time.Millisecond, 1500 * time.Millisecond, time.Hour}
	var ss []*Session
	for i := 0; i < 40; i++ {
		ss = append(ss, h.open(ttls[i%len(ttls)]))
		time.Sleep(5 * time.Millisecond)
	}
	defer h.closeAll(ss)
	time.Sleep(2 * time.Second)
	alive(t, ss)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range ss {
		times := f.renewed[s.id]
		if s.ttl == time.Hour {
			if len(times) != 0 {
				t.Fatalf("session %d (TTL 1h) renewed %d times in 2 s", s.id, len(times))
			}
			continue
		}
		if want := int(2 * time.Second / (s.ttl / 3)); len(times) < want-1 {
			t.Fatalf("session %d (TTL %s) renewed %d times in 2 s, want about %d", s.id, s.ttl, len(times), want)
		}
		for i := 1; i < len(times); i++ {
			gap := times[i].Sub(times[i-1])
			if gap < s.ttl/6-20*time.Millisecond || gap > s.ttl/3+150*time.Millisecond {
				t.Fatalf("session %d (TTL %s): renewals %s apart, want TTL/6..TTL/3", s.id, s.ttl, gap)
			}
		}
	}
}

// TestKeepAliverHungRequest: a batch request that hangs does not delay the
// loss: each session carried by it is declared lost at its own deadline
// (TTL − margin after its last acknowledged send), and the late
// acknowledgement is ignored.
func TestKeepAliverHungRequest(t *testing.T) {
	f := newFakeCluster()
	release := make(chan struct{})
	f.hang = release
	h := newKAHarness(f)
	start := time.Now()
	short, long := h.open(900*time.Millisecond), h.open(1800*time.Millisecond)
	for _, s := range []*Session{short, long} {
		select {
		case <-s.Done():
		case <-time.After(3 * time.Second):
			t.Fatalf("session %d (TTL %s) not declared lost while its keep-alive hangs", s.id, s.ttl)
		}
		late := time.Since(start) - (s.ttl - SessionMargin(s.ttl))
		if late < 0 || late > 60*time.Millisecond {
			t.Fatalf("session %d (TTL %s) declared lost %s after its deadline", s.id, s.ttl, late)
		}
		if !errors.Is(s.Err(), ErrSessionExpired) {
			t.Fatalf("session %d: %v", s.id, s.Err())
		}
	}
	close(release)
	time.Sleep(50 * time.Millisecond)
	k := h.c.keepAliver()
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.sessions) != 0 || k.byDue.Len() != 0 || k.byDeadline.Len() != 0 {
		t.Fatalf("a late acknowledgement revived a lost session: %d sessions, heaps %d/%d", len(k.sessions), k.byDue.Len(), k.byDeadline.Len())
	}
}

// TestKeepAliverExpired: ids the cluster answers as expired end their
// sessions at once; the others live on.
func TestKeepAliverExpired(t *testing.T) {
	f := newFakeCluster()
	h := newKAHarness(f)
	a, b := h.open(time.Second), h.open(time.Second)
	defer h.closeAll([]*Session{a})
	f.mu.Lock()
	f.expired[b.id] = true
	f.mu.Unlock()
	select {
	case <-b.Done():
	case <-time.After(600 * time.Millisecond):
		t.Fatal("an expired session not ended at its next renewal")
	}
	if !errors.Is(b.Err(), ErrSessionExpired) {
		t.Fatal(b.Err())
	}
	time.Sleep(time.Second)
	alive(t, []*Session{a})
}

// TestKeepAliverRetries: while requests fail, a session is retried every
// min(TTL/9, 1 s) rather than every TTL/3, and survives an outage shorter
// than its TTL less the margin.
func TestKeepAliverRetries(t *testing.T) {
	f := newFakeCluster()
	h := newKAHarness(f)
	f.fail = true
	s := h.open(1800 * time.Millisecond)
	defer h.closeAll([]*Session{s})
	time.Sleep(900 * time.Millisecond) // past TTL/3: failing since 600 ms
	f.mu.Lock()
	f.fail = false
	f.mu.Unlock()
	time.Sleep(250 * time.Millisecond) // TTL/9 = 200 ms: retried by now
	f.mu.Lock()
	n := len(f.renewed[s.id])
	f.mu.Unlock()
	if n == 0 {
		t.Fatal("no renewal within TTL/9 of the cluster coming back")
	}
	time.Sleep(time.Second)
	alive(t, []*Session{s})
}

// TestKeepAliverFallback: against a server below protocol 12, or a cluster
// below level 12 (the batch answered Invalid), sessions are kept alive by
// one keep-alive each; the batch is not tried again for a while.
func TestKeepAliverFallback(t *testing.T) {
	for _, tt := range []struct {
		name string
		set  func(*fakeCluster)
	}{{"old server", func(f *fakeCluster) { f.old = true }}, {"cluster below level 12", func(f *fakeCluster) { f.invalid = true }}} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeCluster()
			tt.set(f)
			h := newKAHarness(f)
			var ss []*Session
			for i := 0; i < 100; i++ {
				ss = append(ss, h.open(900*time.Millisecond))
			}
			defer h.closeAll(ss)
			time.Sleep(1500 * time.Millisecond)
			alive(t, ss)
			k := h.c.keepAliver()
			k.mu.Lock()
			batches := k.batches
			k.mu.Unlock()
			f.mu.Lock()
			defer f.mu.Unlock()
			if batches != 1 || f.singles < 4*len(ss) {
				t.Fatalf("%d batches tried, %d single keep-alives for %d sessions over 5 rounds", batches, f.singles, len(ss))
			}
		})
	}
}

// TestKeepAliverDeniedSession: a batch is refused whole when one of its
// sessions is another user's (one opened before auth was enabled); the
// others must not pay for it: they are renewed one by one, and only that
// session is lost. (Found by a review of the keep-alive batches: the
// batch was retried whole until every session in it was lost.)
func TestKeepAliverDeniedSession(t *testing.T) {
	f := newFakeCluster()
	h := newKAHarness(f)
	var ss []*Session
	for i := 0; i < 20; i++ {
		ss = append(ss, h.open(900*time.Millisecond))
	}
	defer h.closeAll(ss)
	f.mu.Lock()
	f.denied = map[uint64]bool{ss[0].ID(): true}
	f.mu.Unlock()
	time.Sleep(1500 * time.Millisecond)
	select {
	case <-ss[0].Done():
	default:
		t.Error("the denied session is still alive after more than its TTL")
	}
	alive(t, ss[1:])
}

// TestKeepAliverMemory measures what a session costs the client: its
// Session and its place in the keepAliver, with no goroutine or timer of
// its own. (The design before kept a goroutine, a timer and a context per
// session: several KiB each.)
func TestKeepAliverMemory(t *testing.T) {
	f := newFakeCluster()
	h := newKAHarness(f)
	const n = 100000
	ss := make([]*Session, 0, n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	g0 := runtime.NumGoroutine()
	for i := 0; i < n; i++ {
		ss = append(ss, h.open(time.Hour))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (after.HeapAlloc - before.HeapAlloc) / n
	goroutines := runtime.NumGoroutine() - g0
	t.Logf("%d sessions: %d bytes of heap each, %d goroutines in all", n, per, goroutines)
	if per > 1024 || goroutines > 1 {
		t.Fatalf("%d sessions: %d bytes each and %d goroutines; want under 1 KiB and one loop", n, per, goroutines)
	}
	h.closeAll(ss)
}
