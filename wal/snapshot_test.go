package wal

import (
	"bytes"
	"errors"
	"math/rand"
	"testing"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/paxosd/paxosd/paxos"
)

func randomBytes(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// saveLog writes entries 1..n and the watermark n.
func saveLog(t *testing.T, s *Store, n paxos.Slot) {
	t.Helper()
	p := paxos.Persist{Commit: n}
	for sl := paxos.Slot(1); sl <= n; sl++ {
		p.Entries = append(p.Entries, ent(sl, 1, 1, batch("v")))
	}
	mustSave(t, s, p)
}

// A snapshot of several chunks survives a restart whole, the log below the
// truncation point is gone (and reads of it fail rather than come back
// empty), and the entries above stay.
func TestSnapshotTruncatesLogAndSurvivesRestart(t *testing.T) {
	fs := vfs.NewMem()
	s := openMem(t, fs)
	saveLog(t, s, 100)
	data := randomBytes(2*snapshotChunkBytes+123, 1)
	meta, err := s.SaveSnapshot(90, data, 80)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Entries(50, 100, 0); !errors.Is(err, ErrTruncated) {
		t.Fatalf("Entries(50..100) after truncation to 80: err = %v, want ErrTruncated", err)
	}
	if es, err := s.Entries(81, 100, 0); err != nil || len(es) != 20 || es[0].Slot != 81 {
		t.Fatalf("Entries(81..100) = %d entries, %v; want 20 from 81", len(es), err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openMem(t, fs)
	defer s.Close()
	st, err := s.LoadTail()
	if err != nil {
		t.Fatal(err)
	}
	if st.Truncated != 80 || st.Commit != 100 || s.Truncated() != 80 {
		t.Fatalf("after restart: truncated %d (store %d), commit %d; want 80, 100", st.Truncated, s.Truncated(), st.Commit)
	}
	full := mustLoad(t, s)
	if len(full.Entries) != 20 || full.Entries[0].Slot != 81 {
		t.Fatalf("Load found %d entries from slot %d, want 20 from 81", len(full.Entries), full.Entries[0].Slot)
	}
	got, gotData, err := s.LoadSnapshot()
	if err != nil || got != meta || !bytes.Equal(gotData, data) {
		t.Fatalf("LoadSnapshot = %s, %d bytes, %v; want %s and the same bytes", got, len(gotData), err, meta)
	}
	// Reads in pieces across chunk boundaries reassemble it.
	var pieces []byte
	for off := uint64(0); off < meta.Size; {
		b, err := s.ReadSnapshot(meta, off, 700_001)
		if err != nil {
			t.Fatal(err)
		}
		pieces = append(pieces, b...)
		off += uint64(len(b))
	}
	if !bytes.Equal(pieces, data) {
		t.Fatal("chunked reads do not reassemble the snapshot")
	}
}

// A newer snapshot replaces the old one; readers of the old one are told
// so, and a smaller one leaves no stale chunks behind.
func TestSnapshotReplacedIsGone(t *testing.T) {
	s := openMem(t, vfs.NewMem())
	defer s.Close()
	saveLog(t, s, 10)
	old, err := s.SaveSnapshot(5, randomBytes(snapshotChunkBytes+10, 2), 5)
	if err != nil {
		t.Fatal(err)
	}
	small := []byte("small")
	if _, err := s.SaveSnapshot(8, small, 6); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadSnapshot(old, 0, 10); !errors.Is(err, ErrSnapshotGone) {
		t.Fatalf("read of a replaced snapshot: %v, want ErrSnapshotGone", err)
	}
	if _, data, err := s.LoadSnapshot(); err != nil || string(data) != "small" {
		t.Fatalf("LoadSnapshot = %q, %v", data, err)
	}
	if _, err := s.SaveSnapshot(11, small, 11); err == nil {
		t.Fatal("a snapshot above the watermark was accepted")
	}
}

// A snapshot received in chunks is staged durably, resumes after a
// restart, and installs in one step that moves the watermark and drops the
// log below it, keeping the entries above.
func TestStagedSnapshotResumesAndInstalls(t *testing.T) {
	fs := vfs.NewMem()
	s := openMem(t, fs)
	saveLog(t, s, 10)
	mustSave(t, s, paxos.Persist{Entries: []paxos.Entry{ent(60, 2, 2, batch("above"))}})
	data := randomBytes(3000, 3)
	meta := SnapshotMeta{Slot: 50, Size: uint64(len(data)), CRC: Checksum(data)}
	if err := s.StageSnapshot(meta, 0, data[:1000]); err != nil {
		t.Fatal(err)
	}
	if err := s.StageSnapshot(meta, 2000, data[2000:]); err == nil {
		t.Fatal("a chunk leaving a gap was staged")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openMem(t, fs)
	defer s.Close()
	got, received, err := s.Staged()
	if err != nil || got != meta || received != 1000 {
		t.Fatalf("Staged after restart = %s, %d, %v; want %s, 1000", got, received, err, meta)
	}
	if _, err := s.OpenStaged(meta); err == nil {
		t.Fatal("OpenStaged of an incomplete snapshot succeeded")
	}
	if err := s.StageSnapshot(meta, 1000, data[1000:]); err != nil {
		t.Fatal(err)
	}
	m, _, _ := s.Staged()
	staged, err := readAllSnapshot(s.OpenStaged(meta))
	if err != nil || m != meta || !bytes.Equal(staged, data) {
		t.Fatalf("StagedData = %s, %d bytes, %v", m, len(staged), err)
	}
	if err := s.InstallSnapshot(meta); err != nil {
		t.Fatal(err)
	}
	st, err := s.LoadTail()
	if err != nil {
		t.Fatal(err)
	}
	if st.Commit != 50 || st.Truncated != 50 || len(st.Entries) != 1 || st.Entries[0].Slot != 60 {
		t.Fatalf("after install: commit %d truncated %d entries %v; want 50, 50, [60]", st.Commit, st.Truncated, st.Entries)
	}
	if m, _, _ := s.Staged(); m.Slot != 0 {
		t.Fatalf("staging not cleared: %s", m)
	}
	if err := s.InstallSnapshot(meta); err == nil {
		t.Fatal("a snapshot at the watermark was installed twice")
	}
	// Staging a different snapshot discards the old partial one.
	other := SnapshotMeta{Slot: 70, Size: 4, CRC: Checksum([]byte("abcd"))}
	if err := s.StageSnapshot(other, 0, []byte("ab")); err != nil {
		t.Fatal(err)
	}
	if err := s.StageSnapshot(SnapshotMeta{Slot: 80, Size: 2, CRC: Checksum([]byte("xy"))}, 0, []byte("xy")); err != nil {
		t.Fatal(err)
	}
	m80 := SnapshotMeta{Slot: 80, Size: 2, CRC: Checksum([]byte("xy"))}
	if d, err := readAllSnapshot(s.OpenStaged(m80)); err != nil || string(d) != "xy" {
		t.Fatalf("staged = %q %v, want \"xy\"", d, err)
	}
}

// A staged snapshot that failed its checks is discarded, so the next
// transfer starts from the first byte instead of resuming the bad one;
// discarding another meta than the staged one changes nothing.
func TestDiscardStagedStartsOver(t *testing.T) {
	fs := vfs.NewMem()
	s := openMem(t, fs)
	defer s.Close()
	data := randomBytes(2000, 4)
	meta := SnapshotMeta{Slot: 50, Size: uint64(len(data)), CRC: Checksum(data)}
	if err := s.StageSnapshot(meta, 0, data); err != nil {
		t.Fatal(err)
	}
	if err := s.DiscardStaged(SnapshotMeta{Slot: 49, Size: 1}); err != nil {
		t.Fatal(err)
	}
	if got, received, err := s.Staged(); err != nil || got != meta || received != 2000 {
		t.Fatalf("Staged after discarding another = %s, %d, %v; want %s, 2000", got, received, err, meta)
	}
	files := func() int {
		names, err := fs.List(s.fs.PathJoin(s.dir, snapDirName))
		if err != nil {
			t.Fatal(err)
		}
		return len(names)
	}
	before := files()
	if err := s.DiscardStaged(meta); err != nil {
		t.Fatal(err)
	}
	if got, received, err := s.Staged(); err != nil || got.Slot != 0 || received != 0 {
		t.Fatalf("Staged after discard = %s, %d, %v; want none", got, received, err)
	}
	if after := files(); after != before-1 {
		t.Fatalf("snapshot files: %d before the discard, %d after; want one fewer", before, after)
	}
	if err := s.StageSnapshot(meta, 1000, data[1000:]); err == nil {
		t.Fatal("a discarded snapshot was resumed in the middle")
	}
	if err := s.StageSnapshot(meta, 0, data); err != nil {
		t.Fatal(err)
	}
}

// A store that must exist is not created: the directory stays empty.
func TestMustExistRefusesMissingStore(t *testing.T) {
	fs := vfs.NewMem()
	_, err := Open("/data", testID, Options{FS: fs, MustExist: true})
	if !IsNoStore(err) {
		t.Fatalf("Open with MustExist of an empty directory: %v, want a no-store error", err)
	}
	if names, _ := fs.List("/data"); len(names) > 1 || (len(names) == 1 && names[0] != "LOCK") {
		t.Fatalf("Open with MustExist created %v (Pebble's LOCK file aside, nothing may be)", names)
	}
	s := openMem(t, fs)
	if err := s.SetRejoin(RejoinUnknown); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open("/data", testID, Options{FS: fs, MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if target, ok, err := s.Rejoin(); err != nil || !ok || target != RejoinUnknown {
		t.Fatalf("Rejoin() = %d %v %v, want the unknown target", target, ok, err)
	}
	if err := s.ClearRejoin(); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Rejoin(); ok {
		t.Fatal("rejoin still under way after ClearRejoin")
	}
}
