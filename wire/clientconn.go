package wire

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paxosd/paxosd/paxos"
	"github.com/rs/zerolog"
)

const (
	// defaultConnQueueMax bounds the frames queued on a client connection
	// before Send blocks.
	defaultConnQueueMax = 1024
	// defaultWriteTimeout bounds one write system call.
	defaultWriteTimeout = 5 * time.Second
	// defaultDialTimeout bounds a dial plus the hello exchange.
	defaultDialTimeout = 2 * time.Second
)

// frameConn is a connection after the hello: a frame reader, and a writer
// goroutine that coalesces the frames queued by concurrent senders. On the
// server's end a sender that finds nothing queued writes its frame itself,
// without blocking (see directWriter): an answer then costs no goroutine
// hand-off.
type frameConn struct {
	conn     net.Conn
	fr       *FrameReader
	frameMax int
	q        chan []byte
	gate     writeGate
	direct   *directWriter // nil where direct writes are not supported
	stop     chan struct{} // closed by close: write out the queue and exit
	abort    chan struct{} // closed by kill: exit now
	stopOnce sync.Once
	killOnce sync.Once
	// writerDone is closed when the writer goroutine has exited; Send
	// fails from then on.
	writerDone chan struct{}
	writerErr  error // set before writerDone is closed
	// dead is closed once the connection is unusable: closed, or a read
	// or a write failed.
	dead     chan struct{}
	deadOnce sync.Once
	writes   atomic.Uint64
	// backlog counts the bytes of the frames handed to the writer and not
	// yet written (queued, or the unwritten rest of a direct write, of
	// which partial holds the size until the writer's wake-up takes it):
	// what a client that reads slowly costs the server's memory.
	backlog, partial atomic.Int64
}

// direct lets senders write to conn themselves (see frameConn).
func newFrameConn(conn net.Conn, fr *FrameReader, frameMax, queueMax int, writeTimeout time.Duration, direct bool) *frameConn {
	c := &frameConn{
		conn:       conn,
		fr:         fr,
		frameMax:   frameMax,
		q:          make(chan []byte, queueMax),
		stop:       make(chan struct{}),
		abort:      make(chan struct{}),
		writerDone: make(chan struct{}),
		dead:       make(chan struct{}),
	}
	if direct {
		c.direct = newDirectWriter(conn)
	}
	bw := bufio.NewWriterSize(deadlineWriter{conn: conn, timeout: writeTimeout, writes: &c.writes}, writeBufferBytes)
	go func() {
		err := writeLoop(bw, c.q, c.stop, c.abort, &c.gate, func(bw *bufio.Writer, f []byte) error {
			if f == nil {
				// A direct write's wake-up: the gate wrote its rest.
				c.backlog.Add(-c.partial.Swap(0))
				return nil
			}
			_, err := bw.Write(f)
			c.backlog.Add(-int64(len(f)))
			return err
		})
		c.writerErr = err
		close(c.writerDone)
		if err != nil {
			c.kill() // a failed write breaks the stream: fail Recv too
		}
		c.deadOnce.Do(func() { close(c.dead) })
	}()
	return c
}

// send frames the body encode appends and queues it, blocking while the
// queue is full.
func (c *frameConn) send(encode func([]byte) []byte) error {
	f, err := c.frame(encode)
	if err != nil {
		return err
	}
	if sent, kept, err := c.sendDirect(f); sent {
		if !kept {
			putFrameBuf(f)
		}
		return err
	}
	c.gate.queued.Add(1)
	c.backlog.Add(int64(len(f)))
	select {
	case c.q <- f:
		return nil
	case <-c.stop:
		c.backlog.Add(-int64(len(f)))
		c.gate.queued.Add(-1)
		return ErrClosed
	case <-c.writerDone:
		c.gate.queued.Add(-1)
		c.backlog.Add(-int64(len(f)))
		return c.closedErr()
	}
}

// sendDirect writes frame f to the connection itself if nothing is queued
// and no write is under way, without blocking; what the socket does not
// take now is left to the writer goroutine (see writeGate). It reports
// whether it took f; if so, err is the connection's failure, and kept
// whether the writer holds on to the rest of f (else the caller may reuse
// f).
func (c *frameConn) sendDirect(f []byte) (sent, kept bool, err error) {
	if c.direct == nil || len(f) > writeBufferBytes || !c.gate.tryLock() {
		return false, false, nil
	}
	defer c.gate.mu.Unlock()
	select {
	case <-c.stop: // closing: the queue path reports it
		return false, false, nil
	default:
	}
	n, err := c.direct.tryWrite(f)
	if n > 0 {
		c.writes.Add(1)
	}
	if err != nil {
		c.kill() // a failed write breaks the stream, as in the writer
		return true, false, fmt.Errorf("%w: %w", ErrClosed, err)
	}
	if n < len(f) {
		c.gate.partials.Add(1)
		c.gate.pending = f[n:]
		c.gate.queued.Add(1)
		c.partial.Store(int64(len(f) - n))
		c.backlog.Add(int64(len(f) - n))
		select {
		case c.q <- nil: // wakes the writer, which writes pending first
		default: // the queue filled up meanwhile: give up the stream
			c.gate.queued.Add(-1)
			c.backlog.Add(-c.partial.Swap(0))
			c.kill()
			return true, true, ErrClosed
		}
		return true, true, nil
	}
	return true, false, nil
}

// frame checks the connection is open and frames the body encode appends.
func (c *frameConn) frame(encode func([]byte) []byte) ([]byte, error) {
	select {
	case <-c.writerDone:
		return nil, c.closedErr()
	case <-c.stop:
		return nil, ErrClosed
	default:
	}
	f := appendFramed(getFrameBuf(), encode)
	if n := len(f) - frameHeaderBytes; n > c.frameMax {
		putFrameBuf(f)
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, c.frameMax)
	}
	return f, nil
}

// ErrQueueFull: ClientConn.TrySend found the connection's queue full.
var ErrQueueFull = errors.New("wire: connection queue full")

// trySend is send without the wait: it returns ErrQueueFull, sending
// nothing, when the queue is full.
func (c *frameConn) trySend(encode func([]byte) []byte) error {
	f, err := c.frame(encode)
	if err != nil {
		return err
	}
	return c.trySendFrame(f)
}

// trySendFrame writes frame f directly, or queues it; ErrQueueFull when the
// queue is full.
//
// It takes f over: a frame the connection does not keep (the socket took
// it whole, or it was refused) goes back to the pool of frame buffers
// (getFrameBuf); one it keeps (queued, or its unwritten rest pending) is
// the writer's. Either way the caller must not touch f afterwards.
func (c *frameConn) trySendFrame(f []byte) error {
	if sent, kept, err := c.sendDirect(f); sent {
		if !kept {
			putFrameBuf(f)
		}
		return err
	}
	c.gate.queued.Add(1)
	c.backlog.Add(int64(len(f)))
	select {
	case c.q <- f:
		return nil
	default:
		c.gate.queued.Add(-1)
		c.backlog.Add(-int64(len(f)))
		putFrameBuf(f)
		return ErrQueueFull
	}
}

func (c *frameConn) closedErr() error {
	if c.writerErr != nil && !errors.Is(c.writerErr, ErrClosed) {
		return fmt.Errorf("%w: %w", ErrClosed, c.writerErr)
	}
	return ErrClosed
}

// close writes out what is queued (each write bounded by the write
// timeout), then closes the connection.
func (c *frameConn) close() error {
	c.stopOnce.Do(func() { close(c.stop) })
	<-c.writerDone
	return c.kill()
}

// kill closes the connection at once, dropping what is queued.
func (c *frameConn) kill() error {
	var err error
	c.killOnce.Do(func() {
		c.stopOnce.Do(func() { close(c.stop) })
		close(c.abort)
		err = closeConn(c.conn)
		c.deadOnce.Do(func() { close(c.dead) })
	})
	return err
}

// ClientConn is the server's end of a client connection, handed to
// Handler.HandleClient after the hello exchange.
type ClientConn struct {
	fc  *frameConn
	log zerolog.Logger
	// version is the protocol version the hello negotiated.
	version uint32
	// cork gathers the frames Cork adds until Uncork; both belong to one
	// goroutine (the node loop).
	cork []byte
	// certUser and certNode: who the connection's verified client
	// certificate says it is (certIdentity).
	certUser string
	certNode paxos.NodeID
}

// CertUser returns the user the connection's client certificate names:
// its CommonName, when it presented a certificate the node verified that
// names no node ("" otherwise, and on a plaintext connection).
func (c *ClientConn) CertUser() string { return c.certUser }

// CertNode returns the member whose node certificate (URI SAN
// paxosd://node/ID, checked against the peer CA) the connection
// presented, or 0: a member fetching a snapshot or probing the status
// connects as a client.
func (c *ClientConn) CertNode() paxos.NodeID { return c.certNode }

// Recv reads the next request. It must not be called concurrently with
// itself. It returns io.EOF when the client has closed the connection and
// ErrClosed (wrapped) after Close. A malformed or oversized frame closes the
// connection: Recv logs the reason and returns the error (ErrMalformed,
// ErrFrameTooLarge). A request with an unknown Op is returned, not an error,
// so that the handler can answer it with ErrInvalid.
func (c *ClientConn) Recv() (*Request, error) {
	body, err := c.fc.fr.ReadFrame()
	if err != nil {
		select {
		case <-c.fc.stop:
			return nil, fmt.Errorf("%w: %w", ErrClosed, err)
		default:
		}
		if err != io.EOF {
			if !errors.Is(err, net.ErrClosed) {
				c.log.Warn().Err(err).Msg("wire: closing client connection")
			}
			c.fc.kill()
		}
		return nil, err
	}
	q, err := DecodeRequest(body)
	if err != nil {
		c.log.Warn().Err(err).Msg("wire: closing client connection")
		c.fc.kill()
		return nil, err
	}
	return q, nil
}

// Send queues s to be written; it is safe for concurrent use, and responses
// sent close together leave in one system call. It blocks while the
// connection's queue is full. It returns ErrClosed once the connection is
// closed or broken, and ErrFrameTooLarge (sending nothing) when s does not
// fit in a frame; the caller can then send a smaller ErrTooLarge response.
func (c *ClientConn) Send(s *Response) error {
	return c.fc.send(func(b []byte) []byte { return EncodeResponse(b, s) })
}

// TrySend is Send without the wait: when the connection's queue is full
// (the client reads slower than responses come) it returns ErrQueueFull
// and sends nothing. A server pushing stream responses from a loop that
// must not block uses it, and ends a stream it cannot deliver.
func (c *ClientConn) TrySend(s *Response) error {
	return c.fc.trySend(func(b []byte) []byte { return EncodeResponse(b, s) })
}

// Cork adds s to the answers gathered for the next Uncork, and reports
// whether it is the first since the last Uncork (so the caller remembers to
// uncork this connection). A node loop answering many requests in one
// iteration corks each answer and uncorks every connection at the end: one
// system call per connection, not one per answer. Cork and Uncork must be
// called from one goroutine. It fails with ErrFrameTooLarge (adding nothing)
// when s does not fit in a frame, and with ErrClosed once the connection is
// closed.
func (c *ClientConn) Cork(s *Response) (first bool, err error) {
	return c.corkFrame(func(b []byte) []byte { return EncodeResponse(b, s) })
}

// corkFrame adds the frame of the body encode appends to the cork.
func (c *ClientConn) corkFrame(encode func([]byte) []byte) (first bool, err error) {
	// Two selects of one case each, not one of two: a non-blocking
	// receive from an open channel takes no lock, a select of two locks
	// both (a node pushing an event to thousands of watches corks once
	// per watch).
	select {
	case <-c.fc.writerDone:
		return false, c.fc.closedErr()
	default:
	}
	select {
	case <-c.fc.stop:
		return false, ErrClosed
	default:
	}
	before := len(c.cork)
	if c.cork == nil {
		c.cork = getFrameBuf()
	}
	c.cork = appendFramed(c.cork, encode)
	if n := len(c.cork) - before - frameHeaderBytes; n > c.fc.frameMax {
		c.cork = c.cork[:before]
		return false, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, c.fc.frameMax)
	}
	return before == 0, nil
}

// Uncork sends what Cork gathered, as TrySend would: written at once if
// nothing is queued, else queued in one piece. It returns ErrQueueFull
// (sending nothing) when the queue is full, and ErrClosed when the
// connection is closed or broken.
func (c *ClientConn) Uncork() error {
	f := c.cork
	if len(f) == 0 {
		return nil
	}
	c.cork = nil // f may stay with the writer
	return c.fc.trySendFrame(f)
}

// Queued returns how many responses wait to be written to the socket. A
// sender that streams much (a snapshot save) paces itself on it, so that
// only a few of its frames are in memory at a time: the queue's bound is a
// count of frames, not of bytes, and Send blocks only once it is full.
func (c *ClientConn) Queued() int { return int(c.fc.gate.queued.Load()) }

// Backlog is the bytes of responses this connection holds: corked, or
// handed to its writer and not yet written to the socket. A server that
// pushes streams stops pushing more while its client reads too slowly to
// keep it small (a watch resumes from its revision; nothing is dropped).
func (c *ClientConn) Backlog() int64 { return int64(len(c.cork)) + c.fc.backlog.Load() }

// Close writes out the responses already queued, then closes the
// connection; Recv and Send fail from then on. The server closes the
// connection itself when HandleClient returns.
func (c *ClientConn) Close() error { return c.fc.close() }

// Done is closed when the connection is unusable: after Close, when the
// server shuts down, or when a read or a write failed (not when the client
// merely closed its sending side: Recv then returns io.EOF). Handlers of
// long-lived requests watch it to give up when their client is gone.
func (c *ClientConn) Done() <-chan struct{} { return c.fc.dead }

// RemoteAddr returns the client's address.
func (c *ClientConn) RemoteAddr() net.Addr { return c.fc.conn.RemoteAddr() }

// Version returns the protocol version the connection negotiated,
// min(the client's, ProtocolVersion): what the client understands of the
// answers (docs/PROTOCOL.md, "Versions and mixed clusters").
func (c *ClientConn) Version() uint32 { return c.version }

// ServerConn is a client's connection to a paxosd node, returned by
// DialClient. Most clients wrap it in a Mux.
type ServerConn struct {
	fc     *frameConn
	server Hello
	// last is the previous response if it carried events, and lastBody
	// its encoding (the id at [lastStart:lastEnd]): a node sends every
	// watcher of a prefix the same push (SharedResponse), which Recv then
	// decodes once per run of them. The copies share their events, which
	// callers must treat as read-only.
	last               *Response
	lastBody           []byte
	lastStart, lastEnd int
}

// DialClient connects to the paxosd node at addr (host:port) as a client of
// cluster clusterID ("" = DefaultClusterID) and exchanges hellos: it fails
// with ErrWrongCluster or ErrBadHello when the node is not one it should
// talk to. frameBytesMax bounds the frames it accepts and sends (0 =
// DefaultFrameBytesMax). ctx bounds the dial and the hello exchange;
// without a deadline in ctx they are bounded by 2 s.
func DialClient(ctx context.Context, addr, clusterID string, frameBytesMax int) (*ServerConn, error) {
	return DialClientConfig(ctx, addr, DialConfig{ClusterID: clusterID, FrameBytesMax: frameBytesMax})
}

// DialConfig configures DialClientConfig; the zero value is valid.
type DialConfig struct {
	// ClusterID names the cluster. Default (and "") DefaultClusterID.
	ClusterID string
	// FrameBytesMax bounds the frames accepted and sent. Default
	// DefaultFrameBytesMax.
	FrameBytesMax int
	// TLS, if set, makes the connection TLS (at least 1.2). Without a
	// ServerName the node's certificate is checked against addr's host.
	// A TLS failure is an error wrapping ErrTLS that says what to pass.
	TLS *tls.Config
}

// DialClientConfig is DialClient with every option.
func DialClientConfig(ctx context.Context, addr string, cfg DialConfig) (*ServerConn, error) {
	frameBytesMax := cfg.FrameBytesMax
	if frameBytesMax <= 0 {
		frameBytesMax = DefaultFrameBytesMax
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(defaultDialTimeout)
	}
	var d net.Dialer
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	raw, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(dctx, func() { raw.Close() })
	conn := raw
	if cfg.TLS != nil {
		conn, err = startClientTLS(dctx, raw, addr, cfg.TLS, false)
	}
	var h Hello
	var fr *FrameReader
	if err == nil {
		h, fr, err = dialHandshake(conn, 0, cfg.ClusterID, nil, "", 0, frameBytesMax, deadline)
	}
	if !stop() || err != nil {
		raw.Close()
		if err == nil {
			err = dctx.Err()
		}
		return nil, fmt.Errorf("wire: dial %s: %w", addr, err)
	}
	return &ServerConn{
		// No direct writes here: a client's requests come from many
		// goroutines at once, and leaving them to the writer goroutine
		// coalesces them into few writes. Measured with 64 clients on 8
		// connections: linearizable gets went from 54,000 to 72,000-83,000
		// ops/s without direct writes, and a lone client's put lost nothing
		// measurable (docs/BENCHMARKS.md).
		fc:     newFrameConn(conn, fr, frameBytesMax, defaultConnQueueMax, defaultWriteTimeout, false),
		server: h,
	}, nil
}

// ServerID returns the node id the server gave in its hello.
func (c *ServerConn) ServerID() paxos.NodeID { return c.server.NodeID }

// Version returns the protocol version the connection negotiated: what
// the server understands of this client's requests (see
// docs/PROTOCOL.md, "Versions and mixed clusters").
func (c *ServerConn) Version() uint32 { return c.server.Version }

// Send queues q to be written. It is safe for concurrent use and coalesces
// writes; it blocks while the queue is full, and returns ErrFrameTooLarge
// (sending nothing) when q does not fit in a frame.
func (c *ServerConn) Send(q *Request) error {
	return c.fc.send(func(b []byte) []byte { return EncodeRequest(b, q) })
}

// Recv reads the next response; it must not be called concurrently with
// itself. Any error leaves the connection unusable.
func (c *ServerConn) Recv() (*Response, error) {
	body, err := c.fc.fr.ReadFrame()
	if err != nil {
		select {
		case <-c.fc.stop:
			return nil, fmt.Errorf("%w: %w", ErrClosed, err)
		default:
		}
		c.fc.kill()
		return nil, err
	}
	id, start, end, ok := responseIDSpan(body)
	if ok && c.last != nil && bytes.Equal(body[:start], c.lastBody[:c.lastStart]) && bytes.Equal(body[end:], c.lastBody[c.lastEnd:]) {
		// The push the previous response was, for another stream
		// (SharedResponse): decoded once.
		r := *c.last
		r.ID = id
		return &r, nil
	}
	s, err := DecodeResponse(body)
	if err != nil {
		c.fc.kill()
		return nil, err
	}
	c.last = nil
	if ok && len(s.Events) > 0 {
		cp := *s // what a later copy is made from, whatever the caller does with s
		c.last = &cp
		c.lastBody = append(c.lastBody[:0], body...)
		c.lastStart, c.lastEnd = start, end
	}
	return s, nil
}

// responseIDSpan finds the id of an encoded response: body[start:end].
func responseIDSpan(body []byte) (id uint64, start, end int, ok bool) {
	r := reader{b: body}
	if _, err := r.arrayLen(); err != nil {
		return 0, 0, 0, false
	}
	if err := expectFrameType(&r, FrameResponse); err != nil {
		return 0, 0, 0, false
	}
	start = r.off
	id, err := r.uint(math.MaxUint64)
	if err != nil {
		return 0, 0, 0, false
	}
	return id, start, r.off, true
}

// Close closes the connection at once; requests still queued are dropped
// (their outcome was unknown anyway) and Recv fails. It does not block.
func (c *ServerConn) Close() error { return c.fc.kill() }
