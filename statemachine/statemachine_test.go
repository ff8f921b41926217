package statemachine

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/paxosd/paxosd/paxos"
)

// smHarness applies commands to a state machine, one slot each.
type smHarness struct {
	t    testing.TB
	sm   *StateMachine
	slot paxos.Slot
}

func newSMHarness(t testing.TB, opts SMOptions) *smHarness {
	return &smHarness{t: t, sm: NewStateMachine(opts)}
}

// do encodes c and applies it in the next slot.
func (h *smHarness) do(c Command) Result {
	h.t.Helper()
	h.slot++
	return h.sm.Apply(h.slot, EncodeCommand(&c))
}

func putCmd(key, value string) Command {
	return Command{Op: OpPut, Key: key, Value: []byte(value)}
}
func getCmd(key string) Command { return Command{Op: OpGet, Key: key} }
func delCmd(key string) Command { return Command{Op: OpDelete, Key: key} }
func listCmd(prefix string, limit uint32) Command {
	return Command{Op: OpList, Prefix: prefix, Limit: limit}
}
func casValueCmd(key, prev, value string) Command {
	return Command{Op: OpCAS, Key: key, Value: []byte(value), PrevValue: []byte(prev), HasPrevValue: true}
}
func casRevCmd(key string, prev uint64, value string) Command {
	return Command{Op: OpCAS, Key: key, Value: []byte(value), PrevRevision: prev, HasPrevRevision: true}
}

func kvEqual(a, b KV) bool {
	return a.Key == b.Key && bytes.Equal(a.Value, b.Value) && a.CreateRevision == b.CreateRevision &&
		a.ModRevision == b.ModRevision && a.Version == b.Version
}

// errClass maps an error to the sentinel it wraps, for comparing results.
func errClass(err error) error {
	for _, s := range []error{ErrStaleRequest, ErrNotFound, ErrInvalid, ErrSessionExpired, ErrLockHeld,
		ErrNotHeld, ErrCanceled, ErrFenced, ErrNotElectionLeader, ErrCompacted} {
		if errors.Is(err, s) {
			return s
		}
	}
	return err
}

func resultEqual(a, b Result) bool {
	if errClass(a.Err) != errClass(b.Err) || a.Revision != b.Revision || a.Found != b.Found ||
		!kvEqual(a.KV, b.KV) || len(a.KVs) != len(b.KVs) || a.More != b.More || a.Succeeded != b.Succeeded ||
		a.Token != b.Token || a.Pending != b.Pending || a.Held != b.Held ||
		fmt.Sprint(a.Session) != fmt.Sprint(b.Session) || fmt.Sprint(a.Lock) != fmt.Sprint(b.Lock) ||
		fmt.Sprint(a.Leader) != fmt.Sprint(b.Leader) {
		return false
	}
	for i := range a.KVs {
		if !kvEqual(a.KVs[i], b.KVs[i]) {
			return false
		}
	}
	return true
}

func describeResult(r Result) string {
	s := fmt.Sprintf("{err=%v rev=%d found=%v", r.Err, r.Revision, r.Found)
	if r.Found {
		s += fmt.Sprintf(" kv=%s", describeKV(r.KV))
	}
	if r.KVs != nil || r.More {
		var ks []string
		for _, kv := range r.KVs {
			ks = append(ks, describeKV(kv))
		}
		s += fmt.Sprintf(" kvs=[%s] more=%v", strings.Join(ks, " "), r.More)
	}
	if r.Succeeded {
		s += " succeeded"
	}
	if r.Session.ID != 0 {
		s += fmt.Sprintf(" session=%+v", r.Session)
	}
	if r.Token != 0 {
		s += fmt.Sprintf(" token=%d", r.Token)
	}
	if r.Pending {
		s += " pending"
	}
	if r.Held {
		s += " held"
	}
	if r.Lock.Name != "" {
		s += fmt.Sprintf(" lock=%+v", r.Lock)
	}
	if r.Leader.Name != "" {
		s += fmt.Sprintf(" leader=%+v", r.Leader)
	}
	return s + "}"
}

func describeKV(kv KV) string {
	return fmt.Sprintf("%s=%q@c%d/m%d/v%d", kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version)
}

func mkKV(key, value string, create, mod, version uint64) KV {
	return KV{Key: key, Value: []byte(value), CreateRevision: create, ModRevision: mod, Version: version}
}

// smStep is one command of a scripted table test and its expected result.
type smStep struct {
	cmd  Command
	want Result
}

func runSMSteps(t *testing.T, steps []smStep) *smHarness {
	t.Helper()
	h := newSMHarness(t, SMOptions{})
	for i, s := range steps {
		got := h.do(s.cmd)
		if !resultEqual(got, s.want) {
			t.Fatalf("step %d %s:\n got  %s\n want %s", i, s.cmd.String(), describeResult(got), describeResult(s.want))
		}
	}
	return h
}

func TestOps(t *testing.T) {
	tests := []struct {
		name  string
		steps []smStep
	}{
		{"put creates then updates", []smStep{
			{putCmd("a", "1"), Result{Revision: 1}},
			{putCmd("a", "2"), Result{Revision: 2, Found: true, KV: mkKV("a", "1", 1, 1, 1)}},
			{getCmd("a"), Result{Revision: 2, Found: true, KV: mkKV("a", "2", 1, 2, 2)}},
		}},
		{"put empty value", []smStep{
			{putCmd("a", ""), Result{Revision: 1}},
			{getCmd("a"), Result{Revision: 1, Found: true, KV: mkKV("a", "", 1, 1, 1)}},
		}},
		{"get missing", []smStep{
			{getCmd("a"), Result{Err: ErrNotFound, Revision: 0}},
			{putCmd("b", "1"), Result{Revision: 1}},
			{getCmd("a"), Result{Err: ErrNotFound, Revision: 1}},
		}},
		{"delete", []smStep{
			{putCmd("a", "1"), Result{Revision: 1}},
			{delCmd("a"), Result{Revision: 2, Found: true, KV: mkKV("a", "1", 1, 1, 1)}},
			{getCmd("a"), Result{Err: ErrNotFound, Revision: 2}},
			{delCmd("a"), Result{Err: ErrNotFound, Revision: 2}},
		}},
		{"recreate after delete resets version and create revision", []smStep{
			{putCmd("a", "1"), Result{Revision: 1}},
			{putCmd("a", "2"), Result{Revision: 2, Found: true, KV: mkKV("a", "1", 1, 1, 1)}},
			{delCmd("a"), Result{Revision: 3, Found: true, KV: mkKV("a", "2", 1, 2, 2)}},
			{putCmd("a", "3"), Result{Revision: 4}},
			{getCmd("a"), Result{Revision: 4, Found: true, KV: mkKV("a", "3", 4, 4, 1)}},
		}},
		{"cas on value", []smStep{
			{casValueCmd("a", "", "x"), Result{Revision: 0}}, // missing key never matches a value
			{putCmd("a", "1"), Result{Revision: 1}},
			{casValueCmd("a", "2", "x"), Result{Revision: 1, Found: true, KV: mkKV("a", "1", 1, 1, 1)}},
			{casValueCmd("a", "1", "x"), Result{Revision: 2, Found: true, KV: mkKV("a", "1", 1, 1, 1), Succeeded: true}},
			{getCmd("a"), Result{Revision: 2, Found: true, KV: mkKV("a", "x", 1, 2, 2)}},
		}},
		{"cas on empty value", []smStep{
			{putCmd("a", ""), Result{Revision: 1}},
			{casValueCmd("a", "", "y"), Result{Revision: 2, Found: true, KV: mkKV("a", "", 1, 1, 1), Succeeded: true}},
		}},
		{"cas on revision", []smStep{
			{putCmd("a", "1"), Result{Revision: 1}},
			{putCmd("b", "1"), Result{Revision: 2}},
			{casRevCmd("a", 2, "x"), Result{Revision: 2, Found: true, KV: mkKV("a", "1", 1, 1, 1)}},
			{casRevCmd("a", 1, "x"), Result{Revision: 3, Found: true, KV: mkKV("a", "1", 1, 1, 1), Succeeded: true}},
			{casRevCmd("a", 1, "y"), Result{Revision: 3, Found: true, KV: mkKV("a", "x", 1, 3, 2)}},
			{casRevCmd("c", 5, "y"), Result{Revision: 3}},
		}},
		{"cas revision 0 is create-only", []smStep{
			{casRevCmd("a", 0, "1"), Result{Revision: 1, Succeeded: true}},
			{casRevCmd("a", 0, "2"), Result{Revision: 1, Found: true, KV: mkKV("a", "1", 1, 1, 1)}},
			{getCmd("a"), Result{Revision: 1, Found: true, KV: mkKV("a", "1", 1, 1, 1)}},
			{delCmd("a"), Result{Revision: 2, Found: true, KV: mkKV("a", "1", 1, 1, 1)}},
			{casRevCmd("a", 0, "3"), Result{Revision: 3, Succeeded: true}},
		}},
		{"cas on value and revision", []smStep{
			{putCmd("a", "1"), Result{Revision: 1}},
			{Command{Op: OpCAS, Key: "a", Value: []byte("x"), PrevValue: []byte("1"), HasPrevValue: true, PrevRevision: 7, HasPrevRevision: true},
				Result{Revision: 1, Found: true, KV: mkKV("a", "1", 1, 1, 1)}},
			{Command{Op: OpCAS, Key: "a", Value: []byte("x"), PrevValue: []byte("1"), HasPrevValue: true, PrevRevision: 1, HasPrevRevision: true},
				Result{Revision: 2, Found: true, KV: mkKV("a", "1", 1, 1, 1), Succeeded: true}},
		}},
		{"list", []smStep{
			{putCmd("b/2", "x"), Result{Revision: 1}},
			{putCmd("a", "x"), Result{Revision: 2}},
			{putCmd("b/1", "y"), Result{Revision: 3}},
			{putCmd("b", "z"), Result{Revision: 4}},
			{putCmd("c", "w"), Result{Revision: 5}},
			{listCmd("b", 0), Result{Revision: 5, KVs: []KV{mkKV("b", "z", 4, 4, 1), mkKV("b/1", "y", 3, 3, 1), mkKV("b/2", "x", 1, 1, 1)}}},
			{listCmd("b/", 0), Result{Revision: 5, KVs: []KV{mkKV("b/1", "y", 3, 3, 1), mkKV("b/2", "x", 1, 1, 1)}}},
			{listCmd("b", 2), Result{Revision: 5, KVs: []KV{mkKV("b", "z", 4, 4, 1), mkKV("b/1", "y", 3, 3, 1)}, More: true}},
			{listCmd("b", 3), Result{Revision: 5, KVs: []KV{mkKV("b", "z", 4, 4, 1), mkKV("b/1", "y", 3, 3, 1), mkKV("b/2", "x", 1, 1, 1)}}},
			{listCmd("", 2), Result{Revision: 5, KVs: []KV{mkKV("a", "x", 2, 2, 1), mkKV("b", "z", 4, 4, 1)}, More: true}},
			{listCmd("bz", 0), Result{Revision: 5}},
			{listCmd("d", 0), Result{Revision: 5}},
			{delCmd("b/1"), Result{Revision: 6, Found: true, KV: mkKV("b/1", "y", 3, 3, 1)}},
			{listCmd("b/", 0), Result{Revision: 6, KVs: []KV{mkKV("b/2", "x", 1, 1, 1)}}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runSMSteps(t, tt.steps) })
	}
}

// TestRevisionBookkeeping checks the etcd invariants on every key after
// every command of a random run: CreateRevision <= ModRevision <= Revision,
// Version >= 1, and that only changes move the revision.
func TestRevisionBookkeeping(t *testing.T) {
	h := newSMHarness(t, SMOptions{})
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		before := h.sm.Revision()
		key := fmt.Sprintf("k%d", rng.IntN(20))
		var r Result
		var changed bool
		switch rng.IntN(3) {
		case 0:
			r = h.do(putCmd(key, "v"))
			changed = true
		case 1:
			r = h.do(delCmd(key))
			changed = r.Err == nil
		case 2:
			cur, ok := h.sm.Get(key)
			r = h.do(casRevCmd(key, cur.ModRevision, "w"))
			changed = r.Succeeded
			if !r.Succeeded && ok {
				t.Fatalf("cas on the current mod revision failed: %s", describeResult(r))
			}
		}
		want := before
		if changed {
			want++
		}
		if r.Revision != want || h.sm.Revision() != want {
			t.Fatalf("revision %d (result %d), want %d", h.sm.Revision(), r.Revision, want)
		}
		for _, kv := range h.sm.List("", 0) {
			if kv.CreateRevision > kv.ModRevision || kv.ModRevision > want || kv.Version < 1 || kv.CreateRevision == 0 {
				t.Fatalf("bad bookkeeping %s at revision %d", describeKV(kv), want)
			}
		}
	}
}

func TestInvalid(t *testing.T) {
	big := strings.Repeat("k", 4097)
	tests := []struct {
		name     string
		cmd      Command
		tooLarge bool
	}{
		{"bad op 0", Command{Op: 0, Key: "a"}, false},
		{"bad op 6", Command{Op: 6, Key: "a"}, false},
		{"bad op 255", Command{Op: 255, Key: "a"}, false},
		{"put empty key", putCmd("", "v"), false},
		{"get empty key", getCmd(""), false},
		{"delete empty key", delCmd(""), false},
		{"cas empty key", casRevCmd("", 0, "v"), false},
		{"put key too long", putCmd(big, "v"), true},
		{"get key too long", getCmd(big), true},
		{"delete key too long", delCmd(big), true},
		{"list prefix too long", listCmd(big, 0), true},
		{"put value too long", Command{Op: OpPut, Key: "a", Value: make([]byte, 1<<20+1)}, true},
		{"cas value too long", Command{Op: OpCAS, Key: "a", Value: make([]byte, 1<<20+1), HasPrevRevision: true}, true},
		{"cas prev value too long", Command{Op: OpCAS, Key: "a", PrevValue: make([]byte, 1<<20+1), HasPrevValue: true}, true},
		{"cas without condition", Command{Op: OpCAS, Key: "a", Value: []byte("v")}, false},
		{"acked-below above seq", Command{ClientID: 1, Seq: 3, AckedBelow: 4, Op: OpPut, Key: "a"}, false},
		{"wire-only op 10", Command{Op: 10, Name: "a", SessionID: 1}, false},
		{"wire-only op 14", Command{Op: 14, Name: "a", SessionID: 1}, false},
		{"wire-only op 19", Command{Op: 19, Name: "a"}, false},
		{"wire-only op 20", Command{Op: 20, Key: "a"}, false},
		{"wire-only op 21", Command{Op: 21}, false},
		{"op 23", Command{Op: 23}, false},
		{"session TTL 0", Command{Op: OpSessionOpen}, false},
		{"session TTL below 1s", Command{Op: OpSessionOpen, TTLMs: 999}, false},
		{"session TTL above 1h", Command{Op: OpSessionOpen, TTLMs: 3600001}, false},
		{"keep-alive without session", Command{Op: OpSessionKeepAlive}, false},
		{"close without session", Command{Op: OpSessionClose}, false},
		{"acquire without name", Command{Op: OpLockAcquire, SessionID: 1}, false},
		{"acquire without session", Command{Op: OpLockAcquire, Name: "l"}, false},
		{"acquire name too long", Command{Op: OpLockAcquire, Name: big, SessionID: 1}, true},
		{"acquire lock-delay above 1 min", Command{Op: OpLockAcquire, Name: "l", SessionID: 1, LockDelayMs: 60001}, false},
		{"release without name", Command{Op: OpLockRelease, SessionID: 1}, false},
		{"release without session", Command{Op: OpLockRelease, Name: "l"}, false},
		{"check without name", Command{Op: OpLockCheck, Token: 1}, false},
		{"campaign without name", Command{Op: OpCampaign, SessionID: 1}, false},
		{"campaign without session", Command{Op: OpCampaign, Name: "e"}, false},
		{"campaign value too long", Command{Op: OpCampaign, Name: "e", SessionID: 1, Value: make([]byte, 1<<20+1)}, true},
		{"proclaim value too long", Command{Op: OpProclaim, Name: "e", SessionID: 1, Value: make([]byte, 1<<20+1)}, true},
		{"proclaim name too long", Command{Op: OpProclaim, Name: big, SessionID: 1}, true},
		{"resign without session", Command{Op: OpResign, Name: "e"}, false},
		{"leader without name", Command{Op: OpLeader}, false},
		{"clock from a client", Command{ClientID: 1, Seq: 5, Op: OpClock, Now: 10}, false},
		{"fence token without name", Command{Op: OpPut, Key: "a", FenceToken: 1}, false},
		{"fence name too long", Command{Op: OpDelete, Key: "a", FenceName: big, FenceToken: 1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newSMHarness(t, SMOptions{})
			h.do(putCmd("a", "1"))
			h.do(Command{ClientID: 1, Seq: 1, Op: OpPut, Key: "b"})
			before := h.sm.Hash()
			r := h.do(tt.cmd)
			if !errors.Is(r.Err, ErrInvalid) {
				t.Fatalf("got %s, want ErrInvalid", describeResult(r))
			}
			if errors.Is(r.Err, ErrTooLarge) != tt.tooLarge {
				t.Fatalf("error %v: ErrTooLarge is %v, want %v", r.Err, !tt.tooLarge, tt.tooLarge)
			}
			if r.Revision != 2 {
				t.Fatalf("revision %d, want 2", r.Revision)
			}
			h.sm.applied = 2 // Hash covers Applied, which did advance
			if h.sm.Hash() != before {
				t.Fatalf("an invalid command changed the state")
			}
		})
	}
	t.Run("limits follow options", func(t *testing.T) {
		h := newSMHarness(t, SMOptions{KeyBytesMax: 3, ValueBytesMax: 2})
		for _, c := range []Command{putCmd("abcd", ""), putCmd("a", "xyz")} {
			if r := h.do(c); !errors.Is(r.Err, ErrTooLarge) {
				t.Fatalf("%s: got %s, want ErrTooLarge", c.String(), describeResult(r))
			}
		}
		for _, c := range []Command{putCmd("abc", "xy")} {
			if r := h.do(c); r.Err != nil {
				t.Fatalf("%s: got %s", c.String(), describeResult(r))
			}
		}
	})
	t.Run("undecodable", func(t *testing.T) {
		sm := NewStateMachine(SMOptions{})
		for _, b := range [][]byte{nil, {0xc1}, {0x91}, []byte("garbage")} {
			if r := sm.Apply(1, b); !errors.Is(r.Err, ErrInvalid) {
				t.Fatalf("%x: got %s, want ErrInvalid", b, describeResult(r))
			}
		}
		if sm.Revision() != 0 || len(sm.dedup.clients) != 0 || sm.kv.len() != 0 {
			t.Fatalf("undecodable commands changed the state")
		}
	})
}

func TestApplySlotOrder(t *testing.T) {
	sm := NewStateMachine(SMOptions{})
	b := EncodeCommand(&Command{Op: OpPut, Key: "a"})
	sm.Apply(5, b)
	sm.Apply(5, b) // commands of one slot share it
	if sm.Applied() != 5 {
		t.Fatalf("applied %d, want 5", sm.Applied())
	}
	res := sm.ApplyValue(6, paxos.Value{Kind: paxos.ValueBatch, Cmds: [][]byte{b, b, {0xc1}}})
	if len(res) != 3 || res[0].Revision != 3 || res[1].Revision != 4 || !errors.Is(res[2].Err, ErrInvalid) {
		t.Fatalf("batch results %v", res)
	}
	if res := sm.ApplyValue(7, paxos.Noop); res != nil || sm.Applied() != 7 || sm.Revision() != 4 {
		t.Fatalf("no-op: results %v, applied %d, revision %d", res, sm.Applied(), sm.Revision())
	}
	defer func() {
		if recover() == nil {
			t.Fatalf("applying slot 6 after slot 7 did not panic")
		}
	}()
	sm.Apply(6, b)
}

func TestOptions(t *testing.T) {
	var o SMOptions
	o.EnsureDefaults()
	if o != (SMOptions{KeyBytesMax: 4096, ValueBytesMax: 1 << 20, ClientsMax: 100000, ResultsPerClientMax: 1024,
		KVHistoryMax: 16384, KVHistoryBytesMax: 16 << 20, ElectionHistoryMax: 1024, DedupBytesMax: 64 << 20}) {
		t.Fatalf("defaults %+v", o)
	}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []SMOptions{{ClientsMax: -1}, {KVHistoryMax: -1}, {KVHistoryBytesMax: -1}, {ElectionHistoryMax: -1}, {DedupBytesMax: -1}} {
		if err := bad.Validate(); err == nil {
			t.Fatalf("%+v accepted", bad)
		}
	}
}

// cmdGen produces a random but valid-looking stream of commands from a few
// clients over a few keys, with retries, stale retries, acks and the odd
// invalid or undecodable command.
type cmdGen struct {
	rng     *rand.Rand
	seq     map[uint64]uint64 // client -> last seq used
	acked   map[uint64]uint64 // client -> AckedBelow it sends
	clients int
}

func newCmdGen(seed uint64, clients int) *cmdGen {
	return &cmdGen{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), seq: map[uint64]uint64{}, acked: map[uint64]uint64{}, clients: clients}
}

// notLogOps are operation numbers that never appear in the log.
var notLogOps = []Op{0, 6, 10, 14, 19, 20, 21, 23, 200, 255}

var genKeys = []string{"a", "ab", "abc", "b", "b/1", "b/2", "b/3", "c", "cc", "d/x/y"}

func (g *cmdGen) value() []byte {
	n := g.rng.IntN(4)
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + g.rng.IntN(3))
	}
	return b
}

// next returns the next command; cur looks up a key's current state so
// that some cas commands succeed.
func (g *cmdGen) next(cur func(string) (KV, bool)) Command {
	r := g.rng
	var c Command
	c.ClientID = uint64(r.IntN(g.clients + 1)) // 0 = no dedup
	if c.ClientID != 0 {
		last := g.seq[c.ClientID]
		switch x := r.IntN(10); {
		case x == 0 && last > 0: // retry a recent seq, possibly stale
			c.Seq = last - uint64(r.IntN(int(min(last, 5))))
		default:
			last++
			g.seq[c.ClientID] = last
			c.Seq = last
		}
		if r.IntN(4) == 0 && g.acked[c.ClientID] < c.Seq {
			g.acked[c.ClientID] += uint64(r.IntN(int(c.Seq-g.acked[c.ClientID]) + 1))
		}
		c.AckedBelow = min(g.acked[c.ClientID], c.Seq)
	}
	c.Key = genKeys[r.IntN(len(genKeys))]
	switch x := r.IntN(100); {
	case x < 30:
		c.Op, c.Value = OpPut, g.value()
	case x < 45:
		c.Op = OpGet
	case x < 60:
		c.Op = OpDelete
	case x < 80:
		c.Op, c.Value = OpCAS, g.value()
		kv, ok := cur(c.Key)
		if r.IntN(2) == 0 {
			c.HasPrevValue = true
			c.PrevValue = g.value()
			if ok && r.IntN(2) == 0 {
				c.PrevValue = kv.Value
			}
		}
		if !c.HasPrevValue || r.IntN(3) == 0 {
			c.HasPrevRevision = true
			c.PrevRevision = uint64(r.IntN(3))
			if ok && r.IntN(2) == 0 {
				c.PrevRevision = kv.ModRevision
			}
		}
	case x < 95:
		c.Op, c.Key = OpList, ""
		k := genKeys[r.IntN(len(genKeys))]
		c.Prefix = k[:r.IntN(len(k)+1)]
		c.Limit = uint32(r.IntN(4))
	case x < 98:
		c.Op, c.Key = OpPut, "" // invalid
	default:
		c.Op = notLogOps[r.IntN(len(notLogOps))] // invalid
	}
	return c
}

// TestDeterminism feeds two state machines the same seeded stream (with
// garbage mixed in) and checks that they return the same results and end
// with the same Hash, and that a different stream gives a different Hash.
func TestDeterminism(t *testing.T) {
	hashes := map[uint64]uint64{}
	for _, seed := range []uint64{1, 2, 3} {
		a, b := NewStateMachine(SMOptions{ClientsMax: 3, ResultsPerClientMax: 8}), NewStateMachine(SMOptions{ClientsMax: 3, ResultsPerClientMax: 8})
		g := newCmdGen(seed, 6)
		slot := paxos.Slot(1)
		for i := 0; i < 3000; i++ {
			if g.rng.IntN(3) == 0 {
				slot++
			}
			var cmd []byte
			if g.rng.IntN(50) == 0 {
				cmd = make([]byte, g.rng.IntN(8))
				for j := range cmd {
					cmd[j] = byte(g.rng.Uint32())
				}
			} else {
				c := g.next(a.Get)
				cmd = EncodeCommand(&c)
			}
			ra, rb := a.Apply(slot, cmd), b.Apply(slot, slices.Clone(cmd))
			if !resultEqual(ra, rb) || fmt.Sprint(ra.Err) != fmt.Sprint(rb.Err) {
				t.Fatalf("seed %d command %d: results differ: %s vs %s", seed, i, describeResult(ra), describeResult(rb))
			}
		}
		if a.Hash() != b.Hash() {
			t.Fatalf("seed %d: hashes differ", seed)
		}
		if a.Revision() == 0 || len(a.dedup.clients) != 3 {
			t.Fatalf("seed %d: the stream did too little: revision %d, %d clients", seed, a.Revision(), len(a.dedup.clients))
		}
		hashes[seed] = a.Hash()
	}
	if hashes[1] == hashes[2] || hashes[2] == hashes[3] {
		t.Fatalf("different streams gave the same hash")
	}
}
