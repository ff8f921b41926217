package client

import (
	"context"
	"sync"
	"time"

	"github.com/paxosd/paxosd/wire"
)

// MemberStatus is what one endpoint says of itself, or why it could not.
type MemberStatus struct {
	Endpoint string
	Status   wire.NodeStatus
	Err      error
}

// Status asks every endpoint, in parallel, for its own status.
func (c *Client) Status(ctx context.Context) []MemberStatus {
	out := make([]MemberStatus, len(c.cfg.Endpoints))
	var wg sync.WaitGroup
	for i, addr := range c.cfg.Endpoints {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = c.memberStatus(ctx, addr)
		}()
	}
	wg.Wait()
	return out
}

func (c *Client) memberStatus(ctx context.Context, addr string) MemberStatus {
	ms := MemberStatus{Endpoint: addr}
	dctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	cn, err := dial(dctx, addr, c.cfg.ClusterID, c.cfg.FrameBytesMax)
	if err != nil {
		ms.Err = err
		return ms
	}
	defer cn.close()
	resp, err := cn.call(dctx, &wire.Request{Op: wire.OpStatus})
	switch {
	case err != nil:
		ms.Err = err
	case responseError(resp) != nil:
		ms.Err = responseError(resp)
	case len(resp.Status) == 0:
		ms.Err = unavailable("%s answered no status", addr)
	default:
		ms.Status = resp.Status[0]
	}
	return ms
}

// Unconnected returns a client that has not connected yet; only Status,
// which dials every endpoint itself, is meant for it.
func Unconnected(cfg Config) *Client {
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = time.Second
	}
	return &Client{cfg: cfg, id: randomID(), outstanding: map[uint64]struct{}{}}
}
