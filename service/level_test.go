package service

import (
	"context"
	"testing"
	"time"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// TestClusterLevel: a 3-node cluster raises its level to LevelMax by
// itself, but only once every member has connected at a protocol version
// of at least that level: while node 3 has never started, nodes 1 and 2
// elect a leader and serve writes at level 0; once it starts, every member
// reaches the level. A client's OpLevel is refused as an unknown operation
// and changes nothing.
func TestClusterLevel(t *testing.T) {
	c := newTestCluster(t, nil)
	c.start(1)
	c.start(2)
	c.waitLeader()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := client.New(ctx, c.peers[1], c.peers[2])
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	// Many proposal rounds (every 10 ticks of 10 ms) pass without node 3.
	time.Sleep(time.Second)
	for _, id := range []paxos.NodeID{1, 2} {
		if l := levelOf(c.nodes[id]); l != 0 {
			t.Fatalf("node %d at level %d while node 3 never connected", id, l)
		}
	}

	c.start(3)
	for id := paxos.NodeID(1); id <= 3; id++ {
		for levelOf(c.nodes[id]) != statemachine.LevelMax {
			if ctx.Err() != nil {
				t.Fatalf("node %d at level %d, want %d", id, levelOf(c.nodes[id]), statemachine.LevelMax)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	conn, err := wire.DialClient(ctx, c.peers[c.waitLeader()], "", 0)
	if err != nil {
		t.Fatal(err)
	}
	probe := wire.NewMux(conn)
	defer probe.Close()
	resp, err := probe.Call(ctx, &wire.Request{Op: wire.Op(statemachine.OpLevel), ClientID: 7, Seq: 1})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Err != wire.ErrInvalid || resp.ErrMsg != "unknown operation 31" {
		t.Fatalf("a client's level command: %s %q, want ErrInvalid %q", resp.Err, resp.ErrMsg, "unknown operation 31")
	}
	if _, err := cl.Put(ctx, "k", []byte("v2")); err != nil {
		t.Fatal(err)
	}
}

// levelOf reads node n's cluster level on its loop.
func levelOf(n *Node) uint64 { return onLoop(n, func() uint64 { return n.sm.Level() }) }

// TestLevelNumbersAreProtocolVersions: a leader proposes the level once
// every member negotiated that protocol version, so this build must speak
// it.
func TestLevelNumbersAreProtocolVersions(t *testing.T) {
	if statemachine.LevelMax > wire.ProtocolVersion {
		t.Fatalf("level %d needs protocol %d, this build speaks %d", statemachine.LevelMax, statemachine.LevelMax, wire.ProtocolVersion)
	}
}
