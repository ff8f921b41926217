package wire

import (
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/paxosd/paxosd/paxos"
)

// A HeartbeatAck naming the Decide it answers (version 20) reaches a peer
// whose connection negotiated version 20 as sent, and one that negotiated
// an older version without the name: an older node refuses a HeartbeatAck
// with slots and closes the connection.
func TestAckNamesDecideOnlyToPeersThatSpeakIt(t *testing.T) {
	for _, version := range []uint32{VersionAckNamesDecide - 1, VersionAckNamesDecide} {
		t.Run(fmt.Sprintf("version %d", version), func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			got := make(chan paxos.Message, 1)
			go func() {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				defer conn.Close()
				fr := NewFrameReader(conn, 0)
				if _, err := fr.ReadFrame(); err != nil { // the dialer's hello
					return
				}
				conn.Write(AppendFrame(nil, EncodeHello(nil, Hello{Version: version, ClusterID: "test", NodeID: 2})))
				body, err := fr.ReadFrame()
				if err != nil {
					return
				}
				m, err := DecodeMessage(body)
				if err != nil {
					t.Errorf("decoding the message: %v", err)
					return
				}
				got <- m
			}()
			tr, _ := newTestTransport(t, 1, map[paxos.NodeID]string{2: ln.Addr().String()}, 10)
			ack := paxos.Message{Type: paxos.MsgHeartbeatAck, From: 1, To: 2, Ballot: paxos.Ballot{Round: 3, Node: 2}, Commit: 41, Slots: []paxos.Slot{60}}
			tr.Send(ack)
			var m paxos.Message
			select {
			case m = <-got:
			case <-time.After(5 * time.Second):
				t.Fatal("the listener received no message")
			}
			want := ack.Slots
			if version < VersionAckNamesDecide {
				want = nil
			}
			if !slices.Equal(m.Slots, want) || m.Commit != ack.Commit {
				t.Errorf("on a connection of version %d the ack arrived as %s, want slots %v", version, m, want)
			}
			if len(ack.Slots) != 1 {
				t.Error("the transport changed the sender's message")
			}
		})
	}
}
