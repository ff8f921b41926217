package client

import (
	"context"

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
