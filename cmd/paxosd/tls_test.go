package main

import (
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paxosd/paxosd/internal/cli"
	"github.com/paxosd/paxosd/internal/devcert"
)

// TestServeTLSSettings: the TLS flags come from the command line, the
// config file and the environment like the others; half a TLS setup is a
// usage error, and a file that cannot be read names the flag and where it
// was set.
func TestServeTLSSettings(t *testing.T) {
	dir := t.TempDir()
	ca, err := devcert.NewCA("config CA", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.crt")
	if err := devcert.WriteFile(caFile, ca.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := ca.Node(2, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := p.Write(dir, "node2")
	if err != nil {
		t.Fatal(err)
	}
	base := "id: 2\npeers: [1=127.0.0.1:7401, 2=127.0.0.1:7402, 3=127.0.0.1:7403]\ndata-dir: " + dir + "\n"
	config := func(s string) []string { return []string{"--config", writeConfig(t, base+s)} }
	load := func(args, environ []string) error {
		sf, src, err := parseServe(args, environ)
		if err != nil {
			return err
		}
		cfg, err := sf.nodeConfig(io.Discard)
		if err != nil {
			return src.explain(err)
		}
		if cfg.TLS == nil || cfg.TLS.Certificate().SerialNumber.Cmp(p.Cert.SerialNumber) != 0 {
			return errors.New("TLS not set up")
		}
		return nil
	}
	if err := load(config("cert-file: "+cert+"\nkey-file: "+key+"\ntrusted-ca-file: "+caFile+"\nclient-cert-auth: true\n"), nil); err != nil {
		t.Errorf("from the file: %v", err)
	}
	if err := load(config(""), []string{"PAXOSD_CERT_FILE=" + cert, "PAXOSD_KEY_FILE=" + key, "PAXOSD_TRUSTED_CA_FILE=" + caFile}); err != nil {
		t.Errorf("from the environment: %v", err)
	}
	err = load(append(config(""), "--client-cert-auth"), nil)
	if want := "TLS needs --cert-file, --key-file and --trusted-ca-file together; missing: --cert-file, --key-file, --trusted-ca-file"; !errors.Is(err, cli.ErrUsage) || !strings.Contains(err.Error(), want) {
		t.Errorf("--client-cert-auth alone: %v\nwant %s", err, want)
	}
	missing := filepath.Join(dir, "nope.crt")
	path := writeConfig(t, base+"cert-file: "+missing+"\nkey-file: "+key+"\ntrusted-ca-file: "+caFile+"\n")
	err = load([]string{"--config", path}, nil)
	if want := "TLS: --cert-file: open " + missing + ": no such file or directory (--cert-file is set in " + path + ":4"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("a missing file: %v\nwant %s", err, want)
	}
}
