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
// SANs, and a client certificate for the workers.
type TLSFiles struct {
	Dir    string
	Client *tls.Config
}

// MakeTLSFiles runs the script (in the repository, at script) into dir for
// the nodes of net, and loads the workers' client configuration.
func MakeTLSFiles(script, dir string, net *Network) (*TLSFiles, error) {
	ids := make([]string, len(net.Nodes))
	hosts := make([]string, len(net.Nodes))
	for i := range net.Nodes {
		ids[i] = fmt.Sprint(i + 1)
		host := net.Addr(i)
		if k := strings.LastIndexByte(host, ':'); k >= 0 {
			host = host[:k]
		}
		hosts[i] = "IP:" + host
	}
	cmd := exec.Command(script, dir, strings.Join(ids, " "), "chaos")
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
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "chaos.crt"), filepath.Join(dir, "chaos.key"))
	if err != nil {
		return nil, err
	}
	return &TLSFiles{Dir: dir, Client: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}}, nil
}

// NodeFlags are node i's (0-based) TLS serve flags: its certificate, the
// CA, and client certificates required.
func (f *TLSFiles) NodeFlags(i int) []string {
	file := func(name string) string { return filepath.Join(f.Dir, name) }
	return []string{"--cert-file", file(fmt.Sprintf("node%d.crt", i+1)), "--key-file", file(fmt.Sprintf("node%d.key", i+1)),
		"--trusted-ca-file", file("ca.crt"), "--client-cert-auth"}
}
