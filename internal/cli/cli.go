// Package cli holds what paxosd's command line and its load generator
// (internal/bench) share: flag sets that report errors instead of exiting,
// the usage error that makes the command exit with status 2, the client
// flags every client command takes (--endpoints, --cluster-id, --timeout,
// and TLS's --cacert, --cert, --key), and the terminal check.
package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/paxosd/paxosd/client"
)

// ErrUsage marks a mistake in the command line: exit status 2.
var ErrUsage = errors.New("usage")

// NewFlags returns a flag set that reports errors instead of exiting.
func NewFlags(name, synopsis string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SortFlags = false
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: %s\n\nFlags:\n%s", synopsis, fs.FlagUsages())
	}
	return fs
}

// Parse parses args, turning flag errors into usage errors.
func Parse(fs *pflag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err // pflag has already printed fs.Usage
		}
		return fmt.Errorf("%w: %s: %v (see 'paxosd %s --help')", ErrUsage, fs.Name(), err, fs.Name())
	}
	return nil
}

// DefaultEndpoints are the nodes 'paxosd dev' starts.
const DefaultEndpoints = "127.0.0.1:7401,127.0.0.1:7402,127.0.0.1:7403"

// ClientFlags are the flags every client command shares.
type ClientFlags struct {
	Endpoints string
	ClusterID string
	Timeout   time.Duration
	// CACert, Cert and Key are the TLS files (etcdctl's flag names): the
	// CA bundle that signs the nodes' certificates, and the client's
	// certificate and key for nodes that require one. Any of them makes
	// the connections TLS.
	CACert, Cert, Key string
	// User is --user NAME[:PASSWORD] (default $PAXOSD_USER); the password
	// comes after the first ':', else from $PAXOSD_PASSWORD, else from a
	// prompt when stdin is a terminal (Credentials).
	User string
	// AutoSync is how often the client replaces its endpoints with the
	// members' addresses (client.Config.AutoSyncInterval); 0: never.
	AutoSync time.Duration
	// resolved caches what Credentials found, so that it prompts once.
	resolved       bool
	user, password string
}

// Register adds --endpoints (default $PAXOSD_ENDPOINTS, else
// DefaultEndpoints), --cluster-id, --timeout, and the TLS flags --cacert,
// --cert and --key (defaults $PAXOSD_CACERT, $PAXOSD_CERT, $PAXOSD_KEY)
// to fs.
func (c *ClientFlags) Register(fs *pflag.FlagSet) {
	def := os.Getenv("PAXOSD_ENDPOINTS")
	if def == "" {
		def = DefaultEndpoints
	}
	fs.StringVar(&c.Endpoints, "endpoints", def, "cluster nodes, comma-separated (or $PAXOSD_ENDPOINTS)")
	fs.StringVar(&c.ClusterID, "cluster-id", "paxosd", "cluster name")
	fs.DurationVar(&c.Timeout, "timeout", 5*time.Second, "give up after this long")
	fs.StringVar(&c.CACert, "cacert", os.Getenv("PAXOSD_CACERT"), "connect with TLS, trusting the CA certificates in this PEM file (or $PAXOSD_CACERT)")
	fs.StringVar(&c.Cert, "cert", os.Getenv("PAXOSD_CERT"), "TLS client certificate (PEM), for nodes that require one (or $PAXOSD_CERT)")
	fs.StringVar(&c.Key, "key", os.Getenv("PAXOSD_KEY"), "private key of --cert (or $PAXOSD_KEY)")
	fs.StringVar(&c.User, "user", os.Getenv("PAXOSD_USER"), "authenticate as NAME[:PASSWORD] (or $PAXOSD_USER and $PAXOSD_PASSWORD; prompted for on a terminal when missing)")
	fs.DurationVar(&c.AutoSync, "auto-sync-interval", 30*time.Second, "learn the members' addresses from the cluster at once and then this often, trying the --endpoints given after them (0: never)")
}

// PromptPassword reads a password from the terminal without echoing it,
// after printing prompt on stderr. A variable so that tests replace it.
var PromptPassword = func(prompt string) (string, bool) {
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return "", false
	}
	fmt.Fprint(os.Stderr, prompt)
	b, err := term.ReadPassword(int(os.Stdin.Fd()))
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return "", false
	}
	return string(b), true
}

// Credentials returns the user and password the flags give ("" for both
// without --user or $PAXOSD_USER). Without a password in --user or
// $PAXOSD_PASSWORD it prompts on a terminal; elsewhere that is a usage
// error, since a script would otherwise hang or send an empty password.
func (c *ClientFlags) Credentials() (user, password string, err error) {
	if c.resolved {
		return c.user, c.password, nil
	}
	user, password, err = c.credentials()
	if err == nil {
		c.resolved, c.user, c.password = true, user, password
	}
	return user, password, err
}

func (c *ClientFlags) credentials() (user, password string, err error) {
	if c.User == "" {
		return "", "", nil
	}
	user, password, ok := strings.Cut(c.User, ":")
	if user == "" {
		return "", "", fmt.Errorf("%w: --user %q: want NAME or NAME:PASSWORD", ErrUsage, c.User)
	}
	if ok {
		return user, password, nil
	}
	if p, set := os.LookupEnv("PAXOSD_PASSWORD"); set {
		return user, p, nil
	}
	if p, ok := PromptPassword("Password for " + user + ": "); ok {
		return user, p, nil
	}
	return "", "", fmt.Errorf("%w: no password for --user %s: pass --user %s:PASSWORD or $PAXOSD_PASSWORD, or run on a terminal to be asked", ErrUsage, user, user)
}

// TLSConfig returns the TLS configuration the flags ask for: nil (plaintext)
// when none of --cacert, --cert and --key is given. Without --cacert the
// system's CAs are trusted. A file that cannot be read or parsed, a --cert
// without --key or an expired client certificate is a usage error.
func (c *ClientFlags) TLSConfig() (*tls.Config, error) {
	if c.CACert == "" && c.Cert == "" && c.Key == "" {
		return nil, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CACert != "" {
		b, err := os.ReadFile(c.CACert)
		if err != nil {
			return nil, fmt.Errorf("%w: --cacert: %v", ErrUsage, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("%w: --cacert %s holds no PEM certificate", ErrUsage, c.CACert)
		}
		conf.RootCAs = pool
	}
	switch {
	case c.Cert != "" && c.Key == "":
		return nil, fmt.Errorf("%w: --cert needs --key, the certificate's private key (or $PAXOSD_KEY)", ErrUsage)
	case c.Key != "" && c.Cert == "":
		return nil, fmt.Errorf("%w: --key needs --cert, the client certificate (or $PAXOSD_CERT)", ErrUsage)
	case c.Cert != "":
		pair, err := tls.LoadX509KeyPair(c.Cert, c.Key)
		if err != nil {
			return nil, fmt.Errorf("%w: --cert %s with --key %s: %v", ErrUsage, c.Cert, c.Key, err)
		}
		if now := time.Now(); pair.Leaf != nil && now.After(pair.Leaf.NotAfter) {
			return nil, fmt.Errorf("%w: --cert %s expired at %s: the nodes would refuse it", ErrUsage, c.Cert, pair.Leaf.NotAfter.UTC().Format(time.RFC3339))
		}
		conf.Certificates = []tls.Certificate{pair}
	}
	return conf, nil
}

// Env returns the variables that let a paxosd client command run by a
// COMMAND (paxosd lock, paxosd elect) reach the cluster the same way:
// PAXOSD_ENDPOINTS, and PAXOSD_CACERT, PAXOSD_CERT and PAXOSD_KEY when
// given, as absolute paths (the COMMAND may change directory).
func (c *ClientFlags) Env() []string {
	env := []string{"PAXOSD_ENDPOINTS=" + strings.Join(c.List(), ",")}
	if user, password, err := c.Credentials(); err == nil && user != "" {
		env = append(env, "PAXOSD_USER="+user, "PAXOSD_PASSWORD="+password)
	}
	for _, v := range []struct{ name, path string }{{"PAXOSD_CACERT", c.CACert}, {"PAXOSD_CERT", c.Cert}, {"PAXOSD_KEY", c.Key}} {
		if v.path == "" {
			continue
		}
		if abs, err := filepath.Abs(v.path); err == nil {
			v.path = abs
		}
		env = append(env, v.name+"="+v.path)
	}
	return env
}

// Config returns the client configuration the flags give: endpoints,
// cluster id and TLS.
func (c *ClientFlags) Config() (client.Config, error) {
	conf, err := c.TLSConfig()
	if err != nil {
		return client.Config{}, err
	}
	user, password, err := c.Credentials()
	if err != nil {
		return client.Config{}, err
	}
	autoSync := c.AutoSync
	if autoSync <= 0 {
		autoSync = -1 // never; the Config's zero is the default
	}
	return client.Config{Endpoints: c.List(), ClusterID: c.ClusterID, TLS: conf, User: user, Password: password, AutoSyncInterval: autoSync}, nil
}

// List returns the endpoints, blanks dropped.
func (c *ClientFlags) List() []string {
	var out []string
	for _, e := range strings.Split(c.Endpoints, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// Connect connects to the endpoints; ctx ends after --timeout, and cancel
// releases it.
func (c *ClientFlags) Connect() (*client.Client, context.Context, context.CancelFunc, error) {
	cfg, err := c.Config()
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	cl, err := client.NewWithConfig(ctx, cfg)
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	return cl, ctx, cancel, nil
}

// IsTerminal reports whether w is a terminal. A character device is not
// enough: /dev/null is one, and it is what systemd and 'docker run' without
// -t give a daemon as stdin.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
