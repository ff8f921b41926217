package wire

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/paxosd/paxosd/paxos"
	"github.com/rs/zerolog"
)

// shortWriteTimeout stands for the 5 s default: the tests below idle for
// many of these, which would break a connection whose writes kept meeting a
// deadline set by an earlier write.
const shortWriteTimeout = 40 * time.Millisecond

// TestPeerConnectionOutlivesWriteTimeouts: a peer connection carries
// messages sent far apart, many write timeouts after its first write, on
// one connection with nothing dropped. (It broke every write timeout: the
// buffered path left its write deadline on the socket, and the direct path
// that sends to an idle peer failed on it with "i/o timeout".)
func TestPeerConnectionOutlivesWriteTimeouts(t *testing.T) {
	s := startServer(t, 2, "127.0.0.1:0", 0)
	defer s.stop(t)
	log := &syncBuffer{}
	tr, err := NewTransport(TransportConfig{
		Self: 1, ClusterID: "test", Peers: map[paxos.NodeID]string{1: "unused", 2: s.addr},
		WriteTimeout: shortWriteTimeout, Logger: zerolog.New(log),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()

	const sends = 12
	for i := 1; i <= sends; i++ {
		tr.Send(heartbeat(i))
		if m := recvMsg(t, s.h.msgs); m.Commit != paxos.Slot(i) {
			t.Fatalf("message %d: got %v", i, m)
		}
		time.Sleep(2 * shortWriteTimeout)
	}
	if st := tr.Stats(2); st.Dials != 1 || st.Dropped != 0 || st.Sent != sends || !st.Connected {
		t.Fatalf("after %d sends %v apart: %+v; log:\n%s", sends, 2*shortWriteTimeout, st, log.String())
	}
}

// TestClientConnectionOutlivesWriteTimeouts: the server's answers on a
// long-lived client connection, sent far apart, all arrive on that one
// connection (the server writes answers directly as the transport does).
// The first answer is larger than the write buffer, so the writer goroutine
// sends it, with a write deadline; the later ones are direct writes.
func TestClientConnectionOutlivesWriteTimeouts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &echoHandler{msgs: make(chan paxos.Message, 1)}
	log := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- Serve(ln, ServerConfig{Self: 2, ClusterID: "test", WriteTimeout: shortWriteTimeout, Logger: zerolog.New(log)}, h)
	}()
	defer func() {
		ln.Close()
		<-done
	}()

	c, err := DialClient(context.Background(), ln.Addr().String(), "test", 0)
	if err != nil {
		t.Fatal(err)
	}
	m := NewMux(c)
	defer m.Close()
	for i := 0; i < 12; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		key := string(rune('a' + i))
		q := &Request{Op: OpGet, Key: key}
		if i == 0 {
			q.Value = make([]byte, 2*writeBufferBytes)
		}
		s, err := m.Call(ctx, q)
		cancel()
		if err != nil || s.KV.Key != key || len(s.KV.Value) != len(q.Value) {
			t.Fatalf("call %d, %v after the first: %+v, %v; server log:\n%s", i, time.Duration(i)*2*shortWriteTimeout, s, err, log.String())
		}
		time.Sleep(2 * shortWriteTimeout)
	}
}

// TestUnreachablePeerIsReportedPeriodically: a peer whose address answers
// as another node (swapped --peers) is warned about again every
// UnreachableWarnEvery while it lasts, not once, and Stats says why it is
// unreachable.
func TestUnreachablePeerIsReportedPeriodically(t *testing.T) {
	s := startServer(t, 3, "127.0.0.1:0", 0) // node 3 where node 2 should be
	defer s.stop(t)
	log := &syncBuffer{}
	tr, err := NewTransport(TransportConfig{
		Self: 1, ClusterID: "test", Peers: map[paxos.NodeID]string{1: "unused", 2: s.addr},
		BackoffMin: time.Millisecond, BackoffMax: 10 * time.Millisecond,
		UnreachableWarnEvery: 100 * time.Millisecond, Logger: zerolog.New(log),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	for end := time.Now().Add(550 * time.Millisecond); time.Now().Before(end); time.Sleep(2 * time.Millisecond) {
		tr.Send(heartbeat(1))
	}
	st := tr.Stats(2)
	if !st.Unreachable || !strings.Contains(st.DialError, "expected node 2, reached node 3") {
		t.Errorf("stats of a peer answering as another node: %+v", st)
	}
	// A warning at once, then one per 100 ms: 6 in 550 ms, at least 4
	// allowing for a slow machine; and never one per failed dial.
	warns := strings.Count(log.String(), `"level":"warn","peer":2`)
	if warns < 4 || uint64(warns) >= st.Dials {
		t.Errorf("%d warnings about peer 2 in 550 ms over %d dials, want one per 100 ms:\n%s", warns, st.Dials, log.String())
	}
}
