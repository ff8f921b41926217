//go:build linux

package chaos

import (
	"fmt"
	"os"
	"strings"
	"sync"
)

// errorsJoin joins errors into one line.
func errorsJoin(errs ...error) error {
	var parts []string
	for _, e := range errs {
		if e != nil {
			parts = append(parts, e.Error())
		}
	}
	if len(parts) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(parts, "; "))
}

// cpuMeter adds up the CPU time of the cluster's processes across their
// restarts, from samples: what a process used between its last sample and
// its death is not counted (the faults take a sample just before they
// kill).
type cpuMeter struct {
	c     *Cluster
	mu    sync.Mutex
	last  map[int]float64 // by pid
	total float64
}

func newCPUMeter(c *Cluster) *cpuMeter { return &cpuMeter{c: c, last: map[int]float64{}} }

// sample reads every running node's CPU time and returns the total so
// far, in seconds.
func (m *cpuMeter) sample() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.c.Net.Nodes {
		pid := m.c.Pid(i)
		v := procCPU(pid)
		if v < 0 {
			continue
		}
		m.total += v - m.last[pid]
		m.last[pid] = v
	}
	return m.total
}

// procCPU is pid's user+system CPU time in seconds from /proc/PID/stat
// (utime, stime: fields 14 and 15, in USER_HZ = 100 ticks a second); -1
// if unknown.
func procCPU(pid int) float64 {
	if pid <= 0 {
		return -1
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	stat := string(b)
	i := strings.LastIndexByte(stat, ')') // the command name may hold spaces
	if i < 0 {
		return -1
	}
	f := strings.Fields(stat[i+1:]) // f[0] is field 3
	if len(f) < 13 {
		return -1
	}
	var ut, st uint64
	if _, err := fmt.Sscan(f[11], &ut); err != nil {
		return -1
	}
	if _, err := fmt.Sscan(f[12], &st); err != nil {
		return -1
	}
	return float64(ut+st) / 100
}
