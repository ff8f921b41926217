package statemachine

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/paxosd/paxosd/internal/fuzzcorpus"
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
	{ClientID: 5, Seq: 6, Op: OpSessionOpen, TTLMs: 10000},
	{ClientID: 5, Seq: 7, Op: OpSessionKeepAlive, SessionID: 3},
	{Op: OpSessionClose, SessionID: math.MaxUint64},
	{ClientID: 5, Seq: 8, Op: OpLockAcquire, Name: "lock/a", SessionID: 3, Wait: true, LockDelayMs: 5000},
	{Op: OpLockAcquire, Name: "lock/a", SessionID: 3},
	{Op: OpLockRelease, Name: "lock/a", SessionID: 3},
	{Op: OpLockCheck, Name: "lock/a", Token: 1 << 50},
	{Op: OpCampaign, Name: "el", SessionID: 4, Value: []byte("me")},
	{Op: OpProclaim, Name: "el", SessionID: 4, Value: []byte{}},
	{Op: OpResign, Name: "el", SessionID: 4},
	{Op: OpLeader, Name: "el"},
	{Op: OpClock, Now: math.MaxUint64},
	{ClientID: 1, Seq: 9, Op: OpPut, Key: "k", Value: []byte("v"), FenceName: "lock/a", FenceToken: 7},
	{Op: OpDelete, Key: "k", FenceName: "lock/a"},
	{Op: OpCAS, Key: "k", HasPrevRevision: true, FenceToken: 3}, // invalid, but encodes
	{ClientID: 5, Seq: 9, Op: OpQuotaSet, Quota: 64 << 10},
	{Op: OpQuotaDefault, Quota: DefaultQuotaBytes},
	{Op: OpLevel, Level: LevelMax},
	{ClientID: 5, Seq: 10, Op: OpLevel, Level: math.MaxUint64}, // invalid, but encodes
	{ClientID: 7, Seq: 1, Op: OpTxn,
		Compares: []Compare{{Target: CompareValue, Result: CompareEqual, Key: "a", Value: []byte("1")},
			{Target: CompareToken, Result: CompareGreater, Key: "lock/a", Number: math.MaxUint64}},
		Then: []TxnOp{{Type: TxnPut, Key: "a", Value: []byte("2")}, {Type: TxnDelete, Key: "p/", Prefix: true}},
		Else: []TxnOp{{Type: TxnGet, Key: "a"}, {Type: TxnGet, Key: "", Prefix: true, Limit: math.MaxUint32}}},
	{Op: OpTxn, Else: []TxnOp{{Type: TxnDelete, Key: "x"}}},
	{Op: OpTxn, Compares: []Compare{{Target: CompareExists, Result: CompareNotEqual, Key: "e"}}},
	{ClientID: 5, Seq: 11, AckedBelow: 11, Op: OpSessionKeepAliveBatch, SessionIDs: []uint64{1, math.MaxUint64, 3}},
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
		// Coordination fields come after Limit, in the order of the package
		// comment.
		{Command{Op: OpSessionOpen, TTLMs: 5000}, "9c00000007a0c0c0c0a000" + "00cd1388"},
		{Command{ClientID: 1, Seq: 2, Op: OpLockAcquire, SessionID: 3, Name: "l", Wait: true, LockDelayMs: 100},
			"dc00100102000ba0c0c0c0a000" + "0300a16c00c364"},
		{Command{Op: OpClock, Now: 1000}, "dc001100000016a0c0c0c0a000" + "0000a000c200cd03e8"},
		{Command{Op: OpPut, Key: "k", FenceName: "l", FenceToken: 9},
			"dc001300000001a16bc0c0c0a000" + "0000a000c20000a16c09"},
		{Command{Op: OpQuotaSet, Quota: 64 << 10},
			"dc00180000001ca0c0c0c0a000" + "0000a000c20000a000" + "00000000ce00010000"},
		// The level (protocol 5) is the field after Quota.
		{Command{Op: OpLevel, Level: 5},
			"dc00190000001fa0c0c0c0a000" + "0000a000c20000a000" + "0000000000" + "05"},
		// A keep-alive batch's ids (protocol 12) come after Else.
		{Command{Op: OpSessionKeepAliveBatch, SessionIDs: []uint64{3, 300}},
			"dc00200000002fa0c0c0c0a000" + "0000a000c20000a000" + "0000000000" + "00909090" + "a0a000" + "9203cd012c"},
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
		{"too many fields", "dc0014" + strings.Repeat("00", 20)},
		{"a field after Level", "dc001a0000001fa0c0c0c0a000" + "0000a000c20000a000" + "0000000000" + "05" + "00"},
		{"negative level", "dc00190000001fa0c0c0c0a000" + "0000a000c20000a000" + "0000000000" + "ff"},
		{"int wait", "9f0000000ba0c0c0c0a000" + "0000a000" + "01"},
		{"nil wait", "9f0000000ba0c0c0c0a000" + "0000a000" + "c0"},
		{"bin name", "9d0000000ba0c0c0c0a000" + "0000c4016c"},
		{"negative now", "dc001100000016a0c0c0c0a000" + "0000a000c200ff"},
		{"str fence token", "dc001300000001a16bc0c0c0a000" + "0000a000c20000a16ca131"},
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
	for op, want := range map[Op]string{
		OpPut: "put", OpGet: "get", OpDelete: "delete", OpCAS: "cas", OpList: "list", 0: "op(0)", 6: "op(6)",
		OpSessionOpen: "session-open", OpSessionKeepAlive: "session-keepalive", OpSessionClose: "session-close",
		10: "op(10)", OpLockAcquire: "lock-acquire", OpLockRelease: "lock-release", OpLockCheck: "lock-check", 14: "op(14)",
		OpCampaign: "campaign", OpProclaim: "proclaim", OpResign: "resign", OpLeader: "leader",
		19: "op(19)", 20: "op(20)", 21: "op(21)", OpClock: "clock", 23: "op(23)", 255: "op(255)",
		OpQuotaSet: "quota-set", 29: "op(29)", OpQuotaDefault: "quota-default", OpLevel: "level", OpTxn: "txn", OpUserAdd: "user-add", OpAuthDisable: "auth-disable", 43: "op(43)",
		OpSessionKeepAliveBatch: "session-keepalive-batch",
	} {
		if got := op.String(); got != want {
			t.Errorf("Op(%d).String() = %q, want %q", uint8(op), got, want)
		}
	}
}

// fuzzSetup prepares a state with something of every kind: sessions 1-3,
// lock "l" held by 1 (token 1) with 2 waiting, lock "m" in a lock-delay
// with 3 waiting, election "e" led by 1 with 2 as candidate.
var fuzzSetup = []Command{
	openCmd(60000), openCmd(60000), openCmd(60000), openCmd(1000), clockCmd(0),
	cs(1, 1, acquireCmd("l", 1, true, 0)), cs(2, 1, acquireCmd("l", 2, true, 0)),
	cs(4, 1, acquireCmd("m", 4, true, 5000)), cs(3, 1, acquireCmd("m", 3, true, 0)),
	cs(1, 2, campaignCmd("e", 1, "a")), cs(2, 2, campaignCmd("e", 2, "b")),
	putCmd("k", "v"), clockCmd(1000),
}

// FuzzDecodeCommand: DecodeCommand never panics; whatever it accepts
// re-encodes canonically and applies without panicking.
func FuzzDecodeCommand(f *testing.F) {
	for _, c := range sampleCommands {
		if b := EncodeCommand(&c); len(b) < 1000 {
			f.Add(b)
		}
	}
	for _, s := range []string{"", "c1", "90", "9b", "dc0000", "dd7fffffff", "9500000002dbffffffff6b", "9400000000cd0100", "9200ca00000000",
		"dc00100102000ba0c0c0c0a0000300a16c00c364", "9f0000000ba0c0c0c0a0000000a00001", "dc001300000001a16bc0c0c0a0000000a000c20000a16c09",
		"dc001300000001a16bc0c0c0a0000000a000c20000a16cff", "dc001100000016a0c0c0c0a0000000a000c200cfffffffffffffffff"} {
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
		// Again on a state with sessions, locks, waiters and elections,
		// followed by a clock step: the invariants must survive whatever
		// the command is.
		h := newSMHarness(t, SMOptions{})
		for _, c := range fuzzSetup {
			h.do(c)
		}
		h.sm.Apply(h.slot, b)
		h.sm.Apply(h.slot, b)
		checkCoordInvariants(t, h.sm)
		h.do(clockCmd(h.sm.Clock() + 1500))
		checkCoordInvariants(t, h.sm)
		h.sm.TakeAnswers()
		// And at LevelDedupBytes under a bound of a few results, so that
		// the command meets the byte bound too.
		h = newSMHarness(t, SMOptions{DedupBytesMax: 4 * dedupResultOverhead})
		h.do(Command{Op: OpLevel, Level: LevelDedupBytes})
		for _, c := range fuzzSetup {
			h.do(c)
		}
		h.sm.Apply(h.slot, b)
		h.sm.Apply(h.slot, b)
		h.do(clockCmd(h.sm.Clock() + 1500))
		checkCoordInvariants(t, h.sm)
		checkDedupBytes(t, h.sm)
		h.sm.TakeAnswers()
	})
}

// TestFuzzCorpus checks the sample commands' seeds in the corpus of
// FuzzDecodeCommand under testdata/fuzz; UPDATE_FUZZ_CORPUS=1 regenerates
// them. (Package service's TestFuzzCorpus adds the commands the node
// proposes for the golden wire requests.)
func TestFuzzCorpus(t *testing.T) {
	commands := map[string][]any{}
	for i, c := range sampleCommands {
		if b := EncodeCommand(&c); len(b) < 4096 {
			commands[fmt.Sprintf("sample-%02d-%s", i, strings.ToLower(c.Op.String()))] = []any{b}
		}
	}
	fuzzcorpus.Sync(t, "FuzzDecodeCommand", commands)
}
