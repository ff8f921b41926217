package client

import (
	"context"
	"testing"
	"time"

	"github.com/paxosd/paxosd/service/servicetest"
	"github.com/paxosd/paxosd/wire"
)

// TestKeepAliveBatchesOnCluster: against a real three-node cluster at
// level 12, 300 sessions of one client are kept alive by batch requests
// alone — a few per TTL/3, not one per session — and none is lost.
func TestKeepAliveBatchesOnCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	cl := servicetest.Start(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := New(ctx, cl.Endpoints...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	first, err := c.NewSession(ctx, TTLMin)
	if err != nil {
		t.Fatal(err)
	}
	// A new cluster raises its level to 12 within moments of electing its
	// first leader; until then a batch is refused.
	for {
		resp, err := c.do(ctx, &wire.Request{Op: wire.OpSessionKeepAliveBatch, SessionIDs: []uint64{first.ID()}})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Err == wire.ErrNone {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	k := c.keepAliver()
	k.mu.Lock()
	k.singleUntil, k.batches, k.singles = time.Time{}, 0, 0
	k.mu.Unlock()
	ss := []*Session{first}
	for len(ss) < 300 {
		s, err := c.NewSession(ctx, TTLMin)
		if err != nil {
			t.Fatal(err)
		}
		ss = append(ss, s)
	}
	time.Sleep(3 * time.Second) // nine rounds of TTL/3
	alive(t, ss)
	k.mu.Lock()
	batches, singles := k.batches, k.singles
	k.mu.Unlock()
	// About one batch per TTL/3 once the sessions are in step.
	if singles != 0 || batches == 0 || batches > 25 {
		t.Fatalf("%d batch requests and %d single keep-alives kept %d sessions alive for 3 s", batches, singles, len(ss))
	}
	t.Logf("%d sessions for 3 s: %d batch requests", len(ss), batches)
	for _, s := range ss {
		if err := s.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
