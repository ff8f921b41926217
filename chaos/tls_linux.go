//go:build linux

package chaos

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// TLSFiles are the certificates of a run's TLS schedules, made once by
// scripts/make-certs.sh (openssl, as docs/SECURITY.md tells operators):
// node i's certificate names paxosd://node/i and every node address as
// SANs, for the ids 1 to MaxNodeID (members that replace others get new
// ids), a client certificate for the workers, and one for root (the
// member changes, which need root once auth is on).
type TLSFiles struct {
	Dir    string
	Client *tls.Config
	Root   *tls.Config
}

// MaxNodeID is the highest node id a run has certificates for.
const MaxNodeID = 12

// MakeTLSFiles runs the script (in the repository, at script) into dir for
// the nodes of net, and loads the workers' client configuration.
func MakeTLSFiles(script, dir string, net *Network) (*TLSFiles, error) {
	var ids []string
	for id := 1; id <= max(MaxNodeID, len(net.Nodes)); id++ {
		ids = append(ids, fmt.Sprint(id))
	}
	hosts := make([]string, len(net.Nodes))
	for i := range net.Nodes {
		host := net.Addr(i)
		if k := strings.LastIndexByte(host, ':'); k >= 0 {
			host = host[:k]
		}
		hosts[i] = "IP:" + host
	}
	cmd := exec.Command(script, dir, strings.Join(ids, " "), "chaos root")
	cmd.Env = append(os.Environ(), "HOSTS="+strings.Join(hosts, ","), "CA_NAME=paxosd chaos CA")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s: %v\n%s", script, err, out)
	}
	pem, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s/ca.crt holds no certificate", dir)
	}
	files := &TLSFiles{Dir: dir}
	for _, c := range []struct {
		name string
		to   **tls.Config
	}{{"chaos", &files.Client}, {"root", &files.Root}} {
		pair, err := tls.LoadX509KeyPair(filepath.Join(dir, c.name+".crt"), filepath.Join(dir, c.name+".key"))
		if err != nil {
			return nil, err
		}
		*c.to = &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	}
	return files, nil
}

// NodeFlags are node id's TLS serve flags: its certificate, the CA, and
// client certificates required.
func (f *TLSFiles) NodeFlags(id int) []string {
	file := func(name string) string { return filepath.Join(f.Dir, name) }
	return []string{"--cert-file", file(fmt.Sprintf("node%d.crt", id)), "--key-file", file(fmt.Sprintf("node%d.key", id)),
		"--trusted-ca-file", file("ca.crt"), "--client-cert-auth"}
}
