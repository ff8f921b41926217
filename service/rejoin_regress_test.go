package service

import (
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/proposer"
	"github.com/paxosd/paxosd/wal"
	"github.com/paxosd/paxosd/wire"
)

// A member rebuilding after a lost data directory must not help a deposed
// leader to a lease (found by an adversarial review). Five nodes: leader L
// loses the three others, who elect N on a quorum that includes R; R then
// loses its disk and comes back with --rejoin, reaching L and Y only, so
// its probe cannot finish. R has forgotten its promise to N: were it to
// acknowledge L's heartbeats, L would count R and Y toward a lease at its
// old ballot while N commits x=new through N, X and Y, and L would answer
// a linearizable get with x=old. A rebuilding node acknowledges no leader
// until its raised promise is durable. The control keeps R's disk: R then
// Nacks L, which gets no lease either way.
func TestRejoiningNodeLendsNoLease(t *testing.T) {
	if msg, ok := rjStaleLeaseScenario(t, 300, 6, true); ok {
		t.Error(msg)
	}
	if msg, ok := rjStaleLeaseScenario(t, 300, 6, false); ok {
		t.Errorf("control (no lost disk): %s", msg)
	}
}

// rjStaleLeaseScenario plays the scenario on seed with the cut offTicks
// ticks late; it reports a stale read, or false if L never got a lease (or
// the scenario did not set up).
func rjStaleLeaseScenario(t *testing.T, seed int64, offTicks int, loseDisk bool) (string, bool) {
	s := newScripted(seed, func(p *simParams) {
		rgParams(p)
		p.nodes = 5
		p.window = 4
	})
	defer s.shutdown()
	if s.err != nil {
		return "", false
	}
	ok := true
	until := func(d time.Duration, cond func() bool) bool {
		end := s.now + d
		for !cond() {
			if s.now >= end {
				return false
			}
			scRun(s, time.Millisecond)
		}
		return true
	}
	leaderOf := func() *simNode {
		for _, sn := range s.nodes {
			if sn.up() && sn.n.r.Status().Role == proposer.Leader {
				return sn
			}
		}
		return nil
	}
	if !until(5*time.Second, func() bool { return leaderOf() != nil }) {
		return "", false
	}
	scRun(s, 200*time.Millisecond)
	l := leaderOf()
	if l == nil {
		return "", false
	}
	scPut(s, l, "x", "old")
	scRun(s, 50*time.Millisecond)
	var others []*simNode
	for _, sn := range s.nodes {
		if sn != l {
			others = append(others, sn)
		}
	}
	y := others[3]
	trio := others[:3]
	scRun(s, time.Duration(offTicks)*s.p.tick)
	b1 := l.n.r.Status().Ballot
	for _, o := range trio {
		s.net.cut[[2]paxos.NodeID{l.id, o.id}] = true
		s.net.cut[[2]paxos.NodeID{o.id, l.id}] = true
	}
	var nl *simNode
	ok = until(2*time.Second, func() bool {
		for _, o := range trio {
			if st := o.n.r.Status(); st.Role == proposer.Leader && b1.Less(st.Ballot) {
				nl = o
				return true
			}
		}
		return false
	})
	if !ok || l.n.r.Status().Role != proposer.Leader {
		return "", false
	}
	var r, x *simNode
	for _, o := range trio {
		if o != nl {
			if r == nil {
				r = o
			} else {
				x = o
			}
		}
	}
	if r.n.r.Status().Promised != nl.n.r.Status().Ballot {
		return "", false
	}
	// R loses its disk; it comes back reaching L and Y only.
	s.stop(r)
	s.err = nil
	if loseDisk {
		r.fs = vfs.NewStrictMem()
		r.join, r.wiped = JoinRejoin, true
		s.check.lostDisk(r)
	}
	delete(s.net.cut, [2]paxos.NodeID{l.id, r.id})
	delete(s.net.cut, [2]paxos.NodeID{r.id, l.id})
	for _, o := range []*simNode{nl, x} {
		s.net.cut[[2]paxos.NodeID{r.id, o.id}] = true
		s.net.cut[[2]paxos.NodeID{o.id, r.id}] = true
	}
	s.restart(r)
	if !r.up() {
		return "", false
	}
	restartTick := l.n.r.Status().Ticks
	ok = until(time.Second, func() bool {
		st := l.n.r.Status()
		return st.Role == proposer.Leader && st.LeaseTick > restartTick+1
	})
	if !ok {
		return "", false
	}
	// Y's messages to L are lost from now on; N writes through N, X, Y.
	s.net.cut[[2]paxos.NodeID{y.id, l.id}] = true
	scPut(s, nl, "x", "new")
	ok = until(100*time.Millisecond, func() bool {
		kv, _ := nl.n.sm.Get("x")
		return string(kv.Value) == "new"
	})
	if !ok || l.n.r.Status().Role != proposer.Leader {
		return "", false
	}
	now := l.n.clock.Now()
	leaseEnd := l.n.leaseUntil()
	if leaseEnd.IsZero() || !now.Before(leaseEnd) {
		return "", false
	}
	// The linearizable get as a client sends it, through the loop's
	// handler (lease read, no log).
	var resp *wire.Response
	q := &wire.Request{Op: wire.OpGet, Key: "x", ClientID: 0x9003, Seq: 1}
	s.runOn(l, l.inc, func(n *Node) {
		n.handleCall(&call{req: q, onReply: func(r *wire.Response) { cp := *r; resp = &cp }, deadline: n.clock.Now().Add(time.Second)})
	})
	if resp == nil || string(resp.KV.Value) != "old" {
		return "", false
	}
	return fmt.Sprintf("node %d (deposed: ballot %s, node %d leads %s and has applied x=new) holds a lease for %s more, anchored on acks of node %d (rejoining, promise %s, rejoin target unknown: %v) and node %d; a linearizable get there answers x=%q",
		l.id, b1, nl.id, nl.n.r.Status().Ballot, leaseEnd.Sub(now), r.id, r.n.r.Status().Promised, r.n.rejoin.target == wal.RejoinUnknown, y.id, resp.KV.Value), true
}
