package statemachine

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/paxosd/paxosd/paxos"
)

// checkDedupBytes checks the duplicate table's byte counts against its
// results, and, from LevelDedupBytes on, the bound: over it only while a
// single client is left whose results are all Pending.
func checkDedupBytes(t testing.TB, sm *StateMachine) {
	t.Helper()
	d := &sm.dedup
	var total uint64
	for id, e := range d.clients {
		var n uint64
		for i := range e.results {
			n += resultBytes(&e.results[i].res)
		}
		if n != e.bytes {
			t.Fatalf("client %d counts %d bytes, holds %d", id, e.bytes, n)
		}
		total += n
	}
	if total != d.bytes {
		t.Fatalf("the duplicate table counts %d bytes, holds %d", d.bytes, total)
	}
	if sm.level < LevelDedupBytes || d.bytes <= d.bytesMax {
		return
	}
	for _, e := range d.clients {
		if len(d.clients) > 1 || slices.ContainsFunc(e.results, func(r seqResult) bool { return !r.res.Pending }) {
			t.Fatalf("level %d: %d bytes over the bound of %d in %d clients", sm.level, d.bytes, d.bytesMax, len(d.clients))
		}
	}
}

// TestDedupResultBytes pins how a stored result is counted: the count
// decides evictions from LevelDedupBytes on, so it is part of that level's
// definition and must not change (even when Result grows: that is logged).
func TestDedupResultBytes(t *testing.T) {
	if dedupResultOverhead != 384 {
		t.Fatalf("the overhead per result is %d, LevelDedupBytes defines it as 384", dedupResultOverhead)
	}
	if size := unsafe.Sizeof(seqResult{}); size > dedupResultOverhead {
		t.Logf("a stored result now takes %d bytes, more than the %d counted (which must stay)", size, dedupResultOverhead)
	}
	r := Result{Found: true, KV: mkKV("key", "value", 1, 1, 1), KVs: []KV{mkKV("a", "bc", 1, 1, 1)},
		Leader:  LeaderInfo{Name: "el", Value: []byte("leader")},
		Lock:    LockInfo{Name: "lock", Waiters: []uint64{1, 2}},
		Session: SessionInfo{Locks: []string{"l1"}, Waiting: []string{"w"}, Elections: []string{"e12"}}}
	want := uint64(dedupResultOverhead + 3 + 5 + 1 + 2 + 2 + 6 + 4 + 16 + 2 + 1 + 3)
	if got := resultBytes(&r); got != want {
		t.Fatalf("resultBytes %d, want %d", got, want)
	}
}

// TestDedupBytesEvictsOthers: over the bound, the least recently active
// client other than the command's own is evicted (the smaller id among
// equals, skipping the own client even when it is the oldest); an evicted
// client's retry is applied again, a survivor's is not.
func TestDedupBytesEvictsOthers(t *testing.T) {
	const bound = 2*dedupResultOverhead + 100 // two first puts fit, three do not
	sm := NewStateMachine(SMOptions{DedupBytesMax: bound})
	apply := func(slot paxos.Slot, c Command) Result {
		r := sm.Apply(slot, EncodeCommand(&c))
		checkDedupBytes(t, sm)
		return r
	}
	apply(1, levelCmd(LevelDedupBytes))
	apply(2, cs(1, 1, putCmd("a", "1")))
	apply(3, cs(2, 1, putCmd("b", "2")))
	apply(4, cs(3, 1, putCmd("c", "3")))
	if got := sm.dedup.sortedIDs(); !equalIDs(got, 2, 3) {
		t.Fatalf("clients %v, want [2 3]: client 1 was the least recently active", got)
	}
	if r := apply(5, cs(2, 1, putCmd("b", "2"))); r.Revision != 2 || sm.Revision() != 3 {
		t.Fatalf("a survivor's retry applied again: %s", describeResult(r))
	}
	if r := apply(6, cs(1, 1, putCmd("a", "1"))); r.Revision != 4 {
		t.Fatalf("an evicted client's retry: %s, want applied again at revision 4", describeResult(r))
	}
	// Client 1 came back and evicted client 3 (slot 4, before 2's slot 5).
	if got := sm.dedup.sortedIDs(); !equalIDs(got, 1, 2) {
		t.Fatalf("clients %v, want [1 2]", got)
	}

	// All in one slot: the own client 5 is the oldest by id, and is kept;
	// the next, 7, goes.
	sm = NewStateMachine(SMOptions{DedupBytesMax: bound})
	apply(1, levelCmd(LevelDedupBytes))
	for _, id := range []uint64{9, 7, 5} {
		apply(2, cs(id, 1, putCmd("k", "v")))
	}
	if got := sm.dedup.sortedIDs(); !equalIDs(got, 5, 9) {
		t.Fatalf("clients %v, want [5 9]", got)
	}
}

// TestDedupBytesOwnFloor: a client alone over the bound forgets its oldest
// results and its floor rises past them: their retries get
// ErrStaleRequest and are not applied again; a result that alone exceeds
// the bound goes too, after its command was answered.
func TestDedupBytesOwnFloor(t *testing.T) {
	value := strings.Repeat("v", 100)
	put := putCmd("k", value)
	prevBytes := uint64(dedupResultOverhead + len("k") + len(value)) // a put's result holds the previous value
	h := newSMHarness(t, SMOptions{DedupBytesMax: int(dedupResultOverhead + 2*prevBytes)})
	h.do(levelCmd(LevelDedupBytes))
	for seq := uint64(1); seq <= 4; seq++ {
		if r := h.do(cs(1, seq, put)); r.Err != nil || r.Revision != seq {
			t.Fatalf("put %d: %s", seq, describeResult(r))
		}
		checkDedupBytes(t, h.sm)
	}
	// Seq 1 (no previous value) and seq 2 made room for 3 and 4.
	e := h.sm.dedup.clients[1]
	if e.floor != 3 || len(e.results) != 2 || e.bytes != 2*prevBytes {
		t.Fatalf("floor %d, %d results, %d bytes; want 3, 2, %d", e.floor, len(e.results), e.bytes, 2*prevBytes)
	}
	for seq := uint64(1); seq <= 4; seq++ {
		r := h.do(cs(1, seq, put))
		if seq < 3 && !errors.Is(r.Err, ErrStaleRequest) || seq >= 3 && (r.Err != nil || r.Revision != seq) {
			t.Fatalf("retry of %d: %s", seq, describeResult(r))
		}
	}
	if h.sm.Revision() != 4 {
		t.Fatalf("revision %d after the retries, want 4: a retry was applied again", h.sm.Revision())
	}

	// A bound below one result: the put is answered, its retry refused.
	h = newSMHarness(t, SMOptions{DedupBytesMax: int(prevBytes - 1)})
	h.do(levelCmd(LevelDedupBytes))
	h.do(cs(1, 1, put))
	if r := h.do(cs(1, 2, put)); r.Err != nil || !r.Found || string(r.KV.Value) != value {
		t.Fatalf("put over the bound: %s", describeResult(r))
	}
	if r := h.do(cs(1, 2, put)); !errors.Is(r.Err, ErrStaleRequest) || h.sm.Revision() != 2 {
		t.Fatalf("retry of a result over the bound: %s at revision %d", describeResult(r), h.sm.Revision())
	}
	checkDedupBytes(t, h.sm)
}

// TestDedupBytesPendingKept: a Pending result is never forgotten for room,
// even below the raised floor; its retry answers Pending, then the grant
// once answered, after which it is forgotten like any other.
func TestDedupBytesPendingKept(t *testing.T) {
	value := strings.Repeat("v", 300)
	h := newSMHarness(t, SMOptions{DedupBytesMax: 3 * dedupResultOverhead})
	h.do(levelCmd(LevelDedupBytes))
	h.do(openCmd(60000))                             // session 1
	h.do(openCmd(60000))                             // session 2
	h.do(acquireCmd("l", 1, false, 0))               // session 1 holds l
	r := h.do(cs(2, 1, acquireCmd("l", 2, true, 0))) // client 2 waits for it
	if !r.Pending {
		t.Fatalf("acquire: %s, want Pending", describeResult(r))
	}
	for seq := uint64(2); seq <= 6; seq++ {
		h.do(cs(2, seq, putCmd("k", value)))
		checkDedupBytes(t, h.sm)
	}
	e := h.sm.dedup.clients[2]
	if e.floor <= 1 || e.results[0].seq != 1 || !e.results[0].res.Pending {
		t.Fatalf("floor %d, oldest result %d: the Pending result was dropped", e.floor, e.results[0].seq)
	}
	if r := h.do(cs(2, 1, acquireCmd("l", 2, true, 0))); !r.Pending {
		t.Fatalf("retry while waiting: %s, want Pending", describeResult(r))
	}
	h.do(releaseCmd("l", 1)) // grants l to session 2
	checkDedupBytes(t, h.sm)
	grant := h.do(cs(2, 1, acquireCmd("l", 2, true, 0)))
	if grant.Err != nil || grant.Pending || grant.Token == 0 {
		t.Fatalf("retry after the grant: %s", describeResult(grant))
	}
	h.do(cs(2, 7, putCmd("k", value)))
	if r := h.do(cs(2, 1, acquireCmd("l", 2, true, 0))); !errors.Is(r.Err, ErrStaleRequest) {
		t.Fatalf("retry of the answered acquire after more puts: %s, want ErrStaleRequest", describeResult(r))
	}
	checkDedupBytes(t, h.sm)
}

// dedupStream applies a seeded stream of commands from many clients,
// with the level raised at command raiseAt (never if negative), to every
// state machine of sms, checking that they answer alike; it returns how
// many results the bound made differ from unbound's (nil: not compared).
func dedupStream(t *testing.T, seed uint64, raiseAt int, sms []*StateMachine, unbound *StateMachine) int {
	t.Helper()
	g := newCmdGen(seed, 12)
	slot, differ := sms[0].Applied()+1, 0
	for i := 0; i < 3000; i++ {
		if g.rng.IntN(3) == 0 {
			slot++
		}
		c := g.next(sms[0].Get)
		if i == raiseAt {
			c = levelCmd(LevelDedupBytes)
		}
		if c.Op == OpPut || c.Op == OpCAS {
			c.Value = []byte(strings.Repeat(string(c.Value), 20)) // results that weigh
		}
		b := EncodeCommand(&c)
		r0 := sms[0].Apply(slot, b)
		for j, sm := range sms[1:] {
			if r := sm.Apply(slot, slices.Clone(b)); !resultEqual(r, r0) || fmt.Sprint(r.Err) != fmt.Sprint(r0.Err) {
				t.Fatalf("seed %d command %d (%s): replica %d answered %s, replica 0 %s", seed, i, c.String(), j+1,
					describeResult(r), describeResult(r0))
			}
		}
		if unbound != nil {
			if r := unbound.Apply(slot, slices.Clone(b)); !resultEqual(r, r0) || fmt.Sprint(r.Err) != fmt.Sprint(r0.Err) {
				differ++
			}
		}
		if i%100 == 0 {
			for _, sm := range sms {
				checkDedupBytes(t, sm)
				sm.TakeAnswers()
			}
		}
	}
	for _, sm := range sms[1:] {
		if sm.Hash() != sms[0].Hash() || !equalIDs(sm.dedup.sortedIDs(), sms[0].dedup.sortedIDs()...) || sm.dedup.bytes != sms[0].dedup.bytes {
			t.Fatalf("seed %d: replicas end in different states", seed)
		}
	}
	return differ
}

// TestDedupBytesReplicas: replicas fed the same commands, the level raised
// midway, answer alike and end alike, as does one restored from a
// snapshot taken at level 0 and one taken after the level rose; and the
// bound did decide answers (a replica without it answers some
// differently).
func TestDedupBytesReplicas(t *testing.T) {
	opts := SMOptions{ClientsMax: 1000, ResultsPerClientMax: 1000, DedupBytesMax: 8 * dedupResultOverhead}
	for _, seed := range []uint64{1, 2, 3} {
		a, b := NewStateMachine(opts), NewStateMachine(opts)
		unbound := NewStateMachine(SMOptions{ClientsMax: 1000, ResultsPerClientMax: 1000, DedupBytesMax: 1 << 40})
		if differ := dedupStream(t, seed, 500, []*StateMachine{a, b}, unbound); differ == 0 {
			t.Fatalf("seed %d: the byte bound never decided an answer", seed)
		}
		if a.Level() != LevelDedupBytes || a.dedup.bytes > a.dedup.bytesMax {
			t.Fatalf("seed %d: level %d, %d bytes over the bound %d", seed, a.Level(), a.dedup.bytes, a.dedup.bytesMax)
		}
		// Restored mid-stream, before and after the level rose: the
		// restored replica goes on exactly as the original.
		for _, raiseAt := range []int{-1, 0} {
			a := NewStateMachine(opts)
			dedupStream(t, seed, raiseAt, []*StateMachine{a}, nil)
			a.TakeAnswers()
			c := mustRestore(t, opts, mustSnapshot(t, a))
			checkDerived(t, c)
			dedupStream(t, seed+100, 200, []*StateMachine{a, c}, nil)
		}
	}
}

// TestDedupBytesInactiveBelowLevel: below LevelDedupBytes the bound
// decides nothing: a replica with a tiny one answers and hashes exactly as
// one with the default, while holding far more than its bound.
func TestDedupBytesInactiveBelowLevel(t *testing.T) {
	tiny := NewStateMachine(SMOptions{ClientsMax: 8, ResultsPerClientMax: 16, DedupBytesMax: 1})
	dflt := NewStateMachine(SMOptions{ClientsMax: 8, ResultsPerClientMax: 16})
	dedupStream(t, 4, -1, []*StateMachine{tiny, dflt}, nil)
	if tiny.Level() != 0 || tiny.dedup.bytes <= 10*dedupResultOverhead {
		t.Fatalf("level %d, %d bytes: the stream stored too little to tell", tiny.Level(), tiny.dedup.bytes)
	}
}
