package statemachine

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func mustPage(t *testing.T, sm *StateMachine, q ListQuery) ListPage {
	t.Helper()
	p, err := sm.ListPage(q)
	if err != nil {
		t.Fatalf("%+v: %v", q, err)
	}
	return p
}

func pageKeys(kvs []KV) string {
	ks := make([]string, len(kvs))
	for i, kv := range kvs {
		ks[i] = kv.Key
	}
	return strings.Join(ks, ",")
}

// listAll pages through the listing q describes (q.Start, q.Revision as
// given) and returns the union, checking each page's bookkeeping.
func listAll(t *testing.T, sm *StateMachine, q ListQuery, between func()) ([]KV, uint64) {
	t.Helper()
	var all []KV
	for i := 0; ; i++ {
		p := mustPage(t, sm, q)
		if q.Revision != 0 && p.Revision != q.Revision {
			t.Fatalf("page %d read at %d, asked for %d", i, p.Revision, q.Revision)
		}
		if len(p.KVs) == 0 && p.More {
			t.Fatalf("page %d: empty but More", i)
		}
		if q.Limit > 0 && len(p.KVs) > q.Limit {
			t.Fatalf("page %d: %d keys over the limit %d", i, len(p.KVs), q.Limit)
		}
		all = append(all, p.KVs...)
		if !p.More {
			if p.Next != "" {
				t.Fatalf("page %d: Next %q without More", i, p.Next)
			}
			return all, p.Revision
		}
		if want := p.KVs[len(p.KVs)-1].Key + "\x00"; p.Next != want {
			t.Fatalf("page %d: Next %q, want %q", i, p.Next, want)
		}
		q.Start, q.Revision = p.Next, p.Revision
		if between != nil {
			between()
		}
	}
}

func TestListPageBoundaries(t *testing.T) {
	h := newSMHarness(t, SMOptions{})
	for _, k := range []string{"a", "b/1", "b/2", "b/3", "b/30", "b/4", "c"} {
		h.do(putCmd(k, "v"))
	}
	for _, tc := range []struct {
		q     ListQuery
		keys  string
		more  bool
		next  string
		descr string
	}{
		{ListQuery{Prefix: "b/"}, "b/1,b/2,b/3,b/30,b/4", false, "", "whole prefix"},
		{ListQuery{Prefix: "b/", Limit: 2}, "b/1,b/2", true, "b/2\x00", "limit"},
		{ListQuery{Prefix: "b/", Limit: 5}, "b/1,b/2,b/3,b/30,b/4", false, "", "limit exactly the keys: no More"},
		{ListQuery{Prefix: "b/", Start: "b/2\x00", Limit: 2}, "b/3,b/30", true, "b/30\x00", "from a Next"},
		{ListQuery{Prefix: "b/", Start: "b/3"}, "b/3,b/30,b/4", false, "", "start is inclusive"},
		{ListQuery{Prefix: "b/", Start: "a"}, "b/1,b/2,b/3,b/30,b/4", false, "", "start below the prefix"},
		{ListQuery{Prefix: "b/", Start: "b/5"}, "", false, "", "start past the prefix's keys"},
		{ListQuery{Prefix: "b/", Start: "c"}, "", false, "", "start past the prefix"},
		{ListQuery{Start: "b/4", Limit: 1}, "b/4", true, "b/4\x00", "no prefix"},
		{ListQuery{Start: "b/4\x00"}, "c", false, "", "no prefix, last page"},
		{ListQuery{Prefix: "zz"}, "", false, "", "nothing matches"},
	} {
		p := mustPage(t, h.sm, tc.q)
		if got := pageKeys(p.KVs); got != tc.keys || p.More != tc.more || p.Next != tc.next || p.Revision != 7 {
			t.Errorf("%s: %q more=%v next=%q rev=%d; want %q more=%v next=%q rev 7",
				tc.descr, got, p.More, p.Next, p.Revision, tc.keys, tc.more, tc.next)
		}
	}
}

func TestListPageBytes(t *testing.T) {
	h := newSMHarness(t, SMOptions{})
	for i := range 10 {
		h.do(putCmd(fmt.Sprintf("k%d", i), strings.Repeat("v", 100)))
	}
	h.do(putCmd("k5", strings.Repeat("x", 5000))) // one value above the page bound
	one := 2 + 100 + listKVOverhead
	// Room for three keys, not four.
	p := mustPage(t, h.sm, ListQuery{Bytes: 4*one - 1})
	if pageKeys(p.KVs) != "k0,k1,k2" || !p.More || p.Next != "k2\x00" {
		t.Fatalf("3 keys' worth: %q more=%v next=%q", pageKeys(p.KVs), p.More, p.Next)
	}
	// Exactly four keys' worth holds four.
	if p := mustPage(t, h.sm, ListQuery{Bytes: 4 * one}); pageKeys(p.KVs) != "k0,k1,k2,k3" || !p.More {
		t.Fatalf("4 keys' worth: %q more=%v", pageKeys(p.KVs), p.More)
	}
	// The big value gets a page of its own: at least one key per page.
	p = mustPage(t, h.sm, ListQuery{Start: "k4", Bytes: 2 * one})
	if pageKeys(p.KVs) != "k4" || !p.More {
		t.Fatalf("before the big value: %q more=%v", pageKeys(p.KVs), p.More)
	}
	p = mustPage(t, h.sm, ListQuery{Start: p.Next, Bytes: 2 * one})
	if pageKeys(p.KVs) != "k5" || !p.More || p.Next != "k5\x00" {
		t.Fatalf("the big value alone: %q more=%v next=%q", pageKeys(p.KVs), p.More, p.Next)
	}
	// A tiny bound still moves one key at a time, to the end.
	all, _ := listAll(t, h.sm, ListQuery{Bytes: 1}, nil)
	if len(all) != 10 {
		t.Fatalf("one byte per page listed %d keys", len(all))
	}
	// Limit and bytes together: whichever comes first.
	if p := mustPage(t, h.sm, ListQuery{Limit: 2, Bytes: 100 * one}); len(p.KVs) != 2 || !p.More {
		t.Fatalf("limit before bytes: %q", pageKeys(p.KVs))
	}
}

// TestListPagePinnedModel lists at a pinned revision in pages while puts,
// deletes, re-creations and cas change the keys between the pages, and
// compares the union with a copy of the state taken at that revision.
func TestListPagePinnedModel(t *testing.T) {
	for seed := uint64(1); seed <= 30; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		h := newSMHarness(t, SMOptions{})
		key := func() string {
			return fmt.Sprintf("%c/%02d", "abc"[rng.IntN(3)], rng.IntN(40))
		}
		write := func() {
			k := key()
			switch r := rng.IntN(10); {
			case r < 5:
				h.do(putCmd(k, fmt.Sprint("v", rng.IntN(1000))))
			case r < 8:
				h.do(delCmd(k))
			default:
				if kv, ok := h.sm.Get(k); ok {
					h.do(casRevCmd(k, kv.ModRevision, "cas"))
				} else {
					h.do(casRevCmd(k, 0, "created"))
				}
			}
		}
		for range 200 {
			write()
		}
		prefix := []string{"", "a/", "b/", "c/0", "d"}[rng.IntN(5)]
		start := []string{"", "", "b/2", key()}[rng.IntN(4)]
		// The state now, which the pinned pages must show.
		snapshot := h.sm.List(prefix, 0)
		var want []KV
		for _, kv := range snapshot {
			if kv.Key >= start {
				want = append(want, kv)
			}
		}
		q := ListQuery{Prefix: prefix, Start: start, Limit: rng.IntN(5), Bytes: rng.IntN(200)}
		got, rev := listAll(t, h.sm, q, func() {
			for range rng.IntN(30) {
				write()
			}
		})
		if !slices.EqualFunc(got, want, kvEqual) {
			t.Fatalf("seed %d, %+v at revision %d:\n got %v\nwant %v", seed, q, rev, describeKVs(got), describeKVs(want))
		}
		// Any page from any start at rev agrees with the copy too.
		for range 20 {
			s := key()
			p := mustPage(t, h.sm, ListQuery{Prefix: prefix, Start: s, Revision: rev, Limit: 3})
			var w []KV
			for _, kv := range snapshot {
				if kv.Key >= s && len(w) < 3 {
					w = append(w, kv)
				}
			}
			if !slices.EqualFunc(p.KVs, w, kvEqual) {
				t.Fatalf("seed %d, page from %q at %d: %v, want %v", seed, s, rev, describeKVs(p.KVs), describeKVs(w))
			}
		}
	}
}

func describeKVs(kvs []KV) string {
	s := make([]string, len(kvs))
	for i, kv := range kvs {
		s[i] = describeKV(kv)
	}
	return strings.Join(s, " ")
}

func TestListPageCompacted(t *testing.T) {
	h := newSMHarness(t, SMOptions{KVHistoryMax: 8})
	for i := range 20 {
		h.do(putCmd(fmt.Sprint("k", i), "v"))
	}
	if got := h.sm.OldestListRevision(); got != 12 {
		t.Fatalf("oldest list revision %d, want 12 (20 changes, 8 kept)", got)
	}
	p := mustPage(t, h.sm, ListQuery{Limit: 5})
	if p.Revision != 20 || !p.More {
		t.Fatalf("first page: revision %d more %v", p.Revision, p.More)
	}
	// Eight more changes: revision 20 is just still covered...
	for i := range 8 {
		h.do(delCmd(fmt.Sprint("k", i+10)))
	}
	if q := (ListQuery{Start: p.Next, Revision: 20}); len(mustPage(t, h.sm, q).KVs) != 15 {
		t.Fatalf("at the oldest kept revision: %d keys, want 15", len(mustPage(t, h.sm, q).KVs))
	}
	// ...and one more drops it.
	h.do(putCmd("k0", "w"))
	_, err := h.sm.ListPage(ListQuery{Start: p.Next, Revision: 20})
	if !errors.Is(err, ErrCompacted) || !strings.Contains(err.Error(), "list at revision 20: history compacted (oldest kept is 21); start the listing again") {
		t.Fatalf("compacted revision: %v", err)
	}
	if _, err := h.sm.ListPage(ListQuery{Revision: 30}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("future revision: %v", err)
	}
	if p := mustPage(t, h.sm, ListQuery{Revision: 29}); p.Revision != 29 || len(p.KVs) != 12 {
		t.Fatalf("the current revision, pinned: revision %d, %d keys", p.Revision, len(p.KVs))
	}
}

// TestListPageAfterRestore: a node restored from a snapshot has only the
// history the snapshot carried; it lists at the revisions that covers and
// answers ErrCompacted before them, never a wrong page.
func TestListPageAfterRestore(t *testing.T) {
	h := newSMHarness(t, SMOptions{})
	for i := range 50 {
		h.do(putCmd(fmt.Sprint("k", i%10), fmt.Sprint(i)))
	}
	restored := mustRestore(t, SMOptions{}, mustSnapshot(t, h.sm))
	oldest := restored.OldestListRevision()
	if oldest > 50 {
		t.Fatalf("oldest list revision %d above the store's 50", oldest)
	}
	for rev := uint64(1); rev <= 50; rev++ {
		got, err := restored.ListPage(ListQuery{Revision: rev})
		want, werr := h.sm.ListPage(ListQuery{Revision: rev})
		switch {
		case rev < oldest && !errors.Is(err, ErrCompacted):
			t.Fatalf("revision %d below the restored history (%d): %v", rev, oldest, err)
		case rev >= oldest && (err != nil || werr != nil || !slices.EqualFunc(got.KVs, want.KVs, kvEqual)):
			t.Fatalf("revision %d: %v (%v), want %v (%v)", rev, describeKVs(got.KVs), err, describeKVs(want.KVs), werr)
		}
	}
}
