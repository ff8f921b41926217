package wal

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
	"github.com/paxosd/paxosd/paxos"
)

// Identity binds a data directory to one cluster and one node. A node that
// votes from another node's directory (or another cluster's) would carry
// promises it never made, so Open refuses a mismatch.
type Identity struct {
	// ClusterID names the cluster; non-empty, at most 256 bytes.
	ClusterID string
	// NodeID is this node; not zero.
	NodeID paxos.NodeID
}

func (id Identity) validate() error {
	switch {
	case id.ClusterID == "":
		return fmt.Errorf("%w: empty cluster id", ErrInvalidIdentity)
	case len(id.ClusterID) > clusterIDBytesMax:
		return fmt.Errorf("%w: cluster id of %d bytes exceeds %d", ErrInvalidIdentity, len(id.ClusterID), clusterIDBytesMax)
	case id.NodeID == 0:
		return fmt.Errorf("%w: node id must be positive", ErrInvalidIdentity)
	}
	return nil
}

// Store is the durable state of one acceptor. See the package comment for
// the durability contract and the caller's obligations.
type Store struct {
	fs    vfs.FS
	dir   string
	id    Identity
	isNew bool
	db    *pebble.DB
	wo    *pebble.WriteOptions

	// mu guards closed. Save, Load and Entries hold it shared so that Close
	// (which holds it exclusively) never closes the DB under them.
	mu     sync.RWMutex
	closed bool

	// saveMu serializes Save and guards the fields below.
	saveMu sync.Mutex
	// promised is the highest promise made durable. Invariant: it never
	// decreases; Save panics rather than lower it.
	promised paxos.Ballot
	// commit is the highest commit watermark made durable. Invariant: it
	// never decreases.
	commit paxos.Slot
	// scratch is reused to encode values; Batch.Set copies them.
	scratch []byte
	// truncated is the highest slot deleted from the log. It is raised
	// before the deletion commits, and Entries checks it after reading, so
	// a reader that raced a truncation gets ErrTruncated, not a hole.
	truncated atomic.Uint64
	// nextGen is the last snapshot chunk generation handed out
	// (snapshot_stream.go).
	nextGen atomic.Uint64
}

// Open opens the store in dir, creating dir and a fresh store (recording id)
// if there is none. An existing store must hold the same identity, or Open
// fails with an error matching ErrIdentityMismatch. Undecodable records fail
// with ErrCorrupt. Only one Store may have dir open at a time (Pebble holds
// a lock file).
//
// A new directory is created durably (its parent is synced too). An I/O
// error while Pebble writes its MANIFEST or the identity record is fatal
// inside Pebble v1.1; Open returns it as an error naming dir. A directory
// Pebble cannot read (files corrupt, truncated or missing) fails with a
// *DamagedError, one in use by another process with ErrDirInUse.
func Open(dir string, id Identity, opts Options) (*Store, error) {
	if err := id.validate(); err != nil {
		return nil, err
	}
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if err := ensureDir(opts.FS, dir); err != nil {
		return nil, err
	}
	if err := checkOrphans(opts.FS, dir); err != nil { // openerr.go
		return nil, err
	}
	po := opts.pebbleOptions()
	// openPebble returns a fatal error inside pebble.Open (fatal.go).
	db, err := openPebble(dir, po)
	po.Cache.Unref() // the DB holds its own reference
	if err != nil {
		return nil, openError(dir, err) // in use, damaged, or the cause (openerr.go)
	}
	s := &Store{fs: opts.FS, dir: dir, id: id, db: db, wo: pebble.Sync}
	if opts.NoSync {
		s.wo = pebble.NoSync
	}
	if fatal, err := s.initGuarded(); err != nil {
		if !fatal { // after a fatal error Pebble's commit pipeline is wedged
			_ = db.Close()
		}
		return nil, damaged(dir, err)
	}
	return s, nil
}

// init checks or records the identity and loads the watermarks that Save
// keeps monotonic.
func (s *Store) init() error {
	raw, ok, err := get(s.db, keyIdentity)
	if err != nil {
		return err
	}
	if !ok {
		if err := s.create(); err != nil {
			return err
		}
		return s.cleanSnapshots() // creates the snapshot directory
	}
	stored, err := decodeIdentityValue(raw)
	if err != nil {
		return fmt.Errorf("%w (in %s)", err, s.dir)
	}
	if stored != s.id {
		return &IdentityMismatchError{Dir: s.dir, Stored: stored, Want: s.id}
	}
	if s.promised, err = readPromised(s.db); err != nil {
		return err
	}
	t, err := readTruncated(s.db)
	if err != nil {
		return err
	}
	s.truncated.Store(uint64(t))
	if s.commit, err = readCommit(s.db); err != nil {
		return err
	}
	return s.cleanSnapshots()
}

// create records the identity in a store that has none. The identity is the
// first write of a store, so a store without one but with other keys was
// damaged, not merely interrupted while being created.
func (s *Store) create() error {
	it, err := s.db.NewIter(nil)
	if err != nil {
		return readErr(err)
	}
	nonEmpty := it.First()
	if err := firstErr(it.Error(), it.Close()); err != nil {
		return readErr(err)
	}
	if nonEmpty {
		return fmt.Errorf("%w: data directory %s holds data but no identity record", ErrCorrupt, s.dir)
	}
	// Always synced, even with NoSync: a node must not find its identity
	// missing after a crash and adopt whatever it is started with.
	if err := s.db.Set(keyIdentity, appendIdentityValue(nil, s.id), pebble.Sync); err != nil {
		return fmt.Errorf("wal: recording identity in %s: %w", s.dir, err)
	}
	s.isNew = true
	return nil
}

// Save makes p durable: one Pebble batch holding the promise (if not zero),
// every entry (a later entry for a slot replaces the stored one) and the
// commit watermark (if not zero), committed with one sync. It returns only
// after the batch is on disk (unless Options.NoSync), so the caller may then
// send the messages that depend on p. An empty p writes nothing.
//
// A p that holds only the watermark is written without a sync of its own
// (see "The watermark is lazy" in the package comment): it reaches the disk
// with the next synced Save, and nothing depends on it sooner.
//
// Save panics if p would lower the promised ballot or the commit watermark,
// or holds an entry for slot 0: those are bugs in the caller. An I/O error
// while committing is fatal inside Pebble (see Options.Logger), because
// after a failed fsync nobody knows what reached the disk.
//
// Save must not be called concurrently with itself (calls are serialized,
// but their order would be arbitrary); Load and Entries may run alongside.
func (s *Store) Save(p paxos.Persist) error {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	if p.IsEmpty() {
		return nil
	}
	s.check(p)

	b := s.db.NewBatchWithSize(batchBytes(p))
	defer b.Close()
	if !p.Promised.IsZero() {
		s.scratch = appendBallotValue(s.scratch[:0], p.Promised)
		_ = b.Set(keyPromised, s.scratch, nil) // a Batch's Set cannot fail
	}
	for _, e := range p.Entries {
		s.scratch = appendEntryValue(s.scratch[:0], e)
		_ = b.Set(entryKey(e.Slot), s.scratch, nil)
	}
	if p.Commit != 0 {
		s.scratch = appendSlotValue(s.scratch[:0], p.Commit)
		_ = b.Set(keyCommit, s.scratch, nil)
	}
	wo := s.wo
	if p.Promised.IsZero() && len(p.Entries) == 0 {
		wo = pebble.NoSync
	}
	if err := b.Commit(wo); err != nil {
		return fmt.Errorf("wal: save: %w", err)
	}
	s.promised = paxos.MaxBallot(s.promised, p.Promised)
	s.commit = max(s.commit, p.Commit)
	return nil
}

// check panics if p breaks one of the invariants Save keeps.
func (s *Store) check(p paxos.Persist) {
	if !p.Promised.IsZero() && p.Promised.Less(s.promised) {
		panicBackwards("promised ballot", s.promised, p.Promised)
	}
	if p.Commit != 0 && p.Commit < s.commit {
		panicBackwards("commit watermark", s.commit, p.Commit)
	}
	for _, e := range p.Entries {
		if e.Slot == 0 {
			panicSlotZero(e)
		}
	}
}

// batchBytes estimates the batch size of p, so large batches allocate once.
func batchBytes(p paxos.Persist) int {
	n := 64
	for _, e := range p.Entries {
		n += 48 + e.Value.Bytes() + 4*len(e.Value.Cmds)
	}
	return n
}

// Load returns everything saved: the promise, every entry in slot order,
// and the commit watermark, read from one consistent snapshot.
func (s *Store) Load() (paxos.State, error) {
	st, err := s.load(false)
	return st, damaged(s.dir, err)
}

// load reads the promise and watermark and, from the same snapshot, either
// every entry (the whole prefix, not just slots >= 1, so a damaged key
// anywhere under it is reported rather than skipped) or only those above
// the watermark (tail).
func (s *Store) load(tail bool) (paxos.State, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return paxos.State{}, ErrClosed
	}
	snap := s.db.NewSnapshot()
	defer snap.Close()
	var st paxos.State
	var err error
	if st.Promised, err = readPromised(snap); err != nil {
		return paxos.State{}, err
	}
	if st.Commit, err = readCommit(snap); err != nil {
		return paxos.State{}, err
	}
	if st.Truncated, err = readTruncated(snap); err != nil {
		return paxos.State{}, err
	}
	from := entryPrefix
	if tail {
		st.Compacted = st.Commit
		from = entryKey(st.Commit + 1)
	}
	if st.Entries, err = scanEntries(snap, from, entryEnd, 0); err != nil {
		return paxos.State{}, err
	}
	return st, nil
}

// LoadTail is Load without the chosen prefix: the promise, the watermark,
// and only the entries above the watermark, with State.Compacted set to the
// watermark. A node that rebuilds its state machine by reading the prefix
// through Entries in chunks starts in memory proportional to the unchosen
// tail, not to the length of its history.
func (s *Store) LoadTail() (paxos.State, error) {
	st, err := s.load(true)
	return st, damaged(s.dir, err)
}

// Entries returns the stored entries with from <= slot <= to, in slot order,
// for catch-up. When maxBytes > 0 it stops before the entry that would take
// the returned value payload (paxos.Value.Bytes) above maxBytes, but always
// returns at least one entry if any is in range; maxBytes <= 0 means no
// limit. Slots never written are simply absent. The caller owns the result.
func (s *Store) Entries(from, to paxos.Slot, maxBytes int) ([]paxos.Entry, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	if from > to {
		return nil, nil
	}
	es, err := scanEntries(s.db, entryKey(from), entryUpper(to), maxBytes)
	if t := paxos.Slot(s.truncated.Load()); err == nil && t > 0 && from <= t {
		return nil, fmt.Errorf("%w: slot %d (the log starts after %d)", ErrTruncated, from, t)
	}
	return es, err
}

// IsNew reports whether Open created this store (no identity was recorded
// before). A node whose store is new has promised nothing; if it is a
// member that voted before, its data directory was lost, and it must not
// vote under its old id (see the package comment).
func (s *Store) IsNew() bool { return s.isNew }

// Identity returns the identity the store is bound to.
func (s *Store) Identity() Identity { return s.id }

// Close closes the store. It waits for a running Save, Load or Entries;
// later calls of any method return ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.closed = true
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("wal: closing %s: %w", s.dir, err)
	}
	return nil
}

func readPromised(r pebble.Reader) (paxos.Ballot, error) {
	raw, ok, err := get(r, keyPromised)
	if err != nil || !ok {
		return paxos.Ballot{}, err
	}
	return decodeBallotValue("promised ballot", raw)
}

func readCommit(r pebble.Reader) (paxos.Slot, error) {
	raw, ok, err := get(r, keyCommit)
	if err != nil || !ok {
		return 0, err
	}
	return decodeSlotValue("commit watermark", raw)
}

// scanEntries reads the entries with keys in [lower, upper) under the
// maxBytes rule of Entries.
func scanEntries(r pebble.Reader, lower, upper []byte, maxBytes int) ([]paxos.Entry, error) {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, readErr(err)
	}
	var out []paxos.Entry
	size := 0
	for valid := it.First(); valid; valid = it.Next() {
		e, err := decodeEntry(it.Key(), it.Value())
		if err != nil {
			_ = it.Close()
			return nil, err
		}
		size += e.WireBytes() // as on the wire: a run of no-ops has almost no payload
		if maxBytes > 0 && size > maxBytes && len(out) > 0 {
			break
		}
		out = append(out, e)
	}
	if err := firstErr(it.Error(), it.Close()); err != nil {
		return nil, readErr(err)
	}
	return out, nil
}

func decodeEntry(k, v []byte) (paxos.Entry, error) {
	slot, err := decodeEntryKey(k)
	if err != nil {
		return paxos.Entry{}, err
	}
	b, val, err := decodeEntryValue(slot, v)
	if err != nil {
		return paxos.Entry{}, err
	}
	return paxos.Entry{Slot: slot, Ballot: b, Value: val}, nil
}

// get returns a copy of key's value, and whether it exists.
func get(r pebble.Reader, key []byte) ([]byte, bool, error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, readErr(err)
	}
	out := append([]byte(nil), v...)
	return out, true, closer.Close()
}

// readErr wraps a Pebble read error, marking Pebble's corruption class as
// ours so callers test one sentinel.
func readErr(err error) error {
	if pebble.IsCorruptionError(err) {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return fmt.Errorf("wal: read: %w", err)
}

func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
