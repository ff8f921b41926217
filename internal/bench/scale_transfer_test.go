package bench

import (
	"testing"
	"time"
)

func TestTransferWindow(t *testing.T) {
	log := []byte(`2026-12-06 00:00:44.100 INF node started commit=1089813 node=1
2026-12-06 00:00:46.500 INF behind the leader's log: fetching its snapshot leader_log_starts_after=2130000 node=1
2026-12-06 00:00:49.000 INF receiving snapshot percent=50 node=1
2026-12-06 00:00:52.250 INF installed the leader's snapshot decode_ms=1200 node=1
2026-12-06 00:01:01.000 INF behind the leader's log: fetching its snapshot leader_log_starts_after=2164474 node=1
2026-12-06 00:01:05.750 INF installed the leader's snapshot decode_ms=1100 node=1
`)
	from, to, ok := transferWindow(log)
	if !ok {
		t.Fatal("no window found")
	}
	want := func(s string) time.Time {
		at, err := time.ParseInLocation(scaleLogTimeFormat, s, time.Local)
		if err != nil {
			t.Fatal(err)
		}
		return at
	}
	// Two fetches: the window spans both (the first start, the last install).
	if !from.Equal(want("2026-12-06 00:00:46.500")) || !to.Equal(want("2026-12-06 00:01:05.750")) {
		t.Errorf("window %s .. %s", from, to)
	}
	if _, _, ok := transferWindow([]byte("2026-12-06 00:00:52.250 INF installed the leader's snapshot\n")); ok {
		t.Error("an install without a fetch before it made a window")
	}
}

func TestRateBetween(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var secs []opsSample
	for i := 0; i <= 10; i++ {
		secs = append(secs, opsSample{t0.Add(time.Duration(i) * time.Second), uint64(i * i * 100)})
	}
	// Samples at 2 s (400 ops) and 5 s (2500 ops) fall within 1.5..5.5 s.
	rate, ok := rateBetween(secs, t0.Add(1500*time.Millisecond), t0.Add(5500*time.Millisecond))
	if !ok || rate != 700 {
		t.Errorf("rate %v, %v; want 700", rate, ok)
	}
	if _, ok := rateBetween(secs, t0.Add(1500*time.Millisecond), t0.Add(2500*time.Millisecond)); ok {
		t.Error("one sample in the window gave a rate")
	}
}

func TestTransferSteps(t *testing.T) {
	log := []byte(`2026-12-06 00:00:46.500 INF behind the leader's log: fetching its snapshot node=1
2026-12-06 00:00:50.000 WRN snapshot transfer failed; it resumes when the leader offers it again node=1
2026-12-06 00:01:01.000 INF behind the leader's log: fetching its snapshot node=1
2026-12-06 00:01:03.500 INF snapshot received took_ms=2500 node=1
2026-12-06 00:01:04.000 INF installing the leader's snapshot: this node's state is dropped while the snapshot's is decoded node=1
2026-12-06 00:01:05.750 INF installed the leader's snapshot decode_ms=1750 node=1
`)
	steps := transferSteps(log)
	if len(steps) != 3 {
		t.Fatalf("steps %v", steps)
	}
	// The failed first fetch is not a step: the steps are the last fetch's.
	for i, want := range []struct {
		name string
		secs float64
	}{{"copy", 2.5}, {"check", 0.5}, {"decode", 1.75}} {
		if got := steps[i]; got.name != want.name || got.to.Sub(got.from).Seconds() != want.secs || got.from.Second() == 46 {
			t.Errorf("step %d: %s %v from %s", i, got.name, got.to.Sub(got.from), got.from)
		}
	}
	if transferSteps(log[:len(log)-80]) != nil {
		t.Error("steps without the install")
	}
}

func TestLowestSecond(t *testing.T) {
	t0 := time.Unix(1000, 0)
	// 1,000 ops/s, but 100 ops/s between 2.0 and 3.0 s; samples every 200 ms.
	var secs []opsSample
	ops := uint64(0)
	for i := 0; i <= 25; i++ {
		at := t0.Add(time.Duration(i) * 200 * time.Millisecond)
		secs = append(secs, opsSample{at, ops})
		if i >= 10 && i < 15 {
			ops += 20
		} else {
			ops += 200
		}
	}
	low, ok := lowestSecond(secs)
	if !ok || low < 99 || low > 101 {
		t.Errorf("lowest %v, %v; want 100", low, ok)
	}
	if _, ok := lowestSecond(secs[:5]); ok {
		t.Error("under a second of samples gave a rate")
	}
}
