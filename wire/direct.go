package wire

import (
	"errors"
	"net"
	"syscall"
)

// directWriter writes to a connection without blocking, from whichever
// goroutine has something to send. A node loop that sends an Accept and then
// starts its own disk sync would otherwise hand the frame to the peer's
// writer goroutine, which on a busy machine waits for a CPU behind that
// sync (hundreds of microseconds, measured: docs/BENCHMARKS.md); writing the
// frame itself costs the loop one system call.
type directWriter struct {
	conn net.Conn
	rc   syscall.RawConn
}

// newDirectWriter returns a directWriter for conn, or nil where conn has no
// file descriptor to write to without blocking (then the writer goroutine
// sends everything).
func newDirectWriter(conn net.Conn) *directWriter {
	if !directWriteSupported {
		return nil
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return &directWriter{conn: conn, rc: rc}
}

// errWouldBlock is not an error to report: the socket buffer is full.
var errWouldBlock = errors.New("wire: write would block")

// tryWrite writes as much of b as the socket takes now and returns how much
// that was. It never waits: a full socket buffer ends it early with no
// error. An error means the connection is broken.
func (d *directWriter) tryWrite(b []byte) (int, error) {
	written := 0
	var werr error
	err := d.rc.Write(func(fd uintptr) bool {
		for written < len(b) {
			n, err := writeNonblocking(fd, b[written:])
			if err == errWouldBlock {
				break
			}
			if err != nil {
				werr = err
				break
			}
			written += n
		}
		return true // never wait for the socket to drain
	})
	if err == nil {
		err = werr
	}
	return written, err
}
