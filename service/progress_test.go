package service

import (
	"fmt"
	"testing"
	"time"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/wire"
)

// TestWatchProgress: on a follower, a watch of a client that speaks
// protocol 11, idle while other keys change, gets progress notifications
// (err 0, no events, no stream_end) up to the revision of the last change,
// never beyond what it applied; a watch opened again from that revision +
// 1 misses nothing and repeats nothing. A client of protocol 10 gets only
// its events.
func TestWatchProgress(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	c := startTunedCluster(t, func(cfg *Config) { cfg.WatchProgressInterval = 150 * time.Millisecond })
	leader := c.waitLeader()
	follower := paxos.NodeID(1)
	if follower == leader {
		follower = 2
	}
	ctx, cl := c.client(30 * time.Second)
	put := func(k string) uint64 {
		t.Helper()
		rev, err := cl.Put(ctx, k, []byte("v"))
		if err != nil {
			t.Fatal(err)
		}
		return rev
	}
	put("start")
	rc := dialSpec(t, c.peers[follower], 0, "paxosd", wire.VersionWatchProgress)
	old := dialSpec(t, c.peers[follower], 0, "paxosd", wire.VersionWatchProgress-1)
	next := func(rc *rawClient, id uint64) *wire.Response {
		t.Helper()
		for {
			resp := rc.recv(10 * time.Second)
			if resp.ID == id {
				return resp
			}
		}
	}
	watch := func(rc *rawClient, id, from uint64) uint64 {
		t.Helper()
		rc.send(&wire.Request{ID: id, Op: wire.OpWatch, Key: "a/", WatchPrefix: true, FromRevision: from})
		ack := next(rc, id)
		if ack.Err != wire.ErrNone || len(ack.Events) != 0 || ack.StreamEnd {
			t.Fatalf("watch from %d: %+v; want its acknowledgement", from, ack)
		}
		return ack.Revision
	}
	event := func(id uint64, key string, rev uint64) {
		t.Helper()
		for {
			resp := next(rc, id)
			if len(resp.Events) == 0 && !resp.StreamEnd && resp.Err == wire.ErrNone {
				continue // progress before the follower applied the put
			}
			if resp.Err != wire.ErrNone || len(resp.Events) != 1 || resp.Events[0].KV.Key != key || resp.Events[0].KV.ModRevision != rev {
				t.Fatalf("%+v; want the one event %s at revision %d", resp, key, rev)
			}
			return
		}
	}
	// progress reads notifications until one reaches want.
	progress := func(id, from, want uint64) uint64 {
		t.Helper()
		last := from
		for last < want {
			resp := next(rc, id)
			if resp.Err != wire.ErrNone || resp.StreamEnd || len(resp.Events) != 0 {
				t.Fatalf("%+v; want progress notifications up to revision %d", resp, want)
			}
			if resp.Revision < last || resp.Revision > want {
				t.Fatalf("progress to revision %d after %d; the last change is %d", resp.Revision, last, want)
			}
			last = resp.Revision
		}
		return last
	}

	watch(rc, 1, 0)
	watch(old, 1, 0)
	r0 := put("a/0")
	event(1, "a/0", r0)
	var last uint64
	for i := range 5 {
		last = put(fmt.Sprintf("b/%d", i))
	}
	r := progress(1, r0, last)

	// Away: the watch is cancelled; its client comes back from r+1.
	rc.send(&wire.Request{ID: 2, Op: wire.OpCancel, CancelID: 1})
	for end := next(rc, 1); !end.StreamEnd || end.Err != wire.ErrCanceled; end = next(rc, 1) {
		if end.StreamEnd || len(end.Events) != 0 {
			t.Fatalf("cancel: %+v", end)
		}
	}
	r1 := put("a/1")
	last = put("b/5")
	if ack := watch(rc, 3, r+1); ack != r {
		t.Fatalf("the resumed watch starts after %d, want %d", ack, r)
	}
	event(3, "a/1", r1)
	progress(3, r1, last)

	// The protocol-10 client: the two events, nothing else.
	for _, want := range []uint64{r0, r1} {
		resp := next(old, 1)
		if len(resp.Events) != 1 || resp.Events[0].KV.ModRevision != want {
			t.Fatalf("protocol 10 watch: %+v; want the event of revision %d", resp, want)
		}
	}
	if resp, err := old.tryRecv(500 * time.Millisecond); err == nil {
		t.Fatalf("protocol 10 watch: %+v; want nothing more", resp)
	}
}
