package service

import (
	"maps"
	"slices"
	"sync"

	"github.com/paxosd/paxosd/paxos"
)

// memberBook is the node's view of the cluster's membership: the state
// machine's (paxos.Configs, as of the applied slot), with every member's
// address. The loop updates it as configuration values apply
// (syncMembers); the server's goroutines read it (peer checks, dials), so
// it is locked.
type memberBook struct {
	mu      sync.RWMutex
	configs paxos.Configs
	addrs   map[paxos.NodeID]string
	// ids are the members of the current and the next configuration,
	// voters and learners, in order.
	ids []paxos.NodeID
	// former are the addresses of the members the last change dropped:
	// still dialed, so that one that missed its removal is told (its
	// PreVotes are answered with what it lacks, replica.catchUpPeer).
	former map[paxos.NodeID]string
	// learned are addresses of members this node's membership does not
	// name yet, asked of the others (members_learn.go).
	learned map[paxos.NodeID]string
}

func newMemberBook(c paxos.Configs) *memberBook {
	b := &memberBook{}
	b.set(c)
	return b
}

// set replaces the book's membership with c.
func (b *memberBook) set(c paxos.Configs) {
	addrs := map[paxos.NodeID]string{}
	// The next configuration's address wins: a member that moved is
	// reached at its new address as soon as the change is chosen.
	for _, m := range []paxos.Membership{c.Current, c.Next} {
		for _, x := range m.Members {
			addrs[x.ID] = x.Addr
		}
	}
	ids := slices.Sorted(maps.Keys(addrs))
	b.mu.Lock()
	defer b.mu.Unlock()
	former := map[paxos.NodeID]string{}
	for id, addr := range b.addrs {
		if _, ok := addrs[id]; !ok {
			former[id] = addr
		}
	}
	if len(former) > 0 || b.former == nil {
		b.former = former
	}
	for id := range b.learned {
		if _, ok := addrs[id]; ok {
			delete(b.learned, id) // a member now: its address is the membership's
		}
	}
	b.configs, b.addrs, b.ids = c.Clone(), addrs, ids
}

// addr returns member id's address (or a former member's; "" if it is
// neither).
func (b *memberBook) addr(id paxos.NodeID) string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if a, ok := b.addrs[id]; ok {
		return a
	}
	if a, ok := b.former[id]; ok {
		return a
	}
	return b.learned[id]
}

// has reports whether id is a member (voter or learner) of the current
// or the next configuration.
func (b *memberBook) has(id paxos.NodeID) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	_, ok := b.addrs[id]
	return ok
}

// members returns the members of the current and the next configuration.
func (b *memberBook) members() []paxos.NodeID {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return slices.Clone(b.ids)
}

// addresses returns every member's address, and the former members'.
func (b *memberBook) addresses() map[paxos.NodeID]string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := maps.Clone(b.learned)
	if out == nil {
		out = map[paxos.NodeID]string{}
	}
	maps.Copy(out, b.former)
	maps.Copy(out, b.addrs)
	return out
}

// learnedMax bounds the addresses a node learns: the members its
// membership does not name yet are a handful, and in plaintext anyone may
// claim any node id (docs/SECURITY.md).
const learnedMax = 64

// learn keeps the addresses of ids that are not members, as the others
// listed them or as a Snapshot offer gave its sender's (a member's or a
// former member's address still wins: addr), replacing one learned
// before: a member that moved tells its new address. It reports whether
// it kept anything new.
func (b *memberBook) learn(found map[paxos.NodeID]string) (changed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for id, addr := range found {
		if _, ok := b.addrs[id]; ok || addr == "" || b.learned[id] == addr {
			continue
		}
		if _, ok := b.learned[id]; !ok && len(b.learned) >= learnedMax {
			continue
		}
		if b.learned == nil {
			b.learned = map[paxos.NodeID]string{}
		}
		b.learned[id], changed = addr, true
	}
	return changed
}

// removed reports whether the membership has changed since the bootstrap
// and no longer names id (in the current or the next configuration), with
// the latest version. It copies nothing: it runs for every client request.
func (b *memberBook) removed(id paxos.NodeID) (bool, uint64) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.configs.Current.Version <= 1 {
		return false, 0
	}
	_, ok := b.addrs[id]
	return !ok, b.configs.Latest().Version
}

// current returns the configuration in force.
func (b *memberBook) current() paxos.Membership {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.configs.Current.Clone()
}

// snapshot returns the whole membership.
func (b *memberBook) snapshot() paxos.Configs {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.configs.Clone()
}

// syncMembers brings the book, the transport and the dialer up to the
// state machine's membership once a configuration value applied or took
// effect.
func (n *Node) syncMembers() {
	cur, latest := n.sm.MembersVersions()
	if cur == n.membersSeen[0] && latest == n.membersSeen[1] {
		return
	}
	n.membersSeen = [2]uint64{cur, latest}
	defer n.settleMemberCalls(n.clock.Now())
	c := n.sm.Members()
	n.m.membershipVersion.Set(float64(c.Current.Version))
	n.m.members.WithLabelValues("voter").Set(float64(len(c.Current.Voters())))
	n.m.members.WithLabelValues("learner").Set(float64(len(learners(c.Current))))
	if c.Pending() {
		for i := range n.memberCalls {
			if n.memberCalls[i].want.Version == c.Next.Version {
				n.memberCalls[i].at = c.NextAt
			}
		}
	}
	n.book.set(c)
	n.publishPeers()
	ev := n.log.Info().Uint64("version", cur).Uints32("voters", idsUint32(c.Current.Voters())).
		Uints32("learners", idsUint32(learners(c.Current)))
	if c.Pending() {
		ev = ev.Uint64("next_version", latest).Uint64("next_from_slot", uint64(c.NextAt)).
			Uints32("next_voters", idsUint32(c.Next.Voters())).Uints32("next_learners", idsUint32(learners(c.Next)))
	}
	ev.Msg("membership")
	if _, ok := c.Latest().Member(n.cfg.ID); !ok && !n.removedLogged {
		n.removedLogged = true
		n.log.Warn().Uint64("version", latest).Msg("this node is not a member of the cluster's configuration (removed, or not yet added): it takes no part; stop it, or add it with paxosd member add")
	}
}

// learners returns m's learners' ids.
func learners(m paxos.Membership) []paxos.NodeID {
	var out []paxos.NodeID
	for _, x := range m.Members {
		if x.Learner {
			out = append(out, x.ID)
		}
	}
	return out
}

func idsUint32(ids []paxos.NodeID) []uint32 {
	out := make([]uint32, len(ids))
	for i, id := range ids {
		out[i] = uint32(id)
	}
	return out
}

// sameAddresses reports whether m's members are exactly peers.
func sameAddresses(m paxos.Membership, peers map[paxos.NodeID]string) bool {
	if len(m.Members) != len(peers) {
		return false
	}
	for _, x := range m.Members {
		if peers[x.ID] != x.Addr {
			return false
		}
	}
	return true
}
