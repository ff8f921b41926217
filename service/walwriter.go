package service

import (
	"fmt"
	"time"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/wal"
)

// walWriter makes the replica's writes durable on a goroutine of its own,
// so the node loop keeps taking messages and client requests while a sync
// is under way. Whatever the loop submits meanwhile is merged into the next
// batch: one sync for all of it (group commit).
//
// The loop must not send a message that depends on a write before that
// write is durable. It holds Promise and Accepted messages until every
// write submitted before them is durable — every one, not just the write
// of their own Ready: a repeated Prepare is answered with a Promise whose
// Ready writes nothing, but whose promise may sit in a batch still being
// synced. Other messages (Accepts, heartbeats, catch-up) promise nothing
// and leave at once; this is how the leader sends its Accepts before its
// own sync finishes and counts its own vote once synced.
type walWriter struct {
	store *wal.Store
	m     *metrics
	jobs  chan walJob
	done  chan uint64 // the highest job sequence number made durable
	errc  chan error
	stop  chan struct{}
	exit  chan struct{}
}

// walJob is one write: a Persist, or (in order with them) a snapshot to
// take or to install.
type walJob struct {
	seq     uint64
	p       paxos.Persist
	snap    *snapshotJob
	install *installJob
}

func newWALWriter(store *wal.Store, m *metrics) *walWriter {
	w := &walWriter{
		store: store, m: m,
		jobs: make(chan walJob, 1024),
		done: make(chan uint64, 1024),
		errc: make(chan error, 1),
		stop: make(chan struct{}),
		exit: make(chan struct{}),
	}
	go w.run()
	return w
}

func (w *walWriter) run() {
	defer close(w.exit)
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
		if err := w.write(batch); err != nil {
			w.errc <- err
			return
		}
		select {
		case w.done <- batch[len(batch)-1].seq:
		case <-w.stop:
			return
		}
	}
}

// write makes batch durable in order: runs of Persists merged into one
// save, snapshot jobs between them on their own.
func (w *walWriter) write(batch []walJob) error {
	var merged paxos.Persist
	flush := func() error {
		if merged.IsEmpty() {
			return nil
		}
		start := time.Now()
		if err := save(w.store, merged); err != nil {
			return err
		}
		w.m.fsync.Observe(time.Since(start).Seconds())
		merged = paxos.Persist{}
		return nil
	}
	for _, j := range batch {
		if j.snap == nil && j.install == nil {
			merged = mergePersist(merged, j.p)
			continue
		}
		if err := flush(); err != nil {
			return err
		}
		if err := guarded(func() error { return j.runSnapshot(w.store) }); err != nil {
			return err
		}
	}
	return flush()
}

// save writes p, turning a panic inside the storage engine (Pebble panics
// on a failed log write, e.g. a full or failing disk) into an error: the
// node then stops with one clear line instead of a stack trace, and
// without acknowledging anything it could not make durable.
func save(store *wal.Store, p paxos.Persist) error {
	return guarded(func() error { return store.Save(p) })
}

// guarded runs a storage write, turning a panic into an error (see save).
func guarded(write func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("wal: write to the data directory failed (disk full or failing?): %v", r)
		}
	}()
	return write()
}

// close stops the writer after the batch in progress, if any.
func (w *walWriter) close() {
	close(w.stop)
	<-w.exit
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
