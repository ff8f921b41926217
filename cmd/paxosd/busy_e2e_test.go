package main

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paxosd/paxosd/client"
)

// TestBackPressureEndToEnd: three serve processes with a small backlog
// bound (--backlog-bytes-max 64 KiB) and a per-client session limit of 5.
// 32 writers of 8 KiB values overload them: the nodes shed writes (counted
// in paxosd_requests_shed_total{priority="write"} on /metrics), the Go
// client waits out each busy answer and retries, so every put succeeds,
// and a session of TTL 2 s kept alive meanwhile is never lost and no
// keep-alive is shed. A client's sixth session open is refused with
// ErrQuotaExceeded, "too many sessions", by the node it opens through.
func TestBackPressureEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	c := &cluster{t: t, bin: buildBinary(t), dir: t.TempDir(), addrs: freePorts(t, 3), http: freePorts(t, 3),
		extra: func(int) []string {
			return []string{"--backlog-bytes-max", "65536", "--sessions-per-client-max", "5"}
		}}
	launch(c)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	holder, err := client.New(ctx, c.addrs...)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	sess, err := holder.NewSession(ctx, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	writer, err := client.New(ctx, c.addrs...)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	value := make([]byte, 8<<10)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var putErr error
	puts := 0
	end := time.Now().Add(3 * time.Second)
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(end); i++ {
				_, err := writer.Put(ctx, "k"+strconv.Itoa(i%16), value)
				mu.Lock()
				if err != nil && putErr == nil {
					putErr = err
				}
				puts++
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	if putErr != nil {
		t.Fatalf("a put under back-pressure (%d puts done): %v (the client retries busy answers)", puts, putErr)
	}
	select {
	case <-sess.Done():
		t.Fatalf("the session was lost while the cluster was busy: %v", sess.Err())
	default:
	}
	shed := map[string]float64{}
	for _, h := range c.http {
		for k, v := range shedMetrics(t, h) {
			shed[k] += v
		}
	}
	t.Logf("%d puts of 8 KiB in 3 s by 32 writers; requests shed: %v", puts, shed)
	if shed["write"] == 0 {
		t.Fatalf("no write shed at a 64 KiB backlog bound: %v", shed)
	}
	if shed["keepalive"] != 0 {
		t.Fatalf("keep-alives shed: %v", shed)
	}

	// The limit is per node (the sessions opened through it): the opener
	// talks to the leader alone, where a client's opens go anyway.
	l := c.leader()
	if l < 0 {
		t.Fatal("no leader")
	}
	opener, err := client.New(ctx, c.addrs[l])
	if err != nil {
		t.Fatal(err)
	}
	defer opener.Close()
	for i := 0; i < 5; i++ {
		if _, err := opener.NewSession(ctx, 10*time.Second); err != nil {
			t.Fatalf("session %d of 5: %v", i+1, err)
		}
	}
	_, err = opener.NewSession(ctx, 10*time.Second)
	if !errors.Is(err, client.ErrQuotaExceeded) || !strings.Contains(err.Error(), "too many sessions") {
		t.Fatalf("a sixth session: %v, want ErrQuotaExceeded, too many sessions", err)
	}
}

// shedMetrics reads paxosd_requests_shed_total by priority from a node's
// /metrics.
func shedMetrics(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, `paxosd_requests_shed_total{priority="`)
		if !ok {
			continue
		}
		p, num, _ := strings.Cut(rest, `"} `)
		v, err := strconv.ParseFloat(num, 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[p] = v
	}
	if len(out) != 3 {
		t.Fatalf("%s/metrics: paxosd_requests_shed_total by priority %v, want write, lock and keepalive", addr, out)
	}
	return out
}
