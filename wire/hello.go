package wire

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/paxosd/paxosd/paxos"
)

// Hello is the first frame each side of a connection sends. The dialer sends
// its hello; the listener checks it and answers with its own, so both ends
// verify the cluster id. Layout: [0, "paxosd", version, cluster_id, node_id,
// cluster_uuid]; cluster_uuid (version 2) only from a node that knows it.
type Hello struct {
	// Version is the protocol version. A dialer sends the highest version
	// it speaks; the listener answers with the version the connection will
	// use, min(dialer's, listener's). Version 0 does not exist.
	Version uint32
	// ClusterID names the cluster; both ends must agree. The empty string
	// stands for DefaultClusterID.
	ClusterID string
	// NodeID is the sender's node id, or 0 for a client.
	NodeID paxos.NodeID
	// ClusterUUID is the random id the cluster got when it formed (empty:
	// the sender does not know it yet, or is a client). Two nodes that
	// both know theirs must agree: a cluster name says which cluster a
	// member was configured for, the uuid which formation it took part in.
	ClusterUUID []byte
	// Addr is where a dialing node may be dialed back (version 19): its
	// address as its membership names it. Only a node dialing a peer
	// sends it; a listener that knows no address for the dialer learns
	// this one, so that it can answer at all (a node that lagged through
	// the membership change adding the dialer has none). At most
	// helloAddrBytesMax bytes.
	Addr string
}

// helloAddrBytesMax bounds a hello's addr: a host name and a port.
const helloAddrBytesMax = 1024

// EncodeHello appends the body of a hello frame to dst.
func EncodeHello(dst []byte, h Hello) []byte {
	n := 5
	if len(h.ClusterUUID) > 0 {
		n = 6 // appended in version 2; left out when empty, as before
	}
	if h.Addr != "" {
		n = 7 // appended in version 19, after a cluster_uuid that may be empty
	}
	dst = appendArrayLen(dst, n)
	dst = appendUint(dst, uint64(FrameHello))
	dst = appendStr(dst, Magic)
	dst = appendUint(dst, uint64(h.Version))
	dst = appendStr(dst, h.ClusterID)
	dst = appendUint(dst, uint64(h.NodeID))
	if n >= 6 {
		dst = appendBin(dst, h.ClusterUUID)
	}
	if n == 7 {
		dst = appendStr(dst, h.Addr)
	}
	return dst
}

// DecodeHello decodes a hello frame body. It checks the frame type, the
// magic and that the version is at least 1; the caller checks the rest.
// Elements after addr are ignored; missing trailing ones read as
// zero, as in every frame (docs/PROTOCOL.md §1): [0, "paxosd", 7] is a
// client's hello to the default cluster. The version cannot be left out,
// since 0 is no version.
func DecodeHello(body []byte) (Hello, error) {
	var h Hello
	r := reader{b: body}
	n, err := r.arrayLen()
	if err != nil {
		return h, fmt.Errorf("%w: %w", ErrBadHello, err)
	}
	if n < 3 {
		return h, fmt.Errorf("%w: %d elements, want at least 3 (frame type, magic, version)", ErrBadHello, n)
	}
	if t, err := r.uint(0xff); err != nil || FrameType(t) != FrameHello {
		return h, fmt.Errorf("%w: not a hello frame (not a paxosd client or node?)", ErrBadHello)
	}
	if magic, err := r.raw(); err != nil || string(magic) != Magic {
		// Quoted and cut short: the bytes are the other end's, anything.
		return h, fmt.Errorf("%w: bad magic %.20q, want %q (not a paxosd client or node?)", ErrBadHello, magic, Magic)
	}
	v, err := r.uint(1<<32 - 1)
	if err != nil {
		return h, fmt.Errorf("%w: version: %w", ErrBadHello, err)
	}
	if v == 0 {
		return h, fmt.Errorf("%w: version 0", ErrBadHello)
	}
	h.Version = uint32(v)
	if n > 3 {
		if h.ClusterID, err = r.str(); err != nil {
			return h, fmt.Errorf("%w: cluster id: %w", ErrBadHello, err)
		}
	}
	if n > 4 {
		id, err := r.uint(1<<32 - 1)
		if err != nil {
			return h, fmt.Errorf("%w: node id: %w", ErrBadHello, err)
		}
		h.NodeID = paxos.NodeID(id)
	}
	if n > 5 {
		if h.ClusterUUID, err = r.raw(); err != nil {
			return h, fmt.Errorf("%w: cluster uuid: %w", ErrBadHello, err)
		}
		if len(h.ClusterUUID) == 0 {
			h.ClusterUUID = nil
		}
	}
	if n > 6 {
		if h.Addr, err = r.str(); err != nil {
			return h, fmt.Errorf("%w: addr: %w", ErrBadHello, err)
		}
		if len(h.Addr) > helloAddrBytesMax {
			return h, fmt.Errorf("%w: addr of %d bytes, at most %d", ErrBadHello, len(h.Addr), helloAddrBytesMax)
		}
	}
	for i := 7; i < n; i++ {
		if err := r.skip(); err != nil {
			return h, fmt.Errorf("%w: %w", ErrBadHello, err)
		}
	}
	if err := r.end(); err != nil {
		return h, fmt.Errorf("%w: %w", ErrBadHello, err)
	}
	return h, nil
}

// checkCluster fails unless the two cluster ids name the same cluster.
func checkCluster(ours, theirs string) error {
	if normalizeClusterID(ours) != normalizeClusterID(theirs) {
		return fmt.Errorf("%w: ours %q, theirs %q", ErrWrongCluster, normalizeClusterID(ours), normalizeClusterID(theirs))
	}
	return nil
}

// checkClusterUUID fails when both ends know their cluster's uuid and the
// two differ: the same cluster name, but two formations. One side was
// formed (or re-formed after losing its data) without the other.
func checkClusterUUID(ours, theirs []byte) error {
	if len(ours) == 0 || len(theirs) == 0 || bytes.Equal(ours, theirs) {
		return nil
	}
	return fmt.Errorf("%w: same cluster name but another formation (cluster uuid ours %x, theirs %x): "+
		"one of the two was formed without the other, e.g. re-formed after a majority lost its data", ErrWrongCluster, ours, theirs)
}

// dialHandshake sends our hello on a freshly dialed conn and checks the
// listener's answer: same cluster (and, for a peer, the same cluster uuid
// when both know it), a version we speak, and node id want (any non-zero
// id when want is 0). A node dialing a peer says where it may be dialed
// back (addr; "" for a client). It returns the listener's hello and the
// reader positioned after it.
func dialHandshake(conn net.Conn, self paxos.NodeID, clusterID string, uuid []byte, addr string, want paxos.NodeID, frameBytesMax int, deadline time.Time) (Hello, *FrameReader, error) {
	if err := conn.SetDeadline(deadline); err != nil {
		return Hello{}, nil, err
	}
	out := appendFramed(nil, func(b []byte) []byte {
		return EncodeHello(b, Hello{Version: ProtocolVersion, ClusterID: normalizeClusterID(clusterID), NodeID: self, ClusterUUID: uuid, Addr: addr})
	})
	if _, err := conn.Write(out); err != nil {
		return Hello{}, nil, err
	}
	fr := NewFrameReader(conn, frameBytesMax)
	body, err := fr.readFrame(helloBytesMax)
	if err != nil {
		_, isTLS := conn.(*tls.Conn)
		return Hello{}, nil, noHello(err, fr.hdr, isTLS, self != 0)
	}
	h, err := DecodeHello(body)
	if err != nil {
		return h, nil, err // it says "not a paxosd client or node?"
	}
	if err := checkCluster(clusterID, h.ClusterID); err != nil {
		return h, nil, err
	}
	if err := checkClusterUUID(uuid, h.ClusterUUID); err != nil {
		return h, nil, err
	}
	if h.Version > ProtocolVersion {
		return h, nil, fmt.Errorf("%w: listener chose version %d, we speak up to %d", ErrBadHello, h.Version, ProtocolVersion)
	}
	switch {
	case h.NodeID == 0:
		return h, nil, fmt.Errorf("%w: listener did not give its node id", ErrBadHello)
	case want != 0 && h.NodeID != want:
		return h, nil, fmt.Errorf("%w: expected node %d, reached node %d", ErrBadHello, want, h.NodeID)
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return h, nil, err
	}
	return h, fr, nil
}

// noHello explains why a dialed listener gave no hello; hdr holds the first
// bytes it sent, if any. Pointing a client at a node's --http-listen port is
// the usual cause: the HTTP server waits for a request line that never
// comes, or answers in HTTP. Then comes TLS: a plaintext dialer to a node
// that requires TLS gets tlsRequiredNotice; over TLS (isTLS), a node that
// refuses our certificate says so in an alert (TLS 1.3 sends it after the
// handshake, so it arrives here), and one that refuses our hello's node
// id closes the connection. node: the dialer is a node, whose flags the
// advice names.
func noHello(err error, hdr [frameHeaderBytes]byte, isTLS, node bool) error {
	if isTLS {
		if e, ok := explainTLS(err, node); ok {
			return e
		}
		if isConnEnd(err) {
			return fmt.Errorf("%w: the node closed the connection after the TLS handshake, without a hello: it refused this connection (this certificate, or a hello whose node id the certificate does not name or that is not in its --peers); its log says why", ErrTLS)
		}
	}
	switch {
	case errors.Is(err, ErrFrameTooLarge) && string(hdr[:]) == tlsRequiredNotice[:frameHeaderBytes] && node:
		return fmt.Errorf("%w: the node requires TLS and this node dials in plaintext: start it with --cert-file, --key-file and --trusted-ca-file like the others", ErrTLS)
	case errors.Is(err, ErrFrameTooLarge) && string(hdr[:]) == tlsRequiredNotice[:frameHeaderBytes]:
		return fmt.Errorf("%w: the node requires TLS and this connection is plaintext: pass the cluster's CA with --cacert FILE (and --cert FILE --key FILE if it asks for client certificates), or $PAXOSD_CACERT, $PAXOSD_CERT, $PAXOSD_KEY", ErrTLS)
	case errors.Is(err, ErrFrameTooLarge) && string(hdr[:]) == "HTTP":
		return fmt.Errorf("%w: it answered in HTTP (a node's --http-listen port serves metrics; clients and peers use its --listen address)", ErrNotPaxosd)
	case errors.Is(err, ErrFrameTooLarge):
		return fmt.Errorf("%w: its first bytes %q are not a paxosd hello", ErrNotPaxosd, hdr[:])
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, net.ErrClosed):
		// (net.ErrClosed: the dial's context ended and closed the socket.)
		return fmt.Errorf("%w: no hello before the dial timeout; is this a paxosd node's --listen address? (an HTTP port such as --http-listen's stays silent)", ErrNotPaxosd)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
		return fmt.Errorf("%w: it closed the connection without a hello (another service, or a node shutting down): %w", ErrNotPaxosd, err)
	}
	return fmt.Errorf("reading hello: %w", err)
}
