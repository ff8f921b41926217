package client

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/wire"
)

// MemberStatus is what one endpoint says of itself, or why it could not.
type MemberStatus struct {
	Endpoint string
	// ID is the member's id: from its own answer, or, for a member that
	// did not answer, from another member's list (Members); 0 if unknown.
	ID     paxos.NodeID
	Status wire.NodeStatus
	Err    error
}

// Status asks every endpoint, in parallel, for its own status: one entry
// per endpoint, in the endpoints' order.
func (c *Client) Status(ctx context.Context) []MemberStatus {
	probes := c.probe(ctx, c.endpoints())
	out := make([]MemberStatus, len(probes))
	for i, p := range probes {
		out[i] = p.MemberStatus
	}
	return out
}

// Members is Status for the whole cluster, as etcdctl's endpoint health
// --cluster: it asks the endpoints, learns the membership from any one
// that answers (each node lists every member), and asks the members that
// were not among the endpoints at their listed address. One entry per
// member, in id order (ID set even when it did not answer), then any
// endpoint that neither answered nor is a listed member's address.
func (c *Client) Members(ctx context.Context) []MemberStatus {
	listed := map[paxos.NodeID]string{}
	byID := map[paxos.NodeID]MemberStatus{}
	var failed []MemberStatus
	for _, p := range c.probe(ctx, c.endpoints()) {
		if p.Err != nil {
			failed = append(failed, p.MemberStatus)
			continue
		}
		if _, dup := byID[p.ID]; !dup {
			byID[p.ID] = p.MemberStatus
		}
		for _, st := range p.members {
			if _, ok := listed[st.ID]; !ok {
				listed[st.ID] = st.Addr
			}
		}
	}
	// A listed member that did not answer: an endpoint at its address
	// already failed, or it is asked now.
	var askIDs []paxos.NodeID
	var askAddrs []string
	for _, id := range sortedIDs(listed) {
		if _, ok := byID[id]; ok {
			continue
		}
		if i := slices.IndexFunc(failed, func(m MemberStatus) bool { return m.Endpoint == listed[id] }); i >= 0 {
			failed[i].ID = id
			byID[id] = failed[i]
			failed = slices.Delete(failed, i, i+1)
			continue
		}
		askIDs, askAddrs = append(askIDs, id), append(askAddrs, listed[id])
	}
	for i, p := range c.probe(ctx, askAddrs) {
		if p.Err == nil && p.ID != askIDs[i] {
			// Members disagree on who is where: say so rather than count
			// the answer as this member's.
			p.Err = unavailable("%s is listed as node %d but answered as node %d", askAddrs[i], askIDs[i], p.ID)
		}
		p.ID = askIDs[i]
		byID[askIDs[i]] = p.MemberStatus
	}
	out := make([]MemberStatus, 0, len(byID)+len(failed))
	for _, id := range sortedIDs(byID) {
		out = append(out, byID[id])
	}
	return append(out, failed...)
}

// probeResult is one endpoint's answer: its own status, and every member
// as it lists them (itself first).
type probeResult struct {
	MemberStatus
	members []wire.NodeStatus
}

// probe asks every address, in parallel, for its status.
func (c *Client) probe(ctx context.Context, addrs []string) []probeResult {
	out := make([]probeResult, len(addrs))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = c.memberStatus(ctx, addr)
		}()
	}
	wg.Wait()
	return out
}

func (c *Client) memberStatus(ctx context.Context, addr string) probeResult {
	ms := probeResult{MemberStatus: MemberStatus{Endpoint: addr}}
	dctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	cn, err := dial(dctx, addr, c.dialConfig(), c.creds())
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
		// The answering node's own status comes first.
		ms.Status, ms.ID, ms.members = resp.Status[0], resp.Status[0].ID, resp.Status
	}
	return ms
}

func sortedIDs[V any](m map[paxos.NodeID]V) []paxos.NodeID {
	out := make([]paxos.NodeID, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// Unconnected returns a client that has not connected yet; only Status,
// which dials every endpoint itself, is meant for it.
func Unconnected(cfg Config) *Client {
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = time.Second
	}
	return &Client{cfg: cfg, id: randomID(), outstanding: map[uint64]bool{}}
}
