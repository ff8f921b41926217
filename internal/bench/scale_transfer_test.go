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
