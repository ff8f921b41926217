package chaos

import (
	"fmt"
	"slices"

	"github.com/paxosd/paxosd/wire"
)

// Grant is what the lock-holders schedule expects of one lock from its
// baseline on: the session holding it, the token of that grant, and the
// sessions waiting for it, first come first. Nothing is released in that
// schedule, so every later look at the lock must find exactly this.
type Grant struct {
	Holder, Token uint64
	Waiters       []uint64
}

// LockDiff is one lock that no longer looks as its baseline says.
type LockDiff struct {
	Name string
	Want Grant
	// Got is what the lock list says; Listed is false when the list lacks
	// the lock altogether (it is neither held nor waited for).
	Got    Grant
	Listed bool
}

// ChangedHands says whether another session (or another grant of the same
// session: a new token) holds the lock. A lock that is merely free may be
// an older state of the list (a node that has not applied the grants yet);
// one held by someone else or with another token can only be a change.
func (d LockDiff) ChangedHands() bool {
	return d.Got.Holder != 0 && (d.Got.Holder != d.Want.Holder || d.Got.Token != d.Want.Token)
}

func (d LockDiff) String() string {
	switch {
	case !d.Listed:
		return fmt.Sprintf("lock %s (session %d, token %d) is not in the list: released", d.Name, d.Want.Holder, d.Want.Token)
	case d.ChangedHands():
		return fmt.Sprintf("lock %s changed hands: session %d token %d, was session %d token %d", d.Name, d.Got.Holder, d.Got.Token, d.Want.Holder, d.Want.Token)
	case d.Got.Holder == 0:
		return fmt.Sprintf("lock %s (session %d, token %d) is free: released", d.Name, d.Want.Holder, d.Want.Token)
	default:
		return fmt.Sprintf("lock %s (session %d, token %d): waiters %v, were %v", d.Name, d.Want.Holder, d.Want.Token, d.Got.Waiters, d.Want.Waiters)
	}
}

// CompareLocks returns every lock of want that got (a lock list) does not
// show exactly as wanted: holder, token and waiters in order. Locks in got
// that want does not name are someone else's business.
func CompareLocks(want map[string]Grant, got []wire.LockInfo) []LockDiff {
	listed := make(map[string]*wire.LockInfo, len(got))
	for i := range got {
		listed[got[i].Name] = &got[i]
	}
	var out []LockDiff
	for _, name := range sortedKeys(want) {
		w := want[name]
		l, ok := listed[name]
		if !ok {
			out = append(out, LockDiff{Name: name, Want: w})
			continue
		}
		g := Grant{Holder: l.Holder, Token: l.Token, Waiters: l.Waiters}
		if g.Holder != w.Holder || g.Token != w.Token || !slices.Equal(g.Waiters, w.Waiters) {
			out = append(out, LockDiff{Name: name, Want: w, Got: g, Listed: true})
		}
	}
	return out
}

// MissingSessions returns the ids of want that the session list got
// lacks: sessions the cluster no longer has (expired, or revoked).
func MissingSessions(want []uint64, got []wire.SessionInfo) []uint64 {
	have := make(map[uint64]bool, len(got))
	for _, s := range got {
		have[s.ID] = true
	}
	var out []uint64
	for _, id := range want {
		if !have[id] {
			out = append(out, id)
		}
	}
	return out
}

// MinRemaining is the least time-to-live left, as the answering node
// counts it, among the sessions of got whose ids are in mine, in ms; -1
// when none of them is listed.
func MinRemaining(mine map[uint64]bool, got []wire.SessionInfo) int64 {
	least := int64(-1)
	for _, s := range got {
		if mine[s.ID] && (least < 0 || int64(s.RemainingMs) < least) {
			least = int64(s.RemainingMs)
		}
	}
	return least
}
