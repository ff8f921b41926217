package chaos

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Stats counts what happened, by kind ("put ok", "get unknown", fault
// kinds, ...), and collects anomalies: anything a check found wrong. The
// suite passes only with zero anomalies.
type Stats struct {
	mu        sync.Mutex
	ops       map[string]int
	faults    map[string]int
	recovery  map[string]time.Duration // longest recovery per fault kind
	anomalies []string
}

// NewStats returns empty counters.
func NewStats() *Stats {
	return &Stats{ops: map[string]int{}, faults: map[string]int{}, recovery: map[string]time.Duration{}}
}

// Op counts one client operation of kind ("put", "lock", ...) with its
// outcome ("ok", "fail", "unknown", ...).
func (s *Stats) Op(kind, outcome string) {
	s.mu.Lock()
	s.ops[kind+" "+outcome]++
	s.mu.Unlock()
}

// Fault counts one injected fault.
func (s *Stats) Fault(kind string) {
	s.mu.Lock()
	s.faults[kind]++
	s.mu.Unlock()
}

// Recovery notes how long the cluster took to accept a write after a
// fault of kind healed.
func (s *Stats) Recovery(kind string, d time.Duration) {
	s.mu.Lock()
	s.recovery[kind] = max(s.recovery[kind], d)
	s.mu.Unlock()
}

// Anomaly records something a check found wrong.
func (s *Stats) Anomaly(format string, args ...any) {
	s.mu.Lock()
	s.anomalies = append(s.anomalies, fmt.Sprintf(format, args...))
	s.mu.Unlock()
}

// Anomalies returns the anomalies found so far.
func (s *Stats) Anomalies() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.anomalies...)
}

// Add adds o's counts into s.
func (s *Stats) Add(o *Stats) {
	o.mu.Lock()
	defer o.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range o.ops {
		s.ops[k] += v
	}
	for k, v := range o.faults {
		s.faults[k] += v
	}
	for k, v := range o.recovery {
		s.recovery[k] = max(s.recovery[k], v)
	}
	s.anomalies = append(s.anomalies, o.anomalies...)
}

// Summary is a few lines: operations by kind, faults by kind, anomalies,
// the longest recovery.
func (s *Stats) Summary() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	total := 0
	for _, v := range s.ops {
		total += v
	}
	fmt.Fprintf(&b, "operations: %d (%s)\n", total, joinCounts(s.ops))
	nf := 0
	for _, v := range s.faults {
		nf += v
	}
	fmt.Fprintf(&b, "faults: %d (%s)\n", nf, joinCounts(s.faults))
	var worst time.Duration
	var rec []string
	for _, k := range sortedKeys(s.recovery) {
		worst = max(worst, s.recovery[k])
		rec = append(rec, fmt.Sprintf("%s %s", k, s.recovery[k].Round(time.Millisecond)))
	}
	fmt.Fprintf(&b, "max recovery: %s (%s)\n", worst.Round(time.Millisecond), strings.Join(rec, ", "))
	fmt.Fprintf(&b, "anomalies: %d", len(s.anomalies))
	for _, a := range s.anomalies {
		fmt.Fprintf(&b, "\n  - %s", a)
	}
	return b.String()
}

func joinCounts(m map[string]int) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
