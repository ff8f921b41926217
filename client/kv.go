package client

import (
	"context"
	"fmt"

	"github.com/paxosd/paxosd/wire"
)

// KV is a key with its value and revisions: CreateRevision is the store
// revision that created the key, ModRevision the one that last changed it;
// Version counts the puts since the key was created.
//
// It is the wire protocol's type (an alias, not a copy): a response's pair
// is handed to the caller as it was decoded, with no conversion.
type KV = wire.KV

// ReadOption changes how Get and List read.
type ReadOption func(*wire.Request)

// Serializable reads from the contacted node's applied state without a
// round through the leader: faster, but possibly stale.
func Serializable() ReadOption { return func(q *wire.Request) { q.Serializable = true } }

// WriteOption changes how Put, Delete and CompareAndSet write.
type WriteOption func(*wire.Request)

// Fenced makes the write succeed only while token still holds the named
// lock (else ErrFenced and nothing changes): a stale lock holder cannot
// overwrite what the current one wrote.
func Fenced(lock string, token uint64) WriteOption {
	return func(q *wire.Request) { q.FenceName, q.FenceToken = lock, token }
}

// WithSession makes a Put's key ephemeral: bound to session s, it is
// deleted when s ends (closed, revoked, or expired one TTL after its
// keep-alives stopped), like a key on an etcd lease. A later Put without
// it makes the key permanent again; a Put with another session moves it
// to that session. It needs protocol 9 and a cluster at level 9
// (ErrUnsupported on a connection to an older server, ErrInvalid from a
// cluster not yet at level 9), and applies to Put only: Delete and
// CompareAndSet refuse it (a set that writes makes the key permanent).
func WithSession(s *Session) WriteOption {
	return func(q *wire.Request) { q.SessionID = s.ID() }
}

// sessionOnPutOnly refuses WithSession on a write other than Put, which
// the server would ignore.
func sessionOnPutOnly(q *wire.Request) error {
	if q.SessionID != 0 {
		return fmt.Errorf("%w: WithSession applies to Put only, not %s", ErrInvalid, q.Op)
	}
	return nil
}

func applyWrite(q *wire.Request, opts []WriteOption) *wire.Request {
	for _, o := range opts {
		o(q)
	}
	return q
}

// Put sets key to value and returns the store revision of the change.
func (c *Client) Put(ctx context.Context, key string, value []byte, opts ...WriteOption) (uint64, error) {
	// It asks for no previous pair (omit_prev): it returns none, and the
	// pair would cost both ends a value's bytes per overwrite.
	resp, err := c.do(ctx, applyWrite(&wire.Request{Op: wire.OpPut, Key: key, Value: value, OmitPrev: true}, opts))
	if err != nil {
		return 0, err
	}
	return resp.Revision, responseError(resp)
}

// Get reads key; a missing key is ErrNotFound. Reads are linearizable
// unless Serializable is given.
func (c *Client) Get(ctx context.Context, key string, opts ...ReadOption) (KV, error) {
	q := &wire.Request{Op: wire.OpGet, Key: key}
	for _, o := range opts {
		o(q)
	}
	resp, err := c.do(ctx, q)
	if err != nil {
		return KV{}, err
	}
	if resp.Err == wire.ErrNotFound {
		return KV{}, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	if err := responseError(resp); err != nil {
		return KV{}, err
	}
	return resp.KV, nil
}

// Delete removes key and reports whether it existed; a missing key is no
// error.
func (c *Client) Delete(ctx context.Context, key string, opts ...WriteOption) (bool, error) {
	q := applyWrite(&wire.Request{Op: wire.OpDelete, Key: key, OmitPrev: true}, opts)
	if err := sessionOnPutOnly(q); err != nil {
		return false, err
	}
	resp, err := c.do(ctx, q)
	if err != nil {
		return false, err
	}
	if resp.Err == wire.ErrNotFound {
		// A node answers so a client of protocol 6 or older; from 7 on,
		// success with Found false (wire.VersionClientAnswers).
		return false, nil
	}
	return resp.Found, responseError(resp)
}

// Condition is what CompareAndSet compares.
type Condition func(*wire.Request)

// IfValue holds when the key exists with exactly this value.
func IfValue(v []byte) Condition {
	return func(q *wire.Request) { q.PrevValue, q.HasPrevValue = v, true }
}

// IfModRevision holds when the key was last changed at revision rev.
func IfModRevision(rev uint64) Condition {
	return func(q *wire.Request) { q.PrevRevision, q.HasPrevRevision = rev, true }
}

// IfAbsent holds when the key does not exist.
func IfAbsent() Condition { return IfModRevision(0) }

// CompareAndSet sets key to value if cond holds. It reports whether it did,
// and the key as it was before.
func (c *Client) CompareAndSet(ctx context.Context, key string, value []byte, cond Condition, opts ...WriteOption) (bool, KV, error) {
	q := applyWrite(&wire.Request{Op: wire.OpCAS, Key: key, Value: value}, opts)
	if err := sessionOnPutOnly(q); err != nil {
		return false, KV{}, err
	}
	cond(q)
	resp, err := c.do(ctx, q)
	if err != nil {
		return false, KV{}, err
	}
	if resp.Err == wire.ErrCASFailed {
		return false, resp.KV, nil
	}
	if err := responseError(resp); err != nil {
		return false, KV{}, err
	}
	return resp.Succeeded, resp.KV, nil
}
