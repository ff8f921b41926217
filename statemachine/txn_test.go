package statemachine

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func cmpValue(key string, r CompareResult, v string) Compare {
	return Compare{Target: CompareValue, Result: r, Key: key, Value: []byte(v)}
}

func cmpNum(t CompareTarget, key string, r CompareResult, n uint64) Compare {
	return Compare{Target: t, Result: r, Key: key, Number: n}
}

func tPut(k, v string) TxnOp         { return TxnOp{Type: TxnPut, Key: k, Value: []byte(v)} }
func tDel(k string) TxnOp            { return TxnOp{Type: TxnDelete, Key: k} }
func tDelPrefix(p string) TxnOp      { return TxnOp{Type: TxnDelete, Key: p, Prefix: true} }
func tGet(k string) TxnOp            { return TxnOp{Type: TxnGet, Key: k} }
func tList(p string, l uint32) TxnOp { return TxnOp{Type: TxnGet, Key: p, Prefix: true, Limit: l} }

func txnCmd(cmps []Compare, then, els []TxnOp) Command {
	return Command{Op: OpTxn, Compares: cmps, Then: then, Else: els}
}

// txnHarness is a state machine at LevelTxn.
func txnHarness(t testing.TB, opts SMOptions) *smHarness {
	h := newSMHarness(t, opts)
	atLevel(h, LevelTxn)
	return h
}

func (h *smHarness) txn(c Command) Result {
	h.t.Helper()
	r := h.do(c)
	if r.Err != nil {
		h.t.Fatalf("%s: %v", c.String(), r.Err)
	}
	return r
}

// TestTxnBelowLevel: below LevelTxn a transaction is refused as invalid
// and changes nothing — no revision, no duplicate-table entry — exactly
// as a build without transactions treats the unknown op 32 (whose log
// command, with fields it does not know, it cannot even decode): a
// transaction that reaches the log of a mixed cluster leaves every
// replica's state the same. At LevelTxn it applies.
func TestTxnBelowLevel(t *testing.T) {
	c := cs(1, 1, txnCmd(nil, []TxnOp{tPut("k", "v")}, nil))
	for _, level := range []uint64{0, LevelDedupBytes, LevelHashEncoding} {
		h := newSMHarness(t, SMOptions{})
		atLevel(h, level)
		// old: what an older build does with the same log entry, an
		// unknown op (here, one this state machine does not know either).
		old := newSMHarness(t, SMOptions{})
		atLevel(old, level)
		r := h.do(c)
		if !errors.Is(r.Err, ErrInvalid) || !strings.Contains(r.Err.Error(), "cluster level 8") {
			t.Fatalf("level %d: %v, want ErrInvalid naming level 8", level, r.Err)
		}
		o := old.do(cs(1, 1, Command{Op: Op(99), Key: "k"}))
		if !errors.Is(o.Err, ErrInvalid) {
			t.Fatalf("level %d: unknown op: %v", level, o.Err)
		}
		if h.sm.Revision() != 0 || len(h.sm.dedup.clients) != 0 || h.sm.Hash() != old.sm.Hash() {
			t.Fatalf("level %d: a refused txn changed the state (revision %d, %d clients, hash %x, an older build's %x)",
				level, h.sm.Revision(), len(h.sm.dedup.clients), h.sm.Hash(), old.sm.Hash())
		}
	}
	h := txnHarness(t, SMOptions{})
	if r := h.do(c); r.Err != nil || !r.Succeeded || r.Revision != 1 {
		t.Fatalf("at level %d: %s", LevelTxn, describeResult(r))
	}
}

// TestTxnCompares: each compare target with each result, on a present
// and a missing key, and a lock's token held and free.
func TestTxnCompares(t *testing.T) {
	h := txnHarness(t, SMOptions{})
	h.do(putCmd("k", "m"))    // rev 1: create 1, mod 1, version 1
	h.do(putCmd("k", "m"))    // rev 2: mod 2, version 2
	h.do(putCmd("other", "")) // rev 3
	sid := h.do(openCmd(10000)).Session.ID
	tok := h.do(acquireCmd("L", sid, false, 0)).Token
	if tok == 0 {
		t.Fatal("no token")
	}
	cases := []struct {
		c    Compare
		want bool
	}{
		{cmpValue("k", CompareEqual, "m"), true},
		{cmpValue("k", CompareEqual, "x"), false},
		{cmpValue("k", CompareNotEqual, "x"), true},
		{cmpValue("k", CompareLess, "n"), true},
		{cmpValue("k", CompareLess, "m"), false},
		{cmpValue("k", CompareGreater, "l"), true},
		{cmpValue("other", CompareEqual, ""), true},
		{cmpValue("missing", CompareEqual, ""), false},     // a value compare on a missing key never holds
		{cmpValue("missing", CompareNotEqual, "x"), false}, // not even !=
		{cmpNum(CompareVersion, "k", CompareEqual, 2), true},
		{cmpNum(CompareVersion, "k", CompareGreater, 1), true},
		{cmpNum(CompareVersion, "k", CompareLess, 2), false},
		{cmpNum(CompareVersion, "missing", CompareEqual, 0), true},
		{cmpNum(CompareCreate, "k", CompareEqual, 1), true},
		{cmpNum(CompareCreate, "k", CompareNotEqual, 1), false},
		{cmpNum(CompareCreate, "missing", CompareEqual, 0), true},
		{cmpNum(CompareMod, "k", CompareEqual, 2), true},
		{cmpNum(CompareMod, "k", CompareLess, 42), true},
		{cmpNum(CompareMod, "k", CompareGreater, 2), false},
		{cmpNum(CompareExists, "k", CompareEqual, 1), true},
		{cmpNum(CompareExists, "missing", CompareEqual, 1), false},
		{cmpNum(CompareExists, "missing", CompareEqual, 0), true},
		{cmpNum(CompareToken, "L", CompareEqual, tok), true},
		{cmpNum(CompareToken, "L", CompareEqual, tok-1), false},
		{cmpNum(CompareToken, "L", CompareGreater, 0), true},
		{cmpNum(CompareToken, "free", CompareEqual, 0), true},
	}
	for _, tc := range cases {
		r := h.txn(txnCmd([]Compare{tc.c}, []TxnOp{tGet("k")}, nil))
		if r.Succeeded != tc.want {
			t.Errorf("compare %+v: succeeded %v, want %v", tc.c, r.Succeeded, tc.want)
		}
	}
	// All must hold: one false compare among true ones fails the txn.
	r := h.txn(txnCmd([]Compare{cases[0].c, cases[1].c, cases[2].c}, nil, nil))
	if r.Succeeded {
		t.Error("a txn with one false compare succeeded")
	}
	// The token compare follows the lock: released, it is 0.
	h.do(releaseCmd("L", sid))
	if r := h.txn(txnCmd([]Compare{cmpNum(CompareToken, "L", CompareEqual, tok)}, nil, nil)); r.Succeeded {
		t.Error("token compare holds after the release")
	}
	if r := h.txn(txnCmd([]Compare{cmpNum(CompareToken, "L", CompareEqual, 0)}, nil, nil)); !r.Succeeded {
		t.Error("token of a free lock is not 0")
	}
}

// TestTxnOps: every operation, the branch taken, and one revision shared
// by every write of the branch: the keys' mod revisions, the events (one
// per key written, all at that revision, returned together by KVEvents
// whatever its max), and reads seeing the writes before them.
func TestTxnOps(t *testing.T) {
	h := txnHarness(t, SMOptions{})
	for _, k := range []string{"a", "p/1", "p/2", "p/3", "q"} {
		h.do(putCmd(k, "old-"+k))
	}
	base := h.sm.Revision() // 5
	then := []TxnOp{
		tPut("a", "new"), tGet("a"), tDel("q"), tDel("missing"), tDelPrefix("p/"), tPut("b", "B"), tList("", 0), tList("", 1),
	}
	r := h.txn(txnCmd([]Compare{cmpValue("a", CompareEqual, "old-a")}, then, []TxnOp{tGet("a")}))
	rev := base + 1
	if !r.Succeeded || r.Revision != rev || len(r.Txn) != len(then) {
		t.Fatalf("txn: %s, %d results", describeResult(r), len(r.Txn))
	}
	res := r.Txn
	if !res[0].Found || string(res[0].KV.Value) != "old-a" {
		t.Errorf("put: previous %+v", res[0])
	}
	if !res[1].Found || string(res[1].KV.Value) != "new" || res[1].KV.ModRevision != rev || res[1].KV.Version != 2 {
		t.Errorf("get after put: %+v", res[1])
	}
	if res[2].Deleted != 1 || !res[2].Found || string(res[2].KV.Value) != "old-q" {
		t.Errorf("delete q: %+v", res[2])
	}
	if res[3].Deleted != 0 || res[3].Found {
		t.Errorf("delete of a missing key: %+v", res[3])
	}
	if res[4].Deleted != 3 {
		t.Errorf("prefix delete: %+v", res[4])
	}
	if res[5].Found || res[5].Type != TxnPut {
		t.Errorf("put of a new key: %+v", res[5])
	}
	if got := describeKVs(res[6].KVs); got != describeKVs(h.sm.List("", 0)) || len(res[6].KVs) != 2 || res[6].More {
		t.Errorf("list after the writes: %s", got) // a and b are left
	}
	if len(res[7].KVs) != 1 || !res[7].More || res[7].KVs[0].Key != "a" {
		t.Errorf("list with limit: %+v", res[7])
	}
	if h.sm.Revision() != rev {
		t.Fatalf("store revision %d after one txn from %d", h.sm.Revision(), base)
	}
	for _, k := range []string{"a", "b"} {
		if kv, ok := h.sm.Get(k); !ok || kv.ModRevision != rev {
			t.Errorf("%s: %+v, want mod revision %d", k, kv, rev)
		}
	}
	if kv, _ := h.sm.Get("b"); kv.CreateRevision != rev || kv.Version != 1 {
		t.Errorf("b: %+v", kv)
	}
	// The events: a put, 4 deletes, a put, all at rev, in the txn's order.
	evs, err := h.sm.KVEvents(rev, "", true, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := "put a, delete q, delete p/1, delete p/2, delete p/3, put b"
	if got := eventList(evs); got != want {
		t.Errorf("events of the txn (max 1): %s, want %s", got, want)
	}
	for _, ev := range evs {
		if ev.Revision != rev || ev.KV.ModRevision != rev {
			t.Errorf("event %+v not at revision %d", ev, rev)
		}
	}
	// A watch that stopped just before: max cuts only between revisions.
	h.do(putCmd("c", "C")) // rev+1
	evs, _ = h.sm.KVEvents(base, "", true, 2)
	if len(evs) != 7 || evs[0].Revision != base || evs[6].Revision != rev {
		t.Errorf("events from %d, max 2: %s", base, eventList(evs))
	}
	// Compares false: the else branch.
	r = h.txn(txnCmd([]Compare{cmpValue("a", CompareEqual, "old-a")}, []TxnOp{tPut("x", "1")}, []TxnOp{tGet("a"), tGet("nope")}))
	if r.Succeeded || len(r.Txn) != 2 || string(r.Txn[0].KV.Value) != "new" || r.Txn[1].Found || r.Revision != rev+1 {
		t.Errorf("else branch: %s %+v", describeResult(r), r.Txn)
	}
	if _, ok := h.sm.Get("x"); ok {
		t.Error("the then branch ran too")
	}
	// Writes that change nothing (a delete of nothing) move no revision,
	// and neither do reads or an empty txn.
	for _, c := range []Command{
		txnCmd(nil, []TxnOp{tDel("nope"), tDelPrefix("zzz/")}, nil),
		txnCmd(nil, []TxnOp{tGet("a")}, nil),
		txnCmd(nil, nil, nil),
	} {
		if r := h.txn(c); r.Revision != rev+1 || h.sm.Revision() != rev+1 {
			t.Errorf("%s: revision %d", c.String(), h.sm.Revision())
		}
	}
}

func eventList(evs []KVEvent) string {
	var s []string
	for _, ev := range evs {
		s = append(s, ev.Type.String()+" "+ev.KV.Key)
	}
	return strings.Join(s, ", ")
}

// TestTxnLimits: the limits and the shape rules refuse a transaction as a
// whole, with a message naming the limit, and change nothing.
func TestTxnLimits(t *testing.T) {
	h := txnHarness(t, SMOptions{ValueBytesMax: 1000, KeyBytesMax: 100})
	h.do(putCmd("k", "v"))
	many := make([]TxnOp, TxnOpsMax+1)
	for i := range many {
		many[i] = tGet(fmt.Sprintf("k%d", i))
	}
	cases := []struct {
		c     Command
		large bool
		msg   string
	}{
		{txnCmd(nil, many, nil), true, "129 compares and operations, limit 128"},
		{txnCmd([]Compare{cmpValue("k", CompareEqual, "v")}, many[:64], many[:64]), true, "limit 128"},
		{txnCmd(nil, []TxnOp{tPut("a", strings.Repeat("x", 600)), tPut("b", strings.Repeat("x", 600))}, nil), true, "total 1202 bytes, limit 1000"},
		{txnCmd(nil, []TxnOp{tPut("a", "1"), tPut("a", "2")}, nil), false, `key "a" written twice`},
		{txnCmd(nil, []TxnOp{tPut("a", "1"), tDel("a")}, nil), false, `key "a" written twice`},
		{txnCmd(nil, nil, []TxnOp{tDel("a"), tDel("a")}), false, `else: key "a" written twice`},
		{txnCmd(nil, []TxnOp{tDelPrefix("p/"), tPut("p/x", "1")}, nil), false, `put of "p/x" overlaps the prefix delete of "p/"`},
		{txnCmd(nil, []TxnOp{tPut("p/x", "1"), tDelPrefix("p")}, nil), false, "overlaps the prefix delete"},
		{txnCmd(nil, []TxnOp{tDelPrefix("p/"), tDelPrefix("p/a")}, nil), false, "overlap"},
		{txnCmd(nil, []TxnOp{tDelPrefix("")}, nil), false, "non-empty prefix"},
		{txnCmd(nil, []TxnOp{tPut("", "v")}, nil), false, "empty key"},
		{txnCmd(nil, []TxnOp{{Type: TxnPut, Key: "a", Prefix: true}}, nil), false, "not a prefix"},
		{txnCmd(nil, []TxnOp{{Type: TxnGet, Key: "a", Value: []byte("v")}}, nil), false, "only a put takes a value"},
		{txnCmd(nil, []TxnOp{{Type: TxnGet, Key: "a", Limit: 3}}, nil), false, "only a prefix get takes a limit"},
		{txnCmd(nil, []TxnOp{{Type: 9, Key: "a"}}, nil), false, "unknown operation type 9"},
		{txnCmd([]Compare{{Target: 7, Result: CompareEqual, Key: "a"}}, nil, nil), false, "unknown compare target 7"},
		{txnCmd([]Compare{{Target: CompareMod, Result: 0, Key: "a"}}, nil, nil), false, "unknown compare result 0"},
		{txnCmd([]Compare{{Target: CompareMod, Result: CompareEqual}}, nil, nil), false, "compare 1: service: invalid argument: empty key"},
		{txnCmd([]Compare{{Target: CompareMod, Result: CompareEqual, Key: "a", Value: []byte("x")}}, nil, nil), false, "the others a number"},
		{txnCmd(nil, []TxnOp{tGet(strings.Repeat("k", 200))}, nil), true, "key is 200 bytes, limit 100"},
		{txnCmd([]Compare{cmpValue(strings.Repeat("k", 200), CompareEqual, "")}, nil, nil), true, "key is 200 bytes, limit 100"},
	}
	for _, tc := range cases {
		r := h.do(cs(1, uint64(h.slot+1), tc.c))
		if !errors.Is(r.Err, ErrInvalid) || errors.Is(r.Err, ErrTooLarge) != tc.large || !strings.Contains(r.Err.Error(), tc.msg) {
			t.Errorf("%s: %v, want ErrInvalid (too large: %v) saying %q", tc.c.String(), r.Err, tc.large, tc.msg)
		}
	}
	if h.sm.Revision() != 1 || len(h.sm.dedup.clients) != 0 {
		t.Fatalf("refused txns changed the state: revision %d, %d clients", h.sm.Revision(), len(h.sm.dedup.clients))
	}
	// Allowed: the same key in both branches, reads of written keys, a
	// prefix delete beside a key outside it, 128 operations.
	for _, c := range []Command{
		txnCmd(nil, []TxnOp{tPut("a", "1")}, []TxnOp{tPut("a", "2")}),
		txnCmd(nil, []TxnOp{tPut("a", "1"), tGet("a"), tList("a", 0)}, nil),
		txnCmd(nil, []TxnOp{tDelPrefix("p/"), tPut("q", "1"), tPut("p", "1")}, nil),
		txnCmd(nil, many[:TxnOpsMax], nil),
	} {
		h.txn(c)
	}
}

// TestTxnQuota: a branch whose writes together would grow the usage past
// the quota fails as a whole with the quota line; one that deletes what
// it writes passes even when full; the else branch is what is checked
// when the compares fail.
func TestTxnQuota(t *testing.T) {
	h := txnHarness(t, SMOptions{})
	h.do(Command{Op: OpQuotaSet, Quota: 100, ClientID: 9, Seq: 1})
	h.do(putCmd("a", strings.Repeat("x", 49))) // 50 bytes
	r := h.do(txnCmd(nil, []TxnOp{tPut("b", strings.Repeat("y", 29)), tPut("c", strings.Repeat("z", 29))}, nil))
	if !errors.Is(r.Err, ErrQuotaExceeded) || !strings.Contains(r.Err.Error(), "50.0 B of 100.0 B used; delete keys or raise it with paxosd quota set") {
		t.Fatalf("txn over the quota: %v", r.Err)
	}
	if _, ok := h.sm.Get("b"); ok || h.sm.Revision() != 1 || h.sm.Quota().Used != 50 {
		t.Fatalf("a refused txn wrote: revision %d, usage %d", h.sm.Revision(), h.sm.Quota().Used)
	}
	// Each put alone fits: only the whole is refused. Up to the quota:
	h.txn(txnCmd(nil, []TxnOp{tPut("b", strings.Repeat("y", 49))}, nil)) // 100: full
	// Full, but deleting a while writing as much: passes.
	h.txn(txnCmd(nil, []TxnOp{tDel("a"), tPut("c", strings.Repeat("z", 49))}, nil))
	if got := h.sm.Quota().Used; got != 100 {
		t.Fatalf("usage %d, want 100", got)
	}
	// The else branch is the one checked when a compare fails.
	r = h.do(txnCmd([]Compare{cmpNum(CompareExists, "a", CompareEqual, 1)}, nil, []TxnOp{tPut("d", strings.Repeat("w", 40))}))
	if !errors.Is(r.Err, ErrQuotaExceeded) {
		t.Fatalf("else branch over the quota: %v", r.Err)
	}
	r = h.do(txnCmd([]Compare{cmpNum(CompareExists, "a", CompareEqual, 0)}, nil, []TxnOp{tPut("d", strings.Repeat("w", 40))}))
	if r.Err != nil || !r.Succeeded {
		t.Fatalf("then branch (empty) refused: %v", r.Err)
	}
}

// TestTxnDedup: a transaction is one request with one (client, seq): a
// retry, even after the keys changed, is answered with the remembered
// result (the reads' values included) and writes nothing; so is a retry
// after a snapshot and restore (format 5 keeps the operations' results).
func TestTxnDedup(t *testing.T) {
	h := txnHarness(t, SMOptions{})
	h.do(putCmd("n", "1"))
	c := cs(5, 1, txnCmd([]Compare{cmpValue("n", CompareEqual, "1")},
		[]TxnOp{tPut("n", "2"), tGet("n"), tList("", 0), tDelPrefix("zz")}, nil))
	first := h.txn(c)
	h.do(putCmd("n", "3"))
	rev := h.sm.Revision()
	again := h.txn(c)
	if !reflect.DeepEqual(first, again) {
		t.Fatalf("retry: %+v, want the first answer %+v", again, first)
	}
	if kv, _ := h.sm.Get("n"); string(kv.Value) != "3" || h.sm.Revision() != rev {
		t.Fatalf("the retry wrote: n=%s revision %d", kv.Value, h.sm.Revision())
	}
	if n := resultBytes(&first); n < dedupResultOverhead+4*dedupTxnOpOverhead {
		t.Errorf("a txn result counted as %d bytes", n)
	}
	data := mustSnapshot(t, h.sm)
	if v := snapshotVersion(t, data); v != 5 {
		t.Fatalf("snapshot at level %d in format %d, want 5", LevelTxn, v)
	}
	restored := mustRestore(t, SMOptions{}, data)
	if restored.Hash() != h.sm.Hash() || restored.dedup.bytes != h.sm.dedup.bytes {
		t.Fatalf("restored state differs: hash %x vs %x, dedup bytes %d vs %d", restored.Hash(), h.sm.Hash(), restored.dedup.bytes, h.sm.dedup.bytes)
	}
	h2 := &smHarness{t: t, sm: restored, slot: h.slot}
	if r := h2.txn(c); !reflect.DeepEqual(r, first) {
		t.Fatalf("retry after a restore: %+v, want %+v", r, first)
	}
	// Below LevelTxn snapshots stay in format 4.
	h3 := newSMHarness(t, SMOptions{})
	atLevel(h3, LevelHashEncoding)
	if v := snapshotVersion(t, mustSnapshot(t, h3.sm)); v != 4 {
		t.Fatalf("snapshot at level %d in format %d, want 4", LevelHashEncoding, v)
	}
}

// TestTxnHistoryBounds: the history drops whole revisions, never part of
// a transaction's; a transaction alone over the bounds is dropped whole
// (a watch behind it gets ErrCompacted); a snapshot carries whole
// revisions and restores them.
func TestTxnHistoryBounds(t *testing.T) {
	h := txnHarness(t, SMOptions{KVHistoryMax: 4})
	h.do(putCmd("a", "1"))                                                           // rev 1
	h.txn(txnCmd(nil, []TxnOp{tPut("b", "1"), tPut("c", "1"), tPut("d", "1")}, nil)) // rev 2: 3 events
	h.do(putCmd("e", "1"))                                                           // rev 3: 5 events, over 4
	if h.sm.OldestRevision() != 2 {
		t.Fatalf("oldest revision %d, want 2 (revision 1 dropped)", h.sm.OldestRevision())
	}
	h.do(putCmd("f", "1")) // rev 4: dropping revision 2 drops its 3 events
	evs, err := h.sm.KVEvents(3, "", true, 0)
	if err != nil || eventList(evs) != "put e, put f" || h.sm.OldestRevision() != 3 {
		t.Fatalf("after rev 4: %s (%v), oldest %d", eventList(evs), err, h.sm.OldestRevision())
	}
	if n := h.sm.kvHist.events.len(); n != 2 {
		t.Fatalf("the history holds %d events, want 2: part of revision 2 was kept", n)
	}
	if _, err := h.sm.KVEvents(2, "", true, 0); !errors.Is(err, ErrCompacted) {
		t.Fatalf("a watch from the dropped txn: %v", err)
	}
	if got := h.sm.OldestListRevision(); got != 2 {
		t.Fatalf("oldest list revision %d, want 2", got)
	}
	// A txn of 5 writes, alone over the bound of 4: dropped whole.
	h.txn(txnCmd(nil, []TxnOp{tPut("v", "1"), tPut("w", "1"), tPut("x", "1"), tPut("y", "1"), tPut("z", "1")}, nil)) // rev 5
	if _, err := h.sm.KVEvents(5, "", true, 0); !errors.Is(err, ErrCompacted) {
		t.Fatalf("a txn over the history bound kept in part: %v", err)
	}
	evs, err = h.sm.KVEvents(6, "", true, 0)
	if err != nil || len(evs) != 0 {
		t.Fatalf("from 6: %v %v", evs, err)
	}
	// A snapshot carries whole revisions, and restores with several
	// events at one revision.
	// The snapshot's newest snapshotHistoryMax events end 3 events into
	// the txn at revision 1: it must carry none of them.
	h2 := txnHarness(t, SMOptions{})
	h2.txn(txnCmd(nil, []TxnOp{tPut("t1", "1"), tPut("t2", "1"), tPut("t3", "1"), tPut("t4", "1")}, nil))
	for i := 0; i < snapshotHistoryMax-3; i++ {
		h2.do(putCmd(fmt.Sprintf("k%d", i), "v"))
	}
	sm := mustRestore(t, SMOptions{}, mustSnapshot(t, h2.sm))
	if sm.OldestRevision() != 2 {
		t.Fatalf("restored history starts at %d, want 2: the cut fell inside revision 1", sm.OldestRevision())
	}
	h3 := txnHarness(t, SMOptions{})
	h3.txn(txnCmd(nil, []TxnOp{tPut("t1", "1"), tPut("t2", "1")}, nil))
	sm = mustRestore(t, SMOptions{}, mustSnapshot(t, h3.sm))
	evs, err = sm.KVEvents(1, "", true, 0)
	if err != nil || eventList(evs) != "put t1, put t2" {
		t.Fatalf("restored txn events: %s %v", eventList(evs), err)
	}
}

// TestTxnEncodingBounds: a command whose transaction lists claim more
// elements than its bytes hold is refused without allocating them.
func TestTxnEncodingBounds(t *testing.T) {
	c := txnCmd([]Compare{cmpValue("a", CompareEqual, "b")}, []TxnOp{tPut("k", "v")}, nil)
	b := EncodeCommand(&c)
	i := bytes.Index(b, []byte{0x91, 0x95}) // the compares: fixarray(1) of fixarray(5)
	if i < 0 {
		t.Fatalf("no compares in %x", b)
	}
	forged := append(append(append([]byte{}, b[:i]...), 0xdd, 0xff, 0xff, 0xff, 0xff), b[i+1:]...)
	if _, err := DecodeCommand(forged); !errors.Is(err, ErrInvalid) {
		t.Fatalf("forged length: %v", err)
	}
	if got, err := DecodeCommand(b); err != nil || !reflect.DeepEqual(got, normalized(c)) {
		t.Fatalf("round trip: %+v %v", got, err)
	}
}

// TestTxnSameSlotAsExpiry: a transaction fenced by a lock's token and the
// clock command that expires the holder's session, in one slot: every
// replica applies the slot's commands in the same order, so the token
// compare sees the lock as the order says — held if the transaction comes
// first (it writes, and the expiry then releases the lock), free if the
// expiry comes first (it does not write), though the lock's record, in
// its lock-delay, still holds the expired grant's token. Never a write by
// a holder whose session had ended.
func TestTxnSameSlotAsExpiry(t *testing.T) {
	for _, txnFirst := range []bool{true, false} {
		h := txnHarness(t, SMOptions{})
		h.do(openCmd(1000))
		h.do(clockCmd(0))
		tok := h.do(cs(1, 1, acquireCmd("l", 1, false, 500))).Token
		txn := cs(2, 1, txnCmd([]Compare{cmpNum(CompareToken, "l", CompareEqual, tok)},
			[]TxnOp{tPut("a", "1"), tPut("b", "1")}, []TxnOp{tGet("a")}))
		batch := []Command{txn, clockCmd(1000)}
		if !txnFirst {
			batch = []Command{clockCmd(1000), txn}
		}
		h.slot++
		var res []Result
		for _, c := range batch {
			res = append(res, h.sm.Apply(h.slot, EncodeCommand(&c)))
		}
		r := res[0]
		if !txnFirst {
			r = res[1]
		}
		_, wrote := h.sm.Get("a")
		if r.Err != nil || r.Succeeded != txnFirst || wrote != txnFirst {
			t.Errorf("txn first %v: succeeded %v, wrote %v (%v)", txnFirst, r.Succeeded, wrote, r.Err)
		}
		if l, ok := h.sm.Lock("l"); !ok || l.Holder != 0 || l.DelayUntil == 0 {
			t.Errorf("txn first %v: want the lock free in its lock-delay: %+v", txnFirst, l)
		}
	}
}
