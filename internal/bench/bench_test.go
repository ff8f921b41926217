package bench

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
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
			args := append([]string{tc.workload, "--endpoints", eps, "--duration", "1s", "--warmup", "200ms", "--json", "--timeout", "10s"}, tc.extra...)
			var out, errb bytes.Buffer
			if err := Command(args, &out, &errb); err != nil {
				t.Fatalf("paxosd bench %s: %v: %s", strings.Join(args, " "), err, errb.String())
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
	if err := Command([]string{"put", "--endpoints", eps, "--duration", "300ms", "--warmup", "0s", "--clients", "2"}, &out, &errb); err != nil {
		t.Fatalf("bench put: %v: %s", err, errb.String())
	}
	if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 2 || !strings.Contains(lines[0], "P99.9") {
		t.Errorf("table:\n%s", out.String())
	}
	// --interval: a line per interval (the last one partial), then the table.
	out.Reset()
	if err := Command([]string{"put", "--endpoints", eps, "--duration", "2500ms", "--warmup", "0s", "--clients", "2", "--interval", "1s"}, &out, &errb); err != nil {
		t.Fatalf("bench put --interval: %v: %s", err, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 6 || !strings.Contains(lines[0], "OPS/S") || !strings.HasPrefix(strings.TrimSpace(lines[1]), "0:01 ") ||
		!strings.HasPrefix(strings.TrimSpace(lines[3]), "0:03 ") || !strings.Contains(lines[4], "WORKLOAD") {
		t.Errorf("intervals and table:\n%s", out.String())
	}
}

// TestBenchMachine: fsync and rtt run and report.
func TestBenchMachine(t *testing.T) {
	for _, args := range [][]string{
		{"fsync", "--dir", t.TempDir(), "--count", "5", "--json"},
		{"rtt", "--count", "50", "--json"},
	} {
		var out, errb bytes.Buffer
		if err := Command(args, &out, &errb); err != nil {
			t.Fatalf("paxosd bench %s: %v: %s", strings.Join(args, " "), err, errb.String())
		}
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			var f benchFloor
			if err := json.Unmarshal([]byte(line), &f); err != nil || f.Ops == 0 {
				t.Errorf("paxosd bench %s: line %q (%v)", strings.Join(args, " "), line, err)
			}
		}
	}
}

// TestScaleStats: the /proc readers and the data directory's size.
func TestScaleStats(t *testing.T) {
	stat := "4242 (paxosd serve (x)) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 150 0 0 20 0 12 0 100 0 0"
	if got := parseStatCPU(stat); got != 4.0 {
		t.Errorf("parseStatCPU = %v, want 4 (250+150 ticks)", got)
	}
	if got := parseStatCPU("garbage"); got != -1 {
		t.Errorf("parseStatCPU(garbage) = %v, want -1", got)
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, n := range map[string]int{"x": 1000, "a/y": 24} {
		if err := os.WriteFile(filepath.Join(dir, name), make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := dirSize(dir); got != 1024 {
		t.Errorf("dirSize = %d, want 1024", got)
	}
	if runtime.GOOS == "linux" {
		if rss, cpu := procRSS(os.Getpid()), procCPU(os.Getpid()); rss <= 0 || cpu < 0 {
			t.Errorf("own process: RSS %d, CPU %v", rss, cpu)
		}
	}
	// --dir: an earlier run's files are removed, anything else refused.
	for _, name := range []string{"node1", "node2.log", "node3.pid"} {
		if err := os.WriteFile(filepath.Join(dir, "a", name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := prepareScaleDir(filepath.Join(dir, "a")); err == nil {
		t.Error("prepareScaleDir removed a directory holding a stranger (y)")
	}
	os.Remove(filepath.Join(dir, "a", "y"))
	if err := prepareScaleDir(filepath.Join(dir, "a")); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "a")); len(entries) != 0 {
		t.Errorf("prepareScaleDir left %d entries", len(entries))
	}
}

// TestScaleOutagePhases: the outage run's phase column, the median of its
// intervals and the live data its RSS bound counts.
func TestScaleOutagePhases(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	var zero time.Time
	for _, tc := range []struct {
		from, to         float64
		down, up, caught time.Time
		want             string
	}{
		{0, 15, zero, zero, zero, "normal"},
		{0, 15, at(0.01), zero, zero, "node 2 down"},
		{0, 15, at(20), zero, zero, "normal"},
		{0, 15, at(5), zero, zero, "normal > node 2 down"},
		{45, 60, at(0), at(60), zero, "node 2 down"},
		{60, 75, at(0), at(60), zero, "node 2 catching up"},
		{60, 75, at(0), at(60), at(70), "node 2 catching up > caught up"},
		{45, 60, at(0), at(50), at(55), "node 2 down > catching up > caught up"},
		{60, 75, at(0), at(60.05), at(65), "node 2 catching up > caught up"},
		{60, 75, at(0), at(60.05), at(60.5), "node 2 catching up > caught up"},
		{0, 15, at(0), at(0.5), zero, "node 2 catching up"},
		{0, 1, at(0.003), zero, zero, "node 2 down"},
		{1, 2, at(0.003), at(2.004), zero, "node 2 down"},
		{2, 3, at(0.003), at(2.004), at(2.5), "node 2 catching up > caught up"},
		{75, 90, at(0), at(60), at(70), "node 2 caught up"},
	} {
		if got := phaseLabel(2, at(tc.from), at(tc.to), tc.down, tc.up, tc.caught); got != tc.want {
			t.Errorf("phaseLabel [%v, %v) down %v up %v caught %v = %q, want %q", tc.from, tc.to, tc.down, tc.up, tc.caught, got, tc.want)
		}
	}
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median = %v", m)
	}
	if m := median([]float64{4, 1, 2, 3}); m != 2.5 {
		t.Errorf("median = %v", m)
	}
	// bench/scale/key/0..9: 17 bytes each, 10..99: 18.
	if got, want := scaleLiveBytes(100, 10), int64(10*(17+10)+90*(18+10)); got != want {
		t.Errorf("scaleLiveBytes = %d, want %d", got, want)
	}
	if got := scaleRSSBound(1 << 20); got != 152<<20 {
		t.Errorf("scaleRSSBound = %d", got)
	}
}
