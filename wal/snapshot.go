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
// this package. The store keeps one, in chunks, next to the log:
//
//	"a/truncated"      ver | slot uvarint: entries at or below it are deleted
//	"s/meta"           ver | slot | size | crc32c   (uvarints)
//	"s/c/" idx (8B BE) ver | bytes of chunk idx (snapshotChunkBytes each)
//	"t/meta"           ver | slot | size | crc32c | received   (staging)
//	"t/c/" off (8B BE) ver | bytes received at offset off       (staging)
//
// Taking a snapshot and truncating the log below it is one synced batch, as
// is installing a snapshot received from the leader, so a crash leaves
// either the old snapshot and log or the new ones. A snapshot being
// received is staged under "t/" chunk by chunk, each chunk synced, so a
// transfer interrupted by a crash resumes where it stopped.

// snapshotChunkBytes is the size of the stored chunks (the last is shorter).
const snapshotChunkBytes = 1 << 20

var (
	keyTruncated    = []byte("a/truncated")
	keySnapMeta     = []byte("s/meta")
	snapChunkPrefix = []byte("s/c/")
	snapChunkEnd    = []byte("s/c0")
	keyStageMeta    = []byte("t/meta")
	stageChunkPref  = []byte("t/c/")
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

// SaveSnapshot stores data, the state machine as of slot, replacing the
// previous snapshot, and deletes the log entries at or below truncate, all
// in one synced batch. slot must be at or below the durable watermark (the
// caller applied only chosen, durable slots), and truncate at or below
// slot. Entries returns ErrTruncated for the deleted slots from before the
// batch commits, so a reader never mistakes them for absent.
func (s *Store) SaveSnapshot(slot paxos.Slot, data []byte, truncate paxos.Slot) (SnapshotMeta, error) {
	unlock, err := s.lockForWrite()
	if err != nil {
		return SnapshotMeta{}, err
	}
	defer unlock()
	if slot == 0 || slot > s.commit || truncate > slot {
		return SnapshotMeta{}, fmt.Errorf("wal: snapshot at slot %d truncating to %d with the watermark at %d: a snapshot covers only chosen slots", slot, truncate, s.commit)
	}
	meta := SnapshotMeta{Slot: slot, Size: uint64(len(data)), CRC: Checksum(data)}
	b := s.db.NewBatchWithSize(len(data) + 1024)
	defer b.Close()
	writeSnapshot(b, meta, data)
	if uint64(truncate) > s.truncated.Load() {
		_ = b.DeleteRange(entryPrefix, entryKey(truncate+1), nil)
		_ = b.Set(keyTruncated, appendSlotValue(nil, truncate), nil)
		s.truncated.Store(uint64(truncate)) // before the deletion is visible
	}
	if err := b.Commit(s.wo); err != nil {
		return SnapshotMeta{}, fmt.Errorf("wal: save snapshot: %w", err)
	}
	return meta, nil
}

// writeSnapshot adds to b the replacement of the stored snapshot by data.
func writeSnapshot(b *pebble.Batch, meta SnapshotMeta, data []byte) {
	_ = b.DeleteRange(snapChunkPrefix, snapChunkEnd, nil)
	for i := 0; i*snapshotChunkBytes < len(data) || i == 0; i++ {
		chunk := data[i*snapshotChunkBytes : min(len(data), (i+1)*snapshotChunkBytes)]
		_ = b.Set(indexedKey(snapChunkPrefix, uint64(i)), append([]byte{formatVersion}, chunk...), nil)
	}
	_ = b.Set(keySnapMeta, appendSnapMeta(nil, meta, 0, false), nil)
}

// Snapshot returns the stored snapshot's meta, or ErrNoSnapshot.
func (s *Store) Snapshot() (SnapshotMeta, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return SnapshotMeta{}, ErrClosed
	}
	return readSnapMeta(s.db)
}

// ReadSnapshot returns up to max bytes of the snapshot meta names, from
// offset on (fewer only at the end). It fails with ErrSnapshotGone if the
// store holds another snapshot by now.
func (s *Store) ReadSnapshot(meta SnapshotMeta, offset uint64, max int) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	snap := s.db.NewSnapshot()
	defer snap.Close()
	cur, err := readSnapMeta(snap)
	if errors.Is(err, ErrNoSnapshot) || (err == nil && cur != meta) {
		return nil, fmt.Errorf("%w: asked for %s", ErrSnapshotGone, meta)
	}
	if err != nil {
		return nil, err
	}
	if offset > meta.Size {
		return nil, fmt.Errorf("wal: snapshot offset %d beyond its %d bytes", offset, meta.Size)
	}
	end := min(meta.Size, offset+uint64(max))
	out := make([]byte, 0, end-offset)
	for off := offset; off < end; {
		idx := off / snapshotChunkBytes
		raw, ok, err := get(snap, indexedKey(snapChunkPrefix, idx))
		if err != nil {
			return nil, err
		}
		if !ok || len(raw) < 1 || raw[0] != formatVersion {
			return nil, corruptf("snapshot chunk", "chunk %d of %s missing or malformed", idx, meta)
		}
		chunk := raw[1:]
		in := off - idx*snapshotChunkBytes
		if in >= uint64(len(chunk)) {
			return nil, corruptf("snapshot chunk", "chunk %d of %s is short", idx, meta)
		}
		n := min(uint64(len(chunk))-in, end-off)
		out = append(out, chunk[in:in+n]...)
		off += n
	}
	return out, nil
}

// LoadSnapshot returns the stored snapshot in full, checked against its
// CRC, or ErrNoSnapshot.
func (s *Store) LoadSnapshot() (SnapshotMeta, []byte, error) {
	meta, err := s.Snapshot()
	if err != nil {
		return SnapshotMeta{}, nil, err
	}
	data, err := s.ReadSnapshot(meta, 0, int(meta.Size))
	if err != nil {
		return SnapshotMeta{}, nil, err
	}
	if Checksum(data) != meta.CRC {
		return SnapshotMeta{}, nil, corruptf("snapshot", "%s does not match its checksum", meta)
	}
	return meta, data, nil
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
	staged, received, err := readStageMeta(s.db)
	if err != nil {
		return err
	}
	b := s.db.NewBatchWithSize(len(chunk) + 256)
	defer b.Close()
	if staged != meta {
		_ = b.DeleteRange(stageChunkPref, stageChunkEnd, nil)
		received = 0
	}
	if offset != received || offset+uint64(len(chunk)) > meta.Size {
		return fmt.Errorf("wal: snapshot chunk at %d+%d does not continue the %d bytes staged of %s", offset, len(chunk), received, meta)
	}
	if len(chunk) > 0 {
		_ = b.Set(indexedKey(stageChunkPref, offset), append([]byte{formatVersion}, chunk...), nil)
	}
	_ = b.Set(keyStageMeta, appendSnapMeta(nil, meta, offset+uint64(len(chunk)), true), nil)
	if err := b.Commit(s.wo); err != nil {
		return fmt.Errorf("wal: stage snapshot: %w", err)
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
	return readStageMeta(s.db)
}

// StagedData returns the fully staged snapshot, checked against its CRC.
func (s *Store) StagedData() (SnapshotMeta, []byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return SnapshotMeta{}, nil, ErrClosed
	}
	snap := s.db.NewSnapshot()
	defer snap.Close()
	meta, received, err := readStageMeta(snap)
	if err != nil {
		return SnapshotMeta{}, nil, err
	}
	if meta.Slot == 0 || received != meta.Size {
		return SnapshotMeta{}, nil, fmt.Errorf("wal: staged snapshot %s incomplete: %d bytes received", meta, received)
	}
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: stageChunkPref, UpperBound: stageChunkEnd})
	if err != nil {
		return SnapshotMeta{}, nil, readErr(err)
	}
	data := make([]byte, 0, meta.Size)
	for valid := it.First(); valid; valid = it.Next() {
		v := it.Value()
		if len(v) < 1 || v[0] != formatVersion || binary.BigEndian.Uint64(it.Key()[len(stageChunkPref):]) != uint64(len(data)) {
			_ = it.Close()
			return SnapshotMeta{}, nil, corruptf("staged snapshot", "chunk at %d malformed", len(data))
		}
		data = append(data, v[1:]...)
	}
	if err := firstErr(it.Error(), it.Close()); err != nil {
		return SnapshotMeta{}, nil, readErr(err)
	}
	if uint64(len(data)) != meta.Size || Checksum(data) != meta.CRC {
		return SnapshotMeta{}, nil, corruptf("staged snapshot", "%s does not match its checksum", meta)
	}
	return meta, data, nil
}

// InstallSnapshot makes data (the snapshot meta names, received from the
// leader) this node's snapshot: in one synced batch it replaces the stored
// snapshot, deletes every log entry at or below meta.Slot, moves the
// watermark there and clears the staging area. meta.Slot must be above the
// durable watermark: a snapshot that is no news is refused.
func (s *Store) InstallSnapshot(meta SnapshotMeta, data []byte) error {
	unlock, err := s.lockForWrite()
	if err != nil {
		return err
	}
	defer unlock()
	if meta.Slot <= s.commit {
		return fmt.Errorf("wal: snapshot at slot %d is not above the watermark %d", meta.Slot, s.commit)
	}
	if uint64(len(data)) != meta.Size || Checksum(data) != meta.CRC {
		return fmt.Errorf("wal: snapshot bytes do not match %s", meta)
	}
	b := s.db.NewBatchWithSize(len(data) + 1024)
	defer b.Close()
	writeSnapshot(b, meta, data)
	_ = b.DeleteRange(entryPrefix, entryKey(meta.Slot+1), nil)
	_ = b.Set(keyTruncated, appendSlotValue(nil, meta.Slot), nil)
	_ = b.Set(keyCommit, appendSlotValue(nil, meta.Slot), nil)
	_ = b.DeleteRange(stageChunkPref, stageChunkEnd, nil)
	_ = b.Delete(keyStageMeta, nil)
	s.truncated.Store(uint64(meta.Slot))
	if err := b.Commit(s.wo); err != nil {
		return fmt.Errorf("wal: install snapshot: %w", err)
	}
	s.commit = meta.Slot
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

func appendSnapMeta(dst []byte, m SnapshotMeta, received uint64, staging bool) []byte {
	dst = append(dst, formatVersion)
	dst = binary.AppendUvarint(dst, uint64(m.Slot))
	dst = binary.AppendUvarint(dst, m.Size)
	dst = binary.AppendUvarint(dst, uint64(m.CRC))
	if staging {
		dst = binary.AppendUvarint(dst, received)
	}
	return dst
}

func decodeSnapMeta(what string, b []byte, staging bool) (SnapshotMeta, uint64, error) {
	d := decoder{what: what, b: b}
	d.version()
	m := SnapshotMeta{Slot: paxos.Slot(d.uvarint()), Size: d.uvarint()}
	crc := d.uvarint()
	var received uint64
	if staging {
		received = d.uvarint()
	}
	if err := d.finish(); err != nil {
		return SnapshotMeta{}, 0, err
	}
	if crc > 1<<32-1 || received > m.Size || m.Slot == 0 {
		return SnapshotMeta{}, 0, corruptf(what, "slot %d crc %d received %d of %d", m.Slot, crc, received, m.Size)
	}
	m.CRC = uint32(crc)
	return m, received, nil
}

func readSnapMeta(r pebble.Reader) (SnapshotMeta, error) {
	raw, ok, err := get(r, keySnapMeta)
	if err != nil {
		return SnapshotMeta{}, err
	}
	if !ok {
		return SnapshotMeta{}, ErrNoSnapshot
	}
	m, _, err := decodeSnapMeta("snapshot meta", raw, false)
	return m, err
}

func readStageMeta(r pebble.Reader) (SnapshotMeta, uint64, error) {
	raw, ok, err := get(r, keyStageMeta)
	if err != nil || !ok {
		return SnapshotMeta{}, 0, err
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
