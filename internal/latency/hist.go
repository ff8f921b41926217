// Package latency holds the histogram the load generators record their
// operations' latencies in: paxosd bench, and tools/etcdload (which measures
// etcd the same way for the side-by-side runs).
package latency

import (
	"math"
	"math/bits"
	"time"
)

// Hist is a log-linear histogram of durations (HdrHistogram's layout,
// much simplified): values below 2^histSubBits nanoseconds each have their
// own bucket; above that, every power of two is split into histHalf equal
// buckets. A bucket's width is then at most 1/64 of its lower bound, and
// a percentile, reported as the middle of the bucket that holds it, is
// within 1/128 (0.8%) of the exact one. Max and min are exact.
//
// The zero value is an empty histogram. Not safe for concurrent use.
type Hist struct {
	counts   [histBuckets]uint64
	n        uint64
	sumNanos float64
	min, max int64 // valid when n > 0
}

const (
	histSubBits = 7
	histHalf    = 1 << (histSubBits - 1) // 64 buckets per power of two
	// histBuckets covers every int64: the largest shift is 64-histSubBits.
	histBuckets = (64-histSubBits)*histHalf + 2*histHalf
)

// histIndex maps a value to its bucket.
func histIndex(v uint64) int {
	l := bits.Len64(v)
	if l <= histSubBits {
		return int(v)
	}
	shift := l - histSubBits
	return shift*histHalf + int(v>>shift) // v>>shift is in [histHalf, 2*histHalf)
}

// histBounds returns the smallest and largest value of bucket i.
func histBounds(i int) (lo, hi uint64) {
	if i < 2*histHalf {
		return uint64(i), uint64(i)
	}
	shift := i/histHalf - 1
	m := uint64(i - shift*histHalf)
	return m << shift, (m+1)<<shift - 1
}

// Record adds one duration (negative ones count as zero).
func (h *Hist) Record(d time.Duration) {
	v := max(int64(d), 0)
	h.counts[histIndex(uint64(v))]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if h.n == 0 || v > h.max {
		h.max = v
	}
	h.n++
	h.sumNanos += float64(v)
}

// Merge adds o's values to h.
func (h *Hist) Merge(o *Hist) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if h.n == 0 || o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sumNanos += o.sumNanos
}

// Count is the number of values recorded.
func (h *Hist) Count() uint64 { return h.n }

// Max is the largest value recorded (0 if none).
func (h *Hist) Max() time.Duration { return time.Duration(h.max) }

// Mean is the average value (0 if none).
func (h *Hist) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sumNanos / float64(h.n))
}

// Quantile returns the q-quantile (0 < q <= 1) by the nearest-rank rule:
// the value with rank ceil(q*n) in sorted order, to within the bucket's
// precision. Quantile(1) is the exact maximum; 0 if nothing was recorded.
func (h *Hist) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if q >= 1 {
		return time.Duration(h.max)
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := histBounds(i)
			mid := int64(lo + (hi-lo)/2)
			return time.Duration(min(max(mid, h.min), h.max))
		}
	}
	return time.Duration(h.max) // not reached: the counts add up to n
}
