// Package devcert makes throwaway certificates with Go's crypto/x509: a
// certificate authority, node certificates (serverAuth and clientAuth, the
// node's addresses and its URI SAN paxosd://node/ID), client certificates
// and revocation lists. 'paxosd dev --tls' uses it, and so do the tests of
// the TLS code; a production cluster makes its certificates with its own
// tools (docs/SECURITY.md shows openssl).
//
// Keys are ECDSA P-256; serial numbers are random (128 bits).
package devcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// CA is a certificate authority that can issue certificates.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	// CertPEM is Cert in PEM, the trusted-CA file's content.
	CertPEM []byte
}

// NewCA makes a self-signed CA named cn, valid from an hour ago (clocks
// differ) until notAfter.
func NewCA(cn string, notAfter time.Time) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"paxosd"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, CertPEM: pemBlock("CERTIFICATE", der)}, nil
}

// Spec describes a certificate to issue.
type Spec struct {
	// CommonName is the subject's CN: a user name for a client
	// certificate. It never makes anyone a node.
	CommonName string
	// Node, if not zero, adds the URI SAN paxosd://node/Node: only such a
	// certificate lets its holder act as that node.
	Node uint32
	// Hosts become SANs: IP addresses as IP SANs, the rest as DNS names.
	Hosts []string
	// Server and Client add the serverAuth and clientAuth extended key
	// usages. A node needs both (it listens and dials); a client only
	// Client. NoEKU leaves the extension out altogether.
	Server, Client, NoEKU bool
	// NotBefore and NotAfter bound the validity. Defaults: an hour ago,
	// and a year from now.
	NotBefore, NotAfter time.Time
}

// Pair is an issued certificate and its key.
type Pair struct {
	Cert    *x509.Certificate
	CertPEM []byte
	KeyPEM  []byte
}

// NodeURI is the URI SAN naming node id: paxosd://node/ID.
func NodeURI(id uint32) string { return fmt.Sprintf("paxosd://node/%d", id) }

// Issue signs a certificate for s.
func (ca *CA) Issue(s Spec) (*Pair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	if s.NotBefore.IsZero() {
		s.NotBefore = time.Now().Add(-time.Hour)
	}
	if s.NotAfter.IsZero() {
		s.NotAfter = time.Now().Add(365 * 24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: s.CommonName},
		NotBefore:    s.NotBefore,
		NotAfter:     s.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if !s.NoEKU {
		if s.Server {
			tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		}
		if s.Client {
			tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
		}
	}
	for _, h := range s.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	if s.Node != 0 {
		u, err := url.Parse(NodeURI(s.Node))
		if err != nil {
			return nil, err
		}
		tmpl.URIs = []*url.URL{u}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &Pair{Cert: cert, CertPEM: pemBlock("CERTIFICATE", der), KeyPEM: pemBlock("PRIVATE KEY", kder)}, nil
}

// Node issues node id's certificate: serverAuth and clientAuth, the URI
// SAN, and hosts as SANs.
func (ca *CA) Node(id uint32, hosts ...string) (*Pair, error) {
	return ca.Issue(Spec{CommonName: fmt.Sprintf("node-%d", id), Node: id, Hosts: hosts, Server: true, Client: true})
}

// Client issues a client certificate for user cn.
func (ca *CA) Client(cn string) (*Pair, error) {
	return ca.Issue(Spec{CommonName: cn, Client: true})
}

// CRL returns a PEM revocation list, signed by ca, revoking certs.
func (ca *CA) CRL(certs ...*x509.Certificate) ([]byte, error) {
	var entries []x509.RevocationListEntry
	for _, c := range certs {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: time.Now().Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(time.Now().UnixNano()),
		ThisUpdate:                time.Now().Add(-time.Minute),
		NextUpdate:                time.Now().Add(30 * 24 * time.Hour),
		RevokedCertificateEntries: entries,
	}, ca.Cert, ca.Key)
	if err != nil {
		return nil, err
	}
	return pemBlock("X509 CRL", der), nil
}

// Write writes p's certificate to dir/name.crt and its key to
// dir/name.key (mode 0600), and returns the two paths.
func (p *Pair) Write(dir, name string) (certFile, keyFile string, err error) {
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := WriteFile(certFile, p.CertPEM, 0o644); err != nil {
		return "", "", err
	}
	if err := WriteFile(keyFile, p.KeyPEM, 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// WriteFile writes b to path through a temporary file and a rename, so a
// reader never sees half a file (what a certificate rotation should do).
func WriteFile(path string, b []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		panic("devcert: no randomness: " + err.Error())
	}
	return n.Add(n, big.NewInt(1))
}
