package main

// The command line of 'paxosd bench' (internal/bench): its usage errors
// exit 2 with one line, and the failover test runs the built binary.

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

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
		{[]string{"bench", "put", "--interval", "10ms"}, "--interval must be 0 (off) or at least 1s"},
		{[]string{"bench", "scale", "--keys", "0"}, "--keys must be at least 1"},
		{[]string{"bench", "scale", "--clients", "64,0"}, "--clients must be at least 1"},
		{[]string{"bench", "scale", "--interval", "0s"}, "--interval must be at least 1s"},
		{[]string{"bench", "scale", "--duration", "3m", "--outage", "3m"}, "--outage 3m0s must be shorter than --duration 3m0s"},
		{[]string{"bench", "scale", "--outage", "-1s"}, "--outage must not be negative"},
		{[]string{"bench", "fsync", "--count", "0"}, "--count must be at least 1"},
		{[]string{"bench", "rtt", "--size", "0"}, "--size must be between"},
		{[]string{"bench", "sessions", "--sessions", "0"}, "--sessions must be at least 1"},
		{[]string{"bench", "sessions", "--ttl", "100ms"}, "--ttl must be between"},
		{[]string{"bench", "sessions", "--pids", "12"}, "--pids goes with --endpoints"},
		{[]string{"bench", "sessions", "--endpoints", "a:1", "--dir", "/tmp"}, "not with --endpoints"},
		{[]string{"bench", "churn", "--workers", "0"}, "--workers must be at least 1"},
		{[]string{"bench", "churn", "--cacert", "ca.pem"}, "go with --endpoints"},
		{[]string{"bench", "churn", "--interval", "1s", "--json"}, "leave it out with --json"},
		{[]string{"bench", "watch", "--rate", "0"}, "--rate must be"},
		{[]string{"bench", "watch", "--value-size", "4"}, "--value-size must be between 8"},
		{[]string{"bench", "watch", "--rate", "0.1", "--duration", "1s"}, "schedules no put"},
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
	var res struct {
		Ops         uint64 `json:"ops"`
		Unavailable struct {
			Max float64 `json:"max"`
		} `json:"unavailable_ms"`
		PerRound []struct {
			Killed  uint32 `json:"killed"`
			Resumed bool   `json:"resumed"`
		} `json:"per_round"`
	}
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

// TestBenchScale runs the scale run small: its own 3 processes, 300 keys,
// two put runs of 2 s with a line a second, a follower restarted.
func TestBenchScale(t *testing.T) {
	if testing.Short() {
		t.Skip("builds paxosd and runs three processes")
	}
	bin := buildBinary(t)
	dir := filepath.Join(t.TempDir(), "scale")
	var out, errb bytes.Buffer
	args := []string{"bench", "scale", "--paxosd", bin, "--dir", dir, "--keys", "300", "--preload-clients", "16",
		"--clients", "2,4", "--duration", "2s", "--interval", "1s", "--warmup", "0s", "--clean"}
	if code := run(args, &out, &errb); code != 0 {
		t.Fatalf("paxosd %s: exit %d: %s\n%s", strings.Join(args, " "), code, errb.String(), out.String())
	}
	s := out.String()
	for _, re := range []string{
		`preload: 300 keys in `,
		`(?m)^ +AT +OPS/S .*RSS MB \(node 1/2/3\) +DATA MB \(node 1/2/3\) +CPU ms/put$`,
		`(?m)^ +0:02 +\d+ +[\d.]+ .* \d+/\d+/\d+ +\d+/\d+/\d+ +[\d.]+$`,
		`(?m)^ +put +4 +`,
		`restart: node [12] serving again after [\d.]+ s`,
	} {
		if !regexp.MustCompile(re).MatchString(s) {
			t.Errorf("output does not match %s:\n%s", re, s)
		}
	}
}

// TestBenchScaleOutage runs the outage run small: a follower down for the
// first 2 s of a 5 s run with a snapshot every 50 slots, so that it
// rejoins by a snapshot transfer.
func TestBenchScaleOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds paxosd and runs three processes")
	}
	bin := buildBinary(t)
	dir := filepath.Join(t.TempDir(), "scale")
	var out, errb bytes.Buffer
	args := []string{"bench", "scale", "--paxosd", bin, "--dir", dir, "--keys", "300", "--preload-clients", "16",
		"--clients", "4", "--duration", "5s", "--interval", "1s", "--warmup", "0s", "--outage", "2s", "--restart=false",
		"--serve-flags", "--snapshot-entries 50 --snapshot-keep-entries 10", "--clean"}
	if code := run(args, &out, &errb); code != 0 {
		t.Fatalf("paxosd %s: exit %d: %s\n%s", strings.Join(args, " "), code, errb.String(), out.String())
	}
	s := out.String()
	for _, re := range []string{
		`(?m)^ +AT +OPS/S .*CPU ms/put +%NORMAL +PHASE$`,
		`(?m)^ +0:01 +\d+ .* +\d+% +node [12] down$`,
		`(?m) node [12] (.* > )?caught up$`,
		`outage: node [12] stopped \(SIGTERM`,
		`outage: node [12] caught up at `,
		`throughput before the outage: +\d+ ops/s`,
		`throughput during the catch-up: +\d+ ops/s`,
		`restart to caught up: +[\d.]+ s`,
		`node [12] peak RSS after restart: +\d+ MB until caught up, \d+ MB until the run's end; bound 2 x live \+ 150 MiB = 150 MB: ok`,
		`rejoined by snapshot: yes`,
		`(?m)^ +put\+outage +4 +`,
		`(?m)^ +[123] +\d+ +150  ok$`,
	} {
		if !regexp.MustCompile(re).MatchString(s) {
			t.Errorf("output does not match %s:\n%s", re, s)
		}
	}
}

// TestBenchSessionsChurnWatch runs the sessions, churn and watch benches
// tiny, each on its own 3 processes, and checks their JSON reports: no
// session lost, every churn cycle done, every event delivered in order.
func TestBenchSessionsChurnWatch(t *testing.T) {
	if testing.Short() {
		t.Skip("builds paxosd and runs three processes per bench")
	}
	bin := buildBinary(t)
	runJSON := func(t *testing.T, v any, args ...string) string {
		t.Helper()
		args = append(args, "--paxosd", bin, "--dir", t.TempDir(), "--json")
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 0 {
			t.Fatalf("paxosd %s: exit %d: %s\n%s", strings.Join(args, " "), code, errb.String(), out.String())
		}
		if err := json.Unmarshal(out.Bytes(), v); err != nil {
			t.Fatalf("output is not one JSON object: %v\n%s", err, out.String())
		}
		return out.String()
	}
	type cpu struct {
		Seconds float64 `json:"cpu_s"`
		Cores   float64 `json:"cpu_cores"`
	}
	type memory struct {
		RSS []float64 `json:"rss_mb"`
	}
	t.Run("sessions", func(t *testing.T) {
		var res struct {
			Opened, Closed   int
			OpensPerSec      float64              `json:"opens_per_sec"`
			LostByClient     int                  `json:"lost_by_client"`
			ExpiredByCluster int                  `json:"expired_by_cluster"`
			ExpiredUnnoticed int                  `json:"expired_unnoticed"`
			HoldMembers      *cpu                 `json:"hold_members"`
			Memory           *memory              `json:"members_memory"`
			PerInterval      []struct{ Live int } `json:"per_interval"`
		}
		out := runJSON(t, &res, "bench", "sessions", "--sessions", "200", "--conns", "8", "--hold", "2s", "--interval", "1s")
		if res.Opened != 200 || res.Closed != 200 || res.OpensPerSec <= 0 || res.LostByClient != 0 || res.ExpiredByCluster != 0 ||
			res.ExpiredUnnoticed != 0 || res.HoldMembers == nil || res.Memory == nil || len(res.Memory.RSS) != 3 || res.Memory.RSS[0] <= 0 ||
			len(res.PerInterval) != 2 || res.PerInterval[1].Live != 200 {
			t.Errorf("report %s", out)
		}
	})
	t.Run("churn", func(t *testing.T) {
		var res struct {
			Ops, Errors uint64
			Latency     struct{ P50, P99, Max float64 } `json:"latency_ms"`
			Members     *cpu                            `json:"members"`
			CPUPerCycle float64                         `json:"members_cpu_ms_per_cycle"`
		}
		out := runJSON(t, &res, "bench", "churn", "--workers", "8", "--duration", "1500ms", "--warmup", "300ms")
		if res.Ops == 0 || res.Errors != 0 || res.Latency.P50 <= 0 || res.Latency.P99 < res.Latency.P50 || res.Members == nil || res.CPUPerCycle <= 0 {
			t.Errorf("report %s", out)
		}
	})
	t.Run("watch", func(t *testing.T) {
		type writer struct {
			Puts, Errors uint64
			Latency      struct{ P99 float64 } `json:"latency_ms"`
		}
		var res struct {
			Puts, Expected, Delivered, Duplicates uint64
			OutOfOrder                            uint64                     `json:"out_of_order"`
			Fraction                              float64                    `json:"delivered_fraction"`
			Lag                                   struct{ P50, P99 float64 } `json:"lag_ms"`
			Baseline                              *writer                    `json:"writer_baseline"`
			Writer                                writer
			CPUPerDelivery                        float64 `json:"members_cpu_us_per_delivery"`
			WriterProcess                         bool    `json:"writer_process"`
		}
		out := runJSON(t, &res, "bench", "watch", "--watchers", "20", "--conns", "4", "--rate", "20", "--duration", "2s", "--baseline", "1s")
		if res.Puts < 30 || res.Writer.Errors != 0 || res.Expected != 20*res.Puts || res.Delivered != res.Expected || res.Fraction != 1 ||
			res.Duplicates != 0 || res.OutOfOrder != 0 || res.Lag.P50 <= 0 || res.Lag.P99 < res.Lag.P50 ||
			res.Baseline == nil || res.Baseline.Puts < 15 || res.Writer.Latency.P99 <= 0 || res.CPUPerDelivery <= 0 || !res.WriterProcess {
			t.Errorf("report %s", out)
		}
	})
}
