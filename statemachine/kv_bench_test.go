package statemachine

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkKVPutRandomAtScale: a put's lookups (the quota check's get, the
// previous pair, the write) of random keys in a store of a million, as
// bench scale writes them: the state machine's largest cost at that size
// (docs/BENCHMARKS.md, "Where the CPU goes at a million keys").
//
//	go test ./statemachine -run '^$' -bench KVPutRandomAtScale -benchtime 300000x
func BenchmarkKVPutRandomAtScale(b *testing.B) {
	const keys = 1_000_000
	s := newKVStore()
	names := make([]string, keys)
	for i := range names {
		names[i] = fmt.Sprintf("bench/scale/key/%d", i)
		s.put(names[i], make([]byte, 256))
	}
	order := make([]int, 1<<16)
	for i := range order {
		order[i] = rand.IntN(keys)
	}
	v := make([]byte, 256)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := names[order[i&(len(order)-1)]]
		if _, found := s.get(k); !found {
			b.Fatal(k)
		}
		s.put(k, v)
	}
}
