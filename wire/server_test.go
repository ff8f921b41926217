package wire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paxosd/paxosd/paxos"
	"github.com/rs/zerolog"
)

// syncBuffer collects log output from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitLog waits until the log contains want.
func (s *syncBuffer) waitLog(t *testing.T, want string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if strings.Contains(s.String(), want) {
			return
		}
	}
	t.Fatalf("log lacks %q:\n%s", want, s.String())
}

// echoHandler answers every request from its own goroutine (so answers
// may overtake each other) with the request's key and value; it passes
// peer messages to msgs.
type echoHandler struct {
	msgs chan paxos.Message
}

func (h *echoHandler) HandlePeer(m paxos.Message) { h.msgs <- m }

func (h *echoHandler) HandleClient(c *ClientConn) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		q, err := c.Recv()
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if q.Limit > 0 { // lets tests delay and reorder answers
				select {
				case <-time.After(time.Duration(q.Limit) * time.Millisecond):
				case <-c.Done():
					return
				}
			}
			c.Send(&Response{ID: q.ID, Found: true, KV: KV{Key: q.Key, Value: q.Value}})
		}()
	}
}

type testServer struct {
	addr string
	ln   net.Listener
	h    *echoHandler
	log  *syncBuffer
	done chan error
}

func startServer(t *testing.T, self paxos.NodeID, addr string, frameMax int) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{addr: ln.Addr().String(), ln: ln, h: &echoHandler{msgs: make(chan paxos.Message, 100000)}, log: &syncBuffer{}, done: make(chan error, 1)}
	cfg := ServerConfig{Self: self, ClusterID: "test", FrameBytesMax: frameMax, Logger: zerolog.New(s.log), HelloTimeout: 500 * time.Millisecond}
	go func() { s.done <- Serve(ln, cfg, s.h) }()
	return s
}

// stop closes the listener and waits for Serve to have closed everything.
func (s *testServer) stop(t *testing.T) {
	t.Helper()
	s.ln.Close()
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
}

func dialMux(t *testing.T, addr, cluster string) *Mux {
	t.Helper()
	c, err := DialClient(context.Background(), addr, cluster, 0)
	if err != nil {
		t.Fatal(err)
	}
	m := NewMux(c)
	t.Cleanup(func() { m.Close() })
	return m
}

func checkCall(t *testing.T, m *Mux, key string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := m.Call(ctx, &Request{Op: OpGet, Key: key, Value: []byte("v-" + key)})
	if err != nil || s.KV.Key != key || string(s.KV.Value) != "v-"+key {
		t.Fatalf("call %q: %+v, %v", key, s, err)
	}
}

// rawConn dials addr and, unless hello is nil, sends it as the first frame.
func rawConn(t *testing.T, addr string, hello []byte) (net.Conn, *FrameReader) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if hello != nil {
		conn.Write(hello)
	}
	return conn, NewFrameReader(conn, 0)
}

func helloFrame(cluster string, node paxos.NodeID) []byte {
	return AppendFrame(nil, EncodeHello(nil, Hello{Version: ProtocolVersion, ClusterID: cluster, NodeID: node}))
}

// expectClosed reads until the server closes conn.
func expectClosed(t *testing.T, fr *FrameReader) {
	t.Helper()
	for {
		if _, err := fr.ReadFrame(); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset") {
				return
			}
			t.Fatalf("expected the server to close, got %v", err)
		}
	}
}

// TestServerRefusesOnlyTheBadConnection: each kind of bad input closes its
// own connection with a logged reason, while a client on the same server
// goes on working.
func TestServerRefusesOnlyTheBadConnection(t *testing.T) {
	s := startServer(t, 1, "127.0.0.1:0", 1<<10)
	defer s.stop(t)
	good := dialMux(t, s.addr, "test")
	checkCall(t, good, "before")

	cases := []struct {
		name   string
		send   func(t *testing.T) *FrameReader
		reason string
	}{
		{"garbage hello", func(t *testing.T) *FrameReader {
			_, fr := rawConn(t, s.addr, AppendFrame(nil, []byte("GET / HTTP/1.1\r\n")))
			return fr
		}, "bad hello"},
		{"hello with a huge length prefix", func(t *testing.T) *FrameReader {
			_, fr := rawConn(t, s.addr, []byte("GET / HTTP/1.1\r\n"))
			return fr
		}, "frame too large"},
		{"wrong magic", func(t *testing.T) *FrameReader {
			body := EncodeHello(nil, Hello{Version: 1, ClusterID: "test"})
			copy(body[bytes.Index(body, []byte(Magic)):], "PAXOSD")
			_, fr := rawConn(t, s.addr, AppendFrame(nil, body))
			return fr
		}, "bad magic"},
		{"version 0", func(t *testing.T) *FrameReader {
			_, fr := rawConn(t, s.addr, AppendFrame(nil, EncodeHello(nil, Hello{ClusterID: "test"})))
			return fr
		}, "version 0"},
		{"peer claiming our id", func(t *testing.T) *FrameReader {
			_, fr := rawConn(t, s.addr, helloFrame("test", 1))
			return fr
		}, "own id"},
		{"wrong cluster", func(t *testing.T) *FrameReader {
			_, fr := rawConn(t, s.addr, helloFrame("other", 0))
			if body, err := fr.ReadFrame(); err != nil { // the server's hello, so the client can tell
				t.Fatalf("no hello back: %v", err)
			} else if h, _ := DecodeHello(body); h.ClusterID != "test" {
				t.Fatalf("hello back %+v", h)
			}
			return fr
		}, "wrong cluster id"},
		{"oversized client frame", func(t *testing.T) *FrameReader {
			conn, fr := rawConn(t, s.addr, helloFrame("test", 0))
			fr.ReadFrame()
			conn.Write(AppendFrame(nil, EncodeRequest(nil, &Request{ID: 1, Op: OpPut, Value: make([]byte, 2000)})))
			return fr
		}, "frame too large"},
		{"undecodable request", func(t *testing.T) *FrameReader {
			conn, fr := rawConn(t, s.addr, helloFrame("test", 0))
			fr.ReadFrame()
			conn.Write(AppendFrame(nil, []byte{0x93, 0x02, 0xa1, 'x'}))
			return fr
		}, "malformed"},
		{"message on a client connection", func(t *testing.T) *FrameReader {
			conn, fr := rawConn(t, s.addr, helloFrame("test", 0))
			fr.ReadFrame()
			conn.Write(AppendFrame(nil, EncodeMessage(nil, paxos.Message{Type: paxos.MsgHeartbeat, From: 2, To: 1})))
			return fr
		}, "frame type Message, want Request"},
		{"peer message with a forged From", func(t *testing.T) *FrameReader {
			conn, fr := rawConn(t, s.addr, helloFrame("test", 2))
			fr.ReadFrame()
			conn.Write(AppendFrame(nil, EncodeMessage(nil, paxos.Message{Type: paxos.MsgHeartbeat, From: 3, To: 1})))
			return fr
		}, "message from 3 on the connection of node 2"},
		{"undecodable peer message", func(t *testing.T) *FrameReader {
			conn, fr := rawConn(t, s.addr, helloFrame("test", 2))
			fr.ReadFrame()
			conn.Write(AppendFrame(nil, []byte{0x92, 0x01, 0x63}))
			return fr
		}, "unknown message type 99"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			expectClosed(t, c.send(t))
			s.log.waitLog(t, c.reason)
			checkCall(t, good, "after "+c.name)
		})
	}
	// The dialing side reports a wrong cluster too.
	if _, err := DialClient(context.Background(), s.addr, "other", 0); !errors.Is(err, ErrWrongCluster) {
		t.Fatalf("DialClient to another cluster: %v", err)
	}
	// A silent connection is dropped after HelloTimeout.
	_, fr := rawConn(t, s.addr, nil)
	expectClosed(t, fr)
	s.log.waitLog(t, "reading hello")
	checkCall(t, good, "at the end")
}

// TestMuxOutOfOrder: many calls in flight on one connection, answered in
// any order, each gets its own response; a dead connection fails them all.
func TestMuxOutOfOrder(t *testing.T) {
	s := startServer(t, 1, "127.0.0.1:0", 0)
	m := dialMux(t, s.addr, "test")
	if m.ServerID() != 1 {
		t.Fatalf("ServerID %d", m.ServerID())
	}
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprint("k", i)
			s, err := m.Call(context.Background(), &Request{Op: OpGet, Key: key, Limit: uint32(20 - i%20)})
			if err != nil || s.KV.Key != key {
				t.Errorf("call %d: %+v %v", i, s, err)
			}
		}()
	}
	wg.Wait()
	// A slow call, then the server goes away: the call fails with ErrClosed.
	errc := make(chan error, 1)
	go func() {
		_, err := m.Call(context.Background(), &Request{Op: OpGet, Limit: 10000})
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	s.ln.Close()
	s.stop(t)
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("pending call: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("pending call not failed")
	}
	if _, err := m.Call(context.Background(), &Request{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("call after death: %v", err)
	}
	// A call that gives up returns ctx's error.
	s2 := startServer(t, 1, "127.0.0.1:0", 0)
	defer s2.stop(t)
	m2 := dialMux(t, s2.addr, "test")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := m2.Call(ctx, &Request{Limit: 1000}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timed-out call: %v", err)
	}
}

// TestDefaultClusterID: "" and DefaultClusterID are the same cluster.
func TestDefaultClusterID(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	h := &echoHandler{msgs: make(chan paxos.Message, 1)}
	done := make(chan error)
	go func() { done <- Serve(ln, ServerConfig{Self: 4}, h) }()
	m := dialMux(t, ln.Addr().String(), DefaultClusterID)
	checkCall(t, m, "x")
	m.Close()
	ln.Close()
	<-done
	if err := Serve(ln, ServerConfig{}, h); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Serve without Self: %v", err)
	}
}

var (
	_ Handler = (*echoHandler)(nil)
	_ Handler = (*countingHandler)(nil)
)
