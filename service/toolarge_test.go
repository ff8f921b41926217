package service

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/wire"
)

// TestAnswerTooLargeForAFrame: a list whose answer exceeds the frame limit
// gets an error that says so (it used to get no answer: the client waited
// for its timeout, and the node logged only at debug level).
//
// Since protocol version 4 the client library pages its lists, so List
// itself now succeeds: each page fits the client's frame. The refusal
// still holds for an unpaged List (what a version-3 client sends), which
// is checked on a bare connection.
func TestAnswerTooLargeForAFrame(t *testing.T) {
	c := startTunedCluster(t, func(cfg *Config) { cfg.FrameBytesMax, cfg.ValueBytesMax, cfg.BatchBytesMax = 64<<10, 16<<10, 16<<10 })
	c.waitLeader()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := client.NewWithConfig(ctx, client.Config{Endpoints: c.endpoints(), FrameBytesMax: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	value := []byte(strings.Repeat("v", 8<<10))
	for i := range 16 { // 128 KiB of values: twice the frame limit
		if _, err := cl.Put(ctx, fmt.Sprintf("big/%02d", i), value); err != nil {
			t.Fatal(err)
		}
	}

	// Unpaged, from any node (serializable: no leader needed).
	for _, ep := range c.endpoints() {
		sc, err := wire.DialClient(ctx, ep, "", 64<<10)
		if err != nil {
			t.Fatal(err)
		}
		mux := wire.NewMux(sc)
		// A follower applies the last put a little after the leader
		// answered it: the list waits until this node holds all 16.
		for {
			r, err := mux.Call(ctx, &wire.Request{Op: wire.OpGet, Key: "big/15", Serializable: true})
			if err != nil {
				t.Fatal(err)
			}
			if r.Found {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		start := time.Now()
		resp, err := mux.Call(ctx, &wire.Request{Op: wire.OpList, Prefix: "big/", Serializable: true})
		mux.Close()
		if err != nil || resp.Err != wire.ErrTooLarge || !strings.Contains(resp.ErrMsg, "limit") {
			t.Fatalf("an unpaged list of 128 KiB through a 64 KiB frame: %+v, %v; want a too-large error naming the limit", resp, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("the refusal took %s: the client waited for a timeout", d)
		}
	}

	// Paged: every key, in pages that fit.
	kvs, err := cl.List(ctx, "big/", 0)
	if err != nil || len(kvs) != 16 {
		t.Fatalf("a paged list of 128 KiB through a 64 KiB frame: %d keys, %v", len(kvs), err)
	}
	pages := 0
	for p, err := range cl.ListPages(ctx, "big/", 0) {
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if n := len(p.KVs); n == 0 || n*(8<<10) > 32<<10 {
			t.Fatalf("page %d holds %d values of 8 KiB; a page is at most 32 KiB (half the frame)", pages, n)
		}
	}
	if pages < 4 {
		t.Fatalf("%d pages for 128 KiB in 32 KiB pages", pages)
	}
	if kvs, err := cl.List(ctx, "big/", 4); err != nil || len(kvs) != 4 {
		t.Fatalf("a list with a limit: %d keys, %v", len(kvs), err)
	}
}

// TestTxnAnswerTooLarge: a transaction whose reads do not fit in a frame
// is applied all the same (its writes are in), and its TooLarge answer
// says so, with its revision; a retry of the same seq gets the same
// answer and applies nothing again.
func TestTxnAnswerTooLarge(t *testing.T) {
	c := startTunedCluster(t, func(cfg *Config) { cfg.FrameBytesMax, cfg.ValueBytesMax, cfg.BatchBytesMax = 64<<10, 16<<10, 16<<10 })
	c.waitLeader()
	ctx, cl := c.client(20 * time.Second)
	c.waitLevel(ctx, 8)
	value := []byte(strings.Repeat("v", 8<<10))
	for i := range 16 {
		if _, err := cl.Put(ctx, fmt.Sprintf("big/%02d", i), value); err != nil {
			t.Fatal(err)
		}
	}
	sc, err := wire.DialClient(ctx, c.peers[c.waitLeader()], "", 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	mux := wire.NewMux(sc)
	defer mux.Close()
	q := &wire.Request{Op: wire.OpTxn, ClientID: 777, Seq: 1,
		ThenOps: []wire.TxnOp{{Type: wire.TxnPut, Key: "marker", Value: []byte("1")}, {Type: wire.TxnGet, Key: "big/", Prefix: true}}}
	for try := 0; try < 2; try++ {
		resp, err := mux.Call(ctx, q)
		if err != nil || resp.Err != wire.ErrTooLarge || !strings.Contains(resp.ErrMsg, "the transaction was applied") ||
			!resp.Succeeded || resp.Revision != 17 {
			t.Fatalf("try %d: %+v, %v; want TooLarge saying it was applied at revision 17", try, resp, err)
		}
	}
	if kv, err := cl.Get(ctx, "marker"); err != nil || kv.Version != 1 || kv.ModRevision != 17 {
		t.Fatalf("marker: %+v %v, want written once, at revision 17", kv, err)
	}
}
