package replica_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/proposer"
)

// laggardSlots is the tests' Config.LaggardSlots.
const laggardSlots = 8

// laggardCluster is outageCluster with LaggardSlots at laggardSlots (and
// the window at half of it), a slot a tick.
func laggardCluster(t *testing.T, behind int) *latCluster {
	return outageCluster(t, behind, 1, func(cfg *paxos.Config) { cfg.LaggardSlots, cfg.WindowSlots = laggardSlots, laggardSlots/2 })
}

// outageCluster: node 1 leads nodes 2 and 3, every node's Config passed
// through tune (if not nil), a message takes a tick each way; node 3 was
// down while node 1 chose `behind` values of 600 bytes (one per 1 KiB
// catch-up batch), proposed perTick a tick, and is back.
func outageCluster(t *testing.T, behind, perTick int, tune func(*paxos.Config)) *latCluster {
	c := newTunedLatCluster(t, nil, tune)
	for i := 0; i < 6*electionTicks && c.leader() != 1; i++ {
		c.tick()
	}
	if c.leader() != 1 {
		t.Fatal("node 1 did not lead")
	}
	c.latency = 1
	c.down[3] = true
	for i := 0; i < behind; {
		for k := 0; k < perTick && i < behind; k, i = k+1, i+1 {
			c.putSlot(fmt.Sprint("behind", i))
		}
		c.tick()
	}
	for i := 0; i < 4*electionTicks && c.nodes[1].Status().InFlight > 0; i++ {
		c.tick()
	}
	if st := c.nodes[1].Status(); st.Commit < paxos.Slot(behind) || st.Role != proposer.Leader {
		t.Fatalf("setup: node 1 %+v", st)
	}
	c.down[3] = false
	return c
}

// putSlot has the leader propose one 600-byte value.
func (c *latCluster) putSlot(tag string) {
	if err := c.nodes[1].Propose([]byte(tag + strings.Repeat(".", 600-len(tag)))); err != nil {
		c.t.Fatalf("%s: %v; node 1 %+v, node 2 %+v", tag, err, c.nodes[1].Status(), c.nodes[2].Status())
	}
}

// A follower back from an outage catches up from far below; were it sent
// the leader's new slots meanwhile, it would hold each in memory until its
// watermark passed it (make bench-scale OUTAGE=5m: 100 MB over the node's
// bound). The leader leaves it out of new slots' Accepts while nodes 1
// and 2 make the quorum, and takes it back once it is within
// LaggardSlots: then it accepts the head again.
func TestLaggardGetsNoNewAccepts(t *testing.T) {
	c := laggardCluster(t, 100)
	lastAccept := -1 // the last tick node 3 was sent an Accept
	c.sent = func(m paxos.Message) {
		if m.Type == paxos.MsgAccept && m.To == 3 {
			lastAccept = c.now
		}
	}
	held, caughtUp := paxos.Slot(0), -1
	for i := 0; i < 400; i++ {
		c.putSlot(fmt.Sprint("w", i))
		c.tick()
		l, f := c.nodes[1].Status(), c.nodes[3].Status()
		held = max(held, f.MaxSlot-f.Commit)
		if caughtUp < 0 && f.Commit+laggardSlots >= l.Commit {
			caughtUp = c.now
		}
	}
	// It may hold, above its watermark, slots proposed after its report
	// came within LaggardSlots: those LaggardSlots, the ones chosen while
	// its report travelled and the next was due (a heartbeat interval and
	// a round trip: 4 ticks, a slot a tick), and those in flight (2).
	if bound := paxos.Slot(laggardSlots + 4 + 2); held > bound {
		t.Errorf("node 3 held up to %d slots above its watermark while catching up; want at most %d", held, bound)
	}
	if caughtUp < 0 {
		t.Fatalf("node 3 did not catch up: %+v, the leader %+v", c.nodes[3].Status(), c.nodes[1].Status())
	}
	if lastAccept < c.now-1 {
		t.Errorf("node 3 caught up at tick %d, and was last sent an Accept at tick %d of %d: it was not taken back", caughtUp, lastAccept, c.now)
	}
}

// A laggard left out of the Accepts is still a voter: when node 2 goes
// down, node 1 and the laggard are the only quorum. The leader must take
// it back (node 2 is no longer heard from) and have the slots it left it
// out of voted again (retransmit), without stalling long enough to step
// down. A follower that declined new slots by itself could not tell that
// the quorum needed it: commits stopped for its whole catch-up and the
// leader was deposed over and over (an adversarial review, session 19).
func TestLaggardVotesWhenQuorumNeedsIt(t *testing.T) {
	c := laggardCluster(t, 200)
	c.tick()
	c.tick()
	c.down[2] = true
	stepDowns, inFlight := 0, 0
	var last paxos.Slot
	for i := 0; i < 300; i++ {
		c.putSlot(fmt.Sprint("w", i))
		c.tick()
		if c.nodes[1].Status().Role != proposer.Leader {
			stepDowns++
			for c.leader() == 0 {
				c.tick()
			}
		}
		last = c.nodes[1].Status().NextSlot - 1
		if i >= 2*electionTicks {
			inFlight = max(inFlight, c.nodes[1].Status().InFlight)
		}
	}
	// Once node 2's silence is known, each slot is voted in a round trip
	// (two ticks), at a slot a tick: two in flight, three counting the one
	// just proposed. A slot that waited for its retransmission to reach
	// node 3 would keep six in flight.
	if inFlight > 3 {
		t.Errorf("up to %d slots in flight on node 1 after node 2 went down: node 3 was left out of new slots' Accepts while its vote was needed", inFlight)
	}
	for i := 0; i < 4*electionTicks && c.nodes[1].Status().Commit < last; i++ {
		c.tick()
	}
	if stepDowns > 0 {
		t.Errorf("node 1 stepped down %d times with node 3 up and reachable", stepDowns)
	}
	if got := c.nodes[1].Status().Commit; got < last {
		t.Errorf("node 1's watermark %d, short of %d, with nodes 1 and 3 up", got, last)
	}
}

// A follower that must get everything through catch-up (left out of the
// Accepts) must catch up faster than the leader writes. Here the leader
// chooses a slot a tick and a catch-up batch holds one slot; with one
// batch per round trip (two ticks) the follower's gap would grow for as
// long as the writes last (an adversarial review, session 19). With
// several batches in flight it closes.
func TestCatchUpOutrunsLeaderWrites(t *testing.T) {
	c := laggardCluster(t, 100)
	inFlight, most := 0, 0
	c.sent = func(m paxos.Message) {
		if m.Type == paxos.MsgDecide && m.To == 3 {
			inFlight++
			most = max(most, inFlight)
		}
	}
	caughtUp := -1
	for i := 0; i < 400; i++ {
		c.putSlot(fmt.Sprint("w", i))
		inFlight = 0 // a batch lives one tick on the wire
		c.tick()
		if caughtUp < 0 && c.nodes[3].Status().Commit+laggardSlots >= c.nodes[1].Status().Commit {
			caughtUp = i
		}
	}
	if caughtUp < 0 {
		t.Fatalf("node 3 never came within %d slots (watermark %d, the leader's %d; at most %d catch-up batches sent in a tick)",
			laggardSlots, c.nodes[3].Status().Commit, c.nodes[1].Status().Commit, most)
	}
	t.Logf("caught up after %d ticks; at most %d catch-up batches sent in a tick", caughtUp, most)
}

// An idle leader has no recent votes to tell which followers vote: the
// first slot after a pause must still leave a laggard out, the others
// having voted for every slot before it.
func TestLaggardLeftOutAfterIdle(t *testing.T) {
	c := laggardCluster(t, 200)
	for i := 0; i < 3*electionTicks; i++ {
		c.tick() // no writes; node 3 catches up meanwhile, still far behind
	}
	if st := c.nodes[3].Status(); st.Commit+laggardSlots*4 >= c.nodes[1].Status().Commit {
		t.Fatalf("setup: node 3 no longer far behind: %+v", st)
	}
	accepts := 0
	c.sent = func(m paxos.Message) {
		if m.Type == paxos.MsgAccept && m.To == 3 {
			accepts++
		}
	}
	c.putSlot("after a pause")
	c.tick()
	if accepts > 0 {
		t.Errorf("the first slot after a pause was sent to node 3, a laggard, in %d Accepts", accepts)
	}
}

// A laggard that moves a little and then stands still (a member restarted
// after an outage reports a watermark a little above the one it had, then
// fetches a snapshot for seconds) has not lost a race with the leader's
// writes: it stays left out. Judged from where it first moved, it was
// taken back 3 s into its catch-up and accepted the head for the next 27
// (make bench-scale OUTAGE=5m: 738 MB against a 680 MB bound).
func TestLaggardStandingStillStaysLeftOut(t *testing.T) {
	c := laggardCluster(t, 400)
	start := c.nodes[3].Status().Commit
	for i := 0; i < 10 && c.nodes[3].Status().Commit == start; i++ {
		c.putSlot(fmt.Sprint("w", i))
		c.tick() // until the first catch-up batches land: node 3 moves
	}
	moved := c.nodes[3].Status().Commit
	if moved == start {
		t.Fatalf("setup: node 3 did not move (watermark %d)", moved)
	}
	for i := 0; i < 15*electionTicks; i++ {
		c.putSlot(fmt.Sprint("x", i))
		c.tick()
		// It fetches a snapshot: no log reaches it meanwhile.
		filterNet(c, func(m paxos.Message) bool { return m.To == 3 && m.Type == paxos.MsgDecide })
	}
	if got := c.nodes[3].Status().Commit; got != moved {
		t.Fatalf("setup: node 3 moved from %d to %d", moved, got)
	}
	if l := c.nodes[1].Laggards(); len(l) != 1 || l[0] != 3 {
		t.Errorf("node 3, %d slots behind and standing still, is not left out (laggards %v)", c.nodes[1].Status().Commit-moved, l)
	}
}
