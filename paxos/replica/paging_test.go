package replica_test

import (
	"fmt"
	"testing"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/paxos/replica"
	"github.com/paxosd/paxosd/proposer"
	"github.com/paxosd/paxosd/wire"
)

// framedCluster is three replicas whose network, like the TCP transport,
// drops every message that encodes larger than the frame limit.
type framedCluster struct {
	t       *testing.T
	nodes   map[paxos.NodeID]*replica.Replica
	stores  map[paxos.NodeID]*store
	applied map[paxos.NodeID][]paxos.Entry
	down    map[paxos.NodeID]bool
	cut     map[[2]paxos.NodeID]bool
	// largest is the largest frame body sent; oversized counts drops.
	largest, oversized int
	promisePages       int
}

const frameLimit = 16 << 10

func newFramedCluster(t *testing.T) *framedCluster {
	c := &framedCluster{t: t, nodes: map[paxos.NodeID]*replica.Replica{}, stores: map[paxos.NodeID]*store{},
		applied: map[paxos.NodeID][]paxos.Entry{}, down: map[paxos.NodeID]bool{}, cut: map[[2]paxos.NodeID]bool{}}
	// Node 1 times out first, then node 3, then node 2.
	jitter := map[paxos.NodeID]int{1: 0, 2: 9, 3: 3}
	for id := paxos.NodeID(1); id <= 3; id++ {
		c.stores[id] = &store{entries: map[paxos.Slot]paxos.Entry{}}
		cfg := paxos.Config{ID: id, Members: []paxos.NodeID{1, 2, 3}, HeartbeatTicks: 2, ElectionTicks: electionTicks,
			WindowSlots: 64, BatchBytesMax: 1 << 10, MessageBytesMax: frameLimit, Rand: fixedRand{jitter[id]}}
		r, err := replica.New(cfg, paxos.State{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		c.nodes[id] = r
	}
	return c
}

func (c *framedCluster) stabilize() {
	for i := 0; i < 1000; i++ {
		var net []paxos.Message
		for id, r := range c.nodes {
			if c.down[id] {
				continue
			}
			rd := r.Ready()
			c.stores[id].save(rd.Persist)
			net = append(net, rd.Messages...)
			net = append(net, rd.AfterPersist...)
			c.applied[id] = append(c.applied[id], rd.Decided...)
		}
		if len(net) == 0 {
			return
		}
		for _, m := range net {
			if c.down[m.To] || c.cut[[2]paxos.NodeID{m.From, m.To}] {
				continue
			}
			if m.From != m.To {
				size := len(wire.EncodeMessage(nil, m))
				c.largest = max(c.largest, size)
				if size > frameLimit {
					c.oversized++
					continue
				}
				if m.Type == paxos.MsgPromise {
					c.promisePages++
				}
			}
			c.nodes[m.To].Step(m)
		}
	}
	c.t.Fatal("cluster did not settle")
}

func (c *framedCluster) tick() {
	for id, r := range c.nodes {
		if !c.down[id] {
			r.Tick()
		}
	}
	c.stabilize()
}

// A Promise reports every value the acceptor accepted above the
// candidate's watermark, which can be far more than one frame holds. Node
// 2 accepts 40 values of 1,000 bytes from leader 1 (whose Accepteds never
// arrive, so nothing is chosen), then node 1 dies and node 3 campaigns. Its
// Phase 1 needs node 2's Promise, 40 KB against a 16 KiB frame limit: sent
// whole, the transport drops it on every attempt and no leader is ever
// elected. Paged, node 3 leads, recovers all 40 values, and no frame is
// over the limit.
func TestPromiseOverFrameLimitIsPaged(t *testing.T) {
	c := newFramedCluster(t)
	for i := 0; i < 2*electionTicks && c.nodes[1].Status().Role != proposer.Leader; i++ {
		c.tick()
	}
	if c.nodes[1].Status().Role != proposer.Leader {
		t.Fatal("node 1 did not lead")
	}
	c.cut[[2]paxos.NodeID{1, 3}] = true // node 3 gets nothing
	c.cut[[2]paxos.NodeID{2, 1}] = true // node 1 hears no vote
	want := map[string]bool{}
	for i := 0; i < 40; i++ {
		v := fmt.Sprintf("%04d", i) + string(make([]byte, 996))
		want[v] = true
		if err := c.nodes[1].Propose([]byte(v)); err != nil {
			t.Fatal(err)
		}
		c.stabilize()
	}
	if st := c.nodes[2].Status(); st.Commit != 0 {
		t.Fatalf("node 2's watermark is %d; the test needs the values unchosen", st.Commit)
	}
	c.down[1] = true
	c.cut = map[[2]paxos.NodeID]bool{}
	for i := 0; i < 8*electionTicks && len(c.applied[3]) < 40; i++ {
		c.tick()
	}
	if got := c.nodes[3].Status(); got.Role != proposer.Leader {
		t.Fatalf("no leader after node 1 died: node 3 %+v; %d frames over the limit dropped (largest %d bytes)", got, c.oversized, c.largest)
	}
	for _, id := range []paxos.NodeID{2, 3} {
		n := 0
		for _, e := range c.applied[id] {
			for _, cmd := range e.Value.Cmds {
				if !want[string(cmd)] {
					t.Fatalf("node %d applied a value nobody proposed at slot %d", id, e.Slot)
				}
				n++
			}
		}
		if n != 40 {
			t.Errorf("node %d applied %d of the 40 values", id, n)
		}
	}
	if c.oversized > 0 || c.largest > frameLimit {
		t.Errorf("%d frames over the %d-byte limit (largest %d)", c.oversized, frameLimit, c.largest)
	}
	if c.promisePages < 3 {
		t.Errorf("only %d Promise frames: 40 KB of entries should have taken several pages", c.promisePages)
	}
	t.Logf("largest frame %d bytes, %d Promise frames", c.largest, c.promisePages)
}
