package service

import (
	"fmt"
	"math/rand"
	"sort"
	"time"

	"github.com/cockroachdb/pebble/vfs"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/proposer"
	"github.com/paxosd/paxosd/wire"
)

// simNet is the network between the nodes: links cut one way or both;
// in scripted runs, drop loses the messages it returns true for, and delay
// holds each message back for as long as it says.
type simNet struct {
	cut   map[[2]paxos.NodeID]bool // from, to
	drop  func(m paxos.Message) bool
	delay func(m paxos.Message) time.Duration
	// slow holds the links that are slow for now (from, to): a message
	// on one takes up to the delay more.
	slow map[[2]paxos.NodeID]time.Duration
}

func (n *simNet) reaches(from, to paxos.NodeID) bool { return !n.cut[[2]paxos.NodeID{from, to}] }

// newSim builds a run: parameters drawn from the seed, nodes, clients.
func newSim(seed int64, opts simOptions) *sim {
	rng := rand.New(rand.NewSource(seed))
	s := &sim{seed: seed, opts: opts, rng: rng, epoch: time.Unix(1_800_000_000, 0),
		net: simNet{cut: map[[2]paxos.NodeID]bool{}, slow: map[[2]paxos.NodeID]time.Duration{}}}
	s.p = drawParams(rng, seed, opts)
	s.check = newSimChecker(s)
	for i := 1; i <= s.p.nodes; i++ {
		s.nodes = append(s.nodes, &simNode{s: s, id: paxos.NodeID(i), fs: vfs.NewStrictMem(), rate: s.drawRate()})
	}
	if !opts.scripted {
		for i := 0; i < s.p.clients; i++ {
			s.clients = append(s.clients, newSimClient(s, i))
		}
		if memberSeed(seed) {
			s.op = newSimOperator(s)
		}
		if simAuthSeed(seed) {
			s.auth = newSimAuth(s)
		}
	}
	return s
}

// drawRate draws a clock rate inside the bound the design assumes.
func (s *sim) drawRate() float64 { return 1 + s.rng.Float64()*s.opts.clockSkewMax }

// start starts every node and client and the fault schedule.
func (s *sim) start() {
	// Half the seeds form the cluster as serve --new-cluster does: each
	// node gated at first, started at its own time (a staggered first
	// start); the others as paxosd dev does.
	gated := !s.opts.scripted && s.rng.Intn(2) == 0
	for _, sn := range s.nodes {
		if !gated {
			sn.join = JoinCreate
			s.startNode(sn)
			continue
		}
		sn.join = JoinForm
		s.at(time.Duration(s.rng.Intn(3000))*time.Millisecond, nil, func() { s.restart(sn) })
	}
	for _, c := range s.clients {
		c.begin()
	}
	if !s.opts.scripted {
		s.at(s.faultGap(), nil, s.fault)
	}
	if s.op != nil {
		s.op.begin()
	}
	if s.auth != nil {
		s.auth.begin()
	}
}

// latency is how long a message (or a client request) travels.
func (s *sim) latency() time.Duration { return s.latencyOf(0) }

// latencyOf is how long a message of type t travels (0: not a protocol
// message): some seeds slow some types more than others.
func (s *sim) latencyOf(t paxos.MsgType) time.Duration {
	d := s.p.latencyMin + time.Duration(s.rng.Int63n(int64(s.p.latencyMax-s.p.latencyMin)+1))
	if !s.healed && !s.opts.scripted && s.rng.Float64() < s.p.slowRate+s.p.slowType[t] {
		d += time.Duration(s.rng.Int63n(int64(s.p.slowMax)))
	}
	return d
}

// checkAnnounce: a leader's commit announcement leaves only after the
// leader applied the slots it announces and sent their answers
// (sendAnnounces): the followers it sets to work pushing those slots'
// events to their watches must not delay the answers.
func (s *sim) checkAnnounce(from *simNode, m paxos.Message) {
	n := from.n
	if !isAnnounce(m) || n == nil || n.installing() {
		return
	}
	if n.sm.Applied() < m.Commit {
		s.failf("node %d announced commit %d to node %d having applied only %d: the answers of the slots between wait for the announcement", from.id, m.Commit, m.To, n.sm.Applied())
	}
	if len(n.corked) > 0 {
		s.failf("node %d announced commit %d to node %d with answers still corked for %d connections", from.id, m.Commit, m.To, len(n.corked))
	}
}

// send carries m from sn through the network: encoded and decoded as the
// transport does (and dropped if over the frame limit, as it is), lost,
// duplicated, delayed — each copy on its own delay, so messages reorder —
// or cut by a partition.
func (s *sim) send(from *simNode, m paxos.Message) {
	if m.Type == paxos.MsgPrepare && m.Ballot.Node == from.id && m.Ballot != from.campaign {
		from.campaign = m.Ballot
		s.justCampaigned(from)
	}
	if m.Type == paxos.MsgPreVoteReply && !m.Reject {
		s.justGranted(m.To, m.From)
	}
	s.checkAnnounce(from, m)
	s.check.voted(from, m)
	if from.n.book.addr(m.To) == "" {
		// The transport reaches only the nodes whose address the node
		// knows (wire.Transport.Send drops the rest as unroutable): a
		// node that lagged through the change adding m.To cannot
		// answer it until it learns where it is. Delivering such a
		// message anyway hid an election that never finished (a
		// voter restarted behind a member added while it was down,
		// with every member it knew gone).
		s.stats.unroutable++
		return
	}
	// The hello of the connection carrying m says where its sender may be
	// dialed back (version 19; wire.Server hands it to heardPeerAddr).
	fromAddr := from.n.book.addr(from.id)
	body := wire.EncodeMessage(nil, m)
	if len(body) > s.p.frameBytes {
		s.tracef("node %d: message over the frame limit dropped: %s (%d bytes)", from.id, m, len(body))
		s.stats.dropped++
		return
	}
	if s.net.drop != nil && s.net.drop(m) {
		s.stats.dropped++
		return
	}
	copies := 1
	if !s.healed && !s.opts.scripted {
		if s.rng.Float64() < s.p.dropRate {
			s.stats.dropped++
			return
		}
		if s.rng.Float64() < s.p.dupRate {
			copies, s.stats.duplicated = 2, s.stats.duplicated+1
		}
	}
	var extra time.Duration
	if s.net.delay != nil {
		extra = s.net.delay(m)
	}
	if d := s.net.slow[[2]paxos.NodeID{m.From, m.To}]; d > 0 && !s.healed {
		extra += time.Duration(s.rng.Int63n(int64(d)))
	}
	for i := 0; i < copies; i++ {
		s.at(s.latencyOf(m.Type)+extra, func() string { return "deliver " + m.String() }, func() {
			to := s.node(m.To)
			if to == nil || !to.up() || !s.net.reaches(m.From, m.To) {
				s.stats.dropped++
				return
			}
			dm, err := wire.DecodeMessage(body)
			if err != nil {
				s.failf("message %s does not decode: %v", m, err)
				return
			}
			s.stats.delivered++
			s.runOn(to, to.inc, func(n *Node) {
				if fromAddr != "" {
					n.heardPeerAddr(m.From, fromAddr)
				}
				// What the node's peer connections check first
				// (peercheck.go): no honest message may fail it, or
				// production would cut the connection carrying it.
				if err := n.peerCheck.check(dm); err != nil {
					s.failf("node %d would refuse an honest message and close its connection: %s: %v", n.cfg.ID, dm, err)
					return
				}
				n.step(dm)
			})
		})
	}
}

// faultGap is the time to the next fault.
func (s *sim) faultGap() time.Duration {
	return time.Duration(s.rng.ExpFloat64() * float64(s.p.faultEvery))
}

// The kinds of fault; simParams.faultWeights weighs them.
const (
	faultCrash = iota // kill -9, back after a while
	faultFreeze
	faultPartition
	faultHeal
	faultSlowDisk
	faultStallDisk
	faultFailDisk
	faultLoseDisk
	faultCrashBeforeSync
	faultQuickRestart
	faultFlap     // a brief partition that heals by itself
	faultSlowLink // one direction of one link is slow for a while
	faultTransfer // the leader hands its leadership to a member (any: caught up or not)
	faultKinds
)

// pickFault draws a kind of fault by the run's weights.
func (s *sim) pickFault() int {
	total := 0
	for _, w := range s.p.faultWeights {
		total += w
	}
	r := s.rng.Intn(total)
	for k, w := range s.p.faultWeights {
		if r < w {
			return k
		}
		r -= w
	}
	return faultCrash
}

// fault injects one fault drawn from the seed, then schedules the next.
func (s *sim) fault() {
	if s.healed {
		return
	}
	defer s.at(s.faultGap(), nil, s.fault)
	sn := s.nodes[s.rng.Intn(len(s.nodes))]
	switch s.pickFault() {
	case faultCrash:
		if sn.up() {
			s.tracef("fault: crash node %d", sn.id)
			s.stats.crashes++
			s.stop(sn)
			s.at(time.Duration(s.rng.Int63n(int64(3*time.Second))), nil, func() { s.restart(sn) })
		}
	case faultFreeze: // paused for longer than an election
		if sn.up() && !sn.isFrozen() {
			d := time.Duration(200+s.rng.Intn(1500)) * time.Millisecond
			s.tracef("fault: freeze node %d for %s", sn.id, d)
			s.stats.freezes++
			s.freeze(sn, d)
		}
	case faultPartition: // possibly one way, healed later
		s.partition()
	case faultHeal:
		s.tracef("fault: heal the network")
		clear(s.net.cut)
	case faultSlowDisk:
		sn.slowUntil = s.now + time.Duration(s.rng.Intn(3000))*time.Millisecond
		sn.slowSync = time.Duration(5+s.rng.Intn(150)) * time.Millisecond
		s.tracef("fault: node %d's disk is slow (syncs up to %s) until %s", sn.id, sn.slowSync, sn.slowUntil)
	case faultStallDisk:
		sn.stalledUntil = s.now + time.Duration(100+s.rng.Intn(2500))*time.Millisecond
		s.stats.diskStalls++
		s.tracef("fault: node %d's disk stalls until %s", sn.id, sn.stalledUntil)
	case faultFailDisk: // the node stops (and is restarted)
		if sn.up() {
			s.tracef("fault: node %d's next write fails", sn.id)
			s.stats.diskFails++
			sn.failNext = true
			s.at(time.Duration(500+s.rng.Intn(2000))*time.Millisecond, nil, func() { s.restart(sn) })
		}
	case faultLoseDisk: // back with --rejoin
		s.loseDisk(sn)
	case faultCrashBeforeSync: // right after the node's next sends
		s.crashBeforeSync(sn)
	case faultQuickRestart:
		if sn.up() {
			s.tracef("fault: restart node %d", sn.id)
			s.stats.crashes++
			s.stop(sn)
			s.restart(sn)
		}
	case faultSlowLink:
		to := s.nodes[s.rng.Intn(len(s.nodes))]
		if to == sn {
			break
		}
		link := [2]paxos.NodeID{sn.id, to.id}
		d := time.Duration(20+s.rng.Intn(500)) * time.Millisecond
		s.net.slow[link] = d
		s.tracef("fault: the link %d->%d is slow (up to %s more)", sn.id, to.id, d)
		s.at(time.Duration(100+s.rng.Intn(1500))*time.Millisecond, nil, func() { delete(s.net.slow, link) })
	case faultTransfer:
		l := s.leader()
		if l == 0 {
			break
		}
		ln := s.node(l)
		to := paxos.NodeID(0)
		if s.rng.Intn(2) == 0 {
			to = s.nodes[s.rng.Intn(len(s.nodes))].id // may be itself, down, or rejoining
		}
		s.runOn(ln, ln.inc, func(n *Node) {
			target, err := n.handOver(to)
			s.tracef("fault: node %d hands leadership to node %d (asked %d): %v", l, target, to, err)
			if err == nil {
				s.stats.transfers++
			}
		})
	case faultFlap:
		s.partition()
		gen := s.stats.partitions
		s.at(time.Duration(100+s.rng.Intn(700))*time.Millisecond, nil, func() {
			if s.stats.partitions == gen {
				s.tracef("fault: the brief partition heals")
				clear(s.net.cut)
			}
		})
	}
}

// justCampaigned may slow the disk of a node that starts campaigning, so
// that its own promise of the new ballot is still syncing when the others'
// Promises come back.
func (s *sim) justCampaigned(sn *simNode) {
	if s.healed || s.opts.scripted || s.rng.Float64() >= s.p.crashLeader {
		return
	}
	sn.slowUntil, sn.slowSync = s.now+100*time.Millisecond, time.Duration(5+s.rng.Intn(40))*time.Millisecond
	s.tracef("fault: node %d campaigns on a slow disk", sn.id)
}

// justGranted may slow the link from a candidate to a node that just
// granted its PreVote: its Prepare then arrives late, maybe after that node
// heard from a leader again.
func (s *sim) justGranted(candidate, granter paxos.NodeID) {
	if s.healed || s.opts.scripted || s.rng.Float64() >= s.p.slowAfterGrant {
		return
	}
	link := [2]paxos.NodeID{candidate, granter}
	s.net.slow[link] = time.Duration(50+s.rng.Intn(450)) * time.Millisecond
	s.tracef("fault: the link %d->%d turns slow after the PreVote grant", candidate, granter)
	s.at(time.Duration(200+s.rng.Intn(800))*time.Millisecond, nil, func() { delete(s.net.slow, link) })
}

// justLed may crash a node that just became leader before its first writes
// as leader (and its own promise, if still syncing) are durable, and bring
// it back, sometimes at once: the moment a restarted leader must not reuse
// its ballot, nor lose what it promised.
func (s *sim) justLed(sn *simNode) {
	if s.healed || s.opts.scripted || s.rng.Float64() >= s.p.crashLeader {
		return
	}
	sn.slowUntil, sn.slowSync = s.now+50*time.Millisecond, 20*time.Millisecond
	inc := sn.inc
	s.at(time.Duration(s.rng.Int63n(int64(2*s.p.tick))), nil, func() {
		if sn.up() && sn.inc == inc {
			s.tracef("fault: crash node %d just after it became leader", sn.id)
			s.stats.crashes++
			s.stop(sn)
			back := time.Duration(s.rng.Int63n(int64(500 * time.Millisecond)))
			if s.rng.Intn(2) == 0 {
				back = time.Duration(s.rng.Int63n(int64(30 * time.Millisecond)))
			}
			s.at(back, nil, func() { s.restart(sn) })
		}
	})
}

// restart starts sn again if it is down.
func (s *sim) restart(sn *simNode) {
	if sn.up() || s.err != nil || !sn.serving() {
		return
	}
	if sn.started && !sn.wiped && sn.join != JoinForm {
		sn.join = JoinExisting
		if !s.opts.scripted {
			sn.join = s.leftoverFlags()
		}
	}
	s.tracef("restart node %d (%s)", sn.id, sn.join)
	s.stats.restarts++
	s.startNode(sn)
}

// freeze pauses sn for d: nothing of it runs, what arrives waits.
func (s *sim) freeze(sn *simNode, d time.Duration) {
	sn.frozenUntil = s.now + d
	inc := sn.inc
	s.at(d, nil, func() {
		if !sn.up() || sn.inc != inc {
			return
		}
		held := sn.frozen
		sn.frozen = nil
		for _, f := range held {
			f()
		}
	})
}

// partition cuts links: one node off (both ways or one way), or the nodes
// split in two groups.
func (s *sim) partition() {
	s.stats.partitions++
	clear(s.net.cut)
	cut := func(a, b paxos.NodeID) { s.net.cut[[2]paxos.NodeID{a, b}] = true }
	switch s.rng.Intn(3) {
	case 0:
		x := s.nodes[s.rng.Intn(len(s.nodes))].id
		if l := s.leader(); l != 0 && s.rng.Intn(2) == 0 {
			x = l // the leader, half the time
		}
		oneWay := s.rng.Intn(2)
		for _, o := range s.nodes {
			if o.id == x {
				continue
			}
			switch oneWay {
			case 0:
				cut(x, o.id)
				cut(o.id, x)
			default:
				cut(o.id, x) // x talks, nobody answers it
			}
		}
		s.tracef("fault: node %d cut off (%s)", x, []string{"both ways", "it hears nothing"}[oneWay])
	default:
		group := map[paxos.NodeID]int{}
		for _, o := range s.nodes {
			group[o.id] = s.rng.Intn(2)
		}
		for _, a := range s.nodes {
			for _, b := range s.nodes {
				if group[a.id] != group[b.id] {
					cut(a.id, b.id)
				}
			}
		}
		s.tracef("fault: partition %v", group)
	}
}

// leader returns a node that believes it leads (the newest ballot), or 0.
func (s *sim) leader() paxos.NodeID {
	var id paxos.NodeID
	var best paxos.Ballot
	for _, sn := range s.nodes {
		if sn.up() {
			if st := sn.n.r.Status(); st.Role == proposer.Leader && best.Less(st.Ballot) {
				id, best = sn.id, st.Ballot
			}
		}
	}
	return id
}

// loseDisk destroys sn's data directory and brings it back with --rejoin —
// unless another member is rejoining or its data is gone: losing a second
// member's state while one rebuilds loses a majority's state, which no
// protocol survives (chaos/FINDINGS.md F1). Once the membership has
// changed, it comes back with --rejoin --join (the operator's join from a
// snapshot of the cluster, with the rejoin record).
func (s *sim) loseDisk(sn *simNode) {
	if !sn.serving() || sn.durablePromise.IsZero() {
		// Removed, or never voted: losing nothing, it would only be
		// restarted with --rejoin, which never forms a cluster (a
		// rejoining member tells the others a cluster existed).
		return
	}
	changed := s.op != nil && (s.op.began || sn.added)
	if changed && !s.op.mayLoseDisk(sn) {
		return
	}
	for _, o := range s.nodes {
		if o.up() && !o.n.rejoin.active && !o.n.boot.active {
			o.rebuilding = false
		}
		// Every other voter must hold a voter's state: one that joined
		// late (a rejoin too), is still gated, or never voted has none to
		// count on either.
		if o != sn && s.countsAsVoter(o) && (o.rebuilding || !o.votes()) {
			return
		}
	}
	sn.rebuilding = true
	s.tracef("fault: node %d loses its data directory", sn.id)
	s.stats.lostDisks++
	if changed {
		s.stats.changedLostDisks++
	}
	if sn.up() {
		s.stop(sn)
	}
	sn.fs = vfs.NewStrictMem()
	sn.wiped = true
	s.check.lostDisk(sn)
	// The operator restarts it with --rejoin, as documented; or the unit
	// file's leftover --new-cluster brings it back (refused if it voted);
	// or plain flags (refused at once: no store). After a membership
	// change --peers no longer names the cluster: it comes back with
	// --rejoin --join, a join from a snapshot of the cluster that goes
	// through the rejoin procedure; the operator does it (reconcile).
	sn.join = JoinRejoin
	switch {
	case changed:
		s.tracef("operator: node %d comes back with --rejoin --join", sn.id)
		sn.joined, sn.needsJoin, sn.join = false, true, JoinExisting
		return
	case s.opts.scripted:
	default:
		sn.join = [...]JoinMode{JoinRejoin, JoinForm, JoinForm, JoinExisting}[s.rng.Intn(4)]
	}
	s.at(time.Duration(s.rng.Intn(2000))*time.Millisecond, nil, func() { s.restart(sn) })
}

// countsAsVoter reports whether o is a voter of the membership (current
// or next, as the node furthest ahead knows it), or of the bootstrap
// while the membership has not changed.
func (s *sim) countsAsVoter(o *simNode) bool {
	if s.op == nil || !s.op.began {
		return !o.added
	}
	if o.gone {
		return false
	}
	v, ok := s.op.view()
	if !ok {
		return true
	}
	return v.Current.IsVoter(o.id) || v.Pending() && v.Next.IsVoter(o.id)
}

// crashBeforeSync lets sn send what its next inputs produce, then kills it
// before its journal writes them: the crash the send-before-sync rule must
// survive.
func (s *sim) crashBeforeSync(sn *simNode) {
	if !sn.up() {
		return
	}
	inc := sn.inc
	s.tracef("fault: node %d will crash before its next sync completes", sn.id)
	s.at(time.Duration(s.rng.Intn(int(s.p.tick))), nil, func() {
		if sn.up() && sn.inc == inc && sn.journal != nil && sn.journal.writing {
			s.tracef("fault: crash node %d with writes in flight", sn.id)
			s.stats.crashes++
			s.stop(sn)
			s.at(time.Duration(s.rng.Int63n(int64(time.Second))), nil, func() { s.restart(sn) })
		}
	})
}

// describe is the run's parameters, for a failure report.
func (s *sim) describe() string {
	rates := make([]string, len(s.nodes))
	for i, sn := range s.nodes {
		rates[i] = fmt.Sprintf("%.3f", sn.rate)
	}
	return fmt.Sprintf("params: %+v; clock rates %v", s.p, rates)
}

// shutdown closes what the run left open.
func (s *sim) shutdown() {
	for _, sn := range s.nodes {
		if sn.up() {
			s.countNode(sn)
			_ = sn.store.Close()
			sn.n = nil
		}
	}
	sort.Slice(s.nodes, func(i, j int) bool { return s.nodes[i].id < s.nodes[j].id })
}
