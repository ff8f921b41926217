package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/paxosd/paxosd/paxos"
)

// tcpPair returns the two ends of a loopback TCP connection. (Shrinking
// the socket buffers makes loopback TCP stall in its persist timer; the
// tests fill the default buffers instead, by reading slowly.)
func tcpPair(t *testing.T) (client, server *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	client, server = c.(*net.TCPConn), s.(*net.TCPConn)
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// testFrame is sender's seq-th frame: a header naming both, then a pattern
// derived from them, so that a frame cut short, spliced or reordered shows.
func testFrame(sender, seq, size int) []byte {
	b := make([]byte, 8+size)
	binary.BigEndian.PutUint32(b, uint32(sender))
	binary.BigEndian.PutUint32(b[4:], uint32(seq))
	for i := range size {
		b[8+i] = byte(sender*31 + seq*7 + i)
	}
	return b
}

func checkTestFrame(body []byte, next map[int]int) error {
	if len(body) < 8 {
		return fmt.Errorf("frame of %d bytes", len(body))
	}
	sender, seq := int(binary.BigEndian.Uint32(body)), int(binary.BigEndian.Uint32(body[4:]))
	for i, c := range body[8:] {
		if c != byte(sender*31+seq*7+i) {
			return fmt.Errorf("sender %d frame %d: byte %d is wrong", sender, seq, i)
		}
	}
	if seq != next[sender] {
		return fmt.Errorf("sender %d: frame %d arrived, expected %d", sender, seq, next[sender])
	}
	next[sender]++
	return nil
}

// TestDirectWritesKeepFramesWhole: direct writes cut short by a full
// socket buffer, then senders writing directly and through the writer
// goroutine at once, deliver every frame whole and each sender's frames in
// order.
func TestDirectWritesKeepFramesWhole(t *testing.T) {
	client, server := tcpPair(t)
	fc := newFrameConn(client, nil, DefaultFrameBytesMax, 64, testWriteTimeout, true)
	if fc.direct == nil {
		t.Skip("no direct writes on this platform")
	}
	send := func(sender, seq, size int) error {
		f := testFrame(sender, seq, size)
		return fc.send(func(b []byte) []byte { return append(b, f...) })
	}
	fr := NewFrameReader(server, DefaultFrameBytesMax)
	next := map[int]int{}
	got := 0 // frames read
	readUpTo := func(n int) {
		for ; got < n; got++ {
			if got%200 == 0 {
				time.Sleep(5 * time.Millisecond) // let the socket buffers fill again
			}
			body, err := fr.ReadFrame()
			if err != nil {
				t.Fatalf("after %d frames: %v", got, err)
			}
			if err := checkTestFrame(body, next); err != nil {
				t.Fatalf("after %d frames: %v", got, err)
			}
		}
	}
	// Nobody reads yet: sender 0's direct writes fill the socket buffers
	// until one is cut short. The rest of a frame cut short counts in the
	// backlog (what a slow client costs: ClientConn.Backlog) until the
	// writer goroutine writes it, which it may do at once if loopback TCP
	// grows its buffers: so the count is looked at right after each cut,
	// and must show in one of the first few (after a cut it missed, the
	// test reads what was sent, so the next cut starts from an idle writer).
	first, cuts, counted := 0, uint64(0), false
	for ; !counted && cuts < 20; first++ {
		if first == 100000 {
			t.Fatalf("100000 frames and %d direct writes cut short", cuts)
		}
		if err := send(0, first, 30<<10); err != nil {
			t.Fatal(err)
		}
		if p := fc.gate.partials.Load(); p > cuts {
			cuts = p
			if counted = fc.backlog.Load() > 0; !counted {
				readUpTo(first + 1)
			}
		}
	}
	if !counted {
		t.Errorf("%d direct writes were cut short, yet the backlog was 0 bytes right after each", cuts)
	}
	const senders, frames = 6, 400
	var wg sync.WaitGroup
	for s := 1; s <= senders; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(s), 1))
			for i := range frames {
				if err := send(s, i, rng.IntN(60<<10)); err != nil {
					t.Errorf("send: %v", err)
					return
				}
			}
		}()
	}
	readUpTo(first + senders*frames)
	wg.Wait()
	t.Logf("%d frames, %d direct writes cut short", first+senders*frames, fc.gate.partials.Load())
	// Every frame was read, so every byte was written: none is left
	// counted (a count that leaked would hold a node's watches for ever).
	// (The writer's count of the last frame may trail its write a moment.)
	for deadline := time.Now().Add(time.Second); fc.backlog.Load() != 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if b := fc.backlog.Load(); b != 0 {
		t.Errorf("every frame arrived, yet the backlog is %d bytes", b)
	}
	fc.close()
}

// TestTransportDirectWritesInOrder: Accept-sized messages to a peer that
// is not reading fill the socket buffers until a direct write is cut short;
// once the peer reads, every message arrives whole and in order.
func TestTransportDirectWritesInOrder(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conns := make(chan net.Conn, 1)
	go func() { // answers the hello; the test reads the rest
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		NewFrameReader(conn, 0).ReadFrame()
		conn.Write(helloFrame("test", 2))
		conns <- conn
	}()
	tr, _ := newTestTransport(t, 1, map[paxos.NodeID]string{2: ln.Addr().String()}, 100000)
	tr.Send(heartbeat(0)) // dials
	conn := <-conns
	defer conn.Close()
	p := tr.peer(2)
	for deadline := time.Now().Add(5 * time.Second); tr.Stats(2).Sent == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first message was not sent")
		}
	}
	msg := func(i int) paxos.Message {
		m := heartbeat(i)
		m.Cmds = [][]byte{make([]byte, 1+i%(30<<10))}
		m.Cmds[0][0] = byte(i)
		return m
	}
	n := 0
	for p.gate.partials.Load() == 0 {
		if n++; n == 100000 {
			t.Fatal("100000 messages and no direct write was cut short")
		}
		tr.Send(msg(n))
	}
	fr := NewFrameReader(conn, 0)
	for i := 0; i <= n; i++ {
		body, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		m, err := DecodeMessage(body)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if m.Commit != paxos.Slot(i) {
			t.Fatalf("message %d: got %v", i, m)
		}
		if i > 0 && (len(m.Cmds) != 1 || len(m.Cmds[0]) != len(msg(i).Cmds[0]) || m.Cmds[0][0] != byte(i)) {
			t.Fatalf("message %d arrived damaged", i)
		}
	}
	if st := tr.Stats(2); st.Dropped != 0 {
		t.Fatalf("dropped %d", st.Dropped)
	}
	t.Logf("%d messages, %d direct writes cut short", n+1, p.gate.partials.Load())
}

// TestCorkedAnswersLeaveTogether: answers corked during one loop iteration
// leave in one write at Uncork, whole and in order.
func TestCorkedAnswersLeaveTogether(t *testing.T) {
	client, server := tcpPair(t)
	c := &ClientConn{fc: newFrameConn(client, nil, DefaultFrameBytesMax, 64, testWriteTimeout, true)}
	defer c.Close()
	if c.fc.direct == nil {
		t.Skip("no direct writes on this platform")
	}
	for i := 1; i <= 100; i++ {
		first, err := c.Cork(&Response{ID: uint64(i), ErrMsg: "v"})
		if err != nil {
			t.Fatal(err)
		}
		if first != (i == 1) {
			t.Fatalf("Cork %d: first = %v", i, first)
		}
	}
	if w := c.fc.writes.Load(); w != 0 {
		t.Fatalf("%d writes before Uncork", w)
	}
	if err := c.Uncork(); err != nil {
		t.Fatal(err)
	}
	if w := c.fc.writes.Load(); w != 1 {
		t.Fatalf("100 corked answers took %d writes, want 1", w)
	}
	if err := c.Uncork(); err != nil { // nothing corked: a no-op
		t.Fatal(err)
	}
	fr := NewFrameReader(server, 0)
	for i := 1; i <= 100; i++ {
		body, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		r, err := DecodeResponse(body)
		if err != nil {
			t.Fatal(err)
		}
		if r.ID != uint64(i) || r.ErrMsg != "v" {
			t.Fatalf("answer %d: got id %d", i, r.ID)
		}
	}
	if _, err := c.Cork(&Response{ErrMsg: string(make([]byte, DefaultFrameBytesMax+1))}); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversized Cork: %v, want ErrFrameTooLarge", err)
	}
}

// testWriteTimeout is the write timeout of the direct-write tests: they
// fill the socket buffers and read slowly on purpose, and on a loaded
// machine a 5 s timeout ended a run once; timeouts are not what they test.
const testWriteTimeout = time.Minute
