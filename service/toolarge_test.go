package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/paxosd/paxosd/client"
)

// TestAnswerTooLargeForAFrame: a list whose answer exceeds the frame limit
// gets an error that says so (it used to get no answer: the client waited
// for its timeout, and the node logged only at debug level).
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
	start := time.Now()
	_, err = cl.List(ctx, "big/", 0)
	if !errors.Is(err, client.ErrTooLarge) || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("listing 128 KiB through a 64 KiB frame: %v, want a too-large error naming the limit", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the refusal took %s: the client waited for a timeout", d)
	}
	if kvs, err := cl.List(ctx, "big/", 4); err != nil || len(kvs) != 4 {
		t.Fatalf("a list with a limit: %d keys, %v", len(kvs), err)
	}
}
