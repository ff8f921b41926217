package statemachine

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unsafe"
)

// TestKVLessOrdersAsStrings: items compare as their keys do, byte by byte,
// for keys shorter, as long as and longer than a head, with zero bytes
// (which the head's padding must not confuse with an end) and long shared
// prefixes.
func TestKVLessOrdersAsStrings(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte{0, 1, 'a', 'b', 0xff}
	randomKey := func() string {
		var b strings.Builder
		if rng.IntN(2) == 0 {
			b.WriteString("bench/scale/key/"[:rng.IntN(17)]) // shared prefixes
		}
		for n := rng.IntN(2 * kvHeadBytes); n > 0; n-- {
			b.WriteByte(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	keys := []string{"", "\x00", "\x00\x00", "a", "a\x00", strings.Repeat("a", kvHeadBytes), strings.Repeat("a", kvHeadBytes) + "\x00", strings.Repeat("a", kvHeadBytes+1)}
	for range 3000 {
		keys = append(keys, randomKey())
	}
	for _, a := range keys {
		for j := 0; j < 40; j++ {
			b := keys[rng.IntN(len(keys))]
			if j < 8 {
				b = keys[j]
			}
			if got, want := kvLess(itemOf(KV{Key: a}), itemOf(KV{Key: b})), a < b; got != want {
				t.Fatalf("kvLess(%q, %q) = %v, want %v", a, b, got, want)
			}
		}
	}
}

// TestKVStoreAgainstAMap runs random puts and deletes on a store and on a
// map, taking clones along the way: the store must agree with the map
// (lookups, key order, count), and every clone must stay as it was when
// taken while the store (or a clone, as the legacy hash's restore may)
// goes on writing.
func TestKVStoreAgainstAMap(t *testing.T) {
	for seed := uint64(0); seed < 10; seed++ {
		rng := rand.New(rand.NewPCG(seed, 1))
		s := newKVStore()
		model := map[string]string{}
		type frozen struct {
			kv    kvStore
			model map[string]string
		}
		var clones []frozen
		nkeys := 1 + rng.IntN(3000)
		key := func() string {
			if rng.IntN(4) == 0 { // keys beyond a head, sharing it
				return fmt.Sprintf("a/long/shared/prefix/of/many/bytes/%d", rng.IntN(nkeys))
			}
			return fmt.Sprintf("k/%d", rng.IntN(nkeys))
		}
		for op := 0; op < 10000; op++ {
			k := key()
			switch r := rng.IntN(100); {
			case r < 60:
				v := fmt.Sprintf("v%d", op)
				_, prev, existed := s.put(k, []byte(v))
				old, had := model[k]
				if existed != had || existed && string(prev.Value) != old {
					t.Fatalf("seed %d op %d: put %s: prev %q existed %v, model %q %v", seed, op, k, prev.Value, existed, old, had)
				}
				model[k] = v
			case r < 90:
				prev, ok := s.del(k)
				old, had := model[k]
				if ok != had || ok && string(prev.Value) != old {
					t.Fatalf("seed %d op %d: del %s: %q %v, model %q %v", seed, op, k, prev.Value, ok, old, had)
				}
				delete(model, k)
			case r < 99:
				kv, ok := s.get(k)
				old, had := model[k]
				if ok != had || ok && (string(kv.Value) != old || kv.Key != k) {
					t.Fatalf("seed %d op %d: get %s: %q %v, model %q %v", seed, op, k, kv.Value, ok, old, had)
				}
			default:
				clones = append(clones, frozen{s.clone(), copyModel(model)})
				if len(clones) > 1 && rng.IntN(3) == 0 {
					c := &clones[rng.IntN(len(clones))]
					c.kv.put("written/by/clone", []byte("x"))
					c.model["written/by/clone"] = "x"
				}
			}
		}
		checkStore(t, fmt.Sprintf("seed %d: store", seed), &s, model)
		for i := range clones {
			checkStore(t, fmt.Sprintf("seed %d: clone %d", seed, i), &clones[i].kv, clones[i].model)
		}
	}
}

func copyModel(m map[string]string) map[string]string {
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// checkStore compares s with model: count, every lookup, and the key
// order of a full scan.
func checkStore(t *testing.T, what string, s *kvStore, model map[string]string) {
	t.Helper()
	if s.len() != len(model) {
		t.Fatalf("%s: %d pairs, model %d", what, s.len(), len(model))
	}
	var want []string
	for k, v := range model {
		want = append(want, k)
		if kv, ok := s.get(k); !ok || string(kv.Value) != v {
			t.Fatalf("%s: get %s = %q %v, model %q", what, k, kv.Value, ok, v)
		}
	}
	slices.Sort(want)
	var got []string
	s.ascendFrom("", func(kv KV) bool {
		got = append(got, kv.Key)
		return true
	})
	if !slices.Equal(got, want) {
		t.Fatalf("%s: a scan gives %d keys out of order or missing, want %d", what, len(got), len(want))
	}
}

// TestKVItemKeepsThePair: a pair packed into an item comes back whole
// (an empty value as nil, as the decoders give it), and the item stays
// the 72 bytes the tree's memory was measured with.
func TestKVItemKeepsThePair(t *testing.T) {
	if size := unsafe.Sizeof(kvItem{}); size != 72 {
		t.Errorf("kvItem is %d bytes, want 72", size)
	}
	big := strings.Repeat("v", 1<<20)
	for _, kv := range []KV{
		{Key: "k", Value: []byte("v"), CreateRevision: 1, ModRevision: 2, Version: 3},
		{Key: strings.Repeat("long/", 20), Value: []byte(big), CreateRevision: math.MaxUint64, ModRevision: math.MaxUint64, Version: math.MaxUint64},
		{Key: "empty value"},
		{Key: "\x00"},
	} {
		got := itemOf(kv)
		back := got.kv()
		if back.Key != kv.Key || !bytes.Equal(back.Value, kv.Value) || back.CreateRevision != kv.CreateRevision ||
			back.ModRevision != kv.ModRevision || back.Version != kv.Version {
			t.Errorf("itemOf(%.20q).kv() = %.20q", kv.Key, back.Key)
		}
		if len(kv.Value) == 0 && back.Value != nil {
			t.Errorf("%q: empty value comes back as %#v, want nil", kv.Key, back.Value)
		}
	}
	// An empty value given as a non-nil slice is nil afterwards too: the
	// snapshot encoding (and with it the state check's hash) must not
	// depend on which decoder produced the value.
	if it := itemOf(KV{Key: "k", Value: []byte{}}); it.kv().Value != nil {
		t.Errorf("[]byte{} comes back as %#v, want nil", it.kv().Value)
	}
}
