package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/paxosd/paxosd/wire"
)

// A client takes no sequence number seqWindow or more above its oldest
// request still waiting for an answer: it waits for that one (or its
// context), so that its newer requests cannot push the node's floor past
// a request the node shed (TestBackPressureEndToEnd).
func TestSequenceWindow(t *testing.T) {
	c := &Client{id: 1, outstanding: map[uint64]bool{}}
	ctx := context.Background()
	var dones []func()
	for i := 0; i < seqWindow; i++ {
		done, err := c.sequence(ctx, &wire.Request{})
		if err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		dones = append(dones, done)
	}
	// The newest may end: the oldest still holds the window.
	dones[seqWindow-1]()
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := c.sequence(short, &wire.Request{}); !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a number %d above the oldest waiting request: err %v, want ErrTimeout after waiting", seqWindow, err)
	}
	got := make(chan *wire.Request, 1)
	go func() {
		q := &wire.Request{}
		if _, err := c.sequence(ctx, q); err != nil {
			t.Error(err)
		}
		got <- q
	}()
	select {
	case <-got:
		t.Fatal("a number was taken while the oldest request still waited")
	case <-time.After(50 * time.Millisecond):
	}
	dones[0]() // the oldest is answered
	select {
	case q := <-got:
		if q.Seq != seqWindow+1 || q.AckedBelow != 2 {
			t.Fatalf("seq %d acked_below %d, want %d and 2", q.Seq, q.AckedBelow, seqWindow+1)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("still waiting 5 s after the oldest request was answered")
	}
	// Blocking calls do not hold the window, and a keep-alive never waits.
	d := &Client{id: 2, outstanding: map[uint64]bool{}}
	for i := 0; i < seqWindow; i++ {
		if _, err := d.sequence(ctx, &wire.Request{Op: wire.OpLockAcquire, Wait: true}); err != nil {
			t.Fatalf("blocking call %d: %v", i+1, err)
		}
	}
	for i := 0; i < seqWindow; i++ {
		if _, err := d.sequence(ctx, &wire.Request{Op: wire.OpPut}); err != nil {
			t.Fatalf("a put behind %d waiting locks: %v", seqWindow, err)
		}
	}
	if _, err := d.sequence(short, &wire.Request{Op: wire.OpPut}); !errors.Is(err, ErrTimeout) {
		t.Fatalf("a put %d above the oldest waiting put: err %v, want ErrTimeout", seqWindow, err)
	}
	if _, err := d.sequence(short, &wire.Request{Op: wire.OpSessionKeepAlive}); err != nil {
		t.Fatalf("a keep-alive waited for the window: %v", err)
	}
}
