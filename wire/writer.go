package wire

import (
	"bufio"
	"net"
	"runtime"
	"sync/atomic"
	"time"
)

// writeBufferBytes is the size of a connection's write buffer: the most one
// write system call carries when frames are coalesced.
const writeBufferBytes = 64 << 10

// deadlineWriter puts a deadline on each write to conn (so a peer that stops
// reading cannot block the writer forever) and counts the writes, which are
// the system calls coalescing saves.
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
	}
	w.writes.Add(1)
	return w.conn.Write(p)
}

// writeLoop is a connection's writer goroutine. It takes items from q and
// puts each into the buffered writer bw; it flushes only when q is empty (or
// bw is full), so under load many frames leave in one system call while a
// lone frame is still sent at once.
//
// It returns put's or the connection's first error, nil when stop is closed
// (after writing out whatever was queued then), or errStopped when abort is
// closed.
func writeLoop[T any](bw *bufio.Writer, q <-chan T, stop, abort <-chan struct{}, put func(*bufio.Writer, T) error) error {
	for {
		var v T
		select {
		case v = <-q:
		case <-abort:
			return ErrClosed
		case <-stop:
			return drain(bw, q, put)
		}
		if err := put(bw, v); err != nil {
			return err
		}
		yielded := false
	batch:
		for {
			select {
			case v = <-q:
				if err := put(bw, v); err != nil {
					return err
				}
			default:
				// Before paying a system call, give the goroutine that is
				// producing (a node loop answering a whole batch, a peer's
				// burst of Accepts) one chance to queue more: the frames
				// then share the write. A lone frame costs a scheduler
				// yield, not a wait.
				if !yielded {
					yielded = true
					runtime.Gosched()
					continue
				}
				break batch
			}
		}
		if err := bw.Flush(); err != nil {
			return err
		}
	}
}

// drain writes out what is queued, then flushes.
func drain[T any](bw *bufio.Writer, q <-chan T, put func(*bufio.Writer, T) error) error {
	for {
		select {
		case v := <-q:
			if err := put(bw, v); err != nil {
				return err
			}
		default:
			return bw.Flush()
		}
	}
}
