package wal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"github.com/paxosd/paxosd/paxos"
)

// A backup file (paxosd snapshot save, docs/BACKUP.md) is one state
// machine snapshot, framed so that the file checks itself:
//
//	+--------------------------------------------------------------+
//	| "paxosd backup\n" (14 bytes) | version (1 byte, 1) | 0 (1 B)  |
//	+--------------------------------------------------------------+
//	| the snapshot's bytes (statemachine's format), size bytes      |
//	+--------------------------------------------------------------+
//	| slot u64 BE | size u64 BE | crc32c u32 BE | "PXBK"            |
//	+--------------------------------------------------------------+
//
// The trailer comes last because the size and checksum are known only
// once the snapshot has streamed in; a file cut short has no trailer (or
// one whose size does not match the file's), and is refused before a
// byte of the snapshot is decoded. The CRC-32C is the store's
// (Checksum). It is written to a temporary file beside the final name,
// synced, and renamed into place: a save cut short leaves no file under
// the final name, and never a half-written one.

const (
	backupMagic             = "paxosd backup\n"
	backupVersion      byte = 1
	backupHeaderBytes       = len(backupMagic) + 2
	backupTrailerBytes      = 8 + 8 + 4 + 4
	backupTrailerMagic      = "PXBK"
)

// ErrBadBackup: a file that is not a paxosd backup, or one that is
// damaged (truncated, or its bytes no longer match its checksum).
var ErrBadBackup = errors.New("not a sound paxosd backup")

// BackupWriter writes a backup file.
type BackupWriter struct {
	path, tmp string
	f         *os.File
	w         *bufio.Writer
	meta      SnapshotMeta
	done      bool
}

// CreateBackup starts writing a backup that Commit will name path; until
// then it is a temporary file in path's directory.
func CreateBackup(path string) (*BackupWriter, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".*.part")
	if err != nil {
		return nil, fmt.Errorf("creating the backup file: %w", err)
	}
	bw := &BackupWriter{path: path, tmp: f.Name(), f: f, w: bufio.NewWriterSize(f, 1<<20)}
	hdr := append([]byte(backupMagic), backupVersion, 0)
	if _, err := bw.w.Write(hdr); err != nil {
		bw.Abort()
		return nil, fmt.Errorf("writing the backup file: %w", err)
	}
	return bw, nil
}

// Write adds p to the snapshot's bytes.
func (w *BackupWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	w.meta.CRC = crc32.Update(w.meta.CRC, castagnoli, p[:n])
	w.meta.Size += uint64(n)
	if err != nil {
		return n, fmt.Errorf("writing the backup file: %w", err)
	}
	return n, nil
}

// Finish writes the trailer for the snapshot of slot and syncs the file.
// It returns the meta of what was written; the file keeps its temporary
// name (TempPath) until Commit.
func (w *BackupWriter) Finish(slot paxos.Slot) (SnapshotMeta, error) {
	w.meta.Slot = slot
	var tr [backupTrailerBytes]byte
	binary.BigEndian.PutUint64(tr[0:], uint64(slot))
	binary.BigEndian.PutUint64(tr[8:], w.meta.Size)
	binary.BigEndian.PutUint32(tr[16:], w.meta.CRC)
	copy(tr[20:], backupTrailerMagic)
	if _, err := w.w.Write(tr[:]); err != nil {
		return w.meta, fmt.Errorf("writing the backup file: %w", err)
	}
	if err := w.w.Flush(); err != nil {
		return w.meta, fmt.Errorf("writing the backup file: %w", err)
	}
	if err := w.f.Sync(); err != nil {
		return w.meta, fmt.Errorf("syncing the backup file: %w", err)
	}
	return w.meta, nil
}

// TempPath is where the backup is until Commit.
func (w *BackupWriter) TempPath() string { return w.tmp }

// Commit gives the finished backup its name, replacing any file there, and
// syncs the directory so the name survives a crash.
func (w *BackupWriter) Commit() error {
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("closing the backup file: %w", err)
	}
	if err := os.Rename(w.tmp, w.path); err != nil {
		return fmt.Errorf("naming the backup file: %w", err)
	}
	w.done = true
	dir := filepath.Dir(w.path)
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return errors.Join(d.Sync(), d.Close())
}

// Abort deletes the temporary file (a no-op after Commit).
func (w *BackupWriter) Abort() {
	if w.done {
		return
	}
	w.done = true
	_ = w.f.Close()
	_ = os.Remove(w.tmp)
}

// Backup is a backup file opened for reading.
type Backup struct {
	f    *os.File
	meta SnapshotMeta
	// FileBytes is the file's size.
	FileBytes int64
}

// OpenBackup opens the backup file at path and checks its frame: the
// header, the trailer, and that the file is as long as the trailer says.
// The snapshot's checksum is checked as Open's readers reach its end.
func OpenBackup(path string) (*Backup, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	b, err := openBackup(f)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

func openBackup(f *os.File) (*Backup, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	hdr := make([]byte, backupHeaderBytes)
	if _, err := io.ReadFull(f, hdr); err != nil || string(hdr[:len(backupMagic)]) != backupMagic {
		return nil, fmt.Errorf("%w: it does not start as one (is it a file 'paxosd snapshot save' wrote?)", ErrBadBackup)
	}
	if hdr[len(backupMagic)] != backupVersion {
		return nil, fmt.Errorf("%w: backup format %d, this build reads format %d", ErrBadBackup, hdr[len(backupMagic)], backupVersion)
	}
	if size < int64(backupHeaderBytes+backupTrailerBytes) {
		return nil, fmt.Errorf("%w: truncated: %d bytes, no room for its trailer", ErrBadBackup, size)
	}
	tr := make([]byte, backupTrailerBytes)
	if _, err := f.ReadAt(tr, size-int64(backupTrailerBytes)); err != nil {
		return nil, err
	}
	meta := SnapshotMeta{
		Slot: paxos.Slot(binary.BigEndian.Uint64(tr[0:])),
		Size: binary.BigEndian.Uint64(tr[8:]),
		CRC:  binary.BigEndian.Uint32(tr[16:]),
	}
	if string(tr[20:]) != backupTrailerMagic {
		return nil, fmt.Errorf("%w: truncated or damaged: no trailer at its end (%d bytes)", ErrBadBackup, size)
	}
	if want := uint64(backupHeaderBytes+backupTrailerBytes) + meta.Size; want != uint64(size) {
		return nil, fmt.Errorf("%w: the file is %d bytes, its trailer says %d", ErrBadBackup, size, want)
	}
	return &Backup{f: f, meta: meta, FileBytes: size}, nil
}

// Meta is the snapshot's slot, size and checksum, as the trailer says.
func (b *Backup) Meta() SnapshotMeta { return b.meta }

// Open returns a reader of the snapshot's bytes, which fails with
// ErrBadBackup at the end if they do not match the checksum. Readers
// are independent.
func (b *Backup) Open() (io.Reader, error) {
	return &crcReader{r: io.NewSectionReader(b.f, int64(backupHeaderBytes), int64(b.meta.Size)), want: b.meta.CRC}, nil
}

// Verify reads the snapshot's bytes through and checks their checksum.
func (b *Backup) Verify() error {
	r, _ := b.Open()
	_, err := io.Copy(io.Discard, r)
	return err
}

// Close closes the file.
func (b *Backup) Close() error { return b.f.Close() }

// crcReader checks the CRC-32C of what it reads when it reaches the end.
type crcReader struct {
	r    io.Reader
	crc  uint32
	want uint32
}

func (c *crcReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.crc = crc32.Update(c.crc, castagnoli, p[:n])
	if err == io.EOF && c.crc != c.want {
		return n, fmt.Errorf("%w: checksum %08x, its trailer says %08x: the file is damaged", ErrBadBackup, c.crc, c.want)
	}
	return n, err
}

// RestoreSnapshot makes the snapshot w wrote (and finished) the first
// state of a new store, as `paxosd snapshot restore` does: in one synced
// batch the snapshot becomes the stored one, the watermark and the
// truncation point move to its slot (there is no log below it to hold),
// and the store is marked formed (SetFormed: its node starts as a member
// of the cluster the snapshot names, without --new-cluster). The store
// must be new: no promise, entry, snapshot or mark.
func (s *Store) RestoreSnapshot(w *SnapshotWriter) error {
	unlock, err := s.lockForWrite()
	if err != nil {
		return err
	}
	defer unlock()
	if !w.finished {
		return fmt.Errorf("wal: snapshot at slot %d restored before it was finished", w.meta.Slot)
	}
	if !s.isNew || s.commit != 0 {
		return fmt.Errorf("wal: restoring into a store that holds state (watermark %d)", s.commit)
	}
	if _, err := readSnapMeta(s.db); !errors.Is(err, ErrNoSnapshot) {
		return fmt.Errorf("wal: restoring into a store that holds a snapshot (%v)", err)
	}
	slot := w.meta.Slot
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.Set(keySnapMeta, appendSnapMeta(nil, storedSnap{meta: w.meta, gen: w.gen}, false), nil)
	_ = b.Set(keyTruncated, appendSlotValue(nil, slot), nil)
	_ = b.Set(keyCommit, appendSlotValue(nil, slot), nil)
	_ = b.Set(keyFormed, []byte{formatVersion}, nil)
	if err := b.Commit(s.wo); err != nil {
		return fmt.Errorf("wal: restore snapshot: %w", err)
	}
	s.truncated.Store(uint64(slot))
	s.commit = slot
	return nil
}

// RemoveBackup deletes the backup file at path, if any (a join's, once
// the store holds its state).
func RemoveBackup(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
