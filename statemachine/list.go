package statemachine

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// ListQuery asks for one page of a listing: the keys that start with
// Prefix, from Start on, as the store was at Revision.
type ListQuery struct {
	Prefix string
	// Start is the first key the page may hold (inclusive): "" or a key
	// below Prefix starts at Prefix's first key. The next page of a
	// listing starts at the previous page's ListPage.Next.
	Start string
	// Revision pins the page to the store as it was at that revision (0:
	// the current revision). Every page of a listing passes the revision
	// the first one returned, so the pages together are one snapshot.
	Revision uint64
	// Limit bounds the keys of the page (<= 0: no bound).
	Limit int
	// Bytes bounds the page's size as ListKVBytes counts it (<= 0: no
	// bound). A page always holds at least one key when one remains, so a
	// single value larger than Bytes still makes progress.
	Bytes int
}

// ListPage is one page of a listing.
type ListPage struct {
	KVs []KV // in key order; Values are shared and must not be modified
	// Revision is the store revision the page was read at: the query's,
	// or the current one when the query gave none.
	Revision uint64
	// More says that keys of the listing remain after this page; Next is
	// then the Start of the next page: the last key with "\x00" appended,
	// the smallest key above it.
	More bool
	Next string
}

// listKVOverhead bounds what a KV costs in a wire answer beyond its key and
// value bytes (a msgpack array header, the str and bin headers and three
// uint64 revisions: 36 bytes at most). Counting it keeps a page of
// millions of tiny keys as bounded as a page of a few big values.
const listKVOverhead = 40

// ListKVBytes is what a KV counts against ListQuery.Bytes.
func ListKVBytes(kv KV) int { return len(kv.Key) + len(kv.Value) + listKVOverhead }

// ListPage reads one page of a listing from the applied state, a pure read.
//
// A page at an older revision R is the current state with the changes made
// after R undone: for each key of the listing's range that changed after
// R, the kept history (the ring watches read) holds, in the first change
// after R, the pair as it was at R (PrevKV; none if the key did not exist
// then). Keys that did not change after R are as they are now. So a page
// costs O(log n) to seek plus its keys, plus one pass over the history
// after R. R must be covered by the history: when changes after R were
// dropped, ListPage answers ErrCompacted and the listing must start again.
func (sm *StateMachine) ListPage(q ListQuery) (ListPage, error) {
	cur := sm.kv.rev
	rev := q.Revision
	switch oldest := sm.OldestListRevision(); {
	case rev == 0:
		rev = cur
	case rev > cur:
		return ListPage{}, fmt.Errorf("%w: list at revision %d: the store is only at revision %d", ErrInvalid, rev, cur)
	case rev < oldest:
		return ListPage{}, fmt.Errorf("%w: list at revision %d: history compacted (oldest kept is %d); start the listing again",
			ErrCompacted, rev, oldest)
	}
	from := max(q.Prefix, q.Start)
	p := pager{q: q, page: ListPage{Revision: rev}}
	if rev == cur { // nothing to undo: a straight walk of the key index
		sm.kv.ascendFrom(from, func(kv KV) bool {
			return strings.HasPrefix(kv.Key, q.Prefix) && p.add(kv)
		})
		return p.done(), nil
	}
	// Merge the current keys with the ones changed after rev, both in key
	// order; a changed key takes its state at rev, which may be absent.
	asOf, changed := sm.kvHist.statesAt(rev, q.Prefix, from)
	stopped := false
	emit := func(kv KV) bool {
		stopped = !p.add(kv)
		return !stopped
	}
	emitOld := func(key string) bool {
		if old := asOf[key]; old.Key != "" { // else created after rev
			return emit(old)
		}
		return true
	}
	j := 0
	sm.kv.ascendFrom(from, func(kv KV) bool {
		if !strings.HasPrefix(kv.Key, q.Prefix) {
			return false
		}
		for ; j < len(changed) && changed[j] < kv.Key; j++ {
			if !emitOld(changed[j]) { // deleted after rev
				return false
			}
		}
		if j < len(changed) && changed[j] == kv.Key {
			j++
			return emitOld(kv.Key) // modified (or re-created) after rev
		}
		return emit(kv) // unchanged since rev
	})
	// Keys deleted after rev that sort after every current key of the
	// range.
	for ; !stopped && j < len(changed); j++ {
		emitOld(changed[j])
	}
	return p.done(), nil
}

// OldestListRevision returns the oldest revision a paged listing can be
// read at: every change after it is still in the history. The history's
// revisions are consecutive (each revision is recorded, a put's or a
// delete's as one event, a transaction's as one per key it wrote), so it
// is the revision before the oldest event kept — or later, when a snapshot
// restored only part of the history.
func (sm *StateMachine) OldestListRevision() uint64 {
	h := &sm.kvHist
	if h.events.len() == 0 {
		return max(h.dropped, sm.kv.rev)
	}
	return max(h.dropped, h.events.at(0).Revision-1)
}

// pager gathers a page, applying the query's key and byte bounds.
type pager struct {
	q     ListQuery
	page  ListPage
	bytes int
}

// add appends kv unless a bound is reached; then it marks the page as
// having more (kv is the proof) and returns false.
func (p *pager) add(kv KV) bool {
	n := ListKVBytes(kv)
	full := p.q.Limit > 0 && len(p.page.KVs) >= p.q.Limit ||
		p.q.Bytes > 0 && len(p.page.KVs) > 0 && p.bytes+n > p.q.Bytes
	if full {
		p.page.More = true
		return false
	}
	p.page.KVs = append(p.page.KVs, kv)
	p.bytes += n
	return true
}

func (p *pager) done() ListPage {
	if p.page.More {
		p.page.Next = p.page.KVs[len(p.page.KVs)-1].Key + "\x00"
	}
	return p.page
}

// statesAt returns, for every key starting with prefix and >= from that
// changed after revision rev, its pair as of rev (an empty Key: absent
// then), and those keys sorted. The first change after rev holds that
// state as its PrevKV. The caller checked that the history covers rev.
func (h *kvHistory) statesAt(rev uint64, prefix, from string) (map[string]KV, []string) {
	n := h.events.len()
	i := sort.Search(n, func(i int) bool { return h.events.at(i).Revision > rev })
	asOf := map[string]KV{}
	var keys []string
	for ; i < n; i++ {
		ev := h.events.at(i)
		k := ev.KV.Key
		if k < from || !strings.HasPrefix(k, prefix) {
			continue
		}
		if _, seen := asOf[k]; !seen {
			asOf[k] = ev.PrevKV
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return asOf, keys
}
