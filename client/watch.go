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
// created it), or a server that does not say. The values' bytes may be
// shared with the same event delivered to the client's other watches:
// copy them before changing them.
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

// WatchResponse is one response of a watch (WatchResponses): a batch of
// events, or a progress notification.
type WatchResponse struct {
	// Events are the changes, in revision order (the events of one
	// revision, a transaction's writes, always in one response); none in
	// a progress notification.
	Events []Event
	// Revision is the watch's position after this response: every change
	// up to it that matches the watch has been delivered, in this
	// response or an earlier one. A new watch WithRevision(Revision+1)
	// goes on from there, missing nothing and repeating nothing. With
	// events it is the last one's revision; a progress notification may
	// carry a later one, past changes of other keys.
	Revision uint64
}

// IsProgressNotify reports whether r is a progress notification: no
// events, only a new position.
func (r WatchResponse) IsProgressNotify() bool { return len(r.Events) == 0 }

// Watch streams every change of key (or of the keys under it, WithPrefix),
// in revision order. It reconnects by itself and resumes after the last
// revision it delivered, or the last progress notification's (protocol
// 11: a node tells an idle watch how far it is up to date, so a resume
// need not replay the changes of other keys). The channel closes when ctx
// ends or on an error it cannot recover from — ErrCompacted when the watch
// asks for changes older than the cluster keeps; err then says why.
func (c *Client) Watch(ctx context.Context, key string, opts ...WatchOption) (<-chan []Event, func() error) {
	out := make(chan []Event, 16)
	errf := c.watch(ctx, key, opts, func() { close(out) }, func(r WatchResponse) bool {
		if len(r.Events) == 0 {
			return true
		}
		select {
		case out <- r.Events:
			return true
		case <-ctx.Done():
			return false
		}
	})
	return out, errf
}

// WatchResponses is Watch that also delivers the watch's position: each
// response carries its Revision, and progress notifications (responses
// without events) come when the position moves without a matching change:
// first the revision the watch starts after, when it starts "from now",
// then whenever the node serving the watch reports progress on it (after
// 10 s without a change, by default; nodes of protocol 11 and later). A
// program that stores Revision after handling each response restarts,
// after a crash, with WithRevision(Revision+1) and misses nothing.
func (c *Client) WatchResponses(ctx context.Context, key string, opts ...WatchOption) (<-chan WatchResponse, func() error) {
	out := make(chan WatchResponse, 16)
	errf := c.watch(ctx, key, opts, func() { close(out) }, func(r WatchResponse) bool {
		select {
		case out <- r:
			return true
		case <-ctx.Done():
			return false
		}
	})
	return out, errf
}

// watch runs a watch in a goroutine, handing emit every response that
// moves its position, and calls closed when it ends; the function it
// returns waits for that and says why.
func (c *Client) watch(ctx context.Context, key string, opts []WatchOption, closed func(), emit func(WatchResponse) bool) func() error {
	base := &wire.Request{Op: wire.OpWatch, Key: key}
	for _, o := range opts {
		o(base)
	}
	var final error
	done := make(chan struct{})
	// next is the revision to resume from: one past the position.
	next := base.FromRevision
	go func() {
		defer close(done)
		defer closed()
		final = c.stream(ctx, func() *wire.Request {
			q := *base
			q.FromRevision = next
			return &q
		}, func(resp *wire.Response) bool {
			if len(resp.Events) == 0 {
				// The acknowledgement of a (re)opened watch — "from now":
				// where it starts; a resume: where it resumed, nothing
				// new — or a progress notification: every matching
				// change up to resp.Revision was sent.
				if next != 0 && resp.Revision < next {
					return true
				}
				next = resp.Revision + 1
				return emit(WatchResponse{Revision: resp.Revision})
			}
			evs := make([]Event, len(resp.Events))
			for i, e := range resp.Events {
				evs[i] = Event{Type: EventType(e.Type), KV: e.KV, PrevKV: e.PrevKV}
			}
			rev := evs[len(evs)-1].KV.ModRevision
			next = rev + 1
			return emit(WatchResponse{Events: evs, Revision: rev})
		})
	}()
	return func() error { <-done; return final }
}
