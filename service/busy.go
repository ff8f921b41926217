package service

import (
	"fmt"
	"time"

	"github.com/paxosd/paxosd/wire"
)

// Back-pressure (docs/PROTOCOL.md, "Back-pressure"). A node that cannot
// keep up must say so rather than queue without end: every queued command
// delays every keep-alive behind it, and a session whose keep-alives wait
// longer than its TTL expires, releasing its locks, because the cluster was
// busy. So the bytes of client commands a node holds waiting for the log
// are bounded (Config.BacklogBytesMax), and the bound is shared out by
// priority: writes, linearizable reads and session opens may fill half of
// it, lock and election operations three quarters, keep-alives all of it.
// Past its share a request is shed before it is proposed (nothing applied):
// a client of protocol 13 is answered err Busy with the time the backlog
// needs to drain to its share, an older one err Unavailable, as older
// nodes answered a full proposal queue. Keep-alives are therefore shed
// only once everything else already is.
//
// The backlog is the larger of two figures: the commands of this node's
// own calls waiting for their answer (on a follower, those it forwarded),
// and on the replica the commands queued for a slot and the values in
// flight (on the leader, what every member forwarded too). Both are byte
// counts the loop keeps, and the drain rate behind the retry-after is
// measured on the node's clock at its ticks: the simulation replays every
// decision.

// priority orders what an overloaded node keeps: the higher, the later
// shed.
type priority uint8

const (
	// prioWrite: writes, linearizable reads through the log, session
	// opens and everything else through the log.
	prioWrite priority = iota
	// prioLock: lock and election operations, and session closes (which
	// release what a session held).
	prioLock
	// prioKeepAlive: session keep-alives, single and batched.
	prioKeepAlive
	priorities
)

// priorityLabels are the metric's labels, by priority.
var priorityLabels = [priorities]string{"write", "lock", "keepalive"}

func (p priority) String() string { return priorityLabels[p] }

// priorityOf is op's priority.
func priorityOf(op wire.Op) priority {
	switch op {
	case wire.OpSessionKeepAlive, wire.OpSessionKeepAliveBatch:
		return prioKeepAlive
	case wire.OpLockAcquire, wire.OpLockRelease, wire.OpLockCheck,
		wire.OpCampaign, wire.OpProclaim, wire.OpResign, wire.OpLeader,
		wire.OpSessionClose:
		return prioLock
	}
	return prioWrite
}

const (
	// DefaultBacklogBytesMax is Config.BacklogBytesMax's default: 8 MiB of
	// commands of about 150 bytes is some 55,000 of them, a few seconds of
	// a loaded leader's work; writes may fill half, so a keep-alive waits
	// behind at most about 4 MiB of them.
	DefaultBacklogBytesMax = 8 << 20
	// busyRetryMin and busyRetryMax bound the retry-after a node answers:
	// no sooner than the next few slots could drain, no later than a
	// client should wait before asking again (the backlog may clear at
	// once, a leader change for instance).
	busyRetryMin = 10 * time.Millisecond
	busyRetryMax = 2 * time.Second
	// busyRetryUnknown is the retry-after before the node has measured
	// its drain rate under load (the first 100 ms of its first overload).
	busyRetryUnknown = 100 * time.Millisecond
	// busyRateEvery is how often the drain rate is sampled.
	busyRateEvery = 100 * time.Millisecond
)

// backlog is the loop's account of the bytes waiting for the log.
type backlog struct {
	// waiting is the bytes of the commands of the calls in Node.waiters
	// that wait for their own command (not those queued in the state
	// machine for a lock or a campaign: theirs is applied).
	waiting int
	// drained is the bytes of waiting calls answered since since; rate
	// the bytes a second the backlog drained lately (0: not measured).
	drained int
	since   time.Time
	rate    float64
	// loaded: a request was shed since since.
	loaded bool
}

// backlogShare is the share of the backlog bound a request of priority p
// may fill, in eighths: writes 4, lock operations 6, keep-alives all 8.
// A client's oldest request (oldest) gets one eighth more, below the next
// priority's share: see shed.
func (n *Node) backlogShare(p priority, oldest bool) int {
	eighths := 8
	switch p {
	case prioWrite:
		eighths = 4
	case prioLock:
		eighths = 6
	}
	if oldest && p != prioKeepAlive {
		eighths++
	}
	return n.cfg.BacklogBytesMax / 8 * eighths
}

// backlogBytes is the node's backlog: its own waiting commands, or the
// replica's queue, whichever is larger.
func (n *Node) backlogBytes() int { return max(n.busy.waiting, n.r.QueuedBytes()) }

// wait counts c, about to wait for its command, in the backlog.
func (n *Node) wait(c *call) {
	c.weight = len(c.cmd)
	n.busy.waiting += c.weight
	n.openingWait(c)
}

// unwait takes c out of the backlog (it was answered, queued in the state
// machine, or given up); drained says its command was applied.
func (n *Node) unwait(c *call, drained bool) {
	n.openingDone(c)
	if c.weight == 0 {
		return
	}
	n.busy.waiting -= c.weight
	if drained {
		n.busy.drained += c.weight
	}
	c.weight = 0
}

// sampleDrain updates the drain rate from the node's clock (every
// busyRateEvery, from tick). Only from a period of load (something was
// shed, or the backlog reached a quarter of the bound): what drains
// through a node that is not loaded is what arrives, not what it can do,
// and a rate learned from a few keep-alives would answer the first
// requests shed seconds of retry-after. An unloaded node keeps the last
// rate it measured under load.
func (n *Node) sampleDrain(now time.Time) {
	b := &n.busy
	if b.since.IsZero() {
		b.since = now
		return
	}
	elapsed := now.Sub(b.since)
	if elapsed < busyRateEvery {
		return
	}
	if b.loaded || n.backlogBytes() >= n.cfg.BacklogBytesMax/4 {
		r := float64(b.drained) / elapsed.Seconds()
		if b.rate == 0 {
			b.rate = r
		} else {
			b.rate = (b.rate + r) / 2
		}
	}
	b.drained, b.since, b.loaded = 0, now, false
	n.m.backlogBytes.Set(float64(n.backlogBytes()))
}

// shed refuses c when the backlog leaves its priority no room, answering
// it Busy (or Unavailable for a client older than wire.VersionBusy). A
// node with nothing waiting takes any one command, however large.
//
// A client's oldest unanswered request (Seq == AckedBelow: the client has
// every answer below it) is admitted an eighth further than its later
// ones. A client with many requests in flight hands the room each answer
// frees to its next new request at once, while the one it was refused
// waits out its retry-after: without the margin that request could be
// refused again and again until the state machine, holding more than its
// bound of the client's newer answers, forgets past it, and its retry is
// refused as stale. With it, the oldest request gets in on its next try.
func (n *Node) shed(c *call) bool {
	p := priorityOf(c.req.Op)
	b := n.backlogBytes()
	oldest := c.req.Seq != 0 && c.req.Seq <= c.req.AckedBelow
	over := b + len(c.cmd) - n.backlogShare(p, oldest)
	if b == 0 || over <= 0 {
		return false
	}
	n.refuseBusy(c, p, over)
	return true
}

// refuseBusy answers c, of priority p, that the node is too busy to take
// it; over is how many bytes the backlog must drain before it would be.
func (n *Node) refuseBusy(c *call, p priority, over int) {
	n.m.shed.WithLabelValues(p.String()).Inc()
	n.busy.loaded = true
	after := busyRetryUnknown
	if n.busy.rate > 0 {
		after = time.Duration(float64(over) / n.busy.rate * float64(time.Second))
	}
	after = min(max(after, busyRetryMin), busyRetryMax)
	ms := uint64(after / time.Millisecond)
	if !c.speaks(wire.VersionBusy) {
		c.reply(&wire.Response{Err: wire.ErrUnavailable, ErrMsg: fmt.Sprintf("node %d is overloaded: retry later (in about %d ms)", n.cfg.ID, ms)})
		return
	}
	c.reply(&wire.Response{Err: wire.ErrBusy, ErrMsg: fmt.Sprintf("busy: retry after %d ms", ms), RetryAfterMs: ms})
}
