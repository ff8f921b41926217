package wire

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paxosd/paxosd/paxos"
	"github.com/rs/zerolog"
)

// TransportConfig configures a Transport. The zero value of every field but
// Self and Peers is valid and means the default stated on the field.
type TransportConfig struct {
	// Self is this node's id, sent in hellos. Required.
	Self paxos.NodeID
	// ClusterID names the cluster; a peer that names another one is not
	// used. Default (and "") DefaultClusterID.
	ClusterID string
	// Peers maps every node to its address (host:port). An entry for
	// Self is ignored: the driver steps messages to itself directly.
	Peers map[paxos.NodeID]string
	// FrameBytesMax bounds a frame body; a message that encodes larger is
	// dropped (and logged), since the peer would refuse it. Default
	// DefaultFrameBytesMax (16 MiB).
	FrameBytesMax int
	// QueueMax bounds the messages queued for one peer; Send drops beyond
	// it. Default 4096.
	QueueMax int
	// DialTimeout bounds a dial plus the hello exchange. Default 2 s.
	DialTimeout time.Duration
	// WriteTimeout bounds one write system call to a peer; a peer that
	// stops reading for longer is disconnected. Default 5 s.
	WriteTimeout time.Duration
	// BackoffMin and BackoffMax bound the wait between failed dials,
	// which doubles after each failure, with jitter. Defaults 10 ms, 1 s.
	BackoffMin, BackoffMax time.Duration
	// UnreachableWarnEvery spaces the warnings about a peer that stays
	// unreachable: the first failed dial is one, then one per interval
	// while it lasts (the failures between are debug lines). Default 30 s.
	UnreachableWarnEvery time.Duration
	// ClusterUUID, if set, returns the cluster's uuid (nil until known),
	// sent in every hello: a peer that knows another one is not used.
	ClusterUUID func() []byte
	// SelfAddr, if set, returns where the other nodes may dial this one
	// (its address as its membership names it; "" if none), sent in every
	// hello (version 19): a peer that knows no address for this node
	// learns it, and can answer.
	SelfAddr func() string
	// TLS, if set, makes every connection mutual TLS: this node presents
	// its certificate and accepts a peer only if its certificate names
	// the node it dialed (PeerDialConfig). Default: plaintext.
	TLS *NodeTLS
	// Logger receives connection failures. Default: the zero
	// zerolog.Logger, which discards.
	Logger zerolog.Logger
}

// EnsureDefaults fills zero fields with their defaults.
func (c *TransportConfig) EnsureDefaults() {
	c.ClusterID = normalizeClusterID(c.ClusterID)
	if c.FrameBytesMax <= 0 {
		c.FrameBytesMax = DefaultFrameBytesMax
	}
	if c.QueueMax <= 0 {
		c.QueueMax = 4096
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = defaultDialTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = defaultWriteTimeout
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = 10 * time.Millisecond
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = time.Second
	}
	if c.UnreachableWarnEvery <= 0 {
		c.UnreachableWarnEvery = 30 * time.Second
	}
}

// Validate reports the first problem with c, after defaults are applied.
func (c *TransportConfig) Validate() error {
	if c.Self == 0 {
		return fmt.Errorf("%w: Self must be a node id", ErrInvalidConfig)
	}
	for id, addr := range c.Peers {
		if id == 0 {
			return fmt.Errorf("%w: peer id 0", ErrInvalidConfig)
		}
		if addr == "" && id != c.Self {
			return fmt.Errorf("%w: no address for peer %d", ErrInvalidConfig, id)
		}
	}
	if c.BackoffMax < c.BackoffMin {
		return fmt.Errorf("%w: BackoffMax %v below BackoffMin %v", ErrInvalidConfig, c.BackoffMax, c.BackoffMin)
	}
	return nil
}

// Transport sends protocol messages to the other nodes. It keeps one
// outgoing connection per peer, dialed lazily on the first message and
// redialed with exponential backoff. Send writes a message to the socket
// itself when nothing is queued ahead of it and the socket takes it without
// blocking (see directWriter); otherwise it queues the message for the
// peer's writer goroutine, which coalesces what is queued into few system
// calls and is the only one to wait on a slow peer. Messages arrive at a
// peer in the order they were sent, or not at all: Paxos tolerates loss, so
// the transport drops rather than blocks. A node receives on the
// connections its peers dial (see Serve), so each connection carries
// messages one way.
type Transport struct {
	cfg TransportConfig
	// peers is read without a lock by Send; SetPeers replaces the map
	// (copy on write, under peersMu).
	peers   atomic.Pointer[map[paxos.NodeID]*peer]
	peersMu sync.Mutex
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	// unroutable counts messages to nodes without an address.
	unroutable atomic.Uint64
}

// PeerStats are a peer's counters since NewTransport.
type PeerStats struct {
	// Sent counts messages written to the peer's connection buffer;
	// Dropped those discarded (queue full, peer down, too large, or lost
	// with a broken connection's buffer).
	Sent, Dropped uint64
	// Writes counts write system calls; Sent/Writes is the coalescing.
	Writes uint64
	// Dials counts connection attempts; Connects those that succeeded
	// (so Connects-1 are reconnects, and Dials-Connects failed).
	Dials, Connects uint64
	// Connected reports whether a connection is up now.
	Connected bool
	// Unreachable reports whether the last dial failed, and DialError
	// why: the peer is down, or its address is wrong (another node
	// answers there, or nothing that speaks paxosd).
	Unreachable bool
	DialError   string
	// Queued counts the messages waiting for the peer's writer.
	Queued int
	// Version is the protocol version of the last connection made to the
	// peer: the highest both speak (0: never connected).
	Version uint32
}

type peer struct {
	id   paxos.NodeID
	addr string
	// ctx ends when the transport closes or the peer is dropped
	// (SetPeers).
	ctx    context.Context
	cancel context.CancelFunc
	q      chan outItem
	// gate orders Send's direct writes with the writer goroutine's; it
	// guards direct and scratch.
	gate   writeGate
	direct *directWriter // nil while not connected
	// scratch is the buffer Send encodes a direct write into.
	scratch []byte
	// directErr is why a direct write broke the connection, for the
	// writer goroutine's log line (it only sees the connection close).
	directErr error

	// down is set while the peer is in backoff after a failed dial: Send
	// drops at once instead of queueing messages that would go stale.
	down      atomic.Bool
	connected atomic.Bool
	version   atomic.Uint32
	sent      atomic.Uint64
	dropped   atomic.Uint64
	writes    atomic.Uint64
	dials     atomic.Uint64
	connects  atomic.Uint64
	log       zerolog.Logger

	// dialErr is why the last dial failed, nil once one succeeds.
	dialMu  sync.Mutex
	dialErr error
}

func (p *peer) setDialErr(err error) {
	p.dialMu.Lock()
	p.dialErr = err
	p.dialMu.Unlock()
}

// NewTransport starts a transport; Close stops it.
func NewTransport(cfg TransportConfig) (*Transport, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &Transport{cfg: cfg, ctx: ctx, cancel: cancel}
	t.peers.Store(&map[paxos.NodeID]*peer{})
	t.SetPeers(cfg.Peers)
	return t, nil
}

// SetPeers makes peers the nodes the transport sends to: it starts a
// writer for a node it did not know, stops the one of a node no longer
// listed (dropping what was queued), and replaces the one of a node whose
// address changed (the membership changed: a member added, removed or
// moved).
func (t *Transport) SetPeers(peers map[paxos.NodeID]string) {
	t.peersMu.Lock()
	defer t.peersMu.Unlock()
	old := *t.peers.Load()
	next := make(map[paxos.NodeID]*peer, len(peers))
	for id, addr := range peers {
		if id == t.cfg.Self || addr == "" {
			continue
		}
		if p := old[id]; p != nil && p.addr == addr {
			next[id] = p
			continue
		}
		next[id] = t.startPeer(id, addr)
	}
	for id, p := range old {
		if next[id] != p {
			p.cancel()
		}
	}
	t.peers.Store(&next)
}

func (t *Transport) startPeer(id paxos.NodeID, addr string) *peer {
	ctx, cancel := context.WithCancel(t.ctx)
	p := &peer{
		id:     id,
		addr:   addr,
		ctx:    ctx,
		cancel: cancel,
		q:      make(chan outItem, t.cfg.QueueMax),
		log:    t.cfg.Logger.With().Uint32("peer", uint32(id)).Str("addr", addr).Logger(),
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		t.run(p)
	}()
	return p
}

func (t *Transport) peer(id paxos.NodeID) *peer { return (*t.peers.Load())[id] }

// Send queues m for m.To and returns at once. It never blocks: when the
// peer's queue is full, the peer is down (backing off after a failed dial),
// m.To is unknown or the transport is closed, m is dropped and counted.
// Send does not copy m: its slices must not be modified afterwards.
func (t *Transport) Send(m paxos.Message) {
	p := t.peer(m.To)
	if p == nil {
		t.unroutable.Add(1)
		return
	}
	if p.down.Load() || p.ctx.Err() != nil {
		p.dropped.Add(1)
		return
	}
	if p.gate.tryLock() {
		sent := p.direct != nil && t.sendDirect(p, m)
		p.gate.mu.Unlock()
		if sent {
			return
		}
	}
	p.enqueue(outItem{m: m})
}

// outItem is what the writer goroutine writes: a message, or a wake-up to
// finish a frame a direct write left half-written (see writeGate).
type outItem struct {
	m    paxos.Message
	wake bool
}

// enqueue hands it to the writer goroutine, or drops it if the queue is
// full.
func (p *peer) enqueue(it outItem) bool {
	p.gate.queued.Add(1)
	select {
	case p.q <- it:
		return true
	default:
		p.gate.queued.Add(-1)
		p.dropped.Add(1)
		return false
	}
}

// sendDirect writes m to p's connection without blocking; p.gate is held
// and nothing is queued. What the socket does not take now is left to the
// writer goroutine (see writeGate). It returns false if m must be queued as
// usual.
func (t *Transport) sendDirect(p *peer, m paxos.Message) bool {
	if payloadBytes(m) > writeBufferBytes {
		// A large batch: the writer goroutine streams it, rather than the
		// caller copying what the socket does not take at once.
		return false
	}
	var ok bool
	if p.scratch, ok = t.frameMessage(p, p.scratch, m); !ok {
		return true
	}
	n, err := p.direct.tryWrite(p.scratch)
	if n > 0 {
		p.writes.Add(1)
	}
	switch {
	case err != nil:
		// The connection is broken: the writer goroutine notices (its
		// reader sees the close) and redials; m is lost with it.
		p.dropped.Add(1)
		p.directErr = err
		p.direct.conn.Close()
		p.direct = nil
	case n == len(p.scratch):
		p.sent.Add(1)
	default:
		p.sent.Add(1)
		p.gate.partials.Add(1)
		p.gate.pending = append([]byte(nil), p.scratch[n:]...)
		if !p.enqueue(outItem{wake: true}) {
			// Half a frame on the wire and the rest never written: the
			// stream is garbage from here, so end the connection.
			p.direct.conn.Close()
			p.direct = nil
		}
	}
	return true
}

// frameMessage encodes m as a frame into buf (reused); a message larger
// than a frame is dropped, counted and logged (ok false), since the peer
// would refuse it.
func (t *Transport) frameMessage(p *peer, buf []byte, m paxos.Message) (frame []byte, ok bool) {
	if m.Type == paxos.MsgHeartbeatAck && len(m.Slots) > 0 && p.version.Load() < VersionAckNamesDecide {
		m.Slots = nil // an older peer refuses them (VersionAckNamesDecide)
	}
	frame = appendFramed(buf[:0], func(b []byte) []byte { return EncodeMessage(b, m) })
	if n := len(frame) - frameHeaderBytes; n > t.cfg.FrameBytesMax {
		p.dropped.Add(1)
		p.log.Error().Stringer("msg", m).Int("bytes", n).Int("limit", t.cfg.FrameBytesMax).Msg("wire: dropping message larger than a frame")
		return frame, false
	}
	return frame, true
}

// payloadBytes is the bulk of m's encoding: its commands.
func payloadBytes(m paxos.Message) int {
	n := 0
	for _, e := range m.Entries {
		for _, c := range e.Value.Cmds {
			n += len(c)
		}
	}
	for _, c := range m.Cmds {
		n += len(c)
	}
	return n
}

// Connected reports whether a connection to node id is up.
func (t *Transport) Connected(id paxos.NodeID) bool {
	p := t.peer(id)
	return p != nil && p.connected.Load()
}

// Stats returns the counters of node id (zero for an unknown node).
func (t *Transport) Stats(id paxos.NodeID) PeerStats {
	p := t.peer(id)
	if p == nil {
		return PeerStats{}
	}
	st := PeerStats{
		Sent:      p.sent.Load(),
		Dropped:   p.dropped.Load(),
		Writes:    p.writes.Load(),
		Dials:     p.dials.Load(),
		Connects:  p.connects.Load(),
		Connected: p.connected.Load(),
		Queued:    len(p.q),
		Version:   p.version.Load(),
	}
	p.dialMu.Lock()
	if p.dialErr != nil {
		st.Unreachable, st.DialError = true, p.dialErr.Error()
	}
	p.dialMu.Unlock()
	return st
}

// Close closes every connection, stops the writer goroutines and waits for
// them. Messages still queued are dropped. Send may still be called.
func (t *Transport) Close() {
	t.cancel()
	t.wg.Wait()
}

// run is a peer's writer goroutine: dial when there is something to send,
// write until the connection breaks, back off after failures.
func (t *Transport) run(p *peer) {
	backoff := t.cfg.BackoffMin
	failures := 0 // dials failed in a row
	var failingSince, warned time.Time
	for {
		var first outItem
		select {
		case first = <-p.q:
		case <-p.ctx.Done():
			return
		}
		p.dials.Add(1)
		conn, err := t.dial(p)
		if err == nil {
			if failures > 0 {
				p.log.Info().Int("failures", failures).Dur("unreachable_for_ms", time.Since(failingSince)).Msg("wire: peer reachable again")
			}
			failures = 0
			p.setDialErr(nil)
			p.connects.Add(1)
			p.connected.Store(true)
			p.log.Debug().Msg("wire: connected to peer")
			start := time.Now()
			err = t.writeTo(p, conn, first)
			p.connected.Store(false)
			if p.ctx.Err() != nil {
				return
			}
			// A peer restarting closes its end: worth a line, not a warning.
			p.log.Info().Err(err).Msg("wire: peer connection broke")
			if time.Since(start) >= t.cfg.BackoffMax {
				backoff = t.cfg.BackoffMin
				continue // a long-lived connection broke: redial at once
			}
		} else {
			if p.ctx.Err() != nil {
				return
			}
			p.gate.queued.Add(-1) // first, dropped
			p.dropped.Add(1)
			failures++
			p.setDialErr(err)
			now := time.Now()
			if failures == 1 {
				failingSince = now
			}
			// The first failure is a warning, and then one per interval
			// while it lasts: a peer that stays unreachable (down, or a
			// wrong --peers address) must not go quiet after one line.
			ev := p.log.Debug()
			if failures == 1 || now.Sub(warned) >= t.cfg.UnreachableWarnEvery {
				ev, warned = p.log.Warn(), now
			}
			ev.Err(err).Int("failures", failures).Dur("unreachable_for_ms", now.Sub(failingSince)).Dur("retry_in_ms", backoff).Msg("wire: cannot reach peer")
		}
		// Back off; meanwhile drop what is queued and whatever is sent.
		p.down.Store(true)
		p.drainDrop()
		timer := time.NewTimer(jitter(backoff))
		select {
		case <-timer.C:
		case <-p.ctx.Done():
			timer.Stop()
			return
		}
		p.drainDrop()
		p.down.Store(false)
		backoff = min(2*backoff, t.cfg.BackoffMax)
	}
}

// jitter spreads d over [d/2, d) so that nodes do not redial in step.
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

// drainDrop drops everything queued for p.
func (p *peer) drainDrop() {
	for {
		select {
		case <-p.q:
			p.gate.queued.Add(-1)
			p.dropped.Add(1)
		default:
			return
		}
	}
}

// dial connects to p and exchanges hellos, checking that the node reached
// is p in our cluster.
func (t *Transport) dial(p *peer) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(p.ctx, t.cfg.DialTimeout)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	deadline, _ := ctx.Deadline()
	conn := raw
	if t.cfg.TLS != nil {
		conn, err = startClientTLS(ctx, raw, p.addr, t.cfg.TLS.PeerDialConfig(p.id), true)
	}
	var h Hello
	if err == nil {
		h, _, err = dialHandshake(conn, t.cfg.Self, t.cfg.ClusterID, t.clusterUUID(), t.selfAddr(), p.id, t.cfg.FrameBytesMax, deadline)
	}
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		raw.Close()
		return nil, err
	}
	p.version.Store(h.Version)
	return conn, nil
}

// writeTo writes p's messages to conn, first of all first, until the
// connection breaks or the transport closes. It closes conn. While it is
// connected, Send may write to conn directly (see sendDirect); p.gate keeps
// the two from interleaving.
func (t *Transport) writeTo(p *peer, conn net.Conn, first outItem) error {
	// The peer never writes on this connection: a read returning means it
	// closed (or broke) the connection, which the writer may not notice
	// until its next write.
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		var b [1]byte
		conn.Read(b[:])
		closeConn(conn)
	}()
	stop := context.AfterFunc(p.ctx, func() { closeConn(conn) })
	p.gate.mu.Lock()
	p.direct = newDirectWriter(conn)
	p.gate.mu.Unlock()
	defer func() {
		p.gate.mu.Lock()
		p.direct = nil
		// The rest of a frame a direct write began belongs to this
		// connection: written first on the next one, it would put the
		// listener in the middle of a frame, and it would take whatever
		// followed as that frame's body.
		p.gate.pending = nil
		p.gate.mu.Unlock()
		stop()
		closeConn(conn)
		<-gone
	}()

	const scratchKeepBytes = 4 << 20
	bw := bufio.NewWriterSize(deadlineWriter{conn: conn, timeout: t.cfg.WriteTimeout, writes: &p.writes}, writeBufferBytes)
	var scratch []byte
	put := func(bw *bufio.Writer, it outItem) error {
		if it.wake {
			return nil // the gate wrote the pending bytes
		}
		m := it.m
		var ok bool
		if scratch, ok = t.frameMessage(p, scratch, m); !ok {
			return nil
		}
		_, err := bw.Write(scratch)
		// Keep the buffer across messages — under load most Accepts are
		// batches larger than the write buffer, and regrowing one per
		// message cost a third of the cluster's CPU — but not a rare
		// frame-sized one.
		if cap(scratch) > scratchKeepBytes {
			scratch = nil
		}
		if err != nil {
			return err
		}
		p.sent.Add(1)
		return nil
	}
	err := writeBatch(bw, p.q, &p.gate, first, put)
	if err == nil {
		err = writeLoop(bw, p.q, nil, gone, &p.gate, put)
	}
	if errors.Is(err, ErrClosed) {
		p.gate.mu.Lock()
		if p.directErr != nil {
			err = fmt.Errorf("write to peer: %w", p.directErr)
		} else {
			err = errors.New("peer closed the connection")
		}
		p.directErr = nil
		p.gate.mu.Unlock()
	}
	// Frames still in the buffer are lost with the connection.
	return err
}

// clusterUUID returns the uuid to send in a hello, nil if not known.
func (t *Transport) clusterUUID() []byte {
	if t.cfg.ClusterUUID == nil {
		return nil
	}
	return t.cfg.ClusterUUID()
}

// selfAddr is the address for this node's hellos; one a listener would
// refuse (over helloAddrBytesMax) is left out rather than fail every
// connection.
func (t *Transport) selfAddr() string {
	if t.cfg.SelfAddr == nil {
		return ""
	}
	if a := t.cfg.SelfAddr(); len(a) <= helloAddrBytesMax {
		return a
	}
	return ""
}
