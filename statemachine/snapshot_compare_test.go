package statemachine

// What two states are compared on, for the snapshot tests: results
// normalized for comparison, the whole state, the watch history, the
// derived indexes, and what a random history covered.

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
)

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
	// The membership, from the level at which snapshots carry it (below
	// it the restored state has none, and the node sets its --peers).
	if a.Level() >= LevelMembership && !reflect.DeepEqual(a.Members(), b.Members()) {
		fail("Members", a.Members(), b.Members())
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
	waiters, delays, candidates, renewed, pending, errs, sentinels2, events, dropped, ringFull, bindings int
	// configPending: a membership change waited for its activation slot;
	// configChanged: the configuration in force was not the first.
	configPending, configChanged int
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
	c.bindings += len(sm.bound.byKey)
	if m := sm.Members(); m.Pending() {
		c.configPending++
	} else if m.Current.Version > 1 {
		c.configChanged++
	}
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
