package statemachine

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// checkTree verifies that s holds exactly want, in key order.
func checkTree(t *testing.T, s *kvStore, want []string) {
	t.Helper()
	var got []string
	s.ascendFrom("", func(kv KV) bool { got = append(got, kv.Key); return true })
	if s.len() != len(want) || !slices.Equal(got, want) {
		t.Fatalf("tree holds %d keys %q, want %d %q", s.len(), got, len(want), want)
	}
}

// TestKVCloneIsolated: a clone (the point-in-time view a snapshot encodes
// off the loop) keeps its keys, values and revisions while the live store
// goes on with puts and deletes, and the live store sees none of the
// clone's.
func TestKVCloneIsolated(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	live := newKVStore()
	for i := 0; i < 5000; i++ {
		live.put(fmt.Sprintf("k%05d", rng.IntN(3000)), []byte{byte(i)})
	}
	frozen := live.clone()
	var want []KV
	frozen.ascendFrom("", func(kv KV) bool { want = append(want, kv); return true })
	wantRev := frozen.rev
	for i := 0; i < 5000; i++ {
		k := fmt.Sprintf("k%05d", rng.IntN(4000))
		if rng.IntN(3) == 0 {
			live.del(k)
		} else {
			live.put(k, []byte{byte(i), 1})
		}
	}
	var got []KV
	frozen.ascendFrom("", func(kv KV) bool { got = append(got, kv); return true })
	if frozen.rev != wantRev || !reflect.DeepEqual(got, want) {
		t.Fatalf("the clone changed with the live store: %d keys at rev %d, was %d at rev %d", len(got), frozen.rev, len(want), wantRev)
	}
	frozen.put("zzz", []byte("x"))
	if _, ok := live.get("zzz"); ok {
		t.Fatal("a put to the clone reached the live store")
	}
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
