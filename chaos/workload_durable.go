package chaos

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/paxosd/paxosd/client"
)

// DurableWriter writes a new key (Prefix + a counter) again and again and
// remembers which writes were acknowledged, so that after the whole
// cluster crashed and restarted Check can ask for every one of them: the
// direct form of "no acknowledged write is lost".
type DurableWriter struct {
	C      *client.Client
	Prefix string
	Stats  *Stats
	Think  time.Duration

	mu    sync.Mutex
	acked map[string]string
}

// Run writes until ctx ends.
func (w *DurableWriter) Run(ctx context.Context) {
	w.mu.Lock()
	w.acked = map[string]string{}
	w.mu.Unlock()
	for n := 0; ctx.Err() == nil; n++ {
		key, value := fmt.Sprintf("%s%07d", w.Prefix, n), fmt.Sprintf("v%d", n)
		octx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := w.C.Put(octx, key, []byte(value))
		cancel()
		if err != nil {
			w.Stats.Op("durable-put", "unknown")
			continue
		}
		w.Stats.Op("durable-put", "ok")
		w.mu.Lock()
		w.acked[key] = value
		w.mu.Unlock()
		sleepCtx(ctx, w.Think)
	}
}

// Check lists the prefix through c (a linearizable read) and reports every
// write acknowledged before the call that is missing or changed. It
// returns how many acknowledged writes it checked.
func (w *DurableWriter) Check(ctx context.Context, c *client.Client) (int, []string, error) {
	w.mu.Lock()
	want := make(map[string]string, len(w.acked))
	for k, v := range w.acked {
		want[k] = v
	}
	w.mu.Unlock()
	kvs, err := c.List(ctx, w.Prefix, 0)
	if err != nil {
		return 0, nil, err
	}
	got := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		got[kv.Key] = string(kv.Value)
	}
	var lost []string
	for _, k := range sortedKeys(want) {
		if g, ok := got[k]; !ok {
			lost = append(lost, fmt.Sprintf("acknowledged write %s=%s is missing", k, want[k]))
		} else if g != want[k] {
			lost = append(lost, fmt.Sprintf("acknowledged write %s=%s reads back as %q", k, want[k], g))
		}
	}
	return len(want), lost, nil
}
