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

// BenchmarkDecodePut: decoding a put as every replica does for each one
// it applies (-benchmem: the key and value's one allocation, and the
// reader the decoder reads; the protocol core may not import sync, so the
// reader is not pooled).
func BenchmarkDecodePut(b *testing.B) {
	enc := EncodeCommand(&Command{Op: OpPut, ClientID: 7, Seq: 9, Key: "bench/scale/key/123456", Value: make([]byte, 256)})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := DecodeCommand(enc); err != nil {
			b.Fatal(err)
		}
	}
}
