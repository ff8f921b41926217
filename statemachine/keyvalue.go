package statemachine

import "unsafe"

// joinKeyValue copies a key and its value out of a decoded command or
// snapshot into one allocation, the key's bytes first, unless that takes
// much more memory than two. The key-value store then holds one object a
// key instead of two, and every collection marks a million objects fewer
// at a million keys (BenchmarkCollectorAtScale: a full collection about
// half as long, and the collector is a tenth of a node's CPU under load).
//
// One allocation is rounded up to one of the allocator's size classes
// where two are rounded up each, so it can cost more. A 22-byte key and a
// 256-byte value take 288 bytes together and 280 apart (8 MB more at a
// million keys, 3 %): worth it, since the collector's room under the
// memory limit (twice the live bytes) barely shrinks while its work per
// collection halves. A 22-byte key and a 1 KiB value take 1,152 bytes
// together and 1,048 apart: 100 MB more at a million keys, against a
// bound of twice the live bytes. So the pair shares an allocation when
// that costs at most 1/32 more than two, and is otherwise copied into two.
//
// An empty key is "" and an empty value nil, as decodeString and
// decodeBytes return them; the value's capacity is its length, so an
// append to it cannot reach past it.
func joinKeyValue(key, value []byte) (string, []byte) {
	n := len(key) + len(value)
	if n == 0 {
		return "", nil
	}
	apart := allocBytes(len(key)) + allocBytes(len(value))
	if len(key) == 0 || len(value) == 0 || allocBytes(n) > apart+apart/32 {
		var k string
		if len(key) > 0 {
			k = string(key)
		}
		var v []byte
		if len(value) > 0 {
			v = append([]byte(nil), value...)[:len(value):len(value)]
		}
		return k, v
	}
	buf := make([]byte, n)
	copy(buf, key)
	copy(buf[len(key):], value)
	return unsafe.String(&buf[0], len(key)), buf[len(key):n:n]
}

// smallAllocMax is the largest allocation the Go allocator rounds up to a
// size class; a larger one takes whole pages (allocPageBytes).
const (
	smallAllocMax  = 32 << 10
	allocPageBytes = 8 << 10
)

// allocClasses are the allocator's size classes up to smallAllocMax, in
// increasing order, found by asking the runtime (what append gives a new
// slice is its size class) rather than copied from its sources, which may
// change between Go releases.
var allocClasses = func() []int {
	var classes []int
	for n := 1; n <= smallAllocMax; {
		c := cap(append([]byte(nil), make([]byte, n)...))
		if c < n { // cannot happen; stop rather than loop
			break
		}
		classes = append(classes, c)
		n = c + 1
	}
	return classes
}()

// allocBytes is what the allocator takes for an object of n bytes.
func allocBytes(n int) int {
	if n > smallAllocMax {
		return (n + allocPageBytes - 1) / allocPageBytes * allocPageBytes
	}
	lo, hi := 0, len(allocClasses)
	for lo < hi {
		mid := (lo + hi) / 2
		if allocClasses[mid] < n {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == len(allocClasses) {
		return n
	}
	return allocClasses[lo]
}
