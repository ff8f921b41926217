package service

import (
	"slices"
	"time"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/wire"
)

// The simulated clients' keep-alives, modelled on the Go client's
// keepAliver (client/keepalive.go) on the client's own clock: one
// scheduler per client renews all its sessions — the lock or election
// session, and spare sessions of other TTLs that only need to stay alive —
// with one OpSessionKeepAliveBatch for every session due within TTL/6 of
// its due time (TTL/3 after the send time of its last acknowledged
// renewal), on the client's side link. Each session is declared lost at
// its deadline whether or not a batch carrying it is in flight; ids the
// cluster answers as expired end their sessions; a failed batch is
// retried after min(TTL/9, 1 s). A client of a protocol below 12, or one
// whose batch a cluster below level 12 refused, sends one OpSessionKeepAlive
// per session instead (for simBatchRetry after a refusal).
//
// simChecker.checkOwned checks guarantee (a) of docs/SESSIONS.md directly:
// the cluster never ends a session its client has neither closed nor
// given up on by its own reckoning.

// simBatchRetry is how long a client sends single keep-alives after a
// batch was refused.
const simBatchRetry = 2 * time.Second

// simSpares bounds the spare sessions a lock or election client holds.
const simSpares = 3

// simKeepAliver is one client's keep-alive scheduler.
type simKeepAliver struct {
	c           *simClient
	sessions    []*simSession // live, in the order added
	singleUntil time.Duration // real time
	tickAt      time.Duration // the pending tick's time, -1 when none
	tickGen     uint64
}

func newSimKeepAliver(c *simClient) *simKeepAliver { return &simKeepAliver{c: c, tickAt: -1} }

// add starts renewing ss, whose open was acknowledged.
func (k *simKeepAliver) add(ss *simSession) {
	ss.due = ss.lastSent + ss.ttl/3
	k.sessions = append(k.sessions, ss)
	k.c.s.check.owned[ss.id] = ss
	k.schedule()
}

// drop stops renewing ss.
func (k *simKeepAliver) drop(ss *simSession) {
	k.sessions = slices.DeleteFunc(k.sessions, func(x *simSession) bool { return x == ss })
}

// schedule makes sure a tick runs at the next due time or deadline.
func (k *simKeepAliver) schedule() {
	s := k.c.s
	next := time.Duration(-1)
	for _, ss := range k.sessions {
		at := ss.deadline()
		if !ss.inFlight && !ss.closing {
			at = min(at, k.c.real(ss.due))
		}
		if next < 0 || at < next {
			next = at
		}
	}
	if next < 0 || (k.tickAt >= 0 && k.tickAt <= next) {
		return
	}
	k.tickGen++
	gen := k.tickGen
	k.tickAt = max(next, s.now)
	s.at(k.tickAt-s.now, nil, func() {
		if gen != k.tickGen {
			return // superseded by an earlier tick
		}
		k.tickAt = -1
		k.tick()
	})
}

// tick declares lost the sessions past their deadline and sends the due
// ones.
func (k *simKeepAliver) tick() {
	c, s := k.c, k.c.s
	if s.err != nil {
		return
	}
	for _, ss := range slices.Clone(k.sessions) {
		if ss.ended || ss.deadline() <= s.now {
			ss.lost("deadline passed")
		}
	}
	local := c.local(s.now)
	var due []*simSession
	for _, ss := range k.sessions {
		// Compared in real time, as schedule does: the clock conversions
		// round, and a tick that finds nothing due would schedule itself
		// at the same moment for ever.
		if !ss.inFlight && !ss.closing && c.real(ss.due) <= s.now {
			due = append(due, ss)
		}
	}
	if len(due) > 0 {
		due = due[:0]
		for _, ss := range k.sessions {
			if !ss.inFlight && !ss.closing && ss.due-ss.ttl/6 <= local {
				ss.inFlight = true
				due = append(due, ss)
			}
		}
		if c.version() >= wire.VersionKeepAliveBatch && s.now >= k.singleUntil {
			k.batch(due)
		} else {
			for _, ss := range due {
				k.single(ss)
			}
		}
	}
	k.schedule()
}

// giveUp is how long a request for ss may be retried: until the first of
// their deadlines.
func giveUpAt(s *sim, ss []*simSession) time.Duration {
	dl := ss[0].deadline()
	for _, x := range ss[1:] {
		dl = min(dl, x.deadline())
	}
	return max(dl-s.now, time.Millisecond)
}

func (k *simKeepAliver) batch(ss []*simSession) {
	c, s := k.c, k.c.s
	ids := make([]uint64, len(ss))
	for i, x := range ss {
		ids[i] = x.id
	}
	sent := c.local(s.now)
	s.stats.kaBatches++
	if len(ids) > 1 {
		s.stats.kaBatchSeveral++
	}
	c.side.do(&wire.Request{Op: wire.OpSessionKeepAliveBatch, SessionIDs: ids}, giveUpAt(s, ss), func(r *wire.Response) {
		switch {
		case r != nil && r.Err == wire.ErrNone:
			k.acked(ss, sent, r.ExpiredSessions)
		case r != nil && r.Err == wire.ErrInvalid:
			// A cluster below level 12: single keep-alives for a while,
			// these at once.
			s.stats.kaRefused++
			k.singleUntil = s.now + simBatchRetry
			for _, x := range ss {
				if !x.ended {
					k.single(x)
				} else {
					x.inFlight = false
				}
			}
		default:
			k.failed(ss)
		}
		k.schedule()
	})
}

func (k *simKeepAliver) single(ss *simSession) {
	c, s := k.c, k.c.s
	sent := c.local(s.now)
	s.stats.kaSingles++
	c.side.do(&wire.Request{Op: wire.OpSessionKeepAlive, SessionID: ss.id}, giveUpAt(s, []*simSession{ss}), func(r *wire.Response) {
		switch {
		case r != nil && r.Err == wire.ErrNone:
			k.acked([]*simSession{ss}, sent, nil)
		case r != nil && r.Err == wire.ErrSessionExpired:
			k.acked([]*simSession{ss}, sent, []uint64{ss.id})
		default:
			k.failed([]*simSession{ss})
		}
		k.schedule()
	})
}

// acked records a renewal of ss sent at sent (the client's clock), but
// for the expired ids.
func (k *simKeepAliver) acked(ss []*simSession, sent time.Duration, expired []uint64) {
	for _, x := range ss {
		x.inFlight = false
		switch {
		case x.ended:
			// Lost by its deadline meanwhile: it stays lost.
		case slices.Contains(expired, x.id):
			x.lost("the cluster expired it")
		default:
			x.lastSent = max(x.lastSent, sent)
			x.due = x.lastSent + x.ttl/3
		}
	}
}

// failed makes ss due again after min(TTL/9, 1 s), at most halfway to the
// deadline.
func (k *simKeepAliver) failed(ss []*simSession) {
	c, s := k.c, k.c.s
	local := c.local(s.now)
	for _, x := range ss {
		x.inFlight = false
		left := c.local(x.deadline()) - local
		x.due = local + min(x.ttl/9, time.Second, max(left/2, 0))
	}
}

// openSpares keeps the client's spare sessions open: a lock or election
// client holds up to simSpares sessions beside its main one, of TTLs of
// their own, that only need to stay alive.
func (c *simClient) openSpares() {
	if c.windDown || c.s.err != nil {
		return
	}
	c.spares = slices.DeleteFunc(c.spares, func(ss *simSession) bool { return ss.ended && !ss.opening })
	if len(c.spares) >= c.wantSpares {
		return
	}
	ss := newSimSession(c)
	ss.opening = true
	c.spares = append(c.spares, ss)
	ss.open(func() {
		ss.opening = false
		if c.windDown {
			c.closeSpares() // opened after the wind-down closed the others
			return
		}
		c.s.at(time.Duration(50+c.s.rng.Intn(500))*time.Millisecond, nil, c.openSpares)
	})
}

// closeSpares closes the spare sessions (the client winds down).
func (c *simClient) closeSpares() {
	for _, ss := range c.spares {
		if ss.ended || ss.closing || ss.opening {
			continue
		}
		ss.closing = true
		c.side.do(&wire.Request{Op: wire.OpSessionClose, SessionID: ss.id}, opGiveUp, func(*wire.Response) {
			ss.lost("closed")
		})
	}
}

// sparesIdle reports whether no spare session is open or opening.
func (c *simClient) sparesIdle() bool {
	for _, ss := range c.spares {
		if !ss.ended || ss.opening {
			return false
		}
	}
	return true
}

// checkOwned checks guarantee (a): a session that the state after slot no
// longer holds must be one its client closed, is closing, or has given
// up on by its own reckoning — never one it still takes for alive.
func (c *simChecker) checkOwned(slot paxos.Slot, alive map[uint64]bool) {
	var gone []uint64
	for id := range c.owned {
		if !alive[id] {
			gone = append(gone, id)
		}
	}
	slices.Sort(gone)
	for _, id := range gone {
		ss := c.owned[id]
		delete(c.owned, id)
		if !ss.ended && !ss.closing && c.s.now < ss.deadline() {
			c.s.failf("slot %d: the cluster ended session %d (TTL %s) of client %d, which holds it until %s by its own reckoning",
				slot, id, ss.ttl, ss.c.idx, ss.deadline())
		}
	}
}
