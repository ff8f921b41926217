package statemachine

import (
	"bytes"
	"strings"
	"testing"
	"unsafe"
)

// TestJoinKeyValue checks that a pair shares one allocation exactly when
// that takes at most 1/32 more memory than two, and that either way the key and the
// value read back as given and the value cannot be appended into.
func TestJoinKeyValue(t *testing.T) {
	key := []byte("bench/scale/key/123456") // 22 bytes
	for _, tc := range []struct {
		valueBytes int
		joint      bool
	}{
		{200, true},   // 222 bytes in one 224-byte object, against 24 + 208
		{256, true},   // 278 in 288, against 24 + 256: 8 more, under 280/32
		{512, false},  // 534 in 576, against 24 + 512: 40 more, over 536/32
		{1024, false}, // 1,046 in 1,152, against 24 + 1,024
		{1000, true},  // 1,022 in 1,024, against 24 + 1,024
		{0, false},
	} {
		value := bytes.Repeat([]byte{'v'}, tc.valueBytes)
		k, v := joinKeyValue(key, value)
		if k != string(key) || !bytes.Equal(v, value) {
			t.Fatalf("value of %d bytes: got key %q and %d bytes back", tc.valueBytes, k, len(v))
		}
		if tc.valueBytes == 0 {
			if v != nil {
				t.Fatalf("an empty value came back as %#v, want nil", v)
			}
			continue
		}
		if cap(v) != len(v) {
			t.Fatalf("value of %d bytes: capacity %d, want its length", tc.valueBytes, cap(v))
		}
		joint := unsafe.Add(unsafe.Pointer(unsafe.StringData(k)), len(k)) == unsafe.Pointer(&v[0])
		if joint != tc.joint {
			t.Errorf("value of %d bytes: one allocation %v, want %v (%d bytes together, %d + %d apart)",
				tc.valueBytes, joint, tc.joint, allocBytes(len(key)+tc.valueBytes), allocBytes(len(key)), allocBytes(tc.valueBytes))
		}
		// Neither may alias the input.
		key[0], value[0] = 'X', 'X'
		if !strings.HasPrefix(k, "b") || v[0] != 'v' {
			t.Fatalf("value of %d bytes: the pair aliases the input", tc.valueBytes)
		}
		key[0] = 'b'
	}
}

// TestAllocBytes checks the size classes found at start against a few the
// Go allocator has had for years.
func TestAllocBytes(t *testing.T) {
	for n, want := range map[int]int{1: 8, 8: 8, 9: 16, 22: 24, 256: 256, 257: 288, 1025: 1152, 32768: 32768, 32769: 40960} {
		if got := allocBytes(n); got != want {
			t.Errorf("allocBytes(%d) = %d, want %d", n, got, want)
		}
	}
}
