package client

import (
	"context"
	"sync"

	"github.com/paxosd/paxosd/wire"
)

// conn multiplexes calls over one server connection: requests carry ids and
// answers are matched back by id, in whatever order they come.
type conn struct {
	addr string
	sc   *wire.ServerConn

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan *wire.Response
	err     error
	done    chan struct{}
}

func dial(ctx context.Context, addr, clusterID string, frameMax int) (*conn, error) {
	sc, err := wire.DialClient(ctx, addr, clusterID, frameMax)
	if err != nil {
		return nil, err
	}
	c := &conn{addr: addr, sc: sc, pending: map[uint64]chan *wire.Response{}, done: make(chan struct{})}
	go c.readLoop()
	return c, nil
}

func (c *conn) readLoop() {
	for {
		resp, err := c.sc.Recv()
		if err != nil {
			c.fail(err)
			return
		}
		c.mu.Lock()
		ch := c.pending[resp.ID]
		delete(c.pending, resp.ID)
		c.mu.Unlock()
		if ch != nil {
			ch <- resp
		}
	}
}

func (c *conn) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = err
	close(c.done)
	c.sc.Close()
}

// call sends q and waits for its answer, the connection's failure, or ctx.
func (c *conn) call(ctx context.Context, q *wire.Request) (*wire.Response, error) {
	ch := make(chan *wire.Response, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, err
	}
	c.nextID++
	q.ID = c.nextID
	c.pending[q.ID] = ch
	c.mu.Unlock()
	if err := c.sc.Send(q); err != nil {
		c.forget(q.ID)
		return nil, err
	}
	select {
	case resp := <-ch:
		return resp, nil
	case <-c.done:
		c.forget(q.ID)
		return nil, c.err
	case <-ctx.Done():
		c.forget(q.ID)
		return nil, ctx.Err()
	}
}

func (c *conn) forget(id uint64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

func (c *conn) close() { c.fail(wire.ErrClosed) }

func (c *conn) broken() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}
