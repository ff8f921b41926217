package main

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/paxosd/paxosd/service/servicetest"
)

// refQuantile is the reference: the nearest-rank q-quantile of sorted xs.
func refQuantile(sorted []time.Duration, q float64) time.Duration {
	rank := int(math.Ceil(q * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// TestBenchHistQuantiles compares the histogram's percentiles with a
// sorted slice's, over distributions from nanoseconds to minutes: each must
// be within the bucket precision (1/128 of the value).
func TestBenchHistQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dists := map[string]func() time.Duration{
		"constant":    func() time.Duration { return 3 * time.Millisecond },
		"tiny":        func() time.Duration { return time.Duration(rng.IntN(300)) },
		"uniform":     func() time.Duration { return time.Duration(rng.Int64N(int64(50 * time.Millisecond))) },
		"exponential": func() time.Duration { return time.Duration(rng.ExpFloat64() * float64(2*time.Millisecond)) },
		"lognormal": func() time.Duration {
			return time.Duration(math.Exp(rng.NormFloat64()*3 + math.Log(float64(time.Millisecond))))
		},
		"bimodal": func() time.Duration {
			if rng.IntN(100) == 0 {
				return time.Duration(rng.Int64N(int64(time.Minute)))
			}
			return time.Duration(rng.Int64N(int64(time.Millisecond)))
		},
	}
	for name, gen := range dists {
		for _, n := range []int{1, 2, 7, 1000, 100000} {
			var h benchHist
			xs := make([]time.Duration, n)
			for i := range xs {
				xs[i] = gen()
				h.Record(xs[i])
			}
			slices.Sort(xs)
			if h.Count() != uint64(n) {
				t.Fatalf("%s n=%d: Count %d", name, n, h.Count())
			}
			for _, q := range []float64{0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 1} {
				got, want := h.Quantile(q), refQuantile(xs, q)
				if diff := math.Abs(float64(got - want)); diff > float64(want)/128+1 {
					t.Errorf("%s n=%d: q%v = %v, sorted slice says %v", name, n, q, got, want)
				}
			}
			if h.Max() != xs[n-1] {
				t.Errorf("%s n=%d: Max %v, want %v", name, n, h.Max(), xs[n-1])
			}
		}
	}
}

// TestBenchHistMerge: merging histograms equals recording everything in one.
func TestBenchHistMerge(t *testing.T) {
	var all, a, b, empty benchHist
	if empty.Quantile(0.5) != 0 || empty.Max() != 0 || empty.Mean() != 0 {
		t.Fatal("an empty histogram reports values")
	}
	for i := 1; i <= 5000; i++ {
		d := time.Duration(i*i) * time.Microsecond
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(&b)
	a.Merge(&empty)
	for _, q := range []float64{0.5, 0.99, 1} {
		if a.Quantile(q) != all.Quantile(q) {
			t.Errorf("q%v: merged %v, single %v", q, a.Quantile(q), all.Quantile(q))
		}
	}
	if a.Count() != all.Count() || a.Mean() != all.Mean() {
		t.Errorf("merged count/mean %d/%v, single %d/%v", a.Count(), a.Mean(), all.Count(), all.Mean())
	}
	var neg benchHist
	neg.Record(-time.Second)
	if neg.Max() != 0 {
		t.Errorf("a negative duration is recorded as %v, want 0", neg.Max())
	}
}

// TestBenchOutage: the unavailability of a failover round is the longest
// gap from the last acknowledgement before the kill on.
func TestBenchOutage(t *testing.T) {
	at := func(ms ...int) []time.Time {
		base := time.Unix(1000, 0)
		out := make([]time.Time, len(ms))
		for i, m := range ms {
			out[i] = base.Add(time.Duration(m) * time.Millisecond)
		}
		return out
	}
	base := time.Unix(1000, 0)
	kill := base.Add(100 * time.Millisecond)
	now := base.Add(5 * time.Second)
	for _, tc := range []struct {
		acks    []time.Time
		want    time.Duration
		resumed bool
	}{
		{at(90, 98, 600, 602, 604), 502 * time.Millisecond, true},
		// A put committed before the kill, acknowledged just after it by a
		// follower, must not hide the outage that follows.
		{at(90, 98, 101, 700, 702), 599 * time.Millisecond, true},
		{at(90, 98), now.Sub(base.Add(98 * time.Millisecond)), false},
		{nil, now.Sub(kill), false},
	} {
		got, resumed := benchOutage(tc.acks, kill, now)
		if got != tc.want || resumed != tc.resumed {
			t.Errorf("acks %v: outage %v resumed %v, want %v %v", tc.acks, got, resumed, tc.want, tc.resumed)
		}
	}
	if got := nearestRank([]float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.5); got != 5 {
		t.Errorf("p50 of 1..10 = %v, want 5", got)
	}
}

// TestBenchUsageErrors: bad flags are usage errors (exit 2, one line),
// found before anything connects.
func TestBenchUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bench"}, "bench needs a workload"},
		{[]string{"bench", "nope"}, `unknown workload "nope"`},
		{[]string{"bench", "--clients", "4", "put"}, "the workload comes first"},
		{[]string{"bench", "put", "extra"}, "takes no arguments"},
		{[]string{"bench", "put", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"bench", "put", "--clients", "0"}, "--clients must be at least 1"},
		{[]string{"bench", "put", "--conns", "0"}, "--conns must be at least 1"},
		{[]string{"bench", "put", "--duration", "0s"}, "--duration must be positive"},
		{[]string{"bench", "put", "--warmup", "-1s"}, "--warmup must not be negative"},
		{[]string{"bench", "put", "--value-size", "-1"}, "--value-size must be between"},
		{[]string{"bench", "put", "--keys", "0"}, "--keys must be at least 1"},
		{[]string{"bench", "put", "--rate", "-5"}, "--rate must be"},
		{[]string{"bench", "put", "--rate", "NaN"}, "--rate must be"},
		{[]string{"bench", "put", "--rate", "0.01", "--duration", "1s"}, "schedules no operation"},
		{[]string{"bench", "put", "--endpoints", " , "}, "--endpoints lists no endpoint"},
		{[]string{"bench", "lock", "--session-ttl", "10ms"}, "--session-ttl must be between"},
		{[]string{"bench", "lock-contended", "--clients", "1"}, "--clients must be at least 2"},
		{[]string{"bench", "suite", "--clients", "4"}, "unknown flag: --clients"},
		{[]string{"bench", "failover", "--rounds", "0"}, "--rounds must be at least 1"},
		{[]string{"bench", "failover", "--endpoints", "a:1,b:2,c:3"}, "--endpoints needs --kill-cmd and --start-cmd"},
		{[]string{"bench", "failover", "--kill-cmd", "kill {id}"}, "go together"},
		{[]string{"bench", "failover", "--kill-cmd", "kill", "--start-cmd", "start {id}"}, "with {id} or {addr}"},
		{[]string{"bench", "failover", "--kill-cmd", "k {id}", "--start-cmd", "s {id}", "--endpoints", "a:1"}, "every node"},
		{[]string{"bench", "fsync", "--count", "0"}, "--count must be at least 1"},
		{[]string{"bench", "rtt", "--size", "0"}, "--size must be between"},
	} {
		var out, errb bytes.Buffer
		code := run(tc.args, &out, &errb)
		msg := errb.String()
		if code != 2 || !strings.Contains(msg, tc.want) || strings.Count(msg, "\n") != 1 {
			t.Errorf("paxosd %s: exit %d, stderr %q; want exit 2 and one line with %q", strings.Join(tc.args, " "), code, msg, tc.want)
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"bench", "--help"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "lock-contended") {
		t.Errorf("paxosd bench --help: exit %d, stdout %q", code, out.String())
	}
}

// benchTestCluster runs three in-process nodes (no fsync) and returns
// their endpoints.
func benchTestCluster(t *testing.T) string {
	t.Helper()
	return strings.Join(servicetest.Start(t, 3).Endpoints, ",")
}

// TestBenchWorkloads runs each load workload for a second against an
// in-process cluster and checks the JSON report. It asserts nothing about
// speed: performance is what 'paxosd bench' shows, never a test.
func TestBenchWorkloads(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	eps := benchTestCluster(t)
	for _, tc := range []struct {
		workload string
		extra    []string
	}{
		{"put", []string{"--clients", "8", "--conns", "2"}},
		{"put", []string{"--clients", "4", "--rate", "200"}},
		{"get", []string{"--clients", "4", "--keys", "50"}},
		{"lock", []string{"--clients", "4"}},
		{"lock-contended", []string{"--clients", "4"}},
		{"campaign", []string{"--clients", "2"}},
	} {
		t.Run(tc.workload, func(t *testing.T) {
			args := append([]string{"bench", tc.workload, "--endpoints", eps, "--duration", "1s", "--warmup", "200ms", "--json", "--timeout", "10s"}, tc.extra...)
			var out, errb bytes.Buffer
			if code := run(args, &out, &errb); code != 0 {
				t.Fatalf("paxosd %s: exit %d: %s", strings.Join(args, " "), code, errb.String())
			}
			var res struct {
				Workload  string             `json:"workload"`
				Clients   int                `json:"clients"`
				Ops       uint64             `json:"ops"`
				Errors    *uint64            `json:"errors"`
				OpsPerSec float64            `json:"ops_per_sec"`
				LatencyMs map[string]float64 `json:"latency_ms"`
				Handover  map[string]float64 `json:"handover_ms"`
			}
			if err := json.Unmarshal(out.Bytes(), &res); err != nil {
				t.Fatalf("output is not one JSON object: %v\n%s", err, out.String())
			}
			if res.Workload != tc.workload || res.Ops == 0 || res.Errors == nil || res.OpsPerSec <= 0 || res.Clients == 0 {
				t.Errorf("report %s", out.String())
			}
			for _, k := range []string{"p50", "p90", "p99", "p999", "max"} {
				if _, ok := res.LatencyMs[k]; !ok {
					t.Errorf("latency_ms has no %s: %s", k, out.String())
				}
			}
			if res.LatencyMs["p50"] > res.LatencyMs["p99"] || res.LatencyMs["p99"] > res.LatencyMs["max"] {
				t.Errorf("percentiles out of order: %s", out.String())
			}
			if _, ok := res.Handover["p50"]; ok != (tc.workload == "lock-contended") {
				t.Errorf("handover_ms present: %v, want it for lock-contended only: %s", ok, out.String())
			}
		})
	}
	// The table form.
	var out, errb bytes.Buffer
	if code := run([]string{"bench", "put", "--endpoints", eps, "--duration", "300ms", "--warmup", "0s", "--clients", "2"}, &out, &errb); code != 0 {
		t.Fatalf("bench put: exit %d: %s", code, errb.String())
	}
	if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 2 || !strings.Contains(lines[0], "P99.9") {
		t.Errorf("table:\n%s", out.String())
	}
}

// TestBenchMachine: fsync and rtt run and report.
func TestBenchMachine(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "fsync", "--dir", t.TempDir(), "--count", "5", "--json"},
		{"bench", "rtt", "--count", "50", "--json"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 0 {
			t.Fatalf("paxosd %s: exit %d: %s", strings.Join(args, " "), code, errb.String())
		}
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			var f benchFloor
			if err := json.Unmarshal([]byte(line), &f); err != nil || f.Ops == 0 {
				t.Errorf("paxosd %s: line %q (%v)", strings.Join(args, " "), line, err)
			}
		}
	}
}

// TestBenchFailover kills the leader of its own 3-process cluster twice.
func TestBenchFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("builds paxosd and runs three processes")
	}
	bin := buildBinary(t)
	var out, errb bytes.Buffer
	args := []string{"bench", "failover", "--rounds", "2", "--settle", "300ms", "--paxosd", bin, "--json"}
	if code := run(args, &out, &errb); code != 0 {
		t.Fatalf("paxosd %s: exit %d: %s", strings.Join(args, " "), code, errb.String())
	}
	var res failoverResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, out.String())
	}
	if len(res.PerRound) != 2 || res.Ops == 0 || res.Unavailable.Max <= 0 {
		t.Errorf("report %s", out.String())
	}
	for _, r := range res.PerRound {
		if !r.Resumed || r.Killed == 0 {
			t.Errorf("round %+v", r)
		}
	}
}
