package service

import (
	"fmt"
	"testing"
	"time"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/statemachine"
)

// TestWatchQuietPrefixSurvivesBusyCluster: service discovery's reader
// watches services/ on a cluster busy with other keys. A watch whose next
// revision moved only when an event matched ended with ErrCompacted once
// the history (16384 events) had dropped the revision it started at,
// although it missed nothing, and the registration's delete at its
// session's end never reached the reader. (Found by a review of the
// ephemeral keys; it fails without the position's advance in pushStream.)
func TestWatchQuietPrefixSurvivesBusyCluster(t *testing.T) {
	c := startTestCluster(t)
	c.waitLeader()
	ctx, cl := c.client(120 * time.Second)
	c.waitLevel(ctx, statemachine.LevelEphemeral)

	s, err := cl.NewSession(ctx, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Put(ctx, "services/web-1", []byte("10.0.0.7:8080"), client.WithSession(s)); err != nil {
		t.Fatal(err)
	}
	events, errf := cl.Watch(ctx, "services/", client.WithPrefix())
	// Other traffic: 130 transactions of 127 puts, 16510 events, more than
	// the history keeps; none under services/.
	for i := range 130 {
		ops := make([]client.Op, 127)
		for j := range ops {
			ops[j] = client.OpPut(fmt.Sprintf("busy/%03d", j), []byte{byte(i)})
		}
		if _, err := cl.Txn(ctx).Then(ops...).Commit(); err != nil {
			t.Fatalf("txn %d: %v", i, err)
		}
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case evs, ok := <-events:
			if !ok {
				t.Fatalf("the quiet watch of services/ ended: %v; want the delete of services/web-1 (it missed no event of services/)", errf())
			}
			for _, ev := range evs {
				if ev.Type == client.EventDelete && ev.KV.Key == "services/web-1" {
					return
				}
			}
		case <-ctx.Done():
			t.Fatal("no delete of services/web-1")
		}
	}
}
