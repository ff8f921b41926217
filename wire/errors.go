package wire

import "errors"

// Sentinel errors. Functions wrap them with details (use errors.Is).
var (
	// ErrMalformed marks a frame body that is not a valid encoding of the
	// expected frame: truncated, a wrong msgpack type, an out-of-range
	// number, an unknown message type, trailing bytes. It is the wire's
	// corruption class: the connection it arrived on is closed.
	ErrMalformed = errors.New("wire: malformed frame")
	// ErrFrameTooLarge: a frame's length prefix (or an encoded frame about
	// to be sent) exceeds the frame size limit.
	ErrFrameTooLarge = errors.New("wire: frame too large")
	// ErrBadHello: the first frame of a connection is not an acceptable
	// hello (wrong magic, unsupported version, unexpected node id).
	ErrBadHello = errors.New("wire: bad hello")
	// ErrNotPaxosd: what was dialed did not answer with a paxosd hello
	// (an HTTP port, another service, nothing answering in time).
	ErrNotPaxosd = errors.New("wire: not a paxosd node")
	// ErrWrongCluster: the other end belongs to another cluster.
	ErrWrongCluster = errors.New("wire: wrong cluster id")
	// ErrClosed: the connection or transport has been closed.
	ErrClosed = errors.New("wire: connection closed")
)
