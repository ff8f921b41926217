package wire

import (
	"testing"
	"time"

	"github.com/paxosd/paxosd/paxos"
)

// TestPartialFrameDiesWithItsConnection: the rest of a frame a direct write
// began is not written on the next connection. It used to be: the listener
// then read the tail as a frame header (here declaring 15 MiB) and took
// every later message as that frame's body, so nothing from the peer got
// through until 15 MiB had been sent.
func TestPartialFrameDiesWithItsConnection(t *testing.T) {
	s := startServer(t, 2, "127.0.0.1:0", 0)
	defer s.stop(t)
	tr, _ := newTestTransport(t, 1, map[paxos.NodeID]string{2: s.addr}, 100)
	tr.Send(heartbeat(1))
	recvMsg(t, s.h.msgs)
	p := tr.peer(2)
	// A direct write left the tail of a frame pending (the header of a
	// large one), and the connection broke before the writer wrote it.
	p.gate.mu.Lock()
	if p.direct == nil {
		p.gate.mu.Unlock()
		t.Fatal("setup: not connected")
	}
	p.gate.pending = []byte{0x00, 0xf0, 0x00, 0x00, 0x01}
	p.direct.conn.Close()
	p.gate.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for i := 2; ; i++ {
		tr.Send(heartbeat(i))
		select {
		case m := <-s.h.msgs:
			if m.Commit >= 2 {
				return
			}
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing got through after the connection broke with a partial frame pending")
		}
	}
}
