package bench

// scale.go is 'paxosd bench scale' (make bench-scale): the cluster at a
// realistic size and for a realistic time, on the real disk.
//
//  1. Start three 'paxosd serve' processes on loopback (nodes.go), their
//     data under --dir, fsync on (the default).
//  2. Preload --keys keys of --value-size bytes with --preload-clients
//     concurrent puts, printing the progress every few seconds.
//  3. For each --clients count in turn, run the put workload over the whole
//     keyspace for --duration, printing one line per --interval: ops/s,
//     latency percentiles, and what the members cost: each node's RSS
//     (VmRSS), each data directory's size, and the members' CPU time (user
//     + system, all three together) per operation.
//  4. With --outage D, one more put run at the first --clients count: a
//     follower is stopped as it starts, kept down for D while the puts go
//     on, started again, and watched until it has caught up, most likely
//     by a snapshot transfer (scale_outage.go).
//  5. Stop a follower with SIGTERM, start it again with the same command
//     line, and measure how long until it has applied what the leader had
//     committed and answers a linearizable get itself.
//
// Each node's peak RSS (VmHWM) over the whole bench is printed at the end
// against 2 x live data + 150 MiB. The data directory is left for
// inspection unless --clean.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/internal/cli"
	"github.com/paxosd/paxosd/paxos"
)

type scaleFlags struct {
	keys           int
	valueSize      int
	clients        []int
	duration       time.Duration
	interval       time.Duration
	warmup         time.Duration
	conns          int
	preloadClients int
	dir            string
	binary         string
	serveFlags     string
	outage         time.Duration
	restart        bool
	restartTimeout time.Duration
	clean          bool
	timeout        time.Duration
}

// scaleRunID names the keys: the preload and every put run write
// bench/scale/key/0 .. bench/scale/key/<keys-1>.
const scaleRunID = "scale"

func cmdBenchScale(args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlags("bench scale", "paxosd bench scale [--keys 1000000] [--clients 64,256] [--duration 10m] [--dir DIR]\n\n"+
		"Starts its own 3-node cluster of 'paxosd serve' processes with their data in\n"+
		"--dir, preloads --keys keys, runs puts over them at each --clients count for\n"+
		"--duration with a line per --interval (ops/s, latencies, each node's RSS and\n"+
		"data size, the members' CPU time per put), then restarts a follower and\n"+
		"reports how long until it serves linearizable reads again. With --outage D,\n"+
		"one more put run at the first --clients count takes a follower down for the\n"+
		"first D of it and then watches it rejoin (by a snapshot transfer, if the\n"+
		"leader's log moved on more than --snapshot-entries meanwhile).")
	var f scaleFlags
	fs.IntVar(&f.keys, "keys", 1_000_000, "keys to preload, and that the puts then overwrite at random")
	fs.IntVar(&f.valueSize, "value-size", 256, "bytes per value")
	fs.IntSliceVar(&f.clients, "clients", []int{64, 256}, "concurrent clients of each put run, one run after the other")
	fs.DurationVar(&f.duration, "duration", 10*time.Minute, "how long each put run measures")
	fs.DurationVar(&f.interval, "interval", time.Minute, "one line per interval of each put run")
	fs.DurationVar(&f.warmup, "warmup", 10*time.Second, "each put run first runs this long without measuring")
	fs.IntVar(&f.conns, "conns", 8, "connections the clients share")
	fs.IntVar(&f.preloadClients, "preload-clients", 256, "concurrent puts of the preload")
	fs.StringVar(&f.dir, "dir", "/var/tmp/paxosd-bench-scale", "directory for the nodes' data, logs and pid files: absent, empty, or left by an earlier run (whose files are removed)")
	fs.StringVar(&f.binary, "paxosd", "", "the paxosd binary to run (default: this one)")
	fs.StringVar(&f.serveFlags, "serve-flags", "", "extra flags for every 'paxosd serve' ({id} in them: the node's id, e.g. --http-listen 127.0.0.1:707{id})")
	fs.DurationVar(&f.outage, "outage", 0, "one more put run at the first --clients count with a follower down for this long from its start, then restarted (0: none; less than --duration)")
	fs.BoolVar(&f.restart, "restart", true, "at the end, restart a follower and measure how long until it serves again")
	fs.DurationVar(&f.restartTimeout, "restart-timeout", 10*time.Minute, "give up on the restarted follower after this long")
	fs.BoolVar(&f.clean, "clean", false, "remove --dir at the end (default: leave it for inspection)")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "give up on one operation after this long")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if err := f.validate(fs.NArg()); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return runScale(ctx, &f, stdout, stderr)
}

func (f *scaleFlags) validate(nargs int) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: bench scale: %s", cli.ErrUsage, fmt.Sprintf(format, args...))
	}
	switch {
	case nargs > 0:
		return bad("takes no arguments")
	case f.keys < 1:
		return bad("--keys must be at least 1, got %d", f.keys)
	case f.valueSize < 0 || f.valueSize > benchValueSizeMax:
		return bad("--value-size must be between 0 and %d bytes, got %d", benchValueSizeMax, f.valueSize)
	case len(f.clients) == 0:
		return bad("--clients lists no client count")
	case f.duration <= 0:
		return bad("--duration must be positive, got %s", f.duration)
	case f.interval < time.Second:
		return bad("--interval must be at least 1s, got %s", f.interval)
	case f.warmup < 0:
		return bad("--warmup must not be negative, got %s", f.warmup)
	case f.conns < 1 || f.preloadClients < 1:
		return bad("--conns and --preload-clients must be at least 1")
	case f.dir == "":
		return bad("--dir must name a directory")
	case f.timeout <= 0 || f.restartTimeout <= 0:
		return bad("--timeout and --restart-timeout must be positive")
	case f.outage < 0:
		return bad("--outage must not be negative, got %s", f.outage)
	case f.outage > 0 && f.outage >= f.duration:
		return bad("--outage %s must be shorter than --duration %s: the follower is restarted %s into the run, and the run must go on while it catches up", f.outage, f.duration, f.outage)
	}
	for _, c := range f.clients {
		if c < 1 {
			return bad("--clients must be at least 1, got %d", c)
		}
	}
	return nil
}

// prepareScaleDir makes dir, or empties it of an earlier run's files. It
// refuses a directory holding anything else: it removes what it finds.
func prepareScaleDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		ours := false
		for i := 1; i <= 3; i++ {
			n := fmt.Sprintf("node%d", i)
			ours = ours || name == n || name == n+".log" || name == n+".pid"
		}
		if !ours {
			return fmt.Errorf("%w: bench scale: --dir %s holds %s, which an earlier run did not leave: give an empty or new directory", cli.ErrUsage, dir, name)
		}
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func runScale(ctx context.Context, f *scaleFlags, stdout, stderr io.Writer) error {
	if err := prepareScaleDir(f.dir); err != nil {
		return err
	}
	fsName := filesystemOf(f.dir)
	if fsName == "tmpfs" || fsName == "ramfs" {
		fmt.Fprintf(stderr, "paxosd bench scale: warning: %s is on %s: fsync costs nothing there; use --dir on a real disk\n", f.dir, fsName)
	}
	serveFlags := f.serveFlags
	if f.outage > 0 {
		// The rejoining node logs its snapshot install at info.
		serveFlags = strings.TrimSpace("--log-level info " + serveFlags)
	}
	nodes, err := startBenchNodes(f.binary, f.dir, serveFlags)
	if err != nil {
		return err
	}
	peaks := startPeakRSS(nodes)
	defer func() {
		peaks.finish()
		nodes.stopAll()
		if f.clean {
			os.RemoveAll(f.dir)
		} else {
			fmt.Fprintf(stdout, "data, logs: %s (make bench-scale CLEAN=1 removes it)\n", f.dir)
		}
	}()
	cf := cli.ClientFlags{Endpoints: strings.Join(nodes.addrs, ","), ClusterID: "paxosd", Timeout: f.timeout}
	fmt.Fprintf(stdout, "bench scale: 3 nodes at %s, data in %s (%s), %d keys of %d bytes, put runs at %v clients of %s each\n",
		cf.Endpoints, f.dir, fsName, f.keys, f.valueSize, f.clients, f.duration)
	if f.outage > 0 {
		fmt.Fprintf(stdout, "bench scale: then a put run at %d clients with a follower down for its first %s\n", f.clients[0], f.outage)
	}
	if _, err := waitClusterHealthy(ctx, client.Config{Endpoints: nodes.addrs, ClusterID: cf.ClusterID}, time.Minute); err != nil {
		return err
	}
	if err := scalePreload(ctx, f, &cf, stdout); err != nil {
		return fmt.Errorf("preload: %w", err)
	}
	var results []*benchResult
	normal := 0.0 // the median interval ops/s at f.clients[0], without an outage
	for n, clients := range f.clients {
		bf := benchFlags{
			clients: clients, conns: f.conns, duration: f.duration, warmup: f.warmup, valueSize: f.valueSize,
			keys: f.keys, interval: f.interval, cf: cf, runID: scaleRunID, sessionTTL: 10 * time.Second,
		}
		fmt.Fprintf(stdout, "\nput, %d clients, %s (+%s warmup), over all %d keys\n", clients, f.duration, f.warmup, f.keys)
		mon := newNodeMonitor(nodes)
		res, err := runBench(ctx, "put", &bf, newLiveLine(stderr), mon.printer(stdout))
		if err != nil {
			return fmt.Errorf("put with %d clients: %w", clients, err)
		}
		noteErrors(stderr, res)
		results = append(results, res)
		if n == 0 {
			normal = median(mon.rates)
		}
	}
	var outageErr error
	if f.outage > 0 {
		res, err := scaleOutageRun(ctx, f, nodes, &cf, f.clients[0], normal, stdout, stderr)
		if res == nil {
			return err
		}
		noteErrors(stderr, res)
		results = append(results, res)
		outageErr = err
	}
	fmt.Fprintln(stdout)
	if err := writeBenchTable(stdout, results); err != nil {
		return err
	}
	var err2 error
	if f.restart && outageErr == nil {
		err2 = scaleRestart(ctx, f, nodes, &cf, stdout)
	}
	writePeakTable(stdout, f.keys, f.valueSize, peaks.finish())
	return errors.Join(outageErr, err2)
}

// scalePreload puts every key once, f.preloadClients at a time.
func scalePreload(ctx context.Context, f *scaleFlags, cf *cli.ClientFlags, stdout io.Writer) error {
	base, err := cf.Config() // with --cacert, --cert, --key: TLS
	if err != nil {
		return err
	}
	pool := make([]*client.Client, min(f.conns, f.preloadClients))
	for j := range pool {
		eps := cf.List()
		shift := j % len(eps)
		conf := base
		conf.Endpoints = append(append([]string{}, eps[shift:]...), eps[:shift]...)
		cctx, cancel := context.WithTimeout(ctx, cf.Timeout)
		c, err := client.NewWithConfig(cctx, conf)
		cancel()
		if err != nil {
			return err
		}
		defer c.Close()
		pool[j] = c
	}
	value := make([]byte, f.valueSize)
	var done atomic.Int64
	start := time.Now()
	progressDone := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		last, lastAt := int64(0), start
		for {
			select {
			case <-progressDone:
				return
			case now := <-tick.C:
				n := done.Load()
				fmt.Fprintf(stdout, "preload: %9d/%d keys (%5.1f%%)  %7.0f keys/s  %s\n",
					n, f.keys, 100*float64(n)/float64(f.keys), float64(n-last)/now.Sub(lastAt).Seconds(), clock(now.Sub(start)))
				last, lastAt = n, now
			}
		}
	}()
	err = benchParallel(ctx, f.keys, min(f.keys, f.preloadClients), func(ctx context.Context, k int) error {
		octx, cancel := context.WithTimeout(ctx, f.timeout)
		defer cancel()
		if _, err := pool[k%len(pool)].Put(octx, scaleKey(k), value); err != nil {
			return fmt.Errorf("key %d: %w", k, err)
		}
		done.Add(1)
		return nil
	})
	close(progressDone)
	wg.Wait()
	if err != nil {
		return err
	}
	el := time.Since(start)
	fmt.Fprintf(stdout, "preload: %d keys in %s, %.0f keys/s\n", f.keys, el.Round(time.Second), float64(f.keys)/el.Seconds())
	return nil
}

func scaleKey(k int) string { return fmt.Sprintf("bench/%s/key/%d", scaleRunID, k) }

// scaleRestart stops a follower with SIGTERM, starts it again, and waits
// until it has applied what the leader had committed and answers a
// linearizable get itself (a client that knows only its address).
func scaleRestart(ctx context.Context, f *scaleFlags, nodes *benchNodes, cf *cli.ClientFlags, stdout io.Writer) error {
	leader, err := waitClusterHealthy(ctx, client.Config{Endpoints: nodes.addrs, ClusterID: cf.ClusterID}, time.Minute)
	if err != nil {
		return err
	}
	i := 0
	if int(leader) == 1 {
		i = 1
	}
	id, addr := i+1, nodes.addrs[i]
	fmt.Fprintf(stdout, "\nrestart: stopping follower node %d (SIGTERM; node %d leads)\n", id, leader)
	took, err := nodes.stop(i, time.Minute)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, cf.Timeout)
	ms := client.Unconnected(client.Config{Endpoints: []string{nodes.addrs[int(leader)-1]}, ClusterID: cf.ClusterID}).Status(sctx)
	cancel()
	if ms[0].Err != nil {
		return fmt.Errorf("asking the leader for its commit index: %w", ms[0].Err)
	}
	want := ms[0].Status.Commit
	fmt.Fprintf(stdout, "restart: node %d stopped after %.1f s; the leader has committed %d\n", id, took.Seconds(), want)
	t0 := time.Now()
	if err := nodes.start(i); err != nil {
		return err
	}
	one := client.Config{Endpoints: []string{addr}, ClusterID: cf.ClusterID, DialTimeout: 500 * time.Millisecond}
	deadline := t0.Add(f.restartTimeout)
	var why string
	var firstAnswer time.Duration
	for {
		if time.Now().After(deadline) {
			return fmt.Errorf("restart: node %d is not serving %s after it was started: %s", id, f.restartTimeout, why)
		}
		if err := benchSleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
		why = scaleServing(ctx, one, want)
		if firstAnswer == 0 && !strings.HasPrefix(why, "no status") {
			firstAnswer = time.Since(t0)
		}
		if why == "" {
			break
		}
	}
	took = time.Since(t0)
	fmt.Fprintf(stdout, "restart: node %d answering status after %.1f s\n", id, firstAnswer.Seconds())
	fmt.Fprintf(stdout, "restart: node %d serving again after %.1f s\n", id, took.Seconds())
	return nil
}

// scaleServing returns "" if the node at one.Endpoints[0] has applied
// want and answers a linearizable get, else what it lacks.
func scaleServing(ctx context.Context, one client.Config, want paxos.Slot) string {
	sctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	ms := client.Unconnected(one).Status(sctx)
	if ms[0].Err != nil {
		return "no status: " + ms[0].Err.Error()
	}
	if st := ms[0].Status; st.Applied < want {
		return fmt.Sprintf("applied %d of %d", st.Applied, want)
	}
	c, err := client.NewWithConfig(sctx, one)
	if err != nil {
		return "connecting: " + err.Error()
	}
	defer c.Close()
	if _, err := c.Get(sctx, scaleKey(0)); err != nil && !errors.Is(err, client.ErrNotFound) {
		return "linearizable get: " + err.Error()
	}
	return ""
}
