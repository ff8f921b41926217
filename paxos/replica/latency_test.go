package replica_test

import (
	"fmt"
	"testing"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/paxos/replica"
	"github.com/paxosd/paxosd/proposer"
)

type timedMsg struct {
	at int
	m  paxos.Message
}

// latCluster: three replicas, disks sync at once, messages to self are
// stepped at once (as the node loop does), messages to others arrive
// `latency` ticks after they were sent.
type latCluster struct {
	t       *testing.T
	nodes   map[paxos.NodeID]*replica.Replica
	stores  map[paxos.NodeID]*store
	down    map[paxos.NodeID]bool
	cut     map[[2]paxos.NodeID]bool
	net     []timedMsg
	now     int
	latency int
	// campaigns counts distinct candidate ballots seen.
	ballots map[paxos.Ballot]bool
	// sent, if not nil, sees every message sent to another node.
	sent func(paxos.Message)
	// selfDelay, if not nil, holds a message a node sends itself for the
	// ticks it returns (0: stepped at once).
	selfDelay func(paxos.Message) int
	// extra, if not nil, adds the ticks it returns to a message's latency.
	extra func(paxos.Message) int
}

func newLatCluster(t *testing.T, states map[paxos.NodeID]paxos.State) *latCluster {
	return newTunedLatCluster(t, states, nil)
}

// newTunedLatCluster is newLatCluster with every node's Config passed
// through tune (if not nil) first.
func newTunedLatCluster(t *testing.T, states map[paxos.NodeID]paxos.State, tune func(*paxos.Config)) *latCluster {
	c := &latCluster{t: t, nodes: map[paxos.NodeID]*replica.Replica{}, stores: map[paxos.NodeID]*store{},
		down: map[paxos.NodeID]bool{}, cut: map[[2]paxos.NodeID]bool{}, ballots: map[paxos.Ballot]bool{}}
	jitter := map[paxos.NodeID]int{1: 0, 2: 3, 3: 9}
	for id := paxos.NodeID(1); id <= 3; id++ {
		c.stores[id] = &store{entries: map[paxos.Slot]paxos.Entry{}}
		cfg := paxos.Config{ID: id, Members: []paxos.NodeID{1, 2, 3}, HeartbeatTicks: 2, ElectionTicks: electionTicks,
			WindowSlots: 256, BatchBytesMax: 1 << 10, MessageBytesMax: 16 << 10, Rand: fixedRand{jitter[id]}}
		if tune != nil {
			tune(&cfg)
		}
		st := states[id]
		r, err := replica.New(cfg, st, st.Commit)
		if err != nil {
			t.Fatal(err)
		}
		c.nodes[id] = r
	}
	return c
}

func (c *latCluster) pump() {
	for i := 0; i < 100000; i++ {
		moved := false
		for id := paxos.NodeID(1); id <= 3; id++ {
			if c.down[id] {
				continue
			}
			r := c.nodes[id]
			rd := r.Ready()
			if rd.IsEmpty() {
				continue
			}
			moved = true
			c.stores[id].save(rd.Persist) // synced at once
			for _, m := range append(rd.Messages, rd.AfterPersist...) {
				if m.Type == paxos.MsgPrepare && m.From == id && m.To == id {
					c.ballots[m.Ballot] = true
				}
				if m.To == id && c.selfDelay != nil && c.selfDelay(m) > 0 {
					c.net = append(c.net, timedMsg{c.now + c.selfDelay(m), m})
				} else if m.To == id {
					r.Step(m)
				} else {
					if c.sent != nil {
						c.sent(m)
					}
					at := c.now + c.latency
					if c.extra != nil {
						at += c.extra(m)
					}
					c.net = append(c.net, timedMsg{at, m})
				}
			}
		}
		var keep []timedMsg
		for _, tm := range c.net {
			if tm.at > c.now {
				keep = append(keep, tm)
				continue
			}
			moved = true
			if c.down[tm.m.To] || c.cut[[2]paxos.NodeID{tm.m.From, tm.m.To}] {
				continue
			}
			c.nodes[tm.m.To].Step(tm.m)
		}
		c.net = keep
		if !moved {
			return
		}
	}
	c.t.Fatal("did not settle")
}

func (c *latCluster) tick() {
	c.now++
	for id, r := range c.nodes {
		if !c.down[id] {
			r.Tick()
		}
	}
	c.pump()
}

func (c *latCluster) leader() paxos.NodeID {
	for id, r := range c.nodes {
		if !c.down[id] && r.Status().Role == proposer.Leader {
			return id
		}
	}
	return 0
}

// backlog: node 1 leads, nodes 2 and 3 accept n values of 3,000 bytes each
// but node 1 never hears their votes (nothing is chosen, nobody learns);
// then node 1 dies.
func backlog(t *testing.T, n int) *latCluster {
	c := newLatCluster(t, nil)
	for i := 0; i < 4*electionTicks && c.leader() != 1; i++ {
		c.tick()
	}
	if c.leader() != 1 {
		t.Fatal("node 1 did not lead")
	}
	c.cut[[2]paxos.NodeID{2, 1}], c.cut[[2]paxos.NodeID{3, 1}] = true, true
	for i := 0; i < n; i++ {
		if err := c.nodes[1].Propose([]byte(fmt.Sprintf("%04d", i) + string(make([]byte, 2996)))); err != nil {
			t.Fatal(err)
		}
		c.pump()
	}
	for _, id := range []paxos.NodeID{2, 3} {
		if st := c.nodes[id].Status(); st.Commit != 0 {
			t.Fatalf("node %d commit %d; want 0", id, st.Commit)
		}
	}
	c.down[1] = true
	c.cut = map[[2]paxos.NodeID]bool{}
	c.ballots = map[paxos.Ballot]bool{}
	return c
}

// A Phase 1 may need more Promise pages than fit in an election timeout:
// with one tick of one-way latency each page costs two ticks, and 30 pages
// take 60, over the longest timeout (2E). A candidate that abandoned its
// campaign when the timeout fired, throwing the pages away and starting
// over under a new ballot, would never finish, on a perfectly healthy
// network of nodes 2 and 3 (found by an adversarial review). Pages are
// progress: each one restarts the candidate's election timer, and pages
// lost on the way are asked for again.
func TestPagedPhase1OutlastsElectionTimeout(t *testing.T) {
	for _, tc := range []struct {
		values, latency int
	}{
		{30, 0}, // control: zero latency, paging finishes within a tick
		{3, 1},  // control: few pages fit in one timeout
		{30, 1}, // 30 pages x 2 ticks = 60 ticks > 2E
	} {
		t.Run(fmt.Sprintf("values=%d,latency=%d", tc.values, tc.latency), func(t *testing.T) {
			c := backlog(t, tc.values)
			c.latency = tc.latency
			ticks := 0
			for ; ticks < 100*electionTicks && c.leader() == 0; ticks++ {
				c.tick()
			}
			if c.leader() == 0 {
				t.Fatalf("no leader among healthy nodes 2 and 3 after %d ticks (%d campaigns started)", ticks, len(c.ballots))
			}
			if len(c.ballots) > 2 {
				t.Errorf("node %d leads after %d ticks, but %d campaigns were started", c.leader(), ticks, len(c.ballots))
			}
		})
	}
}
