package bench

// runner.go drives one load workload: the clients' loops, the live line,
// the --interval lines and the result (see the package comment for what is
// measured).

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paxosd/paxosd/client"
)

// benchWorkload is one kind of load. setup runs before the clock starts
// (sessions, initial keys), op is one operation by client i, teardown
// releases what setup took. op is called by client i's goroutine only.
type benchWorkload interface {
	setup(ctx context.Context, r *benchRunner) error
	op(ctx context.Context, i int) error
	teardown(ctx context.Context)
}

// benchRunner runs one workload and collects the measurements.
type benchRunner struct {
	name    string
	f       *benchFlags
	runID   string           // names this run's keys, locks and elections
	pool    []*client.Client // the shared connections
	value   []byte           // the value puts write
	wl      benchWorkload
	workers []*benchWorker

	// The run: operations start at begin; [start, end) is measured.
	begin, start, end time.Time
	// Open loop: the next schedule slot, and the time between slots.
	nextSlot atomic.Int64
	interval float64 // nanoseconds
	// onInterval, if set, is given each --interval of the measured window.
	onInterval func(intervalStats)
}

// benchWorker is one client's measurements. The client's goroutine
// records; the live line reads.
type benchWorker struct {
	ops, errs atomic.Uint64 // in the measured window
	all       atomic.Uint64 // every completed operation, warmup included (live line)
	ivErrs    atomic.Uint64 // in the current --interval
	mu        sync.Mutex
	hist      benchHist
	iv        benchHist // the current --interval's latencies
	lastErr   error
}

// clientOf returns the connection client i uses.
func (r *benchRunner) clientOf(i int) *client.Client { return r.pool[i%len(r.pool)] }

// name returns a run-unique name for a key, lock or election.
func (r *benchRunner) nameOf(kind string, i int) string {
	return fmt.Sprintf("bench/%s/%s/%d", r.runID, kind, i)
}

// runBench runs workload; onInterval, if not nil, is given every
// --interval (f.interval > 0) of the measured window as it ends.
func runBench(ctx context.Context, workload string, f *benchFlags, live *liveLine, onInterval func(intervalStats)) (*benchResult, error) {
	r := &benchRunner{name: workload, f: f, runID: f.runID, wl: benchLoads[workload](), onInterval: onInterval}
	if r.runID == "" {
		r.runID = benchRunID()
	}
	if f.interval <= 0 {
		r.onInterval = nil
	}
	r.value = make([]byte, f.valueSize)
	_, _ = rand.Read(r.value)
	if err := r.connect(ctx); err != nil {
		return nil, err
	}
	defer func() {
		for _, c := range r.pool {
			c.Close()
		}
	}()
	// Setup may open hundreds of sessions or write thousands of keys: it
	// gets more time than one operation.
	sctx, cancel := context.WithTimeout(ctx, max(f.cf.Timeout, 30*time.Second))
	err := r.wl.setup(sctx, r)
	cancel()
	defer func() {
		tctx, cancel := context.WithTimeout(context.Background(), max(f.cf.Timeout, 10*time.Second))
		r.wl.teardown(tctx)
		cancel()
	}()
	if err != nil {
		return nil, fmt.Errorf("preparing the %s workload: %w", workload, err)
	}
	r.workers = make([]*benchWorker, f.clients)
	for i := range r.workers {
		r.workers[i] = &benchWorker{}
	}
	if f.rate > 0 {
		r.interval = float64(time.Second) / f.rate
	}
	r.begin = time.Now()
	r.start = r.begin.Add(f.warmup)
	r.end = r.start.Add(f.duration)
	if f.onStart != nil {
		f.onStart(r)
	}
	var wg sync.WaitGroup
	for i := range r.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.loop(ctx, i)
		}()
	}
	done := make(chan struct{})
	liveDone := make(chan struct{})
	go func() {
		defer close(liveDone)
		r.monitor(live, done)
	}()
	wg.Wait()
	close(done)
	<-liveDone
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("interrupted: %w", err)
	}
	res := r.result()
	if pw, ok := r.wl.(*putWorkload); ok && pw.v != nil {
		vctx, cancel := context.WithTimeout(ctx, max(f.cf.Timeout, 5*time.Minute))
		vr := pw.v.check(vctx, r)
		cancel()
		res.Verify = &vr
	}
	return res, nil
}

// benchRunID is a short random name for this run.
func benchRunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// connect opens the --conns connections (at most one per client), spread
// over the endpoints (dialPool).
func (r *benchRunner) connect(ctx context.Context) error {
	pool, err := dialPool(ctx, &r.f.cf, min(r.f.conns, r.f.clients))
	r.pool = pool
	return err
}

// findLeaderEndpoint returns the index of the endpoint whose node says it
// leads.
func findLeaderEndpoint(ctx context.Context, eps []string, clusterID string) (int, error) {
	for {
		for i, m := range client.Unconnected(client.Config{Endpoints: eps, ClusterID: clusterID}).Status(ctx) {
			if m.Err == nil && m.Status.Role == "leader" {
				return i, nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%w: no endpoint of %s says it leads", client.ErrUnavailable, strings.Join(eps, ","))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// loop is client i: operations until the run ends.
func (r *benchRunner) loop(ctx context.Context, i int) {
	w := r.workers[i]
	for ctx.Err() == nil {
		started := time.Now()
		if r.interval > 0 {
			slot := r.nextSlot.Add(1) - 1
			started = r.begin.Add(time.Duration(float64(slot) * r.interval))
			if !started.Before(r.end) {
				return
			}
			if d := time.Until(started); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return
				}
			}
		} else if !started.Before(r.end) {
			return
		}
		octx, cancel := context.WithTimeout(ctx, r.f.cf.Timeout)
		err := r.wl.op(octx, i)
		cancel()
		finished := time.Now()
		if err == nil {
			w.all.Add(1)
		}
		if finished.Before(r.start) || !finished.Before(r.end) {
			continue // warmup, or past the end
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			w.mu.Lock()
			w.lastErr = err
			w.mu.Unlock()
			w.errs.Add(1)
			w.ivErrs.Add(1)
			continue
		}
		w.mu.Lock()
		w.hist.Record(finished.Sub(started))
		if r.onInterval != nil {
			w.iv.Record(finished.Sub(started))
		}
		w.mu.Unlock()
		w.ops.Add(1)
	}
}

// completed returns the operations that succeeded so far, the warmup's
// included.
func (r *benchRunner) completed() uint64 {
	var all uint64
	for _, w := range r.workers {
		all += w.all.Load()
	}
	return all
}

// merged returns every client's latencies together, and the totals.
func (r *benchRunner) merged() (h *benchHist, ops, errs uint64, lastErr error) {
	h = &benchHist{}
	for _, w := range r.workers {
		w.mu.Lock()
		h.Merge(&w.hist)
		if w.lastErr != nil {
			lastErr = w.lastErr
		}
		w.mu.Unlock()
		ops += w.ops.Load()
		errs += w.errs.Load()
	}
	return h, ops, errs, lastErr
}

// monitor updates the live line once a second, and reports each
// --interval as it ends, until done (then the last, partial, interval).
// The live line shows the rate of the last second, and the p99 and errors
// of the measured window so far.
func (r *benchRunner) monitor(live *liveLine, done <-chan struct{}) {
	defer live.clear()
	var tickC <-chan time.Time
	if live.on {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		tickC = tick.C
	}
	// The --interval boundaries: interval n is [start+n*iv, start+(n+1)*iv).
	var ivC <-chan time.Time
	n, ivFrom := 0, r.start
	boundary := func() time.Time { return r.start.Add(time.Duration(n+1) * r.f.interval) }
	if r.onInterval != nil {
		ivTimer := time.NewTimer(time.Until(boundary()))
		defer ivTimer.Stop()
		ivC = ivTimer.C
		defer func() {
			// The last interval, partial if --duration is not a multiple.
			end := r.end
			if now := time.Now(); now.Before(end) {
				end = now // interrupted
			}
			if end.After(ivFrom) {
				live.clear()
				r.onInterval(r.takeInterval(n, ivFrom, end))
			}
		}()
	}
	var lastAll uint64
	lastAt := r.begin
	label := fmt.Sprintf("%s, %d clients", r.name, r.f.clients)
	for {
		select {
		case <-done:
			return
		case <-ivC:
			to := boundary()
			if !to.Before(r.end) {
				continue // the last interval is reported when done
			}
			live.clear()
			r.onInterval(r.takeInterval(n, ivFrom, to))
			n, ivFrom = n+1, to
			ivC = time.After(time.Until(boundary()))
		case now := <-tickC:
			var all uint64
			for _, w := range r.workers {
				all += w.all.Load()
			}
			rate := float64(all-lastAll) / now.Sub(lastAt).Seconds()
			lastAll, lastAt = all, now
			if now.Before(r.start) {
				live.show("%s  warming up, %.0fs left  %8.0f ops/s", label, r.start.Sub(now).Seconds(), rate)
				continue
			}
			h, _, errs, _ := r.merged()
			elapsed := min(now.Sub(r.start), r.f.duration)
			p99 := "      -"
			if h.Count() > 0 {
				p99 = fmt.Sprintf("%7.2f", ms(h.Quantile(0.99)))
			}
			live.show("%s  %3.0fs/%.0fs  %8.0f ops/s  p99 %s ms  errors %d",
				label, elapsed.Seconds(), r.f.duration.Seconds(), rate, p99, errs)
		}
	}
}

// intervalStats is one --interval of a run: [From, To) of the measured
// window.
type intervalStats struct {
	N        int // 0, 1, ...
	From, To time.Duration
	Errors   uint64
	Hist     *benchHist // the operations that completed in it
}

// takeInterval collects, and resets, every client's current interval.
func (r *benchRunner) takeInterval(n int, from, to time.Time) intervalStats {
	s := intervalStats{N: n, From: from.Sub(r.start), To: to.Sub(r.start), Hist: &benchHist{}}
	for _, w := range r.workers {
		w.mu.Lock()
		s.Hist.Merge(&w.iv)
		w.iv = benchHist{}
		w.mu.Unlock()
		s.Errors += w.ivErrs.Swap(0)
	}
	return s
}

func (r *benchRunner) result() *benchResult {
	h, ops, errs, lastErr := r.merged()
	res := &benchResult{
		Workload:  r.name,
		Clients:   r.f.clients,
		Conns:     len(r.pool),
		DurationS: r.f.duration.Seconds(),
		Rate:      r.f.rate,
		Ops:       ops,
		Errors:    errs,
		OpsPerSec: math.Round(float64(ops)/r.f.duration.Seconds()*10) / 10,
		Latency:   latencyOf(h),
	}
	if r.name == "put" || r.name == "get" {
		res.ValueSize = r.f.valueSize
	}
	if lastErr != nil {
		res.LastError = lastErr.Error()
	}
	if hw, ok := r.wl.(interface{ handover(*benchRunner) *benchHist }); ok {
		if hh := hw.handover(r); hh.Count() > 0 {
			res.Handover = &benchHandover{
				P50: ms(hh.Quantile(0.5)), P99: ms(hh.Quantile(0.99)), Max: ms(hh.Max()), Samples: hh.Count(),
			}
		}
	}
	return res
}
