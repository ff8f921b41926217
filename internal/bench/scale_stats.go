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
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux architecture Go supports (the kernel keeps it fixed for userspace).
const clockTicks = 100

// nodeMonitor samples the nodes of one put run at each interval.
type nodeMonitor struct {
	nodes   *benchNodes
	lastCPU []float64 // seconds, per node, at the last sample (-1 unknown)
}

func newNodeMonitor(n *benchNodes) *nodeMonitor {
	m := &nodeMonitor{nodes: n, lastCPU: make([]float64, len(n.procs))}
	for i := range n.procs {
		m.lastCPU[i] = procCPU(n.pid(i))
	}
	return m
}

// printer prints each interval as a table line: the put run's figures,
// then each node's RSS and data size and the members' CPU per put.
func (m *nodeMonitor) printer(w io.Writer) func(intervalStats) {
	return func(s intervalStats) {
		k := len(m.nodes.procs)
		const rssHead, dataHead = "RSS MB (node 1/2/3)", "DATA MB (node 1/2/3)"
		rssW, dataW := max(k*6, len(rssHead)), max(k*6, len(dataHead))
		if s.N == 0 {
			fmt.Fprintf(w, "%7s %8s %7s %7s %8s %8s %5s  %-*s  %-*s  %s\n", "AT", "OPS/S", "P50 ms", "P99 ms", "P99.9 ms", "MAX ms", "ERR",
				rssW, rssHead, dataW, dataHead, "CPU ms/put")
		}
		var rss, data []string
		cpu, cpuKnown := 0.0, true
		for i := 0; i < k; i++ {
			pid := m.nodes.pid(i)
			rss = append(rss, mbOrDash(procRSS(pid)))
			data = append(data, mbOrDash(dirSize(m.nodes.dataDir(i))))
			now := procCPU(pid)
			if now < 0 || m.lastCPU[i] < 0 {
				cpuKnown = false
			} else {
				cpu += now - m.lastCPU[i]
			}
			m.lastCPU[i] = now
		}
		perOp := "-"
		if n := s.Hist.Count(); cpuKnown && n > 0 {
			perOp = fmt.Sprintf("%.3f", cpu/float64(n)*1000)
		}
		l := latencyOf(s.Hist)
		fmt.Fprintf(w, "%7s %8.0f %7.2f %7.2f %8.2f %8.2f %5d  %-*s  %-*s  %s\n", clock(s.To), s.opsPerSec(), l.P50, l.P99, l.P999, l.Max, s.Errors,
			rssW, strings.Join(rss, "/"), dataW, strings.Join(data, "/"), perOp)
	}
}

func mbOrDash(bytes int64) string {
	if bytes < 0 {
		return "-"
	}
	return strconv.FormatInt((bytes+1<<19)>>20, 10)
}

// procRSS returns pid's VmRSS in bytes, -1 if unknown.
func procRSS(pid int) int64 {
	if pid <= 0 {
		return -1
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
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
