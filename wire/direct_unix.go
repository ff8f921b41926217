//go:build unix

package wire

import "syscall"

const directWriteSupported = true

// writeNonblocking is one write(2) on a socket Go keeps non-blocking.
func writeNonblocking(fd uintptr, b []byte) (int, error) {
	for {
		n, err := syscall.Write(int(fd), b)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return 0, errWouldBlock
		case err != nil:
			return 0, err
		case n < 0:
			return 0, errWouldBlock
		}
		return n, nil
	}
}
