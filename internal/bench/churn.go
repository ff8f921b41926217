package bench

// churn.go is 'paxosd bench churn': --workers workers, each looping over
// open a session, put a key bound to it (ephemeral), close the session
// (which deletes the key), as short-lived clients of
// a coordination service do (a worker that registers itself for one job).
// One cycle is one operation of the load runner (runner.go): the report is
// its cycles per second and the percentiles of the whole cycle, with the
// members' CPU over the measured window.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/internal/cli"
)

// churnWorkload: each op opens a session, puts the worker's key, and
// closes the session.
type churnWorkload struct{ r *benchRunner }

func (w *churnWorkload) setup(_ context.Context, r *benchRunner) error { w.r = r; return nil }
func (w *churnWorkload) teardown(context.Context)                      {}

func (w *churnWorkload) op(ctx context.Context, i int) error {
	c := w.r.clientOf(i)
	s, err := c.NewSession(ctx, w.r.f.sessionTTL)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	// The put is ephemeral: the close deletes the key again, as a service
	// instance that registers and goes away does.
	_, perr := c.Put(ctx, w.r.nameOf("churn", i), w.r.value, client.WithSession(s))
	if perr != nil {
		perr = fmt.Errorf("put: %w", perr)
	}
	cerr := s.Close(ctx)
	if cerr != nil {
		cerr = fmt.Errorf("close: %w", cerr)
	}
	return errors.Join(perr, cerr)
}

// churnResult is the JSON report: the runner's, with the members' CPU.
type churnResult struct {
	*benchResult
	TTLS    float64  `json:"ttl_s"`
	Members *cpuSpan `json:"members,omitempty"`
	// CPUMsPerCycle is the members' CPU time per completed cycle.
	CPUMsPerCycle float64       `json:"members_cpu_ms_per_cycle,omitempty"`
	Memory        *memoryReport `json:"members_memory,omitempty"`
	LoadgenS      float64       `json:"loadgen_cpu_s"` // warmup included
}

func cmdBenchChurn(args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlags("bench churn", "paxosd bench churn [--workers 64] [--duration 10s]\n\n"+
		"Each of --workers workers loops over: open a session, put a key, close the\n"+
		"session. Reports cycles per second, the percentiles of the whole cycle and the\n"+
		"members' CPU. By default it starts its own three 'paxosd serve' processes;\n"+
		"--endpoints loads a running cluster.")
	var f benchFlags
	var t targetFlags
	fs.IntVar(&f.clients, "workers", 64, "concurrent workers")
	fs.IntVar(&f.conns, "conns", 8, "connections the workers share")
	fs.DurationVar(&f.duration, "duration", 10*time.Second, "how long to measure")
	fs.DurationVar(&f.warmup, "warmup", 2*time.Second, "run this long first without measuring")
	fs.DurationVar(&f.sessionTTL, "ttl", 10*time.Second, "the sessions' TTL")
	fs.IntVar(&f.valueSize, "value-size", 64, "bytes per value")
	fs.DurationVar(&f.interval, "interval", 0, "also print one line per interval of the run (its cycles/s and latencies), e.g. 1s (0 = off); not with --json")
	fs.BoolVar(&f.json, "json", false, "print one JSON object instead of the table")
	t.register(fs)
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: bench churn: %s", cli.ErrUsage, fmt.Sprintf(format, args...))
	}
	switch {
	case fs.NArg() > 0:
		return bad("takes no arguments, got %q", fs.Args())
	case f.clients < 1:
		return bad("--workers must be at least 1, got %d", f.clients)
	case f.conns < 1:
		return bad("--conns must be at least 1, got %d", f.conns)
	case f.duration <= 0:
		return bad("--duration must be positive, got %s", f.duration)
	case f.warmup < 0:
		return bad("--warmup must not be negative, got %s", f.warmup)
	case f.sessionTTL < client.TTLMin || f.sessionTTL > client.TTLMax:
		return bad("--ttl must be between %s and %s, got %s", client.TTLMin, client.TTLMax, f.sessionTTL)
	case f.valueSize < 0 || f.valueSize > benchValueSizeMax:
		return bad("--value-size must be between 0 and %d bytes, got %d", benchValueSizeMax, f.valueSize)
	case f.interval != 0 && f.interval < time.Second:
		return bad("--interval must be 0 (off) or at least 1s, got %s", f.interval)
	case f.interval != 0 && f.json:
		return bad("--interval prints table lines: leave it out with --json")
	}
	if err := t.validate(fs, bad); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	target, err := t.start(ctx)
	if err != nil {
		return err
	}
	defer target.stop(stderr)
	f.cf, f.keys = target.cf, 1
	if !f.json {
		fmt.Fprintf(stdout, "bench churn: %d workers over %d connections, %s (+%s warmup), on %s\n",
			f.clients, min(f.conns, f.clients), f.duration, f.warmup, target.describe())
	}
	// The members' CPU over the measured window [start, end): marked by a
	// goroutine the runner's clock starts.
	var marks [2]cpuMark
	var wg sync.WaitGroup
	f.onStart = func(r *benchRunner) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k, at := range []time.Time{r.start, r.end} {
				if benchSleep(ctx, time.Until(at)) != nil {
					return
				}
				marks[k] = target.markCPU()
			}
		}()
	}
	lg0 := loadgenCPU()
	res, err := runBench(ctx, "churn", &f, newLiveLine(stderr), intervalPrinter(stdout, false))
	wg.Wait()
	if err != nil {
		return err
	}
	noteErrors(stderr, res)
	out := churnResult{benchResult: res, TTLS: f.sessionTTL.Seconds(), Members: spanOf(marks[0], marks[1]), Memory: target.memory()}
	if lg := loadgenCPU(); lg >= 0 && lg0 >= 0 {
		out.LoadgenS = round3(lg - lg0)
	}
	if out.Members != nil && res.Ops > 0 {
		out.CPUMsPerCycle = round3(out.Members.Seconds / float64(res.Ops) * 1000)
	}
	if f.json {
		return writeBenchJSON(stdout, out)
	}
	if err := writeBenchTable(stdout, []*benchResult{res}); err != nil {
		return err
	}
	if out.Members != nil {
		fmt.Fprintf(stdout, "members' CPU: %.2f cores, %.3f ms per cycle\n", out.Members.Cores, out.CPUMsPerCycle)
	}
	if out.Memory != nil {
		fmt.Fprintf(stdout, "members' RSS: %s MB (peak %s MB)\n", joinMB(out.Memory.RSSMB), joinMB(out.Memory.PeakMB))
	}
	fmt.Fprintf(stdout, "the load generator used %.1f s of CPU (warmup included)\n", out.LoadgenS)
	return nil
}
