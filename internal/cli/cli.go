// Package cli holds what paxosd's command line and its load generator
// (internal/bench) share: flag sets that report errors instead of exiting,
// the usage error that makes the command exit with status 2, the client
// flags every client command takes (--endpoints, --cluster-id, --timeout),
// and the terminal check.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
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
}

// Register adds --endpoints (default $PAXOSD_ENDPOINTS, else
// DefaultEndpoints), --cluster-id and --timeout to fs.
func (c *ClientFlags) Register(fs *pflag.FlagSet) {
	def := os.Getenv("PAXOSD_ENDPOINTS")
	if def == "" {
		def = DefaultEndpoints
	}
	fs.StringVar(&c.Endpoints, "endpoints", def, "cluster nodes, comma-separated (or $PAXOSD_ENDPOINTS)")
	fs.StringVar(&c.ClusterID, "cluster-id", "paxosd", "cluster name")
	fs.DurationVar(&c.Timeout, "timeout", 5*time.Second, "give up after this long")
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
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	cl, err := client.NewWithConfig(ctx, client.Config{Endpoints: c.List(), ClusterID: c.ClusterID})
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
