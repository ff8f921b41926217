package wire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paxosd/paxosd/paxos"
)

// StreamBufferMax is how many responses a Stream buffers for a consumer
// that does not call Recv. One more would overflow it: the Mux then ends
// the stream with ErrStreamOverflow rather than hold up the connection.
const StreamBufferMax = 1024

var (
	// ErrStreamOverflow ends a Stream whose consumer fell more than
	// StreamBufferMax responses behind. The Mux has cancelled it; open a
	// new one from the last position seen (Request.FromRevision,
	// Request.AfterSeq).
	ErrStreamOverflow = errors.New("wire: stream overflow: consumer too slow")
	// ErrStreamClosed: Stream.Recv after Stream.Close.
	ErrStreamClosed = errors.New("wire: stream closed")
)

// Mux multiplexes concurrent calls and streams over one ServerConn: it
// gives each request a fresh id and hands each response to the call or
// stream with that id, in whatever order responses arrive. When the
// connection dies every pending and later call, and every stream, fails
// with an error wrapping ErrClosed.
//
// The Mux's reader never waits for a consumer: a call's single answer has
// a place reserved, and a stream's responses are buffered up to
// StreamBufferMax.
type Mux struct {
	c      *ServerConn
	nextID atomic.Uint64

	mu      sync.Mutex
	pending map[uint64]chan *Response
	streams map[uint64]*Stream
	err     error // why the connection died; set once
	done    chan struct{}
}

// NewMux starts reading responses from c. The Mux owns c from now on.
func NewMux(c *ServerConn) *Mux {
	m := &Mux{
		c:       c,
		pending: map[uint64]chan *Response{},
		streams: map[uint64]*Stream{},
		done:    make(chan struct{}),
	}
	go m.readLoop()
	return m
}

// Call sends a copy of q with a fresh ID and waits for its response or for
// ctx. When q.TimeoutMs is zero and ctx has a deadline, the copy carries the
// time left as the server's deadline hint. A Response with Err set is
// returned as is (err == nil); err reports only transport failures and ctx.
// After ctx ends the request may still be applied: retry with the same
// ClientID and Seq to learn its outcome.
//
// A blocking call (Request.Blocking: a lock wait, a campaign) whose ctx
// ends is also cancelled on the server (an OpCancel, sent without
// waiting), which stops waiting for it there; its place in the lock's or
// election's queue in the cluster stays until the caller sends
// OpLockRelease or OpResign, or its session ends. Streams are opened with
// Stream, not Call.
func (m *Mux) Call(ctx context.Context, q *Request) (*Response, error) {
	if q.Op.IsStream() {
		return nil, fmt.Errorf("wire: %s opens a stream: use Mux.Stream", q.Op)
	}
	id := m.nextID.Add(1)
	ch := make(chan *Response, 1)
	m.mu.Lock()
	if m.err != nil {
		m.mu.Unlock()
		return nil, m.err
	}
	m.pending[id] = ch
	m.mu.Unlock()

	req := *q
	req.ID = id
	if deadline, ok := ctx.Deadline(); ok && req.TimeoutMs == 0 {
		req.TimeoutMs = uint32(min(max(time.Until(deadline).Milliseconds(), 1), 1<<32-1))
	}
	if err := m.c.Send(&req); err != nil {
		m.forget(id)
		return nil, err
	}
	select {
	case s, ok := <-ch:
		if !ok {
			return nil, m.Err()
		}
		return s, nil
	case <-ctx.Done():
		if m.forget(id) && req.Blocking() {
			m.cancel(id)
		}
		return nil, ctx.Err()
	}
}

// forget drops a call's pending entry; it reports whether the entry was
// still there (no answer had arrived).
func (m *Mux) forget(id uint64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.pending[id]
	delete(m.pending, id)
	return ok
}

// cancel sends an OpCancel for request id without waiting: from another
// goroutine if the connection's queue is full. Its answer is dropped.
func (m *Mux) cancel(id uint64) {
	q := &Request{ID: m.nextID.Add(1), Op: OpCancel, CancelID: id}
	encode := func(b []byte) []byte { return EncodeRequest(b, q) }
	if err := m.c.fc.trySend(encode); err == ErrQueueFull {
		go m.c.fc.send(encode)
	}
}

// Stream sends a copy of q, which must open a stream (OpWatch, OpObserve),
// with a fresh ID, and returns the Stream its responses arrive on. Unlike
// Call, it sets no deadline hint: the stream lasts until the server ends
// it, Close, or the end of ctx, which closes the stream as Close does.
func (m *Mux) Stream(ctx context.Context, q *Request) (*Stream, error) {
	if !q.Op.IsStream() {
		return nil, fmt.Errorf("wire: %s is not a stream: use Mux.Call", q.Op)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := &Stream{m: m, id: m.nextID.Add(1), wake: make(chan struct{}, 1), done: make(chan struct{})}
	m.mu.Lock()
	if m.err != nil {
		m.mu.Unlock()
		return nil, m.err
	}
	m.streams[s.id] = s
	m.mu.Unlock()

	req := *q
	req.ID = s.id
	if err := m.c.Send(&req); err != nil {
		m.mu.Lock()
		delete(m.streams, s.id)
		m.mu.Unlock()
		s.end(err)
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { s.close(ctx.Err()) })
	s.mu.Lock()
	if s.finished() { // ended, or closed by ctx, already
		s.mu.Unlock()
		stop()
	} else {
		s.stopCtx = stop
		s.mu.Unlock()
	}
	return s, nil
}

func (m *Mux) readLoop() {
	for {
		s, err := m.c.Recv()
		if err != nil {
			m.fail(err)
			return
		}
		m.mu.Lock()
		if ch := m.pending[s.ID]; ch != nil {
			delete(m.pending, s.ID)
			m.mu.Unlock()
			ch <- s // has room: one answer per call
			continue
		}
		st := m.streams[s.ID]
		if st != nil && s.StreamEnd {
			delete(m.streams, s.ID)
		}
		m.mu.Unlock()
		// st == nil: a call or stream that gave up already.
		if st != nil && st.push(s) == ErrStreamOverflow && m.drop(st) {
			m.cancel(st.id)
		}
	}
}

// drop removes st from the open streams; it reports whether st was there.
func (m *Mux) drop(st *Stream) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.streams[st.id] != st {
		return false
	}
	delete(m.streams, st.id)
	return true
}

func (m *Mux) fail(err error) {
	m.mu.Lock()
	m.err = fmt.Errorf("%w: %w", ErrClosed, err)
	for id, ch := range m.pending {
		close(ch)
		delete(m.pending, id)
	}
	streams := m.streams
	m.streams = map[uint64]*Stream{}
	m.mu.Unlock()
	for _, st := range streams {
		st.end(m.err)
	}
	m.c.fc.kill()
	close(m.done)
}

// Done is closed when the connection has died or been closed.
func (m *Mux) Done() <-chan struct{} { return m.done }

// Err returns why the connection died, or nil while it is up.
func (m *Mux) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// ServerID returns the node id of the server at the other end.
func (m *Mux) ServerID() paxos.NodeID { return m.c.ServerID() }

// Version returns the protocol version the connection negotiated.
func (m *Mux) Version() uint32 { return m.c.Version() }

// Close closes the connection; pending calls and streams fail.
func (m *Mux) Close() error {
	err := m.c.Close()
	<-m.done
	return err
}

// Stream is one stream request (OpWatch, OpObserve) on a Mux and the
// responses that answer it. Its methods are safe for concurrent use.
type Stream struct {
	m  *Mux
	id uint64

	mu sync.Mutex
	// buf holds the responses not yet received, at most StreamBufferMax
	// plus the StreamEnd one; only the Mux's reader adds to it.
	buf []*Response
	// endErr, once set, is what Recv returns when buf is empty: nothing
	// more will be added (io.EOF after StreamEnd, ErrStreamOverflow, the
	// connection's error).
	endErr error
	// closeErr, once set (by Close or the end of ctx), is what Recv
	// returns from then on.
	closeErr error
	stopCtx  func() bool
	// wake holds a token when buf may have gained a response; done is
	// closed once endErr or closeErr is set.
	wake chan struct{}
	done chan struct{}
}

// ID returns the request id of the stream on its connection.
func (s *Stream) ID() uint64 { return s.id }

// Recv returns the stream's next response, in the order the server sent
// them. The last one has StreamEnd set (with Err saying why, e.g.
// ErrCanceled or ErrCompacted); after it Recv returns io.EOF. When the
// stream fails instead, Recv returns the responses buffered before the
// failure and then the error: ErrStreamOverflow, or one wrapping
// ErrClosed when the connection died. After Close, Recv returns
// ErrStreamClosed, and after the end of the stream's ctx, ctx.Err().
// A response's events may be shared with other streams' responses (a
// push every watcher of a prefix gets alike is decoded once): treat them
// as read-only.
func (s *Stream) Recv() (*Response, error) {
	for {
		s.mu.Lock()
		switch {
		case s.closeErr != nil:
			err := s.closeErr
			s.mu.Unlock()
			return nil, err
		case len(s.buf) > 0:
			r := s.buf[0]
			s.buf[0] = nil
			s.buf = s.buf[1:]
			if len(s.buf) > 0 {
				s.signal() // for another concurrent Recv
			}
			s.mu.Unlock()
			return r, nil
		case s.endErr != nil:
			err := s.endErr
			s.mu.Unlock()
			return nil, err
		}
		s.mu.Unlock()
		select {
		case <-s.wake:
		case <-s.done:
		}
	}
}

// Close stops the delivery of responses and, if the stream is still open
// on the server, sends an OpCancel for it without waiting. It is
// idempotent and always returns nil.
func (s *Stream) Close() error {
	s.close(ErrStreamClosed)
	return nil
}

func (s *Stream) close(err error) {
	s.mu.Lock()
	if s.closeErr != nil {
		s.mu.Unlock()
		return
	}
	s.closeErr = err
	s.buf = nil
	stop := s.finish()
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
	if s.m.drop(s) {
		s.m.cancel(s.id)
	}
}

// push queues r; it returns ErrStreamOverflow, and ends the stream with
// it, if the buffer is full. Responses that come after the end, or after
// Close, are dropped.
func (s *Stream) push(r *Response) error {
	var err error
	var stop func() bool
	s.mu.Lock()
	switch {
	case s.finished():
	case !r.StreamEnd && len(s.buf) >= StreamBufferMax:
		err = ErrStreamOverflow
		s.endErr = err
		stop = s.finish()
	default:
		s.buf = append(s.buf, r)
		if r.StreamEnd {
			s.endErr = io.EOF
			stop = s.finish()
		}
		s.signal()
	}
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
	return err
}

// end records that no more responses will come, because of err.
func (s *Stream) end(err error) {
	s.mu.Lock()
	if s.finished() {
		s.mu.Unlock()
		return
	}
	s.endErr = err
	stop := s.finish()
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// finished reports whether the stream has ended or been closed. s.mu is
// held.
func (s *Stream) finished() bool { return s.endErr != nil || s.closeErr != nil }

// finish closes done the first time the stream ends or is closed, and
// returns the function that stops watching ctx (to call without s.mu).
// s.mu is held.
func (s *Stream) finish() func() bool {
	select {
	case <-s.done:
		return nil
	default:
	}
	close(s.done)
	stop := s.stopCtx
	s.stopCtx = nil
	return stop
}

// signal leaves a wake-up token for Recv. s.mu is held.
func (s *Stream) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
