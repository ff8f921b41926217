package statemachine

import (
	"bytes"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// TestSnapClientsEncoding: encodeSnapClients writes what msgpack's
// reflection writes, for every field set, empty and nil, including the
// ones no stored result holds today (a List's KVs).
func TestSnapClientsEncoding(t *testing.T) {
	full := SnapResult{
		Err:      &SnapError{Msg: "service: not held", Is: []uint8{7}},
		Revision: 1 << 40, Found: true, KV: SnapKV{Key: "k", Value: []byte("v"), CreateRevision: 1, ModRevision: 300, Version: 70000},
		KVs: []SnapKV{{Key: "a"}, {Key: "b", Value: []byte{}}}, More: true, Succeeded: true,
		Session: SnapSessionInfo{ID: 1, TTLMs: 5000, RemainingMs: 4999, Locks: []string{"l"}, Waiting: []string{}, Elections: []string{"e", "f"}},
		Token:   9, Pending: true, Held: true,
		Lock:   SnapLockInfo{Name: "l", Holder: 1, Token: 9, Waiters: []uint64{2, 1 << 33}, DelayUntil: 12},
		Leader: SnapLeaderInfo{Name: "e", Session: 1, Value: []byte{}, Term: 3, Seq: 4, Revision: 5},
	}
	empty := SnapResult{Err: &SnapError{Is: []uint8{}}, KVs: []SnapKV{},
		Session: SnapSessionInfo{Locks: []string{}}, Lock: SnapLockInfo{Waiters: []uint64{}}}
	for name, cs := range map[string][]SnapClient{
		"nil":         nil,
		"none":        {},
		"nil results": {{ID: 1}},
		"results": {{ID: 1 << 20, Floor: 3, LastSlot: 1 << 35, Results: []SnapSeqResult{{Seq: 3, Result: full}, {Seq: 4}, {Seq: 200, Result: empty}}},
			{ID: 2, Results: []SnapSeqResult{}}},
	} {
		var want, got bytes.Buffer
		enc := msgpack.NewEncoder(&want)
		enc.UseCompactInts(true)
		if err := enc.Encode(cs); err != nil {
			t.Fatal(err)
		}
		enc = msgpack.NewEncoder(&got)
		enc.UseCompactInts(true)
		if err := encodeSnapClients(enc, cs); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Errorf("%s: encoded\n  %x\nmsgpack's reflection\n  %x", name, got.Bytes(), want.Bytes())
		}
	}
}
