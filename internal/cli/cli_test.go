package cli

import (
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/paxosd/paxosd/internal/devcert"
)

// TestClientFlags: the endpoints list drops blanks, $PAXOSD_ENDPOINTS is
// the default, and a bad flag is a usage error naming the command.
func TestClientFlags(t *testing.T) {
	t.Setenv("PAXOSD_ENDPOINTS", "a:1, b:2")
	fs := NewFlags("kv get", "paxosd kv get KEY")
	var cf ClientFlags
	cf.Register(fs)
	if err := Parse(fs, nil); err != nil {
		t.Fatal(err)
	}
	if got := cf.List(); !slices.Equal(got, []string{"a:1", "b:2"}) {
		t.Errorf("List() = %q from $PAXOSD_ENDPOINTS", got)
	}
	if err := Parse(fs, []string{"--endpoints", " , c:3,,"}); err != nil {
		t.Fatal(err)
	}
	if got := cf.List(); !slices.Equal(got, []string{"c:3"}) {
		t.Errorf("List() = %q", got)
	}
	err := Parse(fs, []string{"--bogus"})
	if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "'paxosd kv get --help'") {
		t.Errorf("Parse(--bogus) = %v, want a usage error pointing at --help", err)
	}
	fs.Usage = func() {} // not on the test's stderr
	if err := Parse(fs, []string{"--help"}); !errors.Is(err, pflag.ErrHelp) {
		t.Errorf("Parse(--help) = %v, want pflag.ErrHelp", err)
	}
}

// TestClientTLSFlags: no TLS flag is plaintext; --cacert, --cert and --key
// (or their variables) make a TLS configuration; a half pair, an unreadable
// file or a file without a certificate is a usage error naming the flag.
func TestClientTLSFlags(t *testing.T) {
	dir := t.TempDir()
	ca, err := devcert.NewCA("cli CA", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.crt")
	if err := devcert.WriteFile(caFile, ca.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := ca.Client("alice")
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := p.Write(dir, "alice")
	if err != nil {
		t.Fatal(err)
	}
	parse := func(args ...string) (*ClientFlags, error) {
		fs := NewFlags("kv get", "paxosd kv get KEY")
		var cf ClientFlags
		cf.Register(fs)
		return &cf, Parse(fs, args)
	}
	cf, _ := parse()
	if conf, err := cf.TLSConfig(); conf != nil || err != nil {
		t.Errorf("no TLS flag: %v, %v", conf, err)
	}
	cf, _ = parse("--cacert", caFile, "--cert", cert, "--key", key)
	conf, err := cf.TLSConfig()
	if err != nil || conf.RootCAs == nil || len(conf.Certificates) != 1 || conf.MinVersion != tls.VersionTLS12 {
		t.Errorf("all three flags: %+v, %v", conf, err)
	}
	t.Setenv("PAXOSD_CACERT", caFile)
	t.Setenv("PAXOSD_CERT", cert)
	t.Setenv("PAXOSD_KEY", key)
	cf, _ = parse()
	if conf, err := cf.TLSConfig(); err != nil || conf == nil || len(conf.Certificates) != 1 {
		t.Errorf("from the environment: %+v, %v", conf, err)
	}
	cf, _ = parse("--endpoints", "a:1,b:2", "--cacert", "ca.crt")
	abs, _ := filepath.Abs("ca.crt")
	if got, want := cf.Env(), []string{"PAXOSD_ENDPOINTS=a:1,b:2", "PAXOSD_CACERT=" + abs, "PAXOSD_CERT=" + cert, "PAXOSD_KEY=" + key}; !slices.Equal(got, want) {
		t.Errorf("Env() = %q, want %q", got, want)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--key", ""}, "--cert needs --key, the certificate's private key"},
		{[]string{"--cert", ""}, "--key needs --cert, the client certificate"},
		{[]string{"--cacert", filepath.Join(dir, "nope")}, "--cacert: open " + filepath.Join(dir, "nope")},
		{[]string{"--cacert", key}, "--cacert " + key + " holds no PEM certificate"},
		{[]string{"--key", caFile}, "--cert " + cert + " with --key " + caFile},
	} {
		cf, _ := parse(tc.args...)
		if _, err := cf.TLSConfig(); !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.args, err, tc.want)
		}
	}
}

// TestCredentials: --user NAME:PASSWORD splits at the first ':'; a bare
// NAME takes $PAXOSD_PASSWORD, else the terminal's prompt, else it is a
// usage error (a script must not hang nor send an empty password); the
// prompt is asked once however often the credentials are read.
func TestCredentials(t *testing.T) {
	prompts := 0
	old := PromptPassword
	t.Cleanup(func() { PromptPassword = old })
	terminal := false
	PromptPassword = func(string) (string, bool) {
		prompts++
		return "typed", terminal
	}
	t.Setenv("PAXOSD_PASSWORD", "")
	os.Unsetenv("PAXOSD_PASSWORD")
	for _, tc := range []struct {
		flag, env   string
		setEnv      bool
		tty         bool
		user, pw    string
		errContains string
	}{
		{flag: ""},
		{flag: "alice:s3:cret", user: "alice", pw: "s3:cret"},
		{flag: "alice:", user: "alice", pw: ""},
		{flag: "alice", env: "fromenv", setEnv: true, user: "alice", pw: "fromenv"},
		{flag: "alice", tty: true, user: "alice", pw: "typed"},
		{flag: "alice", errContains: "no password for --user alice"},
		{flag: ":pw", errContains: "want NAME or NAME:PASSWORD"},
	} {
		if tc.setEnv {
			t.Setenv("PAXOSD_PASSWORD", tc.env)
		} else {
			os.Unsetenv("PAXOSD_PASSWORD")
		}
		terminal = tc.tty
		c := ClientFlags{User: tc.flag}
		user, pw, err := c.Credentials()
		if tc.errContains != "" {
			if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), tc.errContains) {
				t.Errorf("--user %q: %v, want a usage error saying %q", tc.flag, err, tc.errContains)
			}
			continue
		}
		if err != nil || user != tc.user || pw != tc.pw {
			t.Errorf("--user %q: %q %q %v, want %q %q", tc.flag, user, pw, err, tc.user, tc.pw)
		}
	}
	prompts = 0
	terminal = true
	c := ClientFlags{User: "bob"}
	c.Credentials()
	c.Config()
	c.Env()
	if prompts != 1 {
		t.Errorf("prompted %d times, want once", prompts)
	}
}
