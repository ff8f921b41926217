package client

import (
	"context"

	"github.com/paxosd/paxosd/wire"
)

// QuotaInfo is the cluster's space quota as the answering node sees it.
type QuotaInfo struct {
	// Used is the bytes of the live keys and values (key length plus
	// value length, summed).
	Used uint64
	// Limit is the quota in bytes. While Set is false, no quota has been
	// applied yet (a cluster with a member older than protocol 4) and
	// Limit is the default the node would propose; nothing is enforced.
	Limit uint64
	Set   bool
}

// SetQuota sets the cluster's space quota to bytes, through the log: from
// then on every member refuses a put or compare-and-set that would grow
// the keys' and values' bytes beyond it (ErrQuotaExceeded). It fails with
// ErrInvalid while a member runs a version older than protocol 4.
func (c *Client) SetQuota(ctx context.Context, bytes uint64) error {
	resp, err := c.do(ctx, &wire.Request{Op: wire.OpQuotaSet, QuotaBytes: bytes})
	if err != nil {
		return err
	}
	return responseError(resp)
}

// Quota reads the space quota and its usage from the contacted node's
// applied state (like a serializable read: it may lag the leader).
func (c *Client) Quota(ctx context.Context) (QuotaInfo, error) {
	resp, err := c.do(ctx, &wire.Request{Op: wire.OpQuotaGet})
	if err != nil {
		return QuotaInfo{}, err
	}
	if err := responseError(resp); err != nil {
		return QuotaInfo{}, err
	}
	return QuotaInfo{Used: resp.QuotaUsed, Limit: resp.QuotaBytes, Set: resp.QuotaSet}, nil
}
