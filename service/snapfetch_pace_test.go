package service

import (
	"testing"
	"time"
)

// TestFetchPacer: a paced fetch waits so that it averages the rate since
// its start, and not at all when it is behind it or has no rate.
func TestFetchPacer(t *testing.T) {
	t0 := time.Unix(1000, 0)
	p := fetchPacer{rate: 1 << 20, start: t0}
	// 1 MiB copied 100 ms in: due at 1 s, so 900 ms to wait.
	if d := p.wait(t0.Add(100*time.Millisecond), 1<<20); d != 900*time.Millisecond {
		t.Errorf("wait %v, want 900ms", d)
	}
	// Another 512 KiB at 1.2 s: due at 1.5 s.
	if d := p.wait(t0.Add(1200*time.Millisecond), 512<<10); d != 300*time.Millisecond {
		t.Errorf("wait %v, want 300ms", d)
	}
	// Slower than the rate (a slow disk): no wait, and no debt either way.
	if d := p.wait(t0.Add(10*time.Second), 1<<20); d != 0 {
		t.Errorf("wait %v behind the rate", d)
	}
	// A fetch started over (its snapshot replaced) goes twice as fast.
	p.restart(t0.Add(20 * time.Second))
	if d := p.wait(t0.Add(20*time.Second), 1<<20); d != 500*time.Millisecond || p.rate != 2<<20 {
		t.Errorf("after a restart: wait %v at rate %d, want 500ms at %d", d, p.rate, 2<<20)
	}
	unpaced := fetchPacer{rate: -1, start: t0}
	if d := unpaced.wait(t0, 64<<20); d != 0 {
		t.Errorf("wait %v without a rate", d)
	}
}
