package bench

// watch_watchers.go is bench watch's watchers (watch.go): each one's
// checks of order and completeness, and the lag histograms they share.

import (
	"encoding/binary"
	"math/bits"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paxosd/paxosd/client"
)

// watchSet is the watchers and what they share.
type watchSet struct {
	prefix          string
	ws              []*benchWatcher
	lag             [watchLagShards]lagShard
	nReady, nFailed atomic.Int64
	delivered       atomic.Uint64

	mu       sync.Mutex
	firstErr error
}

// lagShard is one of the histograms the watchers share.
type lagShard struct {
	mu sync.Mutex
	h  benchHist
}

// benchWatcher is one watcher: its goroutine writes, the bench reads the
// atomics meanwhile and the rest once the goroutine has ended.
type benchWatcher struct {
	lag        *lagShard
	ready      bool
	lastRev    atomic.Uint64
	failed     atomic.Bool
	seen       bitmap
	count      uint64 // puts received (duplicates not counted)
	dups       uint64
	outOfOrder uint64
}

// consume takes one watcher's events until the watch ends.
func (s *watchSet) consume(bw *benchWatcher, events <-chan []client.Event) {
	putPrefix := s.prefix + "p/"
	for batch := range events {
		now := time.Now()
		var lags []time.Duration
		for _, e := range batch {
			rev := e.KV.ModRevision
			if last := bw.lastRev.Load(); rev <= last && last != 0 {
				bw.outOfOrder++
			} else {
				bw.lastRev.Store(rev)
			}
			if e.KV.Key == s.prefix+"ready" {
				if !bw.ready {
					bw.ready = true
					s.nReady.Add(1)
				}
				continue
			}
			suffix, ok := strings.CutPrefix(e.KV.Key, putPrefix)
			n, err := strconv.Atoi(suffix)
			if !ok || err != nil || n < 0 || e.Type != client.EventPut || len(e.KV.Value) < 8 {
				continue // not the writer's
			}
			if bw.seen.has(n) {
				bw.dups++
				continue
			}
			bw.seen.set(n)
			bw.count++
			s.delivered.Add(1)
			sent := time.Unix(0, int64(binary.BigEndian.Uint64(e.KV.Value)))
			lags = append(lags, now.Sub(sent))
		}
		if len(lags) > 0 {
			bw.lag.mu.Lock()
			for _, l := range lags {
				bw.lag.h.Record(l)
			}
			bw.lag.mu.Unlock()
		}
	}
}

func (s *watchSet) ready() int         { return int(s.nReady.Load()) }
func (s *watchSet) failed() int        { return int(s.nFailed.Load()) }
func (s *watchSet) deliveries() uint64 { return s.delivered.Load() }

func (s *watchSet) setErr(err error) {
	s.nFailed.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.firstErr == nil {
		s.firstErr = err
	}
}

func (s *watchSet) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.firstErr
}

func (s *watchSet) errString() string {
	if err := s.err(); err != nil {
		return err.Error()
	}
	return ""
}

// behind counts the live watchers that have not reached revision rev.
func (s *watchSet) behind(rev uint64) int {
	n := 0
	for _, bw := range s.ws {
		if !bw.failed.Load() && bw.lastRev.Load() < rev {
			n++
		}
	}
	return n
}

// bitmap is a growing set of small non-negative integers.
type bitmap []uint64

func newBitmap(n int) *bitmap {
	b := make(bitmap, 0, (n+63)/64)
	return &b
}

func (b *bitmap) set(n int) {
	for len(*b) <= n/64 {
		*b = append(*b, 0)
	}
	(*b)[n/64] |= 1 << (n % 64)
}

func (b *bitmap) has(n int) bool {
	return n/64 < len(*b) && (*b)[n/64]&(1<<(n%64)) != 0
}

// and counts the members of both b and o.
func (b *bitmap) and(o *bitmap) uint64 {
	var n int
	for i := 0; i < min(len(*b), len(*o)); i++ {
		n += bits.OnesCount64((*b)[i] & (*o)[i])
	}
	return uint64(n)
}
