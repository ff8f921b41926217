package service

import (
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/wire"
)

// The loop's side of the metrics an SRE alerts on. Every time here is read
// from the node's Clock, never time.Now: in the simulation each node runs
// on a clock of its own, read only in that node's context. (A request's
// arrival is read in newCall, as its deadline is: on the connection's
// goroutine in production, where the clock is the system's.)

// loopMetrics is what the loop remembers between the events it measures.
type loopMetrics struct {
	// lastTick is when the previous tick ran (zero before the first):
	// time without a leader is counted tick by tick.
	lastTick time.Time
	// heartbeats remembers, per peer, when the leader sent its recent
	// heartbeat rounds, so the acknowledgement gives a round trip.
	heartbeats map[paxos.NodeID]*[rttRounds]sentHeartbeat
	// laggards are the followers the leader left out of new slots'
	// Accepts at the last sample; laggardLogged when each was last said
	// to be (noteLaggards).
	laggards      []paxos.NodeID
	laggardLogged map[paxos.NodeID]time.Time
	// takenBack are the laggards sent new slots again for losing their
	// race with the leader's writes, at the last sample.
	takenBack []paxos.NodeID
}

// laggardLogEvery is how often a member left out of new slots' Accepts is
// said to be at info level: the rule is judged per batch of slots, and a
// voter's stalled sync can take a laggard back for a moment.
const laggardLogEvery = time.Minute

// noteLaggards sets the gauge of followers the leader leaves out of new
// slots' Accepts while they catch up (proposer.Laggards), and says in the
// log when one is left out: an operator reading why a member restarted
// after an outage does not vote yet. Once a minute per member at most;
// the comings and goings in between at debug level.
func (n *Node) noteLaggards() {
	laggards := n.r.Laggards()
	n.m.laggards.Set(float64(len(laggards)))
	lm := &n.m.loop
	if back := n.r.LaggardsTakenBack(); !slices.Equal(lm.takenBack, back) {
		for _, id := range back {
			if !slices.Contains(lm.takenBack, id) {
				n.log.Info().Uint32("member", uint32(id)).Uint64("commit", uint64(n.r.Status().Commit)).
					Msg("a member far behind gains no ground on the writes while it catches up: it is sent the new slots again, and holds them in memory until it has caught up")
			}
		}
		lm.takenBack = back
	}
	if slices.Equal(lm.laggards, laggards) {
		return
	}
	now := n.clock.Now()
	for _, id := range laggards {
		if slices.Contains(lm.laggards, id) {
			continue
		}
		ev := n.log.Debug()
		if last, ok := lm.laggardLogged[id]; !ok || now.Sub(last) >= laggardLogEvery {
			if lm.laggardLogged == nil {
				lm.laggardLogged = map[paxos.NodeID]time.Time{}
			}
			lm.laggardLogged[id] = now
			ev = n.log.Info()
		}
		ev.Uint32("member", uint32(id)).Uint64("commit", uint64(n.r.Status().Commit)).
			Msg("a member is far behind: it catches up from the log, and gets no new slots to vote on while the others make a quorum")
	}
	for _, id := range lm.laggards {
		if !slices.Contains(laggards, id) {
			n.log.Debug().Uint32("member", uint32(id)).
				Msg("a member left out of new slots votes on them again (caught up, its vote needed, its catch-up losing ground, or this node no longer leads)")
		}
	}
	lm.laggards = laggards
}

// rttRounds is how many heartbeat rounds per peer are remembered. Rounds
// go out every HeartbeatTicks, so with the defaults (30 ms) an
// acknowledgement up to 480 ms late — past the election timeout, when the
// peer's lateness is an election's business — still finds its round.
const rttRounds = 16

// sentHeartbeat is one heartbeat round sent to a peer.
type sentHeartbeat struct {
	ballot paxos.Ballot
	round  paxos.Slot // the round number travels in Slot; 0 is no round
	at     time.Time
}

// countAnswer does what a call's answer does for the metrics: count the
// request by op and result, and time it from arrival to answer. A call
// answers more than once only if it opened a stream; only the first answer
// is the request's (later ones are events), so only it counts. Requests
// whose answer waits on other clients — a waiting lock acquire, a
// campaign — or on events — a stream — are counted but not timed: their
// time says nothing about the service. It runs on the loop.
func (n *Node) countAnswer(c *call, code wire.ErrCode) {
	if c.answered {
		return
	}
	c.answered = true
	q := c.req
	n.requestCounter(q.Op, code).Inc()
	if !blocking(q) && !q.Op.IsStream() {
		n.requestTimer(q.Op).Observe(n.clock.Now().Sub(c.arrived).Seconds())
	}
}

// requestCounter and requestTimer return the metrics of an op (and a
// result), looked up by label once and then kept: a label lookup hashes
// and allocates, on the path of every request. Loop only.
func (n *Node) requestCounter(op wire.Op, code wire.ErrCode) prometheus.Counter {
	k := requestLabels{op, code}
	m, ok := n.requestCounters[k]
	if !ok {
		if n.requestCounters == nil {
			n.requestCounters = map[requestLabels]prometheus.Counter{}
		}
		m = n.m.requests.WithLabelValues(opLabel(op), resultLabel(code))
		n.requestCounters[k] = m
	}
	return m
}

func (n *Node) requestTimer(op wire.Op) prometheus.Observer {
	m, ok := n.requestTimers[op]
	if !ok {
		if n.requestTimers == nil {
			n.requestTimers = map[wire.Op]prometheus.Observer{}
		}
		m = n.m.requestSeconds.WithLabelValues(opLabel(op))
		n.requestTimers[op] = m
	}
	return m
}

// requestLabels are a request counter's labels.
type requestLabels struct {
	op   wire.Op
	code wire.ErrCode
}

// countLeaderless adds the time since the previous tick to the time
// without a leader, if this node knew none.
func (n *Node) countLeaderless(now time.Time) {
	last := n.m.loop.lastTick
	n.m.loop.lastTick = now
	if !last.IsZero() && n.lastLeader == 0 && now.After(last) {
		n.m.noLeaderSeconds.Add(now.Sub(last).Seconds())
	}
}

// heartbeatSent notes when a leader's heartbeat round leaves for a peer.
// Heartbeats announcing a new watermark carry no round (Slot 0) and their
// acknowledgements could not be told apart: they are not timed.
func (n *Node) heartbeatSent(m paxos.Message) {
	if m.Type != paxos.MsgHeartbeat || m.Slot == 0 {
		return
	}
	hb := n.m.loop.heartbeats
	if hb == nil {
		hb = map[paxos.NodeID]*[rttRounds]sentHeartbeat{}
		n.m.loop.heartbeats = hb
	}
	ring := hb[m.To]
	if ring == nil {
		ring = new([rttRounds]sentHeartbeat)
		hb[m.To] = ring
	}
	ring[uint64(m.Slot)%rttRounds] = sentHeartbeat{ballot: m.Ballot, round: m.Slot, at: n.clock.Now()}
}

// heartbeatAcked observes the round trip of the round m acknowledges, once:
// a duplicated acknowledgement finds the round already taken.
func (n *Node) heartbeatAcked(m paxos.Message) {
	if m.Type != paxos.MsgHeartbeatAck || m.Slot == 0 {
		return
	}
	ring := n.m.loop.heartbeats[m.From]
	if ring == nil {
		return
	}
	sent := &ring[uint64(m.Slot)%rttRounds]
	if sent.round != m.Slot || sent.ballot != m.Ballot {
		return // an older round, overwritten; or another leadership's
	}
	n.m.peerRTT.WithLabelValues(strconv.FormatUint(uint64(m.From), 10)).Observe(n.clock.Now().Sub(sent.at).Seconds())
	*sent = sentHeartbeat{}
}

// snapshotTimed observes a snapshot phase's duration since start.
func (n *Node) snapshotTimed(phase string, start time.Time) {
	n.m.snapshotSeconds.WithLabelValues(phase).Observe(n.clock.Now().Sub(start).Seconds())
}
