package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/paxosd/paxosd/client"
)

// Gate lets the whole-cluster crash stop new key-value operations while
// it checks what survived: workers hold it shared around each operation,
// the crash takes it exclusively (which also waits for the operations in
// flight to end).
type Gate struct{ sync.RWMutex }

// KVWorker runs get/put/compare-and-set/delete on a few keys and records
// every call in the history.
type KVWorker struct {
	ID        int
	C         *client.Client
	H         *History
	Keys      []string
	Rand      *rand.Rand
	Gate      *Gate
	Stats     *Stats
	OpTimeout time.Duration
	// Think is the longest pause between two operations: it keeps the
	// history small enough to check and the machine's two cores free
	// enough for timing-based checks to mean something.
	Think time.Duration
}

// Run works until ctx ends.
func (w *KVWorker) Run(ctx context.Context) {
	seen := map[string]string{} // the value this worker last saw per key: what its CAS expects
	for n := 0; ctx.Err() == nil; n++ {
		w.Gate.RLock()
		w.one(ctx, n, seen)
		w.Gate.RUnlock()
		if w.Think > 0 {
			sleepCtx(ctx, time.Duration(w.Rand.Int64N(int64(w.Think))))
		}
	}
}

func (w *KVWorker) one(ctx context.Context, n int, seen map[string]string) {
	key := w.Keys[w.Rand.IntN(len(w.Keys))]
	value := fmt.Sprintf("%d.%d", w.ID, n)
	octx, cancel := context.WithTimeout(ctx, w.OpTimeout)
	defer cancel()
	call := w.H.Now()
	var in KVInput
	var out KVOutput
	switch p := w.Rand.IntN(100); {
	case p < 40:
		in = KVInput{Op: "get", Key: key}
		kv, err := w.C.Get(octx, key)
		switch {
		case err == nil:
			out = KVOutput{Value: string(kv.Value), Found: true}
		case errors.Is(err, client.ErrNotFound):
			out = KVOutput{}
		default:
			// A failed read changed nothing: leave it out of the history.
			w.Stats.Op("get", "fail")
			return
		}
		seen[key] = out.Value
	case p < 70:
		in = KVInput{Op: "put", Key: key, Value: value}
		_, err := w.C.Put(octx, key, []byte(value))
		out.Unknown = err != nil
		if err == nil {
			seen[key] = value
		}
	case p < 95:
		in = KVInput{Op: "cas", Key: key, Value: value, Expected: seen[key]}
		cond := client.IfValue([]byte(in.Expected))
		if in.Expected == "" {
			cond = client.IfAbsent()
		}
		ok, prev, err := w.C.CompareAndSet(octx, key, []byte(value), cond)
		out = KVOutput{OK: ok, Value: string(prev.Value), Unknown: err != nil}
		if prev.ModRevision == 0 {
			out.Value = ""
		}
		if err == nil {
			seen[key] = out.Value
			if ok {
				seen[key] = value
			}
		}
	default:
		in = KVInput{Op: "del", Key: key}
		found, err := w.C.Delete(octx, key)
		out = KVOutput{Found: found, Unknown: err != nil}
		if err == nil {
			seen[key] = ""
		}
	}
	ret := w.H.Now()
	outcome := "ok"
	if out.Unknown {
		outcome = "unknown"
	}
	w.Stats.Op(in.Op, outcome)
	w.H.Add(w.ID, in, call, ret, out)
}

// AllowedAfterCrash returns the values a read of key may return once every
// operation in h has ended, with no write since: the values of the writes
// that no acknowledged write is known to follow ("" for absent). A write
// X is known to be overwritten when some acknowledged write W was called
// after X returned; values are unique, so X's value cannot come back. A
// read outside this set has lost an acknowledged write.
func AllowedAfterCrash(h *History, key string) map[string]bool {
	ops := h.Ops()
	var lastAckedCall int64 = -1
	for _, op := range ops {
		in, out := op.Input.(KVInput), op.Output.(KVOutput)
		if in.Key != key || out.Unknown {
			continue
		}
		if in.Op == "put" || in.Op == "del" || (in.Op == "cas" && out.OK) {
			lastAckedCall = max(lastAckedCall, op.Call)
		}
	}
	allowed := map[string]bool{}
	if lastAckedCall < 0 {
		allowed[""] = true // nothing acknowledged: the key may never have been written
	}
	for _, op := range ops {
		in, out := op.Input.(KVInput), op.Output.(KVOutput)
		if in.Key != key || op.Return < lastAckedCall {
			continue
		}
		switch {
		case in.Op == "put", in.Op == "cas" && (out.OK || out.Unknown):
			allowed[in.Value] = true
		case in.Op == "del":
			allowed[""] = true
		}
	}
	return allowed
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
