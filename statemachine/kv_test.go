package statemachine

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// checkIndex verifies keyIndex's invariants and that it holds exactly want
// (sorted).
func checkIndex(t *testing.T, x *keyIndex, want []string) {
	t.Helper()
	var all []string
	for i, c := range x.chunks {
		if len(c) == 0 || len(c) > chunkKeysMax {
			t.Fatalf("chunk %d has %d keys", i, len(c))
		}
		all = append(all, c...)
	}
	for i := 1; i < len(all); i++ {
		if all[i-1] >= all[i] {
			t.Fatalf("keys out of order or repeated at %d: %q, %q", i, all[i-1], all[i])
		}
	}
	if x.n != len(all) || !slices.Equal(all, want) {
		t.Fatalf("index holds %d keys (n=%d), want %d", len(all), x.n, len(want))
	}
}

// TestKeyIndex compares the chunked index with a flat sorted slice under
// random inserts, removes and scans, with enough keys to split and merge
// chunks many times.
func TestKeyIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	var x keyIndex
	var ref []string
	key := func() string { return fmt.Sprintf("%c/%d", 'a'+rng.IntN(4), rng.IntN(3000)) }
	for round := 0; round < 4; round++ {
		// Grow, then shrink, so chunks split and then merge or vanish.
		grow := round%2 == 0
		for i := 0; i < 6000; i++ {
			k := key()
			j, found := slices.BinarySearch(ref, k)
			insert := !found && (grow && rng.IntN(4) != 0 || !grow && rng.IntN(4) == 0)
			remove := found && (!grow && rng.IntN(4) != 0 || grow && rng.IntN(4) == 0)
			switch {
			case insert:
				x.insert(k)
				ref = slices.Insert(ref, j, k)
			case remove:
				x.remove(k)
				ref = slices.Delete(ref, j, j+1)
			}
			if i%500 == 0 {
				checkIndex(t, &x, ref)
			}
			// Scan from a random point: the index and the reference
			// agree on the next few keys.
			from := key()[:1+rng.IntN(3)]
			j, _ = slices.BinarySearch(ref, from)
			var got []string
			x.ascend(from, func(k string) bool {
				got = append(got, k)
				return len(got) < 5
			})
			if want := ref[j:min(j+5, len(ref))]; !slices.Equal(got, want) {
				t.Fatalf("ascend(%q) = %q, want %q", from, got, want)
			}
		}
		checkIndex(t, &x, ref)
		if grow && len(x.chunks) < 4 {
			t.Fatalf("only %d chunks after growing to %d keys: splits untested", len(x.chunks), len(ref))
		}
	}
	// Remove everything.
	for _, k := range slices.Clone(ref) {
		x.remove(k)
	}
	checkIndex(t, &x, nil)
	if len(x.chunks) != 0 {
		t.Fatalf("%d chunks left in an empty index", len(x.chunks))
	}
}

// TestKeyIndexFragmentation: deleting most keys leaves few chunks behind.
func TestKeyIndexFragmentation(t *testing.T) {
	var x keyIndex
	const n = 20000
	for i := 0; i < n; i++ {
		x.insert(fmt.Sprintf("%08d", i))
	}
	for i := 0; i < n; i++ {
		if i%50 != 0 {
			x.remove(fmt.Sprintf("%08d", i))
		}
	}
	// Without merging, the ~80 chunks of the full index would all remain.
	if x.n != n/50 || len(x.chunks) > 2*x.n/(chunkKeysMax/4)+2 {
		t.Fatalf("%d keys in %d chunks after deletes", x.n, len(x.chunks))
	}
}

func TestKeyIndexRemoveMissingPanics(t *testing.T) {
	var x keyIndex
	x.insert("a")
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "out of sync") {
			t.Fatalf("recover() = %v, want an out-of-sync panic", r)
		}
	}()
	x.remove("b")
}

func TestLocalReads(t *testing.T) {
	h := newSMHarness(t, SMOptions{})
	for _, k := range []string{"b/2", "a", "b/1", "b", "c"} {
		h.do(putCmd(k, "v-"+k))
	}
	if kv, ok := h.sm.Get("b/1"); !ok || string(kv.Value) != "v-b/1" || kv.ModRevision != 3 {
		t.Fatalf("Get(b/1) = %s, %v", describeKV(kv), ok)
	}
	if _, ok := h.sm.Get("zz"); ok {
		t.Fatalf("Get of a missing key found it")
	}
	keys := func(kvs []KV) (ks []string) {
		for _, kv := range kvs {
			ks = append(ks, kv.Key)
		}
		return ks
	}
	for _, tt := range []struct {
		prefix string
		limit  int
		want   []string
	}{
		{"", 0, []string{"a", "b", "b/1", "b/2", "c"}},
		{"", -1, []string{"a", "b", "b/1", "b/2", "c"}},
		{"b", 0, []string{"b", "b/1", "b/2"}},
		{"b/", 1, []string{"b/1"}},
		{"c", 5, []string{"c"}},
		{"d", 0, nil},
	} {
		if got := keys(h.sm.List(tt.prefix, tt.limit)); !slices.Equal(got, tt.want) {
			t.Errorf("List(%q, %d) = %q, want %q", tt.prefix, tt.limit, got, tt.want)
		}
	}
}
