package service

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/wire"
)

// stepClock is a Clock the test moves by hand.
type stepClock struct{ now time.Time }

func (c *stepClock) Now() time.Time { return c.now }

// metricsNode is just enough of a node for the loop's metric helpers.
func metricsNode() (*Node, *stepClock) {
	clk := &stepClock{now: time.Unix(1000, 0)}
	return &Node{m: newMetrics(prometheus.NewRegistry()), clock: clk}, clk
}

// histogram returns the sample count and sum of o (one series of a vec).
func histogram(t *testing.T, o prometheus.Observer) (uint64, float64) {
	t.Helper()
	var m dto.Metric
	if err := o.(prometheus.Metric).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
}

// TestMetricsHeartbeatRTT: the leader times a heartbeat round from its
// departure to the peer's acknowledgement of that very round, once; rounds
// it can no longer tell apart (overwritten, another ballot, the
// watermark heartbeats without a round) give no sample rather than a
// wrong one.
func TestMetricsHeartbeatRTT(t *testing.T) {
	n, clk := metricsNode()
	b := paxos.Ballot{Round: 3, Node: 1}
	hb := func(to paxos.NodeID, round paxos.Slot) paxos.Message {
		return paxos.Message{Type: paxos.MsgHeartbeat, From: 1, To: to, Ballot: b, Slot: round}
	}
	ack := func(from paxos.NodeID, round paxos.Slot, b paxos.Ballot) paxos.Message {
		return paxos.Message{Type: paxos.MsgHeartbeatAck, From: from, To: 1, Ballot: b, Slot: round}
	}
	n.heartbeatSent(hb(2, 5))
	n.heartbeatSent(hb(3, 5))
	n.heartbeatSent(hb(2, 0)) // a watermark announcement: no round
	clk.now = clk.now.Add(3 * time.Millisecond)
	n.heartbeatAcked(ack(2, 5, b))
	n.heartbeatAcked(ack(2, 5, b)) // duplicated by the network
	n.heartbeatAcked(ack(2, 0, b)) // answers a Decide or a watermark heartbeat
	if c, s := histogram(t, n.m.peerRTT.WithLabelValues("2")); c != 1 || s != 0.003 {
		t.Errorf("peer 2: %d samples summing to %v, want one of 0.003", c, s)
	}
	n.heartbeatAcked(ack(3, 5, paxos.Ballot{Round: 2, Node: 3})) // another leadership's round 5
	n.heartbeatSent(hb(3, 5+rttRounds))                          // round 5's place is taken
	n.heartbeatAcked(ack(3, 5, b))
	if c, _ := histogram(t, n.m.peerRTT.WithLabelValues("3")); c != 0 {
		t.Errorf("peer 3: %d samples from rounds that cannot be matched", c)
	}
	n.heartbeatAcked(ack(4, 5, b)) // never sent to: no series for it
	if got := testutil.CollectAndCount(n.m.peerRTT); got != 2 {
		t.Errorf("%d peer RTT series, want 2", got)
	}
}

// TestMetricsRequestCountedOnce: a request is counted (and timed) at its
// first answer only — a stream's later events are not requests — and the
// requests whose answer waits on other clients are counted but not timed.
func TestMetricsRequestCountedOnce(t *testing.T) {
	n, clk := metricsNode()
	counter := func(q *wire.Request) func(wire.ErrCode) {
		c := &call{req: q, node: n, arrived: clk.now}
		return func(code wire.ErrCode) { n.countAnswer(c, code) }
	}
	put := counter(&wire.Request{Op: wire.OpPut})
	watch := counter(&wire.Request{Op: wire.OpWatch})
	wait := counter(&wire.Request{Op: wire.OpLockAcquire, Wait: true})
	try := counter(&wire.Request{Op: wire.OpLockAcquire})
	bad := counter(&wire.Request{Op: 200})
	clk.now = clk.now.Add(2 * time.Millisecond)
	put(wire.ErrNone)
	try(wire.ErrLockHeld)
	for range 3 {
		watch(wire.ErrNone)
	}
	clk.now = clk.now.Add(time.Minute)
	wait(wire.ErrNone)
	bad(wire.ErrInvalid)
	for _, c := range []struct {
		op, result string
		want       float64
	}{{"Put", "ok", 1}, {"Watch", "ok", 1}, {"LockAcquire", "ok", 1}, {"LockAcquire", "LockHeld", 1}, {"invalid", "Invalid", 1}} {
		if got := testutil.ToFloat64(n.m.requests.WithLabelValues(c.op, c.result)); got != c.want {
			t.Errorf("requests{op=%q,result=%q} = %v, want %v", c.op, c.result, got, c.want)
		}
	}
	if c, s := histogram(t, n.m.requestSeconds.WithLabelValues("Put")); c != 1 || s != 0.002 {
		t.Errorf("Put latency: %d samples summing to %v, want one of 0.002", c, s)
	}
	if c, _ := histogram(t, n.m.requestSeconds.WithLabelValues("LockAcquire")); c != 1 {
		t.Errorf("LockAcquire latency: %d samples, want only the try-lock's", c)
	}
	if c, _ := histogram(t, n.m.requestSeconds.WithLabelValues("Watch")); c != 0 {
		t.Errorf("Watch latency: %d samples, want none", c)
	}
}

// TestMetricsLeaderlessSeconds: time between ticks counts as time without
// a leader while the node knows none, and not before its first tick.
func TestMetricsLeaderlessSeconds(t *testing.T) {
	n, clk := metricsNode()
	for range 3 { // no leader yet: the first tick starts the count
		n.countLeaderless(clk.now)
		clk.now = clk.now.Add(10 * time.Millisecond)
	}
	// An interval counts by what the node knew at its end (a tick sees
	// the leader the last iteration found): this one is a leader's.
	n.lastLeader = 2
	n.countLeaderless(clk.now)
	clk.now = clk.now.Add(time.Second)
	n.countLeaderless(clk.now)
	if got := testutil.ToFloat64(n.m.noLeaderSeconds); got < 0.0199 || got > 0.0201 {
		t.Errorf("no-leader seconds %v, want 0.02 (three ticks 10ms apart, then a leader)", got)
	}
}
