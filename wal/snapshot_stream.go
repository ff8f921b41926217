package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
	"github.com/paxosd/paxosd/paxos"
)

// snapshotBytesPerSync is how many bytes of a snapshot being written may
// wait for writeback before the kernel is asked to start it.
const snapshotBytesPerSync = 1 << 20

// SnapshotWriter streams a snapshot into a file of the store, of a
// generation of its own: the stored snapshot stays as it was until
// CommitSnapshot. It may run on any goroutine, concurrently with the
// store's other writes. A writer that is not committed must be aborted, or
// its file stays until the next Open.
type SnapshotWriter struct {
	s        *Store
	gen      uint64
	f        vfs.File
	meta     SnapshotMeta // Size and CRC grow as bytes are written
	buf      []byte       // bytes not yet written to f
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
	gen := s.nextGen.Add(1)
	f, err := s.fs.Create(s.snapPath(gen))
	if err != nil {
		return nil, fmt.Errorf("wal: create snapshot: %w", err)
	}
	// A snapshot is hundreds of megabytes written at disk speed. Left to the
	// kernel, its dirty pages go out in one burst at the final sync (or when
	// the dirty limit is hit), and the log's fsyncs queue behind that burst:
	// a put's latency jumps for as long. Asking for writeback of every
	// megabyte as it is written (sync_file_range, not waiting for it:
	// Pebble does the same for its tables) spreads the writes out. Finish
	// still syncs the whole file; an aborted one need not be.
	f = vfs.NewSyncingFile(f, vfs.SyncingFileOptions{BytesPerSync: snapshotBytesPerSync, NoSyncOnClose: true})
	return &SnapshotWriter{s: s, gen: gen, f: f, meta: SnapshotMeta{Slot: slot}, buf: make([]byte, 0, snapshotChunkBytes)}, nil
}

// Write adds p to the snapshot.
func (w *SnapshotWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.finished {
		return 0, errors.New("wal: write to a finished snapshot")
	}
	n := len(p)
	for len(p) > 0 {
		take := min(len(p), cap(w.buf)-len(w.buf))
		w.buf = append(w.buf, p[:take]...)
		p = p[take:]
		if len(w.buf) == cap(w.buf) {
			if w.err = w.flush(); w.err != nil {
				return n - len(p), w.err
			}
		}
	}
	return n, nil
}

// flush writes the buffered bytes to the file.
func (w *SnapshotWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	w.meta.CRC = crc32.Update(w.meta.CRC, castagnoli, w.buf)
	w.meta.Size += uint64(len(w.buf))
	// vfs.File.Write may modify what it is given: it gets the buffer
	// after the CRC has been taken.
	if _, err := w.f.Write(w.buf); err != nil {
		return fmt.Errorf("wal: write snapshot: %w", err)
	}
	w.buf = w.buf[:0]
	return nil
}

// Finish writes the last bytes, syncs the file and its directory entry,
// and returns the snapshot's meta. The snapshot is not the store's until
// CommitSnapshot.
func (w *SnapshotWriter) Finish() (SnapshotMeta, error) {
	if w.err == nil && !w.finished {
		w.err = w.flush()
		if w.err == nil {
			w.err = w.f.Sync()
		}
		if err := w.f.Close(); w.err == nil {
			w.err = err
		}
		if w.err == nil {
			w.err = syncDir(w.s.fs, w.s.fs.PathDir(w.s.snapPath(w.gen)))
		}
		w.finished = w.err == nil
	}
	return w.meta, w.err
}

// Meta returns the meta of a finished snapshot.
func (w *SnapshotWriter) Meta() SnapshotMeta { return w.meta }

// Abort deletes what w wrote. It is a no-op once committed (the file is
// the store's then).
func (w *SnapshotWriter) Abort() {
	if !w.finished {
		_ = w.f.Close()
	}
	w.s.mu.RLock()
	defer w.s.mu.RUnlock()
	if w.s.closed {
		return
	}
	if cur, err := readSnapMeta(w.s.db); err == nil && !cur.legacy && cur.gen == w.gen {
		return
	}
	w.s.removeFile(w.s.snapPath(w.gen))
	w.err = errors.New("wal: snapshot aborted")
}

// SnapshotReader reads one stored or staged snapshot front to back: its
// file, held open (a snapshot replaced meanwhile reads to its end all the
// same), or the version 1 chunks through a point-in-time view of Pebble.
// At the end it checks the bytes against the meta's size and CRC, and
// returns ErrCorrupt instead of io.EOF if they differ.
type SnapshotReader struct {
	st  storedSnap
	f   vfs.File         // a snapshot file
	v1  *pebble.Snapshot // or version 1 chunks
	it  *pebble.Iterator
	off uint64 // bytes read
	cur []byte // version 1: the rest of the current chunk
	crc uint32
	// crcd: crc covers every byte from 0 (no seek).
	crcd bool
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
	r := &SnapshotReader{st: st, crcd: true}
	switch {
	case err != nil:
	case st.legacy:
		r.v1 = snap
		if r.it, err = snap.NewIter(&pebble.IterOptions{LowerBound: snapChunkPrefix, UpperBound: snapChunkEnd}); err != nil {
			err = readErr(err)
			break
		}
		return r, r.seek(0)
	default:
		if r.f, err = s.fs.Open(s.snapPath(st.gen)); err != nil {
			err = corruptf("snapshot", "%s: its file: %v", meta, err)
		}
	}
	_ = snap.Close()
	if err != nil {
		return nil, err
	}
	return r, nil
}

// seek positions r at offset.
func (r *SnapshotReader) seek(offset uint64) error {
	r.crcd = r.crcd && offset == 0
	r.off, r.cur = offset, nil
	if r.f != nil || offset == r.st.meta.Size {
		return nil
	}
	ok := r.it.SeekGE(indexedKey(snapChunkPrefix, offset/snapshotChunkBytes))
	if err := r.chunk(ok, offset/snapshotChunkBytes); err != nil {
		return err
	}
	r.cur = r.cur[offset%snapshotChunkBytes:]
	return nil
}

// chunk checks that the iterator (valid: ok) is at version 1 chunk idx
// and makes its bytes r.cur.
func (r *SnapshotReader) chunk(ok bool, idx uint64) error {
	if !ok {
		return firstErr(readErr(r.it.Error()), corruptf("snapshot chunk", "%s: chunk %d missing", r.st.meta, idx))
	}
	k, v := r.it.Key(), r.it.Value()
	if binary.BigEndian.Uint64(k[len(k)-8:]) != idx || len(v) < 2 || v[0] != formatVersion {
		return corruptf("snapshot chunk", "%s: chunk %d missing or malformed", r.st.meta, idx)
	}
	r.cur = v[1:]
	return nil
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
	p = p[:min(uint64(len(p)), r.st.meta.Size-r.off)]
	var n int
	if r.f != nil {
		var err error
		n, err = r.f.ReadAt(p, int64(r.off))
		if n < len(p) {
			r.err = corruptf("snapshot", "%s: its file ends at %d (%v)", r.st.meta, r.off+uint64(n), err)
			return 0, r.err
		}
	} else {
		if len(r.cur) == 0 {
			if err := r.chunk(r.it.Next(), r.off/snapshotChunkBytes); err != nil {
				r.err = err
				return 0, err
			}
		}
		n = copy(p, r.cur)
		r.cur = r.cur[n:]
	}
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

// Close releases the reader's file or view of the store.
func (r *SnapshotReader) Close() error {
	if r.f != nil {
		return r.f.Close()
	}
	return firstErr(r.it.Close(), r.v1.Close())
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

// cleanSnapshots, at Open, creates the directory of the snapshot files,
// deletes the files no meta names (of snapshot writes and transfers cut by
// a crash) and a version 1 staged transfer, and sets the next generation
// above every one in use.
func (s *Store) cleanSnapshots() error {
	dir := s.fs.PathJoin(s.dir, snapDirName)
	if err := ensureDir(s.fs, dir); err != nil {
		return err
	}
	cur, err := readSnapMeta(s.db)
	if err != nil && !errors.Is(err, ErrNoSnapshot) {
		return err
	}
	staged, err := readStageMeta(s.db)
	if err != nil {
		return err
	}
	if staged.legacy {
		b := s.db.NewBatch()
		defer b.Close()
		s.dropBytes(b, staged, true)
		_ = b.Delete(keyStageMeta, nil)
		if err := b.Commit(pebble.NoSync); err != nil {
			return fmt.Errorf("wal: drop a version 1 staged snapshot: %w", err)
		}
		staged = storedSnap{}
	}
	keep := map[uint64]bool{}
	for _, st := range []storedSnap{cur, staged} {
		if st.meta.Slot != 0 && !st.legacy {
			keep[st.gen] = true
			s.nextGen.Store(max(s.nextGen.Load(), st.gen))
		}
	}
	names, err := s.fs.List(dir)
	if err != nil {
		return fmt.Errorf("wal: list %s: %w", dir, err)
	}
	for _, name := range names {
		var gen uint64
		if _, err := fmt.Sscanf(name, "%016x.snap", &gen); err != nil {
			continue // not ours
		}
		s.nextGen.Store(max(s.nextGen.Load(), gen))
		if !keep[gen] {
			s.removeFile(s.fs.PathJoin(dir, name))
		}
	}
	return nil
}
