// Package bench is 'paxosd bench', the load generator: the load workloads
// (put, get, lock, lock-contended, campaign, and the standard suite of
// them), the sessions, churn and watch benches, the failover test, the
// machine floors (fsync, rtt) and the scale run. cmd/paxosd hands it the
// arguments after "bench" (Command); its flag helpers are internal/cli's.
//
// The sessions, churn and watch benches (sessions.go, churn.go, watch.go
// and watch_watchers.go) load their own cluster or a running one, and read
// what its members cost (target.go).
//
// bench.go is the command line. The runner that drives a workload's
// clients and measures each operation is in runner.go, the workloads in
// workloads.go, the histogram in hist.go, the output in
// report.go, the failover test in failover.go, the scale run in scale.go,
// the serve processes both start in nodes.go and the machine measurements
// (fsync, rtt) in machine.go.
//
// Measurement. The run is --warmup then --duration. An operation counts
// (ops, errors, latency) when it COMPLETES inside the --duration window, so
// ops/s is completions per second. Closed loop (the default): each client
// issues its next operation when the last one returns, and the latency is
// the call's own time. Open loop (--rate R): operations are scheduled every
// 1/R s for the whole run, each client takes the next schedule slot when it
// is free, and the latency is measured from the SCHEDULED start: when the
// cluster falls behind, the time an operation spent waiting for a free
// client counts, so a stall is not hidden (no coordinated omission).
package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/internal/cli"
)

const benchUsage = `Usage: paxosd bench WORKLOAD [flags]

Load workloads (a table at the end, or one JSON object with --json):
  put              put a --value-size value to a random one of --keys keys
  get              linearizable get of a random one of --keys keys (written first)
  lock             each client locks and unlocks its own lock, in its own session (op = one cycle)
  lock-contended   all clients lock and unlock one lock (op = one grant); adds the handover time,
                   from a holder's Unlock returning to the next holder's Lock returning
  campaign         each client campaigns in its own election and resigns (op = one cycle)
  suite            the standard set: put 1/16/64/256, get 64, lock 1/16/64, lock-contended 16

Sessions and watches (their own 3-node cluster, or --endpoints; make bench-sessions):
  sessions         open --sessions sessions, hold them for --hold with the client's keep-alives:
                   opens/s, sessions lost (by the client, by the cluster), members' CPU and RSS
  churn            --workers loop over open a session, put, close it: cycles/s and percentiles
  watch            --watchers watchers on a prefix, a writer at --rate puts/s: delivered fraction,
                   lag percentiles, members' CPU per delivery, the writer's latency with and without

Other measurements:
  failover         SIGKILL the leader --rounds times while a writer puts; how long writes stop
  scale            its own 3-node cluster on disk: preload --keys, put at each --clients for
                   --duration with a line per --interval (node RSS, data size, CPU per put),
                   then restart a follower (make bench-scale)
  preload          put every key bench/scale/key/0..--keys once, against a running cluster
                   (then 'bench put --run-id scale' overwrites them; make bench-etcd)
  fsync            this machine's write+fdatasync latency (the floor of every commit)
  rtt              this machine's loopback TCP round trip

Run 'paxosd bench WORKLOAD --help' for a workload's flags.
`

// benchLoads are the load workloads by name.
var benchLoads = map[string]func() benchWorkload{
	"put":            func() benchWorkload { return &putWorkload{} },
	"get":            func() benchWorkload { return &getWorkload{} },
	"lock":           func() benchWorkload { return &lockWorkload{} },
	"lock-contended": func() benchWorkload { return &contendedWorkload{} },
	"campaign":       func() benchWorkload { return &campaignWorkload{} },
	"churn":          func() benchWorkload { return &churnWorkload{} }, // run by 'bench churn' (churn.go)
}

const benchWorkloadNames = "put, get, lock, lock-contended, campaign, suite, sessions, churn, watch, failover, scale, preload, fsync or rtt"

// Command runs 'paxosd bench' with args, the arguments after "bench". A
// mistake in them is an error wrapping cli.ErrUsage; --help returns
// pflag.ErrHelp.
func Command(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: bench needs a workload: %s (see 'paxosd bench --help')", cli.ErrUsage, benchWorkloadNames)
	}
	switch w := args[0]; w {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, benchUsage)
		return pflag.ErrHelp
	case "suite":
		return cmdBenchSuite(args[1:], stdout, stderr)
	case "sessions":
		return cmdBenchSessions(args[1:], stdout, stderr)
	case "churn":
		return cmdBenchChurn(args[1:], stdout, stderr)
	case "watch":
		return cmdBenchWatch(args[1:], stdout, stderr)
	case "watch-writer": // bench watch's own child, not listed
		return cmdBenchWatchWriter(args[1:], stdout, stderr)
	case "failover":
		return cmdBenchFailover(args[1:], stdout, stderr)
	case "scale":
		return cmdBenchScale(args[1:], stdout, stderr)
	case "preload":
		return cmdBenchPreload(args[1:], stdout)
	case "fsync":
		return cmdBenchFsync(args[1:], stdout)
	case "rtt":
		return cmdBenchRTT(args[1:], stdout)
	default:
		if strings.HasPrefix(w, "-") {
			return fmt.Errorf("%w: bench: the workload comes first: paxosd bench WORKLOAD [flags], WORKLOAD one of %s", cli.ErrUsage, benchWorkloadNames)
		}
		if benchLoads[w] == nil {
			return fmt.Errorf("%w: bench: unknown workload %q: want %s", cli.ErrUsage, w, benchWorkloadNames)
		}
		return cmdBenchLoad(w, args[1:], stdout, stderr)
	}
}

// benchFlags are the flags of the load workloads.
type benchFlags struct {
	clients    int
	conns      int
	duration   time.Duration
	warmup     time.Duration
	valueSize  int
	keys       int
	rate       float64
	sessionTTL time.Duration
	interval   time.Duration
	json       bool
	cpuProfile string
	verify     bool // put: check that no acknowledged write is lost (verify.go)
	cf         cli.ClientFlags
	// runID, when set, names the run's keys instead of a random id (bench
	// scale writes over the keys it preloaded).
	runID string
	// onStart, if set, is called once the run's clock is set (r.start,
	// r.end), before the clients start (bench scale's outage).
	onStart func(r *benchRunner)
}

// benchValueSizeMax bounds --value-size (the client's frame limit is 16 MiB).
const benchValueSizeMax = 8 << 20

// register adds the flags; the suite chooses --clients and --rate itself.
func (f *benchFlags) register(fs *pflag.FlagSet, suite bool) {
	each, jsonHow := "", "one JSON object"
	if suite {
		each, jsonHow = " each run", "one JSON object per run, one per line,"
	} else {
		fs.IntVar(&f.clients, "clients", 16, "concurrent clients (each runs one operation at a time)")
	}
	fs.IntVar(&f.conns, "conns", 8, "connections the clients share (each one client.Client: one TCP connection)")
	fs.DurationVar(&f.duration, "duration", 10*time.Second, "how long to measure"+each)
	fs.DurationVar(&f.warmup, "warmup", 2*time.Second, "run this long first without measuring")
	fs.IntVar(&f.valueSize, "value-size", 256, "bytes per value (put, get)")
	fs.IntVar(&f.keys, "keys", 1000, "distinct keys (put, get)")
	if !suite {
		fs.Float64Var(&f.rate, "rate", 0, "open loop: operations per second in total, latency measured from each one's scheduled start (0 = closed loop)")
		fs.StringVar(&f.runID, "run-id", "", "name the keys bench/RUN-ID/key/N (default: a new random id per run); 'scale' overwrites what 'bench preload' and 'bench scale' wrote")
		fs.BoolVar(&f.verify, "verify", false, "put: each client writes distinct values to keys of its own, and every key is read back at the end: fails if an acknowledged write is lost")
		fs.DurationVar(&f.interval, "interval", 0, "also print one line per interval of the run (its ops/s and latencies), e.g. 1m; with --json one object per interval (0 = off)")
	}
	fs.DurationVar(&f.sessionTTL, "session-ttl", 10*time.Second, "TTL of the clients' sessions (lock, lock-contended, campaign)")
	fs.BoolVar(&f.json, "json", false, "print "+jsonHow+" instead of the table")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the load generator (not the cluster) to this file")
	f.cf.Register(fs)
	fs.Lookup("timeout").Usage = "give up on connecting, and on one operation, after this long"
}

// startProfile starts the --cpuprofile, if any; stop ends it.
func (f *benchFlags) startProfile() (stop func(), err error) { return startCPUProfile(f.cpuProfile) }

// startCPUProfile profiles this process into path (none if ""); stop ends
// it.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	out, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(out); err != nil {
		out.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		out.Close()
	}, nil
}

func (f *benchFlags) validate(workload string) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: bench %s: %s", cli.ErrUsage, workload, fmt.Sprintf(format, args...))
	}
	switch {
	case f.clients < 1:
		return bad("--clients must be at least 1, got %d", f.clients)
	case workload == "lock-contended" && f.clients < 2:
		return bad("--clients must be at least 2: the clients contend for one lock")
	case f.conns < 1:
		return bad("--conns must be at least 1, got %d", f.conns)
	case f.duration <= 0:
		return bad("--duration must be positive, got %s", f.duration)
	case f.warmup < 0:
		return bad("--warmup must not be negative, got %s", f.warmup)
	case f.valueSize < 0 || f.valueSize > benchValueSizeMax:
		return bad("--value-size must be between 0 and %d bytes, got %d", benchValueSizeMax, f.valueSize)
	case f.keys < 1:
		return bad("--keys must be at least 1, got %d", f.keys)
	case f.rate < 0 || math.IsNaN(f.rate) || math.IsInf(f.rate, 0):
		return bad("--rate must be a number of operations per second, 0 or more, got %v", f.rate)
	case f.rate > 0 && f.rate < 1/f.duration.Seconds():
		return bad("--rate %v schedules no operation in --duration %s", f.rate, f.duration)
	case f.interval != 0 && f.interval < time.Second:
		return bad("--interval must be 0 (off) or at least 1s, got %s", f.interval)
	case f.sessionTTL < client.TTLMin || f.sessionTTL > client.TTLMax:
		return bad("--session-ttl must be between %s and %s, got %s", client.TTLMin, client.TTLMax, f.sessionTTL)
	case f.cf.Timeout <= 0:
		return bad("--timeout must be positive, got %s", f.cf.Timeout)
	case len(f.cf.List()) == 0:
		return bad("--endpoints lists no endpoint")
	case f.verify && workload != "put":
		return bad("--verify is for bench put")
	case f.verify && f.keys < f.clients:
		return bad("--verify needs --keys at least --clients (each client writes keys of its own), got %d keys for %d clients", f.keys, f.clients)
	}
	return nil
}

func cmdBenchLoad(workload string, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlags("bench "+workload, "paxosd bench "+workload+" [flags]")
	var f benchFlags
	f.register(fs, false)
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: bench %s takes no arguments, got %q", cli.ErrUsage, workload, fs.Args())
	}
	if err := f.validate(workload); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	stopProfile, err := f.startProfile()
	if err != nil {
		return err
	}
	res, err := runBench(ctx, workload, &f, newLiveLine(stderr), intervalPrinter(stdout, f.json))
	stopProfile()
	if err != nil {
		return err
	}
	noteErrors(stderr, res)
	if f.json {
		err = writeBenchJSON(stdout, res)
	} else {
		err = writeBenchTable(stdout, []*benchResult{res})
	}
	if err == nil && res.Verify != nil {
		out := stdout
		if f.json {
			out = io.Discard // the JSON holds it
		}
		err = res.Verify.report(out)
	}
	return err
}

// benchSuite is the standard set 'paxosd bench suite' (and 'make bench') runs.
var benchSuite = []struct {
	workload string
	clients  int
}{
	{"put", 1}, {"put", 16}, {"put", 64}, {"put", 256},
	{"get", 64},
	{"lock", 1}, {"lock", 16}, {"lock", 64},
	{"lock-contended", 16},
}

func cmdBenchSuite(args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlags("bench suite", "paxosd bench suite [flags]\n\n"+
		"Runs put 1/16/64/256 clients, get 64, lock 1/16/64 and lock-contended 16,\n"+
		"one after the other, and prints one table.")
	var f benchFlags
	f.register(fs, true)
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: bench suite takes no arguments, got %q", cli.ErrUsage, fs.Args())
	}
	f.clients = 2
	if err := f.validate("suite"); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	stopProfile, err := f.startProfile()
	if err != nil {
		return err
	}
	defer stopProfile()
	var results []*benchResult
	for i, run := range benchSuite {
		rf := f
		rf.clients = run.clients
		fmt.Fprintf(stderr, "bench %d/%d: %s, clients %d, %s (+%s warmup)\n", i+1, len(benchSuite), run.workload, run.clients, f.duration, f.warmup)
		res, err := runBench(ctx, run.workload, &rf, newLiveLine(stderr), nil)
		if err != nil {
			return fmt.Errorf("%s with %d clients: %w", run.workload, run.clients, err)
		}
		noteErrors(stderr, res)
		if f.json {
			if err := writeBenchJSON(stdout, res); err != nil {
				return err
			}
		}
		results = append(results, res)
	}
	if f.json {
		return nil
	}
	return writeBenchTable(stdout, results)
}

func noteErrors(stderr io.Writer, res *benchResult) {
	if res.Errors > 0 {
		fmt.Fprintf(stderr, "paxosd bench: %s: %d operations failed; the last: %s\n", res.Workload, res.Errors, res.LastError)
	}
}
