package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"

	"github.com/cockroachdb/pebble"
	"github.com/paxosd/paxosd/paxos"
)

// SnapshotWriter streams a snapshot into the store, a chunk at a time,
// under a generation of its own: the stored snapshot stays as it was until
// CommitSnapshot. Its writes are not synced (the commit's sync makes them
// durable, Pebble's log being one sequence), and it may run on any
// goroutine, concurrently with the store's other writes. A writer that is
// not committed must be aborted, or its chunks stay until the next Open.
type SnapshotWriter struct {
	s        *Store
	gen      uint64
	meta     SnapshotMeta // Size and CRC grow as chunks are written
	buf      []byte       // formatVersion, then the bytes not yet stored
	finished bool
	err      error
}

// CreateSnapshot starts writing the snapshot of slot.
func (s *Store) CreateSnapshot(slot paxos.Slot) (*SnapshotWriter, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	if slot == 0 {
		return nil, fmt.Errorf("wal: snapshot at slot 0")
	}
	return &SnapshotWriter{s: s, gen: s.nextGen.Add(1), meta: SnapshotMeta{Slot: slot},
		buf: append(make([]byte, 0, 1+snapshotChunkBytes), formatVersion)}, nil
}

// Write adds p to the snapshot, storing every full chunk.
func (w *SnapshotWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.finished {
		return 0, errors.New("wal: write to a finished snapshot")
	}
	n := len(p)
	for len(p) > 0 {
		take := min(len(p), 1+snapshotChunkBytes-len(w.buf))
		w.buf = append(w.buf, p[:take]...)
		p = p[take:]
		if len(w.buf) == 1+snapshotChunkBytes {
			if w.err = w.store(); w.err != nil {
				return n - len(p), w.err
			}
		}
	}
	return n, nil
}

// store writes the buffered bytes as the chunk at the snapshot's end.
func (w *SnapshotWriter) store() error {
	chunk := w.buf[1:]
	if len(chunk) == 0 {
		return nil
	}
	w.s.mu.RLock()
	defer w.s.mu.RUnlock()
	if w.s.closed {
		return ErrClosed
	}
	if err := w.s.db.Set(genKey(w.gen, w.meta.Size), w.buf, pebble.NoSync); err != nil {
		return fmt.Errorf("wal: write snapshot chunk: %w", err)
	}
	w.meta.CRC = crc32.Update(w.meta.CRC, castagnoli, chunk)
	w.meta.Size += uint64(len(chunk))
	w.buf = w.buf[:1]
	return nil
}

// Finish stores the last bytes and returns the snapshot's meta. The
// snapshot is not the store's until CommitSnapshot.
func (w *SnapshotWriter) Finish() (SnapshotMeta, error) {
	if w.err == nil && !w.finished {
		w.err = w.store()
		w.finished = w.err == nil
	}
	return w.meta, w.err
}

// Meta returns the meta of a finished snapshot.
func (w *SnapshotWriter) Meta() SnapshotMeta { return w.meta }

// Abort deletes what w stored. It is a no-op once committed (the committed
// generation is the store's) or after Close.
func (w *SnapshotWriter) Abort() {
	w.s.mu.RLock()
	defer w.s.mu.RUnlock()
	if w.s.closed {
		return
	}
	if cur, err := readSnapMeta(w.s.db); err == nil && !cur.legacy && cur.gen == w.gen {
		return
	}
	lo, hi := genBounds(w.gen)
	_ = w.s.db.DeleteRange(lo, hi, pebble.NoSync)
	w.err = errors.New("wal: snapshot aborted")
}

// SnapshotReader reads one stored or staged snapshot front to back, from a
// point-in-time view of the store: a snapshot replaced meanwhile reads to
// its end all the same. At the end it checks the bytes against the meta's
// size and CRC, and returns ErrCorrupt instead of io.EOF if they differ.
type SnapshotReader struct {
	snap *pebble.Snapshot
	it   *pebble.Iterator
	st   storedSnap
	pre  []byte // chunk key prefix (gen chunks) or nil (version 1 index chunks)
	off  uint64 // bytes read
	cur  []byte // the rest of the current chunk
	crc  uint32
	crcd bool // crc covers every byte from 0 (no seek)
	err  error
}

// OpenSnapshot opens the stored snapshot meta names; ErrSnapshotGone if
// the store holds another.
func (s *Store) OpenSnapshot(meta SnapshotMeta) (*SnapshotReader, error) {
	return s.openSnapshot(meta, false)
}

// OpenStaged opens the staged snapshot meta names, which must be staged in
// full.
func (s *Store) OpenStaged(meta SnapshotMeta) (*SnapshotReader, error) {
	return s.openSnapshot(meta, true)
}

func (s *Store) openSnapshot(meta SnapshotMeta, staged bool) (*SnapshotReader, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	snap := s.db.NewSnapshot()
	var st storedSnap
	var err error
	if staged {
		st, err = readStageMeta(snap)
		if err == nil && (st.meta != meta || st.legacy || st.received != meta.Size) {
			err = fmt.Errorf("wal: staged snapshot %s incomplete or replaced: %d bytes of %s staged", meta, st.received, st.meta)
		}
	} else {
		st, err = readSnapMeta(snap)
		if errors.Is(err, ErrNoSnapshot) || (err == nil && st.meta != meta) {
			err = fmt.Errorf("%w: asked for %s", ErrSnapshotGone, meta)
		}
	}
	if err != nil {
		_ = snap.Close()
		return nil, err
	}
	r := &SnapshotReader{snap: snap, st: st, crcd: true}
	lo, hi := snapChunkPrefix, snapChunkEnd
	if !st.legacy {
		lo, hi = genBounds(st.gen)
		r.pre = lo
	}
	if r.it, err = snap.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi}); err != nil {
		_ = snap.Close()
		return nil, readErr(err)
	}
	return r, r.seek(0)
}

// seek positions r at offset: the chunk holding it is found by key.
func (r *SnapshotReader) seek(offset uint64) error {
	r.crcd = r.crcd && offset == 0
	r.off, r.cur = offset, nil
	if offset == r.st.meta.Size {
		return nil
	}
	var key []byte
	var ok bool
	if r.pre == nil {
		ok = r.it.SeekGE(indexedKey(snapChunkPrefix, offset/snapshotChunkBytes))
	} else {
		ok = r.it.SeekLT(binary.BigEndian.AppendUint64(slices.Clone(r.pre), offset+1))
	}
	if ok {
		key = r.it.Key()
	}
	start, err := r.chunkStart(key)
	if err != nil {
		return err
	}
	if offset < start || offset-start >= uint64(len(r.cur)) {
		return corruptf("snapshot chunk", "no chunk of %s holds offset %d", r.st.meta, offset)
	}
	r.cur = r.cur[offset-start:]
	return nil
}

// chunkStart checks the chunk at key (nil: none) and returns the offset it
// starts at, with r.cur its bytes.
func (r *SnapshotReader) chunkStart(key []byte) (uint64, error) {
	if key == nil {
		return 0, firstErr(readErr(r.it.Error()), corruptf("snapshot chunk", "%s: chunk missing at offset %d", r.st.meta, r.off))
	}
	v := r.it.Value()
	if len(v) < 2 || v[0] != formatVersion {
		return 0, corruptf("snapshot chunk", "%s: malformed chunk at offset %d", r.st.meta, r.off)
	}
	r.cur = v[1:]
	idx := binary.BigEndian.Uint64(key[len(key)-8:])
	if r.pre == nil {
		return idx * snapshotChunkBytes, nil
	}
	return idx, nil
}

// Read reads the snapshot's next bytes.
func (r *SnapshotReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.off >= r.st.meta.Size {
		r.err = io.EOF
		if r.crcd && r.crc != r.st.meta.CRC {
			r.err = corruptf("snapshot", "%s does not match its checksum", r.st.meta)
		}
		return 0, r.err
	}
	if len(r.cur) == 0 {
		var key []byte
		if r.it.Next() {
			key = r.it.Key()
		}
		start, err := r.chunkStart(key)
		if err == nil && start != r.off {
			err = corruptf("snapshot chunk", "%s: chunk at %d where %d was expected", r.st.meta, start, r.off)
		}
		if err != nil {
			r.err = err
			return 0, err
		}
	}
	n := copy(p, r.cur[:min(uint64(len(r.cur)), r.st.meta.Size-r.off)])
	r.cur = r.cur[n:]
	r.crc = crc32.Update(r.crc, castagnoli, p[:n])
	r.off += uint64(n)
	return n, nil
}

// readFull fills p unless the snapshot ends first.
func (r *SnapshotReader) readFull(p []byte) (int, error) {
	n, err := io.ReadFull(r, p)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return n, corruptf("snapshot", "%s is short: %d bytes at offset %d", r.st.meta, n, r.off)
	}
	return n, err
}

// Close releases the reader's view of the store.
func (r *SnapshotReader) Close() error {
	return firstErr(r.it.Close(), r.snap.Close())
}

// readAllSnapshot reads a whole snapshot from an OpenSnapshot result.
func readAllSnapshot(r *SnapshotReader, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	defer r.Close()
	data := make([]byte, 0, r.st.meta.Size)
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Read(buf)
		data = append(data, buf[:n]...)
		if err == io.EOF {
			return data, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// cleanSnapshots, at Open, deletes the chunks no meta names (of snapshot
// writes and transfers cut by a crash) and a version 1 staged transfer,
// and sets the next generation above every one in use.
func (s *Store) cleanSnapshots() error {
	cur, err := readSnapMeta(s.db)
	if err != nil && !errors.Is(err, ErrNoSnapshot) {
		return err
	}
	staged, err := readStageMeta(s.db)
	if err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	if staged.legacy {
		deleteChunks(b, staged, true)
		_ = b.Delete(keyStageMeta, nil)
		staged = storedSnap{}
	}
	var keep []uint64
	for _, st := range []storedSnap{cur, staged} {
		if st.meta.Slot != 0 && !st.legacy {
			keep = append(keep, st.gen)
		}
	}
	slices.Sort(keep)
	from := genChunkPrefix
	for _, gen := range keep {
		lo, hi := genBounds(gen)
		_ = b.DeleteRange(from, lo, nil)
		from = hi
	}
	_ = b.DeleteRange(from, genChunkEnd, nil)
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("wal: delete unused snapshot chunks: %w", err)
	}
	if len(keep) > 0 {
		s.nextGen.Store(keep[len(keep)-1])
	}
	return nil
}
