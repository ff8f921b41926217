package client

import (
	"context"
	"fmt"

	"github.com/paxosd/paxosd/wire"
)

// conn is one multiplexed connection to a node: many calls in flight,
// answers matched back by request id (wire.Mux).
type conn struct {
	addr string
	mux  *wire.Mux
}

func dial(ctx context.Context, addr string, cfg wire.DialConfig, creds *credentials) (*conn, error) {
	sc, err := wire.DialClientConfig(ctx, addr, cfg)
	if err != nil {
		return nil, err
	}
	c := &conn{addr: addr, mux: wire.NewMux(sc)}
	if creds != nil {
		if err := c.authenticate(ctx, sc.Version(), creds); err != nil {
			c.close()
			return nil, err
		}
	}
	return c, nil
}

// credentials are a user's name and password (Config.User).
type credentials struct{ user, password string }

// errAuth marks an authentication the node refused: no other endpoint
// would take it either.
type errAuth struct{ err error }

func (e errAuth) Error() string { return e.err.Error() }
func (e errAuth) Unwrap() error { return e.err }

// authenticate makes the connection creds' user's, once: every request
// on it is then that user's (docs/PROTOCOL.md, "Users, roles and auth").
func (c *conn) authenticate(ctx context.Context, version uint32, creds *credentials) error {
	if version < wire.VersionAuth {
		return errAuth{fmt.Errorf("%w: node at %s speaks protocol %d, which has no users (%d or newer does): upgrade it, or connect without --user",
			ErrInvalid, c.addr, version, wire.VersionAuth)}
	}
	resp, err := c.mux.Call(ctx, &wire.Request{Op: wire.OpAuthenticate, Name: creds.user, Value: []byte(creds.password)})
	if err != nil {
		return err
	}
	if err := responseError(resp); err != nil {
		return errAuth{err}
	}
	return nil
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

// creds returns the credentials each connection authenticates with, or
// nil (none, or a client certificate's).
func (c *Client) creds() *credentials {
	if c.cfg.User == "" {
		return nil
	}
	return &credentials{c.cfg.User, c.cfg.Password}
}
