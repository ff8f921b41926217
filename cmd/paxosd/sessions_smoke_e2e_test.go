package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paxosd/paxosd/client"
)

// TestSessionsHoldSmoke is a smoke figure, not a check run by make test:
// with PAXOSD_SMOKE_SESSIONS=N it opens N sessions (TTL 10 s) from one Go
// client against three paxosd serve processes, holds them for
// PAXOSD_SMOKE_HOLD (default 30s), and reports the opens per second, the
// sessions lost, and the members' CPU while holding (from
// /proc/PID/stat). It fails only if a session is lost.
//
//	PAXOSD_SMOKE_SESSIONS=20000 go test ./cmd/paxosd -run TestSessionsHoldSmoke -v -timeout 10m
func TestSessionsHoldSmoke(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("PAXOSD_SMOKE_SESSIONS"))
	if n <= 0 {
		t.Skip("set PAXOSD_SMOKE_SESSIONS to run the smoke figure")
	}
	hold := 30 * time.Second
	if d, err := time.ParseDuration(os.Getenv("PAXOSD_SMOKE_HOLD")); err == nil {
		hold = d
	}
	// One client holds them all: past the nodes' per-client session
	// limit (10,000 by default), which this figure is not about.
	c := launch(&cluster{t: t, bin: buildBinary(t), dir: t.TempDir(), addrs: freePorts(t, 3),
		extra: func(int) []string { return []string{"--sessions-per-client-max", "0"} }})
	ctx, cancel := context.WithTimeout(context.Background(), hold+5*time.Minute)
	defer cancel()
	cl, err := client.New(ctx, c.addrs...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	const workers = 64
	sessions := make([]*client.Session, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var openErr atomic.Value
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				s, err := cl.NewSession(ctx, 10*time.Second)
				if err != nil {
					openErr.Store(err)
					return
				}
				sessions[i] = s
			}
		}()
	}
	wg.Wait()
	opened := time.Since(start)
	if err, _ := openErr.Load().(error); err != nil {
		t.Fatalf("open: %v", err)
	}
	cpu0 := membersCPU(t, c)
	time.Sleep(hold)
	cpu1 := membersCPU(t, c)
	lost := 0
	for _, s := range sessions {
		select {
		case <-s.Done():
			lost++
		default:
		}
	}
	cores := (cpu1 - cpu0).Seconds() / hold.Seconds()
	t.Logf("%d sessions opened in %s (%.0f opens/s); held %s: %d lost; members' CPU while holding %.2f cores (%s in all)",
		n, opened.Round(time.Millisecond), float64(n)/opened.Seconds(), hold, lost, cores, (cpu1 - cpu0).Round(time.Millisecond))
	if lost > 0 {
		t.Errorf("%d of %d sessions lost", lost, n)
	}
}

// membersCPU sums the user and system CPU time of c's processes.
func membersCPU(t *testing.T, c *cluster) time.Duration {
	t.Helper()
	var total time.Duration
	for _, p := range c.procs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Process.Pid))
		if err != nil {
			t.Skipf("no /proc: %v", err)
		}
		// Fields after the command name (which may hold spaces) in
		// parentheses: utime and stime are the 14th and 15th of the line.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		total += time.Duration(ut+st) * time.Second / 100 // USER_HZ
	}
	return total
}
