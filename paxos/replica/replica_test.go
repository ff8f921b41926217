package replica_test

import (
	"reflect"
	"sort"
	"testing"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/paxos/replica"
	"github.com/paxosd/paxosd/proposer"
)

// The references are to Lamport, "Paxos Made Simple" (2001).

const electionTicks = 10

// fixedRand always draws v (capped to n-1): node 1 gets the shortest
// election timeout, so the run is the same every time.
type fixedRand struct{ v int }

func (r fixedRand) Intn(n int) int { return min(r.v, n-1) }

// store is a node's disk: what every Persist wrote.
type store struct {
	promised paxos.Ballot
	entries  map[paxos.Slot]paxos.Entry
	commit   paxos.Slot
}

func (s *store) save(p paxos.Persist) {
	if !p.Promised.IsZero() {
		s.promised = p.Promised
	}
	for _, e := range p.Entries {
		s.entries[e.Slot] = e
	}
	if p.Commit != 0 {
		s.commit = p.Commit
	}
}

func (s *store) state() paxos.State {
	st := paxos.State{Promised: s.promised, Commit: s.commit}
	for _, e := range s.entries {
		st.Entries = append(st.Entries, e)
	}
	sort.Slice(st.Entries, func(i, j int) bool { return st.Entries[i].Slot < st.Entries[j].Slot })
	return st
}

// cluster is three replicas driven by hand: no clock, no goroutines, every
// message delivered in order.
type cluster struct {
	t       *testing.T
	ids     []paxos.NodeID
	nodes   map[paxos.NodeID]*replica.Replica
	stores  map[paxos.NodeID]*store
	applied map[paxos.NodeID][]paxos.Entry
	net     []paxos.Message
	// cut, if not 0, is a node whose messages (both ways) are dropped.
	cut paxos.NodeID
	// seen records every message delivered or dropped.
	seen []paxos.Message
}

func config(id paxos.NodeID) paxos.Config {
	jitter := electionTicks - 1
	if id == 1 {
		jitter = 0
	}
	return paxos.Config{ID: id, Members: []paxos.NodeID{1, 2, 3}, HeartbeatTicks: 2, ElectionTicks: electionTicks, Rand: fixedRand{jitter}}
}

func newCluster(t *testing.T) *cluster {
	c := &cluster{t: t, ids: []paxos.NodeID{1, 2, 3}, nodes: map[paxos.NodeID]*replica.Replica{},
		stores: map[paxos.NodeID]*store{}, applied: map[paxos.NodeID][]paxos.Entry{}}
	for _, id := range c.ids {
		c.stores[id] = &store{entries: map[paxos.Slot]paxos.Entry{}}
		c.restart(id)
	}
	return c
}

// restart rebuilds node id from its store alone, with an empty state
// machine (applied = 0).
func (c *cluster) restart(id paxos.NodeID) {
	r, err := replica.New(config(id), c.stores[id].state(), 0)
	if err != nil {
		c.t.Fatal(err)
	}
	c.nodes[id], c.applied[id] = r, nil
}

// ready handles one Ready of node id the way the node loop must: persist,
// then send, then apply. Before "sending", it checks that each Promise and
// Accepted is covered by what is now on disk.
func (c *cluster) ready(id paxos.NodeID) bool {
	rd := c.nodes[id].Ready()
	s := c.stores[id]
	s.save(rd.Persist)
	for _, m := range rd.AfterPersist {
		switch m.Type {
		case paxos.MsgPromise:
			if s.promised.Less(m.Ballot) {
				c.t.Fatalf("node %d sends %s with only %s promised on disk", id, m, s.promised)
			}
		case paxos.MsgAccepted:
			for _, slot := range m.Slots {
				if e, ok := s.entries[slot]; !ok || e.Ballot.Less(m.Ballot) || s.promised.Less(m.Ballot) {
					c.t.Fatalf("node %d sends %s before slot %d at %s is on disk (disk: %v, promised %s)", id, m, slot, m.Ballot, e, s.promised)
				}
			}
		}
	}
	c.net = append(c.net, rd.Messages...)
	c.net = append(c.net, rd.AfterPersist...)
	c.applied[id] = append(c.applied[id], rd.Decided...)
	return !rd.IsEmpty()
}

// stabilize runs Readys and delivers messages until nothing moves.
func (c *cluster) stabilize() {
	for i := 0; i < 1000; i++ {
		busy := false
		for _, id := range c.ids {
			busy = c.ready(id) || busy
		}
		msgs := c.net
		c.net = nil
		for _, m := range msgs {
			c.seen = append(c.seen, m)
			if m.To == c.cut || m.From == c.cut {
				continue
			}
			c.nodes[m.To].Step(m)
		}
		if !busy && len(msgs) == 0 {
			return
		}
	}
	c.t.Fatal("cluster did not stabilize")
}

func (c *cluster) tick() {
	for _, id := range c.ids {
		c.nodes[id].Tick()
	}
	c.stabilize()
}

func (c *cluster) leader() paxos.NodeID {
	for _, id := range c.ids {
		if c.nodes[id].Status().Role == proposer.Leader {
			return id
		}
	}
	return 0
}

// elect ticks until node 1 (the shortest timeout) leads and the others know.
func (c *cluster) elect() {
	for i := 0; i < 2*electionTicks; i++ {
		c.tick()
		if c.leader() != 0 && c.nodes[2].Status().Leader == 1 && c.nodes[3].Status().Leader == 1 {
			return
		}
	}
	c.t.Fatalf("no leader after %d ticks (leader=%d)", 2*electionTicks, c.leader())
}

// commit proposes cmd at the leader and ticks until every node applied it.
func (c *cluster) commit(cmd string) {
	if err := c.nodes[c.leader()].Propose([]byte(cmd)); err != nil {
		c.t.Fatal(err)
	}
	for i := 0; i < electionTicks; i++ {
		c.tick()
		done := true
		for _, id := range c.ids {
			a := c.applied[id]
			done = done && len(a) > 0 && reflect.DeepEqual(a[len(a)-1].Value.Cmds, [][]byte{[]byte(cmd)})
		}
		if done {
			return
		}
	}
	c.t.Fatalf("%q not applied everywhere: %v", cmd, c.applied)
}

// Reference: §2.4 and §3 (a leader is elected with timeouts, then chooses
// commands in successive instances). With ticks the only clock, node 1
// times out first and leads; a command it proposes is applied by all three
// at the same slot, and every Promise/Accepted left only after its state
// was on disk (§2.5).
func TestClusterElectsLeaderAndCommitsOnAll(t *testing.T) {
	c := newCluster(t)
	for i := 1; i < electionTicks; i++ {
		c.tick()
	}
	if c.leader() != 0 {
		t.Fatalf("node %d leads before any election timeout", c.leader())
	}
	c.elect()
	if c.leader() != 1 {
		t.Fatalf("leader %d, want 1 (shortest timeout)", c.leader())
	}
	c.commit("x")
	c.commit("y")
	for _, id := range c.ids {
		if !reflect.DeepEqual(c.applied[id], c.applied[1]) || len(c.applied[id]) != 2 {
			t.Errorf("node %d applied %v, node 1 %v", id, c.applied[id], c.applied[1])
		}
	}
}

// Reference: §2.2 (last paragraph) and §2.5 (acceptors keep their state in
// stable storage across restarts). A replica rebuilt from its persisted
// State with applied=0 delivers the chosen prefix again, in order, then
// keeps committing with the others.
func TestRestartedReplicaRedeliversChosenPrefix(t *testing.T) {
	c := newCluster(t)
	c.elect()
	c.commit("x")
	c.commit("y")
	before := c.applied[2]
	c.restart(2)
	if c.nodes[2].Status().Promised != c.stores[2].promised || c.nodes[2].Status().Commit != 2 {
		t.Fatalf("restarted status %+v, want promised %s and commit 2", c.nodes[2].Status(), c.stores[2].promised)
	}
	c.ready(2)
	if !reflect.DeepEqual(c.applied[2], before) {
		t.Fatalf("restarted node re-delivered %v, want %v", c.applied[2], before)
	}
	c.stabilize()
	c.commit("z")
	if !reflect.DeepEqual(c.applied[2], c.applied[1]) {
		t.Errorf("after restart node 2 applied %v, node 1 %v", c.applied[2], c.applied[1])
	}
}

// HasReady must report every Ready that has work: here the leader's learner
// chooses slot 1 when the quorum-completing Accepted is stepped, which
// produces no message, yet the next Ready holds Decided and Persist.Commit.
func TestHasReadyReportsNewlyChosenSlot(t *testing.T) {
	c := newCluster(t)
	c.elect()
	if err := c.nodes[1].Propose([]byte("x")); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10 && len(c.applied[1]) == 0; i++ {
		has := c.nodes[1].HasReady()
		if work := c.ready(1); work != has {
			t.Fatalf("HasReady() = %v, but Ready had work = %v", has, work)
		}
		c.ready(2)
		c.ready(3)
		msgs := c.net
		c.net = nil
		for _, m := range msgs {
			c.seen = append(c.seen, m)
			if m.To == c.cut || m.From == c.cut {
				continue
			}
			c.nodes[m.To].Step(m)
		}
	}
}
