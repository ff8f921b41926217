package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/cockroachdb/pebble"
	"github.com/paxosd/paxosd/paxos"
)

// A snapshot is the node's state machine encoded as of one slot, opaque to
// this package. The store keeps one, as a file beside the Pebble database,
// and at most one being received from the leader (staged):
//
//	"a/truncated"   ver | slot uvarint: entries at or below it are deleted
//	"s/meta"        2 | slot | size | crc32c | gen             (uvarints)
//	"t/meta"        2 | slot | size | crc32c | received | gen  (staging)
//	snap/GEN.snap   the snapshot's bytes (GEN: 16 hex digits)
//
// A snapshot is written (SnapshotWriter, off the node's loop) or received
// (StageSnapshot, each chunk synced so a transfer cut by a crash resumes)
// into a file of a new generation, beside the current one, and becomes
// current by one small synced batch that points "s/meta" at it and
// truncates the log; the previous file is deleted after. No byte of a
// snapshot is held in memory whole, copied, or written through Pebble (a
// snapshot of a million keys is 290 MB: through Pebble's log, memtables
// and compactions it would be written three times over and compacted). A
// crash leaves either the old snapshot and log or the new ones; files that
// no meta names are garbage of a write cut by a crash, deleted at Open.
//
// Stores written before snapshot files (version 1 metas: "s/meta" 1 | slot
// | size | crc with chunks "s/c/" idx in Pebble, and "t/meta" 1 | ... with
// chunks "t/c/" off) are read as they are; a staged version 1 transfer is
// dropped at Open (it starts over), and the next snapshot replaces the old
// layout. A build from before snapshot files refuses a version 2 "s/meta"
// as an unknown format version.

// snapshotChunkBytes is the size of the version 1 chunks, and of the
// buffer of a SnapshotWriter.
const snapshotChunkBytes = 1 << 20

// snapDirName is the directory of the snapshot files, in the store's.
const snapDirName = "snap"

// snapMetaVersion is the format of the snapshot metas this build writes.
const snapMetaVersion byte = 2

var (
	keyTruncated    = []byte("a/truncated")
	keySnapMeta     = []byte("s/meta")
	snapChunkPrefix = []byte("s/c/") // version 1 chunks, by index
	snapChunkEnd    = []byte("s/c0")
	keyStageMeta    = []byte("t/meta")
	stageChunkPref  = []byte("t/c/") // version 1 staged chunks, by offset
	stageChunkEnd   = []byte("t/c0")
)

var (
	// ErrTruncated: a read of log entries at or below the truncation
	// point; those slots exist only in the snapshot now.
	ErrTruncated = errors.New("wal: entries truncated below the snapshot")
	// ErrSnapshotGone: a read of a snapshot that has since been replaced
	// by a newer one. The reader starts over with the new one.
	ErrSnapshotGone = errors.New("wal: snapshot replaced by a newer one")
	// ErrNoSnapshot: the store holds no snapshot.
	ErrNoSnapshot = errors.New("wal: no snapshot")
	// ErrSnapshotStale: a snapshot written for a slot at or below the
	// stored snapshot's (one installed from the leader meanwhile); it was
	// discarded.
	ErrSnapshotStale = errors.New("wal: a snapshot as new is already stored")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// SnapshotMeta identifies a snapshot: the slot it covers, its size and its
// CRC-32C. Two snapshots with the same meta are taken to be the same bytes.
type SnapshotMeta struct {
	Slot paxos.Slot
	Size uint64
	CRC  uint32
}

// Checksum returns the CRC-32C the store uses for snapshot bytes.
func Checksum(data []byte) uint32 { return crc32.Checksum(data, castagnoli) }

func (m SnapshotMeta) String() string {
	return fmt.Sprintf("slot %d (%d bytes, crc %08x)", m.Slot, m.Size, m.CRC)
}

// storedSnap is a snapshot meta as stored: where its bytes are (the file
// of gen, or the version 1 chunks) and, staged, how much was received.
type storedSnap struct {
	meta     SnapshotMeta
	gen      uint64
	legacy   bool // version 1: chunks under "s/c/" or "t/c/"
	received uint64
}

// snapPath is the file of generation gen.
func (s *Store) snapPath(gen uint64) string {
	return s.fs.PathJoin(s.dir, snapDirName, fmt.Sprintf("%016x.snap", gen))
}

// dropBytes adds to b the deletion of st's version 1 chunks, or returns
// the file of st to remove once b committed ("" if none).
func (s *Store) dropBytes(b *pebble.Batch, st storedSnap, staging bool) (file string) {
	switch {
	case st.meta.Slot == 0:
	case st.legacy && staging:
		_ = b.DeleteRange(stageChunkPref, stageChunkEnd, nil)
	case st.legacy:
		_ = b.DeleteRange(snapChunkPrefix, snapChunkEnd, nil)
	default:
		return s.snapPath(st.gen)
	}
	return ""
}

// removeFile deletes a snapshot file that no meta names any more. A
// failure leaves garbage that the next Open deletes.
func (s *Store) removeFile(path string) {
	if path != "" {
		_ = s.fs.Remove(path)
	}
}

// SaveSnapshot stores data, the state machine as of slot, replacing the
// previous snapshot, and deletes the log entries at or below truncate: a
// SnapshotWriter given all of data at once, then CommitSnapshot.
func (s *Store) SaveSnapshot(slot paxos.Slot, data []byte, truncate paxos.Slot) (SnapshotMeta, error) {
	w, err := s.CreateSnapshot(slot)
	if err != nil {
		return SnapshotMeta{}, err
	}
	if _, err := w.Write(data); err != nil {
		w.Abort()
		return SnapshotMeta{}, err
	}
	meta, err := w.Finish()
	if err != nil {
		w.Abort()
		return SnapshotMeta{}, err
	}
	if err := s.CommitSnapshot(w, truncate); err != nil {
		return SnapshotMeta{}, err
	}
	return meta, nil
}

// CommitSnapshot makes the snapshot w wrote (and finished) the stored one
// and deletes the log entries at or below truncate, in one synced batch;
// it deletes the previous snapshot's chunks. w's slot must be at or below
// the durable watermark (the caller applied only chosen, durable slots),
// and truncate at or below it. A snapshot no newer than the stored one (a
// snapshot installed meanwhile) is discarded with ErrSnapshotStale. Entries
// returns ErrTruncated for the deleted slots from before the batch
// commits, so a reader never mistakes them for absent.
func (s *Store) CommitSnapshot(w *SnapshotWriter, truncate paxos.Slot) error {
	unlock, err := s.lockForWrite()
	if err != nil {
		return err
	}
	defer unlock()
	slot := w.meta.Slot
	if !w.finished {
		return fmt.Errorf("wal: snapshot at slot %d committed before it was finished", slot)
	}
	if slot == 0 || slot > s.commit || truncate > slot {
		return fmt.Errorf("wal: snapshot at slot %d truncating to %d with the watermark at %d: a snapshot covers only chosen slots", slot, truncate, s.commit)
	}
	cur, err := readSnapMeta(s.db)
	if err != nil && !errors.Is(err, ErrNoSnapshot) {
		return err
	}
	if cur.meta.Slot >= slot {
		s.removeFile(s.snapPath(w.gen))
		return fmt.Errorf("%w: snapshot at slot %d, stored %s", ErrSnapshotStale, slot, cur.meta)
	}
	b := s.db.NewBatch()
	defer b.Close()
	old := s.dropBytes(b, cur, false)
	_ = b.Set(keySnapMeta, appendSnapMeta(nil, storedSnap{meta: w.meta, gen: w.gen}, false), nil)
	if uint64(truncate) > s.truncated.Load() {
		_ = b.DeleteRange(entryPrefix, entryKey(truncate+1), nil)
		_ = b.Set(keyTruncated, appendSlotValue(nil, truncate), nil)
		s.truncated.Store(uint64(truncate)) // before the deletion is visible
	}
	if err := b.Commit(s.wo); err != nil {
		return fmt.Errorf("wal: save snapshot: %w", err)
	}
	s.removeFile(old)
	return nil
}

// Snapshot returns the stored snapshot's meta, or ErrNoSnapshot.
func (s *Store) Snapshot() (SnapshotMeta, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return SnapshotMeta{}, ErrClosed
	}
	st, err := readSnapMeta(s.db)
	return st.meta, err
}

// ReadSnapshot returns up to max bytes of the snapshot meta names, from
// offset on (fewer only at the end). It fails with ErrSnapshotGone if the
// store holds another snapshot by now.
func (s *Store) ReadSnapshot(meta SnapshotMeta, offset uint64, max int) ([]byte, error) {
	n := max
	if offset <= meta.Size {
		n = int(min(meta.Size-offset, uint64(max)))
	}
	return s.ReadSnapshotInto(meta, offset, make([]byte, n))
}

// ReadSnapshotInto is ReadSnapshot reading into buf, at most len(buf)
// bytes: a member serving its snapshot chunk after chunk reuses its
// buffers rather than leave a megabyte of garbage a chunk on a heap that
// holds the whole state (the collector would mark that state again for
// every few chunks).
func (s *Store) ReadSnapshotInto(meta SnapshotMeta, offset uint64, buf []byte) ([]byte, error) {
	r, err := s.OpenSnapshot(meta)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if offset > meta.Size {
		return nil, fmt.Errorf("wal: snapshot offset %d beyond its %d bytes", offset, meta.Size)
	}
	if err := r.seek(offset); err != nil {
		return nil, err
	}
	out := buf[:min(meta.Size-offset, uint64(len(buf)))]
	n, err := r.readFull(out)
	return out[:n], err
}

// LoadSnapshot returns the stored snapshot in full, checked against its
// CRC, or ErrNoSnapshot. It is for tests and tools: the node streams the
// snapshot with OpenSnapshot instead.
func (s *Store) LoadSnapshot() (SnapshotMeta, []byte, error) {
	meta, err := s.Snapshot()
	if err != nil {
		return SnapshotMeta{}, nil, err
	}
	data, err := readAllSnapshot(s.OpenSnapshot(meta))
	return meta, data, err
}

// Truncated returns the highest slot deleted from the log (0: none).
func (s *Store) Truncated() paxos.Slot { return paxos.Slot(s.truncated.Load()) }

// StageSnapshot adds chunk, the bytes at offset of the snapshot meta names,
// to the snapshot being received, durably. offset must be where the staged
// bytes end (Staged); a chunk of another snapshot discards what was staged
// of the previous one (offset must then be 0).
func (s *Store) StageSnapshot(meta SnapshotMeta, offset uint64, chunk []byte) error {
	unlock, err := s.lockForWrite()
	if err != nil {
		return err
	}
	defer unlock()
	staged, err := readStageMeta(s.db)
	if err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	var old string
	if staged.meta != meta || staged.legacy {
		old = s.dropBytes(b, staged, true)
		staged = storedSnap{meta: meta, gen: s.nextGen.Add(1)}
	}
	if offset != staged.received || offset+uint64(len(chunk)) > meta.Size {
		return fmt.Errorf("wal: snapshot chunk at %d+%d does not continue the %d bytes staged of %s", offset, len(chunk), staged.received, meta)
	}
	if err := s.writeStaged(staged.gen, offset, chunk); err != nil {
		return err
	}
	staged.received = offset + uint64(len(chunk))
	_ = b.Set(keyStageMeta, appendSnapMeta(nil, staged, true), nil)
	if err := b.Commit(s.wo); err != nil {
		return fmt.Errorf("wal: stage snapshot: %w", err)
	}
	s.removeFile(old)
	return nil
}

// writeStaged writes chunk at offset of gen's file, durably (a new file's
// directory entry too). Bytes past offset that a transfer cut by a crash
// left are overwritten.
func (s *Store) writeStaged(gen, offset uint64, chunk []byte) error {
	path := s.snapPath(gen)
	f, err := s.fs.OpenReadWrite(path)
	if err != nil {
		return fmt.Errorf("wal: stage snapshot: %w", err)
	}
	_, werr := f.WriteAt(chunk, int64(offset))
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		return fmt.Errorf("wal: stage snapshot: %w", err)
	}
	if offset == 0 {
		if err := syncDir(s.fs, s.fs.PathDir(path)); err != nil {
			return fmt.Errorf("wal: stage snapshot: %w", err)
		}
	}
	return nil
}

// Staged returns the snapshot being received and how many of its bytes are
// staged; a zero meta if none.
func (s *Store) Staged() (SnapshotMeta, uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return SnapshotMeta{}, 0, ErrClosed
	}
	st, err := readStageMeta(s.db)
	if st.legacy {
		return SnapshotMeta{}, 0, err // dropped at the next Open; never resumed
	}
	return st.meta, st.received, err
}

// DiscardStaged forgets the staged snapshot meta names, and deletes its
// bytes, so that the next transfer of it starts from the first byte: a
// staged snapshot that fails its checks would otherwise be resumed, and
// fail again, at every offer. It does nothing if another one (or none) is
// staged.
func (s *Store) DiscardStaged(meta SnapshotMeta) error {
	unlock, err := s.lockForWrite()
	if err != nil {
		return err
	}
	defer unlock()
	staged, err := readStageMeta(s.db)
	if err != nil || staged.meta != meta {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	old := s.dropBytes(b, staged, true)
	_ = b.Delete(keyStageMeta, nil)
	if err := b.Commit(s.wo); err != nil {
		return fmt.Errorf("wal: discard staged snapshot: %w", err)
	}
	s.removeFile(old)
	return nil
}

// InstallSnapshot makes the staged snapshot meta names (received in full
// from the leader) this node's snapshot: in one synced batch it points the
// stored snapshot at the staged file, deletes the previous snapshot and
// every log entry at or below meta.Slot, and moves the watermark there.
// meta.Slot must be above the durable watermark: a snapshot that is no
// news is refused. The caller checked the bytes (OpenStaged verifies the
// CRC as it reads). The staged file becomes the snapshot's: nothing is
// copied.
func (s *Store) InstallSnapshot(meta SnapshotMeta) error {
	unlock, err := s.lockForWrite()
	if err != nil {
		return err
	}
	defer unlock()
	if meta.Slot <= s.commit {
		return fmt.Errorf("wal: snapshot at slot %d is not above the watermark %d", meta.Slot, s.commit)
	}
	staged, err := readStageMeta(s.db)
	if err != nil {
		return err
	}
	if staged.meta != meta || staged.legacy || staged.received != meta.Size {
		return fmt.Errorf("wal: snapshot %s is not staged in full (staged: %s, %d bytes)", meta, staged.meta, staged.received)
	}
	cur, err := readSnapMeta(s.db)
	if err != nil && !errors.Is(err, ErrNoSnapshot) {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	old := s.dropBytes(b, cur, false)
	_ = b.Set(keySnapMeta, appendSnapMeta(nil, storedSnap{meta: meta, gen: staged.gen}, false), nil)
	_ = b.Delete(keyStageMeta, nil)
	_ = b.DeleteRange(entryPrefix, entryKey(meta.Slot+1), nil)
	_ = b.Set(keyTruncated, appendSlotValue(nil, meta.Slot), nil)
	_ = b.Set(keyCommit, appendSlotValue(nil, meta.Slot), nil)
	s.truncated.Store(uint64(meta.Slot))
	if err := b.Commit(s.wo); err != nil {
		return fmt.Errorf("wal: install snapshot: %w", err)
	}
	s.commit = meta.Slot
	s.removeFile(old)
	return nil
}

// lockForWrite takes the locks a write other than Save needs: it is
// serialized with Save, and Close waits for it.
func (s *Store) lockForWrite() (unlock func(), err error) {
	s.saveMu.Lock()
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		s.saveMu.Unlock()
		return nil, ErrClosed
	}
	return func() { s.mu.RUnlock(); s.saveMu.Unlock() }, nil
}

func indexedKey(prefix []byte, n uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(nil), prefix...), n)
}

func appendSnapMeta(dst []byte, st storedSnap, staging bool) []byte {
	dst = append(dst, snapMetaVersion)
	dst = binary.AppendUvarint(dst, uint64(st.meta.Slot))
	dst = binary.AppendUvarint(dst, st.meta.Size)
	dst = binary.AppendUvarint(dst, uint64(st.meta.CRC))
	if staging {
		dst = binary.AppendUvarint(dst, st.received)
	}
	return binary.AppendUvarint(dst, st.gen)
}

// decodeSnapMeta decodes a stored meta of either version.
func decodeSnapMeta(what string, b []byte, staging bool) (storedSnap, error) {
	if len(b) == 0 || b[0] != formatVersion && b[0] != snapMetaVersion {
		return storedSnap{}, corruptf(what, "unknown format version (want %d or %d)", formatVersion, snapMetaVersion)
	}
	legacy := b[0] == formatVersion
	d := decoder{what: what, b: b[1:]}
	st := storedSnap{meta: SnapshotMeta{Slot: paxos.Slot(d.uvarint()), Size: d.uvarint()}, legacy: legacy}
	crc := d.uvarint()
	if staging {
		st.received = d.uvarint()
	}
	if !legacy {
		st.gen = d.uvarint()
	}
	if err := d.finish(); err != nil {
		return storedSnap{}, err
	}
	if crc > 1<<32-1 || st.received > st.meta.Size || st.meta.Slot == 0 {
		return storedSnap{}, corruptf(what, "slot %d crc %d received %d of %d", st.meta.Slot, crc, st.received, st.meta.Size)
	}
	st.meta.CRC = uint32(crc)
	return st, nil
}

func readSnapMeta(r pebble.Reader) (storedSnap, error) {
	raw, ok, err := get(r, keySnapMeta)
	if err != nil {
		return storedSnap{}, err
	}
	if !ok {
		return storedSnap{}, ErrNoSnapshot
	}
	return decodeSnapMeta("snapshot meta", raw, false)
}

func readStageMeta(r pebble.Reader) (storedSnap, error) {
	raw, ok, err := get(r, keyStageMeta)
	if err != nil || !ok {
		return storedSnap{}, err
	}
	return decodeSnapMeta("staged snapshot meta", raw, true)
}

func readTruncated(r pebble.Reader) (paxos.Slot, error) {
	raw, ok, err := get(r, keyTruncated)
	if err != nil || !ok {
		return 0, err
	}
	return decodeSlotValue("truncation point", raw)
}
