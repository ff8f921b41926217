package wire

import (
	"bufio"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paxosd/paxosd/paxos"
	"github.com/rs/zerolog"
)

func newTestTransport(t *testing.T, self paxos.NodeID, peers map[paxos.NodeID]string, queueMax int) (*Transport, *syncBuffer) {
	t.Helper()
	log := &syncBuffer{}
	tr, err := NewTransport(TransportConfig{
		Self: self, ClusterID: "test", Peers: peers, QueueMax: queueMax,
		BackoffMin: time.Millisecond, BackoffMax: 20 * time.Millisecond, Logger: zerolog.New(log),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	return tr, log
}

func heartbeat(slot int) paxos.Message {
	return paxos.Message{Type: paxos.MsgHeartbeat, From: 1, To: 2, Ballot: paxos.Ballot{Round: 1, Node: 1}, Commit: paxos.Slot(slot)}
}

func recvMsg(t *testing.T, msgs chan paxos.Message) paxos.Message {
	t.Helper()
	select {
	case m := <-msgs:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message")
	}
	panic("unreachable")
}

// TestTransportDeliversInOrderAndReconnects: messages to a peer arrive in
// order; after the peer's listener restarts, the transport redials and
// delivery resumes, still in order (some messages may be lost meanwhile).
func TestTransportDeliversInOrderAndReconnects(t *testing.T) {
	s := startServer(t, 2, "127.0.0.1:0", 0)
	tr, log := newTestTransport(t, 1, map[paxos.NodeID]string{1: "unused", 2: s.addr}, 20000)
	const n = 10000
	for i := 1; i <= n; i++ {
		tr.Send(heartbeat(i))
	}
	for i := 1; i <= n; i++ {
		if m := recvMsg(t, s.h.msgs); m.Commit != paxos.Slot(i) || m.From != 1 || m.To != 2 {
			t.Fatalf("message %d: got %v", i, m)
		}
	}
	st := tr.Stats(2)
	if !tr.Connected(2) || st.Sent != n || st.Dropped != 0 || st.Dials != 1 {
		t.Fatalf("stats %+v", st)
	}
	// No coalescing check here: once connected, a Send to an idle peer is
	// one direct write by design (see sendDirect), so how the burst splits
	// depends on when the dial finished. Coalescing of queued frames is
	// TestCoalescing's.
	t.Logf("%d frames in %d writes", st.Sent, st.Writes)

	// Restart the peer on the same address.
	s.stop(t)
	for deadline := time.Now().Add(5 * time.Second); tr.Connected(2); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("transport did not notice the closed connection")
		}
	}
	s2 := startServer(t, 2, s.addr, 0)
	defer s2.stop(t)
	// Send until 100 messages got through; Send may drop while the
	// transport backs off, but what arrives is in order.
	last, received := 0, 0
	deadline := time.Now().Add(10 * time.Second)
	for i := n + 1; received < 100; i++ {
		tr.Send(heartbeat(i))
		select {
		case m := <-s2.h.msgs:
			if int(m.Commit) <= last {
				t.Fatalf("out of order: %d after %d", m.Commit, last)
			}
			last = int(m.Commit)
			received++
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries after restart, stats %+v", received, tr.Stats(2))
		}
	}
	if st := tr.Stats(2); st.Dials < 2 || !st.Connected {
		t.Fatalf("after restart: %+v", st)
	}
	log.waitLog(t, "peer connection broke")
}

// TestTransportChecksPeer: a listener that is another node, or in another
// cluster, is not used; messages are dropped and counted, never blocked.
func TestTransportChecksPeer(t *testing.T) {
	s := startServer(t, 3, "127.0.0.1:0", 0) // node 3, where 2 is expected
	defer s.stop(t)
	tr, log := newTestTransport(t, 1, map[paxos.NodeID]string{2: s.addr}, 10)
	for i := range 1000 {
		tr.Send(heartbeat(i))
	}
	log.waitLog(t, "expected node 2, reached node 3")
	if tr.Connected(2) {
		t.Fatal("connected to the wrong node")
	}
	tr.Send(paxos.Message{Type: paxos.MsgHeartbeat, From: 1, To: 9}) // unknown: dropped
	for deadline := time.Now().Add(5 * time.Second); tr.Stats(2).Dropped < 1000; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v", tr.Stats(2))
		}
		tr.Send(heartbeat(0))
	}
	select {
	case m := <-s.h.msgs:
		t.Fatalf("node 3 received %v", m)
	default:
	}

	if _, err := NewTransport(TransportConfig{Peers: map[paxos.NodeID]string{2: "x"}}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("config without Self: %v", err)
	}
	// Another cluster's node is refused as well.
	other, _ := net.Listen("tcp", "127.0.0.1:0")
	go Serve(other, ServerConfig{Self: 2, ClusterID: "other"}, s.h)
	defer other.Close()
	tr2, log2 := newTestTransport(t, 1, map[paxos.NodeID]string{2: other.Addr().String()}, 10)
	tr2.Send(heartbeat(1))
	log2.waitLog(t, "wrong cluster id")
}

// TestTransportDropsWhenPeerStalls: a peer that stops reading makes the
// queue fill; Send keeps returning at once.
func TestTransportDropsWhenPeerStalls(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	end := make(chan struct{})
	defer close(end)
	go func() { // answers the hello, then never reads
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		NewFrameReader(conn, 0).ReadFrame()
		conn.Write(helloFrame("test", 2))
		<-end
	}()
	tr, _ := newTestTransport(t, 1, map[paxos.NodeID]string{2: ln.Addr().String()}, 100)
	big := heartbeat(1)
	big.Cmds = [][]byte{make([]byte, 64<<10)}
	start := time.Now()
	for range 2000 {
		tr.Send(big)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Send blocked for %v", d)
	}
	if st := tr.Stats(2); st.Dropped == 0 {
		t.Fatalf("nothing dropped: %+v", st)
	}
}

// gatedConn is a net.Conn whose first Write blocks until the gate opens;
// it counts writes.
type gatedConn struct {
	net.Conn
	gate   chan struct{}
	once   sync.Once
	writes atomic.Int64
	bytes  atomic.Int64
}

func (c *gatedConn) Write(p []byte) (int, error) {
	c.once.Do(func() { <-c.gate })
	c.writes.Add(1)
	c.bytes.Add(int64(len(p)))
	return len(p), nil
}

func (c *gatedConn) SetWriteDeadline(time.Time) error { return nil }

// TestCoalescing: frames queued while a write is in progress leave
// together in the next write.
func TestCoalescing(t *testing.T) {
	conn := &gatedConn{gate: make(chan struct{})}
	var writes atomic.Uint64
	bw := bufio.NewWriterSize(deadlineWriter{conn: conn, writes: &writes}, writeBufferBytes)
	q := make(chan paxos.Message, 2000)
	stop, abort := make(chan struct{}), make(chan struct{})
	done := make(chan error)
	var scratch []byte
	go func() {
		done <- writeLoop(bw, q, stop, abort, nil, func(bw *bufio.Writer, m paxos.Message) error {
			scratch = AppendFrame(scratch[:0], EncodeMessage(nil, m))
			_, err := bw.Write(scratch)
			return err
		})
	}()
	q <- heartbeat(0) // written alone; its write blocks at the gate
	for deadline := time.Now().Add(5 * time.Second); len(q) > 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("writer did not start")
		}
	}
	for i := 1; i < 1000; i++ {
		q <- heartbeat(i)
	}
	close(conn.gate)
	close(stop) // drains the queue, then returns
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	frame := len(AppendFrame(nil, EncodeMessage(nil, heartbeat(500))))
	if got := conn.bytes.Load(); got < int64(1000*(frame-2)) {
		t.Fatalf("wrote %d bytes, want about %d", got, 1000*frame)
	}
	// One write for the first frame, then ~1000*frame bytes in 64 KiB writes.
	if w := conn.writes.Load(); w > 3 {
		t.Fatalf("1000 frames took %d writes", w)
	}
	t.Logf("1000 frames (%d bytes) in %d writes", conn.bytes.Load(), conn.writes.Load())
}
