package client

import (
	"testing"
	"time"
)

// The cluster counts a session's TTL on its leaders' clocks, which may run
// up to 10% faster than the client's (the design's clock bound: rates
// within 10% of each other), so the cluster may expire a session after
// only TTL/1.1 of the client's time since the keep-alive it acknowledged
// was sent. The client must give the session up before that: it used to
// keep it until TTL − TTL/20, holding locks the cluster could already have
// handed to someone else.
func TestSessionMarginCoversClockRates(t *testing.T) {
	for _, ttl := range []time.Duration{TTLMin, 2 * time.Second, 10 * time.Second, time.Minute, TTLMax} {
		givesUp := ttl - SessionMargin(ttl)
		earliestExpiry := time.Duration(float64(ttl) / 1.1)
		if givesUp >= earliestExpiry {
			t.Errorf("TTL %s: the client gives up after %s, but the cluster may expire it after %s", ttl, givesUp, earliestExpiry)
		}
	}
}
