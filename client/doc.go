// Package client is the Go client library for paxosd.
//
//	c, err := client.New(ctx, "127.0.0.1:7401", "127.0.0.1:7402", "127.0.0.1:7403")
//	if err != nil { ... }
//	defer c.Close()
//	rev, err := c.Put(ctx, "config/mode", []byte("blue"))
//	kv, err := c.Get(ctx, "config/mode")          // linearizable
//	if errors.Is(err, client.ErrNotFound) { ... }
//
// Every call takes a context; its deadline bounds the whole call, retries
// included. A request keeps its (client id, sequence number) across
// retries, so a write retried after a timeout or a dead node is applied
// once. The client talks to one endpoint at a time (any node serves any
// request, forwarding to the leader); when that node dies or stops
// answering it moves to the next at once rather than waiting. A node too
// busy to take a request (protocol 13) says when to send it again: the
// client waits that long, with jitter, and retries; a call returns
// ErrBusy only if its context ends first.
//
// One Client multiplexes many concurrent calls over one connection and is
// safe for concurrent use.
package client
