package replica_test

import (
	"fmt"
	"testing"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/paxos/replica"
	"github.com/paxosd/paxosd/proposer"
)

// lazyCluster drives three replicas the way the production node does:
// Ready.Messages leave at once, the Persist is synced later (when the test
// says so), and Ready.AfterPersist waits for that sync. A crash drops what
// was not synced. The network holds messages until the test delivers them,
// and links can be cut one way.
type lazyCluster struct {
	t        *testing.T
	ids      []paxos.NodeID
	jitter   map[paxos.NodeID]int
	nodes    map[paxos.NodeID]*replica.Replica
	stores   map[paxos.NodeID]*store
	unsynced map[paxos.NodeID][]paxos.Persist
	held     map[paxos.NodeID][]paxos.Message
	applied  map[paxos.NodeID][]paxos.Entry
	net      []paxos.Message
	cut      map[[2]paxos.NodeID]bool // from, to
	// hold, when it returns true for a message, keeps it in the network
	// while others are delivered.
	hold func(paxos.Message) bool
}

// newLazyCluster starts three replicas; jitter[id] sets each one's
// election timeout to ElectionTicks + jitter.
func newLazyCluster(t *testing.T, jitter map[paxos.NodeID]int) *lazyCluster {
	c := &lazyCluster{t: t, ids: []paxos.NodeID{1, 2, 3}, jitter: jitter,
		nodes: map[paxos.NodeID]*replica.Replica{}, stores: map[paxos.NodeID]*store{},
		unsynced: map[paxos.NodeID][]paxos.Persist{}, held: map[paxos.NodeID][]paxos.Message{},
		applied: map[paxos.NodeID][]paxos.Entry{}, cut: map[[2]paxos.NodeID]bool{}}
	for _, id := range c.ids {
		c.stores[id] = &store{entries: map[paxos.Slot]paxos.Entry{}}
		c.restart(id)
	}
	return c
}

func (c *lazyCluster) restart(id paxos.NodeID) {
	cfg := paxos.Config{ID: id, Members: c.ids, HeartbeatTicks: 2, ElectionTicks: electionTicks, Rand: fixedRand{c.jitter[id]}}
	r, err := replica.New(cfg, c.stores[id].state(), 0)
	if err != nil {
		c.t.Fatal(err)
	}
	c.nodes[id], c.applied[id] = r, nil
	c.unsynced[id], c.held[id] = nil, nil
}

// crash loses node id's unsynced writes and held messages, and restarts it
// from what it synced.
func (c *lazyCluster) crash(id paxos.NodeID) { c.restart(id) }

// ready takes one Ready of node id: messages leave, the write waits.
func (c *lazyCluster) ready(id paxos.NodeID) {
	rd := c.nodes[id].Ready()
	if !rd.Persist.IsEmpty() {
		c.unsynced[id] = append(c.unsynced[id], rd.Persist)
	}
	c.net = append(c.net, rd.Messages...)
	if len(c.unsynced[id]) > 0 {
		c.held[id] = append(c.held[id], rd.AfterPersist...)
	} else {
		c.net = append(c.net, rd.AfterPersist...)
	}
	c.applied[id] = append(c.applied[id], rd.Decided...)
}

// sync makes node id's writes durable and releases what waited for them.
func (c *lazyCluster) sync(id paxos.NodeID) {
	for _, p := range c.unsynced[id] {
		c.stores[id].save(p)
	}
	c.unsynced[id] = nil
	c.net = append(c.net, c.held[id]...)
	c.held[id] = nil
}

// run delivers messages and takes Readys until nothing moves; nodes in
// syncing sync after every Ready, the others never do.
func (c *lazyCluster) run(syncing ...paxos.NodeID) {
	for i := 0; i < 1000; i++ {
		for _, id := range c.ids {
			c.ready(id)
		}
		for _, id := range syncing {
			c.sync(id)
		}
		var keep, now []paxos.Message
		for _, m := range c.net {
			if c.hold != nil && c.hold(m) {
				keep = append(keep, m)
			} else {
				now = append(now, m)
			}
		}
		c.net = keep
		if len(now) == 0 {
			return
		}
		for _, m := range now {
			if !c.cut[[2]paxos.NodeID{m.From, m.To}] {
				c.nodes[m.To].Step(m)
			}
		}
	}
	c.t.Fatal("cluster did not settle")
}

func (c *lazyCluster) tick(syncing ...paxos.NodeID) {
	for _, id := range c.ids {
		c.nodes[id].Tick()
	}
	c.run(syncing...)
}

func (c *lazyCluster) isolate(id paxos.NodeID, cut bool) {
	for _, o := range c.ids {
		if o != id {
			c.cut[[2]paxos.NodeID{id, o}], c.cut[[2]paxos.NodeID{o, id}] = cut, cut
		}
	}
}

// agree fails the test if two nodes applied different values at a slot.
func (c *lazyCluster) agree() {
	c.t.Helper()
	chosen := map[paxos.Slot]string{}
	for _, id := range c.ids {
		for _, e := range c.applied[id] {
			v := fmt.Sprint(e.Value)
			if len(e.Value.Cmds) > 0 {
				v = string(e.Value.Cmds[0])
			}
			if prev, ok := chosen[e.Slot]; ok && prev != v {
				c.t.Fatalf("slot %d chosen twice: %s, and %s on node %d", e.Slot, prev, v, id)
			}
			chosen[e.Slot] = v
		}
	}
}

func (c *lazyCluster) role(id paxos.NodeID) proposer.Role { return c.nodes[id].Status().Role }

// Reference: §2.5 (an acceptor records its response in stable storage
// before sending it) and the rule that a proposer uses a ballot once
// (§2.5: "a proposer remembers the highest-numbered proposal it has tried
// to issue"). Node 1 campaigns while its disk is slow: the Promises of 2
// and 3 make it leader while its own promise is still unsynced, it
// proposes "v", node 2 stores it, and node 1 crashes before its sync. The
// restarted node 1 must not campaign under the same ballot again: if it
// did, it would win it on {1, 3}, get "w" chosen at the same slot, and
// node 2 — holding "v" at that very ballot — would take the leader's
// watermark as choosing "v". The fix: a candidate's Prepares leave only
// once its own promise of the ballot is durable.
func TestCandidateCrashBeforeSyncNeverReusesBallot(t *testing.T) {
	c := newLazyCluster(t, map[paxos.NodeID]int{1: 0, 2: 9, 3: 9})
	// Node 1 campaigns; 2 and 3 sync at once, node 1 never does.
	for i := 0; i < 2*electionTicks && c.role(1) != proposer.Leader; i++ {
		c.tick(2, 3)
	}
	if c.role(1) == proposer.Leader {
		if err := c.nodes[1].Propose([]byte("v")); err != nil {
			t.Fatal(err)
		}
		c.cut[[2]paxos.NodeID{1, 3}] = true // only node 2 stores v
		c.run(2, 3)
		c.cut[[2]paxos.NodeID{1, 3}] = false
	}
	c.crash(1)
	// Node 2 is slow now (cut off): someone leads on {1, 3} — node 1 again,
	// whose timeout is the shortest, if its first campaign went anywhere.
	c.cut[[2]paxos.NodeID{1, 2}], c.cut[[2]paxos.NodeID{2, 1}] = true, true
	leader := paxos.NodeID(0)
	for i := 0; i < 4*electionTicks && leader == 0; i++ {
		c.tick(1, 2, 3)
		for _, id := range []paxos.NodeID{1, 3} {
			if c.role(id) == proposer.Leader {
				leader = id
			}
		}
	}
	if leader == 0 {
		t.Fatalf("nobody leads nodes 1 and 3: %+v / %+v", c.nodes[1].Status(), c.nodes[3].Status())
	}
	if err := c.nodes[leader].Propose([]byte("w")); err != nil {
		t.Fatal(err)
	}
	c.run(1, 2, 3)
	// Node 2 hears the leader's watermark.
	c.cut[[2]paxos.NodeID{1, 2}], c.cut[[2]paxos.NodeID{2, 1}] = false, false
	for i := 0; i < electionTicks; i++ {
		c.tick(1, 2, 3)
	}
	c.agree()
	for _, id := range c.ids {
		if len(c.applied[id]) == 0 {
			t.Fatalf("nothing applied on node %d: %v", id, c.applied)
		}
	}
}

// The leader's lease rests on its followers refusing, for an election
// timeout after they heard from it, to help anyone else take over: Prepares
// as well as PreVotes. Node 1 is cut off and steps down; node 3 times out
// first, node 2 grants its PreVote, and node 3's Prepare is delayed. Node 1
// comes back, wins node 2 and holds a lease on node 2's acknowledgement.
// When node 3's Prepare finally reaches node 2, node 2 must refuse it: if
// it promised, node 3 would lead and get a write chosen while node 1 still
// answers reads under its lease, from a state without that write.
func TestPrepareRefusedInLease(t *testing.T) {
	c := newLazyCluster(t, map[paxos.NodeID]int{1: 0, 2: 9, 3: 5})
	all := []paxos.NodeID{1, 2, 3}
	for i := 0; i < 2*electionTicks && c.role(1) != proposer.Leader; i++ {
		c.tick(all...)
	}
	if c.role(1) != proposer.Leader {
		t.Fatal("node 1 did not lead")
	}
	// Node 1 is cut off: it steps down; node 3 times out first.
	c.isolate(1, true)
	delayed := func(m paxos.Message) bool { return m.Type == paxos.MsgPrepare && m.From == 3 && m.To == 2 }
	c.hold = delayed
	for i := 0; i < 3*electionTicks && c.role(3) != proposer.Candidate; i++ {
		c.tick(all...)
	}
	if c.role(3) != proposer.Candidate {
		t.Fatalf("want node 3 campaigning: roles %s %s %s", c.role(1), c.role(2), c.role(3))
	}
	// Node 1 comes back (to node 2 only) and leads (again, or still) on
	// node 2's acknowledgements.
	c.cut[[2]paxos.NodeID{1, 2}], c.cut[[2]paxos.NodeID{2, 1}] = false, false
	leaseTicks := int64(electionTicks*9/10 - 2) // as the node computes it
	for i := 0; i < 3*electionTicks; i++ {
		c.tick(all...)
		if st := c.nodes[1].Status(); st.LeaseTick >= 0 && st.Ticks-st.LeaseTick < leaseTicks {
			break
		}
	}
	st := c.nodes[1].Status()
	if st.Role != proposer.Leader || st.LeaseTick < 0 {
		t.Fatalf("node 1 did not lead again with a lease: %+v", st)
	}
	// Node 3's Prepare arrives now.
	c.hold = nil
	c.run(all...)
	if c.role(3) == proposer.Leader {
		if err := c.nodes[3].Propose([]byte("y")); err != nil {
			t.Fatal(err)
		}
		c.run(all...)
	}
	st = c.nodes[1].Status()
	inLease := st.Role == proposer.Leader && st.LeaseTick >= 0 && st.Ticks-st.LeaseTick < leaseTicks
	for _, e := range c.applied[3] {
		if inLease && len(e.Value.Cmds) > 0 && string(e.Value.Cmds[0]) == "y" {
			t.Fatalf("node 3 got a write chosen at slot %d while node 1 still held its lease (lease tick %d, now %d)", e.Slot, st.LeaseTick, st.Ticks)
		}
	}
	if c.role(3) == proposer.Leader {
		t.Errorf("node 3 leads while node 1's lease holds")
	}
}
