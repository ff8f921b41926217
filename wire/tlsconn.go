package wire

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"
)

// TLS wraps the framing of docs/PROTOCOL.md and changes nothing in it:
// with TLS on, the TLS handshake comes first and the hello exchange runs
// inside it. Both ends tell the two apart by the first byte: a TLS
// handshake record starts with 0x16, a paxosd frame (a hello, at most
// 4 KiB) with 0x00. A node answers a connection in the other mode with a
// line of text and closes it, and each end's error says what to pass.

const (
	// recordTypeHandshake is the first byte of a TLS connection.
	recordTypeHandshake = 0x16
	// tlsRequiredNotice is what a node with TLS answers a plaintext
	// connection. Its first four bytes read as a frame length far above
	// the hello limit: a client before TLS support reports `its first
	// bytes "TLS " are not a paxosd hello`, and ours recognise it
	// (noHello).
	tlsRequiredNotice = "TLS required: this paxosd node accepts only TLS connections\n"
	// tlsNotServedNotice is what a node without TLS answers a TLS
	// handshake: anything but a TLS record makes the client's handshake
	// fail with a tls.RecordHeaderError, which it reports (explainTLS),
	// rather than with an unexplained EOF.
	tlsNotServedNotice = "paxosd: this node does not serve TLS\n"
)

// prefixConn is a net.Conn whose first bytes were already read.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// startTLS runs the server's side of the TLS handshake on a new
// connection, within the hello timeout. A connection that does not start
// with a TLS handshake gets tlsRequiredNotice and an error for the log.
func (s *server) startTLS(conn net.Conn) (*tls.Conn, error) {
	if err := conn.SetDeadline(time.Now().Add(s.cfg.HelloTimeout)); err != nil {
		return nil, err
	}
	var first [1]byte
	if _, err := io.ReadFull(conn, first[:]); err != nil {
		return nil, fmt.Errorf("waiting for the TLS handshake: %w", err)
	}
	if first[0] != recordTypeHandshake {
		answerAndClose(conn, tlsRequiredNotice)
		return nil, fmt.Errorf("%w: %s", ErrTLS, plaintextReason(first[0]))
	}
	tc := tls.Server(&prefixConn{Conn: conn, prefix: first[:]}, s.cfg.TLS.ServerConfig())
	if err := tc.Handshake(); err != nil {
		// The alert is written; what the client sent after its
		// certificate (TLS 1.3: its hello) must not turn the close into
		// a reset that overtakes the alert.
		answerAndClose(conn, "")
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	return tc, nil
}

// plaintextReason says what a node with TLS received instead of a
// handshake, by its first byte.
func plaintextReason(b byte) string {
	switch {
	case b == 0:
		return "a plaintext paxosd connection to a node that requires TLS: a client needs --cacert (and --cert, --key), a node --cert-file, --key-file and --trusted-ca-file"
	case strings.IndexByte("GPHDOCT", b) >= 0:
		return "a plaintext HTTP request on the paxosd port, which requires TLS (the HTTP endpoints are on --http-listen)"
	}
	return fmt.Sprintf("the connection did not start with a TLS handshake (first byte %#02x), and this node requires TLS", b)
}

// answerAndClose writes notice (if any) and closes conn without losing
// what was written: closing a socket with unread input makes the kernel
// send a reset, which can overtake it, so the rest of the input is read
// first (for at most a second).
func answerAndClose(conn net.Conn, notice string) {
	conn.SetDeadline(time.Now().Add(time.Second))
	if notice != "" {
		conn.Write([]byte(notice))
	}
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	io.Copy(io.Discard, io.LimitReader(conn, 64<<10))
	conn.Close()
}

// closeConn closes c at once. For TLS it closes the socket under it
// without the close_notify alert, whose write could wait (up to 5 s) for
// a peer that does not read; the other end still sees a clean EOF, since
// the cut falls between records.
func closeConn(c net.Conn) error {
	if tc, ok := c.(*tls.Conn); ok {
		return tc.NetConn().Close()
	}
	return c.Close()
}

// startClientTLS runs the client's side of the TLS handshake on conn,
// dialed to addr. A conf without ServerName checks the certificate against
// addr's host. node: the dialer is a node (PeerDialConfig), whose flags the
// errors name.
func startClientTLS(ctx context.Context, conn net.Conn, addr string, conf *tls.Config, node bool) (*tls.Conn, error) {
	conf = conf.Clone()
	if conf.ServerName == "" {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			conf.ServerName = host
		}
	}
	if conf.MinVersion < tls.VersionTLS12 {
		conf.MinVersion = tls.VersionTLS12
	}
	tc := tls.Client(conn, conf)
	if err := tc.HandshakeContext(ctx); err != nil {
		if e, ok := explainTLS(err, node); ok {
			return nil, e
		}
		if isConnEnd(err) {
			return nil, fmt.Errorf("%w: the node closed the connection during the TLS handshake: it does not serve TLS (a paxosd before TLS support), or refused the connection (its log says why): %v", ErrTLS, err)
		}
		return nil, fmt.Errorf("%w: handshake: %v", ErrTLS, err)
	}
	return tc, nil
}

// explainTLS turns what a TLS handshake failed with into one line that
// says what is wrong and what to pass; ok is false when err is nothing
// TLS-specific. node: the dialer is a node, so the advice names serve's
// flags rather than a client's (a node checks its peers' certificates
// itself, in PeerDialConfig, whose errors say what they found).
func explainTLS(err error, node bool) (_ error, ok bool) {
	var (
		rhe tls.RecordHeaderError
		ua  x509.UnknownAuthorityError
		he  x509.HostnameError
		ci  x509.CertificateInvalidError
		oe  *net.OpError
	)
	switch {
	case errors.Is(err, ErrTLS):
		return err, true
	case errors.As(err, &rhe) && node:
		return fmt.Errorf("%w: the peer answered in plaintext: it does not serve TLS; start every node with --cert-file, --key-file and --trusted-ca-file", ErrTLS), true
	case errors.As(err, &rhe):
		return fmt.Errorf("%w: the node answered in plaintext: it does not serve TLS; connect without --cacert, --cert and --key, or start the node with --cert-file, --key-file and --trusted-ca-file", ErrTLS), true
	case errors.As(err, &ua):
		issuer := "?"
		if ua.Cert != nil {
			issuer = ua.Cert.Issuer.CommonName
		}
		return fmt.Errorf("%w: the node's certificate is signed by %q, a CA this client does not trust: pass the cluster's CA certificate with --cacert FILE (or $PAXOSD_CACERT)", ErrTLS, issuer), true
	case errors.As(err, &he):
		return fmt.Errorf("%w: wrong host: %v; connect to a name or address the node's certificate lists, or give the node a certificate with this one as a SAN", ErrTLS, he.Error()), true
	case errors.As(err, &ci) && ci.Reason == x509.Expired:
		return fmt.Errorf("%w: the node's certificate is expired or not yet valid (%v): renew it on the node (a running node re-reads its files), or check the clocks", ErrTLS, ci.Error()), true
	case errors.As(err, &ci) && ci.Reason == x509.IncompatibleUsage:
		return fmt.Errorf("%w: the node's certificate is not for serverAuth: issue it with extendedKeyUsage serverAuth,clientAuth (docs/SECURITY.md)", ErrTLS), true
	case errors.As(err, &ci):
		return fmt.Errorf("%w: the node's certificate is refused: %v", ErrTLS, ci.Error()), true
	case errors.As(err, &oe) && oe.Op == "remote error":
		return explainAlert(oe.Err.Error(), node), true
	}
	return err, false
}

// explainAlert explains an alert the node sent: why it refused us.
func explainAlert(alert string, node bool) error {
	switch strings.TrimPrefix(alert, "tls: ") {
	case "certificate required":
		if node {
			return fmt.Errorf("%w: the peer requires a certificate and this node sent none", ErrTLS)
		}
		return fmt.Errorf("%w: the node requires a client certificate: pass --cert FILE --key FILE (or $PAXOSD_CERT, $PAXOSD_KEY)", ErrTLS)
	case "bad certificate", "unknown certificate authority", "revoked certificate", "expired certificate", "unsupported certificate", "certificate unknown":
		if node {
			return fmt.Errorf("%w: the peer refused this node's certificate (%s): not signed by a CA of its --peer-trusted-ca-file (or --trusted-ca-file), expired or revoked; the peer's log says which", ErrTLS, alert)
		}
		return fmt.Errorf("%w: the node refused this client's certificate (%s): not signed by a CA of its --trusted-ca-file, expired, revoked or without clientAuth; the node's log says which", ErrTLS, alert)
	case "protocol version not supported":
		return fmt.Errorf("%w: no TLS version in common (%s): paxosd needs TLS 1.2 or later", ErrTLS, alert)
	}
	return fmt.Errorf("%w: the node ended the handshake: %s", ErrTLS, alert)
}

// isConnEnd reports whether err is the other end closing or resetting.
func isConnEnd(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}
