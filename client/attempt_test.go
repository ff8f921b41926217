package client_test

import (
	"context"
	"sync/atomic"
	"testing"
)

// registrationCountingCtx is a cancellable context that counts the
// contexts derived from it that are still registered for its cancellation
// (context.AfterFunc registrations not yet stopped). It hides its parent's
// values so that derived contexts register through AfterFunc, not directly
// with the parent.
type registrationCountingCtx struct {
	context.Context
	live atomic.Int64
}

func (c *registrationCountingCtx) Value(any) any { return nil }

func (c *registrationCountingCtx) AfterFunc(f func()) func() bool {
	c.live.Add(1)
	stop := context.AfterFunc(c.Context, f)
	return func() bool {
		c.live.Add(-1)
		return stop()
	}
}

// TestCallsLeaveNothingOnTheCallersContext: calls made with one long-lived
// cancellable context (a program's root context) leave nothing registered
// on it once they return. An attempt used to derive a cancellable context
// from the caller's and then replace it, uncancelled, with a timed one:
// every call left a child on the caller's context until that context
// ended, a leak that grows with every call in a program that keeps one
// context for its life.
func TestCallsLeaveNothingOnTheCallersContext(t *testing.T) {
	s := startBusyServer(t, 0, 0)
	c := newClient(t, []string{s.addr})
	base, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctx := &registrationCountingCtx{Context: base}
	const calls = 100
	for i := 0; i < calls; i++ {
		if _, err := c.Put(ctx, "k", []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if n := ctx.live.Load(); n != 0 {
		t.Fatalf("after %d calls, %d contexts derived from the caller's are still registered on it, want 0", calls, n)
	}
}
