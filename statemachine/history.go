package statemachine

import (
	"fmt"
	"sort"
	"strings"
)

// EventType says what a KVEvent did to its key. The numbers match package
// wire's.
type EventType uint8

const (
	// EventPut: the key was created or changed; KV is the new pair.
	EventPut EventType = 1
	// EventDelete: the key was deleted; KV holds the key and, as
	// ModRevision, the revision of the deletion.
	EventDelete EventType = 2
)

func (t EventType) String() string {
	switch t {
	case EventPut:
		return "put"
	case EventDelete:
		return "delete"
	}
	return fmt.Sprintf("event(%d)", uint8(t))
}

// KVEvent is one change of the key-value store, as a watch reports it.
type KVEvent struct {
	Revision uint64 // the store revision of the change
	Type     EventType
	KV       KV
	// PrevKV is the pair before the change; an empty Key means the key
	// did not exist.
	PrevKV KV
}

// kvEventOverhead approximates an event's memory beyond its keys and
// values, for the history's byte bound.
const kvEventOverhead = 128

func (ev *KVEvent) size() int {
	return kvEventOverhead + len(ev.KV.Key) + len(ev.KV.Value) + len(ev.PrevKV.Key) + len(ev.PrevKV.Value)
}

// kvHistory is the bounded history of KV changes that watches read: every
// put, delete and successful cas, in revision order. It is derived state:
// deterministic, but not in Hash. Snapshots carry its newest part (see
// SnapshotState).
//
// Invariants: events are in increasing Revision order, all above dropped;
// len <= max and bytes <= bytesMax, except that the newest event is always
// kept; bytes is the sum of the events' sizes.
type kvHistory struct {
	events   ring[KVEvent]
	bytes    int
	max      int
	bytesMax int
	// dropped is the highest revision no longer kept (0: nothing dropped).
	dropped uint64
	// adding: a transaction's events are being added (beginRevision).
	adding bool
}

func newKVHistory(max, bytesMax int) kvHistory { return kvHistory{max: max, bytesMax: bytesMax} }

// add appends ev, whose revision is at least the newest event's: a
// transaction adds one event per key it wrote, all at its revision.
//
// Events are dropped a whole revision at a time, oldest first, so that a
// watch never sees part of a transaction: while over the bounds, the
// oldest revision goes, unless it is the newest, which stays — except
// that a newest revision of several events (a transaction) that alone is
// over the bounds is dropped whole too (a prefix delete of many keys
// would otherwise hold them all): a watch behind it gets ErrCompacted.
// Below LevelTxn every revision holds one event, and this is the single
// event rule it always was: the newest event is always kept.
func (h *kvHistory) add(ev KVEvent) {
	h.events.push(ev)
	h.bytes += ev.size()
	h.bound()
}

func (h *kvHistory) bound() {
	for h.events.len() > 0 && (h.events.len() > h.max || h.bytes > h.bytesMax) {
		first := h.events.at(0).Revision
		newest := h.events.at(h.events.len() - 1).Revision
		if first == newest && (h.events.len() == 1 || h.adding) {
			return // the newest revision stays, or is still being added
		}
		for h.events.len() > 0 && h.events.at(0).Revision == first {
			old := h.events.dropFront()
			h.bytes -= old.size()
		}
		h.dropped = first
	}
}

// beginRevision and endRevision bracket the events of one transaction:
// between them the newest revision is incomplete, and is not dropped
// while its events come in; endRevision bounds the history with it whole.
func (h *kvHistory) beginRevision() { h.adding = true }

func (h *kvHistory) endRevision() {
	h.adding = false
	h.bound()
}

// KVEvents returns the KV changes with Revision >= fromRevision whose key
// is key (prefix false) or starts with key (prefix true), oldest first, at
// most max of them (max <= 0: all) — or more, to end with every matching
// event of the last revision returned: the events of one revision (a
// transaction's writes) are never split between two calls. As of the
// applied state. It returns
// ErrCompacted if some change at or after fromRevision is no longer kept
// (see OldestRevision). When it returns fewer than max events (or max <=
// 0), every
// change up to Revision() was examined: a caller may resume from
// Revision()+1. Values are shared with the state machine and must not be
// modified.
func (sm *StateMachine) KVEvents(fromRevision uint64, key string, prefix bool, max int) ([]KVEvent, error) {
	h := &sm.kvHist
	if h.dropped > 0 && fromRevision <= h.dropped {
		return nil, fmt.Errorf("%w: watch from revision %d, but the history starts at revision %d", ErrCompacted, fromRevision, h.dropped+1)
	}
	n := h.events.len()
	i := sort.Search(n, func(i int) bool { return h.events.at(i).Revision >= fromRevision })
	var out []KVEvent
	for ; i < n; i++ {
		ev := h.events.at(i)
		if max > 0 && len(out) >= max && ev.Revision != out[len(out)-1].Revision {
			break // full, and never in the middle of a revision
		}
		if ev.KV.Key == key || prefix && strings.HasPrefix(ev.KV.Key, key) {
			out = append(out, ev)
		}
	}
	return out, nil
}

// OldestRevision returns the oldest revision a watch can start from
// without ErrCompacted: the history holds every change from it on.
func (sm *StateMachine) OldestRevision() uint64 { return sm.kvHist.dropped + 1 }

// OldestElectionSeq returns the number of the oldest change election name's
// history still holds: ElectionChanges answers from it on without
// ErrCompacted. It is 0 for an election that was never held.
func (sm *StateMachine) OldestElectionSeq(name string) uint64 {
	if e := sm.elect.m[name]; e != nil {
		if first, ok := e.history.first(); ok {
			return first.Seq
		}
	}
	return 0
}

// changeRing is an election's bounded history of changes.
type changeRing struct{ r ring[LeaderChange] }

func (c *changeRing) add(ch LeaderChange, max int) {
	c.r.push(ch)
	for c.r.len() > max && c.r.len() > 1 {
		c.r.dropFront()
	}
}

func (c *changeRing) first() (LeaderChange, bool) {
	if c.r.len() == 0 {
		return LeaderChange{}, false
	}
	return c.r.at(0), true
}

func (c *changeRing) last() (LeaderChange, bool) {
	if c.r.len() == 0 {
		return LeaderChange{}, false
	}
	return c.r.at(c.r.len() - 1), true
}

// from returns a copy of the changes from position i (0 = oldest kept).
func (c *changeRing) from(i int) []LeaderChange {
	n := c.r.len()
	if i >= n {
		return nil
	}
	out := make([]LeaderChange, 0, n-i)
	for ; i < n; i++ {
		out = append(out, c.r.at(i))
	}
	return out
}

// ring is a FIFO queue: push at the back, drop from the front, index from
// the front, all in amortized constant time.
//
// Invariant: the live elements are buf[start:]; buf[:start] are zeroed.
type ring[T any] struct {
	buf   []T
	start int
}

func (r *ring[T]) len() int   { return len(r.buf) - r.start }
func (r *ring[T]) at(i int) T { return r.buf[r.start+i] }
func (r *ring[T]) push(v T)   { r.buf = append(r.buf, v) }

func (r *ring[T]) dropFront() T {
	v := r.buf[r.start]
	var zero T
	r.buf[r.start] = zero // let the garbage collector have it
	r.start++
	// Slide the live elements down once the dead prefix is as long as
	// them: each element moves O(1) times on average.
	if r.start >= 32 && r.start*2 >= len(r.buf) {
		n := copy(r.buf, r.buf[r.start:])
		clear(r.buf[n:])
		r.buf = r.buf[:n]
		r.start = 0
	}
	return v
}
