package statemachine

import (
	"bytes"
	"errors"
	"testing"

	"github.com/paxosd/paxosd/paxos"
)

// quotaSM wraps a state machine with a slot counter for the quota tests.
type quotaSM struct {
	t    *testing.T
	sm   *StateMachine
	slot uint64
}

func (q *quotaSM) apply(c Command) Result {
	q.slot++
	return q.sm.Apply(paxos.Slot(q.slot), EncodeCommand(&c))
}

func (q *quotaSM) ok(c Command) Result {
	q.t.Helper()
	r := q.apply(c)
	if r.Err != nil {
		q.t.Fatalf("%s: %v", c.String(), r.Err)
	}
	return r
}

func (q *quotaSM) used(want uint64) {
	q.t.Helper()
	if got := q.sm.Quota().Used; got != want {
		q.t.Fatalf("usage %d, want %d", got, want)
	}
}

func put(key, value string) Command { return Command{Op: OpPut, Key: key, Value: []byte(value)} }

// TestQuotaUsage: the usage is the bytes of the live keys and values,
// through puts, overwrites, deletes and cas, whether or not a quota is set.
func TestQuotaUsage(t *testing.T) {
	q := &quotaSM{t: t, sm: NewStateMachine(SMOptions{})}
	q.used(0)
	q.ok(put("ab", "1234")) // 2+4
	q.used(6)
	q.ok(put("ab", "12")) // overwrite smaller
	q.used(4)
	q.ok(put("c", "xyz"))
	q.used(8)
	r := q.ok(Command{Op: OpCAS, Key: "c", Value: []byte("x"), PrevValue: []byte("nope"), HasPrevValue: true})
	if r.Succeeded {
		t.Fatal("cas succeeded")
	}
	q.used(8)
	q.ok(Command{Op: OpCAS, Key: "c", Value: []byte("x"), PrevValue: []byte("xyz"), HasPrevValue: true})
	q.used(6)
	q.ok(Command{Op: OpCAS, Key: "new", Value: []byte("v"), HasPrevRevision: true}) // create
	q.used(10)
	q.ok(Command{Op: OpDelete, Key: "ab"})
	q.used(6)
	q.apply(Command{Op: OpDelete, Key: "absent"})
	q.used(6)
	if qi := q.sm.Quota(); qi.Set || qi.Limit != 0 {
		t.Fatalf("quota %+v before any was set", qi)
	}
}

// TestQuotaEnforced: a write that grows the usage past the quota fails with
// ErrQuotaExceeded and the exact message, changing nothing; one that
// shrinks or keeps it passes even above the quota; deletes, reads and
// sessions go on; once the usage falls, writes succeed again.
func TestQuotaEnforced(t *testing.T) {
	q := &quotaSM{t: t, sm: NewStateMachine(SMOptions{})}
	q.ok(put("k1", "0123456789")) // 12 bytes, no quota yet
	q.ok(Command{ClientID: 7, Seq: 1, Op: OpQuotaSet, Quota: 30})
	if qi := q.sm.Quota(); !qi.Set || qi.Limit != 30 || qi.Used != 12 {
		t.Fatalf("quota %+v", qi)
	}
	q.ok(put("k2", "0123456789")) // 24
	q.ok(put("k3", "0123"))       // 30: exactly full is allowed
	rev := q.sm.Revision()
	r := q.apply(put("k4", "x"))
	const msg = "service: quota exceeded: 30.0 B of 30.0 B used; delete keys or raise it with paxosd quota set"
	if !errors.Is(r.Err, ErrQuotaExceeded) || r.Err.Error() != msg {
		t.Fatalf("put over quota: %v", r.Err)
	}
	if q.sm.Revision() != rev || q.sm.Quota().Used != 30 {
		t.Fatal("a refused put changed the state")
	}
	if _, found := q.sm.Get("k4"); found {
		t.Fatal("refused key written")
	}
	// A cas whose comparison fails is a failed comparison, not a quota
	// error; one that holds is refused if it grows.
	if r := q.apply(Command{Op: OpCAS, Key: "k3", Value: []byte("longer"), PrevValue: []byte("no"), HasPrevValue: true}); r.Err != nil || r.Succeeded {
		t.Fatalf("failed cas: %+v", r)
	}
	if r := q.apply(Command{Op: OpCAS, Key: "k3", Value: []byte("longer"), PrevValue: []byte("0123"), HasPrevValue: true}); !errors.Is(r.Err, ErrQuotaExceeded) {
		t.Fatalf("growing cas: %v", r.Err)
	}
	// Same size and smaller pass.
	q.ok(put("k3", "abcd"))
	q.ok(Command{Op: OpCAS, Key: "k3", Value: []byte("ab"), PrevValue: []byte("abcd"), HasPrevValue: true})
	q.used(28)
	// Lower the quota below the usage: shrinking writes and deletes still
	// work, reads and sessions too.
	q.ok(Command{ClientID: 7, Seq: 2, Op: OpQuotaSet, Quota: 20})
	q.ok(put("k1", "0"))
	q.ok(Command{Op: OpGet, Key: "k2"})
	q.ok(openCmd(10000))
	q.ok(Command{Op: OpLockAcquire, Name: "l", SessionID: 1})
	if r := q.apply(put("k5", "")); !errors.Is(r.Err, ErrQuotaExceeded) ||
		r.Err.Error() != "service: quota exceeded: 19.0 B of 20.0 B used; delete keys or raise it with paxosd quota set" {
		t.Fatalf("put with usage 19 of 20: %v", r.Err)
	}
	q.ok(Command{Op: OpDelete, Key: "k2"}) // 7 left
	q.ok(put("k5", "x"))
	q.used(10)
	// The default never replaces a set quota.
	q.ok(Command{Op: OpQuotaDefault, Quota: 1 << 30})
	if q.sm.Quota().Limit != 20 {
		t.Fatalf("default replaced the quota: %+v", q.sm.Quota())
	}
}

// TestQuotaDefault: OpQuotaDefault sets the quota only while none is set;
// a later OpQuotaSet replaces it; clients cannot send it; 0 is invalid.
func TestQuotaDefault(t *testing.T) {
	q := &quotaSM{t: t, sm: NewStateMachine(SMOptions{})}
	for _, c := range []Command{{Op: OpQuotaDefault}, {ClientID: 1, Seq: 1, Op: OpQuotaDefault, Quota: 5},
		{ClientID: 1, Seq: 2, Op: OpQuotaSet}} {
		if r := q.apply(c); !errors.Is(r.Err, ErrInvalid) {
			t.Fatalf("%s: %v, want ErrInvalid", c.String(), r.Err)
		}
	}
	if q.sm.Quota().Set {
		t.Fatal("an invalid command set the quota")
	}
	q.ok(Command{Op: OpQuotaDefault, Quota: 100})
	q.ok(Command{Op: OpQuotaDefault, Quota: 200})
	if qi := q.sm.Quota(); qi.Limit != 100 {
		t.Fatalf("the second default won: %+v", qi)
	}
	q.ok(Command{ClientID: 1, Seq: 3, Op: OpQuotaSet, Quota: 300})
	if qi := q.sm.Quota(); qi.Limit != 300 {
		t.Fatalf("set after default: %+v", qi)
	}
}

// TestQuotaSnapshot: a state without a quota hashes and snapshots as
// before (version 1 or 2, which older members read); with one, version 3,
// and the restore brings back the limit, recomputes the usage, keeps
// enforcing and hashes the same; a stored quota error survives.
func TestQuotaSnapshot(t *testing.T) {
	opts := SMOptions{}
	a := &quotaSM{t: t, sm: NewStateMachine(opts)}
	b := &quotaSM{t: t, sm: NewStateMachine(opts)}
	for _, q := range []*quotaSM{a, b} {
		q.ok(put("x", "12345"))
	}
	data, err := a.sm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if v := snapshotVersion(t, data); v != 1 {
		t.Fatalf("no quota: snapshot version %d, want 1", v)
	}
	if r, err := RestoreStateMachine(opts, data); err != nil || r.Quota() != a.sm.Quota() || r.Hash() != a.sm.Hash() {
		t.Fatalf("restore without quota: %v", err)
	}
	// The quota is not in the hash (a member rolled back to an older
	// version has none): a hashes as b, which applied a no-op in the same
	// slot. What it refuses is (the stored result below).
	a.ok(Command{Op: OpQuotaDefault, Quota: 10})
	b.slot++
	b.sm.ApplyValue(paxos.Slot(b.slot), paxos.Value{})
	if a.sm.Hash() != b.sm.Hash() {
		t.Fatal("the quota changed the hash")
	}
	if r := a.apply(Command{ClientID: 1, Seq: 2, Op: OpPut, Key: "yy", Value: []byte("1234")}); !errors.Is(r.Err, ErrQuotaExceeded) {
		t.Fatalf("put over quota: %v", r.Err)
	}
	data, err = a.sm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if v := snapshotVersion(t, data); v != 3 {
		t.Fatalf("with a quota: snapshot version %d, want 3", v)
	}
	r, err := RestoreStateMachine(opts, data)
	if err != nil {
		t.Fatal(err)
	}
	if r.Quota() != a.sm.Quota() || r.Hash() != a.sm.Hash() {
		t.Fatalf("restored quota %+v hash %x, want %+v %x", r.Quota(), r.Hash(), a.sm.Quota(), a.sm.Hash())
	}
	if again, err := r.Snapshot(); err != nil || !bytes.Equal(again, data) {
		t.Fatalf("the restored state snapshots differently (%v)", err)
	}
	// The stored answer of the refused put survives with its sentinel.
	rr := r.Apply(paxos.Slot(a.slot+1), EncodeCommand(&Command{ClientID: 1, Seq: 2, Op: OpPut, Key: "yy", Value: []byte("1234")}))
	if !errors.Is(rr.Err, ErrQuotaExceeded) {
		t.Fatalf("retry after restore: %v", rr.Err)
	}
	// Version 3 with a quota of 0 is refused.
	st, err := decodeSnapshotState(data)
	if err != nil {
		t.Fatal(err)
	}
	st.Quota.Limit = 0
	bad, err := encodeState(3, st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RestoreStateMachine(opts, bad); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("version 3 without a quota: %v", err)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[uint64]string{
		0: "0.0 B", 1023: "1023.0 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 64 << 10: "64.0 KiB",
		8 << 30: "8.0 GiB", 1288490189: "1.2 GiB", 3 << 40: "3.0 TiB", 5 << 50: "5120.0 TiB",
	} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
