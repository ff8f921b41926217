package wal

import (
	"bytes"
	"log"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/paxosd/paxosd/paxos"
)

// TestRoundTrip: Load returns the merge of every Save; a later entry for a
// slot replaces the earlier one; zero promise/commit mean "unchanged".
func TestRoundTrip(t *testing.T) {
	fs := vfs.NewMem()
	s := openMem(t, fs)
	if !s.IsNew() {
		t.Fatal("fresh store: IsNew() = false")
	}
	if got := mustLoad(t, s); !equalState(got, paxos.State{}) {
		t.Fatalf("fresh store: Load = %s", describeState(got))
	}
	mustSave(t, s, paxos.Persist{Promised: paxos.Ballot{Round: 1, Node: 2}})
	mustSave(t, s, paxos.Persist{Entries: []paxos.Entry{
		ent(3, 1, 2, batch("c")),
		ent(1, 1, 2, batch("a", "", "b")),
		ent(2, 1, 2, paxos.Noop),
	}})
	mustSave(t, s, paxos.Persist{
		Promised: paxos.Ballot{Round: 2, Node: 3},
		Entries:  []paxos.Entry{ent(3, 2, 3, batch("c2")), ent(4, 2, 3, batch("d"))},
		Commit:   2,
	})
	mustSave(t, s, paxos.Persist{Commit: 2}) // same commit again is fine
	// Same slot twice in one Persist: the later one wins.
	mustSave(t, s, paxos.Persist{Entries: []paxos.Entry{ent(5, 2, 3, batch("x")), ent(5, 2, 3, batch("y"))}})

	want := paxos.State{
		Promised: paxos.Ballot{Round: 2, Node: 3},
		Entries: []paxos.Entry{
			ent(1, 1, 2, batch("a", "", "b")),
			ent(2, 1, 2, paxos.Noop),
			ent(3, 2, 3, batch("c2")),
			ent(4, 2, 3, batch("d")),
			ent(5, 2, 3, batch("y")),
		},
		Commit: 2,
	}
	if got := mustLoad(t, s); !equalState(got, want) {
		t.Fatalf("Load:\n got %s\nwant %s", describeState(got), describeState(want))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// And the same after a reopen.
	s = openMem(t, fs)
	defer s.Close()
	if s.IsNew() {
		t.Fatal("reopened store: IsNew() = true")
	}
	if got := mustLoad(t, s); !equalState(got, want) {
		t.Fatalf("Load after reopen:\n got %s\nwant %s", describeState(got), describeState(want))
	}
}

// TestLoadResultIsOwned: the caller may modify what Load returns without
// touching what later reads see.
func TestLoadResultIsOwned(t *testing.T) {
	s := openMem(t, vfs.NewMem())
	defer s.Close()
	mustSave(t, s, paxos.Persist{Entries: []paxos.Entry{ent(1, 1, 1, batch("ab", "cd"))}})
	st := mustLoad(t, s)
	st.Entries[0].Value.Cmds[0][0] = 'X'
	st.Entries[0].Value.Cmds[0] = append(st.Entries[0].Value.Cmds[0], 'Y') // must not clobber "cd"
	if got := mustLoad(t, s).Entries[0].Value; !got.Equal(batch("ab", "cd")) {
		t.Fatalf("stored value changed to %q", got.Cmds)
	}
	if got := st.Entries[0].Value.Cmds[1]; string(got) != "cd" {
		t.Fatalf("append to one command overwrote the next: %q", got)
	}
}

// TestEntries: the range is inclusive, gaps are skipped, and maxBytes stops
// before the entry that would exceed it but returns at least one entry.
func TestEntries(t *testing.T) {
	s := openMem(t, vfs.NewMem())
	defer s.Close()
	var p paxos.Persist
	for slot := paxos.Slot(1); slot <= 10; slot++ {
		if slot == 6 {
			continue // a gap
		}
		p.Entries = append(p.Entries, ent(slot, 1, 1, batch(strings.Repeat("x", 10*int(slot)))))
	}
	p.Entries = append(p.Entries, ent(math.MaxUint64, 1, 1, batch("last")))
	mustSave(t, s, p)

	slots := func(es []paxos.Entry) []paxos.Slot {
		var out []paxos.Slot
		for _, e := range es {
			out = append(out, e.Slot)
		}
		return out
	}
	for _, tc := range []struct {
		from, to paxos.Slot
		maxBytes int
		want     []paxos.Slot
	}{
		{1, 10, 0, []paxos.Slot{1, 2, 3, 4, 5, 7, 8, 9, 10}},
		{3, 7, 0, []paxos.Slot{3, 4, 5, 7}},
		{6, 6, 0, nil},
		{7, 7, 0, []paxos.Slot{7}},
		{8, 3, 0, nil},
		{0, 2, 0, []paxos.Slot{1, 2}},
		{11, math.MaxUint64, 0, []paxos.Slot{math.MaxUint64}},
		// Counted as Entry.WireBytes: 48 bytes of overhead each here.
		{1, 10, 58 + 68, []paxos.Slot{1, 2}},         // fits exactly
		{1, 10, 58 + 68 - 1, []paxos.Slot{1}},        // one byte short
		{5, 10, 1, []paxos.Slot{5}},                  // first entry alone exceeds: still returned
		{3, 10, 78 + 88 + 98, []paxos.Slot{3, 4, 5}}, // the gap costs nothing
		{1, 10, -1, []paxos.Slot{1, 2, 3, 4, 5, 7, 8, 9, 10}},
	} {
		got, err := s.Entries(tc.from, tc.to, tc.maxBytes)
		if err != nil {
			t.Fatalf("Entries(%d, %d, %d): %v", tc.from, tc.to, tc.maxBytes, err)
		}
		if g := slots(got); !slicesEqual(g, tc.want) {
			t.Errorf("Entries(%d, %d, %d) = slots %v, want %v", tc.from, tc.to, tc.maxBytes, g, tc.want)
		}
		for _, e := range got {
			if want := p.Entries[indexOf(p.Entries, e.Slot)]; !equalEntries([]paxos.Entry{e}, []paxos.Entry{want}) {
				t.Errorf("slot %d: got %s, want %s", e.Slot, e, want)
			}
		}
	}
}

func indexOf(es []paxos.Entry, s paxos.Slot) int {
	for i, e := range es {
		if e.Slot == s {
			return i
		}
	}
	return -1
}

func slicesEqual(a, b []paxos.Slot) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestGroupCommit: a Save is one sync however many entries it holds, and an
// empty Persist syncs nothing.
func TestGroupCommit(t *testing.T) {
	fs := &syncCountingFS{FS: vfs.NewMem()}
	s := openMem(t, fs)
	defer s.Close()
	var p paxos.Persist
	p.Promised = paxos.Ballot{Round: 1, Node: 1}
	for slot := paxos.Slot(1); slot <= 100; slot++ {
		p.Entries = append(p.Entries, ent(slot, 1, 1, batch("cmd")))
	}
	p.Commit = 50
	before := fs.syncs.Load()
	mustSave(t, s, p)
	if n := fs.syncs.Load() - before; n != 1 {
		t.Fatalf("Save of 100 entries: %d WAL syncs, want 1", n)
	}
	before = fs.syncs.Load()
	mustSave(t, s, paxos.Persist{})
	if n := fs.syncs.Load() - before; n != 0 {
		t.Fatalf("empty Save: %d WAL syncs, want 0", n)
	}
}

// TestLazyWatermark: a Save of nothing but the commit watermark is not
// synced; the next synced Save makes it durable with its own data.
func TestLazyWatermark(t *testing.T) {
	fs := &syncCountingFS{FS: vfs.NewMem()}
	s := openMem(t, fs)
	defer s.Close()
	before := fs.syncs.Load()
	mustSave(t, s, paxos.Persist{Commit: 7})
	if n := fs.syncs.Load() - before; n != 0 {
		t.Fatalf("watermark-only Save: %d WAL syncs, want 0", n)
	}
	if got := mustLoad(t, s).Commit; got != 7 {
		t.Fatalf("Load after watermark-only Save: commit %d, want 7", got)
	}
	before = fs.syncs.Load()
	mustSave(t, s, paxos.Persist{Entries: []paxos.Entry{ent(8, 1, 1, batch("a"))}})
	if n := fs.syncs.Load() - before; n != 1 {
		t.Fatalf("Save of an entry: %d WAL syncs, want 1", n)
	}
}

// TestNoSync: with NoSync a Save does not fsync (and is therefore unsafe).
func TestNoSync(t *testing.T) {
	fs := &syncCountingFS{FS: vfs.NewMem()}
	s, err := Open("/data", testID, Options{FS: fs, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	before := fs.syncs.Load()
	mustSave(t, s, paxos.Persist{Entries: []paxos.Entry{ent(1, 1, 1, batch("a"))}})
	if n := fs.syncs.Load() - before; n != 0 {
		t.Fatalf("NoSync Save: %d WAL syncs, want 0", n)
	}
}

// TestInvariantPanics: lowering the promise or the commit, or writing slot
// 0, is a caller bug and panics before anything is written, also against
// the values found on disk at Open.
func TestInvariantPanics(t *testing.T) {
	fs := vfs.NewMem()
	s := openMem(t, fs)
	mustSave(t, s, paxos.Persist{Promised: paxos.Ballot{Round: 5, Node: 2}, Commit: 10})
	mustSave(t, s, paxos.Persist{Promised: paxos.Ballot{Round: 5, Node: 2}}) // equal is fine
	s.Close()
	s = openMem(t, fs)
	defer s.Close()

	for _, tc := range []struct {
		p    paxos.Persist
		want string
	}{
		{paxos.Persist{Promised: paxos.Ballot{Round: 5, Node: 1}}, "wal: Save would move the promised ballot backwards from 5.2 to 5.1"},
		{paxos.Persist{Promised: paxos.Ballot{Round: 4, Node: 9}, Entries: []paxos.Entry{ent(1, 4, 9, batch("a"))}}, "promised ballot backwards from 5.2 to 4.9"},
		{paxos.Persist{Commit: 9}, "wal: Save would move the commit watermark backwards from 10 to 9"},
		{paxos.Persist{Entries: []paxos.Entry{ent(0, 5, 2, batch("a"))}}, "wal: Save of an entry at slot 0"},
	} {
		msg := mustPanic(t, func() { _ = s.Save(tc.p) })
		if !strings.Contains(msg, tc.want) {
			t.Errorf("Save(%s) panicked with %q, want it to contain %q", describePersist(tc.p), msg, tc.want)
		}
	}
	// Nothing of the rejected Persists was written, and the store still works.
	want := paxos.State{Promised: paxos.Ballot{Round: 5, Node: 2}, Commit: 10}
	if got := mustLoad(t, s); !equalState(got, want) {
		t.Fatalf("after panics: Load = %s, want %s", describeState(got), describeState(want))
	}
	mustSave(t, s, paxos.Persist{Promised: paxos.Ballot{Round: 6, Node: 1}, Commit: 11})
}

// TestClosed: every method of a closed store returns ErrClosed.
func TestClosed(t *testing.T) {
	s := openMem(t, vfs.NewMem())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(paxos.Persist{Commit: 1}); err != ErrClosed {
		t.Errorf("Save after Close: %v", err)
	}
	if _, err := s.Load(); err != ErrClosed {
		t.Errorf("Load after Close: %v", err)
	}
	if _, err := s.Entries(1, 2, 0); err != ErrClosed {
		t.Errorf("Entries after Close: %v", err)
	}
	if err := s.Close(); err != ErrClosed {
		t.Errorf("second Close: %v", err)
	}
}

// TestConcurrentReads: Load and Entries run alongside Save (run with -race)
// and never see a Persist half-applied: each Save writes promise round r,
// entry r and commit r together.
func TestConcurrentReads(t *testing.T) {
	s := openMem(t, vfs.NewMem())
	defer s.Close()
	const saves = 200
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			st, err := s.Load()
			if err != nil {
				t.Errorf("Load: %v", err)
				return
			}
			r := st.Promised.Round
			if st.Commit != paxos.Slot(r) || len(st.Entries) != int(r) {
				t.Errorf("Load saw a torn state: %s", describeState(st))
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := s.Entries(1, saves, 64); err != nil {
				t.Errorf("Entries: %v", err)
				return
			}
		}
	}()
	for r := uint64(1); r <= saves; r++ {
		mustSave(t, s, paxos.Persist{
			Promised: paxos.Ballot{Round: r, Node: 1},
			Entries:  []paxos.Entry{ent(paxos.Slot(r), r, 1, batch("v"))},
			Commit:   paxos.Slot(r),
		})
	}
	close(done)
	wg.Wait()
}

// TestQuietByDefault: with no Logger, Pebble prints nothing (its default
// logger writes to the standard log package).
func TestQuietByDefault(t *testing.T) {
	var buf bytes.Buffer
	prev, prevFlags := log.Writer(), log.Flags()
	log.SetOutput(&buf)
	defer func() { log.SetOutput(prev); log.SetFlags(prevFlags) }()

	// Pebble's default logger reports the WAL replay of a reopen, so open
	// twice.
	dir := t.TempDir()
	for round := uint64(1); round <= 2; round++ {
		s, err := Open(dir, testID, Options{})
		if err != nil {
			t.Fatal(err)
		}
		mustSave(t, s, paxos.Persist{Promised: paxos.Ballot{Round: round, Node: 1}})
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if buf.Len() > 0 {
		t.Fatalf("pebble logged:\n%s", buf.String())
	}
}
