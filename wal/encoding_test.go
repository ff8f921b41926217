package wal

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/paxosd/paxosd/paxos"
)

var encodingSamples = []paxos.Entry{
	ent(1, 0, 0, paxos.Noop),
	ent(2, 1, 1, batch("a")),
	ent(3, 7, 3, batch("", "x", "")),
	ent(4, math.MaxUint64, math.MaxUint32, batch(string(make([]byte, 300)), "tail")),
	{Slot: 5, Ballot: paxos.Ballot{Round: 2, Node: 2}, Value: paxos.Value{Kind: paxos.ValueBatch}},
}

func TestEntryValueRoundTrip(t *testing.T) {
	for _, e := range encodingSamples {
		b, v, err := decodeEntryValue(0, appendEntryValue(nil, e))
		if err != nil {
			t.Fatalf("%s: %v", e, err)
		}
		if b != e.Ballot || !v.Equal(e.Value) {
			t.Fatalf("round trip of %s gave %s %s", e, b, describeValue(v))
		}
	}
}

func TestSmallValuesRoundTrip(t *testing.T) {
	for _, b := range []paxos.Ballot{{}, {Round: 1, Node: 1}, {Round: math.MaxUint64, Node: math.MaxUint32}} {
		got, err := decodeBallotValue("test", appendBallotValue(nil, b))
		if err != nil || got != b {
			t.Fatalf("ballot %s: got %s, %v", b, got, err)
		}
	}
	for _, s := range []paxos.Slot{0, 1, 1 << 40, math.MaxUint64} {
		got, err := decodeSlotValue("test", appendSlotValue(nil, s))
		if err != nil || got != s {
			t.Fatalf("slot %d: got %d, %v", s, got, err)
		}
	}
	id := Identity{ClusterID: "prod-eu", NodeID: 7}
	got, err := decodeIdentityValue(appendIdentityValue(nil, id))
	if err != nil || got != id {
		t.Fatalf("identity %+v: got %+v, %v", id, got, err)
	}
}

// decoders lists every decoder, for the never-panic tests.
var decoders = map[string]func([]byte) error{
	"entry": func(b []byte) error { _, _, err := decodeEntryValue(0, b); return err },
	"ballot": func(b []byte) error {
		_, err := decodeBallotValue("test", b)
		return err
	},
	"slot": func(b []byte) error {
		_, err := decodeSlotValue("test", b)
		return err
	},
	"identity": func(b []byte) error {
		_, err := decodeIdentityValue(b)
		return err
	},
	"entry key": func(b []byte) error { _, err := decodeEntryKey(b); return err },
}

// TestDecodeBadInput: known-bad inputs are ErrCorrupt; every truncation of a
// valid encoding is ErrCorrupt; random bytes never panic.
func TestDecodeBadInput(t *testing.T) {
	for _, tc := range []struct {
		name, decoder string
		in            []byte
	}{
		{"empty", "entry", nil},
		{"bad version", "entry", []byte{2, 1, 1, 1, 0}},
		{"uvarint overflow", "entry", append([]byte{1}, bytes.Repeat([]byte{0xff}, 11)...)},
		{"node over 32 bits", "entry", []byte{1, 1, 0x80, 0x80, 0x80, 0x80, 0x10, 1, 0}},
		{"count beyond input", "entry", []byte{1, 1, 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"cmd beyond input", "entry", []byte{1, 1, 1, 1, 1, 5, 'a', 'b'}},
		{"trailing bytes", "entry", append(appendEntryValue(nil, encodingSamples[1]), 0)},
		{"ballot trailing", "ballot", []byte{1, 1, 1, 1}},
		{"slot missing", "slot", []byte{1}},
		{"identity too long", "identity", []byte{1, 1, 0xff, 0x0f}},
		{"identity node 0 ok but truncated", "identity", []byte{1, 0, 3, 'a'}},
		{"entry key short", "entry key", []byte("e/1234567")},
		{"entry key prefix", "entry key", []byte("x/12345678")},
	} {
		if err := decoders[tc.decoder](tc.in); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", tc.name, err)
		}
	}

	valid := map[string][][]byte{
		"ballot":   {appendBallotValue(nil, paxos.Ballot{Round: 300, Node: 300})},
		"slot":     {appendSlotValue(nil, 1<<20)},
		"identity": {appendIdentityValue(nil, testID)},
	}
	for _, e := range encodingSamples {
		valid["entry"] = append(valid["entry"], appendEntryValue(nil, e))
	}
	for name, ins := range valid {
		for _, in := range ins {
			for n := 0; n < len(in); n++ {
				if err := decoders[name](in[:n]); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("%s truncated to %d of %d bytes: %v, want ErrCorrupt", name, n, len(in), err)
				}
			}
		}
	}

	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 20000; i++ {
		in := make([]byte, rng.Intn(40))
		rng.Read(in)
		if len(in) > 0 && rng.Intn(2) == 0 {
			in[0] = formatVersion // get past the version check half the time
		}
		for name, dec := range decoders {
			if err := callNoPanic(dec, in); err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s(%x): %v, want nil or ErrCorrupt", name, in, err)
			}
		}
	}
}

func callNoPanic(dec func([]byte) error, in []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			panic(fmt.Sprintf("decoding %x panicked: %v", in, r))
		}
	}()
	return dec(in)
}

// FuzzDecodeEntry: decoding arbitrary bytes never panics, and whatever
// decodes re-encodes to something that decodes to the same entry.
func FuzzDecodeEntry(f *testing.F) {
	for _, e := range encodingSamples {
		f.Add(appendEntryValue(nil, e))
	}
	f.Add([]byte{})
	f.Add([]byte{1, 0x80})
	f.Add([]byte{1, 1, 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, in []byte) {
		b, v, err := decodeEntryValue(0, in)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		again := appendEntryValue(nil, paxos.Entry{Slot: 1, Ballot: b, Value: v})
		b2, v2, err := decodeEntryValue(0, again)
		if err != nil || b2 != b || !v2.Equal(v) {
			t.Fatalf("re-encoding %x gave %x, which decodes to %s %s (%v)", in, again, b2, describeValue(v2), err)
		}
	})
}
