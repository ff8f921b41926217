package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/proposer"
	"github.com/paxosd/paxosd/wal"
	"github.com/paxosd/paxosd/wire"
)

// Tests of the snapshot install that drops the node's state before it
// decodes the snapshot's (install.go), on scripted simulations: a follower
// stopped while the others snapshot and truncate their logs past it comes
// back, fetches the leader's snapshot, checks it and drops its state; the
// test holds the decode's result to look at the node meanwhile.

// holdBackground runs a node's background jobs as the simulation does,
// but keeps the result of a job that ran while the node had no state (the
// snapshot's decode) until the test releases it. Before such a job runs,
// damage (if set) is called, and repair after.
type holdBackground struct {
	inner          background
	n              *Node
	held           []func()
	damage, repair func()
}

func (b *holdBackground) runYielding(work func(context.Context) func()) { b.run(0, work) }

func (b *holdBackground) pause(ctx context.Context, d time.Duration) error {
	return b.inner.pause(ctx, d)
}

func (b *holdBackground) run(after time.Duration, work func(context.Context) func()) {
	b.inner.run(after, func(ctx context.Context) func() {
		if !b.n.installing() {
			return work(ctx)
		}
		if b.damage != nil {
			b.damage()
		}
		then := work(ctx)
		if b.repair != nil {
			b.repair()
		}
		return func() { b.held = append(b.held, then) }
	})
}

// installRun is a run in which follower f has dropped its state to install
// the leader's snapshot; the decode's result is held.
type installRun struct {
	s       *sim
	l, f    *simNode
	hold    *holdBackground
	writer  *simLink
	seq     uint64
	applied paxos.Slot       // f's applied slot when it dropped its state
	stored  wal.SnapshotMeta // f's own stored snapshot then
}

// put writes key=value through node sn and waits for the answer.
func (r *installRun) put(t *testing.T, sn *simNode, key, value string) {
	t.Helper()
	r.seq++
	seq, done := r.seq, false
	r.writer.send(&wire.Request{Op: wire.OpPut, Key: key, Value: []byte(value), ClientID: 0x7001, Seq: seq}, 0, sn, func(resp *wire.Response) {
		if resp.Err != wire.ErrNone {
			t.Errorf("put %s: %s %s", key, resp.Err, resp.ErrMsg)
		}
		done = true
	}, func() { t.Errorf("put %s: the connection failed", key) })
	rgRunUntil(t, r.s, time.Second, "put "+key, func() bool { return done })
}

// startInstall runs until a follower has dropped its state to install the
// leader's snapshot. before (may be nil) runs once f is chosen, before
// it stops; damage and repair go to the holdBackground.
func startInstall(t *testing.T, seed int64, before func(*installRun), damage, repair func(f *simNode)) *installRun {
	t.Helper()
	s := rgSim(t, seed, func(p *simParams) { p.snapshotEntries, p.snapshotKeep, p.window = 10, 2, 64 })
	r := &installRun{s: s, l: rgLeader(t, s)}
	r.f = rgFollowers(s, r.l)[0]
	r.writer = newSimLink(newSimClient(s, 0), "writer", 0x7001)
	if before != nil {
		before(r)
	}
	r.put(t, r.l, "x", "before")
	for i := 0; i < 12; i++ { // f takes a snapshot of its own
		r.put(t, r.l, fmt.Sprintf("a%d", i), "v")
	}
	rgRunUntil(t, s, time.Second, "the puts applied on f, f's snapshot taken", func() bool {
		_, err := r.f.store.Snapshot()
		return r.f.n.sm.Applied() == r.l.n.sm.Applied() && err == nil && r.f.n.snap.inFlight == nil
	})
	s.stop(r.f)
	for i := 0; i < 60; i++ {
		r.put(t, r.l, fmt.Sprintf("k%d", i%5), fmt.Sprint(i))
	}
	rgRunUntil(t, s, time.Second, "the leader's log truncated", func() bool { return r.l.n.r.Status().Truncated > 40 })
	s.restart(r.f)
	f := r.f
	r.hold = &holdBackground{inner: f.n.bg, n: f.n}
	if damage != nil {
		r.hold.damage, r.hold.repair = func() { damage(f) }, func() { repair(f) }
	}
	f.n.bg = r.hold
	var err error
	if r.stored, err = f.store.Snapshot(); err != nil {
		t.Fatal(err)
	}
	rgRunUntil(t, s, 3*time.Second, "f drops its state to install the snapshot", func() bool {
		return f.n.installing() && len(r.hold.held) == 1
	})
	r.applied = f.n.install.applied
	if f.n.install.meta.Slot <= r.applied {
		t.Fatalf("setup: installing the snapshot %s on a node that applied slot %d", f.n.install.meta, r.applied)
	}
	return r
}

// call sends q to node sn on a link of its own and returns what it has
// received after d (nil: nothing).
func (r *installRun) call(t *testing.T, name string, cid uint64, sn *simNode, q *wire.Request, d time.Duration) *[]*wire.Response {
	t.Helper()
	var got []*wire.Response
	link := newSimLink(newSimClient(r.s, 1), name, cid)
	link.send(q, 0, sn, func(resp *wire.Response) { got = append(got, resp) }, nil)
	if err := r.s.runFor(d); err != nil {
		t.Fatal(err)
	}
	return &got
}

// release lets the held decode's result reach f's loop.
func (r *installRun) release() {
	for _, then := range r.hold.held {
		r.s.runOn(r.f, r.f.inc, func(*Node) { then() })
	}
	r.hold.held = nil
}

// While a follower installs a snapshot it has no state machine: what it
// would answer from its own state is refused as retryable, what goes
// through the log waits for its slot, its status reports the state it
// dropped, and nothing on its disk changes. Once the state is in place it
// answers every one of them from the snapshot's state.
func TestInstallRefusesLocalReadsAndWaitsForLogOnes(t *testing.T) {
	r := startInstall(t, 301, nil, nil, nil)
	s, l, f := r.s, r.l, r.f
	if f.n.sm != nil {
		t.Fatal("the installing node still holds a state machine")
	}
	for _, q := range []*wire.Request{
		{Op: wire.OpGet, Key: "x", Serializable: true},
		{Op: wire.OpList, Prefix: "k", Serializable: true},
		{Op: wire.OpList, Prefix: "k", PageBytes: 1 << 10, Revision: 3, ClientID: 0x7100, Seq: 1},
		{Op: wire.OpSessionList},
		{Op: wire.OpLockList},
		{Op: wire.OpQuotaGet},
		{Op: wire.OpWatch, Key: "k", WatchPrefix: true},
		{Op: wire.OpObserve, Name: "e"},
	} {
		got := *r.call(t, "local", 0x7100, f, q, 20*time.Millisecond)
		if len(got) != 1 || got[0].Err != wire.ErrUnavailable || !strings.Contains(got[0].ErrMsg, "installing a snapshot") ||
			got[0].StreamEnd != q.Op.IsStream() {
			t.Fatalf("%s while installing: %+v, want one Unavailable answer saying the node installs a snapshot", q.Op, *got[0])
		}
	}
	st := *r.call(t, "status", 0x7101, f, &wire.Request{Op: wire.OpStatus}, 20*time.Millisecond)
	if len(st) != 1 || st[0].Err != wire.ErrNone || st[0].Status[0].Applied != r.applied {
		t.Fatalf("status while installing: %+v, want the dropped state's applied slot %d", st, r.applied)
	}
	// Through the log: a linearizable get and a put wait for the new state.
	get := r.call(t, "get", 0x7102, f, &wire.Request{Op: wire.OpGet, Key: "k4", ClientID: 0x7102, Seq: 1}, 0)
	put := r.call(t, "put", 0x7103, f, &wire.Request{Op: wire.OpPut, Key: "k9", Value: []byte("late"), ClientID: 0x7103, Seq: 1}, 0)
	// A keep-alive batch too: the node has no level to gate it on, the
	// log does.
	batch := r.call(t, "batch", 0x7105, f, &wire.Request{Op: wire.OpSessionKeepAliveBatch, SessionIDs: []uint64{77}, ClientID: 0x7105, Seq: 1}, 0)
	// A put with a session (an ephemeral key) is refused as retryable: below
	// level 9 the log would make its key permanent, and the node has no
	// level to check.
	if eph := *r.call(t, "eph", 0x7106, f, &wire.Request{Op: wire.OpPut, Key: "e", Value: []byte("v"), SessionID: 77, ClientID: 0x7106, Seq: 1}, 20*time.Millisecond); len(eph) != 1 || eph[0].Err != wire.ErrUnavailable || !strings.Contains(eph[0].ErrMsg, "installing a snapshot") {
		t.Fatalf("a put with a session while installing: %+v, want one Unavailable answer saying the node installs a snapshot", eph)
	}
	if err := s.runFor(200 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if len(*get) != 0 || len(*put) != 0 || len(*batch) != 0 || !f.n.installing() {
		t.Fatalf("answered from no state: get %+v, put %+v, keep-alive batch %+v", *get, *put, *batch)
	}
	if meta, err := f.store.Snapshot(); err != nil || meta != r.stored {
		t.Fatalf("f's stored snapshot changed before the install's write: %s, %v (was %s)", meta, err, r.stored)
	}

	r.release()
	if f.n.installing() || f.n.sm == nil || f.n.sm.Applied() < r.applied {
		t.Fatalf("after the decode: installing %v, state machine %v", f.n.installing(), f.n.sm)
	}
	rgRunUntil(t, s, 2*time.Second, "the waiting get and put answered", func() bool {
		return len(*get) == 1 && len(*put) == 1 && len(*batch) == 1
	})
	if b := (*batch)[0]; b.Err != wire.ErrNone || len(b.ExpiredSessions) != 1 || b.ExpiredSessions[0] != 77 {
		t.Fatalf("after the install: keep-alive batch %s %q, expired %v; want session 77 reported expired", b.Err, b.ErrMsg, b.ExpiredSessions)
	}
	if g, p := (*get)[0], (*put)[0]; g.Err != wire.ErrNone || string(g.KV.Value) != "59" || p.Err != wire.ErrNone {
		t.Fatalf("after the install: get k4 = %s %q, put %s; want 59 and a put", g.Err, g.KV.Value, p.Err)
	}
	rgRunUntil(t, s, time.Second, "f caught up", func() bool {
		return !f.n.installing() && f.n.sm.Applied() == l.n.sm.Applied() && f.n.sm.Hash() == l.n.sm.Hash()
	})
	if meta, err := f.store.Snapshot(); err != nil || meta.Slot <= r.stored.Slot {
		t.Fatalf("f's stored snapshot after the install: %s, %v; want the leader's, past %s", meta, err, r.stored)
	}
	for _, q := range []*wire.Request{{Op: wire.OpGet, Key: "k9", Serializable: true}, {Op: wire.OpQuotaGet}} {
		got := *r.call(t, "after", 0x7104, f, q, 20*time.Millisecond)
		if len(got) != 1 || got[0].Err != wire.ErrNone || q.Op == wire.OpGet && string(got[0].KV.Value) != "late" {
			t.Fatalf("%s after the install: %+v", q.Op, got)
		}
	}
}

// If the log catches up past the snapshot while it is decoded (a new
// leader still holds the slots the old one truncated), the slots past the
// snapshot's are kept and applied on the new state, and no install is
// written: the node's own snapshot and log already cover them.
func TestInstallOvertakenByTheLog(t *testing.T) {
	var g *simNode
	r := startInstall(t, 302, func(r *installRun) {
		for _, sn := range rgFollowers(r.s, r.l) {
			if sn != r.f {
				g = sn
			}
		}
		g.n.cfg.SnapshotKeepEntries = 1 << 20 // g holds on to its whole log
	}, nil, nil)
	s, l, f := r.s, r.l, r.f
	if tr := g.n.r.Status().Truncated; tr != 0 {
		t.Fatalf("setup: node %d truncated its log to %d", g.id, tr)
	}
	snapSlot := f.n.install.meta.Slot
	s.runOn(l, l.inc, func(n *Node) {
		if _, err := n.handOver(g.id); err != nil {
			t.Fatalf("hand over to node %d: %v", g.id, err)
		}
	})
	rgRunUntil(t, s, 3*time.Second, "f's watermark past the snapshot's slot", func() bool {
		return g.n.r.Status().Role == proposer.Leader && f.n.r.Status().Commit > snapSlot
	})
	r.put(t, g, "y", "during")
	if !f.n.installing() || len(f.n.install.later) == 0 {
		t.Fatalf("setup: installing %v, slots kept for later: %d", f.n.installing(), len(f.n.install.later))
	}
	submitted := f.n.submitted
	r.release()
	if f.n.snap.installSeq > submitted {
		t.Fatalf("an install was written although the log covers the snapshot (watermark %d, snapshot %d)", f.n.r.Status().Commit, snapSlot)
	}
	rgRunUntil(t, s, time.Second, "f caught up", func() bool {
		return f.n.sm.Applied() == g.n.sm.Applied() && f.n.sm.Hash() == g.n.sm.Hash()
	})
	if kv, ok := f.n.sm.Get("y"); !ok || string(kv.Value) != "during" {
		t.Fatalf("f reads y = %q (%v)", kv.Value, ok)
	}
}

// A decode that fails after the node dropped its state (the staged bytes
// changed on the disk between the check and the decode) stops the node
// with a line that says so, with nothing on its disk changed: restarted,
// it loads its own state and installs the snapshot again.
func TestInstallDecodeFailureStopsTheNode(t *testing.T) {
	var undo func()
	damage := func(f *simNode) {
		meta, _, err := f.store.Staged()
		if err != nil {
			t.Fatal(err)
		}
		dir := "/data/snap"
		names, err := f.fs.List(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range names {
			path := f.fs.PathJoin(dir, name)
			st, err := f.fs.Stat(path)
			if err != nil || uint64(st.Size()) != meta.Size {
				continue
			}
			file, err := f.fs.OpenReadWrite(path)
			if err != nil {
				t.Fatal(err)
			}
			off := int64(meta.Size / 2)
			b := []byte{0}
			if _, err := file.ReadAt(b, off); err != nil {
				t.Fatal(err)
			}
			if _, err := file.WriteAt([]byte{b[0] ^ 0x40}, off); err != nil {
				t.Fatal(err)
			}
			undo = func() {
				if _, err := file.WriteAt(b, off); err != nil {
					t.Fatal(err)
				}
				_ = file.Close()
			}
			return
		}
		t.Fatalf("the staged snapshot %s is not in %s (%v)", meta, dir, names)
	}
	r := startInstall(t, 303, nil, damage, func(*simNode) { undo() })
	s, l, f := r.s, r.l, r.f
	n := f.n
	r.release()
	if !errors.Is(n.failed, errInstallFailed) || !strings.Contains(n.failed.Error(), "a restart loads its own state") {
		t.Fatalf("after a failed decode the node runs on (failed: %v)", n.failed)
	}
	if f.up() {
		t.Fatal("the node that failed is still up")
	}
	t.Logf("the node stopped: %v", n.failed)
	s.err = nil
	s.restart(f)
	if meta, err := f.store.Snapshot(); err != nil || meta != r.stored || f.n.sm.Applied() < r.applied {
		t.Fatalf("restarted: stored snapshot %s (%v), applied %d; want %s and at least %d, as before the fetch",
			meta, err, f.n.sm.Applied(), r.stored, r.applied)
	}
	rgRunUntil(t, s, 3*time.Second, "f caught up by installing the snapshot again", func() bool {
		return !f.n.installing() && f.n.sm.Applied() == l.n.sm.Applied() && f.n.sm.Hash() == l.n.sm.Hash() &&
			counterValue(f.n.m.snapshotInstalls) >= 1
	})
}
