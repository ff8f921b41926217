package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/paxosd/paxosd/client"
)

// bench put --verify checks that no acknowledged write is lost: client i
// writes only the keys k with k % clients == i, one put at a time, each
// value distinct (its client and sequence number over the value's first
// bytes), and remembers, per key, the value of its last acknowledged put
// and of any put after it whose outcome it does not know (an error: it may
// have been chosen). After the run every key written is read back
// (linearizable): it must hold the last acknowledged value, or one of the
// puts in doubt after it. Any other value, or none, is a lost write.

// verifyLog is one client's record of its keys.
type verifyLog struct {
	mu    sync.Mutex
	seq   uint64
	acked map[int]string   // key -> value of its last acknowledged put
	doubt map[int][]string // key -> values of the puts in doubt since then
}

// putVerifier is the put workload's --verify state.
type putVerifier struct {
	logs []verifyLog
}

func newPutVerifier(clients int) *putVerifier {
	v := &putVerifier{logs: make([]verifyLog, clients)}
	for i := range v.logs {
		v.logs[i].acked = map[int]string{}
		v.logs[i].doubt = map[int][]string{}
	}
	return v
}

// put writes a fresh value to one of client i's keys and records the
// outcome.
func (v *putVerifier) put(ctx context.Context, r *benchRunner, i int) error {
	clients := len(v.logs)
	n := (r.f.keys - i + clients - 1) / clients // keys i, i+clients, ...
	if n <= 0 {
		return fmt.Errorf("bench put --verify: client %d has no key (--keys %d < --clients %d)", i, r.f.keys, clients)
	}
	k := i + clients*rand.IntN(n)
	l := &v.logs[i]
	l.seq++
	value := make([]byte, len(r.value))
	copy(value, r.value)
	tag := fmt.Sprintf("%d:%d;", i, l.seq)
	if len(value) < len(tag) {
		value = []byte(tag)
	} else {
		copy(value, tag)
	}
	_, err := r.clientOf(i).Put(ctx, r.nameOf("key", k), value)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil {
		l.acked[k] = string(value)
		delete(l.doubt, k)
	} else {
		l.doubt[k] = append(l.doubt[k], string(value))
	}
	return err
}

// verifyResult is what the read-back found.
type verifyResult struct {
	Keys     int    `json:"keys"`     // keys written with an acknowledged put
	Matched  int    `json:"matched"`  // hold the last acknowledged value
	InDoubt  int    `json:"in_doubt"` // hold a later put whose answer was lost
	Lost     int    `json:"lost"`     // hold neither: an acknowledged write lost
	Unread   int    `json:"unread"`   // could not be read back (errors)
	FirstBad string `json:"first_bad,omitempty"`
}

// check reads back every key with an acknowledged put.
func (v *putVerifier) check(ctx context.Context, r *benchRunner) verifyResult {
	type want struct {
		key   int
		acked string
		doubt []string
	}
	var wants []want
	for i := range v.logs {
		l := &v.logs[i]
		l.mu.Lock()
		for k, a := range l.acked {
			wants = append(wants, want{k, a, l.doubt[k]})
		}
		l.mu.Unlock()
	}
	var res verifyResult
	var matched, inDoubt, lost, unread atomic.Int64
	var firstBad atomic.Value
	_ = benchParallel(ctx, len(wants), min(len(wants), 64), func(ctx context.Context, j int) error {
		w := wants[j]
		kv, err := r.clientOf(j).Get(ctx, r.nameOf("key", w.key))
		var got string
		switch {
		case errors.Is(err, client.ErrNotFound):
		case err != nil:
			unread.Add(1)
			return nil
		default:
			got = string(kv.Value)
		}
		switch {
		case got == w.acked:
			matched.Add(1)
		case contains(w.doubt, got):
			inDoubt.Add(1)
		default:
			lost.Add(1)
			firstBad.CompareAndSwap(nil, fmt.Sprintf("%s: acknowledged %.24q, read %.24q", r.nameOf("key", w.key), w.acked, got))
		}
		return nil
	})
	res.Keys = len(wants)
	res.Matched, res.InDoubt, res.Lost, res.Unread = int(matched.Load()), int(inDoubt.Load()), int(lost.Load()), int(unread.Load())
	if s, ok := firstBad.Load().(string); ok {
		res.FirstBad = s
	}
	return res
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// report prints the check's line and fails on a lost or unread write.
func (res verifyResult) report(w io.Writer) error {
	fmt.Fprintf(w, "verify: %d keys read back: %d hold their last acknowledged put, %d a later put whose answer was lost, %d LOST, %d unreadable\n",
		res.Keys, res.Matched, res.InDoubt, res.Lost, res.Unread)
	switch {
	case res.Lost > 0:
		return fmt.Errorf("bench put --verify: %d acknowledged writes lost (first: %s)", res.Lost, res.FirstBad)
	case res.Unread > 0:
		return fmt.Errorf("bench put --verify: %d keys could not be read back", res.Unread)
	}
	return nil
}
