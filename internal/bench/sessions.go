package bench

// sessions.go is 'paxosd bench sessions': open --sessions sessions, each
// kept alive by the Go client library (a keep-alive every TTL/3), hold them
// for --hold, and count the ones lost.
//
// A session is lost two ways, and both are counted. The client declares it
// lost (Session.Done) when no keep-alive was acknowledged for TTL less its
// margin, or when the cluster answered a keep-alive with "session
// expired". The cluster expires it when no keep-alive reached its leader
// for the TTL: at the end of the hold the bench lists the cluster's
// sessions, and each of its own that the list lacks was expired. A session
// the cluster expired while its client still held it alive breaks the
// client's guarantee (docs/SESSIONS.md: the client declares a session lost
// before the cluster can expire it) and is counted apart.

import (
	"context"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/internal/cli"
)

type sessionsFlags struct {
	sessions int
	ttl      time.Duration
	hold     time.Duration
	conns    int
	parallel int
	interval time.Duration
	json     bool
	t        targetFlags
}

// sessionsResult is the JSON report.
type sessionsResult struct {
	Workload  string  `json:"workload"`
	Sessions  int     `json:"sessions"`
	TTLS      float64 `json:"ttl_s"`
	HoldS     float64 `json:"hold_s"`
	Conns     int     `json:"conns"`
	Opened    int     `json:"opened"`
	OpenFails uint64  `json:"open_errors"`
	OpensPerS float64 `json:"opens_per_sec"`
	// OpenLatency is each NewSession call's time.
	OpenLatency benchLatency `json:"open_latency_ms"`
	// LostByClient: sessions their client declared lost (Session.Done with
	// an error) by the end of the hold.
	LostByClient int `json:"lost_by_client"`
	// LostToldExpired: of those, the ones the cluster answered "session
	// expired" (to a keep-alive); the others ran out of time waiting for an
	// acknowledged keep-alive.
	LostToldExpired int `json:"lost_told_expired"`
	// ExpiredByCluster: opened sessions the cluster's list lacks at the
	// end of the hold (-1: the list could not be read, ListError says why).
	ExpiredByCluster int `json:"expired_by_cluster"`
	// ExpiredUnnoticed: of those, the ones their client still held alive
	// after the list was read (the client's guarantee broken).
	ExpiredUnnoticed int    `json:"expired_unnoticed"`
	ListError        string `json:"list_error,omitempty"`
	Closed           int    `json:"closed"`
	CloseErrors      int    `json:"close_errors"`
	// LostClosing: sessions their client declared lost after the hold,
	// before they could be closed.
	LostClosing    int     `json:"lost_while_closing"`
	LastCloseError string  `json:"last_close_error,omitempty"`
	ClosesPerS     float64 `json:"closes_per_sec"`
	// The members' CPU while opening and while holding, and their memory
	// at the end of the hold (absent when no member process is known).
	OpenCPU  *cpuSpan      `json:"open_members,omitempty"`
	HoldCPU  *cpuSpan      `json:"hold_members,omitempty"`
	Memory   *memoryReport `json:"members_memory,omitempty"`
	LoadgenS float64       `json:"loadgen_cpu_s"`
	// LoadgenStallMs: the longest the load generator went unscheduled
	// during the hold (beyond a 100 ms sleep): keep-alives are that late.
	LoadgenStallMs float64 `json:"loadgen_max_stall_ms"`
	// PerInterval is the hold, one entry per --interval.
	PerInterval []sessionsInterval `json:"per_interval,omitempty"`
	LastError   string             `json:"last_error,omitempty"`
}

type sessionsInterval struct {
	AtS      float64   `json:"at_s"`
	Live     int       `json:"live"`
	Lost     int       `json:"lost_by_client"`
	CPUCores *float64  `json:"members_cpu_cores,omitempty"`
	RSSMB    []float64 `json:"rss_mb,omitempty"`
}

func cmdBenchSessions(args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlags("bench sessions", "paxosd bench sessions [--sessions 10000] [--ttl 10s] [--hold 30s] [--conns 64]\n\n"+
		"Opens --sessions sessions over --conns connections, keeps them alive with the Go\n"+
		"client's keep-alives for --hold, and reports the opens per second, the sessions\n"+
		"lost (declared lost by the client, and expired by the cluster: missing from its\n"+
		"session list at the end), the members' CPU and RSS. By default it starts its own\n"+
		"three 'paxosd serve' processes; --endpoints loads a running cluster.")
	var f sessionsFlags
	fs.IntVar(&f.sessions, "sessions", 10000, "sessions to open and hold")
	fs.DurationVar(&f.ttl, "ttl", 10*time.Second, "the sessions' TTL")
	fs.DurationVar(&f.hold, "hold", 30*time.Second, "how long to hold them once all are open")
	fs.IntVar(&f.conns, "conns", 64, "connections the sessions share (each one client.Client)")
	fs.IntVar(&f.parallel, "parallel", 256, "sessions opened at a time")
	fs.DurationVar(&f.interval, "interval", 10*time.Second, "one line (one per_interval entry) per interval of the hold: live, lost, members' CPU and RSS")
	fs.BoolVar(&f.json, "json", false, "print one JSON object instead of the text report")
	f.t.register(fs)
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: bench sessions: %s", cli.ErrUsage, fmt.Sprintf(format, args...))
	}
	switch {
	case fs.NArg() > 0:
		return bad("takes no arguments, got %q", fs.Args())
	case f.sessions < 1:
		return bad("--sessions must be at least 1, got %d", f.sessions)
	case f.ttl < client.TTLMin || f.ttl > client.TTLMax:
		return bad("--ttl must be between %s and %s, got %s", client.TTLMin, client.TTLMax, f.ttl)
	case f.hold <= 0:
		return bad("--hold must be positive, got %s", f.hold)
	case f.conns < 1 || f.parallel < 1:
		return bad("--conns and --parallel must be at least 1")
	case f.interval < time.Second:
		return bad("--interval must be at least 1s, got %s", f.interval)
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
		fmt.Fprintf(stdout, "bench sessions: %d sessions of TTL %s over %d connections, held %s, on %s\n",
			f.sessions, f.ttl, min(f.conns, f.sessions), f.hold, target.describe())
	}
	res, err := runSessions(ctx, &f, target, stdout, newLiveLine(stderr))
	if err != nil {
		return err
	}
	if res.OpenFails > 0 {
		fmt.Fprintf(stderr, "paxosd bench sessions: %d opens failed; the last: %s\n", res.OpenFails, res.LastError)
	}
	if f.json {
		return writeBenchJSON(stdout, res)
	}
	writeSessionsReport(stdout, res)
	return nil
}

func runSessions(ctx context.Context, f *sessionsFlags, target *benchTarget, stdout io.Writer, live *liveLine) (*sessionsResult, error) {
	res := &sessionsResult{Workload: "sessions", Sessions: f.sessions, TTLS: f.ttl.Seconds(), HoldS: f.hold.Seconds()}
	pool, err := dialPool(ctx, &target.cf, min(f.conns, f.sessions))
	if err != nil {
		return nil, err
	}
	defer closePool(pool)
	res.Conns = len(pool)
	lg0 := loadgenCPU()

	// Open.
	ss := make([]*client.Session, f.sessions)
	var (
		mu      sync.Mutex
		hist    benchHist
		lastErr error
		fails   atomic.Uint64
		opened  atomic.Int64
	)
	stopLive := liveProgress(live, func() string {
		return fmt.Sprintf("opening sessions: %d/%d, %d failed", opened.Load(), f.sessions, fails.Load())
	})
	m0 := target.markCPU()
	_ = benchParallel(ctx, f.sessions, min(f.sessions, f.parallel), func(ctx context.Context, i int) error {
		octx, cancel := context.WithTimeout(ctx, target.cf.Timeout)
		t0 := time.Now()
		s, err := pool[i%len(pool)].NewSession(octx, f.ttl)
		took := time.Since(t0)
		cancel()
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			fails.Add(1)
			lastErr = err
			return nil
		}
		hist.Record(took)
		ss[i] = s
		opened.Add(1)
		return nil
	})
	m1 := target.markCPU()
	stopLive()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("interrupted: %w", err)
	}
	res.Opened = int(opened.Load())
	res.OpenFails = fails.Load()
	if lastErr != nil {
		res.LastError = lastErr.Error()
	}
	res.OpensPerS = round1(float64(res.Opened) / m1.at.Sub(m0.at).Seconds())
	res.OpenLatency = latencyOf(&hist)
	res.OpenCPU = spanOf(m0, m1)
	if res.Opened == 0 {
		return nil, fmt.Errorf("no session could be opened: %s", res.LastError)
	}
	if !f.json {
		fmt.Fprintf(stdout, "open: %d sessions in %.2f s, %.0f opens/s, p99 %.2f ms\n", res.Opened, m1.at.Sub(m0.at).Seconds(), res.OpensPerS, res.OpenLatency.P99)
		fmt.Fprintf(stdout, "%7s %9s %9s %11s  %s\n", "AT", "LIVE", "LOST", "CPU cores", "RSS MB (each member)")
	}

	// Hold, a line per interval.
	lostNow := func() int {
		n := 0
		for _, s := range ss {
			if s == nil {
				continue
			}
			select {
			case <-s.Done():
				n++
			default:
			}
		}
		return n
	}
	holdStart := time.Now()
	holdEnd := holdStart.Add(f.hold)
	stopLive = liveProgress(live, func() string {
		return fmt.Sprintf("holding %d sessions: %.0fs/%.0fs, %d lost", res.Opened, time.Since(holdStart).Seconds(), f.hold.Seconds(), lostNow())
	})
	stopStall := startStallWatch()
	last := target.markCPU()
	for next := holdStart.Add(f.interval); ; next = next.Add(f.interval) {
		if next.After(holdEnd) {
			next = holdEnd
		}
		if err := benchSleep(ctx, time.Until(next)); err != nil {
			stopLive()
			stopStall()
			return nil, fmt.Errorf("interrupted: %w", err)
		}
		now := target.markCPU()
		lost := lostNow()
		iv := sessionsInterval{AtS: round1(now.at.Sub(holdStart).Seconds()), Live: res.Opened - lost, Lost: lost}
		if sp := spanOf(last, now); sp != nil {
			iv.CPUCores = &sp.Cores
		}
		if mem := target.memory(); mem != nil {
			iv.RSSMB = mem.RSSMB
		}
		last = now
		res.PerInterval = append(res.PerInterval, iv)
		if !f.json {
			live.clear()
			cores := "-"
			if iv.CPUCores != nil {
				cores = fmt.Sprintf("%.2f", *iv.CPUCores)
			}
			fmt.Fprintf(stdout, "%7s %9d %9d %11s  %s\n", clock(now.at.Sub(holdStart)), iv.Live, iv.Lost, cores, joinMB(iv.RSSMB))
		}
		if !next.Before(holdEnd) {
			break
		}
	}
	stopLive()
	res.LoadgenStallMs = ms(stopStall())
	res.HoldCPU = spanOf(m1, target.markCPU())
	res.Memory = target.memory()

	// What the cluster still has, then what the clients still hold.
	res.ExpiredByCluster, res.ExpiredUnnoticed = -1, 0
	lctx, cancel := context.WithTimeout(ctx, max(target.cf.Timeout, 30*time.Second))
	list, err := pool[0].Sessions(lctx)
	cancel()
	if err != nil {
		res.ListError = err.Error()
	} else {
		have := make(map[uint64]bool, len(list))
		for _, s := range list {
			have[s.ID] = true
		}
		res.ExpiredByCluster = 0
		for _, s := range ss {
			if s != nil && !have[s.ID()] {
				res.ExpiredByCluster++
				select {
				case <-s.Done():
				default:
					res.ExpiredUnnoticed++
				}
			}
		}
	}
	lostAtEnd := make([]bool, len(ss))
	for i, s := range ss {
		if s == nil || s.Err() == nil {
			continue
		}
		lostAtEnd[i] = true
		res.LostByClient++
		// The client says which way it lost the session only in the
		// message (client/session.go, keepAlive).
		if strings.Contains(s.Err().Error(), "the cluster expired") {
			res.LostToldExpired++
		}
	}

	// Close what is left.
	var closed, closeErrs, lostClosing atomic.Int64
	var closeErr atomic.Value
	stopLive = liveProgress(live, func() string { return fmt.Sprintf("closing sessions: %d", closed.Load()) })
	c0 := time.Now()
	_ = benchParallel(ctx, len(ss), min(len(ss), f.parallel), func(ctx context.Context, i int) error {
		s := ss[i]
		if s == nil || s.Err() != nil {
			if s != nil && !lostAtEnd[i] {
				lostClosing.Add(1)
			}
			return nil
		}
		cctx, cancel := context.WithTimeout(ctx, target.cf.Timeout)
		defer cancel()
		if err := s.Close(cctx); err != nil {
			closeErrs.Add(1)
			closeErr.Store(err.Error())
			return nil
		}
		closed.Add(1)
		return nil
	})
	stopLive()
	res.Closed, res.CloseErrors, res.LostClosing = int(closed.Load()), int(closeErrs.Load()), int(lostClosing.Load())
	if e, ok := closeErr.Load().(string); ok {
		res.LastCloseError = e
	}
	res.ClosesPerS = round1(float64(res.Closed) / time.Since(c0).Seconds())
	if lg := loadgenCPU(); lg >= 0 && lg0 >= 0 {
		res.LoadgenS = round3(lg - lg0)
	}
	return res, nil
}

func writeSessionsReport(w io.Writer, r *sessionsResult) {
	expired := fmt.Sprint(r.ExpiredByCluster)
	switch {
	case r.ExpiredByCluster < 0:
		expired = "unknown (listing the sessions: " + r.ListError + ")"
	case r.ExpiredUnnoticed > 0:
		expired += fmt.Sprintf(" (%d of them still alive to their client: the client's guarantee broken)", r.ExpiredUnnoticed)
	}
	fmt.Fprintf(w, "lost: %d declared lost by the client (%d told so by the cluster, %d for want of an acknowledged keep-alive), %s expired by the cluster\n",
		r.LostByClient, r.LostToldExpired, r.LostByClient-r.LostToldExpired, expired)
	if r.OpenCPU != nil && r.HoldCPU != nil {
		fmt.Fprintf(w, "members' CPU: %.2f cores while opening, %.2f cores while holding (%.1f s over %.0f s)\n",
			r.OpenCPU.Cores, r.HoldCPU.Cores, r.HoldCPU.Seconds, r.HoldS)
	}
	if r.Memory != nil {
		fmt.Fprintf(w, "members' RSS at the end of the hold: %s MB (peak %s MB)\n", joinMB(r.Memory.RSSMB), joinMB(r.Memory.PeakMB))
	}
	fmt.Fprintf(w, "close: %d sessions, %.0f closes/s", r.Closed, r.ClosesPerS)
	if r.LostClosing > 0 {
		fmt.Fprintf(w, "; %d lost by the client before their close", r.LostClosing)
	}
	if r.CloseErrors > 0 {
		fmt.Fprintf(w, "; %d failed, the last: %s", r.CloseErrors, r.LastCloseError)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "the load generator used %.1f s of CPU; its longest stall during the hold %.0f ms\n", r.LoadgenS, r.LoadgenStallMs)
}

// joinMB formats each member's MiB as 1/2/3 ("-" unknown).
func joinMB(xs []float64) string {
	if len(xs) == 0 {
		return "-"
	}
	s := ""
	for i, x := range xs {
		if i > 0 {
			s += "/"
		}
		if x < 0 {
			s += "-"
		} else {
			s += fmt.Sprintf("%.0f", x)
		}
	}
	return s
}

func round1(x float64) float64 { return float64(int64(x*10+0.5)) / 10 }

// liveProgress shows what line says on the live line once a second until
// the returned stop is called.
func liveProgress(live *liveLine, line func() string) (stop func()) {
	if !live.on {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				live.show("%s", line())
			}
		}
	}()
	return func() {
		close(done)
		<-finished
		live.clear()
	}
}
