package service

import "time"

// clockInterval is how often a leader advances the replicated cluster clock
// while sessions or lock-delays exist. Session TTLs are at least a second,
// so this granularity is a tenth of the shortest.
const clockInterval = 100 * time.Millisecond

// leaderClock proposes the cluster clock (an OpClock command) on behalf of
// the state machine, which never reads time itself. The clock advances by
// the time this node measured on its monotonic clock since its previous
// proposal, starting from the clock already applied. Time between two
// leaders (the election) is not counted: a failover never expires a healthy
// client, and since every leader only adds time it has itself seen pass,
// the cluster clock never runs ahead of real time — a client that counts
// its TTL from the moment it sent its last acknowledged keep-alive declares
// its session lost no later than the cluster expires it.
type leaderClock struct {
	active   bool
	lastMono time.Duration
	lastNow  uint64
}

// start resets the clock when this node becomes leader.
func (lc *leaderClock) start(mono time.Duration, applied uint64) {
	*lc = leaderClock{active: true, lastMono: mono, lastNow: applied}
}

// next returns the Now of the next OpClock, or false if it is not due.
// needed says whether anything (a session, a lock-delay) depends on the
// clock; while nothing does, the clock stays put and its base follows the
// present, so the first proposal after an idle spell does not charge the
// idle time to a session that was just opened.
func (lc *leaderClock) next(mono time.Duration, applied uint64, needed bool) (uint64, bool) {
	if !lc.active {
		return 0, false
	}
	if !needed {
		lc.lastMono, lc.lastNow = mono, max(lc.lastNow, applied)
		return 0, false
	}
	if mono-lc.lastMono < clockInterval {
		return 0, false
	}
	now := max(lc.lastNow, applied) + uint64((mono-lc.lastMono)/time.Millisecond)
	lc.lastMono, lc.lastNow = mono, now
	return now, true
}
