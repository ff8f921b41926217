package wire

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/paxosd/paxosd/paxos"
)

// TestCheckPeerMessage: ServerConfig.CheckPeerMessage sees every peer
// message before the handler; the first one it refuses closes the
// connection, is logged with the peer, the message type and the error,
// and neither it nor anything after it reaches the handler. Other
// connections are not affected.
func TestCheckPeerMessage(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log := &syncBuffer{}
	h := &echoHandler{msgs: make(chan paxos.Message, 100)}
	cfg := ServerConfig{Self: 1, ClusterID: "test", Logger: zerolog.New(log),
		CheckPeerMessage: func(m paxos.Message) error {
			if m.Commit > 5 {
				return errors.New("commit beyond 5")
			}
			return nil
		}}
	done := make(chan error, 1)
	go func() { done <- Serve(ln, cfg, h) }()
	s := &testServer{addr: ln.Addr().String(), ln: ln, h: h, log: log, done: done}
	defer s.stop(t)
	good := dialMux(t, s.addr, "test")

	hb := func(commit paxos.Slot) []byte {
		return AppendFrame(nil, EncodeMessage(nil, paxos.Message{Type: paxos.MsgHeartbeat, From: 2, To: 1, Commit: commit}))
	}
	conn, fr := rawConn(t, s.addr, helloFrame("test", 2))
	if _, err := fr.ReadFrame(); err != nil {
		t.Fatalf("no hello back: %v", err)
	}
	conn.Write(append(append(hb(1), hb(6)...), hb(2)...))
	expectClosed(t, fr)
	s.log.waitLog(t, `"peer":2,"type":"Heartbeat","error":"commit beyond 5","message":"wire: closing connection"`)
	select {
	case m := <-h.msgs:
		if m.Commit != 1 {
			t.Fatalf("the handler got %s first, want the heartbeat with commit 1", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the good message before the bad one never reached the handler")
	}
	select {
	case m := <-h.msgs:
		t.Fatalf("the handler got %s, after the refused message", m)
	case <-time.After(100 * time.Millisecond):
	}
	checkCall(t, good, "after")
}
