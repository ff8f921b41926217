package client

import (
	"context"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/wire"
)

// TransferLeadership asks the cluster's leader to hand its leadership to
// member to (0: the most caught-up member it can reach). The leader steps
// down at once, giving up its lease, and the member campaigns without
// waiting for an election timeout. It returns the member asked to take
// over; whether it did shows in Status a moment later (if it cannot, the
// cluster elects a leader as after a crash).
func (c *Client) TransferLeadership(ctx context.Context, to paxos.NodeID) (paxos.NodeID, error) {
	resp, err := c.do(ctx, &wire.Request{Op: wire.OpLeaderTransfer, TargetNode: to})
	if err != nil {
		return 0, err
	}
	if err := responseError(resp); err != nil {
		return 0, err
	}
	return resp.LeaderHint, nil
}
