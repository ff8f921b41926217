package bench

// watch.go is 'paxosd bench watch': --watchers watchers on one prefix,
// spread over --conns connections, and one writer putting under that
// prefix at --rate puts per second.
//
//  1. Baseline: the writer alone for --baseline, under another prefix:
//     its put latency without watchers.
//  2. The watchers start, at the revision of a marker put under the
//     prefix; once every one has received the marker, all are watching.
//  3. The writer puts for --duration; each put is a new key prefix/p/N
//     whose value begins with the time it was sent.
//  4. The bench waits (at most --settle) until every watcher has received
//     the revision of the last acknowledged put, then stops them.
//
// Each watcher checks its events' revisions strictly increase (order),
// and marks each put N it receives (a bitmap: a duplicate is seen twice).
// The delivered fraction is the acknowledged puts every watcher received,
// over watchers x acknowledged puts. The lag of a delivery is the time from
// the put's send to the event reaching the watcher's goroutine (one
// process, one clock). The members' CPU per delivery is their CPU time
// during steps 3 and 4 over the deliveries.
//
// The writer is open loop: put N is sent at start + N/rate (at most
// writerInFlight at a time), and its latency is measured from that
// scheduled time, so a writer the cluster slows down shows it.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/internal/cli"
)

type watchFlags struct {
	watchers  int
	rate      float64
	duration  time.Duration
	baseline  time.Duration
	settle    time.Duration
	conns     int
	valueSize int
	json      bool
	// writerProcess: the writer runs as 'paxosd bench watch-writer'
	// (watch_writer.go).
	writerProcess bool
	// loadgenIdle: the watchers' side of the load generator runs under
	// SCHED_IDLE while the writer puts with them (watch_writer.go).
	loadgenIdle bool
	t           targetFlags
}

// writerInFlight bounds the writer's puts in flight.
const writerInFlight = 1024

// watchLagShards: the watchers record their lags into this many
// histograms, each behind its own lock (a histogram per watcher would be
// 30 KB each).
const watchLagShards = 64

// watchResult is the JSON report.
type watchResult struct {
	Workload  string  `json:"workload"`
	Watchers  int     `json:"watchers"`
	Conns     int     `json:"conns"`
	Rate      float64 `json:"rate"`
	DurationS float64 `json:"duration_s"`
	// WatchSetupS: from the first Watch call to every watcher having
	// received the marker.
	WatchSetupS float64 `json:"watch_setup_s"`
	Puts        uint64  `json:"puts"`       // acknowledged in the watch phase
	PutErrors   uint64  `json:"put_errors"` // failed (perhaps applied all the same)
	Expected    uint64  `json:"expected"`   // watchers x puts
	Delivered   uint64  `json:"delivered"`  // of the expected
	Fraction    float64 `json:"delivered_fraction"`
	Extra       uint64  `json:"extra"`        // events of puts not acknowledged
	Duplicates  uint64  `json:"duplicates"`   // a put received twice by one watcher
	OutOfOrder  uint64  `json:"out_of_order"` // an event whose revision is not above the last
	// WatchersBehind: watchers that had not reached the last put's
	// revision after --settle; WatchersFailed: watches that ended early.
	WatchersBehind int    `json:"watchers_behind"`
	WatchersFailed int    `json:"watchers_failed"`
	WatchError     string `json:"watch_error,omitempty"`
	// Lag: from a put's send to its event's delivery, over every delivery.
	Lag            benchLatency `json:"lag_ms"`
	DeliveriesPerS float64      `json:"deliveries_per_sec"`
	// The writer's put latency alone (baseline) and with the watchers.
	WriterProcess    bool          `json:"writer_process"` // the writer ran in a process of its own
	LoadgenIdle      bool          `json:"loadgen_idle"`   // the watchers ran under SCHED_IDLE while the writer put with them
	Baseline         *writerReport `json:"writer_baseline,omitempty"`
	Writer           writerReport  `json:"writer"`
	P99Ratio         float64       `json:"writer_p99_ratio,omitempty"` // with / without watchers
	BaseCPU          *cpuSpan      `json:"baseline_members,omitempty"`
	WatchCPU         *cpuSpan      `json:"watch_members,omitempty"`
	CPUPerDeliveryUs float64       `json:"members_cpu_us_per_delivery,omitempty"`
	Memory           *memoryReport `json:"members_memory,omitempty"`
	LoadgenS         float64       `json:"loadgen_cpu_s"`
	LastError        string        `json:"last_error,omitempty"`
}

type writerReport struct {
	// ProcessCPUS is the CPU time of the writer's own process, when it
	// had one (--writer-process).
	ProcessCPUS float64      `json:"process_cpu_s,omitempty"`
	Puts        uint64       `json:"puts"`
	Errors      uint64       `json:"errors"`
	PutsPerS    float64      `json:"puts_per_sec"`
	Latency     benchLatency `json:"latency_ms"`
}

func cmdBenchWatch(args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlags("bench watch", "paxosd bench watch [--watchers 1000] [--rate 20] [--duration 10s]\n\n"+
		"Starts --watchers watchers on one prefix over --conns connections and a writer\n"+
		"putting under it at --rate puts/s for --duration (after a --baseline run of the\n"+
		"writer alone). Reports the fraction of events delivered (every put to every\n"+
		"watcher, in revision order), the lag from each put's send to its delivery, the\n"+
		"members' CPU per delivery, and the writer's latency with and without the\n"+
		"watchers. By default it starts its own three 'paxosd serve' processes;\n"+
		"--endpoints loads a running cluster.")
	var f watchFlags
	fs.IntVar(&f.watchers, "watchers", 1000, "watchers on the prefix")
	fs.Float64Var(&f.rate, "rate", 20, "the writer's puts per second")
	fs.DurationVar(&f.duration, "duration", 10*time.Second, "how long the writer puts with the watchers")
	fs.DurationVar(&f.baseline, "baseline", 10*time.Second, "how long the writer puts alone first (0: no baseline)")
	fs.DurationVar(&f.settle, "settle", 10*time.Second, "after the writer stops, wait at most this long for the watchers to catch up")
	fs.IntVar(&f.conns, "conns", 16, "connections the watchers share (the writer has its own)")
	fs.IntVar(&f.valueSize, "value-size", 64, "bytes per value (at least 8: the send time)")
	fs.BoolVar(&f.json, "json", false, "print one JSON object instead of the text report")
	fs.BoolVar(&f.loadgenIdle, "loadgen-idle", true, "with --writer-process: while the writer puts with the watchers, run this process (the watchers) under SCHED_IDLE, so that it stands for clients on other machines rather than taking the CPU the members and the writer need")
	fs.BoolVar(&f.writerProcess, "writer-process", true, "run the writer in a process of its own, so that its latency is the cluster's, not this process's scheduling of the watchers (false: in this process)")
	f.t.register(fs)
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: bench watch: %s", cli.ErrUsage, fmt.Sprintf(format, args...))
	}
	switch {
	case fs.NArg() > 0:
		return bad("takes no arguments, got %q", fs.Args())
	case f.watchers < 1:
		return bad("--watchers must be at least 1, got %d", f.watchers)
	case f.conns < 1:
		return bad("--conns must be at least 1, got %d", f.conns)
	case !(f.rate > 0) || f.rate > 1e6:
		return bad("--rate must be a number of puts per second above 0 (at most 1000000), got %v", f.rate)
	case f.duration <= 0:
		return bad("--duration must be positive, got %s", f.duration)
	case f.rate*f.duration.Seconds() < 1:
		return bad("--rate %v schedules no put in --duration %s", f.rate, f.duration)
	case f.baseline < 0 || f.settle < 0:
		return bad("--baseline and --settle must not be negative")
	case f.valueSize < 8 || f.valueSize > benchValueSizeMax:
		return bad("--value-size must be between 8 and %d bytes, got %d", benchValueSizeMax, f.valueSize)
	}
	if err := f.t.validate(fs, bad); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	target, err := f.t.start(ctx)
	if err != nil {
		return err
	}
	defer target.stop(stderr)
	if !f.json {
		fmt.Fprintf(stdout, "bench watch: %d watchers over %d connections, a writer at %v puts/s for %s (baseline %s), on %s\n",
			f.watchers, min(f.conns, f.watchers), f.rate, f.duration, f.baseline, target.describe())
	}
	res, err := runWatch(ctx, &f, target, newLiveLine(stderr))
	if err != nil {
		return err
	}
	if f.json {
		return writeBenchJSON(stdout, res)
	}
	writeWatchReport(stdout, res)
	return nil
}

func runWatch(ctx context.Context, f *watchFlags, target *benchTarget, live *liveLine) (*watchResult, error) {
	res := &watchResult{Workload: "watch", Watchers: f.watchers, Rate: f.rate, DurationS: f.duration.Seconds()}
	// The load generator decodes every delivery and allocates for each:
	// at 200,000 a second its collector (GOGC 100) took a quarter of its
	// CPU, CPU the members on the same machine then lacked. It collects
	// less often here; the cluster's processes keep their own settings.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	lg0 := loadgenCPU()
	wpool, err := dialPool(ctx, &target.cf, 1)
	if err != nil {
		return nil, err
	}
	defer closePool(wpool)
	runID := benchRunID()
	w := &watchWriter{c: wpool[0], rate: f.rate, valueSize: f.valueSize, timeout: target.cf.Timeout}

	// 1. The writer alone.
	res.WriterProcess = f.writerProcess
	res.LoadgenIdle = f.writerProcess && f.loadgenIdle
	if f.baseline > 0 {
		m0 := target.markCPU()
		rep, err := runWriter(ctx, f, target, w, fmt.Sprintf("bench/%s/base/", runID), f.baseline, false, live)
		if err != nil {
			return nil, err
		}
		res.BaseCPU = spanOf(m0, target.markCPU())
		res.Baseline = &rep
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("interrupted: %w", err)
		}
	}

	// 2. The watchers, from the marker's revision.
	pool, err := dialPool(ctx, &target.cf, min(f.conns, f.watchers))
	if err != nil {
		return nil, err
	}
	defer closePool(pool)
	res.Conns = len(pool)
	prefix := fmt.Sprintf("bench/%s/watch/", runID)
	// One request each first, as a real client makes before it watches:
	// the client then knows where the leader is, and keeps its watches
	// on the other members.
	for _, c := range pool {
		gctx, cancel := context.WithTimeout(ctx, target.cf.Timeout)
		_, err := c.Get(gctx, prefix+"ready")
		cancel()
		if err != nil && !errors.Is(err, client.ErrNotFound) {
			return nil, fmt.Errorf("a watchers' client's first request: %w", err)
		}
	}
	mctx, cancel := context.WithTimeout(ctx, target.cf.Timeout)
	markRev, err := w.c.Put(mctx, prefix+"ready", nil)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("putting the watchers' start marker: %w", err)
	}
	wctx, stopWatchers := context.WithCancel(ctx)
	defer stopWatchers()
	ws := &watchSet{prefix: prefix, ws: make([]*benchWatcher, f.watchers)}
	setup0 := time.Now()
	var wg sync.WaitGroup
	for i := range ws.ws {
		bw := &benchWatcher{lag: &ws.lag[i%watchLagShards]}
		ws.ws[i] = bw
		events, errf := pool[i%len(pool)].Watch(wctx, prefix, client.WithPrefix(), client.WithRevision(markRev))
		wg.Add(1)
		go func() {
			defer wg.Done()
			ws.consume(bw, events)
			if err := errf(); err != nil && wctx.Err() == nil {
				bw.failed.Store(true)
				ws.setErr(err)
			}
		}()
	}
	stopLive := liveProgress(live, func() string {
		return fmt.Sprintf("starting watchers: %d/%d watching", ws.ready(), f.watchers)
	})
	for ws.ready() < f.watchers {
		if ws.failed() > 0 {
			stopLive()
			return nil, fmt.Errorf("a watch ended before it started: %v", ws.err())
		}
		if time.Since(setup0) > max(time.Minute, target.cf.Timeout) {
			stopLive()
			return nil, fmt.Errorf("%w: only %d of %d watchers watching after %s", client.ErrTimeout, ws.ready(), f.watchers, time.Since(setup0).Round(time.Second))
		}
		if err := benchSleep(ctx, 20*time.Millisecond); err != nil {
			stopLive()
			return nil, fmt.Errorf("interrupted: %w", err)
		}
	}
	stopLive()
	res.WatchSetupS = round3(time.Since(setup0).Seconds())

	// 3. The writer with the watchers.
	m0 := target.markCPU()
	del0 := ws.deliveries()
	res.Writer, err = runWriter(ctx, f, target, w, prefix+"p/", f.duration, true, live)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("interrupted: %w", err)
	}

	// 4. Until every watcher has the last acknowledged put.
	last := w.maxRev.Load()
	settleEnd := time.Now().Add(f.settle)
	for ws.behind(last) > 0 && time.Now().Before(settleEnd) && ws.failed() < f.watchers {
		if err := benchSleep(ctx, 10*time.Millisecond); err != nil {
			return nil, fmt.Errorf("interrupted: %w", err)
		}
	}
	m1 := target.markCPU()
	res.WatchersBehind = ws.behind(last)
	stopWatchers()
	wg.Wait()
	res.Memory = target.memory()

	res.WatchCPU = spanOf(m0, m1)
	res.Puts, res.PutErrors = res.Writer.Puts, res.Writer.Errors
	res.LastError = w.lastErrString()
	res.Expected = uint64(f.watchers) * res.Puts
	for _, bw := range ws.ws {
		got := bw.seen.and(w.acked)
		res.Delivered += got
		res.Extra += bw.count - got
		res.Duplicates += bw.dups
		res.OutOfOrder += bw.outOfOrder
		if bw.failed.Load() {
			res.WatchersFailed++
		}
	}
	res.WatchError = ws.errString()
	if res.Expected > 0 {
		res.Fraction = float64(res.Delivered) / float64(res.Expected)
	}
	lag := &benchHist{}
	for i := range ws.lag {
		ws.lag[i].mu.Lock()
		lag.Merge(&ws.lag[i].h)
		ws.lag[i].mu.Unlock()
	}
	res.Lag = latencyOf(lag)
	deliveries := ws.deliveries() - del0
	res.DeliveriesPerS = round1(float64(deliveries) / m1.at.Sub(m0.at).Seconds())
	if res.WatchCPU != nil && deliveries > 0 {
		res.CPUPerDeliveryUs = round3(res.WatchCPU.Seconds / float64(deliveries) * 1e6)
	}
	if res.Baseline != nil && res.Baseline.Latency.P99 > 0 {
		res.P99Ratio = round3(res.Writer.Latency.P99 / res.Baseline.Latency.P99)
	}
	if lg := loadgenCPU(); lg >= 0 && lg0 >= 0 {
		res.LoadgenS = round3(lg - lg0 + res.Writer.ProcessCPUS) // and the writer's process
		if res.Baseline != nil {
			res.LoadgenS = round3(res.LoadgenS + res.Baseline.ProcessCPUS)
		}
	}
	return res, nil
}

// watchWriter is the one writer.
type watchWriter struct {
	c         *client.Client
	rate      float64
	valueSize int
	timeout   time.Duration
	// acked, if set, marks each acknowledged put N (the watch phase).
	acked  *bitmap
	ackMu  sync.Mutex
	maxRev atomic.Uint64 // the highest revision acknowledged

	mu      sync.Mutex
	lastErr error
}

// run puts prefix+N for d at w.rate, open loop, and reports.
func (w *watchWriter) run(ctx context.Context, prefix string, d time.Duration, live *liveLine) writerReport {
	var (
		mu         sync.Mutex
		hist       benchHist
		errs, puts atomic.Uint64
		wg         sync.WaitGroup
	)
	sem := make(chan struct{}, writerInFlight)
	begin := time.Now()
	end := begin.Add(d)
	stopLive := liveProgress(live, func() string {
		return fmt.Sprintf("writer at %v/s under %s: %.0fs/%.0fs, %d puts, %d failed", w.rate, prefix, time.Since(begin).Seconds(), d.Seconds(), puts.Load(), errs.Load())
	})
	for n := 0; ; n++ {
		at := begin.Add(time.Duration(float64(n) / w.rate * float64(time.Second)))
		if !at.Before(end) || benchSleep(ctx, time.Until(at)) != nil {
			break
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			value := make([]byte, w.valueSize)
			binary.BigEndian.PutUint64(value, uint64(time.Now().UnixNano()))
			pctx, cancel := context.WithTimeout(ctx, w.timeout)
			rev, err := w.c.Put(pctx, prefix+strconv.Itoa(n), value)
			cancel()
			took := time.Since(at)
			if err != nil {
				errs.Add(1)
				w.mu.Lock()
				w.lastErr = err
				w.mu.Unlock()
				return
			}
			puts.Add(1)
			mu.Lock()
			hist.Record(took)
			mu.Unlock()
			if w.acked != nil {
				w.ackMu.Lock()
				w.acked.set(n)
				w.ackMu.Unlock()
				for {
					m := w.maxRev.Load()
					if rev <= m || w.maxRev.CompareAndSwap(m, rev) {
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	stopLive()
	return writerReport{
		Puts: puts.Load(), Errors: errs.Load(), PutsPerS: round1(float64(puts.Load()) / time.Since(begin).Seconds()),
		Latency: latencyOf(&hist),
	}
}

func (w *watchWriter) lastErrString() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.lastErr == nil {
		return ""
	}
	return w.lastErr.Error()
}

func writeWatchReport(w io.Writer, r *watchResult) {
	fmt.Fprintf(w, "watchers: %d watching after %.2f s\n", r.Watchers, r.WatchSetupS)
	fmt.Fprintf(w, "delivered: %d of %d (%d puts x %d watchers), fraction %.6f; %d out of order, %d duplicates, %d of unacknowledged puts\n",
		r.Delivered, r.Expected, r.Puts, r.Watchers, r.Fraction, r.OutOfOrder, r.Duplicates, r.Extra)
	if r.WatchersBehind > 0 || r.WatchersFailed > 0 {
		fmt.Fprintf(w, "watchers: %d behind after the settle time, %d ended early (%s)\n", r.WatchersBehind, r.WatchersFailed, r.WatchError)
	}
	l := r.Lag
	fmt.Fprintf(w, "lag (put sent to event delivered): p50 %.2f ms, p90 %.2f, p99 %.2f, p99.9 %.2f, max %.2f; %.0f deliveries/s\n",
		l.P50, l.P90, l.P99, l.P999, l.Max, r.DeliveriesPerS)
	line := func(name string, wr writerReport) {
		fmt.Fprintf(w, "writer %-16s %6d puts (%d failed), %7.1f puts/s, p50 %.2f ms, p99 %.2f, p99.9 %.2f, max %.2f\n",
			name+":", wr.Puts, wr.Errors, wr.PutsPerS, wr.Latency.P50, wr.Latency.P99, wr.Latency.P999, wr.Latency.Max)
	}
	if r.Baseline != nil {
		line("alone", *r.Baseline)
	}
	line("with watchers", r.Writer)
	if r.P99Ratio > 0 {
		where := "in the bench's own process"
		if r.WriterProcess {
			where = "in a process of its own"
			if r.LoadgenIdle {
				where += "; the watchers under SCHED_IDLE meanwhile"
			}
		}
		fmt.Fprintf(w, "writer p99 with the watchers / alone: %.2f (the writer ran %s)\n", r.P99Ratio, where)
	}
	if r.WatchCPU != nil {
		base := ""
		if r.BaseCPU != nil {
			base = fmt.Sprintf(" (%.2f cores with the writer alone)", r.BaseCPU.Cores)
		}
		fmt.Fprintf(w, "members' CPU: %.2f cores%s, %.2f µs per delivery\n", r.WatchCPU.Cores, base, r.CPUPerDeliveryUs)
	}
	if r.Memory != nil {
		fmt.Fprintf(w, "members' RSS: %s MB (peak %s MB)\n", joinMB(r.Memory.RSSMB), joinMB(r.Memory.PeakMB))
	}
	fmt.Fprintf(w, "the load generator used %.1f s of CPU\n", r.LoadgenS)
}
