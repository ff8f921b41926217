package statemachine

import (
	"errors"
	"fmt"
	"testing"
)

func describeEvents(evs []KVEvent) string {
	s := ""
	for _, ev := range evs {
		s += fmt.Sprintf("[%d %s %s prev=%s]", ev.Revision, ev.Type, describeKV(ev.KV), describeKV(ev.PrevKV))
	}
	return s
}

func TestKVHistory(t *testing.T) {
	h := newSMHarness(t, SMOptions{})
	h.do(openCmd(60000))
	h.do(cs(1, 1, acquireCmd("l", 1, false, 0)))
	h.do(putCmd("a", "1"))                   // 1
	h.do(putCmd("b/1", "x"))                 // 2
	h.do(delCmd("a"))                        // 3
	h.do(delCmd("a"))                        // missing: no change
	h.do(casValueCmd("b/1", "x", "y"))       // 4
	h.do(casValueCmd("b/1", "x", "z"))       // fails: no change
	h.do(fenced(putCmd("b/2", "f"), "l", 7)) // fenced: no change
	h.do(fenced(putCmd("b/2", "f"), "l", 1)) // 5
	h.do(cs(2, 1, putCmd("a", "2")))         // 6
	h.do(cs(2, 1, putCmd("a", "2")))         // retry: no change
	h.do(openCmd(5000))                      // not KV: no event
	all := []KVEvent{
		{Revision: 1, Type: EventPut, KV: mkKV("a", "1", 1, 1, 1)},
		{Revision: 2, Type: EventPut, KV: mkKV("b/1", "x", 2, 2, 1)},
		{Revision: 3, Type: EventDelete, KV: KV{Key: "a", ModRevision: 3}, PrevKV: mkKV("a", "1", 1, 1, 1)},
		{Revision: 4, Type: EventPut, KV: mkKV("b/1", "y", 2, 4, 2), PrevKV: mkKV("b/1", "x", 2, 2, 1)},
		{Revision: 5, Type: EventPut, KV: mkKV("b/2", "f", 5, 5, 1)},
		{Revision: 6, Type: EventPut, KV: mkKV("a", "2", 6, 6, 1)},
	}
	pick := func(revs ...int) []KVEvent {
		var out []KVEvent
		for _, r := range revs {
			out = append(out, all[r-1])
		}
		return out
	}
	tests := []struct {
		from   uint64
		key    string
		prefix bool
		max    int
		want   []KVEvent
	}{
		{1, "", true, 0, all},
		{0, "", true, 0, all},
		{4, "", true, 0, pick(4, 5, 6)},
		{1, "", true, 2, pick(1, 2)},
		{1, "a", false, 0, pick(1, 3, 6)},
		{2, "a", false, 1, pick(3)},
		{1, "b/", true, 0, pick(2, 4, 5)},
		{1, "b", false, 0, nil},
		{1, "b/1", true, 0, pick(2, 4)},
		{6, "", true, 0, pick(6)},
		{7, "", true, 0, nil},
		{1 << 60, "a", false, 0, nil},
	}
	for _, tt := range tests {
		got, err := h.sm.KVEvents(tt.from, tt.key, tt.prefix, tt.max)
		if err != nil || describeEvents(got) != describeEvents(tt.want) {
			t.Errorf("KVEvents(%d, %q, %v, %d) = %s, %v\nwant %s", tt.from, tt.key, tt.prefix, tt.max, describeEvents(got), err, describeEvents(tt.want))
		}
	}
	if h.sm.OldestRevision() != 1 {
		t.Fatalf("oldest revision %d", h.sm.OldestRevision())
	}
}

// TestKVHistoryCompacted: the history keeps the latest KVHistoryMax events
// (and at most KVHistoryBytesMax bytes); a watch from a dropped revision
// gets ErrCompacted, never a gap.
func TestKVHistoryCompacted(t *testing.T) {
	h := newSMHarness(t, SMOptions{KVHistoryMax: 4})
	for i := range 1000 {
		h.do(putCmd(fmt.Sprint("k", i%3), "v"))
	}
	if h.sm.OldestRevision() != 997 {
		t.Fatalf("oldest revision %d, want 997", h.sm.OldestRevision())
	}
	for _, from := range []uint64{0, 1, 500, 996} {
		if evs, err := h.sm.KVEvents(from, "", true, 0); !errors.Is(err, ErrCompacted) {
			t.Fatalf("from %d: %s, %v; want ErrCompacted", from, describeEvents(evs), err)
		}
	}
	for from := uint64(997); from <= 1001; from++ {
		evs, err := h.sm.KVEvents(from, "", true, 0)
		if err != nil || len(evs) != int(max(1001-int(from), 0)) || len(evs) > 0 && evs[0].Revision != from {
			t.Fatalf("from %d: %s, %v", from, describeEvents(evs), err)
		}
	}
	if n := h.sm.kvHist.events.len(); n != 4 || len(h.sm.kvHist.events.buf) > 4+64 {
		t.Fatalf("ring holds %d events in a buffer of %d", n, len(h.sm.kvHist.events.buf))
	}

	// The byte bound: each event is about kvEventOverhead+100 bytes.
	hb := newSMHarness(t, SMOptions{KVHistoryBytesMax: 10 * (kvEventOverhead + 100)})
	big := string(make([]byte, 98))
	for i := range 50 {
		hb.do(putCmd(fmt.Sprint("k", i), big)) // key 2-3 bytes, value 98
	}
	n := hb.sm.kvHist.events.len()
	if n < 9 || n > 11 || hb.sm.kvHist.bytes > 10*(kvEventOverhead+100) {
		t.Fatalf("byte bound: %d events, %d bytes", n, hb.sm.kvHist.bytes)
	}
	// The newest event is kept even if it alone is over the bound.
	hb.do(putCmd("huge", string(make([]byte, 20000))))
	if evs, err := hb.sm.KVEvents(hb.sm.Revision(), "huge", false, 0); err != nil || len(evs) != 1 {
		t.Fatalf("oversized newest event: %s, %v", describeEvents(evs), err)
	}
}

// TestKVHistoryNotInHash: the history is derived state; state machines
// that keep different amounts of it have the same Hash.
func TestKVHistoryNotInHash(t *testing.T) {
	a := newSMHarness(t, SMOptions{KVHistoryMax: 1})
	b := newSMHarness(t, SMOptions{KVHistoryMax: 1000})
	for i := range 100 {
		c := putCmd(fmt.Sprint("k", i%7), "v")
		a.do(c)
		b.do(c)
	}
	if a.sm.Hash() != b.sm.Hash() {
		t.Fatalf("the KV history changes the hash")
	}
}

// TestHistoryRing exercises the ring's slide-down.
func TestHistoryRing(t *testing.T) {
	var r ring[int]
	next, first := 0, 0
	for round := range 2000 {
		for range round % 7 {
			r.push(next)
			next++
		}
		for range round % 5 {
			if r.len() > 0 {
				if v := r.dropFront(); v != first {
					t.Fatalf("dropped %d, want %d", v, first)
				}
				first++
			}
		}
		if r.len() != next-first {
			t.Fatalf("len %d, want %d", r.len(), next-first)
		}
		for i := 0; i < r.len(); i++ {
			if r.at(i) != first+i {
				t.Fatalf("at(%d) = %d", i, r.at(i))
			}
		}
		if len(r.buf) > 2*r.len()+64 {
			t.Fatalf("buffer %d for %d elements", len(r.buf), r.len())
		}
	}
}
