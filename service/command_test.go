package service

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

// normalized returns c as DecodeCommand returns it: empty byte slices nil.
func normalized(c Command) Command {
	if len(c.Value) == 0 {
		c.Value = nil
	}
	if len(c.PrevValue) == 0 {
		c.PrevValue = nil
	}
	return c
}

var sampleCommands = []Command{
	{},
	{Op: OpGet, Key: "a"},
	{ClientID: 1, Seq: 2, AckedBelow: 1, Op: OpPut, Key: "k", Value: []byte("v")},
	{ClientID: math.MaxUint64, Seq: math.MaxUint64, AckedBelow: math.MaxUint64, Op: OpDelete, Key: "x"},
	{Op: OpPut, Key: "empty", Value: []byte{}},
	{Op: OpCAS, Key: "k", Value: []byte("new"), PrevValue: []byte("old"), HasPrevValue: true},
	{Op: OpCAS, Key: "k", Value: []byte("new"), PrevValue: []byte{}, HasPrevValue: true},
	{Op: OpCAS, Key: "k", PrevRevision: 0, HasPrevRevision: true},
	{Op: OpCAS, Key: "k", PrevRevision: 1 << 40, HasPrevRevision: true, PrevValue: []byte("p"), HasPrevValue: true},
	{ClientID: 3, Seq: 4, Op: OpList, Prefix: "b/", Limit: math.MaxUint32},
	{Op: OpList},
	{Op: OpList, Limit: 1},
	{Op: OpPut, Key: strings.Repeat("k", 300), Value: bytes.Repeat([]byte("v"), 70000)}, // str16, bin32
	{Op: Op(200), Key: "unknown op still encodes"},
	{Op: OpPut, Key: "k\x00\xff", Value: []byte{0, 1, 2}},
}

func TestCommandRoundTrip(t *testing.T) {
	for _, c := range sampleCommands {
		b := EncodeCommand(&c)
		got, err := DecodeCommand(b)
		if err != nil {
			t.Fatalf("%s: %v", c.String(), err)
		}
		if want := normalized(c); !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip:\n got  %+v\n want %+v", got, want)
		}
		if b2 := EncodeCommand(&got); !bytes.Equal(b, b2) {
			t.Fatalf("%s: re-encoding differs", c.String())
		}
	}
}

// TestCommandGolden pins the log format: commands already in logs and
// snapshots must keep decoding the same way.
func TestCommandGolden(t *testing.T) {
	tests := []struct {
		cmd Command
		hex string
	}{
		{Command{}, "90"},
		{Command{ClientID: 1, Seq: 2, AckedBelow: 1, Op: OpPut, Key: "k", Value: []byte("v")}, "9601020101a16bc40176"},
		{Command{Op: OpGet, Key: "k"}, "9500000002a16b"},
		{Command{Op: OpCAS, Key: "k", PrevRevision: 0, HasPrevRevision: true}, "9800000004a16bc0c000"},
		{Command{Op: OpCAS, Key: "k", PrevValue: []byte{}, HasPrevValue: true}, "9700000004a16bc0c400"},
		{Command{Op: OpList, Prefix: "p", Limit: 300}, "9a00000005a0c0c0c0a170cd012c"},
	}
	for _, tt := range tests {
		if got := hex.EncodeToString(EncodeCommand(&tt.cmd)); got != tt.hex {
			t.Errorf("%s: encoded %s, want %s", tt.cmd.String(), got, tt.hex)
		}
	}
}

func TestDecodeCommandRejects(t *testing.T) {
	tests := []struct {
		name string
		hex  string
	}{
		{"empty", ""},
		{"not an array", "a16b"},
		{"map", "80"},
		{"truncated array", "93"},
		{"too many fields", "9b0000000000000000000000"},
		{"negative client id", "91ff"},
		{"float seq", "9200ca00000000"},
		{"op above 255", "9400000000cd0100"},
		{"limit above uint32", "9a00000005a0c0c0c0a0cf0000000100000000"},
		{"bin key", "9500000002c4016b"},
		{"nil key", "9500000002c0"},
		{"str value", "9600000001a16ba176"},
		{"bool prev revision", "9800000004a16bc0c0c3"},
		{"truncated key", "9500000002a56b"},
		{"key length beyond input", "9500000002dbffffffff6b"},
		{"value length beyond input", "9600000001a16bc6ffffffff"},
		{"trailing bytes", "9500000002a16b00"},
		{"two commands", "90" + "90"},
		{"nested array in field", "9500000002" + "91a16b"},
	}
	for _, tt := range tests {
		b, err := hex.DecodeString(tt.hex)
		if err != nil {
			t.Fatalf("%s: bad test hex: %v", tt.name, err)
		}
		c, err := DecodeCommand(b)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: got %+v, %v; want ErrInvalid", tt.name, c, err)
		}
	}
}

// TestDecodeCommandShort: every proper prefix of a valid encoding is
// rejected, and nothing panics.
func TestDecodeCommandShort(t *testing.T) {
	for _, c := range sampleCommands {
		b := EncodeCommand(&c)
		stride := max(1, len(b)/500) // large commands: a sample of prefixes
		for i := 0; i < len(b); i += stride {
			if _, err := DecodeCommand(b[:i]); err == nil {
				t.Fatalf("%s: prefix of %d/%d bytes decoded", c.String(), i, len(b))
			}
		}
	}
}

func TestOpString(t *testing.T) {
	for op, want := range map[Op]string{OpPut: "put", OpGet: "get", OpDelete: "delete", OpCAS: "cas", OpList: "list", 0: "op(0)", 9: "op(9)"} {
		if got := op.String(); got != want {
			t.Errorf("Op(%d).String() = %q, want %q", uint8(op), got, want)
		}
	}
}

// FuzzDecodeCommand: DecodeCommand never panics; whatever it accepts
// re-encodes canonically and applies without panicking.
func FuzzDecodeCommand(f *testing.F) {
	for _, c := range sampleCommands {
		if b := EncodeCommand(&c); len(b) < 1000 {
			f.Add(b)
		}
	}
	for _, s := range []string{"", "c1", "90", "9b", "dc0000", "dd7fffffff", "9500000002dbffffffff6b", "9400000000cd0100", "9200ca00000000"} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		enc := EncodeCommand(&c)
		c2, err := DecodeCommand(enc)
		if err != nil {
			t.Fatalf("re-encoded command does not decode: %v", err)
		}
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("round trip changed the command:\n %+v\n %+v", c, c2)
		}
		if enc2 := EncodeCommand(&c2); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not canonical")
		}
		sm := NewStateMachine(SMOptions{})
		sm.Apply(1, b)
		sm.Apply(1, b)
	})
}
