package service

import (
	"reflect"
	"testing"
	"unsafe"

	"github.com/paxosd/paxosd/wire"
)

// streamIDs lists the ids of ss's streams in the order each visits them.
func streamIDs(ss *streamSet) []uint64 {
	var ids []uint64
	ss.each(func(k streamKey, s *stream) bool {
		if s.key != k {
			panic("a stream visited under another key")
		}
		ids = append(ids, k.id)
		return true
	})
	return ids
}

// TestStreamSetOrderAndRemoval: the set walks its streams in opening
// order, without those removed (before or during the walk, by the walk's
// function or by another path), visits none twice, and leaves streams
// added during a walk to the next one.
func TestStreamSetOrderAndRemoval(t *testing.T) {
	ss := newStreamSet()
	key := func(id uint64) streamKey { return streamKey{nil, id} }
	for id := uint64(1); id <= 6; id++ {
		ss.add(key(id), &stream{})
	}
	ss.remove(key(2))
	if got, want := streamIDs(&ss), []uint64{1, 3, 4, 5, 6}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after removing 2: %v, want %v", got, want)
	}

	// During a walk: 3 ends itself (its function returns false), 4
	// removes 5 (as corkAnswer removes a stream whose push is too large),
	// 6 removes itself and its id is reused by a new stream at once, and
	// 1 opens 7.
	var visited []uint64
	ss.each(func(k streamKey, s *stream) bool {
		visited = append(visited, k.id)
		switch k.id {
		case 1:
			ss.add(key(7), &stream{})
		case 3:
			return false
		case 4:
			ss.remove(key(5))
		case 6:
			ss.remove(key(6))
			ss.add(key(6), &stream{nextRev: 66})
			return false // the old 6 ends: the new one stays
		}
		return true
	})
	if want := []uint64{1, 3, 4, 6}; !reflect.DeepEqual(visited, want) {
		t.Fatalf("visited %v during the walk, want %v", visited, want)
	}
	if got, want := streamIDs(&ss), []uint64{1, 4, 7, 6}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after the walk: %v, want %v", got, want)
	}
	if s, ok := ss.get(key(6)); !ok || s.nextRev != 66 {
		t.Fatalf("stream 6 after it was replaced: %+v, %v; want the new one", s, ok)
	}
	if ss.len() != 4 {
		t.Fatalf("len %d, want 4", ss.len())
	}

	// Many removals: the order is compacted, and stays in order.
	for id := uint64(100); id < 400; id++ {
		ss.add(key(id), &stream{})
	}
	for id := uint64(100); id < 399; id++ {
		ss.remove(key(id))
	}
	if len(ss.order) > 2*ss.len()+64 {
		t.Fatalf("order holds %d streams for %d open: not compacted", len(ss.order), ss.len())
	}
	if got, want := streamIDs(&ss), []uint64{1, 4, 7, 6, 399}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after many removals: %v, want %v", got, want)
	}
}

// TestStreamSetInternsWatchKeys: the watches of one key share one string
// (kvChunk compares them by pointer), and the set forgets a key once its
// last watch is gone, however it went: its memory is bounded by the open
// watches.
func TestStreamSetInternsWatchKeys(t *testing.T) {
	ss := newStreamSet()
	watch := func(id uint64, key string) *stream {
		s := &stream{op: wire.OpWatch, wkey: string([]byte(key))} // a string of its own, as a decoded request's
		ss.add(streamKey{nil, id}, s)
		return s
	}
	a, b := watch(1, "services/"), watch(2, "services/")
	c := watch(3, "config/")
	if unsafe.StringData(a.wkey) != unsafe.StringData(b.wkey) {
		t.Fatal("two watches of services/ hold two strings, want one")
	}
	if got := len(ss.wkeys); got != 2 {
		t.Fatalf("%d interned keys, want 2", got)
	}
	ss.remove(streamKey{nil, 1})
	watch(3, "other/") // replaces c: config/ has no watch left
	if _, ok := ss.wkeys["config/"]; ok || c.gone != true {
		t.Fatalf("config/ still interned (%v) or its replaced watch not gone (%v)", ok, c.gone)
	}
	ss.each(func(k streamKey, s *stream) bool { return k.id != 2 }) // b ends
	if _, ok := ss.wkeys["services/"]; ok {
		t.Fatal("services/ still interned with no watch of it open")
	}
	if got := len(ss.wkeys); got != 1 {
		t.Fatalf("%d interned keys, want 1 (other/)", got)
	}
}
