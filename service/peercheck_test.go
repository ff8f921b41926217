package service

import (
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// badPeerCase is a message no honest member sends, from node 3 (unless
// From says otherwise) to node 1 of a three-member cluster, with the
// reason and the words the peer check refuses it with.
type badPeerCase struct {
	name   string
	m      paxos.Message
	reason string
	text   string
}

// badPeerMessages is one case per check of peercheck.go: slots 0 and
// slots beyond any reach, entries and slots out of order, lists where a
// type carries none, ballots out of range or not their owner's, values of
// no kind, forged commands, a sender that is not a member.
func badPeerMessages() []badPeerCase {
	b3, b1 := paxos.Ballot{Round: 4, Node: 3}, paxos.Ballot{Round: 4, Node: 1}
	batch := paxos.Value{Kind: paxos.ValueBatch, Cmds: [][]byte{[]byte("x")}}
	entries := func(slots ...paxos.Slot) []paxos.Entry {
		var es []paxos.Entry
		for _, s := range slots {
			es = append(es, paxos.Entry{Slot: s, Ballot: b3, Value: batch})
		}
		return es
	}
	forward := func(c statemachine.Command) paxos.Message {
		return paxos.Message{Type: paxos.MsgForward, Cmds: [][]byte{statemachine.EncodeCommand(&statemachine.Command{
			ClientID: 7, Seq: 1, Op: statemachine.OpPut, Key: "k"}), statemachine.EncodeCommand(&c)}}
	}
	far := paxos.Slot(9 + 1 + paxos.SlotsAheadMax + 1)
	manySlots := make([]paxos.Slot, 5000)
	for i := range manySlots {
		manySlots[i] = paxos.Slot(i + 1)
	}
	cases := []badPeerCase{
		{"accept-entry-at-slot-0", paxos.Message{Type: paxos.MsgAccept, Ballot: b3, Commit: 9, Entries: entries(0)},
			rejectSlot, "Accept entry 1 at slot 0: slots start at 1"},
		{"accept-entry-far-ahead", paxos.Message{Type: paxos.MsgAccept, Ballot: b3, Commit: 9, Entries: entries(10, far)},
			rejectSlot, "Accept entry 2 at slot 1048587, outside 1..1048586"},
		{"accept-entries-out-of-order", paxos.Message{Type: paxos.MsgAccept, Ballot: b3, Commit: 9, Entries: entries(11, 10)},
			rejectOrder, "Accept entry 2 at slot 10, after slot 11: entries must be in increasing slot order"},
		{"accept-entry-twice", paxos.Message{Type: paxos.MsgAccept, Ballot: b3, Commit: 9, Entries: entries(10, 10)},
			rejectOrder, "Accept entry 2 at slot 10, after slot 10"},
		{"accept-value-of-unknown-kind", paxos.Message{Type: paxos.MsgAccept, Ballot: b3, Commit: 9,
			Entries: []paxos.Entry{{Slot: 10, Ballot: b3, Value: paxos.Value{Kind: 7}}}},
			rejectValue, "Accept entry 1: value of unknown kind 7"},
		{"accept-noop-with-commands", paxos.Message{Type: paxos.MsgAccept, Ballot: b3, Commit: 9,
			Entries: []paxos.Entry{{Slot: 10, Ballot: b3, Value: paxos.Value{Kind: paxos.ValueNoop, Cmds: [][]byte{[]byte("x")}}}}},
			rejectValue, "Accept entry 1: a no-op with 1 commands"},
		{"accept-under-another-nodes-ballot", paxos.Message{Type: paxos.MsgAccept, Ballot: b1, Commit: 9, Entries: entries(10)},
			rejectBallot, "Accept from node 3 under ballot 4.1, which is not node 3's"},
		{"accept-entry-ballot-round-0", paxos.Message{Type: paxos.MsgAccept, Ballot: b3, Commit: 9,
			Entries: []paxos.Entry{{Slot: 10, Ballot: paxos.Ballot{Node: 2}, Value: batch}}},
			rejectBallot, "Accept entry 1 ballot 0.2: no proposer makes round 0 or node 0"},
		{"decide-beyond-its-commit", paxos.Message{Type: paxos.MsgDecide, Ballot: b3, Commit: 12, Entries: entries(12, 13)},
			rejectSlot, "Decide entry 2 at slot 13, outside 1..12"},
		{"decide-entry-at-slot-0", paxos.Message{Type: paxos.MsgDecide, Ballot: b3, Commit: 12, Entries: entries(0)},
			rejectSlot, "Decide entry 1 at slot 0"},
		{"decide-of-another-leader", paxos.Message{Type: paxos.MsgDecide, Ballot: paxos.Ballot{Round: 4, Node: 2}, Commit: 12, Entries: entries(12)},
			rejectBallot, "Decide from node 3 under ballot 4.2, which is not node 3's"},
		{"promise-entry-below-its-slot", paxos.Message{Type: paxos.MsgPromise, Ballot: b1, Slot: 10, Entries: entries(9)},
			rejectSlot, "Promise entry 1 at slot 9, outside 10..4611686018427387904"},
		{"promise-more-without-entries", paxos.Message{Type: paxos.MsgPromise, Ballot: b1, Slot: 10, More: true},
			rejectShape, "a Promise page that says more follows but holds no entry"},
		{"promise-from-slot-0", paxos.Message{Type: paxos.MsgPromise, Ballot: b1},
			rejectSlot, "a Promise from slot 0"},
		{"promise-for-another-candidate", paxos.Message{Type: paxos.MsgPromise, Ballot: paxos.Ballot{Round: 4, Node: 2}, Slot: 10},
			rejectBallot, "Promise from node 3 under ballot 4.2, which is not node 1's"},
		{"prepare-from-slot-0", paxos.Message{Type: paxos.MsgPrepare, Ballot: b3},
			rejectSlot, "a Prepare from slot 0: slots start at 1"},
		{"prepare-transfer-not-below", paxos.Message{Type: paxos.MsgPrepare, Ballot: b3, Slot: 10, Transfer: paxos.Ballot{Round: 5, Node: 1}},
			rejectBallot, "a Prepare under 4.3 naming a handed-over leadership 5.1 that is not below it"},
		{"prepare-round-max-uint64", paxos.Message{Type: paxos.MsgPrepare, Ballot: paxos.Ballot{Round: math.MaxUint64, Node: 3}, Slot: 10},
			rejectBallot, "ballot 18446744073709551615.3: round beyond 281474976710656"},
		{"accept-round-max-uint64", paxos.Message{Type: paxos.MsgAccept, Ballot: paxos.Ballot{Round: math.MaxUint64, Node: 3}, Commit: 9, Entries: entries(10)},
			rejectBallot, "ballot 18446744073709551615.3: round beyond 281474976710656"},
		{"prevote-round-0", paxos.Message{Type: paxos.MsgPreVote, Ballot: paxos.Ballot{Node: 3}},
			rejectBallot, "ballot 0.3: no proposer makes round 0 or node 0"},
		{"nack-zero-ballot", paxos.Message{Type: paxos.MsgNack, Slot: 10},
			rejectBallot, "a Nack carries the higher ballot its sender promised, never the zero ballot"},
		{"accepted-slot-0", paxos.Message{Type: paxos.MsgAccepted, Ballot: b1, Slots: []paxos.Slot{0}},
			rejectSlot, "Accepted slot 1 is slot 0"},
		{"accepted-out-of-order", paxos.Message{Type: paxos.MsgAccepted, Ballot: b1, Slots: []paxos.Slot{10, 12, 11}},
			rejectOrder, "Accepted slot 3 is 11, after 12: slots must increase"},
		{"accepted-further-apart-than-an-accept", paxos.Message{Type: paxos.MsgAccepted, Ballot: b1, Slots: []paxos.Slot{1, 2 + paxos.SlotsAheadMax}},
			rejectSlot, "Accepted slots 1 to 1048578: further apart than one Accept reaches"},
		{"accepted-huge-slot", paxos.Message{Type: paxos.MsgAccepted, Ballot: b1, Slots: []paxos.Slot{1 << 63}},
			rejectSlot, "beyond the largest slot a cluster reaches"},
		{"heartbeat-commit-huge", paxos.Message{Type: paxos.MsgHeartbeat, Ballot: b3, Commit: math.MaxUint64},
			rejectSlot, "commit 18446744073709551615: beyond the largest slot a cluster reaches (4611686018427387904)"},
		{"heartbeat-with-entries", paxos.Message{Type: paxos.MsgHeartbeat, Ballot: b3, Commit: 9, Entries: entries(10)},
			rejectShape, "a Heartbeat carries no entries; this one has 1"},
		{"heartbeat-ack-with-5000-slots", paxos.Message{Type: paxos.MsgHeartbeatAck, Ballot: b1, Slots: manySlots},
			rejectShape, "a HeartbeatAck carries at most one slot; this one has 5000"},
		{"heartbeat-ack-naming-slot-0", paxos.Message{Type: paxos.MsgHeartbeatAck, Ballot: b1, Slots: []paxos.Slot{0}},
			rejectSlot, "a HeartbeatAck names slot 0: not a slot a Decide carries"},
		{"heartbeat-with-slots", paxos.Message{Type: paxos.MsgHeartbeat, Ballot: b3, Slots: []paxos.Slot{4}},
			rejectShape, "a Heartbeat carries no slots; this one has 1"},
		{"nack-with-commands", paxos.Message{Type: paxos.MsgNack, Ballot: b1, Cmds: [][]byte{[]byte("x")}},
			rejectShape, "a Nack carries no commands; this one has 1"},
		{"snapshot-truncated-beyond-commit", paxos.Message{Type: paxos.MsgSnapshot, Ballot: b3, Slot: 900, Commit: 800},
			rejectSlot, "a Snapshot offer truncated at slot 900 with watermark 800"},
		{"snapshot-truncated-at-0", paxos.Message{Type: paxos.MsgSnapshot, Ballot: b3, Commit: 800},
			rejectSlot, "a Snapshot offer truncated at slot 0"},
		{"snapshot-offer-address-of-2000-bytes", paxos.Message{Type: paxos.MsgSnapshot, Ballot: b3, Slot: 700, Commit: 800, Addr: strings.Repeat("h", 2000)},
			rejectShape, "a Snapshot offer's address of 2000 bytes: at most 1024"},
		{"heartbeat-with-an-address", paxos.Message{Type: paxos.MsgHeartbeat, Ballot: b3, Commit: 9, Addr: "10.0.0.3:7401"},
			rejectShape, "a Heartbeat carries no address; this one has"},
		{"timeout-now-of-another-leader", paxos.Message{Type: paxos.MsgTimeoutNow, Ballot: b1},
			rejectBallot, "TimeoutNow from node 3 under ballot 4.1, which is not node 3's"},
		{"forward-clock-command", forward(statemachine.Command{Op: statemachine.OpClock, Now: 1 << 50}),
			rejectCommand, "forwarded command 2 is the internal clock command, which only a leader proposes"},
		{"forward-level-command", forward(statemachine.Command{Op: statemachine.OpLevel, Level: 99}),
			rejectCommand, "forwarded command 2 is the internal level command"},
		{"forward-state-hash-of-node-0", forward(statemachine.Command{Op: statemachine.OpStateHash, HashSlot: 64, StateHash: 1}),
			rejectCommand, "forwarded command 2 is a state-check report of node 0 for slot 64: reports come from a node id"},
		{"forward-state-hash-for-slot-0", forward(statemachine.Command{Op: statemachine.OpStateHash, StateHash: 1, Reporter: 3}),
			rejectCommand, "forwarded command 2 is a state-check report of node 3 for slot 0"},
	}
	for i := range cases {
		if cases[i].m.From == 0 {
			cases[i].m.From = fakePeer
		}
		cases[i].m.To = 1
	}
	return cases
}

// TestPeerCheckRefuses: each bad message is refused, for its reason, with
// its words.
func TestPeerCheckRefuses(t *testing.T) {
	c := newPeerChecker(1)
	// A message claiming to come from this node itself (a peer's hello
	// cannot name it: it is refused before any message).
	if err := c.check(paxos.Message{Type: paxos.MsgHeartbeat, From: 1, To: 1, Ballot: paxos.Ballot{Round: 4, Node: 1}}); peerRejectReason(err) != rejectMember {
		t.Errorf("a message from this node itself: %v, want reason %s", err, rejectMember)
	}
	// One from a node that is not (yet, as far as this node knows) a
	// member is heard: a lagging node does not know the members added
	// since.
	if err := c.check(paxos.Message{Type: paxos.MsgHeartbeat, From: 4, To: 1, Ballot: paxos.Ballot{Round: 4, Node: 4}}); err != nil {
		t.Errorf("a heartbeat from node 4, unknown: %v, want it heard", err)
	}
	for _, tc := range badPeerMessages() {
		err := c.check(tc.m)
		if err == nil {
			t.Errorf("%s: passed: %s", tc.name, tc.m)
			continue
		}
		if got := peerRejectReason(err); got != tc.reason || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s: %v (reason %s)\nwant reason %s and %q", tc.name, err, got, tc.reason, tc.text)
		}
	}
}

// TestPeerCheckPassesHonestMessages: a message of every type as the core
// builds it, and the honest messages at the edges of the bounds, pass.
// (The node simulation checks every message its nodes send, too.)
func TestPeerCheckPassesHonestMessages(t *testing.T) {
	c := newPeerChecker(1)
	b3, b1 := paxos.Ballot{Round: 4, Node: 3}, paxos.Ballot{Round: 4, Node: 1}
	batch := paxos.Value{Kind: paxos.ValueBatch, Cmds: [][]byte{[]byte("x")}}
	at := func(s paxos.Slot, b paxos.Ballot) paxos.Entry { return paxos.Entry{Slot: s, Ballot: b, Value: batch} }
	config := paxos.ConfigValue(paxos.NewMembership(map[paxos.NodeID]string{1: "a:1", 2: "b:2", 3: "c:3", 4: "d:4"}))
	edges := []paxos.Message{
		// The last slot a Phase 1 reaches, one past the leader's watermark.
		{Type: paxos.MsgAccept, Ballot: b3, Commit: 9, Entries: []paxos.Entry{at(9+1+paxos.SlotsAheadMax, b3)}},
		// A follower far behind gets Accepts far ahead of its own watermark;
		// chosen slots below the leader's are resent too.
		{Type: paxos.MsgAccept, Ballot: b3, Commit: 1 << 40, Entries: []paxos.Entry{at(5, b3), at(1<<40+1, b3)}},
		// An acceptor that lagged, then accepted far ahead, reports both.
		{Type: paxos.MsgPromise, Ballot: b1, Slot: 10, Entries: []paxos.Entry{at(10, b3), at(10+4*paxos.SlotsAheadMax, b3)}},
		// ... and entries it learned chosen under ballots above the one it
		// promises, or under a member replaced since (node 9).
		{Type: paxos.MsgPromise, Ballot: b1, Slot: 10, Commit: 11, Entries: []paxos.Entry{at(10, paxos.Ballot{Round: 9, Node: 2}), at(11, paxos.Ballot{Round: 1, Node: 9})}},
		{Type: paxos.MsgNack, Ballot: paxos.Ballot{Round: 2, Node: 9}},
		{Type: paxos.MsgDecide, Ballot: b3, Commit: 12, Entries: []paxos.Entry{at(12, paxos.Ballot{Round: 1, Node: 9})}},
		{Type: paxos.MsgSnapshot, Ballot: b3, Slot: 800, Commit: 800},
		// A ballot-less offer (a member answering a PreVote) with its
		// sender's address (version 18).
		{Type: paxos.MsgSnapshot, Slot: 800, Commit: 800, Addr: "node3.example:7401"},
		{Type: paxos.MsgHeartbeat, Ballot: b3, Commit: 9}, // replica.go's heartbeat without a round
		{Type: paxos.MsgHeartbeat, Ballot: paxos.Ballot{Round: paxos.RoundMax, Node: 3}, Commit: paxos.SlotMax},
		{Type: paxos.MsgAccepted, Ballot: b1, Slots: []paxos.Slot{1, 1 + paxos.SlotsAheadMax}},
		// An ack to a Decide naming its last slot, beyond the follower's
		// watermark (version 20).
		{Type: paxos.MsgHeartbeatAck, Ballot: b1, Commit: 9, Slots: []paxos.Slot{40}},
		// A membership change, proposed, promised and chosen.
		{Type: paxos.MsgAccept, Ballot: b3, Commit: 9, Entries: []paxos.Entry{{Slot: 10, Ballot: b3, Value: config}}},
		{Type: paxos.MsgPromise, Ballot: b1, Slot: 10, Entries: []paxos.Entry{{Slot: 10, Ballot: b3, Value: config}}},
		{Type: paxos.MsgDecide, Ballot: b3, Commit: 10, Entries: []paxos.Entry{{Slot: 10, Ballot: b3, Value: config}}},
		// A command that does not decode (a newer member's, say) is the
		// log's to reject.
		{Type: paxos.MsgForward, Cmds: [][]byte{{0xc1}, {}}},
		// A member that led, took in another's state-check report and
		// stepped down passes it on (the node simulation's seed 517).
		{Type: paxos.MsgForward, Cmds: [][]byte{statemachine.EncodeCommand(&statemachine.Command{
			Op: statemachine.OpStateHash, HashSlot: 64, StateHash: 1, Reporter: 2})}},
		// A report of a node this one does not know as a member: hashed
		// while it was one, and this node applied its removal since, or
		// added since this node's view (the node simulation's seeds 0, 1,
		// 7, 9 and 13 cut connections over such reports).
		{Type: paxos.MsgForward, Cmds: [][]byte{statemachine.EncodeCommand(&statemachine.Command{
			Op: statemachine.OpStateHash, HashSlot: 64, StateHash: 1, Reporter: 9})}},
	}
	for i := range edges {
		edges[i].From, edges[i].To = fakePeer, 1
	}
	for _, m := range append(honestPeerMessages(), edges...) {
		if err := c.check(m); err != nil {
			t.Errorf("%s: %v", m, err)
		}
	}
}

// TestBadPeerMessagesCloseTheirConnection sends each bad message to a
// running node on a peer connection of its own: the node closes that
// connection, logs one line naming the peer, the message type and what is
// wrong, counts it under its reason, and goes on serving its clients.
func TestBadPeerMessagesCloseTheirConnection(t *testing.T) {
	var logs logBuffer
	pc := startPeerCluster(t, zerolog.New(&logs).Level(zerolog.WarnLevel))
	for _, tc := range badPeerMessages() {
		// The cases share the cluster: after a failure (a message that got
		// through may have stopped it), the rest would only time out.
		ok := t.Run(tc.name, func(t *testing.T) {
			counter := pc.nodes[1].m.peerRejected.WithLabelValues(tc.reason)
			before := testutil.ToFloat64(counter)
			conn := pc.dialPeer(t, tc.m.From)
			defer conn.Close()
			if _, err := conn.Write(wire.AppendFrame(nil, wire.EncodeMessage(nil, tc.m))); err != nil {
				t.Fatal(err)
			}
			// Nothing more is sent, and the sending side stays open: only
			// the node can end the connection.
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			var ne net.Error
			if n, err := conn.Read(make([]byte, 1)); n > 0 || errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the connection was not closed: read %d bytes, %v", n, err)
			}
			logs.waitAll(t, `"level":"warn"`, `"node":1`, tc.text, `"message":"wire: closing connection"`,
				fmt.Sprintf(`"peer":%d,"type":"%s","error":"bad peer message: `, tc.m.From, tc.m.Type))
			if got := testutil.ToFloat64(counter); got != before+1 {
				t.Errorf("paxosd_peer_messages_rejected_total{reason=%q} went from %v to %v", tc.reason, before, got)
			}
			pc.check(t)
		})
		if !ok {
			return
		}
	}
}

// waitAll waits for a log line that contains every one of parts.
func (l *logBuffer) waitAll(t *testing.T, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
	lines:
		for _, line := range strings.Split(l.String(), "\n") {
			for _, p := range parts {
				if !strings.Contains(line, p) {
					continue lines
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with all of %q; the log:\n%s", parts, l.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
