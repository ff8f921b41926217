package bench

import (
	"encoding/binary"
	"strconv"
	"testing"
	"time"

	"github.com/paxosd/paxosd/client"
)

// TestWatchConsumeCounts: a watcher counts each put once, a repeated one
// as a duplicate and an event whose revision does not grow as out of
// order; the delivered count is of the acknowledged puts only.
func TestWatchConsumeCounts(t *testing.T) {
	ws := &watchSet{prefix: "p/"}
	bw := &benchWatcher{lag: &ws.lag[0]}
	put := func(n int, rev uint64) client.Event {
		v := make([]byte, 8)
		binary.BigEndian.PutUint64(v, uint64(time.Now().Add(-time.Millisecond).UnixNano()))
		return client.Event{Type: client.EventPut, KV: client.KV{Key: "p/p/" + strconv.Itoa(n), Value: v, ModRevision: rev}}
	}
	events := make(chan []client.Event, 4)
	events <- []client.Event{{Type: client.EventPut, KV: client.KV{Key: "p/ready", ModRevision: 10}}, put(0, 11), put(1, 12)}
	events <- []client.Event{put(1, 12)} // again: a duplicate, and not above 12
	events <- []client.Event{put(3, 14), put(2, 13)}
	close(events)
	ws.consume(bw, events)
	if ws.ready() != 1 || bw.count != 4 || bw.dups != 1 || bw.outOfOrder != 2 || ws.deliveries() != 4 || bw.lastRev.Load() != 14 {
		t.Errorf("ready %d, count %d, dups %d, out of order %d, deliveries %d, last revision %d; want 1, 4, 1, 2, 4, 14",
			ws.ready(), bw.count, bw.dups, bw.outOfOrder, ws.deliveries(), bw.lastRev.Load())
	}
	acked := newBitmap(4)
	for _, n := range []int{0, 1, 2, 70} { // 3 not acknowledged, 70 never delivered
		acked.set(n)
	}
	if got := bw.seen.and(acked); got != 3 {
		t.Errorf("delivered of the acknowledged: %d, want 3", got)
	}
	if h := ws.lag[0].h; h.Count() != 4 || h.Quantile(0.5) < time.Millisecond {
		t.Errorf("lags: %d recorded, median %s; want 4 of at least 1ms", h.Count(), h.Quantile(0.5))
	}
}
