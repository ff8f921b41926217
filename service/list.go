package service

import (
	"fmt"

	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// listPageBytesMax is the most a page of a paged List holds, whatever the
// client asks for (docs/PROTOCOL.md, "Paged listings"): big enough that a
// page's round trip is small next to reading it, small enough that one
// listing does not hold the node loop or a connection's queue for long.
const listPageBytesMax = 4 << 20

// paged reports whether q reads one page of a paged listing (version 4).
func paged(q *wire.Request) bool { return q.Op == wire.OpList && q.PageBytes != 0 }

// pinnedHere reports whether q is a page at a revision this node has
// applied. The store at that revision is the same on every replica, so
// the node answers it from its own state at once: neither the log nor a
// lease would make the answer any more current.
func (n *Node) pinnedHere(q *wire.Request) bool {
	return paged(q) && q.Revision != 0 && !n.installing() && q.Revision <= n.sm.Revision()
}

// pageBytes is the byte bound of q's page: the client's (what its frame
// limit receives), at most listPageBytesMax, and at most half this node's
// frame limit so the answer's encoding overhead always fits.
func (n *Node) pageBytes(q *wire.Request) int {
	return min(int(q.PageBytes), listPageBytesMax, n.cfg.FrameBytesMax/2)
}

// listRead answers a List from the applied state: a page of a paged
// listing, or (without PageBytes) the whole listing up to Limit, as
// version 3 did.
func (n *Node) listRead(q *wire.Request) *wire.Response {
	lq := statemachine.ListQuery{Prefix: q.Prefix, Limit: int(q.Limit)}
	if paged(q) {
		lq.Start, lq.Revision, lq.Bytes = q.StartKey, q.Revision, n.pageBytes(q)
		if q.Revision > n.sm.Revision() && q.Serializable {
			// A lagging node: another one, or a linearizable read, has
			// the revision. (A linearizable read is answered from a state
			// that has every revision the cluster ever returned: one
			// above it was never returned, and ListPage calls it
			// invalid.)
			return &wire.Response{Err: wire.ErrUnavailable, Revision: n.sm.Revision(), ErrMsg: fmt.Sprintf(
				"list at revision %d: this node has applied only revision %d; retry elsewhere or without serializable", q.Revision, n.sm.Revision())}
		}
	}
	page, err := n.sm.ListPage(lq)
	if err != nil {
		resp := resultResponse(statemachine.OpList, statemachine.Result{Err: err, Revision: n.sm.Revision()})
		if resp.Err == wire.ErrCompacted {
			resp.CompactRevision = n.sm.OldestListRevision()
		}
		return &resp
	}
	return &wire.Response{Revision: page.Revision, More: page.More, NextKey: page.Next, KVs: wireKVs(page.KVs)}
}
