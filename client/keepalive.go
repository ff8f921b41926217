package client

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/paxosd/paxosd/wire"
)

// keepAliver keeps every live session of one Client alive from one
// goroutine: no goroutine or timer per session, and one request (one log
// command) per batch of sessions rather than per session, so that a
// process holding 100,000 sessions costs the cluster a few requests a
// second and itself a few hundred bytes per session.
//
// Schedule. A session is due TTL/3 after the send time of its last
// acknowledged renewal. The loop wakes at the earliest due time and sends
// one wire.OpSessionKeepAliveBatch holding every session due within TTL/6
// (its own TTL) from now: renewing a little early puts sessions that were
// opened at different moments into the same batch from then on. Batches
// over wire.KeepAliveBatchMax ids are split, and the parts sent
// concurrently.
//
// Loss. Each session's loss deadline (the send time of its last
// acknowledged renewal + TTL − SessionMargin) is kept in a heap the loop
// wakes for, whether or not a request carrying the session is in flight:
// a slow or hung request never delays declaring a session lost. An
// acknowledgement that arrives for a session already lost (or closed) is
// ignored; ids the cluster answers as expired end their sessions at once.
// A failed request leaves its sessions due again soon (min(TTL/9, 1 s)
// later, and at most halfway to their deadlines), not after a whole TTL/3.
//
// Older servers. A connection that negotiated a version below
// wire.VersionKeepAliveBatch (the client refuses to send the batch there:
// ErrUnsupported), or a server that answers the batch ErrInvalid (a
// cluster below level 12), makes the loop fall back to one
// wire.OpSessionKeepAlive per session for batchRetry, after which it tries
// a batch again.
type keepAliver struct {
	// send runs a request (Client.do); now reads the clock (time.Now).
	// Tests replace both.
	send func(ctx context.Context, q *wire.Request) (*wire.Response, error)
	now  func() time.Time

	wake chan struct{} // a poke: the schedule changed

	mu sync.Mutex
	// sessions holds every live session this keepAliver renews. Each is in
	// byDeadline; each not in flight is in byDue and byEarly too.
	sessions   map[uint64]*Session
	byDue      sessionHeap // key: due
	byEarly    sessionHeap // key: due − TTL/6, when it may join a batch
	byDeadline sessionHeap // key: loss deadline
	running    bool        // the loop goroutine runs
	// singleUntil: until then, one keep-alive per session (the server
	// refused a batch).
	singleUntil time.Time
	// stats, for tests: requests sent of each kind.
	batches, singles int
}

// kaState is a session's part of the keepAliver's state, guarded by its
// mu.
type kaState struct {
	lastSent time.Time // send time of the last acknowledged renewal (or the open)
	due      time.Time // when the next renewal is due (retry after a failure)
	inFlight bool      // a request carrying it is under way
	removed  bool      // lost or closed: no longer renewed
	// Positions in the three heaps, -1 when out.
	dueIdx, earlyIdx, deadlineIdx int
}

// Scheduling constants.
const (
	// batchRetry: after a server refused a batch, keep-alives go one per
	// session this long before a batch is tried again.
	batchRetry = 10 * time.Second
	// singleGroup: in the fallback, one goroutine sends this many single
	// keep-alives one after another, so the goroutines in flight are a
	// fraction of the sessions.
	singleGroup = 32
	// retryMax bounds the pause before a failed renewal is tried again.
	retryMax = time.Second
)

func newKeepAliver(send func(ctx context.Context, q *wire.Request) (*wire.Response, error)) *keepAliver {
	k := &keepAliver{send: send, now: time.Now, wake: make(chan struct{}, 1), sessions: map[uint64]*Session{}}
	k.byDue.key = func(s *Session) time.Time { return s.ka.due }
	k.byDue.idx = func(s *Session) *int { return &s.ka.dueIdx }
	k.byEarly.key = func(s *Session) time.Time { return s.ka.due.Add(-s.ttl / 6) }
	k.byEarly.idx = func(s *Session) *int { return &s.ka.earlyIdx }
	k.byDeadline.key = (*Session).lossDeadline
	k.byDeadline.idx = func(s *Session) *int { return &s.ka.deadlineIdx }
	return k
}

// keepAliver returns the client's keepAliver, made on first use.
func (c *Client) keepAliver() *keepAliver {
	c.kaOnce.Do(func() { c.ka = newKeepAliver(c.do) })
	return c.ka
}

// lossDeadline is when the client declares s lost. Needs the keepAliver's
// mu.
func (s *Session) lossDeadline() time.Time { return s.ka.lastSent.Add(s.ttl - s.margin()) }

// add starts renewing s, whose open was sent at sent.
func (k *keepAliver) add(s *Session, sent time.Time) {
	k.mu.Lock()
	s.ka = kaState{lastSent: sent, due: sent.Add(s.ttl / 3), dueIdx: -1, earlyIdx: -1, deadlineIdx: -1}
	k.sessions[s.id] = s
	heap.Push(&k.byDeadline, s)
	k.queue(s)
	if !k.running {
		k.running = true
		go k.run()
	}
	k.mu.Unlock()
	k.poke()
}

// remove stops renewing s (lost or closed). Needs mu.
func (k *keepAliver) remove(s *Session) {
	if s.ka.removed || k.sessions[s.id] != s {
		return
	}
	s.ka.removed = true
	delete(k.sessions, s.id)
	for _, h := range []*sessionHeap{&k.byDue, &k.byEarly, &k.byDeadline} {
		if i := *h.idx(s); i >= 0 {
			heap.Remove(h, i)
		}
	}
}

// forget stops renewing s; its acknowledgements in flight are ignored.
func (k *keepAliver) forget(s *Session) {
	k.mu.Lock()
	k.remove(s)
	k.mu.Unlock()
}

// queue puts s, not in flight, in the due heaps. Needs mu.
func (k *keepAliver) queue(s *Session) {
	s.ka.inFlight = false
	heap.Push(&k.byDue, s)
	heap.Push(&k.byEarly, s)
}

func (k *keepAliver) poke() {
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// run is the loop: it declares sessions lost at their deadlines and sends
// the due ones, until no session is left.
func (k *keepAliver) run() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		k.mu.Lock()
		if len(k.sessions) == 0 {
			k.running = false
			k.mu.Unlock()
			return
		}
		now := k.now()
		var lost []*Session
		for k.byDeadline.Len() > 0 && !k.byDeadline.top().lossDeadline().After(now) {
			s := k.byDeadline.top()
			k.remove(s)
			lost = append(lost, s)
		}
		var due []*Session
		if k.byDue.Len() > 0 && !k.byDue.top().ka.due.After(now) {
			for k.byEarly.Len() > 0 && !k.byEarly.key(k.byEarly.top()).After(now) {
				s := heap.Pop(&k.byEarly).(*Session)
				heap.Remove(&k.byDue, s.ka.dueIdx)
				s.ka.inFlight = true
				due = append(due, s)
			}
		}
		single := now.Before(k.singleUntil)
		next := now.Add(time.Hour)
		if k.byDue.Len() > 0 {
			next = k.byDue.top().ka.due
		}
		if k.byDeadline.Len() > 0 && k.byDeadline.top().lossDeadline().Before(next) {
			next = k.byDeadline.top().lossDeadline()
		}
		k.mu.Unlock()

		for _, s := range lost {
			s.end(fmt.Errorf("%w: no keep-alive acknowledged for %s", ErrSessionExpired, s.ttl-s.margin()))
		}
		if len(due) > 0 {
			k.dispatch(due, single)
		}
		timer.Reset(max(next.Sub(k.now()), 0))
		select {
		case <-timer.C:
		case <-k.wake:
		}
	}
}

// dispatch sends the renewals of due: batches of at most
// wire.KeepAliveBatchMax ids, or groups of single keep-alives, each part
// on a goroutine of its own.
func (k *keepAliver) dispatch(due []*Session, single bool) {
	size := wire.KeepAliveBatchMax
	if single {
		size = singleGroup
	}
	for len(due) > 0 {
		part := due[:min(len(due), size)]
		due = due[len(part):]
		if single {
			go k.renewSingly(part)
		} else {
			go k.renewBatch(part)
		}
	}
}

// requestDeadline bounds a request renewing ss: halfway from now to
// their earliest loss deadline. A node that holds the request rather than
// answering (a leader cut off from the others keeps its calls waiting
// until it has known no leader for a while, over a second) then leaves
// the other half for a retry, which goes to another member (Client.do
// drops a connection whose attempt failed); a deadline at the loss
// deadline itself let one silent node cost a short-TTL session its life
// (chaos finding F2, TestKeepAliverRetriesASilentNode). The price: a
// leader that is alive but needs longer than half the time left to commit
// (over half a second with a 2 s TTL) no longer renews in time; with
// TTLs of several seconds the first attempt gets longer than the client's
// attempt timeout anyway.
func (k *keepAliver) requestDeadline(ss []*Session) time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	dl := ss[0].lossDeadline()
	for _, s := range ss[1:] {
		if d := s.lossDeadline(); d.Before(dl) {
			dl = d
		}
	}
	now := k.now()
	return now.Add(max(dl.Sub(now)/2, 0))
}

// renewBatch renews ss with one batch request.
func (k *keepAliver) renewBatch(ss []*Session) {
	ids := make([]uint64, len(ss))
	for i, s := range ss {
		ids[i] = s.id
	}
	ctx, cancel := context.WithDeadline(context.Background(), k.requestDeadline(ss))
	sent := k.now()
	resp, err := k.send(ctx, &wire.Request{Op: wire.OpSessionKeepAliveBatch, SessionIDs: ids})
	cancel()
	k.mu.Lock()
	k.batches++
	k.mu.Unlock()
	switch {
	case err == nil && resp.Err == wire.ErrNone:
		k.acked(ss, sent, resp.ExpiredSessions)
	case errors.Is(err, ErrUnsupported) || err == nil && resp.Err == wire.ErrInvalid:
		// An older server (or cluster): one keep-alive per session for a
		// while, starting with these, now.
		k.mu.Lock()
		k.singleUntil = k.now().Add(batchRetry)
		k.mu.Unlock()
		k.dispatch(ss, true)
		return
	case err == nil && resp.Err == wire.ErrPermissionDenied:
		// One session of the batch is not this user's (opened before
		// auth was enabled, say): the node refuses the whole batch. Each
		// on its own, the others renew and only that one fails.
		k.dispatch(ss, true)
		return
	default:
		k.failed(ss)
	}
	k.poke()
}

// renewSingly renews each of ss with a keep-alive of its own, one after
// another.
func (k *keepAliver) renewSingly(ss []*Session) {
	for _, s := range ss {
		ctx, cancel := context.WithDeadline(context.Background(), k.requestDeadline([]*Session{s}))
		sent := k.now()
		resp, err := k.send(ctx, &wire.Request{Op: wire.OpSessionKeepAlive, SessionID: s.id})
		cancel()
		k.mu.Lock()
		k.singles++
		k.mu.Unlock()
		switch {
		case err == nil && resp.Err == wire.ErrNone:
			k.acked([]*Session{s}, sent, nil)
		case err == nil && resp.Err == wire.ErrSessionExpired:
			k.acked([]*Session{s}, sent, []uint64{s.id})
		default:
			k.failed([]*Session{s})
		}
		k.poke()
	}
}

// acked records the renewal of ss sent at sent, but for the ids in
// expired, whose sessions end.
func (k *keepAliver) acked(ss []*Session, sent time.Time, expired []uint64) {
	var gone map[uint64]bool
	if len(expired) > 0 {
		gone = make(map[uint64]bool, len(expired))
		for _, id := range expired {
			gone[id] = true
		}
	}
	var ended []*Session
	k.mu.Lock()
	for _, s := range ss {
		s.ka.inFlight = false
		switch {
		case s.ka.removed:
			// Declared lost (or closed) meanwhile: a lost session stays
			// lost, whatever the cluster says now.
		case gone[s.id]:
			k.remove(s)
			ended = append(ended, s)
		default:
			if sent.After(s.ka.lastSent) {
				s.ka.lastSent = sent
				heap.Fix(&k.byDeadline, s.ka.deadlineIdx)
			}
			s.ka.due = s.ka.lastSent.Add(s.ttl / 3)
			k.queue(s)
		}
	}
	k.mu.Unlock()
	for _, s := range ended {
		s.end(fmt.Errorf("%w: the cluster expired session %d", ErrSessionExpired, s.id))
	}
}

// failed makes ss due again soon: min(TTL/9, retryMax) from now, and at
// most halfway to the loss deadline.
func (k *keepAliver) failed(ss []*Session) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	for _, s := range ss {
		s.ka.inFlight = false
		if s.ka.removed {
			continue
		}
		wait := min(s.ttl/9, retryMax, max(s.lossDeadline().Sub(now)/2, 0))
		s.ka.due = now.Add(wait)
		k.queue(s)
	}
}

// sessionHeap is a min-heap of sessions on key, each knowing its
// position (idx) so that it can be removed or fixed.
type sessionHeap struct {
	s   []*Session
	key func(*Session) time.Time
	idx func(*Session) *int
}

func (h *sessionHeap) Len() int           { return len(h.s) }
func (h *sessionHeap) Less(i, j int) bool { return h.key(h.s[i]).Before(h.key(h.s[j])) }
func (h *sessionHeap) Swap(i, j int) {
	h.s[i], h.s[j] = h.s[j], h.s[i]
	*h.idx(h.s[i]), *h.idx(h.s[j]) = i, j
}
func (h *sessionHeap) Push(x any) {
	s := x.(*Session)
	*h.idx(s) = len(h.s)
	h.s = append(h.s, s)
}
func (h *sessionHeap) Pop() any {
	s := h.s[len(h.s)-1]
	h.s[len(h.s)-1] = nil
	h.s = h.s[:len(h.s)-1]
	*h.idx(s) = -1
	return s
}
func (h *sessionHeap) top() *Session { return h.s[0] }
