package service

import (
	"fmt"
	"math/rand"
	"strings"
	"time"

	"github.com/paxosd/paxosd/internal/linearize"
	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// Users and permissions in the node simulation. In a share of the seeds
// (drawn from a stream of their own: the other seeds run as before) an
// administrator turns auth on early in the run, as docs/SECURITY.md says
// to: it adds root, a role that may write the simulation's keys but not
// read them and a user "wo" with that role, then enables auth. Every
// other client acts as root from the start (the user of its client
// certificate, as the node sees it), so they go on as in any seed. Once
// the enable is answered, the write-only client writes as wo, through
// every crash and partition of the run: puts and deletes of the shared
// keys (the linearizability model checks their answers as answers without
// a previous pair: whether the key existed, no value), compare-and-swaps
// that fail, and transactions on keys of its own, while the administrator
// revokes the role's grant on the shared keys and grants it again. No answer it gets may
// carry a pair: a user allowed to write a key but not to read it must not
// learn its values through its writes' answers (the leak fixed in
// fcb2a35: without the check on puts, deletes and compare-and-swaps, or
// without the one on transactions, 6 of the first 24 seeds fail).
//
// Its writes are answered after the enable's slot is applied (they are
// proposed after the enable was answered), so the answering node always
// knows auth is on by then, whichever node it is.

// simAuthShare: one seed in simAuthShare turns auth on.
const simAuthShare = 3

// simWriteOnlyUser is the user who may write the keys but not read them.
const simWriteOnlyUser = "wo"

// simAuth is a run's administrator of users and its write-only client.
type simAuth struct {
	s     *sim
	c     *simClient // the write-only client (its values, its history)
	admin *simLink   // root's: the setup
	wo    *simLink   // the write-only user's
	rng   *rand.Rand // its choices, from a stream of its own
	// busy: an operation of the write-only client is under way.
	busy bool
	// revoked holds, per node, the incarnation that answered the revoke
	// of the role's grant on the shared keys and when the answer came,
	// until the grant is sent again: that incarnation has applied the
	// revoke, so it must refuse every write of the user that reaches it
	// from then on. arrivals: where and when each request of the
	// write-only link reached a node, by request id.
	revoked  map[paxos.NodeID]simArrival
	arrivals map[uint64]simArrival
}

// simArrival is a node incarnation at a time.
type simArrival struct {
	inc int
	at  time.Duration
	id  paxos.NodeID
}

// simAuthSeed reports whether seed's run turns auth on.
func simAuthSeed(seed int64) bool {
	return rand.New(rand.NewSource(seed^0xa7a0)).Intn(simAuthShare) == 0
}

func newSimAuth(s *sim) *simAuth {
	c := &simClient{s: s, idx: 101, role: roleKV, rate: 1, seen: map[string]string{}}
	cid := uint64(s.seed)<<16 | 0xffd0
	a := &simAuth{s: s, c: c, admin: newSimLink(c, "auth-admin", cid|1), wo: newSimLink(c, "write-only", cid|2),
		rng: rand.New(rand.NewSource(s.seed ^ 0xa7a1))}
	a.wo.as = simWriteOnlyUser
	a.revoked, a.arrivals = map[paxos.NodeID]simArrival{}, map[uint64]simArrival{}
	a.wo.arrived = func(id uint64, sn *simNode, inc int) { a.arrivals[id] = simArrival{inc: inc, at: s.now, id: sn.id} }
	return a
}

// identityOf is who a simulated client's link acts as: nobody in a seed
// without auth (as before), root in one with it, or the link's own user.
func (s *sim) identityOf(l *simLink) identity {
	if s.auth == nil {
		return identity{}
	}
	if l.as != "" {
		return identity{user: l.as}
	}
	return identity{user: statemachine.RootUser}
}

// begin starts the setup a little after the nodes start.
func (a *simAuth) begin() {
	steps := []*wire.Request{
		{Op: wire.OpUserAdd, Name: statemachine.RootUser},
		{Op: wire.OpUserAdd, Name: simWriteOnlyUser},
		{Op: wire.OpRoleAdd, Name: "writer"},
		{Op: wire.OpRoleGrant, Name: "writer", Prefix: "k", Perm: wire.PermWrite},
		{Op: wire.OpRoleGrant, Name: "writer", Prefix: "w", Perm: wire.PermWrite},
		{Op: wire.OpUserGrantRole, Name: simWriteOnlyUser, Role: "writer"},
		{Op: wire.OpAuthEnable},
	}
	a.s.at(time.Duration(500+a.rng.Intn(1500))*time.Millisecond, nil, func() { a.setup(steps) })
}

// setup sends steps in order, each until it is answered: an unknown
// outcome is sent again (deduplicated, or refused as done already).
func (a *simAuth) setup(steps []*wire.Request) {
	s := a.s
	if s.err != nil {
		return
	}
	if len(steps) == 0 {
		s.tracef("auth: enabled; the write-only client starts")
		a.s.at(0, nil, a.next)
		a.s.at(time.Duration(500+a.rng.Intn(2000))*time.Millisecond, nil, func() { a.churn(true) })
		return
	}
	q := *steps[0]
	a.admin.do(&q, opGiveUp, func(r *wire.Response) {
		switch {
		case r == nil, r.Err == wire.ErrInvalid && strings.Contains(r.ErrMsg, "cluster level"):
			// No answer; or the leader has not raised the cluster's
			// level yet (it does so by itself soon after it leads), as
			// an operator would find at first.
			s.at(200*time.Millisecond, nil, func() { a.setup(steps) })
		case r.Err == wire.ErrNone, r.Err == wire.ErrInvalid && strings.Contains(r.ErrMsg, "exists already"):
			// Already: a resend of a step whose answer was lost.
			a.setup(steps[1:])
		default:
			s.failf("auth setup: %s: unexpected %s: %s", q.Op, r.Err, r.ErrMsg)
		}
	})
}

// churn revokes the write-only role's grant on the shared keys, grants it
// again a while later, and so on until the run winds down: the user's
// writes race the changes, at nodes that have applied them or not yet.
func (a *simAuth) churn(revoke bool) {
	s := a.s
	if s.err != nil || s.healed && s.now > s.check.healedAt+simWindDown {
		return
	}
	q := &wire.Request{Op: wire.OpRoleGrant, Name: "writer", Prefix: "k", Perm: wire.PermWrite}
	if revoke {
		q = &wire.Request{Op: wire.OpRoleRevoke, Name: "writer", Prefix: "k"}
	} else {
		clear(a.revoked) // from now on a node may apply the grant
	}
	a.admin.do(q, opGiveUp, func(r *wire.Response) {
		switch {
		case r == nil:
			s.at(200*time.Millisecond, nil, func() { a.churn(revoke) })
		case r.Err == wire.ErrNone, revoke && r.Err == wire.ErrNotFound: // revoked by a resend's first attempt
			if revoke && a.admin.conn != nil {
				c := a.admin.conn // the answer came on it (simConn.deliver)
				a.revoked[c.node.id] = simArrival{inc: c.inc, at: s.now, id: c.node.id}
			}
			s.tracef("auth: the write-only role's grant on k %s", map[bool]string{true: "revoked", false: "granted again"}[revoke])
			s.at(time.Duration(300+a.rng.Intn(2000))*time.Millisecond, nil, func() { a.churn(!revoke) })
		default:
			s.failf("auth: %s: unexpected %s: %s", q.Op, r.Err, r.ErrMsg)
		}
	})
}

// next starts the write-only client's next operation after a pause, until
// the run winds down.
func (a *simAuth) next() {
	s := a.s
	if s.err != nil || a.busy || s.healed && s.now > s.check.healedAt+simWindDown {
		return
	}
	a.busy = true
	done := func() {
		a.busy = false
		s.at(time.Duration(20+a.rng.Intn(60))*time.Millisecond, nil, a.next)
	}
	switch r := a.rng.Intn(100); {
	case r < 40:
		a.write(wire.OpPut, done)
	case r < 60:
		a.write(wire.OpDelete, done)
	case r < 80:
		a.failedCAS(done)
	default:
		a.txn(done)
	}
}

// allowed fails the run if a node let the write-only user's request r
// answers write a shared key after that node had answered the revoke of
// the grant (a role revoked is gone at the user's next request to the
// node that answered the revoke: docs/SECURITY.md).
func (a *simAuth) allowed(what string, r *wire.Response) {
	arr, ok := a.arrivals[r.ID]
	if rv, revoked := a.revoked[arr.id]; ok && revoked && arr.inc == rv.inc && arr.at > rv.at {
		a.s.failf("node %d let the write-only user's %s through at %v, after it had answered the revoke of its grant (answer received at %v)", arr.id, what, arr.at, rv.at)
	}
}

// forget drops the arrival of the request r answers, once checked.
func (a *simAuth) forget(r *wire.Response) {
	if r != nil {
		delete(a.arrivals, r.ID)
	}
}

// noPair fails the run if an answer to the write-only user carries a pair.
func (a *simAuth) noPair(what string, kv wire.KV) {
	if !kvEmpty(kv) {
		a.s.failf("the write-only user's %s was answered with a pair it may not read: %+v", what, kv)
	}
}

// write puts or deletes a shared key as the write-only user, asking for
// the previous pair (as a client that does not set omit_prev does): the
// answer must leave it out, and the model checks found.
func (a *simAuth) write(op wire.Op, done func()) {
	s, c := a.s, a.c
	key := simKeys[a.rng.Intn(len(simKeys))]
	call := s.now
	in := linearize.KVInput{Op: "del", Key: key, PrevChecked: true, OmitPrev: true}
	q := &wire.Request{Op: op, Key: key}
	if op == wire.OpPut {
		in = linearize.KVInput{Op: "put", Key: key, Value: c.value(), PrevChecked: true, OmitPrev: true}
		q.Value = []byte(in.Value)
		s.check.written(key, in.Value)
	}
	a.wo.do(q, opGiveUp, func(r *wire.Response) {
		defer done()
		defer a.forget(r)
		var out linearize.KVOutput
		switch {
		case r == nil:
			out.Unknown = true
		case r.Err == wire.ErrPermissionDenied:
			// The grant was revoked (churn). Refused before it was
			// proposed — but a resend is refused too after its first
			// attempt went through: an outcome the model cannot settle.
			out.Unknown = true
			s.stats.writeOnlyDenied++
		case r.Err != wire.ErrNone && !(op == wire.OpDelete && r.Err == wire.ErrNotFound):
			s.failf("the write-only user's %s %s: unexpected %s: %s", op, key, r.Err, r.ErrMsg)
			return
		default:
			a.allowed(fmt.Sprintf("%s %s", op, key), r)
			a.noPair(fmt.Sprintf("%s %s", op, key), r.KV)
			out = linearize.KVOutput{Found: r.Found}
			a.s.stats.writeOnlyOps++
		}
		s.check.kvOp(c.idx, in, call, s.now, out)
	})
}

// failedCAS sends a compare-and-swap whose expected value no client ever
// writes: it fails, and its answer must not carry the current pair.
func (a *simAuth) failedCAS(done func()) {
	s := a.s
	key := simKeys[a.rng.Intn(len(simKeys))]
	q := &wire.Request{Op: wire.OpCAS, Key: key, Value: []byte("never applied"), HasPrevValue: true, PrevValue: []byte("never written")}
	a.wo.do(q, opGiveUp, func(r *wire.Response) {
		defer done()
		defer a.forget(r)
		switch {
		case r == nil, r.Err == wire.ErrPermissionDenied:
		case r.Err != wire.ErrCASFailed || r.Succeeded:
			s.failf("the write-only user's cas of %s on a value never written: %s (succeeded %v): %s", key, r.Err, r.Succeeded, r.ErrMsg)
		default:
			a.allowed("cas "+key, r)
			a.noPair("failed cas "+key, r.KV)
			a.s.stats.writeOnlyOps++
		}
	})
}

// txn puts and deletes keys only the write-only client writes (w0, w1):
// the results of its transactions must carry no previous pair either.
func (a *simAuth) txn(done func()) {
	s, c := a.s, a.c
	put, del := "w0", "w1"
	if a.rng.Intn(2) == 0 {
		put, del = del, put
	}
	q := &wire.Request{Op: wire.OpTxn, ThenOps: []wire.TxnOp{
		{Type: wire.TxnPut, Key: put, Value: []byte(c.value())},
		{Type: wire.TxnDelete, Key: del},
	}}
	a.wo.do(q, opGiveUp, func(r *wire.Response) {
		defer done()
		defer a.forget(r)
		switch {
		case r == nil:
		case r.Err != wire.ErrNone || !r.Succeeded:
			s.failf("the write-only user's transaction on %s and %s: %s (succeeded %v): %s", put, del, r.Err, r.Succeeded, r.ErrMsg)
		default:
			for i, res := range r.TxnResults {
				a.noPair(fmt.Sprintf("transaction on %s and %s (result %d)", put, del, i), res.KV)
			}
			a.s.stats.writeOnlyOps++
		}
	})
}

// idle reports whether the administrator and its client are done: the
// setup finished (or never will, the run failing) and nothing under way.
func (a *simAuth) idle() bool {
	return !a.busy && !a.admin.busy() && !a.wo.busy()
}

func (a *simAuth) nodeStopped(sn *simNode) {
	a.admin.broken(sn)
	a.wo.broken(sn)
}
