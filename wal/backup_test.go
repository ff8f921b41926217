package wal

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/vfs"
)

func writeBackup(t *testing.T, path string, data []byte) SnapshotMeta {
	t.Helper()
	w, err := CreateBackup(path)
	if err != nil {
		t.Fatal(err)
	}
	for len(data) > 0 { // in pieces, as a stream delivers it
		n := min(len(data), 1000)
		if _, err := w.Write(data[:n]); err != nil {
			t.Fatal(err)
		}
		data = data[n:]
	}
	meta, err := w.Finish(42)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	return meta
}

// TestBackupFile: what is written reads back with its meta, and leaves no
// temporary file behind.
func TestBackupFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "b.snap")
	data := bytes.Repeat([]byte("state machine bytes "), 500)
	meta := writeBackup(t, path, data)
	if meta.Slot != 42 || meta.Size != uint64(len(data)) || meta.CRC != Checksum(data) {
		t.Fatalf("meta %s", meta)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("%d files in the directory, want the backup alone", len(ents))
	}
	b, err := OpenBackup(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Meta() != meta {
		t.Errorf("read meta %s, wrote %s", b.Meta(), meta)
	}
	r, _ := b.Open()
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}
}

// TestBackupFileDamaged: a truncated, extended, flipped or foreign file is
// refused with a line that says what is wrong, never read as a snapshot.
func TestBackupFileDamaged(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "b.snap")
	data := bytes.Repeat([]byte("0123456789"), 300)
	writeBackup(t, path, data)
	good, _ := os.ReadFile(path)
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "does not start as one"},
		{"foreign", []byte("hello, world, this is not a backup at all........"), "does not start as one"},
		{"header only", good[:backupHeaderBytes], "truncated"},
		{"truncated", good[:len(good)-100], "no trailer"},
		{"cut in the trailer", good[:len(good)-3], "no trailer"},
		{"extended", append(append([]byte(nil), good...), 0), "no trailer"},
		{"bytes lost in the middle", append(append([]byte(nil), good[:100]...), good[200:]...), "trailer says"},
		{"flipped", func() []byte { b := bytes.Clone(good); b[500] ^= 1; return b }(), "checksum"},
		{"another format", func() []byte { b := bytes.Clone(good); b[len(backupMagic)] = 9; return b }(), "format 9"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_"))
			if err := os.WriteFile(p, c.b, 0o644); err != nil {
				t.Fatal(err)
			}
			b, err := OpenBackup(p)
			if err == nil {
				err = b.Verify()
				b.Close()
			}
			if !errors.Is(err, ErrBadBackup) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%v, want ErrBadBackup saying %q", err, c.want)
			}
		})
	}
}

// TestBackupAbort: an aborted save leaves nothing, and the file it would
// have replaced is untouched.
func TestBackupAbort(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "b.snap")
	writeBackup(t, path, []byte("old"))
	w, err := CreateBackup(path)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("new, never finished"))
	w.Abort()
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("%d files, want 1", len(ents))
	}
	b, err := OpenBackup(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Meta().Size != 3 {
		t.Errorf("the old backup changed: %s", b.Meta())
	}
}

// TestRestoreSnapshot: a new store restored from a snapshot reopens with
// the snapshot, the watermark at its slot, no log, and formed; a store
// that holds state refuses.
func TestRestoreSnapshot(t *testing.T) {
	fs := vfs.NewMem()
	s := openMem(t, fs)
	w, err := s.CreateSnapshot(77)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("restored state"))
	meta, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RestoreSnapshot(w); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openMem(t, fs)
	defer s.Close()
	st := mustLoad(t, s)
	if st.Commit != 77 || st.Truncated != 77 || len(st.Entries) != 0 {
		t.Errorf("state %+v, want watermark and truncation at 77, no entries", st)
	}
	if got, err := s.Snapshot(); err != nil || got != meta {
		t.Errorf("snapshot %s, %v, want %s", got, err, meta)
	}
	if f, err := s.Formed(); err != nil || !f {
		t.Errorf("formed %v, %v", f, err)
	}
	w2, _ := s.CreateSnapshot(80)
	w2.Write([]byte("x"))
	w2.Finish()
	if err := s.RestoreSnapshot(w2); err == nil {
		t.Error("restored over a store that holds state")
	}
	w2.Abort()
}
