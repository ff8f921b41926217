package wire

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/paxosd/paxosd/paxos"
	"github.com/rs/zerolog"
)

// ServerConfig configures Serve. The zero value of every field but Self is
// valid and means the default stated on the field.
type ServerConfig struct {
	// Self is this node's id, sent in hellos. Required.
	Self paxos.NodeID
	// ClusterID names the cluster; connections that name another one are
	// refused. Default (and "") DefaultClusterID.
	ClusterID string
	// FrameBytesMax bounds a frame body; a longer frame closes its
	// connection. Default DefaultFrameBytesMax (16 MiB).
	FrameBytesMax int
	// HelloTimeout bounds the wait for a new connection's hello.
	// Default 10 s.
	HelloTimeout time.Duration
	// WriteTimeout bounds one write to a connection. Default 5 s.
	WriteTimeout time.Duration
	// ConnQueueMax bounds the responses queued on a client connection
	// before ClientConn.Send blocks. Default 1024.
	ConnQueueMax int
	// ClusterUUID, if set, returns the cluster's uuid (nil until known):
	// a peer whose hello carries another one is refused. Clients send none.
	ClusterUUID func() []byte
	// TLS, if set, makes every connection TLS (a plaintext one is
	// answered with a notice and closed), and a connection a peer's only
	// if its certificate names the node its hello gives (URI SAN
	// paxosd://node/ID, see NodeTLS). Default: plaintext, and a peer is
	// whoever says so in its hello.
	TLS *NodeTLS
	// Member, if set, refuses peer hellos from nodes it does not know.
	// Default: any node id but Self.
	Member func(paxos.NodeID) bool
	// PeerAddr, if set, is told the address an accepted peer's hello
	// gives (version 19: where the peer may be dialed back), before any
	// of its messages is handed on. It runs on the connection's
	// goroutine. Default: the address is ignored.
	PeerAddr func(id paxos.NodeID, addr string)
	// CheckPeerMessage, if set, vets every message from a peer before
	// Handler.HandlePeer gets it (once the message decodes and its From
	// and To are the connection's): an error closes the connection,
	// logged with the peer, the message type and the error. It runs on
	// the connection's reader goroutine, so it must be safe for
	// concurrent use. Default: every message that decodes is handed on.
	CheckPeerMessage func(paxos.Message) error
	// Logger receives the reason every refused or broken connection was
	// closed. Default: the zero zerolog.Logger, which discards.
	Logger zerolog.Logger
}

// ErrInvalidConfig marks a configuration that Validate rejects.
var ErrInvalidConfig = errors.New("wire: invalid config")

// EnsureDefaults fills zero fields with their defaults.
func (c *ServerConfig) EnsureDefaults() {
	c.ClusterID = normalizeClusterID(c.ClusterID)
	if c.FrameBytesMax <= 0 {
		c.FrameBytesMax = DefaultFrameBytesMax
	}
	if c.HelloTimeout <= 0 {
		c.HelloTimeout = 10 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = defaultWriteTimeout
	}
	if c.ConnQueueMax <= 0 {
		c.ConnQueueMax = defaultConnQueueMax
	}
}

// Validate reports the first problem with c.
func (c *ServerConfig) Validate() error {
	if c.Self == 0 {
		return fmt.Errorf("%w: Self must be a node id", ErrInvalidConfig)
	}
	return nil
}

// Handler receives what arrives on a server's connections.
type Handler interface {
	// HandlePeer is called for every message from an authenticated peer
	// connection (its From is the id the peer gave in its hello, its To
	// is this node), from that connection's reader goroutine: messages
	// of one connection arrive in order, those of different connections
	// concurrently. It must not block for long, since the peer's frames
	// wait meanwhile. The message's byte slices are the caller's to keep.
	HandlePeer(m paxos.Message)
	// HandleClient is called, on a goroutine of its own, once per client
	// connection after the hello. It owns c until it returns, and then
	// the server closes c. It reads requests with c.Recv and answers with
	// c.Send, which is safe for concurrent use, so requests can be
	// answered in any order from other goroutines. It must return once
	// Recv fails.
	HandleClient(c *ClientConn)
}

// Serve accepts connections on ln, peers and clients alike, until ln is
// closed; then it closes every connection it accepted, waits for their
// goroutines (and so for the handlers to return) and returns nil. It
// returns early only for an invalid cfg or an Accept error that is neither
// temporary nor net.ErrClosed.
//
// A connection whose hello is bad or names another cluster, or that sends
// an oversized or undecodable frame, is closed with its reason logged;
// others are not affected.
func Serve(ln net.Listener, cfg ServerConfig, h Handler) error {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	s := &server{cfg: cfg, h: h, conns: map[net.Conn]struct{}{}}
	err := s.acceptLoop(ln)
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

type server struct {
	cfg ServerConfig
	h   Handler

	wg     sync.WaitGroup
	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
}

func (s *server) acceptLoop(ln net.Listener) error {
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.cfg.Logger.Warn().Err(err).Dur("retry_in_ms", backoff).Msg("wire: accept failed")
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("wire: accept: %w", err)
		}
		backoff = 0
		if !s.track(conn) {
			conn.Close()
			return nil
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.untrack(conn)
			s.serveConn(conn)
		}()
	}
}

func (s *server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *server) untrack(c net.Conn) {
	c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// refuse logs why conn is being closed.
func (s *server) refuse(conn net.Conn, node paxos.NodeID, err error) {
	ev := s.cfg.Logger.Warn().Str("remote", conn.RemoteAddr().String())
	if node != 0 {
		ev = ev.Uint32("peer", uint32(node))
	}
	ev.Err(err).Msg("wire: closing connection")
}

// serveConn runs the hello exchange, then serves conn as a peer or a
// client connection.
func (s *server) serveConn(conn net.Conn) {
	if s.cfg.TLS != nil {
		tc, err := s.startTLS(conn)
		if err != nil {
			s.refuse(conn, 0, err)
			return
		}
		conn = tc
	}
	fr := NewFrameReader(conn, s.cfg.FrameBytesMax)
	hello, err := s.acceptHello(conn, fr)
	if err != nil {
		s.refuse(conn, 0, err)
		return
	}
	if hello.NodeID != 0 {
		if hello.Addr != "" && s.cfg.PeerAddr != nil {
			s.cfg.PeerAddr(hello.NodeID, hello.Addr)
		}
		s.servePeer(conn, fr, hello)
		return
	}
	c := &ClientConn{
		fc:      newFrameConn(conn, fr, s.cfg.FrameBytesMax, s.cfg.ConnQueueMax, s.cfg.WriteTimeout, true),
		log:     s.cfg.Logger.With().Str("remote", conn.RemoteAddr().String()).Logger(),
		version: min(hello.Version, ProtocolVersion),
	}
	if tc, ok := conn.(*tls.Conn); ok {
		c.certUser, c.certNode = certIdentity(tc.ConnectionState())
	}
	s.h.HandleClient(c)
	c.Close()
}

// acceptHello reads and checks the dialer's hello and answers with ours.
func (s *server) acceptHello(conn net.Conn, fr *FrameReader) (Hello, error) {
	if err := conn.SetDeadline(time.Now().Add(s.cfg.HelloTimeout)); err != nil {
		return Hello{}, err
	}
	body, err := fr.readFrame(helloBytesMax)
	if err != nil {
		if errors.Is(err, ErrFrameTooLarge) && fr.hdr[0] == recordTypeHandshake && fr.hdr[1] == 3 {
			// A TLS ClientHello: 0x16, then the version's major byte 3.
			answerAndClose(conn, tlsNotServedNotice)
			return Hello{}, fmt.Errorf("%w: a TLS handshake arrived, but this node does not serve TLS: start it with --cert-file, --key-file and --trusted-ca-file, or connect without TLS (no --cacert, --cert, --key)", ErrTLS)
		}
		return Hello{}, fmt.Errorf("reading hello: %w", err)
	}
	h, err := DecodeHello(body)
	if err != nil {
		return h, err
	}
	reply := Hello{Version: min(h.Version, ProtocolVersion), ClusterID: s.cfg.ClusterID, NodeID: s.cfg.Self}
	var uuid []byte
	if h.NodeID != 0 && s.cfg.ClusterUUID != nil {
		// Only peers learn it: clients name the cluster, not a formation.
		uuid = s.cfg.ClusterUUID()
		reply.ClusterUUID = uuid
	}
	out := appendFramed(nil, func(b []byte) []byte { return EncodeHello(b, reply) })
	err = checkCluster(s.cfg.ClusterID, h.ClusterID)
	if err == nil && h.NodeID != 0 {
		err = checkClusterUUID(uuid, h.ClusterUUID)
	}
	if err != nil {
		// Answer anyway, so that the dialer can report the mismatch too.
		conn.Write(out)
		return h, err
	}
	if h.NodeID == s.cfg.Self {
		return h, fmt.Errorf("%w: a peer claims this node's own id %d", ErrBadHello, h.NodeID)
	}
	if h.NodeID != 0 {
		// Refused without an answer: the dialer learns nothing it could
		// use to try another id.
		if err := s.checkPeer(conn, h.NodeID); err != nil {
			return h, err
		}
	}
	if _, err := conn.Write(out); err != nil {
		return h, err
	}
	return h, conn.SetDeadline(time.Time{})
}

// checkPeer decides whether a hello saying node id makes conn a peer
// connection: over TLS its certificate must name id, and id must be a
// member.
func (s *server) checkPeer(conn net.Conn, id paxos.NodeID) error {
	if tc, ok := conn.(*tls.Conn); ok {
		if err := checkPeerIdentity(tc.ConnectionState(), id); err != nil {
			return err
		}
	} else if s.cfg.TLS != nil {
		panic("wire: a plaintext connection on a TLS server")
	}
	if s.cfg.Member != nil && !s.cfg.Member(id) {
		return fmt.Errorf("%w: node %d is not a member of this cluster (--peers)", ErrPeerIdentity, id)
	}
	return nil
}

// servePeer reads messages from an authenticated peer until the connection
// breaks. Peers only send on the connections they dial; nothing is written
// back.
func (s *server) servePeer(conn net.Conn, fr *FrameReader, hello Hello) {
	peer := hello.NodeID
	for {
		body, err := fr.ReadFrame()
		if err != nil {
			if err == io.EOF || errors.Is(err, net.ErrClosed) {
				s.cfg.Logger.Debug().Uint32("peer", uint32(peer)).Msg("wire: peer connection ended")
			} else {
				s.refuse(conn, peer, err)
			}
			return
		}
		m, err := DecodeMessage(body)
		if err == nil {
			err = s.checkPeerMessage(peer, m)
		}
		if err == nil && len(hello.ClusterUUID) > 0 && s.cfg.ClusterUUID != nil {
			// The check of the hello is not outlived: a peer of another
			// formation that connected before this node learned its uuid
			// is cut off once it has.
			err = checkClusterUUID(s.cfg.ClusterUUID(), hello.ClusterUUID)
		}
		if err != nil {
			s.refuse(conn, peer, err)
			return
		}
		if s.cfg.CheckPeerMessage != nil {
			if err := s.cfg.CheckPeerMessage(m); err != nil {
				s.cfg.Logger.Warn().Str("remote", conn.RemoteAddr().String()).Uint32("peer", uint32(peer)).
					Str("type", m.Type.String()).Err(err).Msg("wire: closing connection")
				return
			}
		}
		s.h.HandlePeer(m)
	}
}

func (s *server) checkPeerMessage(peer paxos.NodeID, m paxos.Message) error {
	if m.From != peer {
		return fmt.Errorf("%w: message from %d on the connection of node %d", ErrMalformed, m.From, peer)
	}
	if m.To != s.cfg.Self {
		return fmt.Errorf("%w: message to %d arrived at node %d", ErrMalformed, m.To, s.cfg.Self)
	}
	return nil
}
