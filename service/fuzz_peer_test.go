package service

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// FuzzPeerMessages sends arbitrary peer frames into a running node over a
// connection that completed the peer hello. The cluster has three members;
// nodes 1 and 2 run, and the fuzzer is node 3, dialing node 1. The input is
// one message body, which the harness frames (framed false), or a stream
// of frames (framed true). The first frame that does not decode, is not
// addressed from 3 to 1, or fails the node's peer check (peercheck.go)
// must close the connection, counted in paxosd_peer_messages_rejected_total
// when the check refused it. After every input both nodes must be running,
// neither may have found its state diverged (the state check), and node 1
// must answer a put through the log.
//
// What the fuzzer sends as node 3 is a member's word: Paxos tolerates
// crashes, not lies, so a well-formed Accept or Decide (a leader's), or a
// Promise (an acceptor's report, which a candidate trusts), could make node
// 1 learn a value that was never chosen, whatever the checks. The harness
// leaves those out (the checks cannot tell them from the truth; TLS keeps
// non-members from sending them, docs/SECURITY.md); every other message
// that passes the check reaches the core, where it can disturb elections
// but not agreement, since node 3 never talks to node 2.
func FuzzPeerMessages(f *testing.F) {
	pc := startPeerCluster(f, zerolog.New(os.Stderr).Level(zerolog.ErrorLevel))
	// The seeds are the files testdata/fuzz/FuzzPeerMessages holds
	// (peerFuzzSeeds, written by TestFuzzCorpus).
	f.Add(false, wire.EncodeMessage(nil, honestPeerMessages()[0]))
	f.Fuzz(func(t *testing.T, framed bool, data []byte) {
		stream := data
		if !framed {
			stream = wire.AppendFrame(nil, data)
		}
		pc.exchange(t, stream)
		pc.check(t)
	})
}

// peerCluster is the cluster FuzzPeerMessages and the bad peer message
// tests run against: members 1, 2 and 3, with 1 and 2 running, and a
// client connection to node 1.
type peerCluster struct {
	nodes map[paxos.NodeID]*Node
	addrs map[paxos.NodeID]string
	probe *fuzzNode // a client of node 1 (fuzzNode's put and check)
}

// fakePeer is the member id the tests speak as: configured, never started.
const fakePeer paxos.NodeID = 3

func startPeerCluster(tb testing.TB, log zerolog.Logger) *peerCluster {
	tb.Helper()
	pc := &peerCluster{nodes: map[paxos.NodeID]*Node{}, addrs: map[paxos.NodeID]string{}}
	for id := paxos.NodeID(1); id <= 3; id++ {
		ln, err := wire.Listen("127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		pc.addrs[id] = ln.Addr().String()
		ln.Close()
	}
	dir := tb.TempDir()
	for id := paxos.NodeID(1); id <= 2; id++ {
		n, err := Start(Config{
			ID: id, Listen: pc.addrs[id], Peers: pc.addrs, NoSync: true,
			DataDir:       filepath.Join(dir, fmt.Sprint(id)),
			ValueBytesMax: fuzzValueBytesMax, FrameBytesMax: fuzzFrameBytesMax, BatchBytesMax: fuzzFrameBytesMax / 4,
			Logger: log,
		})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(n.Stop)
		pc.nodes[id] = n
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := wire.DialClient(ctx, pc.addrs[1], "", 0)
	if err != nil {
		tb.Fatal(err)
	}
	pc.probe = &fuzzNode{n: pc.nodes[1], addr: pc.addrs[1], probe: wire.NewMux(conn), client: 0x5eed_0001}
	tb.Cleanup(func() { pc.probe.probe.Close() })
	deadline := time.Now().Add(20 * time.Second)
	for pc.probe.put() != nil {
		if time.Now().After(deadline) {
			tb.Fatal("the cluster of nodes 1 and 2 does not answer a put")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return pc
}

// dialPeer connects to node 1 as node id and completes the peer hello.
func (pc *peerCluster) dialPeer(t *testing.T, id paxos.NodeID) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", pc.addrs[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.SetDeadline(time.Now().Add(fuzzConnDeadline)); err != nil {
		t.Fatal(err)
	}
	hello := wire.AppendFrame(nil, wire.EncodeHello(nil, wire.Hello{Version: wire.ProtocolVersion, NodeID: id}))
	if _, err := conn.Write(hello); err != nil {
		t.Fatal(err)
	}
	body, err := wire.NewFrameReader(conn, 0).ReadFrame()
	if err != nil {
		t.Fatalf("no hello back from node 1: %v", err)
	}
	if h, err := wire.DecodeHello(body); err != nil || h.NodeID != 1 {
		t.Fatalf("hello back: %+v, %v", h, err)
	}
	return conn
}

// peerVerdict is what node 1 must do with a stream of frames from node 3.
type peerVerdict struct {
	send   []byte // what to send: up to the first bad frame, trusted messages left out
	closes bool   // a frame in send makes the node close the connection at once
	reason string // ... refused by the peer check for this reason ("" for the transport's own refusals)
}

// judge decides what node 1 must do with stream, with the node's own check.
func (pc *peerCluster) judge(stream []byte) peerVerdict {
	var v peerVerdict
	for rest := stream; len(rest) > 0; {
		if len(rest) < 4 {
			v.send = append(v.send, rest...) // a cut header: the node waits for the rest
			return v
		}
		size := int(binary.BigEndian.Uint32(rest))
		if size > fuzzFrameBytesMax {
			v.send, v.closes = append(v.send, rest[:4]...), true // refused from its header
			return v
		}
		if len(rest) < 4+size {
			v.send = append(v.send, rest...) // a cut frame: the node waits for the rest
			return v
		}
		frame, body := rest[:4+size], rest[4:4+size]
		rest = rest[4+size:]
		m, err := wire.DecodeMessage(body)
		switch {
		case err != nil || m.From != fakePeer || m.To != 1:
			v.closes = true
		default:
			if err := pc.nodes[1].peerCheck.check(m); err != nil {
				v.closes, v.reason = true, peerRejectReason(err)
			} else if m.Type == paxos.MsgAccept || m.Type == paxos.MsgDecide || m.Type == paxos.MsgPromise {
				continue // a member's word (see FuzzPeerMessages)
			}
		}
		v.send = append(v.send, frame...)
		if v.closes {
			return v
		}
	}
	return v
}

// exchange sends stream to node 1 as node 3 and checks the node's answer:
// a connection whose stream holds a bad frame is closed without the
// sender closing its side, and counted by reason when the peer check
// refused it; any other is closed only once the sender closes its side,
// and counts nothing.
func (pc *peerCluster) exchange(t *testing.T, stream []byte) {
	t.Helper()
	v := pc.judge(stream)
	rejected := func() float64 { // under v.reason, or all of them
		var sum float64
		for _, r := range peerRejectReasons {
			if v.reason == "" || r == v.reason {
				sum += testutil.ToFloat64(pc.nodes[1].m.peerRejected.WithLabelValues(r))
			}
		}
		return sum
	}
	before := rejected()
	conn := pc.dialPeer(t, fakePeer)
	defer conn.Close()
	// The node may close the connection before it has read everything:
	// write errors are expected then.
	_, _ = conn.Write(v.send)
	if !v.closes {
		_ = conn.(*net.TCPConn).CloseWrite()
	}
	var buf [1]byte
	n, err := conn.Read(buf[:])
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		t.Fatalf("node 1 kept the connection open for %s (bad frame: %v)", fuzzConnDeadline, v.closes)
	case n > 0:
		t.Fatalf("node 1 wrote on a peer connection")
	}
	after := rejected()
	want := before
	if v.reason != "" {
		want++
	}
	if after != want {
		t.Fatalf("paxosd_peer_messages_rejected_total{reason=%q} went from %v to %v, want %v", v.reason, before, after, want)
	}
}

// check fails the test unless both nodes run, neither found its state
// diverged, and node 1 answers a put.
func (pc *peerCluster) check(t *testing.T) {
	t.Helper()
	for id, n := range pc.nodes {
		if err := n.Err(); err != nil {
			t.Fatalf("node %d stopped: %v", id, err)
		}
		if n.diverged.Load() {
			t.Fatalf("node %d found its state diverged", id)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := pc.probe.put()
		if err == nil {
			return
		}
		// An input may have started elections (a Prepare or Nack with a
		// high ballot): the cluster must settle again.
		if time.Now().After(deadline) {
			t.Fatalf("node 1 no longer answers a put after this input: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// peerFuzzSeeds are FuzzPeerMessages' seed corpus: a message of every type
// as node 3 would send it to node 1, and the bad ones of
// TestBadPeerMessagesCloseTheirConnection.
func peerFuzzSeeds() map[string][]any {
	seeds := map[string][]any{}
	for _, m := range honestPeerMessages() {
		seeds["type-"+m.Type.String()] = []any{false, wire.EncodeMessage(nil, m)}
	}
	for _, tc := range badPeerMessages() {
		seeds["bad-"+tc.name] = []any{false, wire.EncodeMessage(nil, tc.m)}
	}
	frame := func(m paxos.Message) []byte { return wire.AppendFrame(nil, wire.EncodeMessage(nil, m)) }
	hb := paxos.Message{Type: paxos.MsgHeartbeat, From: 3, To: 1, Ballot: paxos.Ballot{Round: 1, Node: 3}, Commit: 1, Slot: 1}
	seeds["stream-heartbeat-then-slot-0"] = []any{true, append(frame(hb), frame(paxos.Message{Type: paxos.MsgAccepted, From: 3, To: 1,
		Ballot: paxos.Ballot{Round: 1, Node: 1}, Slots: []paxos.Slot{0}})...)}
	seeds["stream-from-node-2"] = []any{true, frame(paxos.Message{Type: paxos.MsgHeartbeat, From: 2, To: 1, Ballot: paxos.Ballot{Round: 1, Node: 2}})}
	seeds["stream-frame-too-large"] = []any{true, []byte{0x7f, 0xff, 0xff, 0xff, 0x9f}}
	seeds["stream-frame-cut"] = []any{true, frame(hb)[:9]}
	return seeds
}

// honestPeerMessages is a message of every type, shaped as the core
// builds them, from node 3 to node 1.
func honestPeerMessages() []paxos.Message {
	b3, b1 := paxos.Ballot{Round: 4, Node: 3}, paxos.Ballot{Round: 4, Node: 1}
	batch := paxos.Value{Kind: paxos.ValueBatch, Cmds: [][]byte{statemachine.EncodeCommand(&statemachine.Command{
		ClientID: 7, Seq: 1, Op: statemachine.OpPut, Key: "k", Value: []byte("v")})}}
	report := statemachine.EncodeCommand(&statemachine.Command{Op: statemachine.OpStateHash, HashSlot: 64, StateHash: 1, Reporter: 3})
	ms := []paxos.Message{
		{Type: paxos.MsgPreVote, Ballot: b3, Commit: 9},
		{Type: paxos.MsgPreVoteReply, Ballot: b1, Commit: 9, Reject: true},
		{Type: paxos.MsgPrepare, Ballot: b3, Slot: 10, More: true, Transfer: paxos.Ballot{Round: 3, Node: 1}},
		{Type: paxos.MsgPromise, Ballot: b1, Slot: 10, Commit: 9, More: true,
			Entries: []paxos.Entry{{Slot: 10, Ballot: b3, Value: batch}, {Slot: 12, Ballot: b3, Value: paxos.Noop}}},
		{Type: paxos.MsgAccept, Ballot: b3, Commit: 9, Entries: []paxos.Entry{{Slot: 10, Ballot: b3, Value: batch}, {Slot: 11, Ballot: b3, Value: paxos.Noop}}},
		{Type: paxos.MsgAccepted, Ballot: b1, Commit: 9, Slots: []paxos.Slot{10, 11}},
		{Type: paxos.MsgNack, Ballot: paxos.Ballot{Round: 5, Node: 2}, Slot: 10},
		{Type: paxos.MsgHeartbeat, Ballot: b3, Commit: 9, Slot: 17},
		{Type: paxos.MsgHeartbeatAck, Ballot: b1, Commit: 9, Slot: 17},
		{Type: paxos.MsgDecide, Ballot: b3, Commit: 12, Entries: []paxos.Entry{{Slot: 11, Ballot: b3, Value: batch}, {Slot: 12, Ballot: paxos.Ballot{Round: 2, Node: 2}, Value: paxos.Noop}}},
		{Type: paxos.MsgForward, Cmds: [][]byte{batch.Cmds[0], report, {}}},
		{Type: paxos.MsgSnapshot, Ballot: b3, Commit: 900, Slot: 800},
		{Type: paxos.MsgTimeoutNow, Ballot: b3},
	}
	for i := range ms {
		ms[i].From, ms[i].To = fakePeer, 1
	}
	return ms
}
