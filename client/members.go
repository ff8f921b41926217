package client

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/wire"
)

// Member is one member of the cluster, as the answering node sees it.
type Member struct {
	ID   paxos.NodeID
	Addr string
	// Learner: it receives the log, does not vote.
	Learner bool
	// Next: it belongs to a configuration chosen but not yet in force;
	// Leaving: it is in force but not in the next one.
	Next, Leaving bool
	// Reachable, Commit and Lag: whether the answering node is connected
	// to it, its chosen watermark as last heard (0: unknown; only a
	// leader hears every member's), and how many slots it is behind.
	Reachable bool
	Commit    paxos.Slot
	Lag       uint64
}

// Membership is the cluster's configuration: its version and members.
type Membership struct {
	Version uint64
	Members []Member
}

func membershipOf(r *wire.Response) Membership {
	m := Membership{Version: r.ConfigVersion}
	for _, x := range r.Members {
		m.Members = append(m.Members, Member{ID: x.ID, Addr: x.Addr, Learner: x.Learner, Next: x.Next, Leaving: x.Leaving,
			Reachable: x.Reachable, Commit: x.Commit, Lag: x.Lag})
	}
	return m
}

// MemberList returns the membership as the node the client talks to (the
// leader, once known) applied it.
func (c *Client) MemberList(ctx context.Context) (Membership, error) {
	return c.member(ctx, &wire.Request{Op: wire.OpMemberList})
}

// MemberAdd adds member id at addr (a learner if learner: it then
// catches up without counting in quorums; promote it with MemberPromote).
// It returns once the new configuration is in force. Start the new node
// after: paxosd serve --id ID --listen ADDR --join ... on an empty data
// directory.
func (c *Client) MemberAdd(ctx context.Context, id paxos.NodeID, addr string, learner bool) (Membership, error) {
	return c.member(ctx, &wire.Request{Op: wire.OpMemberAdd, MemberID: uint64(id), MemberAddr: addr, MemberLearner: learner})
}

// MemberPromote makes learner id a voter. It fails with ErrMemberConflict
// (saying by how much) while the learner lags too far behind the leader.
func (c *Client) MemberPromote(ctx context.Context, id paxos.NodeID) (Membership, error) {
	return c.member(ctx, &wire.Request{Op: wire.OpMemberPromote, MemberID: uint64(id)})
}

// MemberRemove removes member id. Removing the leader makes it hand
// leadership over once the change is in force.
func (c *Client) MemberRemove(ctx context.Context, id paxos.NodeID) (Membership, error) {
	return c.member(ctx, &wire.Request{Op: wire.OpMemberRemove, MemberID: uint64(id)})
}

// MemberUpdate records that member id moved to addr.
func (c *Client) MemberUpdate(ctx context.Context, id paxos.NodeID, addr string) (Membership, error) {
	return c.member(ctx, &wire.Request{Op: wire.OpMemberUpdate, MemberID: uint64(id), MemberAddr: addr})
}

func (c *Client) member(ctx context.Context, q *wire.Request) (Membership, error) {
	var before Membership
	if q.Op.ChangesMembers() {
		// A change is not deduplicated like a command: an attempt whose
		// answer was lost may have made it, and the retry then finds it
		// made ("node 4 is not a member"). So a conflict is taken for
		// success if the change's effect was not there before the call
		// and is there after it.
		m, err := c.member(ctx, &wire.Request{Op: wire.OpMemberList})
		if err != nil {
			return Membership{}, err
		}
		before = m
	}
	resp, err := c.do(ctx, q)
	if err != nil {
		return Membership{}, err
	}
	if err := responseError(resp); err != nil {
		if q.Op.ChangesMembers() && errors.Is(err, ErrMemberConflict) && !applied(before, q) {
			if after, lerr := c.member(ctx, &wire.Request{Op: wire.OpMemberList}); lerr == nil && applied(after, q) {
				c.setEndpoints(after)
				return after, nil
			}
		}
		return Membership{}, err
	}
	m := membershipOf(resp)
	if q.Op.ChangesMembers() {
		c.setEndpoints(m)
	}
	return m, nil
}

// applied reports whether m shows the effect of member change q.
func applied(m Membership, q *wire.Request) bool {
	var x *Member
	for i := range m.Members {
		if uint64(m.Members[i].ID) == q.MemberID && !m.Members[i].Leaving {
			x = &m.Members[i]
		}
	}
	switch q.Op {
	case wire.OpMemberAdd:
		return x != nil && x.Addr == q.MemberAddr && x.Learner == q.MemberLearner
	case wire.OpMemberPromote:
		return x != nil && !x.Learner
	case wire.OpMemberRemove:
		return x == nil
	case wire.OpMemberUpdate:
		return x != nil && x.Addr == q.MemberAddr
	}
	return false
}

// endpoints returns the endpoints the client tries (Config.Endpoints, or
// the members' addresses once an auto-sync replaced them).
func (c *Client) endpoints() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg.Endpoints
}

// setEndpoints makes the members' addresses the client's endpoints.
func (c *Client) setEndpoints(m Membership) {
	var addrs []string
	for _, x := range m.Members {
		if x.Addr != "" && !x.Leaving {
			addrs = append(addrs, x.Addr)
		}
	}
	if len(addrs) == 0 {
		return
	}
	slices.Sort(addrs)
	addrs = slices.Compact(addrs)
	// The endpoints the client was given come after the members' own
	// addresses: tried last, they still reach the cluster when the
	// addresses it advertises cannot be reached from here (another
	// network, a proxy in between).
	members := len(addrs)
	for _, e := range c.given {
		if !slices.Contains(addrs[:members], e) {
			addrs = append(addrs, e)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !slices.Equal(addrs, c.cfg.Endpoints) {
		c.cfg.Endpoints = addrs // replaced, never modified: connect reads it unlocked
	}
}

// autoSync refreshes the endpoints from the cluster's membership every
// interval until the client closes (Config.AutoSyncInterval). A node that
// does not know the member operations (older than protocol 16) answers
// Invalid: the endpoints stay as they are.
func (c *Client) autoSync(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		// The first sync at once: endpoints given from an old list (a
		// script's, a unit file's) are replaced before they are needed.
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.AttemptTimeout)
		if m, err := c.MemberList(ctx); err == nil && m.Version > 0 {
			c.setEndpoints(m)
		}
		cancel()
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
	}
}
