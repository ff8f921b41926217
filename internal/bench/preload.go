package bench

// preload.go is 'paxosd bench preload': bench scale's preload alone,
// against a cluster already running (scripts/bench-etcd.sh starts its own
// 'paxosd serve' processes next to etcd's and preloads both). It writes
// the keys bench scale writes, bench/scale/key/0 .. <keys-1>, so that
// 'paxosd bench put --run-id scale --keys N' then overwrites them.

import (
	"context"
	"fmt"
	"io"
	"os/signal"
	"syscall"
	"time"

	"github.com/paxosd/paxosd/internal/cli"
)

func cmdBenchPreload(args []string, stdout io.Writer) error {
	fs := cli.NewFlags("bench preload", "paxosd bench preload [--keys 1000000] [--value-size 256]\n\n"+
		"Puts every key bench/scale/key/0 .. bench/scale/key/<keys-1> once, a zero-filled\n"+
		"value of --value-size bytes each, --clients at a time over --conns connections,\n"+
		"printing the progress every 5 s. 'paxosd bench put --run-id scale --keys N' then\n"+
		"overwrites them at random.")
	var f scaleFlags
	var cf cli.ClientFlags
	fs.IntVar(&f.keys, "keys", 1_000_000, "keys to write")
	fs.IntVar(&f.valueSize, "value-size", 256, "bytes per value")
	fs.IntVar(&f.preloadClients, "clients", 256, "concurrent puts")
	fs.IntVar(&f.conns, "conns", 8, "connections the puts share")
	cf.Register(fs)
	fs.Lookup("timeout").Usage = "give up on connecting, and on one put, after this long"
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: bench preload: %s", cli.ErrUsage, fmt.Sprintf(format, args...))
	}
	switch {
	case fs.NArg() > 0:
		return bad("takes no arguments, got %q", fs.Args())
	case f.keys < 1:
		return bad("--keys must be at least 1, got %d", f.keys)
	case f.valueSize < 0 || f.valueSize > benchValueSizeMax:
		return bad("--value-size must be between 0 and %d bytes, got %d", benchValueSizeMax, f.valueSize)
	case f.preloadClients < 1 || f.conns < 1:
		return bad("--clients and --conns must be at least 1")
	case cf.Timeout <= 0:
		return bad("--timeout must be positive, got %s", cf.Timeout)
	case len(cf.List()) == 0:
		return bad("--endpoints lists no endpoint")
	}
	f.timeout = cf.Timeout
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// The cluster may have just been started: wait for a leader first, as
	// bench scale does, rather than fail the first puts.
	cfg, err := cf.Config() // with --cacert, --cert, --key: TLS
	if err != nil {
		return err
	}
	if _, err := waitClusterHealthy(ctx, cfg, time.Minute); err != nil {
		return err
	}
	return scalePreload(ctx, &f, &cf, stdout)
}
