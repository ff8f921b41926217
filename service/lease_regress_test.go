package service

import (
	"testing"
	"time"

	"github.com/paxosd/paxosd/internal/linearize"
	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/proposer"
	"github.com/paxosd/paxosd/wire"
)

// Bug 2 of the correctness issue, end to end through whole nodes, a real
// lease read and the linearizability check. Leader A is cut off; C
// campaigns, B grants its PreVote, and C's Prepare to B is held back. A
// comes back to B (not to C), leads again and reads under a lease anchored
// on B's acknowledgement. Then C's Prepare reaches B. B must refuse it: had
// it promised, C would lead on {B, C} and commit a put while A, still in
// its lease, answers a get from its own state without that put — a stale
// read the checker reports as a history that is not linearizable.
func TestStaleLeaseReadScenario(t *testing.T) {
	var s *sim
	var a, b, c *simNode
	for seed := int64(400); ; seed++ {
		s = rgSim(t, seed, nil)
		a = rgLeader(t, s)
		if a.id != 3 { // C needs a higher id than A, so its ballot wins
			break
		}
	}
	c = s.nodes[2]
	for _, sn := range s.nodes {
		if sn != a && sn != c {
			b = sn
		}
	}
	client := newSimClient(s, 0)
	write := func(l *simLink, to *simNode, value string) (call, ret time.Duration, ok bool) {
		done := false
		call = s.now
		q := &wire.Request{Op: wire.OpPut, Key: "k", Value: []byte(value)}
		l.seq++
		q.ClientID, q.Seq, q.AckedBelow = l.cid, l.seq, l.seq
		l.send(q, time.Second, to, func(r *wire.Response) { done, ok, ret = true, r.Err == wire.ErrNone, s.now }, func() { done = true })
		rgRunUntil(t, s, 2*time.Second, "an answer to the put", func() bool { return done })
		return call, ret, ok
	}
	la, lc := newSimLink(client, "a", 1<<20|1), newSimLink(client, "c", 1<<20|2)
	call, ret, ok := write(la, a, "v1")
	if !ok {
		t.Fatal("the first put failed")
	}
	s.check.kvOp(0, linearize.KVInput{Op: "put", Key: "k", Value: "v1"}, call, ret, linearize.KVOutput{})

	// A is cut off; B does not campaign itself; C's Prepares to B are
	// held back.
	for _, o := range []*simNode{b, c} {
		s.net.cut[[2]paxos.NodeID{a.id, o.id}], s.net.cut[[2]paxos.NodeID{o.id, a.id}] = true, true
	}
	var held []paxos.Message
	s.net.drop = func(m paxos.Message) bool {
		switch {
		case m.Type == paxos.MsgPreVote && m.From == b.id:
			return true
		case m.Type == paxos.MsgPrepare && m.From == c.id && m.To == b.id:
			held = append(held, m)
			return true
		}
		return false
	}
	rgRunUntil(t, s, 3*time.Second, "C campaigning", func() bool { return len(held) > 0 })

	// A comes back to B only, and leads on B's acknowledgements.
	s.net.cut[[2]paxos.NodeID{a.id, b.id}], s.net.cut[[2]paxos.NodeID{b.id, a.id}] = false, false
	rgRunUntil(t, s, 3*time.Second, "A leading again with a lease", func() bool {
		if !a.up() || a.n.r.Status().Role != proposer.Leader {
			return false
		}
		until := a.n.leaseUntil()
		return !until.IsZero() && a.n.clock.Now().Add(60*time.Millisecond).Before(until)
	})

	// C's Prepare reaches B at last.
	s.net.drop = func(m paxos.Message) bool { return m.Type == paxos.MsgPreVote && m.From == b.id }
	for _, m := range held {
		s.send(c, m)
	}
	if err := s.runFor(10 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if c.n.r.Status().Role == proposer.Leader {
		call, ret, ok = write(lc, c, "v2")
		if ok {
			s.check.kvOp(0, linearize.KVInput{Op: "put", Key: "k", Value: "v2"}, call, ret, linearize.KVOutput{})
		}
	}
	lr := newSimLink(client, "read", 1<<20|3)
	var got *wire.Response
	call = s.now
	lr.seq++
	lr.send(&wire.Request{Op: wire.OpGet, Key: "k", ClientID: lr.cid, Seq: lr.seq, AckedBelow: lr.seq}, time.Second, a,
		func(r *wire.Response) { got = r }, func() {})
	rgRunUntil(t, s, time.Second, "an answer to the get", func() bool { return got != nil })
	if got.Err == wire.ErrNone || got.Err == wire.ErrNotFound {
		s.check.kvOp(1, linearize.KVInput{Op: "get", Key: "k"}, call, s.now, linearize.KVOutput{Value: string(got.KV.Value), Found: got.Err == wire.ErrNone})
	}
	s.finalChecks()
	if s.err != nil {
		t.Fatal(s.err)
	}
	if c.n.r.Status().Role == proposer.Leader {
		t.Error("C leads although B acknowledged A within an election timeout")
	}
}

// Bug 1 of the correctness issue, end to end through whole nodes and the
// agreement checker. A campaigns while its disk is stalled. Were its
// Prepares to leave before its own promise of the ballot is durable, B and
// C would make it leader; it would propose v, which only B stores, and
// crash with nothing durable. Restarted with its older promise, A would
// campaign under the same ballot again, win it on {A, C} while B is slow,
// and get v' chosen at the same slot; B, holding v at that very ballot,
// would take the leader's watermark as choosing v: two values for one
// slot. With the fix A cannot lead while its promise is not durable, and
// the replicas agree.
func TestCampaignOnStalledDiskScenario(t *testing.T) {
	s := rgSim(t, 500, nil)
	l := rgLeader(t, s)
	var a, x *simNode
	for _, sn := range s.nodes {
		switch {
		case sn == l:
		case a == nil:
			a = sn
		default:
			x = sn
		}
	}
	b := l
	client := newSimClient(s, 0)
	put := func(l *simLink, value string) {
		l.seq++
		l.send(&wire.Request{Op: wire.OpPut, Key: "k", Value: []byte(value), ClientID: l.cid, Seq: l.seq, AckedBelow: l.seq},
			time.Second, a, func(*wire.Response) {}, func() {})
	}
	// Only A campaigns; B (the old leader, restarted) and X do not.
	s.net.drop = func(m paxos.Message) bool { return m.Type == paxos.MsgPreVote && m.From != a.id }
	s.stop(b)
	s.restart(b)
	a.stalledUntil = s.now + 2*time.Second
	ledStalled := false
	_ = s.runFor(0)
	for s.now < a.stalledUntil-500*time.Millisecond && s.err == nil {
		if err := s.runFor(time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if a.up() && a.n.r.Status().Role == proposer.Leader {
			ledStalled = true
			break
		}
	}
	if ledStalled {
		// A proposes v; only B stores it; A crashes with nothing durable.
		s.net.drop = func(m paxos.Message) bool {
			return (m.Type == paxos.MsgPreVote && m.From != a.id) || (m.Type == paxos.MsgAccept && m.From == a.id && m.To == x.id)
		}
		put(newSimLink(client, "v", 1<<21|1), "v")
		if err := s.runFor(20 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
		s.stop(a)
		a.stalledUntil = 0
		s.restart(a)
		// B is slow now: A wins its next campaign on {A, X}, and proposes v'.
		s.net.drop = func(m paxos.Message) bool {
			return (m.Type == paxos.MsgPreVote && m.From != a.id) || m.From == b.id || m.To == b.id
		}
		rgRunUntil(t, s, 3*time.Second, "A leading again", func() bool { return a.up() && a.n.r.Status().Role == proposer.Leader })
		put(newSimLink(client, "w", 1<<21|2), "w")
		if err := s.runFor(50 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	s.net.drop = nil
	a.stalledUntil = 0
	if err := s.runFor(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	if ledStalled {
		t.Error("A led while its own promise of the ballot could not be durable (its disk stalled)")
	}
}
