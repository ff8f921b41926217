package bench

// watch_writer.go is bench watch's writer in a process of its own
// (--writer-process, the default): 'paxosd bench watch-writer', which the
// bench starts and reads one JSON report from. In the bench's own process
// the writer's goroutines wait in the Go scheduler's queue behind the
// thousands of watcher goroutines woken by each put's events, so its
// latency would measure the load generator more than the cluster; in a
// process of its own it waits only for the CPU, as a real writer would.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/paxosd/paxosd/internal/cli"
)

// writerOutput is what 'bench watch-writer' prints.
type writerOutput struct {
	Report writerReport `json:"report"`
	// Acked is the bitmap of the acknowledged puts N (bitmap's words).
	Acked     []uint64 `json:"acked"`
	MaxRev    uint64   `json:"max_rev"`
	LastError string   `json:"last_error,omitempty"`
}

// cmdBenchWatchWriter is 'paxosd bench watch-writer', bench watch's own
// child: it puts PREFIX+N at --rate for --duration and prints a
// writerOutput.
func cmdBenchWatchWriter(args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlags("bench watch-writer", "paxosd bench watch-writer --prefix P --rate R --duration D\n\n"+
		"The writer of 'paxosd bench watch' in a process of its own (the bench starts it).")
	var cf cli.ClientFlags
	cf.Register(fs)
	prefix := fs.String("prefix", "", "put PREFIX+N")
	rate := fs.Float64("rate", 20, "puts per second")
	duration := fs.Duration("duration", 10*time.Second, "for this long")
	valueSize := fs.Int("value-size", 64, "bytes per value (at least 8)")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if *prefix == "" || !(*rate > 0) || *duration <= 0 || *valueSize < 8 {
		return fmt.Errorf("%w: bench watch-writer needs --prefix, a positive --rate and --duration, and --value-size of at least 8", cli.ErrUsage)
	}
	ctx := context.Background()
	pool, err := dialPool(ctx, &cf, 1)
	if err != nil {
		return err
	}
	defer closePool(pool)
	w := &watchWriter{c: pool[0], rate: *rate, valueSize: *valueSize, timeout: cf.Timeout,
		acked: newBitmap(int(*rate*duration.Seconds()) + 1)}
	out := writerOutput{Report: w.run(ctx, *prefix, *duration, newLiveLine(io.Discard))}
	out.Acked, out.MaxRev, out.LastError = *w.acked, w.maxRev.Load(), w.lastErrString()
	return json.NewEncoder(stdout).Encode(out)
}

// runWriterProcess runs the writer as 'paxosd bench watch-writer' on
// target's cluster and returns its report; acked and maxRev, if w is
// given, take its acknowledged puts.
func runWriterProcess(ctx context.Context, f *watchFlags, target *benchTarget, prefix string, d time.Duration, w *watchWriter, live *liveLine) (writerReport, error) {
	self := f.t.binary // --paxosd, else this program
	if self == "" {
		var err error
		if self, err = os.Executable(); err != nil {
			return writerReport{}, fmt.Errorf("finding this program to run the writer: %w", err)
		}
	}
	cf := &target.cf
	args := []string{"bench", "watch-writer", "--endpoints", cf.Endpoints, "--cluster-id", cf.ClusterID,
		"--timeout", cf.Timeout.String(), "--prefix", prefix, "--rate", strconv.FormatFloat(f.rate, 'g', -1, 64),
		"--duration", d.String(), "--value-size", strconv.Itoa(f.valueSize)}
	for flag, v := range map[string]string{"--cacert": cf.CACert, "--cert": cf.Cert, "--key": cf.Key, "--user": cf.User} {
		if v != "" {
			args = append(args, flag, v)
		}
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	begin := time.Now()
	stopLive := liveProgress(live, func() string {
		return fmt.Sprintf("writer (a process of its own) at %v/s under %s: %.0fs/%.0fs", f.rate, prefix, time.Since(begin).Seconds(), d.Seconds())
	})
	err := cmd.Start()
	if err == nil && w != nil && f.loadgenIdle {
		// The writer started at the normal priority; the watchers' side
		// of this process now yields to it and to the members (watch.go).
		if yerr := yieldCPU(true); yerr != nil {
			fmt.Fprintf(os.Stderr, "bench watch: --loadgen-idle: %v\n", yerr)
		}
		defer yieldCPU(false)
	}
	if err == nil {
		err = cmd.Wait()
	}
	stopLive()
	if err != nil {
		return writerReport{}, fmt.Errorf("the writer process: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	var out writerOutput
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return writerReport{}, fmt.Errorf("the writer process's report: %w", err)
	}
	if ps := cmd.ProcessState; ps != nil {
		out.Report.ProcessCPUS = round3((ps.UserTime() + ps.SystemTime()).Seconds())
	}
	if w != nil {
		b := bitmap(out.Acked)
		w.acked = &b
		w.maxRev.Store(out.MaxRev)
		if out.LastError != "" {
			w.mu.Lock()
			w.lastErr = fmt.Errorf("%s", out.LastError)
			w.mu.Unlock()
		}
	}
	return out.Report, nil
}

// runWriter runs the writer for d under prefix, in a process of its own
// or in this one (--writer-process).
func runWriter(ctx context.Context, f *watchFlags, target *benchTarget, w *watchWriter, prefix string, d time.Duration, record bool, live *liveLine) (writerReport, error) {
	if !f.writerProcess {
		if record {
			w.acked = newBitmap(int(f.rate*d.Seconds()) + 1)
		}
		return w.run(ctx, prefix, d, live), nil
	}
	var into *watchWriter
	if record {
		into = w
	}
	return runWriterProcess(ctx, f, target, prefix, d, into, live)
}
