package client

import (
	"context"

	"github.com/paxosd/paxosd/wire"
)

// conn is one multiplexed connection to a node: many calls in flight,
// answers matched back by request id (wire.Mux).
type conn struct {
	addr string
	mux  *wire.Mux
}

func dial(ctx context.Context, addr string, cfg wire.DialConfig) (*conn, error) {
	sc, err := wire.DialClientConfig(ctx, addr, cfg)
	if err != nil {
		return nil, err
	}
	return &conn{addr: addr, mux: wire.NewMux(sc)}, nil
}

func (c *conn) call(ctx context.Context, q *wire.Request) (*wire.Response, error) {
	return c.mux.Call(ctx, q)
}

func (c *conn) close() { c.mux.Close() }

func (c *conn) broken() bool {
	select {
	case <-c.mux.Done():
		return true
	default:
		return false
	}
}

// dialConfig is how the client dials a node.
func (c *Client) dialConfig() wire.DialConfig {
	return wire.DialConfig{ClusterID: c.cfg.ClusterID, FrameBytesMax: c.cfg.FrameBytesMax, TLS: c.cfg.TLS}
}
