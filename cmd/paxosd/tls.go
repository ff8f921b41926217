package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	"github.com/paxosd/paxosd/internal/cli"
	"github.com/paxosd/paxosd/internal/devcert"
	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/wire"
)

// tlsFlags are serve's TLS flags, etcd's names (docs/SECURITY.md).
type tlsFlags struct {
	certFile, keyFile, trustedCA string
	peerTrustedCA, crlFile       string
	clientCertAuth               bool
}

func (f *tlsFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.certFile, "cert-file", "", "this node's TLS certificate (PEM), for peers and clients alike: it needs the URI SAN paxosd://node/ID, the extended key usages serverAuth and clientAuth, and the node's addresses as SANs (with --key-file and --trusted-ca-file it turns TLS on)")
	fs.StringVar(&f.keyFile, "key-file", "", "private key of --cert-file (PEM)")
	fs.StringVar(&f.trustedCA, "trusted-ca-file", "", "CA certificates (PEM) that sign client certificates, and the nodes' unless --peer-trusted-ca-file is given")
	fs.BoolVar(&f.clientCertAuth, "client-cert-auth", false, "require every client to present a certificate signed by --trusted-ca-file (peers always need theirs)")
	fs.StringVar(&f.peerTrustedCA, "peer-trusted-ca-file", "", "CA certificates (PEM) that sign the nodes' certificates (default: --trusted-ca-file)")
	fs.StringVar(&f.crlFile, "client-crl-file", "", "certificate revocation list (PEM or DER) signed by a trusted CA: the certificates it revokes are refused")
}

// on reports whether any TLS flag is given.
func (f *tlsFlags) on() bool {
	return f.certFile != "" || f.keyFile != "" || f.trustedCA != "" || f.peerTrustedCA != "" || f.crlFile != "" || f.clientCertAuth
}

// nodeTLS loads the TLS files for node self; nil when TLS is off. Every
// mistake is an error naming the flag and what to do.
func (f *tlsFlags) nodeTLS(self paxos.NodeID, log zerolog.Logger) (*wire.NodeTLS, error) {
	if !f.on() {
		return nil, nil
	}
	var missing []string
	for _, m := range []struct{ flag, v string }{{"--cert-file", f.certFile}, {"--key-file", f.keyFile}, {"--trusted-ca-file", f.trustedCA}} {
		if m.v == "" {
			missing = append(missing, m.flag)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: TLS needs --cert-file, --key-file and --trusted-ca-file together; missing: %s", cli.ErrUsage, strings.Join(missing, ", "))
	}
	t, err := wire.NewNodeTLS(wire.TLSConfig{
		CertFile: f.certFile, KeyFile: f.keyFile, TrustedCAFile: f.trustedCA,
		PeerTrustedCAFile: f.peerTrustedCA, ClientCRLFile: f.crlFile, ClientCertAuth: f.clientCertAuth,
		Self: self, Logger: log,
	})
	if err != nil {
		// "TLS: --cert-file ...", without the package's prefix.
		return nil, fmt.Errorf("TLS: %s", strings.TrimPrefix(err.Error(), wire.ErrTLS.Error()+": "))
	}
	return t, nil
}

// devTLS is what 'paxosd dev --tls' makes: a throwaway CA, a certificate
// per node and one client certificate, in dir.
type devTLS struct {
	dir                           string
	caFile, clientCert, clientKey string
	nodes                         []*wire.NodeTLS
}

// makeDevTLS writes a new CA and certificates into dir and loads each
// node's: ECDSA P-256, node certificates with serverAuth and clientAuth,
// hosts (and localhost, 127.0.0.1) as SANs and the URI SAN
// paxosd://node/ID; a client certificate for "dev-client". Every node
// requires client certificates, as a production cluster should.
func makeDevTLS(dir string, nodes int, hosts []string, log zerolog.Logger) (*devTLS, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ca, err := devcert.NewCA("paxosd dev CA", time.Now().Add(30*24*time.Hour))
	if err != nil {
		return nil, err
	}
	d := &devTLS{dir: dir, caFile: filepath.Join(dir, "ca.crt")}
	if err := devcert.WriteFile(d.caFile, ca.CertPEM, 0o644); err != nil {
		return nil, err
	}
	hosts = append(append([]string{}, hosts...), "localhost", "127.0.0.1")
	for i := 1; i <= nodes; i++ {
		p, err := ca.Node(uint32(i), hosts...)
		if err != nil {
			return nil, err
		}
		certFile, keyFile, err := p.Write(dir, fmt.Sprintf("node%d", i))
		if err != nil {
			return nil, err
		}
		t, err := wire.NewNodeTLS(wire.TLSConfig{CertFile: certFile, KeyFile: keyFile, TrustedCAFile: d.caFile, ClientCertAuth: true, Self: paxos.NodeID(i), Logger: log})
		if err != nil {
			return nil, err
		}
		d.nodes = append(d.nodes, t)
	}
	cl, err := ca.Client("dev-client")
	if err != nil {
		return nil, err
	}
	if d.clientCert, d.clientKey, err = cl.Write(dir, "client"); err != nil {
		return nil, err
	}
	return d, nil
}

// clientFlags are the flags a client command needs for this cluster.
func (d *devTLS) clientFlags() string {
	return fmt.Sprintf("--cacert %s --cert %s --key %s", d.caFile, d.clientCert, d.clientKey)
}
