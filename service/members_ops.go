package service

import (
	"errors"
	"fmt"
	"time"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// membershipLevel is the cluster level from which configuration values
// may enter the log: every member's core must know them (an older core
// drops them as malformed), which the level says (statemachine/level.go);
// from it on snapshots carry the membership too.
const membershipLevel = statemachine.LevelMembership

// promoteLagMax is how far behind the leader (in slots) a learner may be
// and still be promoted: a voter that lags far counts towards quorums it
// cannot yet answer for, and a cluster of 3 that promotes a fourth
// member far behind needs the other three for every write until it
// catches up (etcd's and ZooKeeper's users report promotions that stall
// a cluster this way). member promote --wait waits for it to catch up.
const promoteLagMax = 1000

// memberCall is a member change waiting for its configuration to take
// effect (or to be overtaken).
type memberCall struct {
	c    *call
	want paxos.Membership
	// at is the slot from which want governs, once known.
	at paxos.Slot
}

// callMember answers the member operations.
func (n *Node) callMember(c *call) {
	if c.req.Op == wire.OpMemberList {
		c.reply(n.memberList())
		return
	}
	if n.r.Status().Role.String() != "leader" {
		c.reply(n.notLeader(nil))
		return
	}
	if n.installing() {
		// No state machine to read the level from until the snapshot is
		// in place: the client retries.
		c.reply(&wire.Response{Err: wire.ErrUnavailable, ErrMsg: n.installingMessage()})
		return
	}
	conflict := func(format string, args ...any) {
		c.reply(&wire.Response{Err: wire.ErrMemberConflict, ErrMsg: fmt.Sprintf(format, args...)})
	}
	if lvl := n.sm.Level(); lvl < membershipLevel {
		conflict("membership changes need cluster level %d; the cluster is at level %d (every member must run a build that speaks protocol %d; the leader raises the level once they all do)", membershipLevel, lvl, wire.VersionMembership)
		return
	}
	next, err := n.changedMembership(c.req)
	if err != nil {
		var invalid invalidChange
		if errors.As(err, &invalid) {
			c.reply(&wire.Response{Err: wire.ErrInvalid, ErrMsg: err.Error()})
		} else {
			conflict("%v", err)
		}
		return
	}
	switch err := n.r.ProposeConfig(next); {
	case errors.Is(err, paxos.ErrNoLeader):
		c.reply(n.notLeader(nil))
		return
	case err != nil:
		conflict("%v", trimPaxos(err))
		return
	}
	n.log.Info().Str("op", c.req.Op.String()).Uint64("member", c.req.MemberID).Uint64("version", next.Version).
		Uints32("voters", idsUint32(next.Voters())).Uints32("learners", idsUint32(learners(next))).Msg("membership change proposed")
	n.memberCalls = append(n.memberCalls, memberCall{c: c, want: next})
}

// invalidChange is a request that names no sensible change (err Invalid).
type invalidChange struct{ msg string }

func (e invalidChange) Error() string { return e.msg }

// changedMembership returns the configuration q asks for, made from the
// latest one the replica knows (chosen, in force or not).
func (n *Node) changedMembership(q *wire.Request) (paxos.Membership, error) {
	configs := n.r.Configs()
	if configs.Pending() {
		return paxos.Membership{}, fmt.Errorf("a membership change is already in progress: version %d takes effect at slot %d (the cluster is at slot %d)",
			configs.Next.Version, configs.NextAt, n.r.Status().Commit)
	}
	next := configs.Latest().Clone()
	next.Version++
	id := paxos.NodeID(q.MemberID)
	if q.MemberID == 0 || q.MemberID > 1<<32-1 {
		return next, invalidChange{fmt.Sprintf("member id %d: give an id from 1 to %d", q.MemberID, uint32(1<<32-1))}
	}
	i := -1
	for j, m := range next.Members {
		if m.ID == id {
			i = j
		}
	}
	switch q.Op {
	case wire.OpMemberAdd:
		if q.MemberAddr == "" {
			return next, invalidChange{fmt.Sprintf("member %d: no address (give ID=HOST:PORT)", id)}
		}
		if i >= 0 {
			return next, fmt.Errorf("node %d is already a member (at %s)", id, next.Members[i].Addr)
		}
		for _, m := range next.Members {
			if m.Addr == q.MemberAddr {
				return next, fmt.Errorf("node %d already has the address %s", m.ID, m.Addr)
			}
		}
		if !q.MemberLearner && len(next.Voters()) == 1 {
			// With one voter, a second makes a quorum of two: the new
			// node would be needed for every write — the snapshot its
			// --join saves included — before it has joined.
			return next, fmt.Errorf("adding a voter to a cluster of one voter needs the new node for every write before it has joined: add node %d with --learner, start it with --join, then promote it", id)
		}
		next.Members = append(next.Members, paxos.Member{ID: id, Addr: q.MemberAddr, Learner: q.MemberLearner})
	case wire.OpMemberPromote:
		if i < 0 {
			return next, fmt.Errorf("node %d is not a member", id)
		}
		if !next.Members[i].Learner {
			return next, fmt.Errorf("node %d is already a voter", id)
		}
		commit := n.r.Status().Commit
		if theirs, ok := n.peerCommit[id]; !ok || commit > theirs+promoteLagMax {
			behind := "has not answered this leader yet"
			if ok {
				behind = fmt.Sprintf("is %d slots behind the leader (more than %d)", commit-theirs, promoteLagMax)
			}
			return next, fmt.Errorf("node %d %s: wait for it to catch up, or use paxosd member promote --wait", id, behind)
		}
		next.Members[i].Learner = false
	case wire.OpMemberRemove:
		if i < 0 {
			return next, fmt.Errorf("node %d is not a member", id)
		}
		if !next.Members[i].Learner && len(next.Voters()) == 1 {
			return next, fmt.Errorf("node %d is the last voter: add and promote another member first", id)
		}
		next.Members = append(next.Members[:i], next.Members[i+1:]...)
	case wire.OpMemberUpdate:
		if i < 0 {
			return next, fmt.Errorf("node %d is not a member", id)
		}
		if q.MemberAddr == "" {
			return next, invalidChange{fmt.Sprintf("member %d: no address (give ID=HOST:PORT)", id)}
		}
		if next.Members[i].Addr == q.MemberAddr {
			return next, fmt.Errorf("node %d is already at %s", id, q.MemberAddr)
		}
		next.Members[i].Addr = q.MemberAddr
	}
	return next, nil
}

// trimPaxos drops the core's package prefix from an error for clients.
func trimPaxos(err error) string {
	const prefix = "paxos: "
	s := err.Error()
	if len(s) > len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):]
	}
	return s
}

// settleMemberCalls answers the changes whose fate is known: their
// configuration is in force and a quorum of its voters knows it
// (success), or another took its version (conflict), or the deadline
// passed (timeout: it may still take effect).
//
// "A quorum knows": the leader saw their watermarks reach the slot
// before the change took effect. Until then a removed member may still
// be needed — the new voters that lag take the old configuration for the
// one in force, and without the removed member may not form a quorum in
// it to learn otherwise — so the operator is not told the change is done
// (and to stop it) before.
func (n *Node) settleMemberCalls(now time.Time) {
	if len(n.memberCalls) == 0 || n.installing() {
		// Installing a snapshot: no state machine to read the
		// membership from; the next tick after the install settles them
		// (a node that stepped down while a change waited, and installs
		// the leader's snapshot, used to panic here: the node
		// simulation's seed 5078).
		return
	}
	configs := n.sm.Members()
	kept := n.memberCalls[:0]
	for _, mc := range n.memberCalls {
		switch {
		case configs.Current.Version >= mc.want.Version && configs.Current.Version == mc.want.Version &&
			sameMembership(configs.Current, mc.want) && !n.knownByQuorum(mc):
			if now.After(mc.c.deadline) {
				mc.c.reply(&wire.Response{Err: wire.ErrTimeout, ErrMsg: fmt.Sprintf("membership version %d is in force, but a quorum of its voters has not acknowledged it yet: keep every member running until paxosd member list shows it", mc.want.Version)})
				continue
			}
			kept = append(kept, mc)
		case configs.Current.Version >= mc.want.Version:
			if configs.Current.Version == mc.want.Version && sameMembership(configs.Current, mc.want) {
				resp := n.memberList()
				resp.ConfigVersion = mc.want.Version
				mc.c.reply(resp)
			} else {
				mc.c.reply(&wire.Response{Err: wire.ErrMemberConflict, ErrMsg: fmt.Sprintf("the membership changed meanwhile (now version %d): nothing of this request was applied; read it again (paxosd member list)", configs.Current.Version)})
			}
		case configs.Latest().Version >= mc.want.Version && !sameMembership(configs.Latest(), mc.want):
			mc.c.reply(&wire.Response{Err: wire.ErrMemberConflict, ErrMsg: fmt.Sprintf("the membership changed meanwhile (version %d was chosen otherwise): nothing of this request was applied; read it again (paxosd member list)", mc.want.Version)})
		case now.After(mc.c.deadline):
			mc.c.reply(&wire.Response{Err: wire.ErrTimeout, ErrMsg: fmt.Sprintf("membership version %d not in force in time: it may still take effect (paxosd member list says)", mc.want.Version)})
		default:
			kept = append(kept, mc)
		}
	}
	clear(n.memberCalls[len(kept):])
	n.memberCalls = kept
}

// knownByQuorum reports whether a quorum of mc's configuration's voters
// is known to have a watermark past the slot before it took effect.
func (n *Node) knownByQuorum(mc memberCall) bool {
	at := mc.at
	if at == 0 {
		// The pending state was never seen here (applied in one go):
		// ask for this node's own watermark, which is past it.
		at = n.r.Status().Commit + 1
	}
	commit := n.r.Status().Commit
	return mc.want.IsQuorum(func(id paxos.NodeID) bool {
		if id == n.cfg.ID {
			return commit+1 >= at
		}
		return n.peerCommit[id]+1 >= at
	})
}

// sameMembership reports whether a and b have the same members, roles
// and addresses.
func sameMembership(a, b paxos.Membership) bool {
	a, b = a.Clone(), b.Clone()
	if len(a.Members) != len(b.Members) {
		return false
	}
	for i := range a.Members {
		if a.Members[i] != b.Members[i] {
			return false
		}
	}
	return true
}

// memberList describes the membership as this node applied it, with what
// it knows of each member (a leader hears every member's watermark).
func (n *Node) memberList() *wire.Response {
	configs := n.book.snapshot()
	commit := n.r.Status().Commit
	info := func(m paxos.Member) wire.MemberInfo {
		mi := wire.MemberInfo{ID: m.ID, Addr: m.Addr, Learner: m.Learner}
		switch {
		case m.ID == n.cfg.ID:
			mi.Reachable, mi.Commit = true, commit
		default:
			mi.Reachable = n.tcp != nil && n.tcp.Connected(m.ID)
			mi.Commit = n.peerCommit[m.ID]
		}
		if mi.Commit != 0 && mi.Commit < commit {
			mi.Lag = uint64(commit - mi.Commit)
		}
		return mi
	}
	resp := &wire.Response{ConfigVersion: configs.Current.Version}
	for _, m := range configs.Current.Members {
		mi := info(m)
		if configs.Pending() {
			if _, ok := configs.Next.Member(m.ID); !ok {
				mi.Leaving = true
			}
		}
		resp.Members = append(resp.Members, mi)
	}
	if configs.Pending() {
		for _, m := range configs.Next.Members {
			if _, ok := configs.Current.Member(m.ID); !ok {
				mi := info(m)
				mi.Next = true
				resp.Members = append(resp.Members, mi)
			}
		}
	}
	return resp
}

// refuseRemoved answers every request but Status Unavailable on a node
// the membership no longer names (it was removed): its state stops at its
// removal, and its clients must go to a member (the Go client's auto-sync
// drops it from its endpoints).
func (n *Node) refuseRemoved(c *call) bool {
	removed, version := n.book.removed(n.cfg.ID)
	if !removed {
		return false
	}
	c.reply(&wire.Response{Err: wire.ErrUnavailable, ErrMsg: fmt.Sprintf("node %d is not a member of the cluster any more (removed by membership version %d): ask a member (paxosd member list)", n.cfg.ID, version)})
	return true
}
