package wire

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/paxosd/paxosd/internal/devcert"
	"github.com/paxosd/paxosd/paxos"
)

// pki is a throwaway CA and the files of the certificates it issued, in a
// test's temporary directory.
type pki struct {
	t      *testing.T
	dir    string
	ca     *devcert.CA
	caFile string
}

func newPKI(t *testing.T, name string) *pki {
	t.Helper()
	ca, err := devcert.NewCA(name, time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	p := &pki{t: t, dir: t.TempDir(), ca: ca}
	p.caFile = p.write(name+".ca.crt", ca.CertPEM)
	return p
}

func (p *pki) write(name string, b []byte) string {
	p.t.Helper()
	path := filepath.Join(p.dir, name)
	if err := devcert.WriteFile(path, b, 0o600); err != nil {
		p.t.Fatal(err)
	}
	return path
}

// issue writes a certificate for s as name.crt and name.key.
func (p *pki) issue(name string, s devcert.Spec) (certFile, keyFile string, pair *devcert.Pair) {
	p.t.Helper()
	pair, err := p.ca.Issue(s)
	if err != nil {
		p.t.Fatal(err)
	}
	certFile, keyFile, err = pair.Write(p.dir, name)
	if err != nil {
		p.t.Fatal(err)
	}
	return certFile, keyFile, pair
}

// nodeSpec is a good node certificate for id on loopback.
func nodeSpec(id uint32) devcert.Spec {
	return devcert.Spec{CommonName: fmt.Sprintf("node-%d", id), Node: id, Hosts: []string{"127.0.0.1"}, Server: true, Client: true}
}

// nodeTLS loads node id's TLS material; edit adjusts the config.
func (p *pki) nodeTLS(id paxos.NodeID, edit func(*TLSConfig)) *NodeTLS {
	p.t.Helper()
	cert, key, _ := p.issue(fmt.Sprintf("node%d", id), nodeSpec(uint32(id)))
	cfg := TLSConfig{CertFile: cert, KeyFile: key, TrustedCAFile: p.caFile, Self: id, ClientCertAuth: true}
	if edit != nil {
		edit(&cfg)
	}
	t, err := NewNodeTLS(cfg)
	if err != nil {
		p.t.Fatal(err)
	}
	return t
}

// clientTLS is a client's tls.Config trusting p's CA, presenting the
// certificate in certFile and keyFile if given.
func (p *pki) clientTLS(certFile, keyFile string) *tls.Config {
	p.t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.ca.CertPEM)
	conf := &tls.Config{RootCAs: pool}
	if certFile != "" {
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			p.t.Fatal(err)
		}
		conf.Certificates = []tls.Certificate{c}
	}
	return conf
}

// startTLSServer is startServer with TLS (nt nil: plaintext) and member.
func startTLSServer(t *testing.T, self paxos.NodeID, nt *NodeTLS, member func(paxos.NodeID) bool) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{addr: ln.Addr().String(), ln: ln, h: &echoHandler{msgs: make(chan paxos.Message, 100)}, log: &syncBuffer{}, done: make(chan error, 1)}
	cfg := ServerConfig{Self: self, ClusterID: "test", TLS: nt, Member: member, Logger: zerolog.New(s.log), HelloTimeout: 2 * time.Second}
	go func() { s.done <- Serve(ln, cfg, s.h) }()
	t.Cleanup(func() { s.stop(t) })
	return s
}

func newTLSTransport(t *testing.T, self paxos.NodeID, peers map[paxos.NodeID]string, nt *NodeTLS) (*Transport, *syncBuffer) {
	t.Helper()
	log := &syncBuffer{}
	tr, err := NewTransport(TransportConfig{
		Self: self, ClusterID: "test", Peers: peers, TLS: nt,
		BackoffMin: time.Millisecond, BackoffMax: 20 * time.Millisecond, Logger: zerolog.New(log),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	return tr, log
}

func dialTLS(addr string, conf *tls.Config) (*Mux, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := DialClientConfig(ctx, addr, DialConfig{ClusterID: "test", TLS: conf})
	if err != nil {
		return nil, err
	}
	return NewMux(c), nil
}

// noPeerMessage fails if a message reached the handler.
func noPeerMessage(t *testing.T, s *testServer) {
	t.Helper()
	select {
	case m := <-s.h.msgs:
		t.Fatalf("a refused connection delivered %v", m)
	case <-time.After(50 * time.Millisecond):
	}
}

// TestTLSPeersAndClients: with TLS on both ends, a node's transport
// reaches its peer (mutual TLS, each recognising the other by its URI
// SAN), and a client with a certificate from the trusted CA is served.
func TestTLSPeersAndClients(t *testing.T) {
	p := newPKI(t, "test CA")
	s := startTLSServer(t, 2, p.nodeTLS(2, nil), func(id paxos.NodeID) bool { return id == 1 || id == 2 })
	tr, log := newTLSTransport(t, 1, map[paxos.NodeID]string{2: s.addr}, p.nodeTLS(1, nil))
	tr.Send(heartbeat(7))
	if m := recvMsg(t, s.h.msgs); m.From != 1 || m.Commit != 7 {
		t.Fatalf("got %v", m)
	}
	if !tr.Connected(2) || tr.Stats(2).Version != ProtocolVersion {
		t.Fatalf("transport: %+v\n%s", tr.Stats(2), log)
	}

	cert, key, _ := p.issue("alice", devcert.Spec{CommonName: "alice", Client: true})
	m, err := dialTLS(s.addr, p.clientTLS(cert, key))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	checkCall(t, m, "k")
	if strings.Contains(s.log.String(), "closing connection") {
		t.Fatalf("server refused a connection:\n%s", s.log)
	}
}

// rawPeerHello opens a TLS connection with conf and sends a peer hello as
// node claim. It returns the error reading the answer (nil: answered).
func rawPeerHello(t *testing.T, addr string, conf *tls.Config, claim paxos.NodeID) error {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, conf)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(AppendFrame(nil, EncodeHello(nil, Hello{Version: ProtocolVersion, ClusterID: "test", NodeID: claim}))); err != nil {
		return err
	}
	if _, err := NewFrameReader(conn, 0).ReadFrame(); err != nil {
		return err
	}
	// Answered: the connection is a peer's. Show that it can send.
	_, err = conn.Write(AppendFrame(nil, EncodeMessage(nil, paxos.Message{Type: paxos.MsgHeartbeat, From: claim, To: 2, Commit: 99})))
	return err
}

// TestTLSPeerIdentity: what makes a connection a peer's is a certificate
// whose URI SAN names the node its hello gives, and that node a member.
// Every other would-be peer is refused before it can send a message, with
// the reason in the log; a CommonName never counts.
func TestTLSPeerIdentity(t *testing.T) {
	p := newPKI(t, "test CA")
	s := startTLSServer(t, 2, p.nodeTLS(2, func(c *TLSConfig) { c.ClientCertAuth = false }),
		func(id paxos.NodeID) bool { return id >= 1 && id <= 3 })
	tlsWith := func(certFile, keyFile string) *tls.Config {
		c := p.clientTLS(certFile, keyFile)
		c.ServerName = "127.0.0.1"
		return c
	}
	node3Cert, node3Key, _ := p.issue("node3", nodeSpec(3))
	node9Cert, node9Key, _ := p.issue("node9", nodeSpec(9))
	userCert, userKey, _ := p.issue("user", devcert.Spec{CommonName: "node-1", Client: true})
	cases := []struct {
		name  string
		conf  *tls.Config
		claim paxos.NodeID
		log   string
	}{
		{"a certificate naming node 3 with a hello saying node 1", tlsWith(node3Cert, node3Key), 1,
			"wire: peer identity refused: the certificate names node 3"},
		{"a client certificate (CommonName node-1) with a peer hello", tlsWith(userCert, userKey), 1,
			`names no node (no URI SAN paxosd://node/1): a client certificate cannot act as a peer`},
		{"no certificate with a peer hello", tlsWith("", ""), 1,
			"the hello says node 1, but the connection presented no certificate"},
		{"a node that is not a member", tlsWith(node9Cert, node9Key), 9,
			"wire: peer identity refused: node 9 is not a member of this cluster (--peers)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := rawPeerHello(t, s.addr, tc.conf, tc.claim); err == nil {
				t.Fatal("the hello was answered")
			}
			s.log.waitLog(t, jsonEscape(tc.log))
			noPeerMessage(t, s)
		})
	}
	// The same certificate naming node 3, with a hello that says 3: a peer.
	if err := rawPeerHello(t, s.addr, tlsWith(node3Cert, node3Key), 3); err != nil {
		t.Fatalf("node 3's own hello: %v\n%s", err, s.log)
	}
	if m := recvMsg(t, s.h.msgs); m.From != 3 || m.Commit != 99 {
		t.Fatalf("got %v", m)
	}
	// The same client certificate as a client: served.
	m, err := dialTLS(s.addr, tlsWith(userCert, userKey))
	if err != nil {
		t.Fatal(err)
	}
	checkCall(t, m, "k")
	m.Close()

	// The dialing side: a listener whose certificate is node 3's where
	// node 2 should be is not used.
	other := startTLSServer(t, 3, p.nodeTLS(3, nil), nil)
	tr, log := newTLSTransport(t, 1, map[paxos.NodeID]string{2: other.addr}, p.nodeTLS(1, nil))
	tr.Send(heartbeat(1))
	log.waitLog(t, jsonEscape("wire: TLS: the certificate at node 2's address is node 3's (paxosd://node/3): is --peers right?"))
	noPeerMessage(t, other)
}

// TestTLSPlaintextMismatch: a plaintext client or node dialing a TLS node,
// and a TLS one dialing a plaintext node, each get one error that says
// what is wrong and what to pass, and the listener logs what came.
func TestTLSPlaintextMismatch(t *testing.T) {
	p := newPKI(t, "test CA")
	tlsSrv := startTLSServer(t, 2, p.nodeTLS(2, nil), nil)
	plainSrv := startTLSServer(t, 2, nil, nil)
	cert, key, _ := p.issue("alice", devcert.Spec{CommonName: "alice", Client: true})

	_, err := DialClient(context.Background(), tlsSrv.addr, "test", 0)
	want := "wire: TLS: the node requires TLS and this connection is plaintext: pass the cluster's CA with --cacert FILE"
	if !errors.Is(err, ErrTLS) || !strings.Contains(err.Error(), want) {
		t.Errorf("plaintext client to a TLS node: %v\nwant %s", err, want)
	}
	tlsSrv.log.waitLog(t, "a plaintext paxosd connection to a node that requires TLS: a client needs --cacert")

	_, err = dialTLS(plainSrv.addr, p.clientTLS(cert, key))
	want = "wire: TLS: the node answered in plaintext: it does not serve TLS; connect without --cacert, --cert and --key"
	if !errors.Is(err, ErrTLS) || !strings.Contains(err.Error(), want) {
		t.Errorf("TLS client to a plaintext node: %v\nwant %s", err, want)
	}
	plainSrv.log.waitLog(t, "a TLS handshake arrived, but this node does not serve TLS: start it with --cert-file")

	tr, log := newTLSTransport(t, 1, map[paxos.NodeID]string{2: tlsSrv.addr}, nil)
	tr.Send(heartbeat(1))
	log.waitLog(t, "the node requires TLS and this node dials in plaintext: start it with --cert-file, --key-file and --trusted-ca-file")
	tr2, log2 := newTLSTransport(t, 1, map[paxos.NodeID]string{2: plainSrv.addr}, p.nodeTLS(1, nil))
	tr2.Send(heartbeat(1))
	log2.waitLog(t, "wire: TLS: the peer answered in plaintext: it does not serve TLS")
	noPeerMessage(t, tlsSrv)
	noPeerMessage(t, plainSrv)
}

// TestTLSClientErrors: a client that does not trust the node's CA, one
// that dials a host the node's certificate does not name, one without a
// certificate where one is required, one whose certificate another CA
// signed, and one whose certificate the CRL revokes: each is refused with
// a line saying what to pass, and the node logs why.
func TestTLSClientErrors(t *testing.T) {
	p := newPKI(t, "test CA")
	otherCA := newPKI(t, "other CA")
	good, goodKey, _ := p.issue("alice", devcert.Spec{CommonName: "alice", Client: true})
	revoked, revokedKey, rpair := p.issue("bob", devcert.Spec{CommonName: "bob", Client: true})
	crl, err := p.ca.CRL(rpair.Cert)
	if err != nil {
		t.Fatal(err)
	}
	crlFile := p.write("ca.crl", crl)
	s := startTLSServer(t, 2, p.nodeTLS(2, func(c *TLSConfig) { c.ClientCRLFile = crlFile }), nil)
	wrongHostCert, wrongHostKey, _ := p.issue("far", devcert.Spec{Node: 4, Hosts: []string{"10.9.9.9", "far.example"}, Server: true, Client: true})
	far, err := NewNodeTLS(TLSConfig{CertFile: wrongHostCert, KeyFile: wrongHostKey, TrustedCAFile: p.caFile, Self: 4})
	if err != nil {
		t.Fatal(err)
	}
	farSrv := startTLSServer(t, 4, far, nil)
	mallory, malloryKey, _ := otherCA.issue("mallory", devcert.Spec{CommonName: "mallory", Client: true})

	untrusting := otherCA.clientTLS(good, goodKey)
	withMallory := p.clientTLS(mallory, malloryKey)
	cases := []struct {
		name      string
		addr      string
		conf      *tls.Config
		want, log string
	}{
		{"a client that does not trust the node's CA", s.addr, untrusting,
			`wire: TLS: the node's certificate is signed by "test CA", a CA this client does not trust: pass the cluster's CA certificate with --cacert FILE (or $PAXOSD_CACERT)`, ""},
		{"a wrong host", farSrv.addr, p.clientTLS(good, goodKey),
			"wire: TLS: wrong host: x509: certificate is valid for 10.9.9.9, not 127.0.0.1; connect to a name or address the node's certificate lists", ""},
		{"no client certificate", s.addr, p.clientTLS("", ""),
			"wire: TLS: the node requires a client certificate: pass --cert FILE --key FILE (or $PAXOSD_CERT, $PAXOSD_KEY)",
			"client didn't provide a certificate"},
		{"a client certificate of another CA", s.addr, withMallory,
			"wire: TLS: the node refused this client's certificate (tls: bad certificate): not signed by a CA of its --trusted-ca-file",
			`certificate \"mallory\" (issuer \"other CA\"`},
		{"a revoked client certificate", s.addr, p.clientTLS(revoked, revokedKey),
			"wire: TLS: the node refused this client's certificate (tls: bad certificate)",
			fmt.Sprintf(`certificate \"bob\" (issuer \"test CA\", serial %x) is revoked (--client-crl-file)`, rpair.Cert.SerialNumber)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := dialTLS(tc.addr, tc.conf)
			if err == nil {
				m.Close()
				t.Fatal("connected")
			}
			if !errors.Is(err, ErrTLS) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got  %v\nwant %s", err, tc.want)
			}
			if tc.log != "" {
				s.log.waitLog(t, tc.log)
			}
		})
	}
	m, err := dialTLS(s.addr, p.clientTLS(good, goodKey))
	if err != nil {
		t.Fatalf("a good client certificate next to the CRL: %v", err)
	}
	checkCall(t, m, "k")
	m.Close()
}

// TestTLSReload: a node whose certificate expires refuses nothing itself,
// but its clients refuse it; once a renewed certificate is written over
// the old files, the next connection gets it, with no restart. A file
// that does not load leaves the current certificate in use.
func TestTLSReload(t *testing.T) {
	p := newPKI(t, "test CA")
	spec := nodeSpec(2)
	spec.NotAfter = time.Now().Add(1500 * time.Millisecond)
	certFile, keyFile, old := p.issue("node2", spec)
	tlsLog := &syncBuffer{}
	nt, err := NewNodeTLS(TLSConfig{CertFile: certFile, KeyFile: keyFile, TrustedCAFile: p.caFile, Self: 2, ReloadCheckEvery: 20 * time.Millisecond, Logger: zerolog.New(tlsLog)})
	if err != nil {
		t.Fatal(err)
	}
	s := startTLSServer(t, 2, nt, nil)
	client := p.clientTLS("", "")
	m, err := dialTLS(s.addr, client)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()

	time.Sleep(time.Until(old.Cert.NotAfter) + 100*time.Millisecond)
	_, err = dialTLS(s.addr, client)
	if want := "wire: TLS: the node's certificate is expired or not yet valid"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("after expiry: %v\nwant %s", err, want)
	}

	// A broken file (half a rotation) is not taken.
	if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	dialTLS(s.addr, client) // a handshake looks at the files
	tlsLog.waitLog(t, "wire: TLS files not reloaded; the previous certificates stay in use")

	renewed, err := p.ca.Issue(nodeSpec(2))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := renewed.Write(p.dir, "node2"); err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m, lastErr = dialTLS(s.addr, client); lastErr == nil {
			checkCall(t, m, "k")
			m.Close()
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("no connection after the renewal: %v\n%s", lastErr, s.log)
	}
	tlsLog.waitLog(t, "wire: TLS files reloaded")
	if got := nt.Certificate().SerialNumber; got.Cmp(renewed.Cert.SerialNumber) != 0 {
		t.Fatalf("serving serial %x, want the renewed %x", got, renewed.Cert.SerialNumber)
	}
}

// TestNewNodeTLSErrors: every mistake in a node's TLS files is refused at
// startup with a line naming the flag and what to fix.
func TestNewNodeTLSErrors(t *testing.T) {
	p := newPKI(t, "test CA")
	other := newPKI(t, "other CA")
	goodCert, goodKey, _ := p.issue("node1", nodeSpec(1))
	_, otherKey, _ := p.issue("node1b", nodeSpec(1))
	spec := nodeSpec(1)
	spec.NotAfter = time.Now().Add(-time.Minute)
	expiredCert, expiredKey, _ := p.issue("expired", spec)
	noURICert, noURIKey, _ := p.issue("nouri", devcert.Spec{CommonName: "node-1", Hosts: []string{"127.0.0.1"}, Server: true, Client: true})
	serverOnlyCert, serverOnlyKey, _ := p.issue("serveronly", devcert.Spec{Node: 1, Server: true})
	node2Cert, node2Key, _ := p.issue("node2", nodeSpec(2))
	strangerCert, strangerKey, _ := other.issue("stranger", nodeSpec(1))
	notPEM := p.write("notpem", []byte("hello"))
	otherCRL, err := other.ca.CRL()
	if err != nil {
		t.Fatal(err)
	}
	otherCRLFile := p.write("other.crl", otherCRL)
	missing := filepath.Join(p.dir, "missing.crt")
	cases := []struct {
		name string
		cfg  TLSConfig
		want string
	}{
		{"a missing file", TLSConfig{CertFile: missing, KeyFile: goodKey, TrustedCAFile: p.caFile},
			"wire: TLS: --cert-file: open " + missing + ": no such file or directory"},
		{"a key of another certificate", TLSConfig{CertFile: goodCert, KeyFile: otherKey, TrustedCAFile: p.caFile},
			"private key does not match public key"},
		{"an expired certificate", TLSConfig{CertFile: expiredCert, KeyFile: expiredKey, TrustedCAFile: p.caFile},
			"wire: TLS: --cert-file " + expiredCert + ": the certificate expired at "},
		{"no node URI SAN", TLSConfig{CertFile: noURICert, KeyFile: noURIKey, TrustedCAFile: p.caFile},
			"the certificate names no node: a node's certificate needs the URI SAN paxosd://node/1 (peers know a node by it, never by its CommonName)"},
		{"serverAuth only", TLSConfig{CertFile: serverOnlyCert, KeyFile: serverOnlyKey, TrustedCAFile: p.caFile},
			"the certificate lacks the extended key usage clientAuth: a node's certificate needs serverAuth (it serves) and clientAuth (it dials its peers)"},
		{"another node's certificate", TLSConfig{CertFile: node2Cert, KeyFile: node2Key, TrustedCAFile: p.caFile},
			"the certificate is node 2's (URI SAN paxosd://node/2), but this is node 1"},
		{"a certificate the CA did not sign", TLSConfig{CertFile: strangerCert, KeyFile: strangerKey, TrustedCAFile: p.caFile},
			"is not signed by a CA of --trusted-ca-file (x509: certificate signed by unknown authority"},
		{"a CA file without certificates", TLSConfig{CertFile: goodCert, KeyFile: goodKey, TrustedCAFile: notPEM},
			"wire: TLS: --trusted-ca-file " + notPEM + ": no PEM certificate in it"},
		{"a CRL of another CA", TLSConfig{CertFile: goodCert, KeyFile: goodKey, TrustedCAFile: p.caFile, ClientCRLFile: otherCRLFile},
			"wire: TLS: --client-crl-file " + otherCRLFile + " is not signed by a CA of --trusted-ca-file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Self = 1
			_, err := NewNodeTLS(tc.cfg)
			if !errors.Is(err, ErrTLS) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got  %v\nwant %s", err, tc.want)
			}
		})
	}
	if _, err := NewNodeTLS(TLSConfig{CertFile: goodCert, KeyFile: goodKey, TrustedCAFile: p.caFile, Self: 1}); err != nil {
		t.Fatalf("the good files: %v", err)
	}
}

// TestTLSPeerCA: with --peer-trusted-ca-file, node certificates come from
// the peer CA and client certificates from the client CA, and neither CA
// can stand in for the other: a holder of the client CA's key cannot mint
// a node certificate, and a peer-CA certificate without a node URI SAN is
// not a client's.
func TestTLSPeerCA(t *testing.T) {
	peers := newPKI(t, "peer CA")
	clients := newPKI(t, "client CA")
	both := func(c *TLSConfig) { c.TrustedCAFile, c.PeerTrustedCAFile = clients.caFile, peers.caFile }
	s := startTLSServer(t, 2, peers.nodeTLS(2, both), nil)
	tr, log := newTLSTransport(t, 1, map[paxos.NodeID]string{2: s.addr}, peers.nodeTLS(1, both))
	tr.Send(heartbeat(3))
	if m := recvMsg(t, s.h.msgs); m.From != 1 {
		t.Fatalf("got %v\n%s", m, log)
	}
	alice, aliceKey, _ := clients.issue("alice", devcert.Spec{CommonName: "alice", Client: true})
	conf := clients.clientTLS(alice, aliceKey)
	conf.RootCAs = peers.clientTLS("", "").RootCAs // the nodes' certificates are the peer CA's
	m, err := dialTLS(s.addr, conf)
	if err != nil {
		t.Fatalf("a client certificate of the client CA: %v", err)
	}
	checkCall(t, m, "k")
	m.Close()

	forged, forgedKey, _ := clients.issue("forged", nodeSpec(3))
	conf = clients.clientTLS(forged, forgedKey)
	conf.RootCAs = peers.clientTLS("", "").RootCAs
	if err := rawPeerHello(t, s.addr, conf, 3); err == nil {
		t.Fatal("a node certificate of the client CA was taken as a peer")
	}
	s.log.waitLog(t, `certificate \"node-3\" (issuer \"client CA\"`)
	s.log.waitLog(t, "refused (checked against --peer-trusted-ca-file)")

	stray, strayKey, _ := peers.issue("stray", devcert.Spec{CommonName: "stray", Client: true})
	conf = peers.clientTLS(stray, strayKey)
	if m, err := dialTLS(s.addr, conf); err == nil {
		m.Close()
		t.Fatal("a client certificate of the peer CA was served")
	}
	s.log.waitLog(t, "refused (checked against --trusted-ca-file)")
	noPeerMessage(t, s)
}
