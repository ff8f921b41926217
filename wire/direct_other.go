//go:build !unix

package wire

const directWriteSupported = false

func writeNonblocking(uintptr, []byte) (int, error) { return 0, errWouldBlock }
