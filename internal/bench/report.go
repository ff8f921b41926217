package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/paxosd/paxosd/internal/cli"
)

// benchResult is one run's outcome, as the table row and the JSON object
// report it. Latencies are milliseconds.
type benchResult struct {
	Workload  string         `json:"workload"`
	Clients   int            `json:"clients"`
	Conns     int            `json:"conns"`
	DurationS float64        `json:"duration_s"`
	Rate      float64        `json:"rate,omitempty"` // the open-loop target; 0 = closed loop
	ValueSize int            `json:"value_size,omitempty"`
	Ops       uint64         `json:"ops"`
	Errors    uint64         `json:"errors"`
	OpsPerSec float64        `json:"ops_per_sec"`
	Latency   benchLatency   `json:"latency_ms"`
	Handover  *benchHandover `json:"handover_ms,omitempty"` // lock-contended only
	LastError string         `json:"last_error,omitempty"`
	Verify    *verifyResult  `json:"verify,omitempty"` // put --verify
}

type benchLatency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// benchHandover is, for lock-contended, the time from one holder's Unlock
// returning to the next holder's Lock returning.
type benchHandover struct {
	P50     float64 `json:"p50"`
	P99     float64 `json:"p99"`
	Max     float64 `json:"max"`
	Samples uint64  `json:"samples"`
}

// ms converts a duration to milliseconds, rounded to the microsecond.
func ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}

func latencyOf(h *benchHist) benchLatency {
	return benchLatency{
		P50:  ms(h.Quantile(0.50)),
		P90:  ms(h.Quantile(0.90)),
		P99:  ms(h.Quantile(0.99)),
		P999: ms(h.Quantile(0.999)),
		Max:  ms(h.Max()),
	}
}

// label is the workload as the table shows it, with the open-loop rate.
func (r *benchResult) label() string {
	if r.Rate > 0 {
		return fmt.Sprintf("%s @%.0f/s", r.Workload, r.Rate)
	}
	return r.Workload
}

// writeBenchTable prints results as one aligned table, latencies in ms.
func writeBenchTable(w io.Writer, results []*benchResult) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	width := len("WORKLOAD")
	for _, r := range results {
		width = max(width, len(r.label()))
	}
	fmt.Fprintf(tw, "%-*s\tCLIENTS\tCONNS\tOPS\tERRORS\tOPS/S\tP50 ms\tP90 ms\tP99 ms\tP99.9 ms\tMAX ms\tHANDOVER p50/p99 ms\t\n", width, "WORKLOAD")
	for _, r := range results {
		handover := "-"
		if r.Handover != nil {
			handover = fmt.Sprintf("%.2f / %.2f", r.Handover.P50, r.Handover.P99)
		}
		l := r.Latency
		fmt.Fprintf(tw, "%-*s\t%d\t%d\t%d\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t\n",
			width, r.label(), r.Clients, r.Conns, r.Ops, r.Errors, r.OpsPerSec, l.P50, l.P90, l.P99, l.P999, l.Max, handover)
	}
	return tw.Flush()
}

// intervalResult is one --interval line as JSON.
type intervalResult struct {
	Interval  int          `json:"interval"`
	FromS     float64      `json:"from_s"`
	ToS       float64      `json:"to_s"`
	Ops       uint64       `json:"ops"`
	Errors    uint64       `json:"errors"`
	OpsPerSec float64      `json:"ops_per_sec"`
	Latency   benchLatency `json:"latency_ms"`
}

func (s intervalStats) opsPerSec() float64 {
	return math.Round(float64(s.Hist.Count())/(s.To-s.From).Seconds()*10) / 10
}

// intervalPrinter prints each --interval to w as a line of a table (the
// header before the first), or as one JSON object.
func intervalPrinter(w io.Writer, asJSON bool) func(intervalStats) {
	return func(s intervalStats) {
		if asJSON {
			_ = writeBenchJSON(w, intervalResult{
				Interval: s.N + 1, FromS: s.From.Seconds(), ToS: s.To.Seconds(), Ops: s.Hist.Count(), Errors: s.Errors,
				OpsPerSec: s.opsPerSec(), Latency: latencyOf(s.Hist),
			})
			return
		}
		if s.N == 0 {
			fmt.Fprintf(w, "%9s %9s %8s %8s %8s %9s %9s %7s\n", "AT", "OPS", "OPS/S", "P50 ms", "P99 ms", "P99.9 ms", "MAX ms", "ERRORS")
		}
		l := latencyOf(s.Hist)
		fmt.Fprintf(w, "%9s %9d %8.0f %8.2f %8.2f %9.2f %9.2f %7d\n",
			clock(s.To), s.Hist.Count(), s.opsPerSec(), l.P50, l.P99, l.P999, l.Max, s.Errors)
	}
}

// clock formats an elapsed time as m:ss (h:mm:ss from an hour on).
func clock(d time.Duration) string {
	d = d.Round(time.Second)
	h, m, sec := int(d/time.Hour), int(d%time.Hour/time.Minute), int(d%time.Minute/time.Second)
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, sec)
	}
	return fmt.Sprintf("%d:%02d", m, sec)
}

// writeBenchJSON prints one JSON object per line.
func writeBenchJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// liveLine rewrites one status line on a terminal once a second.
type liveLine struct {
	w    io.Writer
	on   bool
	mu   sync.Mutex // a progress goroutine shows while the bench prints
	last int        // length of the last line, to blank what is left of it
}

func newLiveLine(w io.Writer) *liveLine { return &liveLine{w: w, on: cli.IsTerminal(w)} }

func (l *liveLine) show(format string, args ...any) {
	if !l.on {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	s := fmt.Sprintf(format, args...)
	pad := max(l.last-len(s), 0)
	fmt.Fprintf(l.w, "\r%s%*s", s, pad, "")
	l.last = len(s)
}

// clear blanks the line so that what is printed next starts clean.
func (l *liveLine) clear() {
	if !l.on {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == 0 {
		return
	}
	fmt.Fprintf(l.w, "\r%*s\r", l.last, "")
	l.last = 0
}
