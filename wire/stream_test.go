package wire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/paxosd/paxosd/paxos"
)

// streamHandler is a test server for streams and blocking calls:
//
//   - OpWatch sends FromRevision responses (Revision 1, 2, ...); then, with
//     WatchPrefix, a last one with StreamEnd and ErrCompacted, else it
//     waits for a cancel or the connection's end. OpObserve just waits.
//   - OpLockAcquire (with Wait) waits for a cancel, then answers
//     ErrCanceled; its id is sent to blocked first.
//   - OpCancel sends its CancelID to cancels, ends what it names (a
//     StreamEnd with ErrCanceled for a stream) and is answered.
//   - OpStatus with Key "kill" closes the connection; other requests are
//     answered with their key.
type streamHandler struct {
	cancels chan uint64
	blocked chan uint64
}

func newStreamHandler() *streamHandler {
	return &streamHandler{cancels: make(chan uint64, 100), blocked: make(chan uint64, 100)}
}

func (h *streamHandler) HandlePeer(paxos.Message) {}

func (h *streamHandler) HandleClient(c *ClientConn) {
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		waiting = map[uint64]chan struct{}{} // open streams and blocked calls
	)
	defer wg.Wait()
	wait := func(id uint64) chan struct{} {
		ch := make(chan struct{})
		mu.Lock()
		waiting[id] = ch
		mu.Unlock()
		return ch
	}
	for {
		q, err := c.Recv()
		if err != nil {
			return
		}
		switch q.Op {
		case OpWatch, OpObserve:
			canceled := wait(q.ID)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := uint64(1); i <= q.FromRevision; i++ {
					if c.Send(&Response{ID: q.ID, Revision: i, Events: []WatchEvent{{Type: EventPut, KV: KV{Key: q.Key, ModRevision: i}}}}) != nil {
						return
					}
				}
				if q.WatchPrefix {
					c.Send(&Response{ID: q.ID, Err: ErrCompacted, CompactRevision: 5, StreamEnd: true})
					return
				}
				select {
				case <-canceled:
					c.Send(&Response{ID: q.ID, Err: ErrCanceled, StreamEnd: true})
				case <-c.Done():
				}
			}()
		case OpLockAcquire:
			canceled := wait(q.ID)
			h.blocked <- q.ID
			wg.Add(1)
			go func() {
				defer wg.Done()
				select {
				case <-canceled:
					c.Send(&Response{ID: q.ID, Err: ErrCanceled})
				case <-c.Done():
				}
			}()
		case OpCancel:
			h.cancels <- q.CancelID
			mu.Lock()
			if ch := waiting[q.CancelID]; ch != nil {
				close(ch)
				delete(waiting, q.CancelID)
			}
			mu.Unlock()
			c.Send(&Response{ID: q.ID})
		case OpStatus:
			if q.Key == "kill" {
				c.Close()
				return
			}
			fallthrough
		default:
			c.Send(&Response{ID: q.ID, Found: true, KV: KV{Key: q.Key, Value: q.Value}})
		}
	}
}

func startStreamServer(t *testing.T) (*streamHandler, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := newStreamHandler()
	done := make(chan error, 1)
	go func() { done <- Serve(ln, ServerConfig{Self: 1, ClusterID: "test"}, h) }()
	t.Cleanup(func() {
		ln.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return h, ln.Addr().String()
}

// recvTimeout is Recv with a test deadline.
func recvTimeout(t *testing.T, s *Stream) (*Response, error) {
	t.Helper()
	type result struct {
		r   *Response
		err error
	}
	ch := make(chan result, 1)
	go func() {
		r, err := s.Recv()
		ch <- result{r, err}
	}()
	select {
	case res := <-ch:
		return res.r, res.err
	case <-time.After(5 * time.Second):
		t.Fatalf("stream %d: Recv blocked", s.ID())
	}
	panic("unreachable")
}

// expectRevisions receives n responses numbered 1..n.
func expectRevisions(t *testing.T, s *Stream, key string, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		r, err := recvTimeout(t, s)
		if err != nil {
			t.Fatalf("stream %d, response %d: %v", s.ID(), i, err)
		}
		if r.ID != s.ID() || r.Revision != uint64(i) || len(r.Events) != 1 || r.Events[0].KV.Key != key || r.StreamEnd {
			t.Fatalf("stream %d, response %d: %+v", s.ID(), i, r)
		}
	}
}

func expectCancel(t *testing.T, h *streamHandler, id uint64) {
	t.Helper()
	select {
	case got := <-h.cancels:
		if got != id {
			t.Fatalf("server saw a cancel of %d, want %d", got, id)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("server saw no cancel of %d", id)
	}
}

// TestMuxStreamInOrder: several streams on one connection, interleaved
// with calls, each receive their responses in order; the StreamEnd
// response is returned, then io.EOF for good.
func TestMuxStreamInOrder(t *testing.T) {
	_, addr := startStreamServer(t)
	m := dialMux(t, addr, "test")
	const n = StreamBufferMax - 24 // no overflow even if nothing is read until the end
	var streams []*Stream
	for i := range 4 {
		s, err := m.Stream(context.Background(), &Request{Op: OpWatch, Key: fmt.Sprint("k", i), FromRevision: n, WatchPrefix: true})
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, s)
	}
	checkCall(t, m, "between")
	var wg sync.WaitGroup
	for i, s := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			expectRevisions(t, s, fmt.Sprint("k", i), n)
			r, err := recvTimeout(t, s)
			if err != nil || !r.StreamEnd || r.Err != ErrCompacted || r.CompactRevision != 5 {
				t.Errorf("stream %d: last response %+v, %v", i, r, err)
			}
			for range 2 {
				if r, err := recvTimeout(t, s); err != io.EOF {
					t.Errorf("stream %d after StreamEnd: %+v, %v; want io.EOF", i, r, err)
				}
			}
			s.Close() // after the end: no cancel sent, Recv reports the Close
			if _, err := s.Recv(); err != ErrStreamClosed {
				t.Errorf("Recv after Close: %v", err)
			}
		}()
	}
	wg.Wait()
	checkCall(t, m, "after")
	// Call and Stream refuse each other's ops.
	if _, err := m.Call(context.Background(), &Request{Op: OpWatch, Key: "k"}); err == nil {
		t.Fatal("Call accepted a watch")
	}
	if _, err := m.Stream(context.Background(), &Request{Op: OpGet, Key: "k"}); err == nil {
		t.Fatal("Stream accepted a get")
	}
}

// TestMuxStreamClose: Close, or the end of the stream's ctx, sends the
// server an OpCancel naming the stream and stops delivery at once.
func TestMuxStreamClose(t *testing.T) {
	h, addr := startStreamServer(t)
	m := dialMux(t, addr, "test")

	s, err := m.Stream(context.Background(), &Request{Op: OpWatch, Key: "a", FromRevision: 3})
	if err != nil {
		t.Fatal(err)
	}
	expectRevisions(t, s, "a", 3)
	s.Close()
	expectCancel(t, h, s.ID())
	if r, err := s.Recv(); err != ErrStreamClosed {
		t.Fatalf("Recv after Close: %+v, %v", r, err)
	}
	s.Close() // idempotent: no second cancel
	checkCall(t, m, "after close")

	ctx, cancel := context.WithCancel(context.Background())
	s, err = m.Stream(ctx, &Request{Op: OpObserve, Name: "e"})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	expectCancel(t, h, s.ID())
	if r, err := recvTimeout(t, s); !errors.Is(err, context.Canceled) {
		t.Fatalf("Recv after ctx: %+v, %v", r, err)
	}
	if _, err := m.Stream(ctx, &Request{Op: OpObserve, Name: "e"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Stream with an ended ctx: %v", err)
	}
	select {
	case id := <-h.cancels:
		t.Fatalf("unexpected cancel of %d", id)
	case <-time.After(20 * time.Millisecond):
	}

	// A blocking call whose ctx ends is cancelled on the server; an
	// ordinary one is not.
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := m.Call(ctx, &Request{Op: OpLockAcquire, Name: "l", Wait: true}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("blocking call: %v", err)
	}
	expectCancel(t, h, <-h.blocked)
	checkCall(t, m, "after the blocking call")
}

// TestMuxStreamOverflow: a stream whose consumer does not read is closed
// with ErrStreamOverflow (and cancelled on the server) once its buffer is
// full; other streams and calls on the connection go on.
func TestMuxStreamOverflow(t *testing.T) {
	h, addr := startStreamServer(t)
	m := dialMux(t, addr, "test")
	slow, err := m.Stream(context.Background(), &Request{Op: OpWatch, Key: "slow", FromRevision: StreamBufferMax + 500})
	if err != nil {
		t.Fatal(err)
	}
	expectCancel(t, h, slow.ID())
	fast, err := m.Stream(context.Background(), &Request{Op: OpWatch, Key: "fast", FromRevision: 10, WatchPrefix: true})
	if err != nil {
		t.Fatal(err)
	}
	expectRevisions(t, fast, "fast", 10)
	if r, err := recvTimeout(t, fast); err != nil || !r.StreamEnd {
		t.Fatalf("fast stream end: %+v, %v", r, err)
	}
	checkCall(t, m, "after overflow")
	// The slow consumer gets what was buffered, in order, then the error.
	expectRevisions(t, slow, "slow", StreamBufferMax)
	if r, err := recvTimeout(t, slow); !errors.Is(err, ErrStreamOverflow) {
		t.Fatalf("after the buffer: %+v, %v", r, err)
	}
	if _, err := slow.Recv(); !errors.Is(err, ErrStreamOverflow) {
		t.Fatalf("again: %v", err)
	}
	slow.Close() // the Mux cancelled it already: no second cancel
	select {
	case id := <-h.cancels:
		t.Fatalf("unexpected cancel of %d", id)
	case <-time.After(20 * time.Millisecond):
	}
}

// TestMuxStreamConnectionDeath: when the connection dies every stream and
// pending call fails with ErrClosed, after the responses already buffered.
func TestMuxStreamConnectionDeath(t *testing.T) {
	h, addr := startStreamServer(t)
	m := dialMux(t, addr, "test")
	var streams []*Stream
	for i := range 3 {
		s, err := m.Stream(context.Background(), &Request{Op: OpWatch, Key: "k", FromRevision: uint64(i)})
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, s)
	}
	callErr := make(chan error, 1)
	go func() {
		_, err := m.Call(context.Background(), &Request{Op: OpLockAcquire, Name: "l", Wait: true})
		callErr <- err
	}()
	<-h.blocked
	// Every stream has sent its responses before the kill.
	for i, s := range streams {
		expectRevisions(t, s, "k", i)
	}
	if _, err := m.Call(context.Background(), &Request{Op: OpStatus, Key: "kill"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("kill call: %v", err)
	}
	for i, s := range streams {
		if r, err := recvTimeout(t, s); !errors.Is(err, ErrClosed) {
			t.Fatalf("stream %d: %+v, %v", i, r, err)
		}
		s.Close()
	}
	if err := <-callErr; !errors.Is(err, ErrClosed) {
		t.Fatalf("blocked call: %v", err)
	}
	if _, err := m.Stream(context.Background(), &Request{Op: OpObserve}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Stream after death: %v", err)
	}
}

var _ Handler = (*streamHandler)(nil)

// TestClientConnTrySend: TrySend never waits: with the client not
// reading, it fails with ErrQueueFull once the queue is full, and with
// ErrClosed once the connection is closed.
func TestClientConnTrySend(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	c := &ClientConn{fc: newFrameConn(server, NewFrameReader(server, 0), DefaultFrameBytesMax, 4, 0, true)}
	full := false
	for range 100 {
		err := c.TrySend(&Response{ID: 1, Events: []WatchEvent{{Type: EventPut, KV: KV{Key: "k"}}}})
		if errors.Is(err, ErrQueueFull) {
			full = true
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !full {
		t.Fatal("the queue never filled")
	}
	c.fc.kill()
	if err := c.TrySend(&Response{ID: 2}); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
}

// TestMuxStreamConcurrentRecv: receivers sharing a stream get every
// response exactly once, and all see the end.
func TestMuxStreamConcurrentRecv(t *testing.T) {
	_, addr := startStreamServer(t)
	m := dialMux(t, addr, "test")
	const n = 1000
	s, err := m.Stream(context.Background(), &Request{Op: OpWatch, Key: "k", FromRevision: n, WatchPrefix: true})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[uint64]int{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				r, err := recvTimeout(t, s)
				if err == io.EOF {
					return
				}
				if err != nil {
					t.Errorf("Recv: %v", err)
					return
				}
				mu.Lock()
				seen[r.Revision]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != n+1 { // + the StreamEnd response, revision 0
		t.Fatalf("%d distinct responses, want %d", len(seen), n+1)
	}
	for rev, k := range seen {
		if k != 1 {
			t.Fatalf("revision %d received %d times", rev, k)
		}
	}
}
