package service

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/wal"
)

// walJob is one write the loop submits to its journal: a Persist, or (in
// order with them) a snapshot to take or to install, or a change to the
// rejoin record.
type walJob struct {
	seq     uint64
	p       paxos.Persist
	snap    *snapshotJob
	install *installJob
	rejoin  *rejoinJob
	// diverged, when not 0, records the check slot at which this node's
	// state was found diverged.
	diverged paxos.Slot
	// formed marks the store: its node formed the cluster (bootstrap.go).
	formed bool
}

// rejoinJob sets the rejoin target (set) or clears the record (!set).
type rejoinJob struct {
	set    bool
	target paxos.Slot
}

// writeJobs makes batch durable in order: runs of Persists merged into one
// save, the other jobs between them on their own. It is the one place the
// node's writes reach the store, whoever runs it: the WAL writer's
// goroutine in production, the simulated journal in tests. saved, if not
// nil, is told how long each save took.
func writeJobs(store *wal.Store, batch []walJob, clock Clock, saved func(time.Duration)) error {
	var merged paxos.Persist
	flush := func() error {
		if merged.IsEmpty() {
			return nil
		}
		start := clock.Now()
		if err := guarded(func() error { return store.Save(merged) }); err != nil {
			return err
		}
		if saved != nil {
			saved(clock.Now().Sub(start))
		}
		merged = paxos.Persist{}
		return nil
	}
	for _, j := range batch {
		if j.snap == nil && j.install == nil && j.rejoin == nil && j.diverged == 0 && !j.formed {
			merged = mergePersist(merged, j.p)
			continue
		}
		if err := flush(); err != nil {
			return err
		}
		if err := guarded(func() error { return j.run(store, clock) }); err != nil {
			return err
		}
	}
	return flush()
}

// run performs a job that is not a Persist.
func (j walJob) run(store *wal.Store, clock Clock) error {
	switch {
	case j.diverged != 0:
		return store.SetDiverged(j.diverged)
	case j.formed:
		return store.SetFormed()
	case j.install != nil:
		return store.InstallSnapshot(j.install.meta)
	case j.rejoin != nil && j.rejoin.set:
		return store.SetRejoin(j.rejoin.target)
	case j.rejoin != nil:
		return store.ClearRejoin()
	}
	start := clock.Now()
	err := store.CommitSnapshot(j.snap.w, j.snap.truncate)
	j.snap.took = clock.Now().Sub(start)
	if errors.Is(err, wal.ErrSnapshotStale) {
		j.snap.stale = true // a newer one was installed meanwhile: no harm
		return nil
	}
	return err
}

// walWriter is the production journal: it makes the loop's writes durable
// on a goroutine of its own, so the loop keeps taking messages and client
// requests while a sync is under way. Whatever the loop submits meanwhile
// is merged into the next batch: one sync for all of it (group commit).
type walWriter struct {
	store *wal.Store
	m     *metrics
	jobs  chan walJob
	done  chan uint64 // the highest job sequence number made durable
	// dead is closed when a write failed; err says why. Nothing submitted
	// after the last sequence number sent on done is durable then.
	dead chan struct{}
	err  error
	stop chan struct{}
	exit chan struct{}
}

func newWALWriter(store *wal.Store, m *metrics) *walWriter {
	w := &walWriter{
		store: store, m: m,
		jobs: make(chan walJob, 1024),
		done: make(chan uint64, 1024),
		dead: make(chan struct{}),
		stop: make(chan struct{}),
		exit: make(chan struct{}),
	}
	go w.run()
	return w
}

// submit queues j, waiting while the queue is full (the disk sets the
// pace), unless the writer has failed: then it refuses at once. (The
// first select matters: a select with both a free queue slot and a dead
// writer picks either.)
func (w *walWriter) submit(j walJob) error {
	select {
	case <-w.dead:
		return w.err
	default:
	}
	select {
	case w.jobs <- j:
		return nil
	case <-w.dead:
		return w.err
	}
}

func (w *walWriter) run() {
	defer close(w.exit)
	observe := func(d time.Duration) { w.m.fsync.Observe(d.Seconds()) }
	for {
		var job walJob
		select {
		case job = <-w.jobs:
		case <-w.stop:
			return
		}
		batch := []walJob{job}
	drain:
		for {
			select {
			case j := <-w.jobs:
				batch = append(batch, j)
			default:
				break drain
			}
		}
		if err := writeJobs(w.store, batch, systemClock{}, observe); err != nil {
			w.err = err
			close(w.dead)
			return
		}
		select {
		case w.done <- batch[len(batch)-1].seq:
		case <-w.stop:
			return
		}
	}
}

// close stops the writer after the batch in progress, if any.
func (w *walWriter) close() {
	close(w.stop)
	<-w.exit
}

// guarded runs a storage write, turning a panic inside it into an error:
// Pebble panics (a *wal.FatalError) on a failed log write or sync — a full
// or failing disk — and wal.Save panics on a caller's bug. The node then
// stops with one clear line instead of a stack trace, and without
// acknowledging anything it could not make durable; the line says which of
// those it was.
func guarded(write func() error) (err error) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		var fe *wal.FatalError
		re, isErr := r.(error)
		switch {
		case isErr && errors.Is(re, syscall.ENOSPC):
			err = fmt.Errorf("wal: the data directory's disk is full: %v", r)
		case isErr && errors.As(re, &fe):
			err = fmt.Errorf("wal: write to the data directory failed (a failing disk?): %v", r)
		default:
			err = fmt.Errorf("wal: internal error while writing the data directory (a bug; please report it): %v", r)
		}
	}()
	return write()
}

// mergePersist combines a later Persist b into a: the later promise and
// watermark win (both only grow), and b's entries follow a's, so a slot
// written twice keeps b's entry.
func mergePersist(a, b paxos.Persist) paxos.Persist {
	if !b.Promised.IsZero() {
		a.Promised = b.Promised
	}
	a.Entries = append(a.Entries, b.Entries...)
	if b.Commit > a.Commit {
		a.Commit = b.Commit
	}
	return a
}
