package wire

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paxosd/paxosd/paxos"
	"github.com/rs/zerolog"
)

// TestPeerHelloChecksClusterUUID: peers of the same cluster name but of two
// formations (different uuids) refuse each other, on both ends; a peer that
// does not know the uuid yet, and a client, are let through.
func TestPeerHelloChecksClusterUUID(t *testing.T) {
	uuidA := []byte("AAAAAAAAAAAAAAAA")
	uuidB := []byte("BBBBBBBBBBBBBBBB")
	serve := func(uuid []byte) (*echoHandler, *syncBuffer, string) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		h, log := &echoHandler{msgs: make(chan paxos.Message, 100)}, &syncBuffer{}
		cfg := ServerConfig{Self: 2, ClusterID: "test", Logger: zerolog.New(log), ClusterUUID: func() []byte { return uuid }}
		go Serve(ln, cfg, h)
		return h, log, ln.Addr().String()
	}
	dialer := func(addr string, uuid []byte) (*Transport, *syncBuffer) {
		log := &syncBuffer{}
		tr, err := NewTransport(TransportConfig{
			Self: 1, ClusterID: "test", Peers: map[paxos.NodeID]string{2: addr}, ClusterUUID: func() []byte { return uuid },
			BackoffMin: time.Millisecond, BackoffMax: 20 * time.Millisecond, Logger: zerolog.New(log),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(tr.Close)
		return tr, log
	}
	delivered := func(h *echoHandler, tr *Transport) bool {
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
			tr.Send(heartbeat(1))
			select {
			case <-h.msgs:
				return true
			case <-time.After(20 * time.Millisecond):
			}
		}
		return false
	}

	for _, c := range []struct {
		name          string
		dialer, liste []byte
		ok            bool
	}{
		{"same uuid", uuidA, uuidA, true},
		{"dialer does not know it yet", nil, uuidA, true},
		{"listener does not know it yet", uuidA, nil, true},
		{"two formations", uuidA, uuidB, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, slog, addr := serve(c.liste)
			tr, dlog := dialer(addr, c.dialer)
			if got := delivered(h, tr); got != c.ok {
				t.Fatalf("delivered %v, want %v; dialer log:\n%s\nlistener log:\n%s", got, c.ok, dlog.String(), slog.String())
			}
			if c.ok {
				if v := tr.Stats(2).Version; v != ProtocolVersion {
					t.Fatalf("negotiated version %d, want %d", v, ProtocolVersion)
				}
				return
			}
			for _, log := range []*syncBuffer{dlog, slog} {
				if s := log.String(); !strings.Contains(s, "another formation") {
					t.Fatalf("no refusal naming the other formation:\n%s", s)
				}
			}
		})
	}

	// A client is not asked for the uuid, whatever the node knows.
	_, _, addr := serve(uuidB)
	conn, err := DialClient(context.Background(), addr, "test", 0)
	if err != nil {
		t.Fatalf("client refused by a node that knows its uuid: %v", err)
	}
	conn.Close()
}

// TestUUIDCheckIsNotOutlived: a peer of another formation connected while
// this node did not know its uuid yet is cut off once it does.
func TestUUIDCheckIsNotOutlived(t *testing.T) {
	var known atomic.Pointer[[]byte]
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	h, slog := &echoHandler{msgs: make(chan paxos.Message, 1000)}, &syncBuffer{}
	go Serve(ln, ServerConfig{Self: 2, ClusterID: "test", Logger: zerolog.New(slog), ClusterUUID: func() []byte {
		if p := known.Load(); p != nil {
			return *p
		}
		return nil
	}}, h)
	theirs := []byte("BBBBBBBBBBBBBBBB")
	tr, err := NewTransport(TransportConfig{
		Self: 1, ClusterID: "test", Peers: map[paxos.NodeID]string{2: ln.Addr().String()}, ClusterUUID: func() []byte { return theirs },
		BackoffMin: time.Millisecond, BackoffMax: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	tr.Send(heartbeat(1))
	recvMsg(t, h.msgs) // accepted: the listener knew no uuid yet
	ours := []byte("AAAAAAAAAAAAAAAA")
	known.Store(&ours)
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(slog.String(), "another formation"); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the peer of another formation was not cut off once the uuid was known:\n%s", slog.String())
		}
		tr.Send(heartbeat(2))
	}

}

// TestPeerHelloAddr: a node dialing a peer says in its hello where it may
// be dialed back (version 19), and the listener is told before the first
// message of the connection reaches its handler; a client says nothing.
func TestPeerHelloAddr(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	type heard struct {
		id   paxos.NodeID
		addr string
	}
	h, heardc := &echoHandler{msgs: make(chan paxos.Message, 100)}, make(chan heard, 10)
	cfg := ServerConfig{Self: 2, ClusterID: "test", Logger: zerolog.New(&syncBuffer{}),
		PeerAddr: func(id paxos.NodeID, addr string) { heardc <- heard{id, addr} }}
	go Serve(ln, cfg, h)

	tr, err := NewTransport(TransportConfig{
		Self: 4, ClusterID: "test", Peers: map[paxos.NodeID]string{2: ln.Addr().String()},
		SelfAddr:   func() string { return "10.0.0.4:7000" },
		BackoffMin: time.Millisecond, BackoffMax: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	tr.Send(paxos.Message{Type: paxos.MsgHeartbeat, From: 4, To: 2, Commit: 7})
	m := recvMsg(t, h.msgs)
	select {
	case got := <-heardc:
		if got != (heard{4, "10.0.0.4:7000"}) {
			t.Fatalf("heard %+v", got)
		}
	default:
		t.Fatalf("message %v handed on before the hello's address", m)
	}

	c, err := DialClient(context.Background(), ln.Addr().String(), "test", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case got := <-heardc:
		t.Fatalf("a client's connection was heard as a peer's: %+v", got)
	case <-time.After(100 * time.Millisecond):
	}
}
