package wire

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paxosd/paxosd/paxos"
)

// Mux multiplexes concurrent calls over one ServerConn: it gives each
// request a fresh id and hands each response to the call with that id, in
// whatever order responses arrive. When the connection dies every pending
// and later call fails with an error wrapping ErrClosed.
type Mux struct {
	c      *ServerConn
	nextID atomic.Uint64

	mu      sync.Mutex
	pending map[uint64]chan *Response
	err     error // why the connection died; set once
	done    chan struct{}
}

// NewMux starts reading responses from c. The Mux owns c from now on.
func NewMux(c *ServerConn) *Mux {
	m := &Mux{c: c, pending: map[uint64]chan *Response{}, done: make(chan struct{})}
	go m.readLoop()
	return m
}

// Call sends a copy of q with a fresh ID and waits for its response or for
// ctx. When q.TimeoutMs is zero and ctx has a deadline, the copy carries the
// time left as the server's deadline hint. A Response with Err set is
// returned as is (err == nil); err reports only transport failures and ctx.
// After ctx ends the request may still be applied: retry with the same
// ClientID and Seq to learn its outcome.
func (m *Mux) Call(ctx context.Context, q *Request) (*Response, error) {
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
		m.forget(id)
		return nil, ctx.Err()
	}
}

func (m *Mux) forget(id uint64) {
	m.mu.Lock()
	delete(m.pending, id)
	m.mu.Unlock()
}

func (m *Mux) readLoop() {
	for {
		s, err := m.c.Recv()
		if err != nil {
			m.fail(err)
			return
		}
		m.mu.Lock()
		ch := m.pending[s.ID]
		delete(m.pending, s.ID)
		m.mu.Unlock()
		if ch != nil { // nil: the call gave up already
			ch <- s
		}
	}
}

func (m *Mux) fail(err error) {
	m.mu.Lock()
	m.err = fmt.Errorf("%w: %w", ErrClosed, err)
	for id, ch := range m.pending {
		close(ch)
		delete(m.pending, id)
	}
	m.mu.Unlock()
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

// Close closes the connection; pending calls fail.
func (m *Mux) Close() error {
	err := m.c.Close()
	<-m.done
	return err
}
