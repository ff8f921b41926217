package wire

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paxosd/paxosd/paxos"
	"github.com/rs/zerolog"
)

// TLS on the node's one port (docs/SECURITY.md). A node holds one
// certificate, used both ways: it serves peers and clients with it and
// presents it when it dials a peer. What makes a connection a peer's is
// the URI SAN paxosd://node/ID in a certificate the peer CA signed, never
// a CommonName, and the hello must name the same node (checkPeerIdentity).
//
// The files are re-read when they change (checked at most every
// ReloadCheckEvery, at a handshake or by Watch) and on Reload (SIGHUP):
// every handshake takes the current material, so a renewed certificate, a
// new CA bundle or a new CRL applies to the next connection without a
// restart. A change that does not load (a half-copied file, a key that
// does not match) is logged and the previous material kept.

var (
	// ErrTLS marks a TLS failure: a bad certificate or key, a CA that does
	// not sign the other end's, a TLS client on a plaintext node or the
	// reverse. Its text says what is wrong and what to pass.
	ErrTLS = errors.New("wire: TLS")
	// ErrPeerIdentity: a peer's hello does not match its certificate (no
	// node URI SAN, another node's, none at all) or names a node that is
	// not a member.
	ErrPeerIdentity = errors.New("wire: peer identity refused")
)

// NodeURIScheme and NodeURIHost make a node's URI SAN: paxosd://node/ID.
const (
	NodeURIScheme = "paxosd"
	NodeURIHost   = "node"
)

// NodeURI is the URI SAN that makes a certificate node id's.
func NodeURI(id paxos.NodeID) string {
	return fmt.Sprintf("%s://%s/%d", NodeURIScheme, NodeURIHost, id)
}

// CertNode returns the node a certificate names by its URI SAN
// paxosd://node/ID; ok is false when it names none. A malformed node URI,
// or two naming different nodes, is an error: such a certificate names no
// one reliably.
func CertNode(c *x509.Certificate) (id paxos.NodeID, ok bool, err error) {
	for _, u := range c.URIs {
		if u.Scheme != NodeURIScheme || u.Host != NodeURIHost {
			continue
		}
		n, perr := strconv.ParseUint(strings.TrimPrefix(u.Path, "/"), 10, 32)
		if perr != nil || n == 0 || u.Path != "/"+strconv.FormatUint(n, 10) || u.RawQuery != "" || u.Fragment != "" {
			return 0, false, fmt.Errorf("%w: certificate %s: malformed node URI %q, want %s", ErrTLS, describeCert(c), u.String(), NodeURI(1))
		}
		if ok && paxos.NodeID(n) != id {
			return 0, false, fmt.Errorf("%w: certificate %s names two nodes, %d and %d", ErrTLS, describeCert(c), id, n)
		}
		id, ok = paxos.NodeID(n), true
	}
	return id, ok, nil
}

// describeCert names a certificate in a log line or an error.
func describeCert(c *x509.Certificate) string {
	name := c.Subject.CommonName
	if name == "" {
		name = c.Subject.String()
	}
	return fmt.Sprintf("%q (issuer %q, serial %x)", name, c.Issuer.CommonName, c.SerialNumber)
}

// TLSConfig configures a node's TLS (paxosd serve's flags, etcd's names).
// CertFile, KeyFile and TrustedCAFile are required.
type TLSConfig struct {
	// CertFile and KeyFile hold the node's certificate (PEM, with any
	// intermediates after it) and its private key. The certificate must
	// carry the URI SAN paxosd://node/Self and the extended key usages
	// serverAuth and clientAuth (or none), and list the node's host names
	// or IP addresses, which clients check.
	CertFile, KeyFile string
	// TrustedCAFile holds the CA certificates that sign client
	// certificates (and peers', unless PeerTrustedCAFile is set).
	TrustedCAFile string
	// PeerTrustedCAFile, if set, holds the CA certificates that sign the
	// nodes' certificates; a certificate with a node URI SAN is then
	// checked against it, and only against it. Default: TrustedCAFile.
	PeerTrustedCAFile string
	// ClientCRLFile, if set, is a certificate revocation list (PEM or
	// DER) signed by a trusted CA: a certificate it revokes is refused
	// on every incoming connection.
	ClientCRLFile string
	// ClientCertAuth requires every client to present a certificate a
	// trusted CA signed. Without it a client may connect with none (a
	// certificate it does present is still checked). Peers always need
	// theirs.
	ClientCertAuth bool
	// Self is this node's id: the certificate must name it.
	Self paxos.NodeID
	// ReloadCheckEvery is how often the files are checked for a change.
	// Default 5 s.
	ReloadCheckEvery time.Duration
	// Logger receives reloads and failed reloads.
	Logger zerolog.Logger
}

// NodeTLS is a node's TLS material, reloaded when its files change. It is
// safe for concurrent use.
type NodeTLS struct {
	cfg TLSConfig
	cur atomic.Pointer[tlsMaterial]
	// server is the tls.Config a listener uses: it hands each handshake
	// the current material's. httpServer is the same for the HTTP port.
	server, httpServer *tls.Config

	mu        sync.Mutex // serializes reloads; guards what follows
	lastCheck time.Time
	stamps    []fileStamp
}

// tlsMaterial is one loaded set of files; it never changes.
type tlsMaterial struct {
	cert           tls.Certificate
	leaf           *x509.Certificate
	clientCAs      *x509.CertPool
	peerCAs        *x509.CertPool
	peerCAFlag     string
	clientCertAuth bool
	// revoked holds issuer DER + serial of the revoked certificates.
	revoked map[string]bool
	// server checks incoming certificates (verifyIncoming); httpServer
	// does too, but lets a client without one through (see
	// HTTPServerConfig).
	server, httpServer *tls.Config
}

// NewNodeTLS loads cfg's files and checks them: a missing or unreadable
// file, a key that does not match the certificate, an expired
// certificate, one without the needed key usages or node URI SAN, or not
// signed by the peer CA is an error naming the flag and what to fix.
func NewNodeTLS(cfg TLSConfig) (*NodeTLS, error) {
	if cfg.ReloadCheckEvery <= 0 {
		cfg.ReloadCheckEvery = 5 * time.Second
	}
	for _, f := range []struct{ flag, v string }{{"--cert-file", cfg.CertFile}, {"--key-file", cfg.KeyFile}, {"--trusted-ca-file", cfg.TrustedCAFile}} {
		if f.v == "" {
			return nil, fmt.Errorf("%w: TLS needs --cert-file, --key-file and --trusted-ca-file; %s is missing", ErrTLS, f.flag)
		}
	}
	if cfg.Self == 0 {
		return nil, fmt.Errorf("%w: Self must be a node id", ErrInvalidConfig)
	}
	t := &NodeTLS{cfg: cfg}
	t.stamps = t.stampFiles()
	m, err := loadTLS(cfg, time.Now())
	if err != nil {
		return nil, err
	}
	t.cur.Store(m)
	t.lastCheck = time.Now()
	t.server = &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return t.material().server, nil
		},
	}
	t.httpServer = &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return t.material().httpServer, nil
		},
	}
	return t, nil
}

// HTTPServerConfig is ServerConfig for the HTTP port: a certificate a
// client presents is checked the same way, but a client without one gets
// through the handshake even with ClientCertAuth, so that health probes
// (which seldom carry a certificate) can reach /healthz and /readyz. The
// HTTP handler must then refuse what needs a certificate
// (NeedsClientCert).
func (t *NodeTLS) HTTPServerConfig() *tls.Config { return t.httpServer }

// ClientCertAuth reports whether clients must present a certificate.
func (t *NodeTLS) ClientCertAuth() bool { return t.cfg.ClientCertAuth }

// ServerConfig returns the tls.Config a listener (the node's port, its
// HTTP port) serves with: the current certificate, and the checks of
// incoming certificates. Peer identity is checked after the hello, by
// Serve.
func (t *NodeTLS) ServerConfig() *tls.Config { return t.server }

// PeerDialConfig returns the tls.Config this node dials member id with:
// it presents the node's certificate and accepts only a certificate the
// peer CA signed that names node id.
func (t *NodeTLS) PeerDialConfig(id paxos.NodeID) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// VerifyConnection checks the chain and the node: peers are
		// recognised by their URI SAN, not by a host name.
		InsecureSkipVerify: true,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &t.material().cert, nil
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			return t.material().verifyPeerServer(cs, id)
		},
	}
}

// Reload re-reads the files now (paxosd serve does on SIGHUP). On error
// the previous material stays in use.
func (t *NodeTLS) Reload() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.reloadLocked(t.stampFiles(), "reload requested")
}

// Watch checks the files every ReloadCheckEvery until stop is closed, so
// that a renewed certificate is loaded (and logged) soon after it lands,
// not only at the next connection.
func (t *NodeTLS) Watch(stop <-chan struct{}) {
	tick := time.NewTicker(t.cfg.ReloadCheckEvery)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			t.material()
		}
	}
}

// Certificate returns the node's current certificate.
func (t *NodeTLS) Certificate() *x509.Certificate { return t.cur.Load().leaf }

// material returns the current material, reloading it first if the files
// changed since the last look (at most every ReloadCheckEvery; a check
// under way elsewhere is not waited for).
func (t *NodeTLS) material() *tlsMaterial {
	if t.mu.TryLock() {
		if now := time.Now(); now.Sub(t.lastCheck) >= t.cfg.ReloadCheckEvery {
			t.lastCheck = now
			if st := t.stampFiles(); !slices.Equal(st, t.stamps) {
				t.reloadLocked(st, "files changed")
			}
		}
		t.mu.Unlock()
	}
	return t.cur.Load()
}

// reloadLocked loads the files whose state is st. t.mu is held.
func (t *NodeTLS) reloadLocked(st []fileStamp, why string) error {
	t.stamps = st // a file that does not load is retried once it changes again
	m, err := loadTLS(t.cfg, time.Now())
	if err != nil {
		t.cfg.Logger.Error().Err(err).Str("why", why).Msg("wire: TLS files not reloaded; the previous certificates stay in use")
		return err
	}
	t.cur.Store(m)
	t.cfg.Logger.Info().Str("why", why).Str("cert", describeCert(m.leaf)).Time("not_after", m.leaf.NotAfter).Msg("wire: TLS files reloaded")
	return nil
}

// fileStamp is what tells a changed file: its size and modification time
// (a rotation that renames a new file into place changes both, or at
// least the time).
type fileStamp struct {
	path  string
	size  int64
	mtime time.Time
	err   string
}

func (t *NodeTLS) stampFiles() []fileStamp {
	var out []fileStamp
	for _, p := range []string{t.cfg.CertFile, t.cfg.KeyFile, t.cfg.TrustedCAFile, t.cfg.PeerTrustedCAFile, t.cfg.ClientCRLFile} {
		if p == "" {
			continue
		}
		fs := fileStamp{path: p}
		if fi, err := os.Stat(p); err != nil {
			fs.err = err.Error()
		} else {
			fs.size, fs.mtime = fi.Size(), fi.ModTime()
		}
		out = append(out, fs)
	}
	return out
}

// loadTLS reads and checks cfg's files as of now.
func loadTLS(cfg TLSConfig, now time.Time) (*tlsMaterial, error) {
	certPEM, err := os.ReadFile(cfg.CertFile)
	if err != nil {
		return nil, fmt.Errorf("%w: --cert-file: %v", ErrTLS, err)
	}
	keyPEM, err := os.ReadFile(cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("%w: --key-file: %v", ErrTLS, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%w: --cert-file %s with --key-file %s: %v", ErrTLS, cfg.CertFile, cfg.KeyFile, err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("%w: --cert-file %s: %v", ErrTLS, cfg.CertFile, err)
	}
	cert.Leaf = leaf
	if err := checkNodeCert(leaf, cfg.Self, now); err != nil {
		return nil, fmt.Errorf("%w: --cert-file %s: %v", ErrTLS, cfg.CertFile, err)
	}
	m := &tlsMaterial{cert: cert, leaf: leaf, clientCertAuth: cfg.ClientCertAuth, peerCAFlag: "--trusted-ca-file"}
	clientCAs, caCerts, err := readCAFile("--trusted-ca-file", cfg.TrustedCAFile)
	if err != nil {
		return nil, err
	}
	m.clientCAs, m.peerCAs = clientCAs, clientCAs
	if cfg.PeerTrustedCAFile != "" {
		peerCAs, peerCerts, err := readCAFile("--peer-trusted-ca-file", cfg.PeerTrustedCAFile)
		if err != nil {
			return nil, err
		}
		m.peerCAs, m.peerCAFlag = peerCAs, "--peer-trusted-ca-file"
		caCerts = append(caCerts, peerCerts...)
	}
	// The node's own certificate must pass the check its peers make.
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: m.peerCAs, Intermediates: intermediates(cert.Certificate[1:]), CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("%w: --cert-file %s is not signed by a CA of %s (%v): the other nodes would refuse it", ErrTLS, cfg.CertFile, m.peerCAFlag, err)
	}
	if cfg.ClientCRLFile != "" {
		if m.revoked, err = readCRL(cfg.ClientCRLFile, caCerts); err != nil {
			return nil, err
		}
	}
	m.server = &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		// The chain is checked in VerifyConnection, against the client
		// or the peer CA depending on the certificate (verifyIncoming).
		ClientAuth: tls.RequestClientCert,
		// No resumption: every connection's certificate is checked
		// against the CAs and the CRL of the moment.
		SessionTicketsDisabled: true,
		VerifyConnection:       m.verifyIncoming,
	}
	m.httpServer = m.server.Clone()
	m.httpServer.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return nil // the handler decides (HTTPServerConfig)
		}
		return m.verifyIncoming(cs)
	}
	if cfg.ClientCertAuth {
		m.server.ClientAuth = tls.RequireAnyClientCert
	}
	return m, nil
}

// checkNodeCert checks what a node's own certificate needs.
func checkNodeCert(c *x509.Certificate, self paxos.NodeID, now time.Time) error {
	switch {
	case now.After(c.NotAfter):
		return fmt.Errorf("the certificate expired at %s; install a renewed one (a running node re-reads its files)", c.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(c.NotBefore):
		return fmt.Errorf("the certificate is not valid before %s (is this machine's clock right?)", c.NotBefore.UTC().Format(time.RFC3339))
	}
	if len(c.ExtKeyUsage) > 0 || len(c.UnknownExtKeyUsage) > 0 {
		var missing []string
		if !hasEKU(c, x509.ExtKeyUsageServerAuth) {
			missing = append(missing, "serverAuth")
		}
		if !hasEKU(c, x509.ExtKeyUsageClientAuth) {
			missing = append(missing, "clientAuth")
		}
		if len(missing) > 0 {
			return fmt.Errorf("the certificate lacks the extended key usage %s: a node's certificate needs serverAuth (it serves) and clientAuth (it dials its peers); see docs/SECURITY.md", strings.Join(missing, " and "))
		}
	}
	if c.KeyUsage != 0 && c.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return errors.New("the certificate's key usage lacks digitalSignature, which TLS needs; see docs/SECURITY.md")
	}
	id, ok, err := CertNode(c)
	switch {
	case err != nil:
		return err
	case !ok:
		return fmt.Errorf("the certificate names no node: a node's certificate needs the URI SAN %s (peers know a node by it, never by its CommonName); see docs/SECURITY.md", NodeURI(self))
	case id != self:
		return fmt.Errorf("the certificate is node %d's (URI SAN %s), but this is node %d", id, NodeURI(id), self)
	}
	return nil
}

func hasEKU(c *x509.Certificate, u x509.ExtKeyUsage) bool {
	return slices.Contains(c.ExtKeyUsage, u) || slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageAny)
}

// readCAFile reads a PEM bundle of CA certificates.
func readCAFile(flag, path string) (*x509.CertPool, []*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v", ErrTLS, flag, err)
	}
	certs, err := parsePEMCerts(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s %s: %v", ErrTLS, flag, path, err)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, certs, nil
}

// parsePEMCerts parses every CERTIFICATE block of a PEM file; none is an
// error.
func parsePEMCerts(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate in it")
	}
	return out, nil
}

// readCRL reads a revocation list one of cas signed, and returns the
// certificates it revokes.
func readCRL(path string, cas []*x509.Certificate) (map[string]bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: --client-crl-file: %v", ErrTLS, err)
	}
	if blk, _ := pem.Decode(b); blk != nil {
		b = blk.Bytes
	}
	crl, err := x509.ParseRevocationList(b)
	if err != nil {
		return nil, fmt.Errorf("%w: --client-crl-file %s: %v", ErrTLS, path, err)
	}
	signed := false
	for _, ca := range cas {
		if crl.CheckSignatureFrom(ca) == nil {
			signed = true
			break
		}
	}
	if !signed {
		return nil, fmt.Errorf("%w: --client-crl-file %s is not signed by a CA of --trusted-ca-file (issuer %q)", ErrTLS, path, crl.Issuer.CommonName)
	}
	// A CRL past its NextUpdate is still used: it lists what it revoked.
	revoked := map[string]bool{}
	for _, e := range crl.RevokedCertificateEntries {
		revoked[string(crl.RawIssuer)+e.SerialNumber.String()] = true
	}
	return revoked, nil
}

func intermediates(ders [][]byte) *x509.CertPool {
	if len(ders) == 0 {
		return nil
	}
	pool := x509.NewCertPool()
	for _, d := range ders {
		if c, err := x509.ParseCertificate(d); err == nil {
			pool.AddCert(c)
		}
	}
	return pool
}

// verifyIncoming checks the certificate an incoming connection presents:
// a certificate naming a node against the peer CA, any other against the
// client CA, and neither revoked. Whether the connection may act as a
// peer is decided after the hello (checkPeerIdentity).
func (m *tlsMaterial) verifyIncoming(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		if m.clientCertAuth {
			return fmt.Errorf("%w: no client certificate, and --client-cert-auth requires one", ErrTLS)
		}
		return nil
	}
	leaf := cs.PeerCertificates[0]
	_, isNode, err := CertNode(leaf)
	if err != nil {
		return err
	}
	pool, flag := m.clientCAs, "--trusted-ca-file"
	if isNode {
		pool, flag = m.peerCAs, m.peerCAFlag
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return fmt.Errorf("%w: certificate %s refused (checked against %s): %v", ErrTLS, describeCert(leaf), flag, err)
	}
	if m.revoked[string(leaf.RawIssuer)+leaf.SerialNumber.String()] {
		return fmt.Errorf("%w: certificate %s is revoked (--client-crl-file)", ErrTLS, describeCert(leaf))
	}
	return nil
}

// verifyPeerServer checks the certificate of the node this one dialed as
// member want: signed by the peer CA, for serverAuth, naming node want.
func (m *tlsMaterial) verifyPeerServer(cs tls.ConnectionState, want paxos.NodeID) error {
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("%w: the node presented no certificate", ErrTLS)
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: m.peerCAs, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return fmt.Errorf("%w: the node's certificate %s is refused (checked against %s): %v", ErrTLS, describeCert(leaf), m.peerCAFlag, err)
	}
	id, ok, err := CertNode(leaf)
	switch {
	case err != nil:
		return err
	case !ok:
		return fmt.Errorf("%w: the certificate %s at node %d's address names no node (no URI SAN %s)", ErrTLS, describeCert(leaf), want, NodeURI(want))
	case id != want:
		return fmt.Errorf("%w: the certificate at node %d's address is node %d's (%s): is --peers right?", ErrTLS, want, id, NodeURI(id))
	}
	return nil
}

// checkPeerIdentity is the check that makes a connection a peer's: its
// certificate (verified by the handshake) names node id by its URI SAN,
// the node its hello gave.
func checkPeerIdentity(cs tls.ConnectionState, id paxos.NodeID) error {
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("%w: the hello says node %d, but the connection presented no certificate: a peer must present its node certificate (URI SAN %s)", ErrPeerIdentity, id, NodeURI(id))
	}
	leaf := cs.PeerCertificates[0]
	certID, ok, err := CertNode(leaf)
	switch {
	case err != nil:
		return fmt.Errorf("%w: %w", ErrPeerIdentity, err)
	case !ok:
		return fmt.Errorf("%w: the hello says node %d, but the certificate %s names no node (no URI SAN %s): a client certificate cannot act as a peer", ErrPeerIdentity, id, describeCert(leaf), NodeURI(id))
	case certID != id:
		return fmt.Errorf("%w: the certificate names node %d (%s) but the hello says node %d", ErrPeerIdentity, certID, describeCert(leaf), id)
	}
	return nil
}

// certIdentity returns who a client connection's certificate, verified by
// verifyIncoming, says it is: a node certificate's node (never a user: a
// CommonName never names a node, nor a node certificate a user), or any
// other certificate's CommonName as a user.
func certIdentity(cs tls.ConnectionState) (user string, node paxos.NodeID) {
	if len(cs.PeerCertificates) == 0 {
		return "", 0
	}
	leaf := cs.PeerCertificates[0]
	if id, ok, err := CertNode(leaf); err == nil && ok {
		return "", id
	} else if err != nil {
		return "", 0
	}
	return leaf.Subject.CommonName, 0
}
