// Command etcdload is the etcd side of 'make bench-etcd'
// (scripts/bench-etcd.sh): the same put workload as 'paxosd bench put',
// against an etcd cluster through etcd's own Go client.
//
//	etcdload --endpoints 127.0.0.1:2379,... --preload --keys 1000000
//	etcdload --endpoints 127.0.0.1:2379,... --clients 64 --duration 60s --keys 1000000
//
// It lives in a module of its own so that the paxosd module does not
// depend on etcd's client (and its gRPC) for a benchmark tool.
//
// What it measures is what internal/bench measures for paxosd, on purpose:
// --clients goroutines share --conns connections (client i uses connection
// i mod conns; connection j dials endpoint j mod len(endpoints), as etcd's
// own benchmark tool spreads its connections), each puts a --value-size
// value of random bytes to a random one of --keys keys, closed loop, for
// --warmup and then --duration; an operation counts when it completes
// inside the measured window, and its latency is the Put call's own time.
// The percentiles come from paxosd's own histogram (internal/latency). The
// result is one JSON object on stdout, in the shape of 'paxosd bench put
// --json', so that the script reads both sides with one parser.
//
// --preload puts every key once, --clients at a time (a zero-filled value,
// as 'paxosd bench preload' writes), and prints its own JSON line.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"

	"flag"
	"fmt"
	"github.com/paxosd/paxosd/internal/latency"
	"io"
	"math"
	mrand "math/rand/v2"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

type config struct {
	endpoints  []string
	clients    int
	conns      int
	duration   time.Duration
	warmup     time.Duration
	timeout    time.Duration
	keys       int
	valueSize  int
	keyPrefix  string
	preload    bool
	leaderOnly bool
}

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "etcdload: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "etcdload: %v\n", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("etcdload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	var endpoints string
	fs.StringVar(&endpoints, "endpoints", "127.0.0.1:2379", "etcd client endpoints, comma-separated")
	fs.IntVar(&c.clients, "clients", 16, "concurrent clients, each one put at a time (--preload: concurrent puts)")
	fs.IntVar(&c.conns, "conns", 8, "gRPC connections the clients share")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "how long to measure")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "run this long first without measuring")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Second, "give up on connecting, and on one put, after this long")
	fs.IntVar(&c.keys, "keys", 1000, "distinct keys: --key-prefix0 .. --key-prefix<keys-1>")
	fs.IntVar(&c.valueSize, "value-size", 256, "bytes per value")
	fs.StringVar(&c.keyPrefix, "key-prefix", "bench/scale/key/", "the keys' common prefix (paxosd's bench preload and bench scale write bench/scale/key/N)")
	fs.BoolVar(&c.preload, "preload", false, "put every key once instead of the timed run")
	fs.BoolVar(&c.leaderOnly, "leader-only", false, "every connection dials the leader (default: connection j dials endpoint j mod len, as etcd's benchmark does)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: etcdload --endpoints HOST:PORT,... [--preload] [flags]")
		fmt.Fprintln(stderr, "\nPuts to an etcd cluster as 'paxosd bench put' does to paxosd; one JSON line on stdout.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	for _, e := range strings.Split(endpoints, ",") {
		if e = strings.TrimSpace(e); e != "" {
			c.endpoints = append(c.endpoints, e)
		}
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("takes no arguments, got %q", fs.Args())
	case len(c.endpoints) == 0:
		return nil, errors.New("--endpoints lists no endpoint")
	case c.clients < 1 || c.conns < 1:
		return nil, fmt.Errorf("--clients and --conns must be at least 1, got %d and %d", c.clients, c.conns)
	case c.keys < 1:
		return nil, fmt.Errorf("--keys must be at least 1, got %d", c.keys)
	case c.valueSize < 0:
		return nil, fmt.Errorf("--value-size must not be negative, got %d", c.valueSize)
	case c.duration <= 0 || c.warmup < 0 || c.timeout <= 0:
		return nil, errors.New("--duration and --timeout must be positive, --warmup not negative")
	}
	return &c, nil
}

func run(ctx context.Context, c *config, stdout, stderr io.Writer) error {
	pool, version, err := connect(ctx, c)
	defer func() {
		for _, cl := range pool {
			cl.Close()
		}
	}()
	if err != nil {
		return err
	}
	var res any
	if c.preload {
		res, err = preload(ctx, c, pool, stderr)
	} else {
		res, err = load(ctx, c, pool)
	}
	if err != nil {
		return err
	}
	if r, ok := res.(*result); ok {
		r.ServerVersion = version
	}
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", b)
	return err
}

// connect opens min(conns, clients) clients, each a gRPC connection to one
// endpoint, and checks that each answers a Status (clientv3.New does not
// wait for the connection). It returns the server's version from the
// first answer, for the record.
func connect(ctx context.Context, c *config) (pool []*clientv3.Client, version string, err error) {
	eps := c.endpoints
	if c.leaderOnly {
		leader, err := findLeader(ctx, c)
		if err != nil {
			return nil, "", err
		}
		eps = []string{leader}
	}
	n := min(c.conns, c.clients)
	if c.preload {
		n = min(c.conns, c.clients, c.keys)
	}
	for j := 0; j < n; j++ {
		ep := eps[j%len(eps)]
		cl, st, err := dial(ctx, ep, c.timeout)
		if err != nil {
			return pool, "", err
		}
		pool = append(pool, cl)
		if version == "" {
			version = st.Version
		}
	}
	return pool, version, nil
}

// dial connects to one endpoint and asks it for its status.
func dial(ctx context.Context, ep string, timeout time.Duration) (*clientv3.Client, *clientv3.StatusResponse, error) {
	// zap.NewNop: the client's own logging would interleave with the
	// script's output, and its errors come back from the calls anyway.
	cl, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: timeout, Logger: zap.NewNop()})
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to %s: %w", ep, err)
	}
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	st, err := cl.Status(sctx, ep)
	if err != nil {
		cl.Close()
		return nil, nil, fmt.Errorf("status of %s (is etcd running there?): %w", ep, err)
	}
	return cl, st, nil
}

// findLeader returns the endpoint whose member leads.
func findLeader(ctx context.Context, c *config) (string, error) {
	var errs []error
	for _, ep := range c.endpoints {
		cl, st, err := dial(ctx, ep, c.timeout)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cl.Close()
		if st.Header != nil && st.Leader != 0 && st.Header.MemberId == st.Leader {
			return ep, nil
		}
	}
	return "", fmt.Errorf("no endpoint of %s says it leads: %w", strings.Join(c.endpoints, ","), errors.Join(errs...))
}

func (c *config) key(k int) string { return fmt.Sprintf("%s%d", c.keyPrefix, k) }

type preloadResult struct {
	Workload   string  `json:"workload"` // "preload"
	Keys       int     `json:"keys"`
	ValueSize  int     `json:"value_size"`
	Seconds    float64 `json:"seconds"`
	KeysPerSec float64 `json:"keys_per_sec"`
}

// preload puts keys 0..keys-1 once each, --clients at a time, printing the
// progress every 5 s on stderr. It stops at the first failed put.
func preload(ctx context.Context, c *config, pool []*clientv3.Client, stderr io.Writer) (*preloadResult, error) {
	value := string(make([]byte, c.valueSize))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next, done atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for g := 0; g < min(c.clients, c.keys); g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := pool[g%len(pool)]
			for ctx.Err() == nil {
				k := int(next.Add(1) - 1)
				if k >= c.keys {
					return
				}
				octx, ocancel := context.WithTimeout(ctx, c.timeout)
				_, err := cl.Put(octx, c.key(k), value)
				ocancel()
				if err != nil {
					cancel(fmt.Errorf("preload: key %d: %w", k, err))
					return
				}
				done.Add(1)
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	last, lastAt := int64(0), start
	for waiting := true; waiting; {
		select {
		case <-finished:
			waiting = false
		case now := <-tick.C:
			n := done.Load()
			fmt.Fprintf(stderr, "etcd preload: %9d/%d keys (%5.1f%%)  %7.0f keys/s\n",
				n, c.keys, 100*float64(n)/float64(c.keys), float64(n-last)/now.Sub(lastAt).Seconds())
			last, lastAt = n, now
		}
	}
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	el := time.Since(start).Seconds()
	return &preloadResult{Workload: "preload", Keys: c.keys, ValueSize: c.valueSize,
		Seconds: round(el, 1), KeysPerSec: round(float64(c.keys)/el, 1)}, nil
}

// result has the fields of 'paxosd bench put --json' (internal/bench's
// benchResult) that a put run fills, and the server's version.
type result struct {
	Workload      string    `json:"workload"`
	Clients       int       `json:"clients"`
	Conns         int       `json:"conns"`
	DurationS     float64   `json:"duration_s"`
	ValueSize     int       `json:"value_size"`
	Ops           uint64    `json:"ops"`
	Errors        uint64    `json:"errors"`
	OpsPerSec     float64   `json:"ops_per_sec"`
	Latency       latencyMs `json:"latency_ms"`
	LastError     string    `json:"last_error,omitempty"`
	ServerVersion string    `json:"server_version,omitempty"`
}

type latencyMs struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// worker is one client's measurements; only its goroutine touches them
// until the run is over.
type worker struct {
	ops, errs uint64
	h         latency.Hist
	lastErr   error
}

// load is the timed put run (closed loop), measured as internal/bench's
// runner measures: [start, end) is the window, an operation counts by the
// time it completes, and no operation starts at or after end.
func load(ctx context.Context, c *config, pool []*clientv3.Client) (*result, error) {
	value := make([]byte, c.valueSize)
	_, _ = rand.Read(value)
	sval := string(value)
	begin := time.Now()
	start := begin.Add(c.warmup)
	end := start.Add(c.duration)
	workers := make([]worker, c.clients)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, cl := &workers[i], pool[i%len(pool)]
			for ctx.Err() == nil {
				started := time.Now()
				if !started.Before(end) {
					return
				}
				octx, cancel := context.WithTimeout(ctx, c.timeout)
				_, err := cl.Put(octx, c.key(mrand.IntN(c.keys)), sval)
				cancel()
				finished := time.Now()
				if finished.Before(start) || !finished.Before(end) {
					continue // warmup, or past the end
				}
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					w.errs++
					w.lastErr = err
					continue
				}
				w.h.Record(finished.Sub(started))
				w.ops++
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("interrupted: %w", err)
	}
	var h latency.Hist
	res := &result{Workload: "put", Clients: c.clients, Conns: len(pool), DurationS: c.duration.Seconds(), ValueSize: c.valueSize}
	for i := range workers {
		w := &workers[i]
		h.Merge(&w.h)
		res.Ops += w.ops
		res.Errors += w.errs
		if w.lastErr != nil {
			res.LastError = w.lastErr.Error()
		}
	}
	res.OpsPerSec = round(float64(res.Ops)/c.duration.Seconds(), 1)
	res.Latency = latencyMs{P50: ms(h.Quantile(0.5)), P90: ms(h.Quantile(0.9)), P99: ms(h.Quantile(0.99)),
		P999: ms(h.Quantile(0.999)), Max: ms(h.Max())}
	return res, nil
}

// ms converts a duration to milliseconds, rounded to the microsecond (as
// internal/bench reports them).
func ms(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 3) }

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}
