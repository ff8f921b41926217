package bench

// scale_stats.go reads what the members of bench scale's cluster cost
// from /proc (Linux; elsewhere the columns show "-"): each node's resident
// memory (VmRSS in /proc/PID/status), the size of its data directory, and
// the CPU time (utime+stime in /proc/PID/stat) all three spend per
// operation.

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux architecture Go supports (the kernel keeps it fixed for userspace).
const clockTicks = 100

// nodeMonitor samples the nodes of one put run at each interval.
type nodeMonitor struct {
	nodes   *benchNodes
	lastCPU []float64 // seconds, per node, at the last sample (-1 unknown)
	lastPID []int     // the process lastCPU is of (0: not running)
	rates   []float64 // each interval's ops/s, in order
	// phase, if set, labels each interval (the outage run): the line ends
	// with the ops/s as a share of normal (the median of a run without an
	// outage, if > 0) and the phase.
	phase  func(s intervalStats) string
	normal float64
}

func newNodeMonitor(n *benchNodes) *nodeMonitor {
	m := &nodeMonitor{nodes: n, lastCPU: make([]float64, n.count()), lastPID: make([]int, n.count())}
	for i := range m.lastCPU {
		m.lastPID[i] = n.pid(i)
		m.lastCPU[i] = procCPU(m.lastPID[i])
	}
	return m
}

// printer prints each interval as a table line: the put run's figures,
// then each node's RSS and data size and the members' CPU per put. A node
// that is not running shows "-" and costs no CPU; one restarted since the
// last line counts its CPU from its start.
func (m *nodeMonitor) printer(w io.Writer) func(intervalStats) {
	return func(s intervalStats) {
		k := m.nodes.count()
		const rssHead, dataHead = "RSS MB (node 1/2/3)", "DATA MB (node 1/2/3)"
		rssW, dataW := max(k*6, len(rssHead)), max(k*6, len(dataHead))
		if s.N == 0 {
			fmt.Fprintf(w, "%7s %8s %7s %7s %8s %8s %5s  %-*s  %-*s  %10s", "AT", "OPS/S", "P50 ms", "P99 ms", "P99.9 ms", "MAX ms", "ERR",
				rssW, rssHead, dataW, dataHead, "CPU ms/put")
			if m.phase != nil {
				fmt.Fprintf(w, "  %8s  %s", "%NORMAL", "PHASE")
			}
			fmt.Fprintln(w)
		}
		var rss, data []string
		cpu, cpuKnown := 0.0, true
		for i := 0; i < k; i++ {
			pid := m.nodes.pid(i)
			rss = append(rss, mbOrDash(procRSS(pid)))
			data = append(data, mbOrDash(dirSize(m.nodes.dataDir(i))))
			now := procCPU(pid)
			switch {
			case pid == 0:
			case now < 0:
				cpuKnown = false
			case pid != m.lastPID[i] || m.lastCPU[i] < 0:
				cpu += now // started since the last line
			default:
				cpu += now - m.lastCPU[i]
			}
			m.lastCPU[i], m.lastPID[i] = now, pid
		}
		perOp := "-"
		if n := s.Hist.Count(); cpuKnown && n > 0 {
			perOp = fmt.Sprintf("%.3f", cpu/float64(n)*1000)
		}
		l := latencyOf(s.Hist)
		rate := s.opsPerSec()
		m.rates = append(m.rates, rate)
		fmt.Fprintf(w, "%7s %8.0f %7.2f %7.2f %8.2f %8.2f %5d  %-*s  %-*s  %10s", clock(s.To), rate, l.P50, l.P99, l.P999, l.Max, s.Errors,
			rssW, strings.Join(rss, "/"), dataW, strings.Join(data, "/"), perOp)
		if m.phase != nil {
			pct := "-"
			if m.normal > 0 {
				pct = fmt.Sprintf("%.0f%%", 100*rate/m.normal)
			}
			fmt.Fprintf(w, "  %8s  %s", pct, m.phase(s))
		}
		fmt.Fprintln(w)
	}
}

// median returns the median of xs (0 if none).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func mbOrDash(bytes int64) string {
	if bytes < 0 {
		return "-"
	}
	return strconv.FormatInt((bytes+1<<19)>>20, 10)
}

// procRSS returns pid's VmRSS in bytes, -1 if unknown.
func procRSS(pid int) int64 { return procStatusBytes(pid, "VmRSS:") }

// procHWM returns pid's VmHWM, the peak of its VmRSS so far, in bytes,
// -1 if unknown.
func procHWM(pid int) int64 { return procStatusBytes(pid, "VmHWM:") }

// procStatusBytes returns a "<field> N kB" line of /proc/PID/status in
// bytes, -1 if unknown.
func procStatusBytes(pid int, field string) int64 {
	if pid <= 0 {
		return -1
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(line, []byte(field)); ok {
			f := strings.Fields(string(rest)) // "123456 kB"
			if len(f) == 2 && f[1] == "kB" {
				if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					return kb << 10
				}
			}
		}
	}
	return -1
}

// procCPU returns pid's user+system CPU time in seconds, -1 if unknown.
func procCPU(pid int) float64 {
	if pid <= 0 {
		return -1
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	return parseStatCPU(string(b))
}

// parseStatCPU reads utime and stime (fields 14 and 15) from a
// /proc/PID/stat line; the command name (field 2) is in parentheses and
// may hold spaces, so the fields are counted from its closing one.
func parseStatCPU(stat string) float64 {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(stat[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return -1
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return float64(ut+st) / clockTicks
}

// dirSize returns the bytes of the regular files under dir, -1 if it
// cannot be read. Files can vanish during the walk (compactions): those
// are skipped.
func dirSize(dir string) int64 {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	if err != nil {
		return -1
	}
	return total
}

// peakRSS follows each node's peak resident memory over the whole bench:
// the VmHWM of its process, read every second and just before the process
// is stopped (benchNodes.beforeStop); a node restarted keeps the highest of
// its processes.
type peakRSS struct {
	nodes *benchNodes
	mu    sync.Mutex
	peak  []int64 // bytes, -1 unknown
	stop  chan struct{}
	done  chan struct{}
}

func startPeakRSS(n *benchNodes) *peakRSS {
	p := &peakRSS{nodes: n, peak: make([]int64, n.count()), stop: make(chan struct{}), done: make(chan struct{})}
	for i := range p.peak {
		p.peak[i] = -1
	}
	n.beforeStop = p.sample
	go func() {
		defer close(p.done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			for i := range p.peak {
				p.sample(i)
			}
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

// sample reads node i+1's VmHWM now.
func (p *peakRSS) sample(i int) {
	hwm := procHWM(p.nodes.pid(i))
	p.mu.Lock()
	p.peak[i] = max(p.peak[i], hwm)
	p.mu.Unlock()
}

// finish takes a last sample, stops the sampling and returns each node's
// peak.
func (p *peakRSS) finish() []int64 {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
	for i := range p.peak {
		p.sample(i)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.peak)
}

// scaleLiveBytes is the data the keyspace holds: every key's name and
// value, as 2 x it + 150 MiB bounds a node's RSS (issue 12).
func scaleLiveBytes(keys, valueSize int) int64 {
	var n int64
	for k := 0; k < keys; k++ {
		n += int64(len(scaleKey(k)) + valueSize)
	}
	return n
}

// scaleRSSBound is 2 x live + 150 MiB.
func scaleRSSBound(live int64) int64 { return 2*live + 150<<20 }

// writePeakTable prints each node's peak RSS against the bound.
func writePeakTable(w io.Writer, keys, valueSize int, peaks []int64) {
	live := scaleLiveBytes(keys, valueSize)
	bound := scaleRSSBound(live)
	fmt.Fprintf(w, "\npeak RSS (VmHWM, sampled every second over the whole bench) against 2 x live + 150 MiB = %s MB\n", mbOrDash(bound))
	fmt.Fprintf(w, "(live: %d keys x (%.1f B key + %d B value) = %.1f MB)\n", keys, float64(live)/float64(keys)-float64(valueSize), valueSize, float64(live)/(1<<20))
	fmt.Fprintf(w, "%5s %12s %9s\n", "NODE", "PEAK RSS MB", "BOUND MB")
	for i, p := range peaks {
		verdict := "ok"
		switch {
		case p < 0:
			verdict = "unknown"
		case p > bound:
			verdict = "over bound"
		}
		fmt.Fprintf(w, "%5d %12s %9s  %s\n", i+1, mbOrDash(p), mbOrDash(bound), verdict)
	}
}
