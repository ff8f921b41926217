package statemachine

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// ephHarness is a state machine at LevelEphemeral.
func ephHarness(t testing.TB) *smHarness {
	h := newSMHarness(t, SMOptions{})
	atLevel(h, LevelEphemeral)
	return h
}

func ephPut(key, value string, sid uint64) Command {
	return Command{Op: OpPut, Key: key, Value: []byte(value), SessionID: sid}
}

func (h *smHarness) ok(c Command) Result {
	h.t.Helper()
	r := h.do(c)
	if r.Err != nil {
		h.t.Fatalf("%s: %v", c.String(), r.Err)
	}
	return r
}

func (h *smHarness) present(key string) bool {
	_, ok := h.sm.Get(key)
	return ok
}

// TestEphemeralExpiry: a key put with a session is deleted when the
// session expires, by a delete event at a revision of its own in the
// watch history (the keys of one session share it), with its previous
// value; the quota's usage drops with it; permanent keys stay; until the
// expiry the key is there and bound.
func TestEphemeralExpiry(t *testing.T) {
	h := ephHarness(t)
	h.ok(openCmd(5000)) // session 1
	h.ok(clockCmd(10))  // its deadline: 5010
	h.ok(ephPut("svc/b", "addr-b", 1))
	h.ok(ephPut("svc/a", "addr-a", 1))
	h.ok(putCmd("svc/permanent", "p"))
	if got := h.sm.KeySession("svc/a"); got != 1 {
		t.Fatalf("svc/a bound to session %d, want 1", got)
	}
	if got := h.sm.SessionKeys(1); len(got) != 2 || got[0] != "svc/a" || got[1] != "svc/b" {
		t.Fatalf("session 1's keys %q", got)
	}
	used := h.sm.Quota().Used
	h.ok(clockCmd(5009))
	if !h.present("svc/a") || !h.present("svc/b") {
		t.Fatal("a key went before its session expired")
	}
	rev := h.sm.Revision()
	h.ok(clockCmd(5010))
	if _, open := h.sm.Session(1); open {
		t.Fatal("session 1 did not expire")
	}
	if h.present("svc/a") || h.present("svc/b") || !h.present("svc/permanent") {
		t.Fatalf("after the expiry: svc/a %v svc/b %v svc/permanent %v", h.present("svc/a"), h.present("svc/b"), h.present("svc/permanent"))
	}
	if h.sm.Revision() != rev+1 {
		t.Fatalf("revision %d after the expiry, want %d (one for the session's keys)", h.sm.Revision(), rev+1)
	}
	evs, err := h.sm.KVEvents(rev+1, "svc/", true, 0)
	if err != nil || len(evs) != 2 {
		t.Fatalf("events after the expiry: %v %+v", err, evs)
	}
	for i, want := range []string{"svc/a", "svc/b"} {
		ev := evs[i]
		if ev.Type != EventDelete || ev.Revision != rev+1 || ev.KV.Key != want || ev.PrevKV.Key != want || string(ev.PrevKV.Value) != "addr-"+want[4:] {
			t.Fatalf("event %d: %+v, want the delete of %s at %d", i, ev, want, rev+1)
		}
	}
	if got, want := h.sm.Quota().Used, used-uint64(len("svc/a")+len("addr-a")+len("svc/b")+len("addr-b")); got != want {
		t.Fatalf("quota usage %d after the expiry, want %d", got, want)
	}
	if len(h.sm.bound.byKey) != 0 || len(h.sm.bound.bySession) != 0 {
		t.Fatalf("bindings left: %v %v", h.sm.bound.byKey, h.sm.bound.bySession)
	}
}

// TestEphemeralClose: a close (and so a revoke, which is a close by
// anyone) deletes the session's keys at once; a session without keys
// ends without a revision.
func TestEphemeralClose(t *testing.T) {
	h := ephHarness(t)
	h.ok(openCmd(5000))
	h.ok(openCmd(5000))
	h.ok(ephPut("k", "v", 1))
	rev := h.sm.Revision()
	if r := h.ok(closeCmd(2)); r.Revision != rev || h.sm.Revision() != rev {
		t.Fatalf("closing a session without keys: revision %d, want %d", r.Revision, rev)
	}
	r := h.ok(closeCmd(1))
	if h.present("k") || r.Revision != rev+1 {
		t.Fatalf("after the close: k present %v, answer's revision %d (want %d)", h.present("k"), r.Revision, rev+1)
	}
	evs, _ := h.sm.KVEvents(rev+1, "k", false, 0)
	if len(evs) != 1 || evs[0].Type != EventDelete {
		t.Fatalf("events %+v, want one delete", evs)
	}
}

// TestEphemeralRebinding: etcd's lease semantics. A put without a session
// makes the key permanent; a put from another session moves it there; a
// delete drops the binding, so the key put again without a session
// outlives the session; a cas and a transaction's put make a key
// permanent, a transaction's delete (of the key, or by prefix) drops its
// binding.
func TestEphemeralRebinding(t *testing.T) {
	h := ephHarness(t)
	h.ok(openCmd(5000)) // 1
	h.ok(openCmd(5000)) // 2

	h.ok(ephPut("perm", "1", 1))
	h.ok(putCmd("perm", "2"))
	h.ok(ephPut("moved", "1", 1))
	h.ok(ephPut("moved", "2", 2))
	h.ok(ephPut("same", "1", 1))
	h.ok(ephPut("same", "2", 1))
	h.ok(ephPut("deleted", "1", 1))
	h.ok(delCmd("deleted"))
	h.ok(putCmd("deleted", "again"))
	h.ok(ephPut("cas", "1", 1))
	if r := h.ok(casValueCmd("cas", "1", "2")); !r.Succeeded {
		t.Fatal("cas failed")
	}
	h.ok(ephPut("casfail", "1", 1))
	if r := h.ok(casValueCmd("casfail", "nope", "2")); r.Succeeded {
		t.Fatal("cas succeeded")
	}
	h.ok(ephPut("txnput", "1", 1))
	h.ok(txnCmd(nil, []TxnOp{tPut("txnput", "2")}, nil))
	h.ok(ephPut("txndel", "1", 1))
	h.ok(txnCmd(nil, []TxnOp{tDel("txndel")}, nil))
	h.ok(putCmd("txndel", "again"))
	h.ok(ephPut("pre/x", "1", 1))
	h.ok(txnCmd(nil, []TxnOp{tDelPrefix("pre/")}, nil))
	h.ok(putCmd("pre/x", "again"))
	if got := h.sm.SessionKeys(1); len(got) != 2 || got[0] != "casfail" || got[1] != "same" {
		t.Fatalf("session 1's keys %q, want casfail and same", got)
	}
	h.ok(ephPut("gone", "1", 1))
	h.ok(txnCmd(nil, []TxnOp{tDel("gone")}, nil))
	h.ok(ephPut("pre2/gone", "1", 1))
	h.ok(txnCmd(nil, []TxnOp{tDelPrefix("pre2/")}, nil))
	h.ok(ephPut("plain-gone", "1", 1))
	h.ok(delCmd("plain-gone"))
	if got := h.sm.SessionKeys(1); len(got) != 2 {
		t.Fatalf("session 1's keys %q: a deleted key is still bound", got)
	}

	h.ok(closeCmd(1))
	for key, want := range map[string]bool{
		"perm": true, "moved": true, "same": false, "deleted": true, "cas": true, "casfail": false,
		"txnput": true, "txndel": true, "pre/x": true,
	} {
		if h.present(key) != want {
			t.Errorf("after session 1 ended: %s present %v, want %v", key, h.present(key), want)
		}
	}
	if got := h.sm.KeySession("moved"); got != 2 {
		t.Fatalf("moved bound to %d, want 2", got)
	}
	h.ok(closeCmd(2))
	if h.present("moved") {
		t.Fatal("moved outlived session 2")
	}
	if len(h.sm.bound.byKey) != 0 {
		t.Fatalf("bindings left: %v", h.sm.bound.byKey)
	}
}

// TestEphemeralEndedSession: a put naming a session that has ended (or
// never was) is refused with ErrSessionExpired and writes nothing, as a
// lock acquire is; a fenced put whose fence fails binds nothing either.
func TestEphemeralEndedSession(t *testing.T) {
	h := ephHarness(t)
	h.ok(openCmd(5000))
	h.ok(closeCmd(1))
	rev := h.sm.Revision()
	for _, sid := range []uint64{1, 7} {
		r := h.do(ephPut("k", "v", sid))
		if !errors.Is(r.Err, ErrSessionExpired) || h.present("k") || h.sm.Revision() != rev {
			t.Fatalf("put to session %d: %v, k present %v, revision %d (want %d)", sid, r.Err, h.present("k"), h.sm.Revision(), rev)
		}
	}
	h.ok(openCmd(5000)) // 2
	r := h.do(fenced(ephPut("k", "v", 2), "lock", 99))
	if !errors.Is(r.Err, ErrFenced) || h.present("k") || len(h.sm.bound.byKey) != 0 {
		t.Fatalf("a fenced put with a stale token: %v, k present %v, bindings %v", r.Err, h.present("k"), h.sm.bound.byKey)
	}
}

// TestEphemeralRetry: a retry of a put bound to a session that has ended
// since is answered from the duplicate table and writes nothing: the key
// stays deleted (the put happened, then the session ended).
func TestEphemeralRetry(t *testing.T) {
	h := ephHarness(t)
	h.ok(openCmd(5000))
	first := h.ok(cs(1, 1, ephPut("k", "v", 1)))
	h.ok(closeCmd(1))
	rev := h.sm.Revision()
	again := h.ok(cs(1, 1, ephPut("k", "v", 1)))
	if again.Revision != first.Revision || h.present("k") || h.sm.Revision() != rev {
		t.Fatalf("retry: revision %d (first %d), k present %v, store revision %d (want %d)",
			again.Revision, first.Revision, h.present("k"), h.sm.Revision(), rev)
	}
}

// TestEphemeralBelowLevel: below LevelEphemeral a put's SessionID means
// nothing, exactly as in every older build (which applies such a put as a
// plain one): the key is written, bound to nothing, outlives the session,
// and the state hashes as the same put without a session. (The node
// refuses a session-bound put below the level before it reaches the log:
// service/ephemeral.go.) At LevelEphemeral it binds.
func TestEphemeralBelowLevel(t *testing.T) {
	for _, level := range []uint64{0, LevelHashEncoding, LevelTxn} {
		h, old := newSMHarness(t, SMOptions{}), newSMHarness(t, SMOptions{})
		atLevel(h, level)
		atLevel(old, level)
		for _, x := range []*smHarness{h, old} {
			x.ok(openCmd(5000))
		}
		h.ok(cs(1, 1, ephPut("k", "v", 1)))
		old.ok(cs(1, 1, putCmd("k", "v")))
		if h.sm.Hash() != old.sm.Hash() || h.sm.KeySession("k") != 0 {
			t.Fatalf("level %d: a put with a session differs from one without (hash %x vs %x, bound to %d)",
				level, h.sm.Hash(), old.sm.Hash(), h.sm.KeySession("k"))
		}
		h.ok(closeCmd(1))
		if !h.present("k") {
			t.Fatalf("level %d: the key went with the session", level)
		}
		if v, err := h.sm.Snapshot(); err != nil || len(v) == 0 {
			t.Fatal(err)
		} else if st, err := decodeSnapshotState(v); err != nil || st.Bindings != nil {
			t.Fatalf("level %d: snapshot: %v, bindings %v", level, err, st.Bindings)
		}
	}
}

// TestEphemeralSnapshot: the bindings survive a snapshot (format 6, from
// LevelEphemeral on): the restored state hashes the same, and its session
// end deletes the same keys; a snapshot whose binding names a session that
// is not open, or a key that does not exist, is refused.
func TestEphemeralSnapshot(t *testing.T) {
	h := ephHarness(t)
	h.ok(openCmd(5000))
	h.ok(openCmd(5000))
	h.ok(ephPut("a", "1", 1))
	h.ok(ephPut("b", "2", 2))
	h.ok(putCmd("c", "3"))
	data := mustSnapshot(t, h.sm)
	v, err := h.sm.View()
	if err != nil || v.version != 6 {
		t.Fatalf("snapshot version %v (%v), want 6", v, err)
	}
	// The check of a snapshot (which reads no key into a tree) passes it.
	if info, err := CheckSnapshot(SMOptions{}, func() (io.Reader, error) { return bytes.NewReader(data), nil }, int64(len(data))); err != nil || info.Keys != 3 {
		t.Fatalf("CheckSnapshot: %+v, %v", info, err)
	}
	r := mustRestore(t, SMOptions{}, data)
	if r.Hash() != h.sm.Hash() || r.KeySession("a") != 1 || r.KeySession("b") != 2 || r.KeySession("c") != 0 {
		t.Fatalf("restored: hash %x (want %x), bindings a=%d b=%d c=%d", r.Hash(), h.sm.Hash(), r.KeySession("a"), r.KeySession("b"), r.KeySession("c"))
	}
	rh := &smHarness{t: t, sm: r, slot: h.slot}
	rh.ok(closeCmd(1))
	h.ok(closeCmd(1))
	if rh.present("a") || !rh.present("b") || rh.sm.Hash() != h.sm.Hash() {
		t.Fatalf("restored after close: a %v b %v, hashes %x %x", rh.present("a"), rh.present("b"), rh.sm.Hash(), h.sm.Hash())
	}

	st, err := decodeSnapshotState(mustSnapshot(t, h.sm))
	if err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string][]SnapBinding{
		"session not open": {{Key: "b", Session: 1}},
		"missing key":      {{Key: "zz", Session: 2}},
		"out of order":     {{Key: "b", Session: 2}, {Key: "a", Session: 2}},
	} {
		st.Bindings = bad
		data, err := encodeState(6, st)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := RestoreStateMachine(SMOptions{}, data); !errors.Is(err, ErrBadSnapshot) {
			t.Errorf("%s: restore %v, want ErrBadSnapshot", name, err)
		}
	}
	st.Bindings = nil
	if data, err := encodeState(5, st); err != nil {
		t.Fatal(err)
	} else if _, err := RestoreStateMachine(SMOptions{}, data); !errors.Is(err, ErrBadSnapshot) {
		t.Errorf("version 5 at level %d: restore %v, want ErrBadSnapshot", LevelEphemeral, err)
	}
}
