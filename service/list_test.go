package service

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/wire"
)

// TestListPagesUnderWrites lists 20,000 keys in pages while a writer
// creates, changes and deletes keys of the listing, and checks that the
// union of the pages is the store at the first page's revision, which the
// writer's own record of its changes gives.
func TestListPagesUnderWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	const keys = 20000
	c := startTestCluster(t)
	c.waitLeader()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// A 64 KiB frame makes pages of 32 KiB: about 600 of these keys.
	cl, err := client.NewWithConfig(ctx, client.Config{Endpoints: c.endpoints(), FrameBytesMax: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	key := func(i int) string { return fmt.Sprintf("big/%05d", i) }

	// The initial keys, written concurrently.
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < keys; i += 64 {
				if _, err := cl.Put(ctx, key(i), []byte("v0")); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}

	// The writer is the only one writing from now on, so each of its
	// changes has the revision after the previous one: a delete's
	// revision, which the client does not return, is known too.
	type change struct {
		rev   uint64
		key   string
		value string // "" = deleted
	}
	state := map[string]string{}
	for i := range keys {
		state[key(i)] = "v0"
	}
	rev, err := cl.Put(ctx, key(0), []byte("v0"))
	if err != nil {
		t.Fatal(err)
	}
	var (
		log      []change
		pageDone = make(chan struct{})
		stop     atomic.Bool
		writes   atomic.Int64
		werr     = make(chan error, 1)
	)
	go func() {
		defer close(werr)
		rng := rand.New(rand.NewPCG(1, 2))
		cur := map[string]string{}
		for k, v := range state {
			cur[k] = v
		}
		for !stop.Load() {
			k := key(rng.IntN(keys + keys/4)) // some beyond: created
			v, exists := cur[k]
			ch := change{rev: rev + 1, key: k, value: fmt.Sprint("w", rev+1)}
			if exists && rng.IntN(2) == 0 {
				ch.value = ""
				if ok, err := cl.Delete(ctx, k); err != nil || !ok {
					werr <- fmt.Errorf("delete %s (%q): %v, %v", k, v, ok, err)
					return
				}
				delete(cur, k)
			} else {
				got, err := cl.Put(ctx, k, []byte(ch.value))
				if err != nil || got != ch.rev {
					werr <- fmt.Errorf("put %s at revision %d, want %d: %v", k, got, ch.rev, err)
					return
				}
				cur[k] = ch.value
			}
			rev = ch.rev
			log = append(log, ch)
			writes.Add(1)
			select { // a few changes between pages
			case <-pageDone:
			case <-time.After(time.Millisecond):
			}
		}
	}()

	var got []client.KV
	var pinned uint64
	pages := 0
	for p, err := range cl.ListPages(ctx, "big/", 0) {
		if err != nil {
			t.Fatal(err)
		}
		if pages == 0 {
			pinned = p.Revision
		}
		got = append(got, p.KVs...)
		pages++
		for w := writes.Load(); writes.Load() < w+3; {
			select {
			case pageDone <- struct{}{}:
			case <-time.After(time.Millisecond):
			}
		}
	}
	stop.Store(true)
	if err := <-werr; err != nil {
		t.Fatal(err)
	}

	// The store at the pinned revision: the initial keys, with the
	// writer's changes up to that revision.
	later := 0
	for _, ch := range log {
		switch {
		case ch.rev > pinned:
			later++
		case ch.value == "":
			delete(state, ch.key)
		default:
			state[ch.key] = ch.value
		}
	}
	if pages < 20 || later < 2*pages {
		t.Fatalf("%d pages, %d changes after the pinned revision: the test did not page under writes", pages, later)
	}
	if len(got) != len(state) {
		t.Fatalf("the pages hold %d keys; the store at revision %d had %d", len(got), pinned, len(state))
	}
	for i, kv := range got {
		if i > 0 && got[i-1].Key >= kv.Key {
			t.Fatalf("keys out of order: %s then %s", got[i-1].Key, kv.Key)
		}
		if want, ok := state[kv.Key]; !ok || string(kv.Value) != want || kv.ModRevision > pinned {
			t.Fatalf("%s = %q (mod revision %d); at revision %d it was %q (present: %v)", kv.Key, kv.Value, kv.ModRevision, pinned, want, ok)
		}
	}
	t.Logf("%d keys in %d pages at revision %d, %d changes meanwhile", len(got), pages, pinned, later)
}

// TestListPageThroughTheLog: a follower forwards a linearizable page to
// the leader as a one-key List barrier and reads the page itself once the
// barrier is applied; a page at a pinned revision it answers at once.
func TestListPageThroughTheLog(t *testing.T) {
	c := startTestCluster(t)
	leader := c.waitLeader()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := client.New(ctx, c.endpoints()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range 10 {
		if _, err := cl.Put(ctx, fmt.Sprintf("k/%d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	follower := paxos.NodeID(1)
	if follower == leader {
		follower = 2
	}
	sc, err := wire.DialClient(ctx, c.peers[follower], "", 0)
	if err != nil {
		t.Fatal(err)
	}
	mux := wire.NewMux(sc)
	defer mux.Close()
	if mux.Version() != wire.ProtocolVersion {
		t.Fatalf("negotiated version %d", mux.Version())
	}
	q := &wire.Request{Op: wire.OpList, ClientID: 99, Seq: 1, AckedBelow: 1, Prefix: "k/", Limit: 4, PageBytes: 1 << 20}
	resp, err := mux.Call(ctx, q)
	if err != nil || resp.Err != wire.ErrNone || len(resp.KVs) != 4 || !resp.More || resp.NextKey != "k/3\x00" || resp.Revision != 10 {
		t.Fatalf("first page through the log: %+v, %v", resp, err)
	}
	if _, err := cl.Delete(ctx, "k/5"); err != nil {
		t.Fatal(err)
	}
	q2 := &wire.Request{Op: wire.OpList, ClientID: 99, Seq: 2, AckedBelow: 2, Prefix: "k/", Limit: 4,
		PageBytes: 1 << 20, StartKey: resp.NextKey, Revision: resp.Revision}
	resp, err = mux.Call(ctx, q2)
	if err != nil || resp.Err != wire.ErrNone || len(resp.KVs) != 4 || resp.KVs[1].Key != "k/5" || resp.Revision != 10 {
		t.Fatalf("second page, pinned before k/5 was deleted: %+v, %v", resp, err)
	}
}
