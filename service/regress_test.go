package service

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/proposer"
	"github.com/paxosd/paxosd/wal"
	"github.com/paxosd/paxosd/wire"
)

// Regression tests for fixed bugs. Most drive whole nodes through the
// scripted node simulation (nodesim_*_test.go): no random faults and no
// clients, only what the test does, on a fixed seed, so each replays
// exactly and takes well under a second.

// rgParams are the settings of the scripted runs here: three nodes, quick
// messages and syncs, status and snapshot requests that do not fail at
// random, and no snapshots unless a test asks for them.
func rgParams(p *simParams) {
	p.nodes = 3
	p.rpcFail = 0
	p.latencyMin, p.latencyMax = 100*time.Microsecond, 300*time.Microsecond
	p.syncMin, p.syncMax = 100*time.Microsecond, 300*time.Microsecond
	p.snapshotEntries, p.snapshotKeep = 10000, 0
}

// rgSim starts a scripted run of seed with rgParams, then mutate (may be
// nil).
func rgSim(t *testing.T, seed int64, mutate func(*simParams)) *sim {
	t.Helper()
	s := newScripted(seed, func(p *simParams) {
		rgParams(p)
		if mutate != nil {
			mutate(p)
		}
	})
	t.Cleanup(s.shutdown)
	if s.err != nil {
		t.Fatal(s.err)
	}
	return s
}

// rgRunUntil runs s a millisecond at a time until cond holds; it fails t
// if d passes first or a checker finds a violation.
func rgRunUntil(t *testing.T, s *sim, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := s.now + d
	for !cond() {
		if s.now >= end {
			t.Fatalf("t=%s: %s did not happen within %s: %s", s.now, what, d, s.progress())
		}
		if err := s.runFor(time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
}

// rgLeader returns the node every running node follows, once there is
// one.
func rgLeader(t *testing.T, s *sim) *simNode {
	t.Helper()
	var l *simNode
	rgRunUntil(t, s, 5*time.Second, "a leader every running node follows", func() bool {
		l = nil
		for _, sn := range s.nodes {
			if sn.up() && sn.n.r.Status().Role == proposer.Leader {
				l = sn
			}
		}
		if l == nil {
			return false
		}
		for _, sn := range s.nodes {
			if sn.up() && sn.n.r.Status().Leader != l.id {
				return false
			}
		}
		return true
	})
	return l
}

// rgFollowers returns the running nodes other than l.
func rgFollowers(s *sim, l *simNode) []*simNode {
	var fs []*simNode
	for _, sn := range s.nodes {
		if sn != l && sn.up() {
			fs = append(fs, sn)
		}
	}
	return fs
}

// rgCrashLeaders crashes the leader rounds times, each time waiting for
// the next one before restarting it: every election raises the ballot the
// members promise.
func rgCrashLeaders(t *testing.T, s *sim, rounds int) {
	t.Helper()
	for i := 0; i < rounds; i++ {
		l := rgLeader(t, s)
		s.stop(l)
		rgLeader(t, s)
		s.restart(l)
	}
	rgLeader(t, s)
}

// rgJournal passes a node's writes on to its journal and keeps them, in
// order, for the test to inspect; onSubmit, when set, is told of each
// right after it was handed over.
type rgJournal struct {
	inner    journal
	jobs     []walJob
	onSubmit func(walJob)
}

func (j *rgJournal) submit(job walJob) error {
	j.jobs = append(j.jobs, job)
	err := j.inner.submit(job)
	if j.onSubmit != nil {
		j.onSubmit(job)
	}
	return err
}

func (j *rgJournal) close() { j.inner.close() }

// rgRecord puts a recording journal in front of sn's (call it right after
// the node started, before its first write).
func rgRecord(sn *simNode) *rgJournal {
	j := &rgJournal{inner: sn.n.journal}
	sn.n.journal = j
	return j
}

// rgDurableWatermark is the highest watermark the jobs up to durable (a
// sequence number the journal has made durable) carry, or base.
func rgDurableWatermark(jobs []walJob, durable uint64, base paxos.Slot) paxos.Slot {
	w := base
	for _, j := range jobs {
		if j.seq > durable {
			break
		}
		w = max(w, j.p.Commit)
		if j.install != nil {
			w = max(w, j.install.meta.Slot)
		}
	}
	return w
}

// Bug 5a. A member rebuilding after a lost data directory (--rejoin) must
// raise its promise to at least every other member's before it may vote
// again: any quorum that counted one of the promises it forgot shares a
// member with the members it asked. The probe used to take the highest
// ballot the others reported in NodeStatus.Ballot — the proposer's highest
// ballot seen, which is zero on a member that has just restarted and not
// yet heard from a leader — instead of their Promised ballot, so the
// rebuilt node kept a zero promise and could accept a stale leader's value
// under a ballot it had promised away. Here the promises climb through
// several elections, the other members restart (their in-memory ballot
// resets, their promise stays on disk), and the third member loses its
// disk at once: when it sets its target, its promise must be at least
// every other member's.
func TestRegressRejoinRaisesPromiseToOthersPromised(t *testing.T) {
	s := rgSim(t, 101, nil)
	rgCrashLeaders(t, s, 3)
	// Let the last leader's own commands (cluster clock, identity) be
	// chosen, so that nothing of its is in flight at the restarts below.
	if err := s.runFor(300 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	l := rgLeader(t, s)
	x := rgFollowers(s, l)[0]
	var others []*simNode
	for _, sn := range s.nodes {
		if sn != x {
			s.stop(sn)
			s.restart(sn)
			others = append(others, sn)
		}
	}
	if err := s.runFor(20 * time.Millisecond); err != nil { // what was in flight to them arrives
		t.Fatal(err)
	}
	for _, o := range others {
		if st := o.n.r.Status(); !st.Ballot.IsZero() || st.Promised.Round < 3 {
			t.Fatalf("setup: restarted node %d reports ballot %s and promise %s; the scenario needs ballot 0 and a promise of round 3 or more", o.id, st.Ballot, st.Promised)
		}
	}
	s.loseDisk(x)
	s.restart(x)
	j := rgRecord(x)
	var set bool
	var promised, want paxos.Ballot
	j.onSubmit = func(job walJob) {
		if job.rejoin == nil || !job.rejoin.set || set {
			return
		}
		set, promised = true, x.n.r.Status().Promised
		for _, o := range others {
			st := o.n.r.Status()
			if !st.Ballot.IsZero() {
				t.Errorf("setup: node %d heard of ballot %s before the probe finished", o.id, st.Ballot)
			}
			want = paxos.MaxBallot(want, st.Promised)
		}
	}
	rgRunUntil(t, s, 2*time.Second, "the rejoin target", func() bool { return set })
	if promised.Less(want) {
		t.Fatalf("node %d set its rejoin target with its promise at %s, below the other members' promise %s: "+
			"it could accept under a ballot it promised away before it lost its disk", x.id, promised, want)
	}
}

// Bug 5b. The raised promise must reach the journal before the rejoin
// target: a target on disk means the probe is over, so a node that crashes
// and restarts with its target but not its raised promise never raises it
// again, and accepts under ballots it promised away. The target's write
// was submitted before the promise's. Here the rebuilding node's journal
// is recorded: the write carrying the raised promise must come first; and
// its disk stalls from the write after the target's on, and it crashes
// during the stall: restarted, it must either still be probing or hold
// the raised promise.
func TestRegressRejoinPromiseReachesJournalBeforeTarget(t *testing.T) {
	s := rgSim(t, 102, nil)
	rgCrashLeaders(t, s, 2)
	l := rgLeader(t, s)
	x := rgFollowers(s, l)[0]
	s.loseDisk(x)
	s.restart(x)
	j := rgRecord(x)
	var targetSeq uint64
	var raised paxos.Ballot
	j.onSubmit = func(job walJob) {
		if job.rejoin == nil || !job.rejoin.set || targetSeq != 0 {
			return
		}
		targetSeq, raised = job.seq, x.n.r.Status().Promised
		x.stalledUntil = s.now + time.Second // the next write, and every one after it
	}
	rgRunUntil(t, s, 2*time.Second, "the rejoin target", func() bool { return targetSeq != 0 })
	if raised.IsZero() {
		t.Fatalf("setup: node %d's promise is zero when it sets its target", x.id)
	}
	var promiseSeq uint64
	for _, job := range j.jobs {
		if !job.p.Promised.IsZero() && !job.p.Promised.Less(raised) {
			promiseSeq = job.seq
			break
		}
	}
	if promiseSeq == 0 || promiseSeq > targetSeq {
		t.Errorf("node %d's journal got the rejoin target as write %d and the raised promise %s as write %d (0: never): the promise must come first",
			x.id, targetSeq, raised, promiseSeq)
	}
	if err := s.runFor(300 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	s.stop(x)
	x.stalledUntil = 0
	s.restart(x)
	if st := x.n.r.Status(); x.n.rejoin.active && x.n.rejoin.target != wal.RejoinUnknown && st.Promised.Less(raised) {
		t.Fatalf("node %d restarted with its rejoin target %d on disk but its promise at %s, below the raised %s: it will not probe again and may accept under a ballot promised away",
			x.id, x.n.rejoin.target, st.Promised, raised)
	}
}

// Bug 5c. The rejoin target must lie past every slot that can hold a vote
// the rebuilding node forgot: a leader proposes up to its own --window
// beyond its watermark, so the target adds the largest window of all
// members (NodeStatus.WindowSlots), not the rebuilding node's own. Here the
// leader runs with a window of 256, the other follower with 64 and the
// rebuilding node with 4: the target must be at least the highest slot the
// others hold plus 256.
func TestRegressRejoinTargetUsesLargestWindow(t *testing.T) {
	s := rgSim(t, 103, func(p *simParams) { p.window = 256 })
	l := rgLeader(t, s)
	fs := rgFollowers(s, l)
	x, y := fs[0], fs[1]
	s.p.window = 64 // the window of the nodes started from now on
	s.stop(y)
	s.restart(y)
	if rgLeader(t, s) != l {
		t.Fatalf("setup: node %d no longer leads", l.id)
	}
	var last paxos.Slot
	for _, o := range []*simNode{l, y} {
		st := o.n.r.Status()
		last = max(last, st.MaxSlot, st.Commit)
	}
	s.p.window = 4
	s.loseDisk(x)
	s.restart(x)
	if l.n.cfg.WindowSlots != 256 || y.n.cfg.WindowSlots != 64 || x.n.cfg.WindowSlots != 4 {
		t.Fatalf("setup: windows %d, %d, %d", l.n.cfg.WindowSlots, y.n.cfg.WindowSlots, x.n.cfg.WindowSlots)
	}
	rgRunUntil(t, s, 2*time.Second, "the rejoin target", func() bool { return x.n.rejoin.target != wal.RejoinUnknown })
	if want := last + 256; x.n.rejoin.target < want {
		t.Fatalf("node %d's rejoin target is %d, want at least %d: the highest slot the others hold (%d) plus the largest window among the members (256, the leader's; its own is 4)",
			x.id, x.n.rejoin.target, want, last)
	}
}

// Bug 5d. The rejoin record is cleared only once the writes holding the
// slots up to the target are durable, and the node votes again only once
// the clear is. The clear used to follow the in-memory watermark. Here the
// rebuilding node's disk stalls once its target is on disk, so its
// in-memory watermark passes the target long before its writes are
// durable: no clear may be submitted until a durable write carries a
// watermark at the target; it crashes during the stall and must come back
// still rejoining, towards the same target; then it finishes, clearing
// only after the durable watermark got there, and votes again. (The
// journal keeps order, so a clear submitted too early is still written
// after the slots: what the fix guarantees, and this checks, is when it is
// submitted.)
func TestRegressRejoinClearsOnlyOnceTargetDurable(t *testing.T) {
	s := rgSim(t, 104, func(p *simParams) { p.window = 16 })
	l := rgLeader(t, s)
	x := rgFollowers(s, l)[0]
	s.loseDisk(x)
	s.restart(x)
	// watch checks each clear of x's record against what its journal had
	// made durable when it was submitted.
	var clears int
	watch := func() {
		j, base := rgRecord(x), x.n.r.Status().Commit
		j.onSubmit = func(job walJob) {
			if job.rejoin == nil || job.rejoin.set {
				return
			}
			clears++
			target := x.n.rejoin.target
			if d := rgDurableWatermark(j.jobs, x.n.durable, base); d < target {
				t.Errorf("t=%s: node %d submitted the clear of its rejoin record with its durable watermark at %d (in memory %d), below the target %d",
					s.now, x.id, d, x.n.r.Status().Commit, target)
			}
		}
	}
	watch()
	var target paxos.Slot
	rgRunUntil(t, s, 2*time.Second, "the rejoin target on disk", func() bool {
		if x.n.rejoin.target == wal.RejoinUnknown || x.n.durable < x.n.submitted {
			return false
		}
		target = x.n.rejoin.target
		return true
	})
	x.stalledUntil = s.now + 2*time.Second
	rgRunUntil(t, s, time.Second, "the in-memory watermark at the target", func() bool { return x.n.r.Status().Commit >= target })
	if err := s.runFor(100 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	s.stop(x)
	x.stalledUntil = 0
	s.restart(x)
	if durable := x.n.r.Status().Commit; durable < target && (!x.n.rejoin.active || x.n.rejoin.target != target) {
		t.Fatalf("node %d restarted with its durable watermark at %d, below its target %d, but rejoining %v towards %d",
			x.id, durable, target, x.n.rejoin.active, x.n.rejoin.target)
	}
	watch()
	rgRunUntil(t, s, 3*time.Second, "the end of the rejoin", func() bool { return !x.n.rejoin.active })
	if clears != 1 {
		t.Fatalf("node %d rejoined after %d clears of its record, want 1", x.id, clears)
	}
}

// rgFailingJournal is a node's journal once its disk writer has died, as
// the production walWriter refuses writes then: from the first write
// submitted while dead() holds on, every submit returns err and nothing
// more is written. inLeaderChange records whether the node noticed the
// failure while handling a leader change.
type rgFailingJournal struct {
	inner          journal
	dead           func() bool
	err            error
	failed         bool
	inLeaderChange bool
}

func (j *rgFailingJournal) submit(job walJob) error {
	if !j.failed && j.dead() {
		j.failed, j.inLeaderChange = true, rgOnStack("noticeLeaderChange")
	}
	if j.failed {
		return j.err
	}
	return j.inner.submit(job)
}

func (j *rgFailingJournal) close() { j.inner.close() }

// rgOnStack reports whether a method or function named fn is calling.
func rgOnStack(fn string) bool {
	pcs := make([]uintptr, 64)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs)])
	for {
		f, more := frames.Next()
		if strings.HasSuffix(f.Function, "."+fn) {
			return true
		}
		if !more {
			return false
		}
	}
}

// Bug 7 (the loop). A node whose disk writer fails must stop at once and
// send nothing more, wherever it notices the failure. When it was noticed
// inside the leader-change handling (the new leader re-proposing its
// waiting commands), it was swallowed: the node went on leading —
// heartbeats kept the others from electing anyone else — until the WAL
// job queue filled and the loop blocked for good. Here a follower holds a
// client's put (its forward is lost), becomes the next leader (the other
// follower never campaigns), and its writer is dead by the time it
// re-proposes the put: it must stop in that very step, tell the client,
// send nothing more, and the others must elect a leader and commit. (The
// dead writer refuses the write, as walWriter does: sn.failNext would not
// do, as the simulated journal then tells the node itself, through
// Node.fail, when the write completes.)
func TestRegressDiskFailureInLeaderChangeStopsNode(t *testing.T) {
	s := rgSim(t, 105, nil)
	l := rgLeader(t, s)
	fs := rgFollowers(s, l)
	a, b := fs[0], fs[1]
	s.net.drop = func(m paxos.Message) bool {
		return (m.From == a.id && m.Type == paxos.MsgForward) ||
			(m.From == b.id && (m.Type == paxos.MsgPreVote || m.Type == paxos.MsgPrepare))
	}
	c := newSimClient(s, 0)
	link := newSimLink(c, "put", 0x7001)
	var putResp *wire.Response
	link.send(&wire.Request{Op: wire.OpPut, Key: "k", Value: []byte("v"), ClientID: 0x7001, Seq: 1}, 0, a,
		func(r *wire.Response) { putResp = r }, nil)
	rgRunUntil(t, s, time.Second, "the put waiting at node a", func() bool { return len(a.n.waiters) == 1 })
	fj := &rgFailingJournal{inner: a.n.journal, err: errSimDisk, dead: func() bool { return a.n.r.Status().Role == proposer.Leader }}
	a.n.journal = fj
	var sentAfter []string
	drop := s.net.drop
	s.net.drop = func(m paxos.Message) bool {
		if m.From == a.id && fj.failed {
			sentAfter = append(sentAfter, m.String())
		}
		return drop(m)
	}
	s.stop(l)
	rgRunUntil(t, s, 3*time.Second, "node a's failed write", func() bool { return fj.failed })
	if !fj.inLeaderChange {
		t.Fatalf("setup: node %d noticed its failed writer outside the leader-change handling", a.id)
	}
	if a.up() {
		t.Fatalf("node %d noticed its writer failed (while taking over as leader) but did not stop", a.id)
	}
	s.net.drop = nil
	s.restart(l)
	nl := rgLeader(t, s)
	if len(sentAfter) > 0 {
		t.Fatalf("node %d sent %d messages after its writer failed, first %s", a.id, len(sentAfter), sentAfter[0])
	}
	if putResp == nil || putResp.Err != wire.ErrUnavailable {
		t.Fatalf("the put waiting at node %d was answered %+v, want %s at once", a.id, putResp, wire.ErrUnavailable)
	}
	link2 := newSimLink(c, "put2", 0x7002)
	var resp *wire.Response
	link2.send(&wire.Request{Op: wire.OpPut, Key: "k", Value: []byte("w"), ClientID: 0x7002, Seq: 1}, 0, nl,
		func(r *wire.Response) { resp = r }, nil)
	rgRunUntil(t, s, 2*time.Second, "a put through the new leader", func() bool { return resp != nil })
	if resp.Err != wire.ErrNone {
		t.Fatalf("put through the new leader %d: %s %s", nl.id, resp.Err, resp.ErrMsg)
	}
}

// Bug 7 (the writer). Once the production WAL writer has failed, submit
// must return its error instead of waiting, so the loop stops wherever it
// notices. submit used to be a plain send on the jobs channel: after the
// writer's goroutine died it returned nil, the job silently lost, and once
// the channel's 1,024 slots were full it blocked for good, with the loop
// (and the node's clients and peers) stuck behind it. The store is closed
// before the first write, so that write fails; then 5,000 submits in a row
// must all return promptly, and return the writer's error — every one of
// them once the queue would be full. (While the dead writer's queue has
// room, submit's select may still pick the queue: such a job is lost like
// any write after a failure, and the loop learns of it through w.dead.)
func TestRegressWALWriterSubmitAfterFailure(t *testing.T) {
	store, err := wal.Open(t.TempDir(), wal.Identity{ClusterID: "c", NodeID: 1}, wal.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	store.Close() // every write fails from now on
	w := newWALWriter(store, newMetrics(prometheus.NewRegistry()))
	job := func(seq uint64) walJob {
		return walJob{seq: seq, p: paxos.Persist{Entries: []paxos.Entry{{Slot: paxos.Slot(seq), Value: paxos.Value{Kind: paxos.ValueNoop}}}}}
	}
	_ = w.submit(job(1))
	select {
	case <-w.dead:
	case <-time.After(5 * time.Second):
		t.Fatal("the writer did not report its failed write")
	}
	if !errors.Is(w.err, wal.ErrClosed) {
		t.Fatalf("the writer failed with %v, want %v", w.err, wal.ErrClosed)
	}
	done := make(chan error, 1)
	go func() {
		for seq := uint64(2); seq <= 5001; seq++ {
			if err := w.submit(job(seq)); err != w.err {
				done <- fmt.Errorf("submit %d after the writer failed returned %v, want its error %v", seq, err, w.err)
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("submits after the writer failed block: the loop would wait forever instead of stopping")
	}
	w.close()
}

// Bug 8d. A linearizable read waiting on a follower for its slot must be
// answered promptly when a snapshot install skips that slot: the read
// leaves no trace in the snapshot (no duplicate-table entry), so the
// follower proposes it again (answerSkipped). It used to wait out the
// request timeout. Here a follower forwards a get (a follower never reads
// under a lease), then hears the leader's heartbeats but none of its
// Accepts, catch-up or snapshot offers while the leader applies the get
// and enough writes to snapshot and truncate its log past the get's slot;
// once the follower hears everything again it installs the leader's
// snapshot, and the get must be answered, with the value, within half the
// request timeout.
func TestRegressReadSkippedBySnapshotInstallIsAnswered(t *testing.T) {
	s := rgSim(t, 106, func(p *simParams) {
		p.snapshotEntries, p.snapshotKeep = 10, 2
		p.requestTimeout = 2 * time.Second
		p.window = 64
	})
	l := rgLeader(t, s)
	f := rgFollowers(s, l)[0]
	c := newSimClient(s, 0)
	writer := newSimLink(c, "writer", 0x8001)
	var seq uint64
	var put func(left int, done func())
	put = func(left int, done func()) {
		if left == 0 {
			done()
			return
		}
		seq++
		q := &wire.Request{Op: wire.OpPut, Key: fmt.Sprintf("k%d", seq%5), Value: []byte(fmt.Sprint(seq)), ClientID: 0x8001, Seq: seq}
		if seq == 1 {
			q.Key, q.Value = "x", []byte("before")
		}
		writer.send(q, 0, l, func(r *wire.Response) {
			if r.Err != wire.ErrNone {
				t.Errorf("put %d: %s %s", seq, r.Err, r.ErrMsg)
			}
			put(left-1, done)
		}, func() { t.Errorf("put %d failed", seq) })
	}
	var wrote bool
	put(1, func() { wrote = true })
	rgRunUntil(t, s, time.Second, "x written", func() bool { return wrote })
	rgRunUntil(t, s, time.Second, "x applied on node f", func() bool { return f.n.sm.Applied() == l.n.sm.Applied() })

	s.net.drop = func(m paxos.Message) bool {
		return m.To == f.id && (m.Type == paxos.MsgAccept || m.Type == paxos.MsgDecide || m.Type == paxos.MsgSnapshot)
	}
	if f.n.r.Status().Role != proposer.Follower {
		t.Fatalf("setup: node %d is not a follower", f.id)
	}
	before := l.n.r.Status().Commit
	reader := newSimLink(c, "reader", 0x8002)
	var got *wire.Response
	var gotAt time.Duration
	reader.send(&wire.Request{Op: wire.OpGet, Key: "x", ClientID: 0x8002, Seq: 1}, 0, f,
		func(r *wire.Response) { got, gotAt = r, s.now }, nil)
	rgRunUntil(t, s, time.Second, "the get chosen", func() bool { return l.n.r.Status().Commit > before })
	getSlot := l.n.r.Status().Commit
	wrote = false
	put(60, func() { wrote = true })
	rgRunUntil(t, s, 3*time.Second, "the writes", func() bool { return wrote })
	rgRunUntil(t, s, time.Second, "the leader's log truncated past the get", func() bool { return l.n.r.Status().Truncated > getSlot })
	if got != nil || len(f.n.waiters[callKey{0x8002, 1}]) != 1 || f.n.r.Status().Commit >= getSlot {
		t.Fatalf("setup: node %d (watermark %d) answered %+v or is not waiting for the get in slot %d", f.id, f.n.r.Status().Commit, got, getSlot)
	}

	healed := s.now
	s.net.drop = nil
	rgRunUntil(t, s, 2*s.p.requestTimeout, "an answer to the get", func() bool { return got != nil })
	if installs := counterValue(f.n.m.snapshotInstalls); installs < 1 {
		t.Fatalf("setup: node %d answered without installing a snapshot", f.id)
	}
	if got.Err != wire.ErrNone || string(got.KV.Value) != "before" || gotAt-healed > s.p.requestTimeout/2 {
		t.Fatalf("the get waiting on node %d for slot %d, skipped by a snapshot install, was answered %s %q (%s) %s after the heal; want the value within %s",
			f.id, getSlot, got.Err, got.KV.Value, got.ErrMsg, gotAt-healed, s.p.requestTimeout/2)
	}
}
