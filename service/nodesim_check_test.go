package service

import (
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/paxosd/paxosd/internal/linearize"
	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/proposer"
	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wal"
)

// simChecker holds what the checkers know of a run: the first replica to
// apply each slot sets what every other replica (and incarnation) must
// match, and the clients' histories are checked at the end.
type simChecker struct {
	s *sim
	// Per slot, from the first replica to apply it: the chosen value's
	// digest and the state's Hash after it. (Hash leaves out the histories
	// that watches and observers read; their events are checked one by
	// one against kvEvents and changes. How far back a replica's history
	// reaches may differ: a snapshot carries only the newest events.)
	chosen, hashes map[paxos.Slot]uint64
	// levels: per slot, the cluster level of the state after it.
	levels map[paxos.Slot]uint64
	// snaps: per slot, the size and CRC of a snapshot taken there.
	snaps   map[paxos.Slot]wal.SnapshotMeta
	maxSlot paxos.Slot
	// leaders: who led each ballot (node and incarnation).
	leaders map[paxos.Ballot][2]int
	// The semantic state as of maxSlot (the replicas all agree on it):
	// lock holders and the tokens they were granted, the election's leader
	// and term.
	holder    map[string]uint64
	lastToken map[string]uint64
	leader    uint64
	lastTerm  uint64
	// ephemeral: the ephemeral keys present, and their sessions
	// (nodesim_ephemeral_test.go).
	ephemeral map[string]uint64
	// The global histories watches and observers must match: KV events by
	// revision, election "e"'s changes by number.
	// A revision holds one event, or a transaction's, one per key written.
	kvEvents map[uint64][]statemachine.KVEvent
	lastRev  uint64
	changes  map[uint64]statemachine.LeaderChange
	lastSeq  uint64
	// Client histories.
	kv        []porcupine.Operation
	holds     map[string][]simHold // by lock name, simElection for the election
	writes    map[string]map[string]bool
	healedAt  time.Duration
	probeOK   bool
	porcupine time.Duration
	// owned: the sessions clients opened and know of, by id, until the
	// state no longer holds them (checkOwned).
	owned map[uint64]*simSession
	// ackedRev: the highest revision of a write acknowledged to a client
	// so far (nodesim_save_test.go).
	ackedRev uint64
}

// simHold is a client's own view of holding a lock or an election: from
// the moment the grant reached it until it released (sent the release) or
// its session was lost by its own reckoning.
type simHold struct {
	client     int
	session    uint64
	token      uint64
	start, end time.Duration
}

func newSimChecker(s *sim) *simChecker {
	return &simChecker{
		s: s, chosen: map[paxos.Slot]uint64{}, hashes: map[paxos.Slot]uint64{}, levels: map[paxos.Slot]uint64{},
		snaps: map[paxos.Slot]wal.SnapshotMeta{}, leaders: map[paxos.Ballot][2]int{},
		holder: map[string]uint64{}, lastToken: map[string]uint64{},
		kvEvents: map[uint64][]statemachine.KVEvent{}, changes: map[uint64]statemachine.LeaderChange{}, holds: map[string][]simHold{},
		writes: map[string]map[string]bool{}, owned: map[uint64]*simSession{},
	}
}

// simObserver is one node incarnation's observer. lastRev and lastSeq are
// the newest KV event and election change of its state machine already
// checked.
type simObserver struct {
	c                *simChecker
	sn               *simNode
	inc              int
	lastRev, lastSeq uint64
}

func (c *simChecker) observer(sn *simNode) nodeObserver {
	return &simObserver{c: c, sn: sn, inc: sn.inc}
}

// histories returns the oldest revision and election change sm's
// histories hold.
func histories(sm *statemachine.StateMachine) (oldestRev, oldestSeq uint64) {
	return sm.OldestRevision(), sm.OldestElectionSeq(simElection)
}

// checkNewEvents checks the KV events and election changes sm holds after
// the ones the observer has checked against the run's histories.
func (o *simObserver) checkNewEvents(sm *statemachine.StateMachine) {
	c := o.c
	evs, err := sm.KVEvents(o.lastRev+1, "", true, 0)
	if err != nil && !errors.Is(err, statemachine.ErrCompacted) {
		c.s.failf("node %d: reading its KV history: %v", o.sn.id, err)
	}
	// Whole revisions: the history never holds part of one.
	for len(evs) > 0 {
		rev := evs[0].Revision
		n := 1
		for n < len(evs) && evs[n].Revision == rev {
			n++
		}
		want := c.kvEvents[rev]
		if len(want) != n {
			c.s.failf("node %d's KV history holds %d events at revision %d; the first replica's %d", o.sn.id, n, rev, len(want))
			return
		}
		for i, ev := range evs[:n] {
			if !sameEvent(want[i], ev) {
				c.s.failf("node %d's KV history holds %s %q at revision %d; the first replica's %s %q", o.sn.id, ev.Type, ev.KV.Key, ev.Revision, want[i].Type, want[i].KV.Key)
				return
			}
		}
		o.lastRev, evs = rev, evs[n:]
	}
	o.lastRev = max(o.lastRev, sm.Revision())
	chs, err := sm.ElectionChanges(simElection, o.lastSeq)
	if err != nil && !errors.Is(err, statemachine.ErrCompacted) && !errors.Is(err, statemachine.ErrNotFound) {
		c.s.failf("node %d: reading its election history: %v", o.sn.id, err)
	}
	for _, ch := range chs {
		if want, ok := c.changes[ch.Seq]; !ok || !sameChange(want, ch) {
			c.s.failf("node %d's election history holds change %d as session %d term %d; the first replica's session %d term %d",
				o.sn.id, ch.Seq, ch.Session, ch.Term, want.Session, want.Term)
			return
		}
		o.lastSeq = ch.Seq
	}
}

func sameEvent(a, b statemachine.KVEvent) bool {
	return a.Revision == b.Revision && a.Type == b.Type && sameKV(a.KV, b.KV) && sameKV(a.PrevKV, b.PrevKV)
}

func sameKV(a, b statemachine.KV) bool {
	return a.Key == b.Key && string(a.Value) == string(b.Value) && a.CreateRevision == b.CreateRevision &&
		a.ModRevision == b.ModRevision && a.Version == b.Version
}

func sameChange(a, b statemachine.LeaderChange) bool {
	return a.Seq == b.Seq && a.Session == b.Session && a.Term == b.Term && string(a.Value) == string(b.Value) && a.Revision == b.Revision
}

func valueDigest(v paxos.Value) uint64 {
	h := fnv.New64a()
	h.Write([]byte{byte(v.Kind)})
	for _, cmd := range v.Cmds {
		var n [4]byte
		n[0], n[1], n[2], n[3] = byte(len(cmd)), byte(len(cmd)>>8), byte(len(cmd)>>16), byte(len(cmd)>>24)
		h.Write(n[:])
		h.Write(cmd)
	}
	return h.Sum64()
}

// applied checks slot e against every other replica: one value per slot,
// the same state after it, the same histories; the first replica to apply
// it also checks what it means (checkSemantics).
func (o *simObserver) applied(e paxos.Entry, sm *statemachine.StateMachine) {
	c := o.c
	d := valueDigest(e.Value)
	h := sm.Hash()
	if want, ok := c.chosen[e.Slot]; ok {
		switch {
		case want != d:
			c.s.failf("agreement: node %d (incarnation %d) applied another value at slot %d: %s", o.sn.id, o.inc, e.Slot, e.Value)
		case c.hashes[e.Slot] != h:
			c.s.failf("node %d's state after slot %d differs from the first replica's", o.sn.id, e.Slot)
		default:
			o.checkNewEvents(sm)
		}
		return
	}
	if e.Slot != c.maxSlot+1 {
		// Every replica applies slots in order, so the first to reach a
		// slot reached the one before it first too.
		c.s.failf("node %d applied slot %d first, but the highest slot applied anywhere is %d", o.sn.id, e.Slot, c.maxSlot)
		return
	}
	c.chosen[e.Slot], c.hashes[e.Slot], c.levels[e.Slot] = d, h, sm.Level()
	c.maxSlot = max(c.maxSlot, e.Slot)
	c.s.stats.slots++
	c.checkReports(e)
	c.checkSemantics(e.Slot, sm)
	o.checkNewEvents(sm)
}

// checkReports checks the state check's reports in slot e (statecheck.go)
// against the checkers' own hashes: a member's report for a check slot is
// the hash of the state every replica had after it, computed off the loop
// on a view (SnapshotView.Hash), of the kind the state's level says — the
// legacy hash below statemachine.LevelHashEncoding, the snapshot
// encoding's from it on — so a healthy member never reports another.
func (c *simChecker) checkReports(e paxos.Entry) {
	if e.Value.Kind != paxos.ValueBatch {
		return
	}
	for _, raw := range e.Value.Cmds {
		cmd, err := statemachine.DecodeCommand(raw)
		if err != nil || cmd.Op != statemachine.OpStateHash {
			continue
		}
		slot := paxos.Slot(cmd.HashSlot)
		want, ok := c.hashes[slot]
		if !ok {
			continue
		}
		c.s.stats.stateReports++
		if c.levels[slot] >= statemachine.LevelHashEncoding {
			c.s.stats.encodingReports++
		}
		if cmd.StateHash != want {
			c.s.failf("node %d reported hash %016x for check slot %d (level %d), the state after that slot hashes to %016x",
				cmd.Reporter, cmd.StateHash, slot, c.levels[slot], want)
		}
	}
}

// installing counts a node that dropped its state machine to install a
// snapshot.
func (o *simObserver) installing(paxos.Slot) { o.c.s.stats.installing++ }

// installed checks a state machine replaced by a snapshot: it must be the
// state every replica had after the snapshot's slot.
func (o *simObserver) installed(sm *statemachine.StateMachine) {
	o.c.s.stats.installs++
	o.c.checkRestored(o, sm, "installed from a snapshot")
}

// checkRestored checks a state machine restored from a snapshot (and the
// log after it): its state is the one every replica had after its slot,
// and every event its histories hold is the one the run's histories hold.
func (c *simChecker) checkRestored(o *simObserver, sm *statemachine.StateMachine, how string) {
	slot := sm.Applied()
	if c.s.opts.tamper != nil {
		c.s.opts.tamper(sm)
	}
	o.lastRev, o.lastSeq = 0, 0
	if slot == 0 {
		return
	}
	oldRev, oldSeq := histories(sm)
	want, ok := c.hashes[slot]
	switch {
	case !ok:
		c.s.failf("node %d %s at slot %d, which no replica applied", o.sn.id, how, slot)
	case sm.Hash() != want:
		c.s.failf("node %d's state %s at slot %d differs from the state after that slot", o.sn.id, how, slot)
	default:
		o.lastRev, o.lastSeq = oldRev-1, max(oldSeq, 1)-1
		o.checkNewEvents(sm)
	}
}

// led checks that no ballot is led by two nodes, or by two incarnations of
// one node (a restarted node reusing a ballot: bug 1 of the correctness
// issue).
func (o *simObserver) led(b paxos.Ballot) {
	c := o.c
	c.s.stats.elections++
	me := [2]int{int(o.sn.id), o.inc}
	if who, ok := c.leaders[b]; ok && who != me {
		c.s.failf("ballot %s led twice: by node %d (incarnation %d) and node %d (incarnation %d)", b, who[0], who[1], me[0], me[1])
		return
	}
	c.leaders[b] = me
	c.checkLeases(o.sn, b)
	c.s.justLed(o.sn)
}

// checkLeases checks the promise a lease rests on: no node becomes leader
// under a higher ballot while another still holds a lease, as that one
// counts it on its own clock (a node that is paused is counted too: it
// checks its clock again before it answers, so only a lease that outlasts
// the pause matters, and that is the same check). A new leader that can
// commit while the old one answers reads from its own state is exactly how
// reads go stale — whether or not a client happens to read in the window.
// (A leader under a lower ballot, whose Phase 1 ends late on old Promises,
// can commit nothing: its quorum meets the lease holder's, which promised
// the higher ballot.)
func (c *simChecker) checkLeases(sn *simNode, b paxos.Ballot) {
	for _, o := range c.s.nodes {
		if o == sn || !o.up() || o.n.r.Status().Role != proposer.Leader || !o.n.r.Status().Ballot.Less(b) {
			continue
		}
		until := o.n.leaseUntil()
		if now := o.n.clock.Now(); !until.IsZero() && now.Before(until) {
			c.s.failf("node %d became leader under ballot %s while node %d still held a lease for %s more (ballot %s)",
				sn.id, b, o.id, until.Sub(now), o.n.r.Status().Ballot)
		}
	}
}

// snapshotted checks that replicas snapshotting the same slot encode the
// same bytes (the same size and CRC). The view was frozen at slot and
// encoded later, while the node went on applying: a view that saw later
// writes would differ from another replica's.
func (o *simObserver) snapshotted(slot paxos.Slot, meta wal.SnapshotMeta) {
	c := o.c
	c.s.stats.snapshots++
	if want, ok := c.snaps[slot]; ok && want != meta {
		c.s.failf("node %d's snapshot at slot %d (%s) differs from another replica's (%s)", o.sn.id, slot, meta, want)
	}
	c.snaps[slot] = meta
}

// started checks a node that (re)started: its state machine, loaded from
// its snapshot and log, is the state after the slot it reached.
func (c *simChecker) started(sn *simNode) {
	c.checkRestored(sn.n.obs.(*simObserver), sn.n.sm, "restarted")
}

// durable checks a completed write: the promise on disk never goes back,
// across crashes too.
func (c *simChecker) durable(sn *simNode, batch []walJob) {
	for _, j := range batch {
		if p := j.p.Promised; !p.IsZero() {
			if p.Less(sn.durablePromise) {
				c.s.failf("node %d's durable promise went back from %s to %s", sn.id, sn.durablePromise, p)
			}
			sn.durablePromise = p
		}
	}
}

// lostDisk forgets the promise of a node whose disk is gone (it rejoins),
// and sets the floor its votes must stay above: what it pledged to the
// owners of ballots that still hold them.
func (c *simChecker) lostDisk(sn *simNode) {
	sn.durablePromise = paxos.Ballot{}
	sn.diskGen++
	for id, p := range sn.pledged {
		if o := c.s.node(id); o != nil && !o.gone && o.diskGen == p.gen {
			sn.pledgeFloor = paxos.MaxBallot(sn.pledgeFloor, p.ballot)
		}
	}
}

// simPledge is a vote's ballot, sent to the ballot's owner while its disk
// was in generation gen.
type simPledge struct {
	ballot paxos.Ballot
	gen    int
}

// voted checks a vote as it is sent: a node that lost its disk never
// votes below a ballot it pledged before to that ballot's owner (a
// Promise or an Accepted it forgot): the rejoin procedure raises its
// promise past every ballot the members hold. Without it, a node rebuilt
// from a snapshot would take a delayed Accept of an older leader, or
// promise a candidate below a leader it had promised.
func (c *simChecker) voted(sn *simNode, m paxos.Message) {
	if m.Type != paxos.MsgPromise && m.Type != paxos.MsgAccepted || m.To != m.Ballot.Node || m.To == sn.id {
		return
	}
	if m.Ballot.Less(sn.pledgeFloor) {
		c.s.failf("node %d voted (%s to node %d) at ballot %s, below the ballot %s it pledged before it lost its disk", sn.id, m.Type, m.To, m.Ballot, sn.pledgeFloor)
	}
	if sn.pledged == nil {
		sn.pledged = map[paxos.NodeID]simPledge{}
	}
	o := c.s.node(m.To)
	if o == nil {
		return
	}
	if p := sn.pledged[m.To]; p.gen != o.diskGen || p.ballot.Less(m.Ballot) {
		sn.pledged[m.To] = simPledge{ballot: m.Ballot, gen: o.diskGen}
	}
}

// checkSemantics checks what the state after slot means: sessions within
// their TTL, locks held by live sessions with tokens above every earlier
// grant's, the election led by a live session with a term above every
// earlier one; and it extends the histories watches and observers are
// checked against.
func (c *simChecker) checkSemantics(slot paxos.Slot, sm *statemachine.StateMachine) {
	alive := map[uint64]bool{}
	for _, s := range sm.Sessions() {
		alive[s.ID] = true
		if s.RemainingMs > s.TTLMs {
			c.s.failf("slot %d: session %d has %d ms left of a %d ms TTL", slot, s.ID, s.RemainingMs, s.TTLMs)
		}
	}
	c.checkOwned(slot, alive)
	held := map[string]bool{}
	for _, l := range sm.Locks() {
		if l.Holder == 0 {
			continue
		}
		held[l.Name] = true
		if !alive[l.Holder] {
			c.s.failf("slot %d: lock %s held by session %d, which has ended", slot, l.Name, l.Holder)
		}
		if l.Holder != c.holder[l.Name] || l.Token != c.lastToken[l.Name] {
			if l.Token <= c.lastToken[l.Name] {
				c.s.failf("slot %d: lock %s granted to session %d with token %d after token %d", slot, l.Name, l.Holder, l.Token, c.lastToken[l.Name])
			}
			c.holder[l.Name], c.lastToken[l.Name] = l.Holder, l.Token
		}
	}
	for name := range c.holder {
		if !held[name] {
			delete(c.holder, name)
		}
	}
	c.checkAccounts(slot, sm)
	c.checkEphemeral(slot, sm, alive)
	if l, ok := sm.LeaderOf(simElection); ok && l.Session != 0 {
		if !alive[l.Session] {
			c.s.failf("slot %d: election led by session %d, which has ended", slot, l.Session)
		}
		if l.Session != c.leader {
			if l.Term <= c.lastTerm {
				c.s.failf("slot %d: new leader %d of term %d after term %d", slot, l.Session, l.Term, c.lastTerm)
			}
			c.leader, c.lastTerm = l.Session, l.Term
		}
	} else {
		c.leader = 0
	}
	if evs, err := sm.KVEvents(c.lastRev+1, "", true, 0); err == nil {
		for _, ev := range evs {
			c.kvEvents[ev.Revision] = append(c.kvEvents[ev.Revision], ev)
			c.lastRev = ev.Revision
		}
	} else if errors.Is(err, statemachine.ErrCompacted) {
		c.s.failf("slot %d: the KV history dropped revisions %d.. before the checker saw them", slot, c.lastRev+1)
	}
	if chs, err := sm.ElectionChanges(simElection, c.lastSeq); err == nil {
		for _, ch := range chs {
			c.changes[ch.Seq] = ch
			c.lastSeq = ch.Seq
		}
	}
}

// kvOp records a finished key-value operation for the linearizability
// check; ret is ignored for an unknown outcome.
func (c *simChecker) kvOp(client int, in linearize.KVInput, call, ret time.Duration, out linearize.KVOutput) {
	c.kv = append(c.kv, porcupine.Operation{ClientId: client, Input: in, Call: int64(call), Output: out, Return: int64(ret)})
	if out.Unknown {
		c.s.stats.unknown++
	}
}

// written notes a value a client is about to write to key.
func (c *simChecker) written(key, value string) {
	if c.writes[key] == nil {
		c.writes[key] = map[string]bool{}
	}
	c.writes[key][value] = true
}

// everWritten reports whether value was ever written to key.
func (c *simChecker) everWritten(key, value string) bool { return c.writes[key][value] }

// probeDone reports whether the probe, a write issued after the heal,
// has been acknowledged.
func (c *simChecker) probeDone() bool { return c.probeOK }

// hold records a client's hold of a lock or of the election.
func (c *simChecker) hold(name string, h simHold) {
	c.holds[name] = append(c.holds[name], h)
}

// finalChecks runs the checks that need the whole run: linearizability of
// the key-value history (lease reads included), and that no two clients
// ever held a lock or led the election at once by their own reckoning,
// with tokens and terms growing from one holder to the next.
func (s *sim) finalChecks() {
	c := s.check
	for name, hs := range c.holds {
		sort.Slice(hs, func(i, j int) bool { return hs[i].start < hs[j].start })
		var prev *simHold
		for i := range hs {
			h := &hs[i]
			if h.end <= h.start {
				continue // lost before the grant arrived: never held
			}
			if prev != nil {
				if h.start < prev.end {
					s.failf("%s held by client %d (session %d, token %d) from %s to %s and by client %d (session %d, token %d) from %s to %s",
						name, prev.client, prev.session, prev.token, prev.start, prev.end, h.client, h.session, h.token, h.start, h.end)
					return
				}
				// A new holder's token (term) exceeds every earlier one; the
				// same session taking it again (still holding it, its
				// release or resignation lost) gets the same one back.
				if h.token < prev.token || (h.token == prev.token && h.session != prev.session) {
					s.failf("%s: token %d (client %d, session %d, from %s) after token %d (client %d, session %d, until %s)",
						name, h.token, h.client, h.session, h.start, prev.token, prev.client, prev.session, prev.end)
					return
				}
			}
			prev = h
			if name == simElection {
				s.stats.leaders++
			} else {
				s.stats.grants++
			}
		}
	}
	ops := make([]porcupine.Operation, len(c.kv))
	var end int64
	for _, op := range c.kv {
		end = max(end, op.Call, op.Return)
	}
	for i, op := range c.kv {
		if op.Output.(linearize.KVOutput).Unknown {
			op.Return = end + 1
		}
		ops[i] = op
	}
	start := time.Now()
	res, info := porcupine.CheckOperationsVerbose(linearize.KVModel, ops, 2*time.Minute)
	c.porcupine = time.Since(start)
	switch res {
	case porcupine.Ok:
	case porcupine.Illegal:
		path := filepath.Join(os.TempDir(), fmt.Sprintf("paxosd-sim-%d.html", s.seed))
		_ = porcupine.VisualizePath(linearize.KVModel, info, path)
		s.failf("the key-value history (%d operations) is not linearizable; visualization: %s", len(ops), path)
	default:
		s.failf("the linearizability check of %d operations did not finish", len(ops))
	}
}
