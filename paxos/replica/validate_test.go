package replica_test

import (
	"testing"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/proposer"
)

// Messages no honest member sends are dropped: they change nothing, the
// node answers nothing, and the cluster goes on committing. Among them are
// the crafted frames that used to stop a node or make it walk billions of
// slots: an entry at slot 0, a slot far beyond anything proposed, entries
// out of order, a value of unknown kind, and a Decide from a node that
// does not lead the ballot it names.
func TestMalformedPeerMessagesAreDropped(t *testing.T) {
	c := newCluster(t)
	c.elect()
	c.commit("x")
	l := c.leader()
	follower := paxos.NodeID(2)
	if l == follower {
		follower = 3
	}
	st := c.nodes[follower].Status()
	huge := paxos.Slot(1) << 62
	batch := paxos.Value{Kind: paxos.ValueBatch, Cmds: [][]byte{[]byte("evil")}}
	bal := st.Ballot
	other := 6 - follower - l // the third node: not the ballot's leader
	for _, m := range []paxos.Message{
		{Type: paxos.MsgAccept, Ballot: bal, Entries: []paxos.Entry{{Slot: 0, Ballot: bal, Value: batch}}},
		{Type: paxos.MsgAccept, Ballot: bal, Entries: []paxos.Entry{{Slot: huge, Ballot: bal, Value: batch}}},
		{Type: paxos.MsgAccept, Ballot: bal, Entries: []paxos.Entry{{Slot: 5, Ballot: bal, Value: batch}, {Slot: 4, Ballot: bal, Value: batch}}},
		{Type: paxos.MsgAccept, Ballot: bal, Entries: []paxos.Entry{{Slot: 5, Ballot: bal, Value: paxos.Value{Kind: 7}}}},
		{Type: paxos.MsgAccept, Ballot: bal, Entries: []paxos.Entry{{Slot: 5, Ballot: bal, Value: paxos.Value{Kind: paxos.ValueNoop, Cmds: [][]byte{[]byte("x")}}}}},
		{Type: paxos.MsgDecide, Ballot: bal, Commit: 9, Entries: []paxos.Entry{{Slot: 2, Ballot: bal, Value: batch}}, From: other},
		{Type: paxos.MsgPromise, Ballot: paxos.Ballot{Round: 99, Node: l}, Slot: 2, Entries: []paxos.Entry{{Slot: huge, Ballot: bal, Value: batch}}},
		{Type: paxos.MsgPromise, Ballot: paxos.Ballot{Round: 99, Node: l}, Slot: 5, Entries: []paxos.Entry{{Slot: 3, Ballot: bal, Value: batch}}},
	} {
		if m.From == 0 {
			m.From = l
		}
		m.To = follower
		before := c.nodes[follower].Status()
		c.nodes[follower].Step(m)
		rd := c.nodes[follower].Ready()
		if !rd.IsEmpty() {
			t.Errorf("%s: the node reacted: persist %+v, messages %v %v, decided %v", m, rd.Persist, rd.Messages, rd.AfterPersist, rd.Decided)
		}
		if after := c.nodes[follower].Status(); after != before {
			t.Errorf("%s changed the node's status:\n %+v\n %+v", m, before, after)
		}
	}
	c.commit("y")
	if c.nodes[follower].Status().Role != proposer.Follower {
		t.Errorf("follower %d is %s", follower, c.nodes[follower].Status().Role)
	}
}
