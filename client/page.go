package client

import (
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/paxosd/paxosd/wire"
)

// ErrUnsupported: the server (or the connection's negotiated protocol
// version) is too old for the call. Paged listings need version 4.
var ErrUnsupported = errors.New("not supported by the server")

// pagedVersion is the protocol version that has paged listings.
const pagedVersion = 4

// pageBytesDefault is what a client asks a page to hold: the server's own
// bound. Smaller frame limits ask for less (pageBytes).
const pageBytesDefault = 4 << 20

// listRestartsMax bounds how often List starts a listing over because the
// history no longer covered its revision (a store written faster than the
// listing reads it): then ErrCompacted is the answer.
const listRestartsMax = 3

// Page is one page of a paged listing.
type Page struct {
	KVs []KV
	// Revision is the store revision the page was read at: the first
	// page's, which every later page of the listing passes back.
	Revision uint64
	// More says keys remain after this page; Next is then the start key
	// of the next page (the last key with "\x00" appended).
	More bool
	Next string
}

// pageBytes is the byte bound a page asks for: half the client's frame
// limit at most, so an answer always fits what the client receives.
func (c *Client) pageBytes() uint32 {
	frame := c.cfg.FrameBytesMax
	if frame <= 0 {
		frame = wire.DefaultFrameBytesMax
	}
	return uint32(min(pageBytesDefault, frame/2))
}

// ListPage reads one page of the keys starting with prefix, in key order:
// from start (inclusive; "" = the prefix's first key), as the store was at
// revision (0 = now), at most limit keys (0 = as many as the page's byte
// bound holds; at least one key when one remains). Pass the returned
// Page's Next and Revision to read the page after it: the pages together
// are the listing at that one revision, whatever is written meanwhile.
// ErrCompacted means the cluster's history no longer covers revision:
// start the listing again. ErrUnsupported means the node speaks a
// protocol older than version 4.
func (c *Client) ListPage(ctx context.Context, prefix, start string, revision uint64, limit int, opts ...ReadOption) (Page, error) {
	q := &wire.Request{Op: wire.OpList, Prefix: prefix, StartKey: start, Revision: revision,
		Limit: uint32(limit), PageBytes: c.pageBytes()}
	for _, o := range opts {
		o(q)
	}
	resp, err := c.do(ctx, q)
	if err != nil {
		return Page{}, err
	}
	if err := responseError(resp); err != nil {
		return Page{}, err
	}
	p := Page{Revision: resp.Revision, More: resp.More, Next: resp.NextKey, KVs: make([]KV, len(resp.KVs))}
	copy(p.KVs, resp.KVs)
	if p.More && p.Next == "" {
		return Page{}, fmt.Errorf("%w: a page with more keys after it but no next key", ErrInternal)
	}
	return p, nil
}

// ListPages returns the pages of the listing of prefix, every one read at
// the first one's revision, at most pageLimit keys each (0: as the byte
// bound allows). The sequence stops at the last page, or after yielding
// an error.
func (c *Client) ListPages(ctx context.Context, prefix string, pageLimit int, opts ...ReadOption) iter.Seq2[Page, error] {
	return func(yield func(Page, error) bool) {
		start, rev := "", uint64(0)
		for {
			p, err := c.ListPage(ctx, prefix, start, rev, pageLimit, opts...)
			if err != nil {
				yield(Page{}, err)
				return
			}
			if !yield(p, nil) || !p.More {
				return
			}
			start, rev = p.Next, p.Revision
		}
	}
}

// List returns the keys starting with prefix, sorted; limit 0 means all.
// It reads them in pages, all at one revision, so a listing too large for
// one answer still arrives whole and consistent. Against a node older
// than protocol version 4 it asks for the whole listing at once.
func (c *Client) List(ctx context.Context, prefix string, limit int, opts ...ReadOption) ([]KV, error) {
	for restarts := 0; ; restarts++ {
		out, err := c.listPaged(ctx, prefix, limit, opts)
		switch {
		case errors.Is(err, ErrUnsupported):
			return c.listWhole(ctx, prefix, limit, opts)
		case errors.Is(err, ErrCompacted) && restarts < listRestartsMax:
			continue // written faster than we read: start over at a newer revision
		}
		return out, err
	}
}

func (c *Client) listPaged(ctx context.Context, prefix string, limit int, opts []ReadOption) ([]KV, error) {
	var out []KV
	start, rev := "", uint64(0)
	for {
		pageLimit := 0
		if limit > 0 {
			pageLimit = limit - len(out)
		}
		p, err := c.ListPage(ctx, prefix, start, rev, pageLimit, opts...)
		if err != nil {
			return nil, err
		}
		out = append(out, p.KVs...)
		if !p.More || limit > 0 && len(out) >= limit {
			return out, nil
		}
		start, rev = p.Next, p.Revision
	}
}

// listWhole is the List of protocol versions 1 to 3: one answer, which
// the server refuses (ErrTooLarge) when it does not fit in a frame.
func (c *Client) listWhole(ctx context.Context, prefix string, limit int, opts []ReadOption) ([]KV, error) {
	q := &wire.Request{Op: wire.OpList, Prefix: prefix, Limit: uint32(limit)}
	for _, o := range opts {
		o(q)
	}
	resp, err := c.do(ctx, q)
	if err != nil {
		return nil, err
	}
	if err := responseError(resp); err != nil {
		return nil, err
	}
	out := make([]KV, len(resp.KVs))
	copy(out, resp.KVs)
	return out, nil
}

// versionNeeded is the protocol version a connection must have negotiated
// for q to mean what the client means: an older server ignores the fields
// it does not know (docs/PROTOCOL.md §1), and would answer a page request
// with the whole listing from its first key and no "more", which a paging
// client would take for the last page.
func versionNeeded(q *wire.Request) uint32 {
	switch {
	case q.Op == wire.OpList && q.PageBytes != 0:
		return pagedVersion
	case q.Op == wire.OpTxn:
		return wire.VersionTxn
	case q.Op == wire.OpPut && q.SessionID != 0:
		return wire.VersionEphemeral
	case q.Op == wire.OpSessionKeepAliveBatch:
		return wire.VersionKeepAliveBatch
	}
	return 1
}

func errVersion(cn *conn, q *wire.Request) error {
	what := "a paged list"
	switch {
	case q.Op == wire.OpTxn:
		what = "a transaction"
	case q.Op == wire.OpPut:
		what = "a put with a session (an ephemeral key)"
	case q.Op == wire.OpSessionKeepAliveBatch:
		what = "a keep-alive batch"
	}
	return fmt.Errorf("%w: %s at %s: %s needs protocol version %d, the connection speaks %d",
		ErrUnsupported, q.Op, cn.addr, what, versionNeeded(q), cn.mux.Version())
}
