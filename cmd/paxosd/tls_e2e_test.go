package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/paxosd/paxosd/internal/devcert"
)

// TestTLSEndToEnd: a cluster of three serve processes with TLS and
// --client-cert-auth serves 'paxosd kv put/get' given --cacert, --cert
// and --key (or $PAXOSD_CACERT, $PAXOSD_CERT, $PAXOSD_KEY, which paxosd
// lock hands its COMMAND), and its HTTP port speaks HTTPS without
// /debug/pprof, and to a client without a certificate only /healthz and
// /readyz; a plaintext client and one without a certificate get the
// one-line errors. Then 'paxosd dev --tls' prints client flags that work.
func TestTLSEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	bin := buildBinary(t)
	t.Run("cluster", func(t *testing.T) { testTLSCluster(t, bin) })
	t.Run("dev", func(t *testing.T) { testDevTLS(t, bin) })
	t.Run("openssl", func(t *testing.T) { testTLSOpenSSL(t, bin) })
}

// testPKI is a CA made by devcert, the certificates of nodes 1 to 3 (for
// 127.0.0.1) and client certificates, as files in a temporary directory.
type testPKI struct {
	ca     *devcert.CA
	caFile string
	nodes  [3][2]string         // node i+1's certificate and key files
	users  map[string][2]string // a client certificate's files, by CommonName
}

func newTestPKI(t *testing.T, caName string, users ...string) *testPKI {
	t.Helper()
	dir := t.TempDir()
	ca, err := devcert.NewCA(caName, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{ca: ca, caFile: filepath.Join(dir, "ca.crt"), users: map[string][2]string{}}
	if err := devcert.WriteFile(p.caFile, ca.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range p.nodes {
		pair, err := ca.Node(uint32(i+1), "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		if p.nodes[i][0], p.nodes[i][1], err = pair.Write(dir, fmt.Sprintf("node%d", i+1)); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range users {
		pair, err := ca.Client(u)
		if err != nil {
			t.Fatal(err)
		}
		cf, kf, err := pair.Write(dir, u)
		if err != nil {
			t.Fatal(err)
		}
		p.users[u] = [2]string{cf, kf}
	}
	return p
}

// serveFlags are node i's (0-based) flags for TLS with client
// certificates required.
func (p *testPKI) serveFlags(i int) []string {
	return []string{"--cert-file", p.nodes[i][0], "--key-file", p.nodes[i][1], "--trusted-ca-file", p.caFile, "--client-cert-auth"}
}

func testTLSCluster(t *testing.T, bin string) {
	pki := newTestPKI(t, "e2e CA", "e2e-user")
	ca, caFile := pki.ca, pki.caFile
	clientCert, clientKey := pki.users["e2e-user"][0], pki.users["e2e-user"][1]
	ports := freePorts(t, 6)
	c := launch(&cluster{t: t, bin: bin, dir: t.TempDir(), addrs: ports[:3], http: ports[3:], extra: pki.serveFlags})
	tlsFlags := []string{"--cacert", caFile, "--cert", clientCert, "--key", clientKey}
	if _, err := c.cli(c.addrs, append([]string{"kv", "put", "greeting", "hello"}, tlsFlags...)...); err != nil {
		t.Fatal(err)
	}
	if out, err := c.cli(c.addrs, append([]string{"kv", "get", "greeting"}, tlsFlags...)...); err != nil || out != "hello\n" {
		t.Fatalf("kv get: %q, %v", out, err)
	}
	if out, err := c.cli(c.addrs, append([]string{"status"}, tlsFlags...)...); err != nil || strings.Count(out, "127.0.0.1") != 3 {
		t.Fatalf("status: %q, %v", out, err)
	}

	// The same files from the environment.
	cmd := exec.Command(bin, "kv", "get", "greeting", "--endpoints", c.addrs[2])
	cmd.Env = append(os.Environ(), "PAXOSD_CACERT="+caFile, "PAXOSD_CERT="+clientCert, "PAXOSD_KEY="+clientKey)
	if out, err := cmd.CombinedOutput(); err != nil || string(out) != "hello\n" {
		t.Fatalf("kv get with $PAXOSD_CACERT, $PAXOSD_CERT, $PAXOSD_KEY: %q, %v", out, err)
	}

	// paxosd lock hands its COMMAND the TLS files with the endpoints.
	lock := exec.Command(bin, append([]string{"lock", "tls-lock", "--endpoints", c.addrs[1], "--timeout", "15s"}, append(tlsFlags, "--", bin, "kv", "get", "greeting")...)...)
	if out, err := lock.CombinedOutput(); err != nil || string(out) != "hello\n" {
		t.Fatalf("paxosd kv get run by paxosd lock: %q, %v", out, err)
	}

	// Mistakes: one line each, saying what to pass.
	for _, tc := range []struct {
		name  string
		flags []string
		want  string
	}{
		{"plaintext", nil, "paxosd: error: cluster unavailable: cannot reach any endpoint (" + c.addrs[0] + "): wire: dial " + c.addrs[0] +
			": wire: TLS: the node requires TLS and this connection is plaintext: pass the cluster's CA with --cacert FILE"},
		{"no client certificate", []string{"--cacert", caFile},
			"wire: TLS: the node requires a client certificate: pass --cert FILE --key FILE (or $PAXOSD_CERT, $PAXOSD_KEY)\n"},
		{"--cert without --key", []string{"--cacert", caFile, "--cert", clientCert},
			"paxosd: --cert needs --key, the certificate's private key (or $PAXOSD_KEY)\n"},
	} {
		var stderr bytes.Buffer
		cmd := exec.Command(bin, append([]string{"kv", "get", "greeting", "--endpoints", c.addrs[0]}, tc.flags...)...)
		cmd.Stderr = &stderr
		if err := cmd.Run(); err == nil || !strings.Contains(stderr.String(), tc.want) || strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("%s: %v, stderr %q\nwant %q", tc.name, err, stderr.String(), tc.want)
		}
	}
	b, _ := os.ReadFile(filepath.Join(c.dir, "node1.log"))
	if want := "a plaintext paxosd connection to a node that requires TLS"; !strings.Contains(string(b), want) {
		t.Errorf("node 1's log lacks %q", want)
	}

	// HTTPS on --http-listen, a client certificate required, no pprof.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM)
	pair, err := tls.LoadX509KeyPair(clientCert, clientKey)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}}}}
	for path, want := range map[string]int{"/metrics": 200, "/healthz": 200, "/debug/pprof/": 404} {
		resp, err := hc.Get("https://" + c.http[0] + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %s, want %d", path, resp.Status, want)
		}
	}
	// Without a client certificate: only the health probes.
	anon := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	// Node 1 may still be learning the leader (the commands above may
	// have gone to another node): wait for its readiness, which a 401
	// here would never give.
	waitFor(t, "node 1's /readyz without a certificate", 15*time.Second, func() bool {
		resp, err := anon.Get("https://" + c.http[0] + "/readyz")
		if err != nil {
			return false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 401, "/status.json": 401} {
		resp, err := anon.Get("https://" + c.http[0] + path)
		if err != nil {
			t.Fatalf("GET %s without a certificate: %v", path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s without a certificate: %s, want %d", path, resp.Status, want)
		}
	}
	// Go's server answers plaintext HTTP on a TLS port with a 400.
	if resp, err := http.Get("http://" + c.http[0] + "/metrics"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plaintext /metrics served on a TLS node")
		}
	}
}

func testDevTLS(t *testing.T, bin string) {
	dir := t.TempDir()
	ports := freePorts(t, 2)
	_, port, _ := net.SplitHostPort(ports[0])
	_, httpPort, _ := net.SplitHostPort(ports[1])
	cmd := exec.Command(bin, "dev", "--tls", "--nodes", "1", "--data-dir", dir, "--base-port", port, "--http-base-port", httpPort, "--enable-pprof")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
	}()
	var printed strings.Builder
	var flags []string
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		printed.WriteString(lines.Text() + "\n")
		if f, ok := strings.CutPrefix(lines.Text(), "  client:    "); ok {
			flags = strings.Fields(f)
		}
		if lines.Text() == "Ctrl-C stops the cluster." {
			break
		}
	}
	go io.Copy(io.Discard, stdout)
	want := fmt.Sprintf("--cacert %[1]s/ca.crt --cert %[1]s/client.crt --key %[1]s/client.key", filepath.Join(dir, "tls"))
	if strings.Join(flags, " ") != want {
		t.Fatalf("dev --tls printed client flags %q, want %q:\n%s\nstderr:\n%s", flags, want, printed.String(), stderr.String())
	}
	if !strings.Contains(printed.String(), "export PAXOSD_CACERT=") {
		t.Errorf("dev --tls does not show the variables:\n%s", printed.String())
	}
	ep := "127.0.0.1:" + port
	run := func(args ...string) (string, error) {
		out, err := exec.Command(bin, append(append(args, "--endpoints", ep, "--timeout", "15s"), flags...)...).CombinedOutput()
		return string(out), err
	}
	if out, err := run("kv", "put", "x", "y"); err != nil {
		t.Fatalf("kv put with dev's flags: %v: %s", err, out)
	}
	if out, err := run("kv", "get", "x"); err != nil || out != "y\n" {
		t.Fatalf("kv get with dev's flags: %q, %v", out, err)
	}
	// --enable-pprof serves the profiles, over HTTPS with the client
	// certificate like the rest.
	pool := x509.NewCertPool()
	ca, err := os.ReadFile(flags[1])
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(ca)
	pair, err := tls.LoadX509KeyPair(flags[3], flags[5])
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}}}}
	resp, err := hc.Get("https://127.0.0.1:" + httpPort + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /debug/pprof/ with --enable-pprof: %s", resp.Status)
	}
}
