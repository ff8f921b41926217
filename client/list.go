package client

import (
	"context"
	"fmt"

	"github.com/paxosd/paxosd/wire"
)

// Sessions lists the cluster's sessions as the contacted node's applied
// state has them (what each holds and waits for), sorted by id.
func (c *Client) Sessions(ctx context.Context) ([]wire.SessionInfo, error) {
	resp, err := c.do(ctx, &wire.Request{Op: wire.OpSessionList})
	if err != nil {
		return nil, err
	}
	return resp.Sessions, responseError(resp)
}

// Locks lists the locks that are held or waited for, as the contacted
// node's applied state has them, sorted by name.
func (c *Client) Locks(ctx context.Context) ([]wire.LockInfo, error) {
	resp, err := c.do(ctx, &wire.Request{Op: wire.OpLockList})
	if err != nil {
		return nil, err
	}
	return resp.Locks, responseError(resp)
}

// RevokeSession ends session id, whoever opened it, through the log as if
// its owner had closed it: its locks are released at once (no lock-delay),
// its lock waits and candidacies end, a leadership it holds passes on. It
// returns the session as it was. A session the cluster does not have
// (expired, closed, never opened) is ErrSessionExpired.
//
// The owner learns of it at its next keep-alive (within a third of its
// TTL) and declares the session lost; until then it may act as if it still
// held its locks, which is what fencing tokens (CheckToken) are for.
func (c *Client) RevokeSession(ctx context.Context, id uint64) (wire.SessionInfo, error) {
	if id == 0 {
		return wire.SessionInfo{}, fmt.Errorf("%w: session id 0: ids start at 1", ErrInvalid)
	}
	resp, err := c.do(ctx, &wire.Request{Op: wire.OpSessionClose, SessionID: id})
	if err != nil {
		return wire.SessionInfo{}, err
	}
	return resp.Session, responseError(resp)
}
