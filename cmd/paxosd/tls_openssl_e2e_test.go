package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/wire"
)

// makeCerts runs scripts/make-certs.sh, the openssl commands of
// docs/SECURITY.md, into a new directory: nodes' and clients' certificates
// signed by a CA named caName.
func makeCerts(t *testing.T, caName, nodes, clients string) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("../../scripts/make-certs.sh", dir, nodes, clients)
	cmd.Env = append(os.Environ(), "CA_NAME="+caName)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make-certs.sh: %v\n%s", err, out)
	}
	return dir
}

// testTLSOpenSSL: the refusals of docs/SECURITY.md against three serve
// processes whose certificates openssl made as the documentation says: a
// plaintext client, a client that does not trust the cluster's CA, one
// without a certificate, one whose certificate another CA signed, a client
// certificate whose CommonName is node-2 saying it is node 2 in a peer
// hello, node 3's own valid certificate saying node 2, a node certificate
// that expired and one that names another host. Each gets its
// line (on the client's stderr, or in the node's log for would-be peers),
// and a real client's puts all succeed throughout. The Python client
// speaks TLS to the same cluster, and is refused as the CLI is.
func testTLSOpenSSL(t *testing.T, bin string) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed (scripts/install-deps.sh installs it as root)")
	}
	certs := makeCerts(t, "paxosd CA", "1 2 3", "alice node-2")
	other := makeCerts(t, "other CA", "", "mallory")
	f := func(dir, name string) string { return filepath.Join(dir, name) }
	c := launch(&cluster{t: t, bin: bin, dir: t.TempDir(), addrs: freePorts(t, 3),
		extra: func(i int) []string {
			return []string{"--cert-file", f(certs, fmt.Sprintf("node%d.crt", i+1)), "--key-file", f(certs, fmt.Sprintf("node%d.key", i+1)),
				"--trusted-ca-file", f(certs, "ca.crt"), "--client-cert-auth"}
		}})
	tlsConfig := func(dir, user string) *tls.Config {
		t.Helper()
		pem, err := os.ReadFile(f(certs, "ca.crt"))
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		pair, err := tls.LoadX509KeyPair(f(dir, user+".crt"), f(dir, user+".key"))
		if err != nil {
			t.Fatal(err)
		}
		return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	}

	// A real client putting throughout.
	cl, err := client.NewWithConfig(context.Background(), client.Config{Endpoints: c.addrs, TLS: tlsConfig(certs, "alice")})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var puts, failed atomic.Int64
	var lastErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := cl.Put(ctx, "alice/counter", []byte(fmt.Sprint(i)))
			cancel()
			if err != nil {
				failed.Add(1)
				lastErr.Store(err.Error())
			} else {
				puts.Add(1)
			}
		}
	}()

	for _, tc := range []struct {
		name  string
		flags []string
		want  string
	}{
		{"plaintext", nil, "wire: TLS: the node requires TLS and this connection is plaintext: pass the cluster's CA with --cacert FILE"},
		{"a client that does not trust the cluster's CA", []string{"--cacert", f(other, "ca.crt"), "--cert", f(other, "mallory.crt"), "--key", f(other, "mallory.key")},
			`wire: TLS: the node's certificate is signed by "paxosd CA", a CA this client does not trust: pass the cluster's CA certificate with --cacert FILE (or $PAXOSD_CACERT)`},
		{"no client certificate", []string{"--cacert", f(certs, "ca.crt")},
			"wire: TLS: the node requires a client certificate: pass --cert FILE --key FILE (or $PAXOSD_CERT, $PAXOSD_KEY)"},
		{"a client certificate of another CA", []string{"--cacert", f(certs, "ca.crt"), "--cert", f(other, "mallory.crt"), "--key", f(other, "mallory.key")},
			"wire: TLS: the node refused this client's certificate (tls: bad certificate): not signed by a CA of its --trusted-ca-file"},
	} {
		var stderr bytes.Buffer
		cmd := exec.Command(bin, append([]string{"kv", "put", "mallory/x", "1", "--endpoints", c.addrs[0], "--timeout", "5s"}, tc.flags...)...)
		cmd.Stderr = &stderr
		if err := cmd.Run(); err == nil || !strings.Contains(stderr.String(), tc.want) || strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("%s: %v, stderr %q\nwant %q", tc.name, err, stderr.String(), tc.want)
		}
	}
	node1Log := func() string { b, _ := os.ReadFile(filepath.Join(c.dir, "node1.log")); return string(b) }
	waitFor(t, "node 1 to log the client of another CA", 5*time.Second, func() bool {
		return strings.Contains(node1Log(), `certificate \"mallory\" (issuer \"other CA\"`)
	})

	// Would-be peers: a hello saying node 2 over a client certificate named
	// node-2, and over node 3's own certificate. Neither is answered.
	for _, tc := range []struct {
		name, cert, log string
	}{
		{"a client certificate whose CommonName is node-2", "node-2",
			"names no node (no URI SAN paxosd://node/2): a client certificate cannot act as a peer"},
		{"node 3's certificate with a hello saying node 2", "node3",
			"wire: peer identity refused: the certificate names node 3"},
	} {
		if err := peerHello(c.addrs[0], tlsConfig(certs, tc.cert), 2); err == nil {
			t.Errorf("%s: the peer hello was answered", tc.name)
		}
		waitFor(t, "node 1 to log: "+tc.log, 5*time.Second, func() bool { return strings.Contains(node1Log(), jsonEscapeLine(tc.log)) })
	}

	// A node certificate that expired, and one that names another host:
	// a node of its own each (same CA). The expired one does not start,
	// saying why; a client of the other is told the host is wrong.
	for _, tc := range []struct{ name, env, want string }{
		{"expired", "DAYS=-1", "the certificate expired at"},
		{"far", "HOSTS=DNS:far.example", "wire: TLS: wrong host: x509: cannot validate certificate for 127.0.0.1 because it doesn't contain any IP SANs"},
	} {
		dir := t.TempDir()
		for _, name := range []string{"ca.crt", "ca.key"} {
			b, err := os.ReadFile(f(certs, name))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(f(dir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		mk := exec.Command("../../scripts/make-certs.sh", dir, "1", "")
		mk.Env = append(os.Environ(), tc.env)
		if out, err := mk.CombinedOutput(); err != nil {
			t.Fatalf("make-certs.sh %s: %v\n%s", tc.env, err, out)
		}
		addr := freePorts(t, 1)[0]
		var stderr bytes.Buffer
		node := exec.Command(bin, "serve", "--id", "1", "--listen", addr, "--peers", "1="+addr, "--data-dir", t.TempDir(), "--new-cluster",
			"--cert-file", f(dir, "node1.crt"), "--key-file", f(dir, "node1.key"), "--trusted-ca-file", f(certs, "ca.crt"), "--client-cert-auth")
		node.Stderr = &stderr
		if tc.name == "expired" {
			if err := node.Run(); err == nil || !strings.Contains(stderr.String(), tc.want) || strings.Count(stderr.String(), "\n") != 1 {
				t.Errorf("serve with an expired certificate: %v, stderr %q, want one line with %q", err, stderr.String(), tc.want)
			}
			continue
		}
		if err := node.Start(); err != nil {
			t.Fatal(err)
		}
		var out []byte
		waitFor(t, "the far node's answer", 10*time.Second, func() bool {
			out, _ = exec.Command(bin, "kv", "get", "x", "--endpoints", addr, "--timeout", "2s", "--cacert", f(certs, "ca.crt"),
				"--cert", f(certs, "alice.crt"), "--key", f(certs, "alice.key")).CombinedOutput()
			return !strings.Contains(string(out), "connection refused")
		})
		node.Process.Kill()
		node.Wait()
		if !strings.Contains(string(out), tc.want) || strings.Count(string(out), "\n") != 1 {
			t.Errorf("a client of a node whose certificate names another host: %q, want one line with %q", out, tc.want)
		}
	}

	// The Python client over TLS (clients/python/tests/test_tls.py), if a
	// python3 with msgpack is here.
	for _, python := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(python, "-c", "import msgpack").Run() != nil {
			continue
		}
		cmd := exec.Command(python, "-m", "unittest", "-v", "tests.test_tls")
		cmd.Dir = filepath.Join("..", "..", "clients", "python")
		cmd.Env = append(os.Environ(), "PAXOSD_ENDPOINTS="+strings.Join(c.addrs, ","), "PAXOSD_CACERT="+f(certs, "ca.crt"),
			"PAXOSD_CERT="+f(certs, "alice.crt"), "PAXOSD_KEY="+f(certs, "alice.key"), "PAXOSD_OTHER_CA_DIR="+other)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Ran 2 tests") || strings.Contains(string(out), "skipped") {
			t.Errorf("python -m unittest tests.test_tls: %v\n%s", err, out)
		}
		break
	}

	// What mallory tried wrote nothing; alice's puts all went through.
	if out, err := c.cli(c.addrs, "kv", "get", "mallory/x", "--cacert", f(certs, "ca.crt"), "--cert", f(certs, "alice.crt"), "--key", f(certs, "alice.key")); err == nil {
		t.Errorf("mallory/x exists: %q", out)
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || puts.Load() == 0 {
		t.Errorf("the real client: %d puts, %d failed (last: %v)", puts.Load(), failed.Load(), lastErr.Load())
	}
}

// peerHello dials addr with TLS and sends a peer's hello claiming node
// claim; it returns nil only if the node answered it.
func peerHello(addr string, conf *tls.Config, claim paxos.NodeID) error {
	conn, err := tls.Dial("tcp", addr, conf)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	hello := wire.EncodeHello(nil, wire.Hello{Version: wire.ProtocolVersion, ClusterID: wire.DefaultClusterID, NodeID: claim})
	if _, err := conn.Write(wire.AppendFrame(nil, hello)); err != nil {
		return err
	}
	_, err = wire.NewFrameReader(conn, 0).ReadFrame()
	return err
}

// jsonEscapeLine is s as it appears inside a JSON log line's string.
func jsonEscapeLine(s string) string { return strings.ReplaceAll(s, `"`, `\"`) }
