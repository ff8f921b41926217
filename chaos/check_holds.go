package chaos

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"sync"
)

// Tenure is a stretch of time (on the history clock) during which a worker
// was sure it held a lock or led an election.
type Tenure struct {
	Worker  int
	Session uint64
	Token   uint64 // the fencing token, or the election term
	// Start is when Lock/Campaign returned, End when the worker called
	// Unlock/Resign or saw its session lost (Lost).
	Start, End int64
	Lost       bool
	// Seq and Revision, for an election: the change's number in the
	// election and the store revision it was applied at (0 for a lock),
	// to place a grant in the log when the check fails.
	Seq, Revision uint64
}

// Tenures collects the tenures of one lock or election.
type Tenures struct {
	mu   sync.Mutex
	list []Tenure
}

// Add records a tenure.
func (t *Tenures) Add(x Tenure) {
	t.mu.Lock()
	t.list = append(t.list, x)
	t.mu.Unlock()
}

// Len is the number of tenures recorded.
func (t *Tenures) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.list)
}

// Check reports every overlap between two tenures and every token that
// does not grow in the order of the tenures: the order in which the grants
// happened, since grants of one lock (or election) never overlap. A tenure
// that ended before it began (the session was already lost when the grant
// arrived) never made its worker sure of anything and is left out.
func (t *Tenures) Check(what string) []string {
	t.mu.Lock()
	list := append([]Tenure(nil), t.list...)
	t.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].Start < list[j].Start })
	var out []string
	var prev, longest *Tenure
	for i := range list {
		x := &list[i]
		if x.End <= x.Start {
			continue
		}
		if longest != nil && x.Start < longest.End {
			out = append(out, fmt.Sprintf("%s: worker %d (session %d, token %d) sure from %s overlaps worker %d (session %d, token %d) sure until %s",
				what, x.Worker, x.Session, x.Token, dur(x.Start), longest.Worker, longest.Session, longest.Token, dur(longest.End)))
		}
		// x.sameGrant(prev): the worker's release failed (the cluster
		// had no leader), its session kept the grant, and asking again
		// with that session answered it again (Lock and Campaign by the
		// holder return its current token): one grant, seen twice.
		if prev != nil && x.Token <= prev.Token && !x.sameGrant(prev) {
			out = append(out, fmt.Sprintf("%s: token %d (worker %d, from %s) follows token %d (worker %d, from %s): tokens must grow",
				what, x.Token, x.Worker, dur(x.Start), prev.Token, prev.Worker, dur(prev.Start)))
		}
		prev = x
		if longest == nil || x.End > longest.End {
			longest = x
		}
	}
	return out
}

// sameGrant reports whether x is the grant of p answered again: the same
// session and token and, for an election, the same change (its number and
// revision); a new grant to the same session would have a new token.
func (x *Tenure) sameGrant(p *Tenure) bool {
	return x.Session != 0 && x.Session == p.Session && x.Token == p.Token && x.Seq == p.Seq && x.Revision == p.Revision
}

// FencedWrite is a write made with client.Fenced(lock, Token).
type FencedWrite struct {
	Worker       int
	Token        uint64
	Call, Return int64
	OK           bool // accepted
	Refused      bool // ErrFenced: the token did not hold the lock
	Sure         bool // the worker was sure it held the lock throughout
}

// FenceLog collects the fenced writes to one lock's key.
type FenceLog struct {
	mu   sync.Mutex
	list []FencedWrite
}

// Add records a fenced write.
func (f *FenceLog) Add(w FencedWrite) {
	f.mu.Lock()
	f.list = append(f.list, w)
	f.mu.Unlock()
}

// Check reports a fenced write refused while its worker was sure to hold
// the lock, and an accepted fenced write whose token is lower than that
// of an accepted write that returned before it was called (a stale holder
// got through after a newer one).
func (f *FenceLog) Check(what string) []string {
	f.mu.Lock()
	list := append([]FencedWrite(nil), f.list...)
	f.mu.Unlock()
	var out []string
	var ok []FencedWrite
	for _, w := range list {
		if w.Refused && w.Sure {
			out = append(out, fmt.Sprintf("%s: fenced write with token %d (worker %d, %s..%s) refused while the worker was sure it held the lock",
				what, w.Token, w.Worker, dur(w.Call), dur(w.Return)))
		}
		if w.OK {
			ok = append(ok, w)
		}
	}
	// Sweep in call order, remembering the highest token among the writes
	// that returned before the current call.
	byReturn := append([]FencedWrite(nil), ok...)
	sort.Slice(ok, func(i, j int) bool { return ok[i].Call < ok[j].Call })
	sort.Slice(byReturn, func(i, j int) bool { return byReturn[i].Return < byReturn[j].Return })
	var high *FencedWrite
	r := 0
	for _, w := range ok {
		for ; r < len(byReturn) && byReturn[r].Return < w.Call; r++ {
			if high == nil || byReturn[r].Token > high.Token {
				high = &byReturn[r]
			}
		}
		if high != nil && w.Token < high.Token {
			out = append(out, fmt.Sprintf("%s: fenced write with token %d (worker %d, called %s) accepted after one with token %d (worker %d, returned %s)",
				what, w.Token, w.Worker, dur(w.Call), high.Token, high.Worker, dur(high.Return)))
		}
	}
	return out
}

// WriteFile writes every tenure, in the order of their start, with the
// schedule's faults, as JSON to path: what to read when Check fails.
func (t *Tenures) WriteFile(path string, faults []Annotation) error {
	t.mu.Lock()
	list := append([]Tenure(nil), t.list...)
	t.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].Start < list[j].Start })
	type tenure struct {
		Worker   int    `json:"worker"`
		Session  uint64 `json:"session"`
		Token    uint64 `json:"token"`
		Seq      uint64 `json:"seq,omitempty"`
		Revision uint64 `json:"revision,omitempty"`
		Start    string `json:"start"`
		End      string `json:"end"`
		Lost     bool   `json:"lost,omitempty"`
	}
	doc := struct {
		Faults  []Annotation `json:"faults"`
		Tenures []tenure     `json:"tenures"`
	}{Faults: faults}
	for _, x := range list {
		doc.Tenures = append(doc.Tenures, tenure{x.Worker, x.Session, x.Token, x.Seq, x.Revision, dur(x.Start), dur(x.End), x.Lost})
	}
	b, err := json.MarshalIndent(doc, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
