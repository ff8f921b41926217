package client

import (
	"context"

	"github.com/paxosd/paxosd/wire"
)

// EventType says what happened to a key.
type EventType uint8

const (
	EventPut    EventType = 1
	EventDelete EventType = 2
)

// Event is one change of a watched key, at KV.ModRevision. PrevKV is the
// pair before the change, as the server sends it (docs/PROTOCOL.md,
// watch_event): an empty Key means the key did not exist (a put that
// created it), or a server that does not say.
type Event struct {
	Type   EventType
	KV     KV
	PrevKV KV
}

// WatchOption changes what Watch watches.
type WatchOption func(*wire.Request)

// WithPrefix watches every key that starts with the given key.
func WithPrefix() WatchOption { return func(q *wire.Request) { q.WatchPrefix = true } }

// WithRevision starts the watch at revision rev (inclusive), replaying the
// changes since then; by default the watch starts after the current
// revision.
func WithRevision(rev uint64) WatchOption { return func(q *wire.Request) { q.FromRevision = rev } }

// Watch streams every change of key (or of the keys under it, WithPrefix),
// in revision order. It reconnects by itself and resumes after the last
// revision it delivered. The channel closes when ctx ends or on an error
// it cannot recover from — ErrCompacted when the watch asks for changes
// older than the cluster keeps; err then says why.
func (c *Client) Watch(ctx context.Context, key string, opts ...WatchOption) (<-chan []Event, func() error) {
	base := &wire.Request{Op: wire.OpWatch, Key: key}
	for _, o := range opts {
		o(base)
	}
	out := make(chan []Event, 16)
	var final error
	done := make(chan struct{})
	next := base.FromRevision
	go func() {
		defer close(done)
		defer close(out)
		final = c.stream(ctx, func() *wire.Request {
			q := *base
			q.FromRevision = next
			return &q
		}, func(resp *wire.Response) bool {
			if next == 0 {
				next = resp.Revision + 1 // the "created" answer: resume after it
			}
			evs := make([]Event, len(resp.Events))
			for i, e := range resp.Events {
				evs[i] = Event{Type: EventType(e.Type), KV: e.KV, PrevKV: e.PrevKV}
				next = e.KV.ModRevision + 1
			}
			if len(evs) == 0 {
				return true
			}
			select {
			case out <- evs:
				return true
			case <-ctx.Done():
				return false
			}
		})
	}()
	return out, func() error { <-done; return final }
}
