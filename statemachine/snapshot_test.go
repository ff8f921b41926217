package statemachine

import (
	"github.com/vmihailenco/msgpack/v5"

	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/paxosd/paxosd/paxos"
)

// snapGen mixes the KV stream of cmdGen (puts, gets, deletes, cas, lists,
// stale retries, acks and invalid commands, from clients 101..105) with the
// coordination stream of coordGen (sessions, keep-alives, clock steps that
// expire them, locks with waiters and lock-delays, campaigns, proclaims,
// resigns, fenced writes, retries and garbage, from clients 1..4), plus the
// odd undecodable command.
type snapGen struct {
	rng   *rand.Rand
	kv    *cmdGen
	coord *coordGen
}

func newSnapGen(seed uint64) *snapGen {
	return &snapGen{
		rng:   rand.New(rand.NewPCG(seed, 0x5eed)),
		kv:    newCmdGen(seed, 5),
		coord: newCoordGen(seed, 4),
	}
}

// next returns the next command's bytes and, when it is one, the decoded
// command (for learn, and the op in failure messages).
func (g *snapGen) next(sm *StateMachine) ([]byte, Command) {
	switch x := g.rng.IntN(100); {
	case x == 0:
		b := make([]byte, g.rng.IntN(8))
		for i := range b {
			b[i] = byte(g.rng.Uint32())
		}
		return b, Command{}
	case x < 40:
		c := g.kv.next(sm.Get)
		if c.ClientID != 0 {
			c.ClientID += 100
		}
		return EncodeCommand(&c), c
	default:
		c := g.coord.next()
		return EncodeCommand(&c), c
	}
}

// normResult makes a Result comparable with reflect.DeepEqual: its error
// becomes its message and the sentinels errors.Is finds in it. (The wire
// response the node sends for a Result is a function of these, given that
// every sentinel with a wire code has a snapshot number: package service's
// TestSnapshotErrorsWire checks that.)
type normResult struct {
	R   Result
	Msg string
	Is  []int
}

func normalize(r Result) normResult {
	n := normResult{R: r}
	if r.Err != nil {
		n.Msg = r.Err.Error()
		n.R.Err = nil
		for i, s := range snapshotErrors {
			if s != nil && errors.Is(r.Err, s) {
				n.Is = append(n.Is, i)
			}
		}
	}
	return n
}

func normAnswers(as []Answer) []normResult {
	var out []normResult
	for _, a := range as {
		n := normalize(a.Result)
		n.Msg = fmt.Sprintf("%d/%d %s", a.ClientID, a.Seq, n.Msg)
		out = append(out, n)
	}
	return out
}

func mustSnapshot(t testing.TB, sm *StateMachine) []byte {
	t.Helper()
	data, err := sm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func mustRestore(t testing.TB, opts SMOptions, data []byte) *StateMachine {
	t.Helper()
	sm, err := RestoreStateMachine(opts, data)
	if err != nil {
		t.Fatal(err)
	}
	return sm
}

// errText is an error's message, "" for none.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// checkSameState checks that b is a in every way a client or a future
// command can see, and that b's derived structures are sound.
func checkSameState(t testing.TB, a, b *StateMachine) {
	t.Helper()
	fail := func(what string, x, y any) {
		t.Helper()
		t.Fatalf("%s differs after restore:\n  original: %+v\n  restored: %+v", what, x, y)
	}
	if a.Hash() != b.Hash() {
		fail("Hash", a.Hash(), b.Hash())
	}
	for _, f := range []struct {
		what string
		get  func(*StateMachine) any
	}{
		{"Applied", func(sm *StateMachine) any { return sm.Applied() }},
		{"Revision", func(sm *StateMachine) any { return sm.Revision() }},
		{"Clock", func(sm *StateMachine) any { return sm.Clock() }},
		{"List", func(sm *StateMachine) any { return sm.List("", 0) }},
		{"Sessions", func(sm *StateMachine) any { return sm.Sessions() }},
		{"SessionCount", func(sm *StateMachine) any { return sm.SessionCount() }},
		{"Locks", func(sm *StateMachine) any { return sm.Locks() }},
		{"LockCount", func(sm *StateMachine) any { return sm.LockCount() }},
		{"options", func(sm *StateMachine) any { return sm.opts }},
		{"dedup floors", func(sm *StateMachine) any {
			var out []uint64
			for _, id := range sm.dedup.sortedIDs() {
				out = append(out, id, sm.dedup.clients[id].floor)
			}
			return out
		}},
	} {
		if x, y := f.get(a), f.get(b); !reflect.DeepEqual(x, y) {
			fail(f.what, x, y)
		}
	}
	checkWatchHistory(t, a, b)
	// Every election observer and leader query.
	names := sortedKeys(a.elect.m)
	if !slices.Equal(names, sortedKeys(b.elect.m)) {
		fail("election names", names, sortedKeys(b.elect.m))
	}
	for _, name := range names {
		x, xok := a.LeaderOf(name)
		y, yok := b.LeaderOf(name)
		if !reflect.DeepEqual(x, y) || xok != yok {
			fail("LeaderOf "+name, x, y)
		}
		for after := uint64(0); after <= a.elect.m[name].seq+1; after++ {
			x, xerr := a.ElectionChanges(name, after)
			y, yerr := b.ElectionChanges(name, after)
			if !reflect.DeepEqual(x, y) || errText(xerr) != errText(yerr) {
				fail(fmt.Sprintf("ElectionChanges(%s, %d)", name, after), fmt.Sprint(x, xerr), fmt.Sprint(y, yerr))
			}
		}
	}
	// The duplicate table answers every retry the same way, and its
	// stored results (errors included) are the same results.
	for _, id := range a.dedup.sortedIDs() {
		ea, eb := a.dedup.clients[id], b.dedup.clients[id]
		if eb == nil || ea.lastSlot != eb.lastSlot || len(ea.results) != len(eb.results) {
			fail(fmt.Sprintf("client %d", id), ea, eb)
		}
		for i := range ea.results {
			x, y := normalize(ea.results[i].res), normalize(eb.results[i].res)
			if ea.results[i].seq != eb.results[i].seq || !reflect.DeepEqual(x, y) {
				fail(fmt.Sprintf("client %d result %d", id, ea.results[i].seq), x, y)
			}
		}
	}
	// Equal states give equal bytes.
	if sa, sb := mustSnapshot(t, a), mustSnapshot(t, b); !bytes.Equal(sa, sb) {
		t.Fatalf("snapshots of the original and the restored state differ (%d and %d bytes)", len(sa), len(sb))
	}
	checkDerived(t, b)
}

// checkWatchHistory checks b's KV history against a's, when b was
// restored from a snapshot of a (or of a state a went through, both having
// applied the same commands since): b holds the newest part of a's
// history, all of it or at least as much as a snapshot carries; every
// watch from b's oldest revision on gets the same events from both, and
// one from before gets ErrCompacted on b.
func checkWatchHistory(t testing.TB, a, b *StateMachine) {
	t.Helper()
	ea, err := a.KVEvents(a.OldestRevision(), "", true, 0)
	if err != nil {
		t.Fatal(err)
	}
	eb, err := b.KVEvents(b.OldestRevision(), "", true, 0)
	if err != nil {
		t.Fatal(err)
	}
	skip := len(ea) - len(eb)
	if skip < 0 || b.OldestRevision() < a.OldestRevision() {
		t.Fatalf("restored KV history holds %d events from revision %d, the original %d from %d", len(eb), b.OldestRevision(), len(ea), a.OldestRevision())
	}
	for i := range eb {
		if !reflect.DeepEqual(eb[i], ea[skip+i]) {
			t.Fatalf("restored KV history event %d: %+v, original %+v", i, eb[i], ea[skip+i])
		}
	}
	if skip == 0 {
		if a.OldestRevision() != b.OldestRevision() || a.kvHist.bytes != b.kvHist.bytes {
			t.Fatalf("KV histories hold the same events, but oldest revisions %d, %d, sizes %d, %d",
				a.OldestRevision(), b.OldestRevision(), a.kvHist.bytes, b.kvHist.bytes)
		}
	} else {
		n := 0
		for _, ev := range ea[skip-1:] {
			n += len(ev.KV.Key) + len(ev.KV.Value) + len(ev.PrevKV.Key) + len(ev.PrevKV.Value)
		}
		if len(eb) < snapshotHistoryMax && n <= snapshotHistoryBytesMax {
			t.Fatalf("restored KV history holds %d events, less than a snapshot carries (%d of the original's fit)", len(eb), len(eb)+1)
		}
	}
	oldest, rev := b.OldestRevision(), a.Revision()
	for _, from := range []uint64{0, 1, a.OldestRevision(), oldest - 1, oldest, oldest + 1, rev, rev + 1} {
		for _, w := range []struct {
			key    string
			prefix bool
			max    int
		}{{"", true, 0}, {"k1", false, 0}, {"b/", true, 2}, {"a", true, 1}} {
			x, xerr := a.KVEvents(from, w.key, w.prefix, w.max)
			y, yerr := b.KVEvents(from, w.key, w.prefix, w.max)
			if from < oldest && oldest > 1 { // (revision 0 is no change)
				if !errors.Is(yerr, ErrCompacted) {
					t.Fatalf("restored KVEvents(%d, %+v) before its oldest revision %d: %v", from, w, oldest, yerr)
				}
			} else if !reflect.DeepEqual(x, y) || errText(xerr) != errText(yerr) {
				t.Fatalf("KVEvents(%d, %+v) differs after restore:\n  original: %v %v\n  restored: %v %v", from, w, x, xerr, y, yerr)
			}
		}
	}
}

// checkDerived checks the structures RestoreStateMachine rebuilds.
func checkDerived(t testing.TB, sm *StateMachine) {
	t.Helper()
	checkCoordInvariants(t, sm)
	if tt, ok := t.(*testing.T); ok {
		var keys []string
		sm.kv.ascendFrom("", func(kv KV) bool { keys = append(keys, kv.Key); return true })
		checkTree(tt, &sm.kv, keys)
	}
	d := &sm.dedup
	if len(d.byAge) != len(d.clients) {
		t.Fatalf("%d clients, %d in the eviction heap", len(d.clients), len(d.byAge))
	}
	for i, e := range d.byAge {
		if e.heapIndex != i || d.clients[e.id] != e {
			t.Fatalf("eviction heap out of sync at %d", i)
		}
		if i > 0 && e.heapLess(d.byAge[(i-1)/2]) {
			t.Fatalf("eviction heap out of order at %d", i)
		}
	}
	for i, s := range sm.sessions.byDeadline {
		if i > 0 && s.heapLess(sm.sessions.byDeadline[(i-1)/2]) {
			t.Fatalf("deadline heap out of order at %d", i)
		}
	}
	bytes := 0
	for i := 0; i < sm.kvHist.events.len(); i++ {
		ev := sm.kvHist.events.at(i)
		bytes += ev.size()
	}
	if bytes != sm.kvHist.bytes {
		t.Fatalf("KV history counts %d bytes, holds %d", sm.kvHist.bytes, bytes)
	}
	checkDedupBytes(t, sm)
}

// snapCoverage counts what the states snapshotted held, so the test knows
// it covered the hard parts.
type snapCoverage struct {
	waiters, delays, candidates, renewed, pending, errs, sentinels2, events, dropped, ringFull int
}

func (c *snapCoverage) add(sm *StateMachine) {
	for _, l := range sm.locks.m {
		c.waiters += len(l.waiters)
		if l.delayUntil != 0 {
			c.delays++
		}
	}
	for _, e := range sm.elect.m {
		c.candidates += len(e.candidates)
		if e.history.r.len() == sm.opts.ElectionHistoryMax {
			c.ringFull++
		}
	}
	c.renewed += len(sm.sessions.renewed)
	for _, e := range sm.dedup.clients {
		for _, r := range e.results {
			if r.res.Pending {
				c.pending++
			}
			if r.res.Err != nil {
				c.errs++
				if errors.Is(r.res.Err, ErrInvalid) && errors.Is(r.res.Err, ErrTooLarge) {
					c.sentinels2++
				}
			}
		}
	}
	c.events += sm.kvHist.events.len()
	if sm.kvHist.dropped > 0 {
		c.dropped++
	}
}

// TestSnapshotRoundTrip runs rich random histories; at many points it
// snapshots and restores, and checks that the restored state machine is the
// original (Hash, every local read, every stored result, the snapshot
// bytes), then feeds the original and the restored one the same further
// commands and checks that they give the same results, the same late
// answers and the same Hash after each. Every round goes on from a restore
// of the previous restored state, so restores chain.
func TestSnapshotRoundTrip(t *testing.T) {
	var cov snapCoverage
	snapshots := 0
	for seed := uint64(1); seed <= 4; seed++ {
		// Small bounds, so that clients are evicted, results forgotten and
		// histories trimmed; and once the defaults (fewer steps: Hash
		// walks every stored result, and they pile up).
		opts := SMOptions{ClientsMax: 6, ResultsPerClientMax: 5, KVHistoryMax: 40, KVHistoryBytesMax: 4000, ElectionHistoryMax: 4}
		steps := 5000
		if seed == 4 {
			opts, steps = SMOptions{}, 2500
		}
		g := newSnapGen(seed)
		orig := NewStateMachine(opts)
		// twin applies the same commands on its own: a replica reaching the
		// same state by itself (its maps grew in their own order) must
		// encode it to the same bytes.
		twin := NewStateMachine(opts)
		var cur *StateMachine // the restored replica, nil before the first restore
		// frozen is a view taken at the last snapshot point and encoded
		// only at the next one, after 250 more commands: it must still
		// give the bytes of its own point in time.
		var frozen *SnapshotView
		var frozenData []byte
		slot := paxos.Slot(1)
		for i := 0; i < steps; i++ {
			cmd, c := g.next(orig)
			// A slot ends here: snapshot at its boundary.
			if i > 0 && g.rng.IntN(4) > 0 {
				if i%250 == 0 {
					data := mustSnapshot(t, orig)
					if whole := encodeWhole(t, orig); !bytes.Equal(data, whole) {
						t.Fatalf("seed %d step %d: the streamed encoding differs from msgpack's of the whole state", seed, i)
					}
					if frozen != nil {
						var buf bytes.Buffer
						if _, err := frozen.WriteTo(&buf); err != nil || !bytes.Equal(buf.Bytes(), frozenData) {
							t.Fatalf("seed %d step %d: a view encoded later differs from its point in time (err %v)", seed, i, err)
						}
					}
					var err error
					if frozen, err = orig.View(); err != nil {
						t.Fatal(err)
					}
					if h, err := frozen.Hash(opts); err != nil || h != orig.Hash() {
						t.Fatalf("seed %d step %d: the view's hash %x (%v), the state machine's %x", seed, i, h, err, orig.Hash())
					}
					frozenData = data
					if tw := mustSnapshot(t, twin); !bytes.Equal(data, tw) {
						t.Fatalf("seed %d step %d: replicas in the same state give different snapshots", seed, i)
					}
					if again := mustSnapshot(t, orig); !bytes.Equal(data, again) {
						t.Fatalf("seed %d step %d: two snapshots of one state differ", seed, i)
					}
					base := orig
					if cur != nil {
						base = cur // chain: restore the restored one
						data = mustSnapshot(t, cur)
					}
					r := mustRestore(t, opts, data)
					checkSameState(t, orig, r)
					checkSameState(t, base, r)
					cov.add(r)
					snapshots++
					if i >= 1500 {
						cur = r // from here on, cur follows along
					}
				}
				slot++
			}
			ra := orig.Apply(slot, cmd)
			rt := twin.Apply(slot, slices.Clone(cmd))
			g.coord.learn(c, ra)
			aa, at := orig.TakeAnswers(), twin.TakeAnswers()
			if !reflect.DeepEqual(normalize(ra), normalize(rt)) || !reflect.DeepEqual(normAnswers(aa), normAnswers(at)) {
				t.Fatalf("seed %d step %d: the twin answers differently", seed, i)
			}
			if cur == nil {
				continue
			}
			rc := cur.Apply(slot, slices.Clone(cmd))
			ac := cur.TakeAnswers()
			if x, y := normalize(ra), normalize(rc); !reflect.DeepEqual(x, y) {
				t.Fatalf("seed %d step %d: %s: results differ after restore:\n  original: %+v\n  restored: %+v", seed, i, c.Op, x, y)
			}
			if x, y := normAnswers(aa), normAnswers(ac); !reflect.DeepEqual(x, y) {
				t.Fatalf("seed %d step %d: late answers differ after restore:\n  original: %+v\n  restored: %+v", seed, i, x, y)
			}
			if orig.Hash() != cur.Hash() {
				t.Fatalf("seed %d step %d: Hash differs after restore", seed, i)
			}
		}
		checkSameState(t, orig, cur)
		checkSameState(t, orig, twin)
	}
	t.Logf("%d snapshots restored; they held %+v", snapshots, cov)
	if cov.waiters == 0 || cov.delays == 0 || cov.candidates == 0 || cov.renewed == 0 || cov.pending == 0 ||
		cov.errs == 0 || cov.events == 0 || cov.dropped == 0 || cov.ringFull == 0 {
		t.Fatalf("the histories missed a part of the state: %+v", cov)
	}
}

// encodeWhole encodes sm's state as one msgpack value, keys included: the
// encoding the streamed one (encodeSnapshot) must reproduce byte for byte.
func encodeWhole(t *testing.T, sm *StateMachine) []byte {
	t.Helper()
	st := sm.snapshotState()
	st.KVs = make([]SnapKV, 0, sm.kv.len())
	sm.kv.ascendFrom("", func(kv KV) bool {
		st.KVs = append(st.KVs, snapKV(kv))
		return true
	})
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	v, err := sm.View()
	if err != nil {
		t.Fatal(err)
	}
	version := v.version
	env := []any{snapshotMagic, version, st}
	if version >= 2 {
		env = append(env, &st.Identity)
	}
	if version >= 3 {
		env = append(env, &st.Quota)
	}
	if err := enc.Encode(env); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestSnapshotErrors: every sentinel error a Result may wrap survives a
// snapshot with its message and errors.Is, including errors that wrap two
// of them. (Package service's TestSnapshotErrorsWire checks that the
// snapshot's table of sentinels covers every error the wire mapping knows,
// and so that the wire code survives too.)
func TestSnapshotErrors(t *testing.T) {
	seen := map[error]bool{}
	for code, s := range snapshotErrors {
		if code == 0 {
			if s != nil {
				t.Errorf("sentinel number 0 is taken")
			}
			continue
		}
		if s == nil || seen[s] {
			t.Errorf("sentinel number %d: %v (nil or repeated)", code, s)
		}
		seen[s] = true
	}

	sm := NewStateMachine(SMOptions{})
	var want []error
	for i, s := range snapshotErrors {
		if s == nil {
			continue
		}
		err := fmt.Errorf("wrapped %d: %w", i, s)
		want = append(want, err, fmt.Errorf("%w: %w: both", ErrInvalid, s))
	}
	want = append(want, errors.New("no sentinel at all"))
	for i, err := range want {
		// Store the errors as results of client 1.
		e := sm.dedup.touch(1, 0, true)
		sm.dedup.store(e, uint64(i+1), Result{Err: err, Revision: 7})
	}
	r := mustRestore(t, SMOptions{}, mustSnapshot(t, sm))
	for i, err := range want {
		got, ok := r.dedup.clients[1].result(uint64(i + 1))
		if !ok || got.Err == nil || got.Err.Error() != err.Error() {
			t.Fatalf("error %q came back as %v", err, got.Err)
		}
		for _, s := range snapshotErrors {
			if s != nil && errors.Is(got.Err, s) != errors.Is(err, s) {
				t.Fatalf("error %q: errors.Is(%v) %v after restore", err, s, errors.Is(got.Err, s))
			}
		}
	}
}

// TestSnapshotAnswersPending: a snapshot refuses while late answers are
// untaken, since it would lose them.
func TestSnapshotAnswersPending(t *testing.T) {
	h := newSMHarness(t, SMOptions{})
	h.do(openCmd(5000))
	h.do(openCmd(5000))
	h.do(cs(1, 1, acquireCmd("l", 1, true, 0)))
	if r := h.do(cs(2, 1, acquireCmd("l", 2, true, 0))); !r.Pending {
		t.Fatalf("acquire did not wait: %+v", r)
	}
	h.do(cs(1, 2, releaseCmd("l", 1)))
	if _, err := h.sm.Snapshot(); err == nil || !strings.Contains(err.Error(), "TakeAnswers") {
		t.Fatalf("snapshot with an untaken answer: %v", err)
	}
	if len(h.sm.TakeAnswers()) != 1 {
		t.Fatal("no answer to take")
	}
	r := mustRestore(t, SMOptions{}, mustSnapshot(t, h.sm))
	checkSameState(t, h.sm, r)
}

// TestSnapshotEmptyAndBig: an empty state machine, and a store with many
// keys (many index chunks) that keeps changing after the restore.
func TestSnapshotEmptyAndBig(t *testing.T) {
	empty := NewStateMachine(SMOptions{})
	r := mustRestore(t, SMOptions{}, mustSnapshot(t, empty))
	checkSameState(t, empty, r)

	rng := rand.New(rand.NewPCG(3, 4))
	a := NewStateMachine(SMOptions{KVHistoryMax: 100})
	slot := paxos.Slot(0)
	key := func() string { return fmt.Sprintf("%c/%05d", 'a'+rng.IntN(3), rng.IntN(6000)) }
	op := func(sms ...*StateMachine) {
		slot++
		c := putCmd(key(), fmt.Sprint(rng.IntN(100)))
		if rng.IntN(3) == 0 {
			c = delCmd(key())
		}
		cmd := EncodeCommand(&c)
		var want normResult
		for i, sm := range sms {
			got := normalize(sm.Apply(slot, cmd))
			if i == 0 {
				want = got
			} else if !reflect.DeepEqual(want, got) {
				t.Fatalf("slot %d: %+v, after restore %+v", slot, want, got)
			}
		}
	}
	for i := 0; i < 8000; i++ {
		op(a)
	}
	if a.kv.len() < 4*kvTreeDegree {
		t.Fatalf("only %d keys: the tree has a single node", a.kv.len())
	}
	b := mustRestore(t, SMOptions{KVHistoryMax: 100}, mustSnapshot(t, a))
	checkSameState(t, a, b)
	for i := 0; i < 8000; i++ {
		op(a, b)
	}
	checkSameState(t, a, b)
}

// TestSnapshotWatchHistoryBound: a snapshot carries the newest part of a
// long KV history, bounded in events and in bytes (down to nothing when the
// newest event alone is too large); the restored replica serves every watch
// from there on as the original, refuses older ones with ErrCompacted, and
// snapshots to the same bytes as the original, before and after more
// changes.
func TestSnapshotWatchHistoryBound(t *testing.T) {
	for _, tc := range []struct {
		name       string
		n, size    int
		wantEvents int
	}{
		{"many events", 3 * snapshotHistoryMax, 10, snapshotHistoryMax},
		{"many bytes", 200, 8 << 10, snapshotHistoryBytesMax / (2 * (8<<10 + 4))},
		{"one too large", 3, snapshotHistoryBytesMax + 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := NewStateMachine(SMOptions{})
			slot := paxos.Slot(0)
			put := func(i int, sms ...*StateMachine) {
				slot++
				c := putCmd(fmt.Sprintf("k%03d", i%7), strings.Repeat("v", tc.size))
				for _, sm := range sms {
					sm.ApplyCommand(slot, &c)
				}
			}
			for i := 0; i < tc.n; i++ {
				put(i, a)
			}
			b := mustRestore(t, SMOptions{}, mustSnapshot(t, a))
			evs, err := b.KVEvents(b.OldestRevision(), "", true, 0)
			if err != nil || len(evs) != tc.wantEvents || b.OldestRevision() != a.Revision()-uint64(tc.wantEvents)+1 {
				t.Fatalf("restored history: %d events from revision %d (%v), want %d", len(evs), b.OldestRevision(), err, tc.wantEvents)
			}
			if _, err := b.KVEvents(b.OldestRevision()-1, "", true, 0); !errors.Is(err, ErrCompacted) {
				t.Fatalf("watch from before the carried history: %v", err)
			}
			checkSameState(t, a, b)
			for i := 0; i < tc.n/2; i++ {
				put(i, a, b)
			}
			checkSameState(t, a, b)
		})
	}
}

// TestSnapshotOptions: a snapshot restores only under the options it was
// taken with (after defaults), and invalid options are refused.
func TestSnapshotOptions(t *testing.T) {
	sm := NewStateMachine(SMOptions{ClientsMax: 7})
	data := mustSnapshot(t, sm)
	if _, err := RestoreStateMachine(SMOptions{ClientsMax: 7, KeyBytesMax: 4096}, data); err != nil {
		t.Fatalf("same options after defaults: %v", err)
	}
	if _, err := RestoreStateMachine(SMOptions{}, data); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("other options: %v", err)
	}
	if _, err := RestoreStateMachine(SMOptions{ClientsMax: -1}, data); !errors.Is(err, ErrInvalid) {
		t.Fatalf("invalid options: %v", err)
	}
}
