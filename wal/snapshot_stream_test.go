package wal

import (
	"bytes"
	"errors"
	"testing"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
)

// countKeys counts the keys of db in [lo, hi).
func countKeys(t *testing.T, db *pebble.DB, lo, hi []byte) int {
	t.Helper()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	return n
}

// TestSnapshotWriterCutByCrash: a snapshot streamed in odd-sized writes is
// stored as written; one cut before its commit (the node crashed while
// encoding it) leaves the stored snapshot as it was, and its file is gone
// after the next Open.
func TestSnapshotWriterCutByCrash(t *testing.T) {
	fs := vfs.NewStrictMem()
	s := openMem(t, fs)
	saveLog(t, s, 100)
	data := randomBytes(3*snapshotChunkBytes+777, 3)
	w, err := s.CreateSnapshot(60)
	if err != nil {
		t.Fatal(err)
	}
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 99_991)
		if _, err := w.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	meta, err := w.Finish()
	if err != nil || meta.Size != uint64(len(data)) || meta.CRC != Checksum(data) {
		t.Fatalf("Finish = %s, %v; want %d bytes, crc %08x", meta, err, len(data), Checksum(data))
	}
	if err := s.CommitSnapshot(w, 50); err != nil {
		t.Fatal(err)
	}
	if _, got, err := s.LoadSnapshot(); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("LoadSnapshot: %d bytes, %v", len(got), err)
	}

	// A second snapshot written but not committed, then a crash.
	w2, err := s.CreateSnapshot(90)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w2.Write(randomBytes(2*snapshotChunkBytes+5, 4)); err != nil {
		t.Fatal(err)
	}
	fs.SetIgnoreSyncs(true)
	if _, err := w2.Finish(); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	fs.ResetToSyncedState()
	fs.SetIgnoreSyncs(false)

	s = openMem(t, fs)
	if got, d, err := s.LoadSnapshot(); err != nil || got != meta || !bytes.Equal(d, data) {
		t.Fatalf("after the crash: %s (%d bytes), %v; want %s", got, len(d), err, meta)
	}
	defer s.Close()
	if names, err := fs.List("/data/snap"); err != nil || len(names) != 1 {
		t.Fatalf("snapshot files after Open: %q (%v), want the committed snapshot's alone", names, err)
	}
}

// TestSnapshotCommitStale: a snapshot written while a newer one was
// installed from the leader is discarded, not made current.
func TestSnapshotCommitStale(t *testing.T) {
	s := openMem(t, vfs.NewMem())
	defer s.Close()
	saveLog(t, s, 10)
	w, err := s.CreateSnapshot(8)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("old")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	newer := SnapshotMeta{Slot: 20, Size: 3, CRC: Checksum([]byte("new"))}
	if err := s.StageSnapshot(newer, 0, []byte("new")); err != nil {
		t.Fatal(err)
	}
	if err := s.InstallSnapshot(newer); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitSnapshot(w, 8); !errors.Is(err, ErrSnapshotStale) {
		t.Fatalf("CommitSnapshot of slot 8 over slot 20: %v, want ErrSnapshotStale", err)
	}
	if m, d, err := s.LoadSnapshot(); err != nil || m != newer || string(d) != "new" {
		t.Fatalf("stored: %s %q %v", m, d, err)
	}
}

// TestSnapshotVersion1Layout: a store written before snapshot generations
// (meta version 1, chunks by index) is read as it is, and the next
// snapshot replaces its chunks; a version 1 staged transfer is dropped.
func TestSnapshotVersion1Layout(t *testing.T) {
	fs := vfs.NewMem()
	s := openMem(t, fs)
	saveLog(t, s, 10)
	_ = s.Close()
	data := randomBytes(snapshotChunkBytes+10, 5)
	db := rawDB(t, fs)
	meta := SnapshotMeta{Slot: 5, Size: uint64(len(data)), CRC: Checksum(data)}
	v1 := func(staging bool, received uint64) []byte {
		b := appendSnapMeta(nil, storedSnap{meta: meta, received: received}, staging)
		b[0] = formatVersion
		return b[:len(b)-1] // version 1 has no generation (0: one byte)
	}
	for k, v := range map[string][]byte{
		string(keySnapMeta):                    v1(false, 0),
		string(indexedKey(snapChunkPrefix, 0)): append([]byte{formatVersion}, data[:snapshotChunkBytes]...),
		string(indexedKey(snapChunkPrefix, 1)): append([]byte{formatVersion}, data[snapshotChunkBytes:]...),
		string(keyStageMeta):                   v1(true, 3),
		string(indexedKey(stageChunkPref, 0)):  {formatVersion, 1, 2, 3},
	} {
		if err := db.Set([]byte(k), v, nil); err != nil {
			t.Fatal(err)
		}
	}
	_ = db.Close()
	s = openMem(t, fs)
	if m, d, err := s.LoadSnapshot(); err != nil || m != meta || !bytes.Equal(d, data) {
		t.Fatalf("version 1 snapshot: %s (%d bytes), %v", m, len(d), err)
	}
	if b, err := s.ReadSnapshot(meta, snapshotChunkBytes-2, 5); err != nil || !bytes.Equal(b, data[snapshotChunkBytes-2:snapshotChunkBytes+3]) {
		t.Fatalf("ReadSnapshot across version 1 chunks: %v", err)
	}
	if m, _, err := s.Staged(); err != nil || m.Slot != 0 {
		t.Fatalf("a version 1 staged transfer survived Open: %s, %v", m, err)
	}
	if _, err := s.SaveSnapshot(9, []byte("v2"), 9); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	db = rawDB(t, fs)
	defer db.Close()
	if n := countKeys(t, db, snapChunkPrefix, snapChunkEnd) + countKeys(t, db, stageChunkPref, stageChunkEnd); n != 0 {
		t.Fatalf("%d version 1 chunks left after a new snapshot", n)
	}
}
