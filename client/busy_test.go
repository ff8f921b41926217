package client_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/wire"
)

// busyServer answers the first `busy` puts err Busy asking for a wait of
// retryMs, and every later one with success; it remembers each put and
// when it came.
type busyServer struct {
	addr    string
	busy    int
	retryMs uint64
	mu      sync.Mutex
	puts    []*wire.Request
	at      []time.Time
}

func startBusyServer(t *testing.T, busy int, retryMs uint64) *busyServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &busyServer{addr: ln.Addr().String(), busy: busy, retryMs: retryMs}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(conn)
		}
	}()
	return s
}

func (s *busyServer) serve(conn net.Conn) {
	defer conn.Close()
	fr := wire.NewFrameReader(conn, 0)
	if _, err := fr.ReadFrame(); err != nil {
		return
	}
	hello := wire.Hello{Version: wire.VersionBusy, ClusterID: "paxosd", NodeID: 1}
	if _, err := conn.Write(wire.AppendFrame(nil, wire.EncodeHello(nil, hello))); err != nil {
		return
	}
	var wmu sync.Mutex
	write := func(resp *wire.Response) error {
		wmu.Lock()
		defer wmu.Unlock()
		_, err := conn.Write(wire.AppendFrame(nil, wire.EncodeResponse(nil, resp)))
		return err
	}
	for {
		body, err := fr.ReadFrame()
		if err != nil {
			return
		}
		q, err := wire.DecodeRequest(body)
		if err != nil {
			return
		}
		resp := &wire.Response{ID: q.ID, Revision: 7}
		if q.Op == wire.OpPut && q.Key == "slow" {
			// Answered late, and never busy: the older request that is
			// still out while a newer one waits out its busy answer.
			go func() {
				time.Sleep(100 * time.Millisecond)
				write(resp)
			}()
			continue
		}
		if q.Op == wire.OpPut {
			s.mu.Lock()
			s.puts = append(s.puts, q)
			s.at = append(s.at, time.Now())
			if len(s.puts) <= s.busy {
				resp.Err, resp.ErrMsg, resp.RetryAfterMs = wire.ErrBusy, "busy: retry after 150 ms", s.retryMs
			}
			s.mu.Unlock()
		} else {
			resp.Err, resp.ErrMsg = wire.ErrInvalid, "not in this test"
		}
		if err := write(resp); err != nil {
			return
		}
	}
}

// TestBusyRetriedAfterRetryAfter: a put answered Busy twice is sent again
// with the same client id and seq, each time after the node's retry-after
// (150 ms) and at most half again (the jitter), and succeeds.
func TestBusyRetriedAfterRetryAfter(t *testing.T) {
	s := startBusyServer(t, 2, 150)
	c := newClient(t, []string{s.addr})
	if _, err := c.Put(ctxT(t), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.puts) != 3 {
		t.Fatalf("%d puts reached the node, want 3 (two answered Busy)", len(s.puts))
	}
	for i := 1; i < 3; i++ {
		if s.puts[i].ClientID != s.puts[0].ClientID || s.puts[i].Seq != s.puts[0].Seq {
			t.Fatalf("retry %d: client %d seq %d, first was client %d seq %d", i, s.puts[i].ClientID, s.puts[i].Seq, s.puts[0].ClientID, s.puts[0].Seq)
		}
		if d := s.at[i].Sub(s.at[i-1]); d < 150*time.Millisecond || d > time.Second {
			t.Fatalf("retry %d came %v after the Busy answer, want 150 ms plus at most half again (and a loaded machine's delay)", i, d)
		}
	}
}

// TestBusyRetryRefreshesAckedBelow: a put answered Busy while an older
// put of the same client is still out is sent again, once that one has
// its answer, with acked_below up to date: its own seq, which makes it the
// client's oldest request, which a busy node admits a little further.
func TestBusyRetryRefreshesAckedBelow(t *testing.T) {
	s := startBusyServer(t, 1, 150)
	c := newClient(t, []string{s.addr})
	slow := make(chan error, 1)
	go func() {
		_, err := c.Put(ctxT(t), "slow", []byte("v"))
		slow <- err
	}()
	time.Sleep(20 * time.Millisecond) // "slow" takes the first seq
	if _, err := c.Put(ctxT(t), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := <-slow; err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.puts) != 2 {
		t.Fatalf("%d puts of k reached the node, want 2", len(s.puts))
	}
	first, retry := s.puts[0], s.puts[1]
	if first.AckedBelow >= first.Seq {
		t.Fatalf("the first attempt: seq %d acked_below %d; the slow put (older) was still out", first.Seq, first.AckedBelow)
	}
	if retry.Seq != first.Seq || retry.AckedBelow != retry.Seq {
		t.Fatalf("the retry: seq %d acked_below %d, want seq %d acked_below %d (the slow put answered meanwhile)", retry.Seq, retry.AckedBelow, first.Seq, first.Seq)
	}
}

// TestBusyUntilDeadline: a node that stays busy past the call's context
// makes the call fail with ErrBusy, which also matches the context's error
// and says what the node said.
func TestBusyUntilDeadline(t *testing.T) {
	s := startBusyServer(t, 1<<30, 150)
	c := newClient(t, []string{s.addr})
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Put(ctx, "k", []byte("v"))
	if !errors.Is(err, client.ErrBusy) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("put to a node busy throughout: %v, want ErrBusy and the deadline", err)
	}
	if want := "busy: retry after 150 ms (gave up: context deadline exceeded)"; err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("gave up after %v: the wait is bounded by the context (700 ms)", d)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.puts) < 2 {
		t.Fatalf("%d puts reached the node, want it asked again while time was left", len(s.puts))
	}
}
