package service

import (
	"math"
	"time"
)

// The status page's throughput and latency history. The loop feeds a
// rateRecorder (commands applied, latencies of the calls it answered) and
// closes a sample about once a second from its tick, with the time the tick
// carries: like everything in the loop it reads no clock of its own, so the
// simulation drives it on simulated time. Prometheus has the same figures
// as counters and histograms; this keeps a few minutes of them in the node
// so that the page needs nothing but the node.

const (
	// rateHistorySeconds is how much history the page shows.
	rateHistorySeconds = 300
	// rateWindowSeconds is the span of the summary figures (ops/s, p50,
	// p99): the last minute.
	rateWindowSeconds = 60
	// latencyBucketsPerDoubling sets the histogram's resolution: a bucket
	// spans a factor 2^(1/4), so a quantile reported at its geometric
	// middle is within about 9% of the truth.
	latencyBucketsPerDoubling = 4
	// latencyBuckets covers 1 µs to 2^24 µs (about 17 s); slower answers
	// land in the last bucket.
	latencyBuckets = 24 * latencyBucketsPerDoubling
)

// latencyHist counts latencies by bucket: bucket i holds those in
// [2^(i/4), 2^((i+1)/4)) µs (bucket 0 also everything below 1 µs).
type latencyHist [latencyBuckets]uint32

func latencyBucket(d time.Duration) int {
	us := float64(d) / float64(time.Microsecond)
	if us <= 1 || math.IsNaN(us) {
		return 0
	}
	return min(int(latencyBucketsPerDoubling*math.Log2(us)), latencyBuckets-1)
}

func (h *latencyHist) add(o *latencyHist) {
	for i, c := range o {
		h[i] += c
	}
}

func (h *latencyHist) count() uint64 {
	var n uint64
	for _, c := range h {
		n += uint64(c)
	}
	return n
}

// quantile returns the q-quantile (0 < q <= 1) in milliseconds, as the
// geometric middle of the bucket it falls in; false if h is empty.
func (h *latencyHist) quantile(q float64) (float64, bool) {
	total := h.count()
	if total == 0 {
		return 0, false
	}
	rank := uint64(math.Ceil(q * float64(total)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h {
		if seen += uint64(c); seen >= rank {
			us := math.Exp2((float64(i) + 0.5) / latencyBucketsPerDoubling)
			return us / 1000, true
		}
	}
	return 0, false // unreachable: rank <= total
}

// rateSample is what happened between start and end (about a second; more
// if the loop stalled between two ticks).
type rateSample struct {
	start, end time.Time
	ops        uint64 // client commands applied
	lat        latencyHist
}

// rateRecorder keeps the last rateHistorySeconds samples. Owned by the
// loop.
type rateRecorder struct {
	cur  rateSample
	ring []rateSample // allocated at the first sample; oldest at head once full
	head int
}

// applied counts k client commands applied.
func (r *rateRecorder) applied(k int) { r.cur.ops += uint64(k) }

// observe records the latency of one answered call.
func (r *rateRecorder) observe(d time.Duration) { r.cur.lat[latencyBucket(d)]++ }

// tick closes the current sample if a second has passed since it started.
func (r *rateRecorder) tick(now time.Time) {
	switch {
	case r.cur.start.IsZero():
		r.cur.start = now
		return
	case now.Sub(r.cur.start) < time.Second:
		return
	}
	r.cur.end = now
	if len(r.ring) < rateHistorySeconds {
		r.ring = append(r.ring, r.cur)
	} else {
		r.ring[r.head] = r.cur
		r.head = (r.head + 1) % rateHistorySeconds
	}
	r.cur = rateSample{start: now}
}

// samples returns the closed samples, oldest first.
func (r *rateRecorder) samples() []rateSample {
	out := make([]rateSample, 0, len(r.ring))
	out = append(out, r.ring[r.head:]...)
	return append(out, r.ring[:r.head]...)
}

// pageRates is the throughput and latency part of the status page.
type pageRates struct {
	// WindowSeconds is the span of the summary figures, ending at the last
	// closed sample.
	WindowSeconds int `json:"window_seconds"`
	// OpsPerSec is the rate at which this node applied client commands
	// (every member applies every command: the cluster's throughput).
	OpsPerSec float64 `json:"ops_per_sec"`
	// Answered counts the calls this node answered from the log in the
	// window; P50Ms and P99Ms are their latencies, from arrival at this
	// node to its answer (null when there were none).
	Answered uint64   `json:"answered"`
	P50Ms    *float64 `json:"p50_ms"`
	P99Ms    *float64 `json:"p99_ms"`
	// Samples are the last few minutes, one a second, oldest first.
	Samples []pageSample `json:"samples"`
}

// pageSample is one second of history.
type pageSample struct {
	EndUnixMs int64    `json:"t"`
	OpsPerSec float64  `json:"ops_per_sec"`
	P50Ms     *float64 `json:"p50_ms"`
	P99Ms     *float64 `json:"p99_ms"`
}

// view summarizes the history for the page.
func (r *rateRecorder) view() pageRates {
	ss := r.samples()
	v := pageRates{WindowSeconds: rateWindowSeconds, Samples: make([]pageSample, len(ss))}
	for i, s := range ss {
		v.Samples[i] = pageSample{EndUnixMs: s.end.UnixMilli(), OpsPerSec: perSecond(s.ops, s.end.Sub(s.start))}
		v.Samples[i].P50Ms, v.Samples[i].P99Ms = quantiles(&s.lat)
	}
	if len(ss) == 0 {
		return v
	}
	from := ss[len(ss)-1].end.Add(-rateWindowSeconds * time.Second)
	var (
		ops  uint64
		span time.Duration
		lat  latencyHist
	)
	for i := len(ss) - 1; i >= 0 && !ss[i].start.Before(from); i-- {
		ops += ss[i].ops
		span += ss[i].end.Sub(ss[i].start)
		lat.add(&ss[i].lat)
	}
	v.OpsPerSec = perSecond(ops, span)
	v.Answered = lat.count()
	v.P50Ms, v.P99Ms = quantiles(&lat)
	return v
}

func perSecond(n uint64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return math.Round(float64(n)/d.Seconds()*10) / 10
}

func quantiles(h *latencyHist) (p50, p99 *float64) {
	q := func(x float64) *float64 {
		v, ok := h.quantile(x)
		if !ok {
			return nil
		}
		v = math.Round(v*1000) / 1000
		return &v
	}
	return q(0.5), q(0.99)
}
