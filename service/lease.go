package service

import (
	"time"

	"github.com/paxosd/paxosd/proposer"
)

// leaseTicksKept bounds the tick history kept to translate the replica's
// lease (counted in ticks) into real time.
const leaseTicksKept = 1024

// tickClock remembers when each recent tick happened: the protocol core
// counts time in ticks, and only the node loop may read the clock.
type tickClock struct {
	n     int64
	times [leaseTicksKept]time.Time
}

func (tc *tickClock) tick(now time.Time) {
	tc.n++
	tc.times[tc.n%leaseTicksKept] = now
}

// at returns when tick k happened, if it is still remembered.
func (tc *tickClock) at(k int64) (time.Time, bool) {
	if k <= 0 || k > tc.n || tc.n-k >= leaseTicksKept {
		return time.Time{}, false
	}
	return tc.times[k%leaseTicksKept], true
}

// leaseUntil returns until when this node may answer linearizable reads
// from its own applied state, or the zero time if it may not.
//
// Why this is safe: the replica's LeaseTick is the tick at which this
// leader sent a heartbeat that a quorum acknowledged. Each of those
// acceptors heard from it no earlier, and grants no PreVote — without
// which no Prepare is sent — until ElectionTicks of its own ticks have
// passed (a restarted one waits as long from its start). A ticker never
// ticks faster than real time, so no other leader can be chosen before
// send time + ElectionTicks × TickInterval; we stop 10% and two ticks
// earlier, a margin for clock-rate differences between machines and tick
// jitter. The leader must also have every write any leader acknowledged:
// ReadReady says its watermark covers all it recovered in Phase 1, and the
// caller checks applied ≥ commit.
//
// The clock assumption: monotonic clocks on the nodes advance at rates
// that differ by less than 10%.
func (n *Node) leaseUntil() time.Time {
	st := n.r.Status()
	if st.Role != proposer.Leader || !st.ReadReady || st.LeaseTick < 0 || n.installing() || n.sm.Applied() < st.Commit {
		return time.Time{}
	}
	sent, ok := n.ticks.at(st.LeaseTick)
	if !ok {
		return time.Time{}
	}
	lease := time.Duration(n.cfg.ElectionTicks)*n.cfg.TickInterval*9/10 - 2*n.cfg.TickInterval
	return sent.Add(lease)
}

// leaseRead answers a linearizable get or list from the leader's own state
// while its lease holds, checking the clock before and after the read: a
// leader paused (GC, SIGSTOP) in between must not answer from a lease that
// ran out while it slept. It reports false when the read must go through
// the log instead.
func (n *Node) leaseRead(c *call) bool {
	until := n.leaseUntil()
	if until.IsZero() || !n.clock.Now().Before(until) {
		return false
	}
	resp := n.localRead(c.req)
	if !n.clock.Now().Before(until) {
		return false
	}
	c.reply(resp)
	n.m.leaseReads.Inc()
	return true
}
