package wire

import (
	"bufio"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// writeBufferBytes is the size of a connection's write buffer: the most one
// write system call carries when frames are coalesced.
const writeBufferBytes = 64 << 10

// deadlineWriter puts a deadline on each write to conn (so a peer that stops
// reading cannot block the writer forever) and counts the writes, which are
// the system calls coalescing saves.
//
// It clears the deadline when the write returns. A direct write (see
// directWriter) goes through the same socket and honours its deadline too:
// left in place, a deadline set for one buffered write would fail every
// direct write made once it passed, with "i/o timeout", breaking an idle
// healthy connection one write timeout after its last buffered write.
// Writes never overlap (writeGate), so clearing cannot cut another's short.
type deadlineWriter struct {
	conn    net.Conn
	timeout time.Duration
	writes  *atomic.Uint64
}

func (w deadlineWriter) Write(p []byte) (int, error) {
	if w.timeout > 0 {
		if err := w.conn.SetWriteDeadline(time.Now().Add(w.timeout)); err != nil {
			return 0, err
		}
		defer w.conn.SetWriteDeadline(time.Time{})
	}
	w.writes.Add(1)
	return w.conn.Write(p)
}

// writeGate lets senders write to a connection directly (see
// directWriter) without reordering frames against the writer goroutine.
// Whoever writes holds mu: the writer goroutine while it writes, a sender
// (which only ever TryLocks) while it writes directly. queued counts the
// items in the queue or taken from it and not yet written; a sender writes
// directly only when it is zero, so a frame never overtakes one sent before
// it. A nil *writeGate does nothing.
//
// A direct write the socket takes only part of leaves the rest in pending
// and queues a wake-up for the writer goroutine. Another sender may have
// queued a frame meanwhile, and the writer may even have taken it from the
// queue already; it writes pending first, whenever it next takes the gate,
// so the half-written frame is always completed before anything else.
type writeGate struct {
	mu      sync.Mutex
	queued  atomic.Int64
	pending []byte
	// partials counts direct writes the socket took only part of (tests
	// check that they exercised that path).
	partials atomic.Uint64
}

// lock takes the gate for the writer goroutine and writes out pending.
func (g *writeGate) lock(bw *bufio.Writer) error {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	if g.pending == nil {
		return nil
	}
	_, err := bw.Write(g.pending)
	g.pending = nil
	return err
}

// unlock releases the gate after taken queued items were written.
func (g *writeGate) unlock(taken int64) {
	if g != nil {
		g.queued.Add(-taken)
		g.mu.Unlock()
	}
}

// tryLock takes the gate for a direct write: only when nothing is queued.
func (g *writeGate) tryLock() bool {
	if g.queued.Load() != 0 || !g.mu.TryLock() {
		return false
	}
	if g.queued.Load() != 0 {
		g.mu.Unlock()
		return false
	}
	return true
}

// writeLoop is a connection's writer goroutine. It takes items from q and
// puts each into the buffered writer bw; it flushes only when q is empty (or
// bw is full), so under load many frames leave in one system call while a
// lone frame is still sent at once. It holds gate while it writes.
//
// It returns put's or the connection's first error, nil when stop is closed
// (after writing out whatever was queued then), or errStopped when abort is
// closed.
func writeLoop[T any](bw *bufio.Writer, q <-chan T, stop, abort <-chan struct{}, gate *writeGate, put func(*bufio.Writer, T) error) error {
	for {
		var v T
		select {
		case v = <-q:
		case <-abort:
			return ErrClosed
		case <-stop:
			return drain(bw, q, gate, put)
		}
		if err := writeBatch(bw, q, gate, v, put); err != nil {
			return err
		}
	}
}

// writeBatch writes v and whatever else is queued, then flushes.
func writeBatch[T any](bw *bufio.Writer, q <-chan T, gate *writeGate, v T, put func(*bufio.Writer, T) error) error {
	err := gate.lock(bw)
	taken := int64(1)
	defer func() { gate.unlock(taken) }()
	if err != nil {
		return err
	}
	if err := put(bw, v); err != nil {
		return err
	}
	yielded := false
	for {
		select {
		case v = <-q:
			taken++
			if err := put(bw, v); err != nil {
				return err
			}
		default:
			// Before paying a system call, give the goroutine that is
			// producing (a node loop answering a whole batch) one chance
			// to queue more: the frames then share the write. A lone
			// frame costs a scheduler yield, not a wait.
			if !yielded {
				yielded = true
				runtime.Gosched()
				continue
			}
			return bw.Flush()
		}
	}
}

// drain writes out what is queued, then flushes.
func drain[T any](bw *bufio.Writer, q <-chan T, gate *writeGate, put func(*bufio.Writer, T) error) error {
	err := gate.lock(bw)
	taken := int64(0)
	defer func() { gate.unlock(taken) }()
	if err != nil {
		return err
	}
	for {
		select {
		case v := <-q:
			taken++
			if err := put(bw, v); err != nil {
				return err
			}
		default:
			return bw.Flush()
		}
	}
}
