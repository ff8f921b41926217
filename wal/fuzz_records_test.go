package wal

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/vfs"

	"github.com/paxosd/paxosd/internal/fuzzcorpus"
	"github.com/paxosd/paxosd/paxos"
)

// FuzzDecodeRecord feeds a (key, value) pair to the decoder the store runs
// on it when it reads its data directory (Open reads the identity, the
// promise and the commit watermark; Load and Entries the entries): a
// damaged disk yields ErrCorrupt, never a panic, and a record that decodes
// re-encodes to the same record. FuzzDecodeEntry covers entry values alone.
func FuzzDecodeRecord(f *testing.F) {
	for _, kv := range realRecords(f) {
		f.Add(kv[0], kv[1])
	}
	f.Add(entryKey(0), appendEntryValue(nil, encodingSamples[1]))
	f.Add([]byte("e/short"), []byte{1})
	f.Fuzz(func(t *testing.T, key, value []byte) {
		switch {
		case bytes.Equal(key, keyIdentity):
			id, err := decodeIdentityValue(value)
			if checkDecodeErr(t, err) {
				return
			}
			if id2, err := decodeIdentityValue(appendIdentityValue(nil, id)); err != nil || id2 != id {
				t.Fatalf("identity %+v re-decodes to %+v, %v", id, id2, err)
			}
		case bytes.Equal(key, keyPromised):
			b, err := decodeBallotValue("promised ballot", value)
			if checkDecodeErr(t, err) {
				return
			}
			if b2, err := decodeBallotValue("promised ballot", appendBallotValue(nil, b)); err != nil || b2 != b {
				t.Fatalf("ballot %s re-decodes to %s, %v", b, b2, err)
			}
		case bytes.Equal(key, keyCommit):
			s, err := decodeSlotValue("commit watermark", value)
			if checkDecodeErr(t, err) {
				return
			}
			if s2, err := decodeSlotValue("commit watermark", appendSlotValue(nil, s)); err != nil || s2 != s {
				t.Fatalf("slot %d re-decodes to %d, %v", s, s2, err)
			}
		case bytes.Equal(key, keyTruncated):
			s, err := decodeSlotValue("truncation point", value)
			if checkDecodeErr(t, err) {
				return
			}
			if s2, err := decodeSlotValue("truncation point", appendSlotValue(nil, s)); err != nil || s2 != s {
				t.Fatalf("slot %d re-decodes to %d, %v", s, s2, err)
			}
		case bytes.Equal(key, keySnapMeta), bytes.Equal(key, keyStageMeta):
			staging := bytes.Equal(key, keyStageMeta)
			st, err := decodeSnapMeta("snapshot meta", value, staging)
			if checkDecodeErr(t, err) {
				return
			}
			if st.meta.Slot == 0 || st.received > st.meta.Size {
				t.Fatalf("decoded an impossible snapshot meta %+v", st)
			}
			if st.legacy {
				return // this build reads version 1 metas but writes only version 2
			}
			st2, err := decodeSnapMeta("snapshot meta", appendSnapMeta(nil, st, staging), staging)
			if err != nil || st2 != st {
				t.Fatalf("snapshot meta %+v re-decodes to %+v, %v", st, st2, err)
			}
		case bytes.HasPrefix(key, snapChunkPrefix), bytes.HasPrefix(key, stageChunkPref):
			// Snapshot chunks are opaque here: their CRC is checked when
			// the snapshot is read, and its decoder is fuzzed by statemachine's
			// FuzzRestoreStateMachine.
		default: // everything else under the entry prefix is read as an entry
			e, err := decodeEntry(key, value)
			if checkDecodeErr(t, err) {
				return
			}
			if e.Slot == 0 {
				t.Fatalf("decoded an entry at slot 0")
			}
			e2, err := decodeEntry(entryKey(e.Slot), appendEntryValue(nil, e))
			if err != nil || e2.Slot != e.Slot || e2.Ballot != e.Ballot || !e2.Value.Equal(e.Value) {
				t.Fatalf("entry %s re-decodes to %s, %v", e, e2, err)
			}
		}
	})
}

// checkDecodeErr fails the test unless err is nil or ErrCorrupt, and
// reports whether there was an error.
func checkDecodeErr(t *testing.T, err error) bool {
	t.Helper()
	if err != nil && !errors.Is(err, ErrCorrupt) {
		t.Fatalf("error %v does not wrap ErrCorrupt", err)
	}
	return err != nil
}

// realRecords returns every (key, value) a real store holds after a few
// Saves, read back from its Pebble directory.
func realRecords(t testing.TB) [][2][]byte {
	fs := vfs.NewMem()
	s := openMem(t, fs)
	mustSave(t, s, paxos.Persist{Promised: paxos.Ballot{Round: 3, Node: 2}})
	mustSave(t, s, paxos.Persist{
		Entries: []paxos.Entry{ent(1, 3, 2, batch("put a=1", "put b=2")), ent(2, 3, 2, paxos.Noop), ent(3, 3, 2, batch(""))},
		Commit:  2,
	})
	mustSave(t, s, paxos.Persist{Promised: paxos.Ballot{Round: 1 << 40, Node: 3}, Entries: []paxos.Entry{ent(1<<33, 1<<40, 3, batch("x"))}})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The snapshot records, as SaveSnapshot and StageSnapshot write them.
	raw := rawDB(t, fs)
	for k, v := range map[string][]byte{
		string(keyTruncated): appendSlotValue(nil, 1),
		string(keySnapMeta):  appendSnapMeta(nil, storedSnap{meta: SnapshotMeta{Slot: 2, Size: 5, CRC: Checksum([]byte("state"))}, gen: 3}, false),
		string(keyStageMeta): appendSnapMeta(nil, storedSnap{meta: SnapshotMeta{Slot: 9, Size: 1 << 21, CRC: 77}, received: 1 << 20, gen: 4}, true),
	} {
		if err := raw.Set([]byte(k), v, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, fs)
	defer db.Close()
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out [][2][]byte
	for ok := it.First(); ok; ok = it.Next() {
		out = append(out, [2][]byte{bytes.Clone(it.Key()), bytes.Clone(it.Value())})
	}
	if len(out) < 9 {
		t.Fatalf("read %d records from a real store", len(out))
	}
	return out
}

// TestFuzzCorpus checks the seed corpora under testdata/fuzz: the records
// of a real store, and truncated and bit-flipped copies of them (what a
// damaged disk looks like). UPDATE_FUZZ_CORPUS=1 regenerates them.
func TestFuzzCorpus(t *testing.T) {
	records := map[string][]any{}
	entries := map[string][]any{}
	for _, kv := range realRecords(t) {
		key, value := kv[0], kv[1]
		name := "record-" + map[string]string{
			"m/identity": "identity", "a/promised": "promised", "a/commit": "commit",
			"a/truncated": "truncated", "s/meta": "snapshot-meta", "t/meta": "staged-meta",
		}[string(key)]
		if slot, err := decodeEntryKey(key); err == nil {
			name = fmt.Sprintf("record-entry-%d", slot)
		}
		records[name] = []any{key, value}
		records[name+"-truncated"] = []any{key, value[:len(value)-1]}
		flipped := bytes.Clone(value)
		flipped[len(flipped)/2] ^= 0x80
		records[name+"-flipped"] = []any{key, flipped}
		if bytes.HasPrefix(key, entryPrefix) {
			entries[name] = []any{value}
			entries[name+"-flipped"] = []any{flipped}
		}
	}
	fuzzcorpus.Sync(t, "FuzzDecodeRecord", records)
	fuzzcorpus.Sync(t, "FuzzDecodeEntry", entries)
}
