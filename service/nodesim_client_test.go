package service

import (
	"fmt"
	"strings"
	"time"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/internal/linearize"
	"github.com/paxosd/paxosd/wire"
)

// The simulated clients and what they do.

const simElection = "e"

var (
	simKeys  = []string{"k0", "k1", "k2", "k3"}
	simLocks = []string{"l0", "l1"}
)

// Client roles.
const (
	roleKV = iota
	roleLock
	roleElect
	roleWatch
	roleCount
)

// simWindDown is how long after the heal clients go on starting
// operations; then they finish what is under way, release what they hold,
// and stop.
const simWindDown = 2 * time.Second

// simClient is one client program: a role, its clock, its links.
type simClient struct {
	s    *sim
	idx  int
	role int
	rate float64 // its clock runs rate times as fast as real time
	main *simLink
	side *simLink // the sessions' keep-alives (and the spares' opens and closes)
	obs  *simLink // the watch role's observe stream
	// windDown: start nothing new; done: wound down completely.
	windDown, done bool
	busy           bool // the main activity has an operation under way
	n              int
	seen           map[string]string // the last value seen per key
	sess           *simSession
	watch          *simWatch
	observe        *simObserve
	// ka renews every session of the client; spares are the sessions a
	// lock or election client holds beside sess, up to wantSpares
	// (nodesim_keepalive_test.go).
	ka         *simKeepAliver
	spares     []*simSession
	wantSpares int
	// saver saves snapshots, the watch role's (nodesim_save_test.go).
	saver *simSaver
}

func newSimClient(s *sim, idx int) *simClient {
	c := &simClient{s: s, idx: idx, role: idx % roleCount, rate: s.drawRate(), seen: map[string]string{}}
	if s.opts.clientRate != 0 {
		c.rate = s.opts.clientRate
	}
	cid := uint64(s.seed)<<16 | uint64(idx)<<4
	c.main = newSimLink(c, "main", cid|1)
	c.side = newSimLink(c, "side", cid|2)
	c.obs = newSimLink(c, "obs", cid|3)
	c.ka = newSimKeepAliver(c)
	c.saver = newSimSaver(c, cid|4)
	return c
}

// local is the client's own clock reading for real time t.
func (c *simClient) local(t time.Duration) time.Duration { return time.Duration(float64(t) * c.rate) }

// real is the real time at which the client's clock reads l.
func (c *simClient) real(l time.Duration) time.Duration { return time.Duration(float64(l) / c.rate) }

func (c *simClient) begin() {
	c.s.at(time.Duration(c.s.rng.Intn(200))*time.Millisecond, nil, c.next)
	if c.role == roleLock || c.role == roleElect {
		c.wantSpares = c.s.rng.Intn(simSpares + 1)
		c.s.at(time.Duration(c.s.rng.Intn(300))*time.Millisecond, nil, c.openSpares)
	}
	if c.role == roleWatch {
		c.watch = &simWatch{c: c}
		c.observe = &simObserve{c: c}
		c.s.at(time.Duration(c.s.rng.Intn(300))*time.Millisecond, nil, c.watch.open)
		c.s.at(time.Duration(c.s.rng.Intn(300))*time.Millisecond, nil, c.observe.open)
		c.saver.schedule()
	}
}

func (c *simClient) healed() {
	c.s.at(simWindDown, nil, func() {
		c.windDown = true
		c.closeSpares()
		if c.watch != nil {
			c.watch.stop()
			c.observe.stop()
		}
		if c.sess != nil {
			if c.sess.waitID != 0 {
				c.main.cancel(c.sess.waitID) // stop waiting; the client then leaves the line
			}
			c.sess.windDown()
		}
	})
}

// nodeStopped breaks the connections to a node that stopped.
func (c *simClient) nodeStopped(sn *simNode) {
	for _, l := range []*simLink{c.main, c.side, c.obs, c.saver.l} {
		l.broken(sn)
	}
}

// idle reports whether the client has wound down and nothing of it is
// under way.
func (c *simClient) idle() bool {
	return c.windDown && !c.busy && !c.main.busy() && !c.side.busy() && !c.obs.busy() && !c.saver.l.busy() &&
		(c.sess == nil || c.sess.ended) && (c.watch == nil || c.watch.stopped) && c.sparesIdle()
}

func (c *simClient) describe() string {
	return fmt.Sprintf("client %d (role %d): busy %v, calls %d/%d/%d, session %+v, spares idle %v", c.idx, c.role, c.busy,
		len(c.main.calls), len(c.side.calls), len(c.obs.calls), c.sess, c.sparesIdle())
}

// next starts the client's next operation, after a pause to think.
func (c *simClient) next() {
	if c.s.err != nil || c.busy {
		return
	}
	if c.windDown {
		if c.sess != nil && !c.sess.ended {
			c.sess.windDown()
		}
		return
	}
	c.busy = true
	done := func() {
		c.busy = false
		c.s.at(time.Duration(c.s.rng.Intn(40))*time.Millisecond, nil, c.next)
	}
	switch c.role {
	case roleLock, roleElect:
		if c.sess == nil || c.sess.ended {
			c.sess = newSimSession(c)
			c.sess.open(done)
			return
		}
		if c.role == roleLock {
			c.sess.lockOp(done)
		} else {
			c.sess.electOp(done)
		}
	default:
		c.kvOp(done)
	}
}

// value returns a new value, unique in the run, sometimes padded so large
// values page through Promises and catch-up.
func (c *simClient) value() string {
	c.n++
	v := fmt.Sprintf("v%d.%d", c.idx, c.n)
	if c.s.rng.Intn(8) == 0 {
		v += strings.Repeat("x", c.s.rng.Intn(min(c.s.p.valueBytes/2, 3000)))
	}
	return v
}

// kvEmpty reports whether kv is the empty pair an answer without one
// carries: the linearizability model sees only a pair's value, and a pair
// left half-cleared would pass it.
func kvEmpty(kv wire.KV) bool {
	return kv.Key == "" && kv.Value == nil && kv.CreateRevision == 0 && kv.ModRevision == 0 && kv.Version == 0
}

// opGiveUp bounds how long an operation is retried before its outcome is
// left unknown.
const opGiveUp = 5 * time.Second

// kvOp runs one key-value operation and records it for the
// linearizability check.
func (c *simClient) kvOp(done func()) {
	s := c.s
	key := simKeys[s.rng.Intn(len(simKeys))]
	call := s.now
	var in linearize.KVInput
	q := &wire.Request{Key: key}
	switch r := s.rng.Intn(100); {
	case r < 35:
		in, q.Op = linearize.KVInput{Op: "get", Key: key}, wire.OpGet
	case r < 40: // a serializable read: any value the key ever had
		q.Op, q.Serializable = wire.OpGet, true
		c.main.send(q, time.Second, nil, func(r *wire.Response) {
			if r.Err == wire.ErrNone && !s.check.everWritten(key, string(r.KV.Value)) {
				s.failf("a serializable read of %s returned %q, which was never written", key, r.KV.Value)
			}
			done()
		}, done)
		return
	case r < 45:
		q.Op, q.Prefix, q.Key = wire.OpList, "k", ""
		c.main.do(q, opGiveUp, func(*wire.Response) { done() })
		return
	case r < 70:
		in, q.Op = linearize.KVInput{Op: "put", Key: key, Value: c.value(), PrevChecked: true}, wire.OpPut
		q.Value = []byte(in.Value)
		// Every other write asks for no previous pair (omit_prev), from
		// the client's count rather than the seed's generator, so that
		// a seed's schedule stays what it was.
		in.OmitPrev, q.OmitPrev = c.n%2 == 0, c.n%2 == 0
	case r < 88:
		in = linearize.KVInput{Op: "cas", Key: key, Value: c.value(), Expected: c.seen[key]}
		q.Op, q.Value = wire.OpCAS, []byte(in.Value)
		if in.Expected == "" {
			q.HasPrevRevision = true
		} else {
			q.HasPrevValue, q.PrevValue = true, []byte(in.Expected)
		}
	default:
		in, q.Op = linearize.KVInput{Op: "del", Key: key, PrevChecked: true, OmitPrev: c.n%2 == 0}, wire.OpDelete
		q.OmitPrev = in.OmitPrev
	}
	if in.Op == "put" || in.Op == "cas" {
		s.check.written(key, in.Value)
	}
	c.main.do(q, opGiveUp, func(r *wire.Response) {
		defer done()
		var out linearize.KVOutput
		switch {
		case r == nil:
			if in.Op == "get" {
				return // a failed read changed nothing
			}
			out.Unknown = true
		case in.Op == "get":
			if r.Err != wire.ErrNone && r.Err != wire.ErrNotFound {
				s.failf("get %s: unexpected %s: %s", key, r.Err, r.ErrMsg)
				return
			}
			out = linearize.KVOutput{Found: r.Err == wire.ErrNone, Value: string(r.KV.Value)}
			c.seen[key] = out.Value
		case in.Op == "put":
			if r.Err != wire.ErrNone {
				s.failf("put %s: unexpected %s: %s", key, r.Err, r.ErrMsg)
				return
			}
			out = linearize.KVOutput{Found: r.Found, Value: string(r.KV.Value)}
			if in.OmitPrev && !kvEmpty(r.KV) {
				s.failf("put %s with omit_prev: answered with a previous pair %+v", key, r.KV)
			}
			c.seen[key] = in.Value
		case in.Op == "cas":
			if r.Err != wire.ErrNone && r.Err != wire.ErrCASFailed {
				s.failf("cas %s: unexpected %s: %s", key, r.Err, r.ErrMsg)
				return
			}
			out = linearize.KVOutput{OK: r.Succeeded, Value: string(r.KV.Value)}
			if r.KV.ModRevision == 0 {
				out.Value = ""
			}
			c.seen[key] = out.Value
			if r.Succeeded {
				c.seen[key] = in.Value
			}
		default:
			if r.Err != wire.ErrNone && r.Err != wire.ErrNotFound {
				s.failf("delete %s: unexpected %s: %s", key, r.Err, r.ErrMsg)
				return
			}
			out = linearize.KVOutput{Found: r.Found, Value: string(r.KV.Value)}
			if in.OmitPrev && !kvEmpty(r.KV) {
				s.failf("delete %s with omit_prev: answered with the deleted pair %+v", key, r.KV)
			}
			c.seen[key] = ""
		}
		s.stats.ops++
		if r != nil && r.Err == wire.ErrNone && in.Op != "get" {
			s.check.ackedRev = max(s.check.ackedRev, r.Revision) // a save sent from now on holds it
		}
		s.check.kvOp(c.idx, in, call, s.now, out)
	})
}

// simSession is a client's session, kept alive like the Go client keeps
// one (simKeepAliver): renewed every TTL/3 on its client's clock, with the
// client's other sessions, and declared lost once TTL less the client
// library's margin has passed on that clock since the last acknowledged
// renewal was sent.
type simSession struct {
	c  *simClient
	id uint64
	// ttl; lastSent is the client's clock when the last acknowledged
	// keep-alive (or the open) was sent.
	ttl      time.Duration
	lastSent time.Duration
	ended    bool // lost, closed, or never opened
	closing  bool
	// hold is the lock or election the client holds, if any; waiting the
	// blocking call under way (a lock wait or a campaign).
	hold    *simHold
	holding string
	waitID  uint64
	// due: when the next renewal is due (the client's clock); inFlight: a
	// keep-alive carrying it is under way; opening: its open is.
	due      time.Duration
	inFlight bool
	opening  bool
}

func newSimSession(c *simClient) *simSession {
	return &simSession{c: c, ttl: time.Duration(1000+c.s.rng.Intn(3000)) * time.Millisecond}
}

// deadline is the real time at which the client gives the session up.
func (ss *simSession) deadline() time.Duration {
	return ss.c.real(ss.lastSent + ss.ttl - client.SessionMargin(ss.ttl))
}

func (ss *simSession) open(done func()) {
	c, s := ss.c, ss.c.s
	sent := c.local(s.now)
	c.main.do(&wire.Request{Op: wire.OpSessionOpen, TTLMs: uint64(ss.ttl / time.Millisecond)}, opGiveUp, func(r *wire.Response) {
		defer done()
		if r != nil && r.Err == wire.ErrQuotaExceeded {
			s.stats.sessionLimit++ // the client's limit (session_limit.go)
		}
		if r == nil || r.Err != wire.ErrNone {
			ss.ended = true
			return
		}
		ss.id, ss.lastSent = r.Session.ID, sent
		if s.now >= ss.deadline() {
			ss.ended = true
			return
		}
		c.ka.add(ss)
	})
}

// lost ends the session by the client's own reckoning: what it held, it
// holds no more.
func (ss *simSession) lost(why string) {
	ss.c.ka.drop(ss)
	if ss.ended {
		return
	}
	ss.c.s.tracef("client %d: session %d lost: %s", ss.c.idx, ss.id, why)
	ss.ended = true
	ss.endHold()
	if ss.waitID != 0 {
		ss.c.main.cancel(ss.waitID)
	}
}

// startHold begins holding name with token (the grant just arrived).
func (ss *simSession) startHold(name string, token uint64) {
	ss.hold = &simHold{client: ss.c.idx, session: ss.id, token: token, start: ss.c.s.now, end: ss.c.s.now}
	ss.holding = name
}

// endHold ends the hold now (a release sent, or the session lost).
func (ss *simSession) endHold() {
	if ss.hold == nil {
		return
	}
	h := *ss.hold
	h.end = min(ss.c.s.now, ss.deadline())
	ss.c.s.check.hold(ss.holding, h)
	ss.hold, ss.holding = nil, ""
}

// windDown releases what the session holds and closes it.
func (ss *simSession) windDown() {
	if ss.ended || ss.closing || ss.c.busy {
		return
	}
	ss.closing = true
	ss.c.busy = true
	ss.endHold()
	ss.c.main.do(&wire.Request{Op: wire.OpSessionClose, SessionID: ss.id}, opGiveUp, func(*wire.Response) {
		ss.ended = true
		ss.c.busy = false
	})
}

// lockOp takes a lock (waiting or not, sometimes cancelling the wait),
// holds it a while — writing through it with its token, checking it —
// and releases it; or closes the session.
func (ss *simSession) lockOp(done func()) {
	c, s := ss.c, ss.c.s
	if s.rng.Intn(12) == 0 {
		ss.closing = true
		c.main.do(&wire.Request{Op: wire.OpSessionClose, SessionID: ss.id}, opGiveUp, func(*wire.Response) {
			ss.ended = true
			done()
		})
		return
	}
	if c.version() >= wire.VersionEphemeral && s.rng.Intn(6) == 0 {
		// Alongside the lock op, not instead: the lock ops keep their
		// density (nodesim_ephemeral_test.go).
		ss.putEphemeral()
	}
	name := simLocks[s.rng.Intn(len(simLocks))]
	q := &wire.Request{Op: wire.OpLockAcquire, SessionID: ss.id, Name: name, Wait: s.rng.Intn(3) > 0}
	if s.rng.Intn(4) == 0 {
		q.LockDelayMs = uint64(s.rng.Intn(500))
	}
	ss.acquire(q, name, wire.OpLockRelease, done, func(token uint64) {
		ss.holdFor(name, token, done)
	})
}

// electOp campaigns (a blocking call, sometimes cancelled), leads a while
// — proclaiming — and resigns.
func (ss *simSession) electOp(done func()) {
	s := ss.c.s
	q := &wire.Request{Op: wire.OpCampaign, SessionID: ss.id, Name: simElection, Value: []byte(ss.c.value())}
	ss.acquire(q, simElection, wire.OpResign, done, func(term uint64) {
		ss.holdFor(simElection, term, done)
	})
	_ = s
}

// acquire sends a lock acquire or a campaign. A blocking one may be
// cancelled a while later; a wait that ends without the grant leaves the
// line (leave), as the client library does.
func (ss *simSession) acquire(q *wire.Request, name string, leave wire.Op, done func(), granted func(token uint64)) {
	c, s := ss.c, ss.c.s
	c.main.seq++
	seq := c.main.seq
	c.main.open[seq] = true
	q.ClientID, q.Seq, q.AckedBelow = c.main.cid, seq, c.main.ackedBelow()
	blocking := q.Wait || q.Op == wire.OpCampaign
	giveUp := func() {
		delete(c.main.open, seq)
		ss.waitID = 0
		if !blocking || ss.ended {
			done()
			return
		}
		c.main.do(&wire.Request{Op: leave, SessionID: ss.id, Name: name}, opGiveUp, func(*wire.Response) { done() })
	}
	timeout := time.Second
	if blocking {
		timeout = 0
	}
	c.main.send(q, timeout, nil, func(r *wire.Response) {
		delete(c.main.open, seq)
		ss.waitID = 0
		if r.Err == wire.ErrNone && !ss.ended && s.now < ss.deadline() {
			ss.startHold(name, r.Token)
			granted(r.Token)
			return
		}
		giveUp()
	}, giveUp)
	if blocking {
		ss.waitID = q.ID
		id := q.ID
		if s.rng.Intn(3) == 0 {
			s.at(time.Duration(50+s.rng.Intn(1500))*time.Millisecond, nil, func() {
				if ss.waitID == id {
					c.main.cancel(id)
				}
			})
		}
	}
}

// holdFor holds name for a while, then releases it.
func (ss *simSession) holdFor(name string, token uint64, done func()) {
	c, s := ss.c, ss.c.s
	d := time.Duration(s.rng.Int63n(int64(ss.ttl)))
	if name != simElection && s.rng.Intn(2) == 0 {
		// A write fenced by the token, while held.
		c.main.do(&wire.Request{Op: wire.OpPut, Key: "f", Value: []byte(c.value()), FenceName: name, FenceToken: token}, opGiveUp, func(*wire.Response) {})
	}
	if name != simElection && c.version() >= wire.VersionTxn {
		// Transfers between accounts under the token (nodesim_txn_test.go).
		for n := 1 + s.rng.Intn(3); n > 0; n-- {
			c.transfer(name, token)
		}
	}
	if name == simElection && s.rng.Intn(2) == 0 {
		c.main.do(&wire.Request{Op: wire.OpProclaim, SessionID: ss.id, Name: name, Value: []byte(c.value())}, opGiveUp, func(*wire.Response) {})
	}
	s.at(d, nil, func() {
		if ss.hold == nil || ss.ended {
			done()
			return
		}
		ss.endHold()
		op := wire.OpLockRelease
		if name == simElection {
			op = wire.OpResign
		}
		c.main.do(&wire.Request{Op: op, SessionID: ss.id, Name: name}, opGiveUp, func(*wire.Response) { done() })
	})
}
