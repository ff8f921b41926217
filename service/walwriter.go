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

type walJob struct {
	seq uint64
	p   paxos.Persist
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
		merged, last := job.p, job.seq
	drain:
		for {
			select {
			case j := <-w.jobs:
				merged = mergePersist(merged, j.p)
				last = j.seq
			default:
				break drain
			}
		}
		start := time.Now()
		if err := save(w.store, merged); err != nil {
			w.errc <- err
			return
		}
		w.m.fsync.Observe(time.Since(start).Seconds())
		select {
		case w.done <- last:
		case <-w.stop:
			return
		}
	}
}

// save writes p, turning a panic inside the storage engine (Pebble panics
// on a failed log write, e.g. a full or failing disk) into an error: the
// node then stops with one clear line instead of a stack trace, and
// without acknowledging anything it could not make durable.
func save(store *wal.Store, p paxos.Persist) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("wal: write to the data directory failed (disk full or failing?): %v", r)
		}
	}()
	return store.Save(p)
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

// needsDurability reports whether m promises something that must survive
// a crash: an acceptor's Promise or Accepted.
func needsDurability(m paxos.Message) bool {
	return m.Type == paxos.MsgPromise || m.Type == paxos.MsgAccepted
}
