package service

import (
	"fmt"
	"math/rand"
	"time"

	"github.com/cockroachdb/pebble/vfs"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// Membership changes in the node simulation. In a share of the seeds
// (drawn from a stream of their own: the other seeds run as before) an
// operator changes the membership during the fault phase, through the
// member operations as paxosd member does: it adds nodes (voters or
// learners) and starts them as serve --join does once the add is done (a
// snapshot saved from the cluster becomes the new node's store,
// writeJoinedStore), promotes learners, removes members — the leader too
// — and stops them once their removal is done (at once or after a
// while, so that removed nodes run on and must disturb nobody), moves a
// member to a new address, and replaces a member that is down: removes
// it and adds a fresh one. Every checker runs meanwhile. An answer of
// conflict or an unknown outcome (a timeout, no answer) is met as an
// operator would: it reads the membership again later (the book of the
// node furthest ahead) and acts on what it says — joins a node the
// membership names, stops one it no longer does.
//
// A removed node is never restarted; a node is added under a new id
// (never a removed one's; an id whose add did not take is used again).
// A disk lost after a change (mayLoseDisk) brings its node back with
// --rejoin --join: a join from a snapshot of the cluster that goes through
// the rejoin procedure (it votes once every member answered and it caught
// up past them). The operator changes nothing while a node rebuilds
// (ready).

// simMemberShare: one seed in simMemberShare changes membership.
const simMemberShare = 2

// simOperator is a run's operator of membership changes.
type simOperator struct {
	s     *sim
	l     *simLink   // the member operations
	save  *simLink   // the joins' snapshot saves
	rng   *rand.Rand // its choices, from a stream of its own
	busy  bool       // a member operation is under way
	began bool       // a change was sent: the membership is no longer the bootstrap's
	max   int        // nodes in all, at most
}

func newSimOperator(s *sim) *simOperator {
	c := &simClient{s: s, idx: 100, role: roleKV, rate: 1, seen: map[string]string{}}
	cid := uint64(s.seed)<<16 | 0xffe0
	return &simOperator{s: s, l: newSimLink(c, "operator", cid|1), save: newSimLink(c, "join", cid|2), max: max(6, s.p.nodes+2),
		rng: rand.New(rand.NewSource(s.seed ^ 0x3e3c))}
}

// memberSeed reports whether seed's run changes membership.
func memberSeed(seed int64) bool {
	return rand.New(rand.NewSource(seed^0x3e3b)).Intn(simMemberShare) == 0
}

// serving reports whether sn is in service: an original member, or an
// added one that joined, and not removed.
func (sn *simNode) serving() bool { return !sn.gone && (!sn.added || sn.joined) && !sn.needsJoin }

func (op *simOperator) begin() {
	op.s.at(time.Duration(3000+op.rng.Intn(1500))*time.Millisecond, nil, op.step)
}

func (op *simOperator) nodeStopped(sn *simNode) {
	op.l.broken(sn)
	op.save.broken(sn)
}

// step reconciles the nodes with the membership, and now and then (in
// the fault phase) sends a change.
func (op *simOperator) step() {
	s := op.s
	if s.err != nil {
		return
	}
	defer s.at(time.Duration(300+op.rng.Intn(700))*time.Millisecond, nil, op.step)
	op.reconcile()
	if op.busy || s.healed || s.now > s.opts.faultTime-time.Second || !op.ready() || !op.settled() {
		// A careful operator starts the node it added before the next
		// change: removing a voter meanwhile could leave a quorum that
		// needs the new node, which cannot join without one (see add).
		return
	}
	v, ok := op.view()
	if !ok || (v.Pending() && op.rng.Intn(4) > 0) {
		return // a change in flight: mostly wait (sometimes send one anyway: a conflict)
	}
	latest := v.Latest()
	var down, learners, members []*simNode
	for _, x := range latest.Members {
		sn := s.node(x.ID)
		if sn == nil || sn.gone {
			continue
		}
		members = append(members, sn)
		if x.Learner && sn.up() {
			learners = append(learners, sn) // one that runs: it may have caught up
		}
		if sn.serving() && !sn.up() {
			down = append(down, sn)
		}
	}
	if op.began && len(members) > 0 && op.rng.Intn(5) == 0 {
		// A disk lost after the membership changed, on the operator's
		// clock too: the seed's fault weights alone made it so rare that
		// the default run's 24 seeds could miss it (loseDisk refuses it
		// beyond the failures the cluster survives).
		s.loseDisk(members[op.rng.Intn(len(members))])
		return
	}
	r := op.rng.Intn(20)
	if len(learners) > 0 && op.rng.Intn(4) > 0 {
		r = 9 // a learner that runs is mostly promoted next (as promote --wait would)
	}
	switch {
	case r < 6 && len(down) > 0 && op.newNode() != nil:
		op.replace(down[op.rng.Intn(len(down))], latest)
	case r < 9 && op.newNode() != nil:
		op.add(op.newNode(), op.rng.Intn(4) > 0, false)
	case r < 14 && len(learners) > 0:
		sn := learners[op.rng.Intn(len(learners))]
		op.call(&wire.Request{Op: wire.OpMemberPromote, MemberID: uint64(sn.id)}, func(r *wire.Response) {
			if op.answered("promote", sn, r) {
				s.stats.memberPromotes++
			}
		})
	case r < 19 && len(members) > 0:
		sn := members[op.rng.Intn(len(members))]
		if l := s.node(s.leader()); l != nil && !l.gone && op.rng.Intn(3) == 0 {
			if _, ok := latest.Member(l.id); ok {
				sn = l
			}
		}
		if latest.IsVoter(sn.id) && len(latest.Voters()) <= 2 && op.rng.Intn(4) > 0 {
			return // mostly keep two voters: one down stops a cluster of one
		}
		op.remove(sn, nil)
	default:
		if len(members) > 0 {
			sn := members[op.rng.Intn(len(members))]
			addr := fmt.Sprintf("node%d:%d", sn.id, 7402+op.rng.Intn(100))
			op.call(&wire.Request{Op: wire.OpMemberUpdate, MemberID: uint64(sn.id), MemberAddr: addr}, func(r *wire.Response) {
				if op.answered("update", sn, r) {
					s.stats.memberUpdates++
				}
			})
		}
	}
}

// ready reports whether the operator may change the membership: every
// node in service has started, none is gated or rebuilding (their probes
// ask the members --peers names), and every first member holds a voter's
// state (up or down): one that crashed before its first sync comes back
// gated and joins by the rejoin procedure, not voting until caught up,
// and a removal meanwhile can leave a quorum that needs it (seed 12069).
func (op *simOperator) ready() bool {
	for _, sn := range op.s.nodes {
		if sn.needsJoin && !sn.gone {
			return false // a lost disk coming back
		}
		if !sn.serving() {
			continue
		}
		if !sn.added && !sn.votes() {
			return false
		}
		if !sn.started || sn.wiped && (!sn.up() || sn.n.rejoin.active) {
			return false
		}
		if sn.up() && (sn.n.rejoin.active || sn.n.boot.active) {
			return false
		}
	}
	return true
}

// mayLoseDisk reports whether sn's disk may be lost now, after the
// membership changed, within the failures the cluster is built to
// survive: no change in flight (one could leave sn a voter of two), and
// in the current and the next configuration a voter sn has at least two
// others, so that the rest make a quorum while sn rebuilds (with one
// other, losing sn's disk stops the cluster for good: it cannot vote
// until caught up, and nothing is chosen without it).
func (op *simOperator) mayLoseDisk(sn *simNode) bool {
	if op.busy {
		return false
	}
	v, ok := op.view()
	if !ok {
		return false
	}
	for _, m := range []paxos.Membership{v.Current, v.Next} {
		if m.IsVoter(sn.id) && len(m.Voters()) < 3 {
			return false
		}
	}
	return true
}

// view is the membership as the node furthest ahead knows it (what
// paxosd member list says when it asks that node).
func (op *simOperator) view() (paxos.Configs, bool) {
	var best *simNode
	for _, sn := range op.s.nodes {
		if sn.up() && !sn.n.installing() && (best == nil || sn.n.sm.Applied() > best.n.sm.Applied()) {
			best = sn
		}
	}
	if best == nil {
		return paxos.Configs{}, false
	}
	return best.n.book.snapshot(), true
}

// reconcile acts on what the membership says: a node it names that has
// not joined joins; one it no longer has in force (removed, the answer
// lost) is stopped.
func (op *simOperator) reconcile() {
	s := op.s
	v, ok := op.view()
	if !ok {
		return
	}
	for _, sn := range s.nodes {
		_, inLatest := v.Latest().Member(sn.id)
		_, inCurrent := v.Current.Member(sn.id)
		switch {
		case (sn.added || sn.needsJoin) && !sn.joined && !sn.gone && inLatest:
			op.join(sn)
		case sn.started && !sn.gone && !inLatest && !inCurrent && v.Current.Version > 1 && !op.busy:
			// Removed, the answer lost: stopped once a second look
			// still finds it removed (the change had time to be
			// done), and never while a call under way may be the
			// removal, which stops it once answered.
			if sn.absent < v.Current.Version {
				sn.absent = v.Current.Version
				break
			}
			s.tracef("operator: member list (version %d) no longer names node %d: stopping it", v.Current.Version, sn.id)
			op.retire(sn)
		}
	}
}

// settled reports whether every node the membership names has joined
// (the liveness phase waits for it).
func (op *simOperator) settled() bool {
	v, ok := op.view()
	if !ok {
		return false
	}
	for _, sn := range op.s.nodes {
		if _, in := v.Latest().Member(sn.id); in && (sn.added || sn.needsJoin) && !sn.joined && !sn.gone {
			return false
		}
	}
	return true
}

// newNode returns the node the next add brings in: one added before
// whose add did not take (the membership does not name it), or a new
// one, within the bound.
func (op *simOperator) newNode() *simNode {
	s := op.s
	v, _ := op.view()
	for _, sn := range s.nodes {
		if _, in := v.Latest().Member(sn.id); sn.added && !sn.joined && !sn.joining && !sn.gone && !in {
			return sn
		}
	}
	if len(s.nodes) >= op.max {
		return nil
	}
	sn := &simNode{s: s, id: paxos.NodeID(len(s.nodes) + 1), fs: vfs.NewStrictMem(), rate: 1 + op.rng.Float64()*s.opts.clockSkewMax, added: true, join: JoinExisting}
	s.nodes = append(s.nodes, sn)
	return sn
}

// add adds sn (a learner or a voter) and joins it once done. A voter is
// added only to a cluster of two voters or more, all of them running: a
// voter added to one voter makes a quorum of two that needs the new node,
// which cannot join without a quorum (its snapshot is saved at a
// linearizable point) — the cluster would stop for good. The operator
// adds a learner then, and promotes it once it runs.
func (op *simOperator) add(sn *simNode, learner, replacing bool) {
	s := op.s
	if v, ok := op.view(); !learner && ok {
		voters := v.Latest().Voters()
		learner = len(voters) < 2
		for _, id := range voters {
			if x := s.node(id); x == nil || !x.up() {
				learner = true
			}
		}
	}
	q := &wire.Request{Op: wire.OpMemberAdd, MemberID: uint64(sn.id), MemberAddr: fmt.Sprintf("node%d:7401", sn.id), MemberLearner: learner}
	op.call(q, func(r *wire.Response) {
		if !op.answered("add", sn, r) {
			return
		}
		s.stats.memberAdds++
		if replacing {
			s.stats.memberReplaces++
		}
		op.join(sn)
	})
}

// remove removes sn and stops it once done; then (a replacement) runs.
func (op *simOperator) remove(sn *simNode, then func()) {
	s := op.s
	leader := s.leader() == sn.id
	op.call(&wire.Request{Op: wire.OpMemberRemove, MemberID: uint64(sn.id)}, func(r *wire.Response) {
		if !op.answered("remove", sn, r) {
			return
		}
		s.stats.memberRemoves++
		if leader {
			s.stats.memberRemovedLeaders++
		}
		op.retire(sn)
		if then != nil {
			then()
		}
	})
}

// replace removes a member that is down and adds a fresh node.
func (op *simOperator) replace(dead *simNode, latest paxos.Membership) {
	s := op.s
	learner := !latest.IsVoter(dead.id)
	s.tracef("operator: node %d is down: replacing it", dead.id)
	op.remove(dead, func() {
		if sn := op.newNode(); sn != nil {
			op.add(sn, learner, true)
		}
	})
}

// retire marks sn removed, never to restart, and stops it now or after a
// while (it runs on as a removed node meanwhile).
func (op *simOperator) retire(sn *simNode) {
	s := op.s
	if sn.gone {
		return
	}
	sn.gone = true
	d := time.Duration(0)
	if op.rng.Intn(2) == 0 {
		d = time.Duration(op.rng.Intn(3000)) * time.Millisecond
	}
	s.at(d, func() string { return fmt.Sprintf("operator: stop removed node %d", sn.id) }, func() { s.stop(sn) })
}

// answered reports whether a member operation was answered done; a
// conflict or an unknown outcome leaves the operator to read the
// membership again later (reconcile).
func (op *simOperator) answered(what string, sn *simNode, r *wire.Response) bool {
	s := op.s
	switch {
	case r == nil || r.Err == wire.ErrTimeout:
		s.stats.memberUnknown++
		s.tracef("operator: member %s %d: outcome unknown", what, sn.id)
	case r.Err == wire.ErrMemberConflict:
		s.stats.memberConflicts++
		s.tracef("operator: member %s %d: %s", what, sn.id, r.ErrMsg)
	case r.Err != wire.ErrNone:
		s.failf("member %s %d: unexpected %s: %s", what, sn.id, r.Err, r.ErrMsg)
	default:
		s.tracef("operator: member %s %d done (version %d)", what, sn.id, r.ConfigVersion)
		return true
	}
	return false
}

// call sends a member operation until a node that can answer it does:
// again (to the leader it names, or elsewhere) on NotLeader, Unavailable,
// Busy or a broken connection; done gets the answer, or nil after a
// while. A change may have been proposed before the connection broke: the
// retry then meets it (a conflict), as an operator's second try would.
func (op *simOperator) call(q *wire.Request, done func(*wire.Response)) {
	s := op.s
	op.busy, op.began = true, true
	deadline := s.now + 15*time.Second
	finish := func(r *wire.Response) {
		op.busy = false
		done(r)
	}
	var attempt func(want *simNode)
	attempt = func(want *simNode) {
		if s.now >= deadline {
			finish(nil)
			return
		}
		cq := *q
		op.l.send(&cq, 6*time.Second, want, func(r *wire.Response) {
			switch r.Err {
			case wire.ErrNotLeader, wire.ErrUnavailable, wire.ErrBusy:
				var next *simNode
				if r.LeaderHint != 0 {
					next = s.node(r.LeaderHint)
				}
				if next == nil || (op.l.conn != nil && next == op.l.conn.node) {
					op.l.disconnect()
				}
				s.at(time.Duration(20+op.rng.Intn(80))*time.Millisecond, nil, func() { attempt(next) })
			default:
				finish(r)
			}
		}, func() {
			op.l.disconnect()
			s.at(time.Duration(20+op.rng.Intn(80))*time.Millisecond, nil, func() { attempt(nil) })
		})
	}
	attempt(nil)
}

// join writes sn's store from a snapshot saved from the cluster (the
// save stream serve --join reads) and starts it; on any failure the next
// reconcile tries again.
func (op *simOperator) join(sn *simNode) {
	if sn.joining || sn.joined || sn.gone {
		return
	}
	sn.joining = true
	l := op.save
	l.seq++
	q := &wire.Request{Op: wire.OpSnapshotSave, ClientID: l.cid, Seq: l.seq, AckedBelow: l.seq}
	var head *wire.Response
	var data []byte
	l.send(q, 3*time.Second, nil, func(r *wire.Response) {
		switch {
		case r.Err != wire.ErrNone:
			sn.joining = false
		case head == nil:
			head = r
		default:
			data = append(data, r.Data...)
			if r.StreamEnd {
				op.joined(sn, data)
			}
		}
	}, func() {
		l.disconnect()
		sn.joining = false
	})
}

// joined writes sn's store from a saved snapshot and starts the node.
func (op *simOperator) joined(sn *simNode, data []byte) {
	s := op.s
	sn.joining = false
	if sn.gone || sn.joined {
		return
	}
	sm, err := statemachine.RestoreStateMachine(smOptions(Config{}), data)
	if err != nil {
		s.failf("join of node %d: the saved snapshot does not restore: %v", sn.id, err)
		return
	}
	if _, ok := sm.Members().Latest().Member(sn.id); !ok {
		s.tracef("operator: the snapshot saved for node %d (slot %d) does not name it yet", sn.id, sm.Applied())
		return
	}
	cfg := s.config(sn)
	cfg.EnsureDefaults()
	if _, err := writeJoinedStore(cfg, sm, sn.needsJoin); err != nil {
		s.failf("join of node %d: %v", sn.id, err)
		return
	}
	if sn.needsJoin {
		s.stats.rejoinsByJoin++
	}
	sn.joined, sn.needsJoin, sn.join = true, false, JoinExisting
	s.stats.memberJoins++
	s.tracef("operator: node %d joins from a snapshot of slot %d", sn.id, sm.Applied())
	s.startNode(sn)
}
