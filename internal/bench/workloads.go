package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/paxosd/paxosd/client"
)

// putWorkload: each op puts the run's value to a random key; with
// --verify, a distinct value to one of the client's own keys (verify.go).
type putWorkload struct {
	r *benchRunner
	v *putVerifier
}

func (w *putWorkload) setup(_ context.Context, r *benchRunner) error {
	w.r = r
	if r.f.verify {
		w.v = newPutVerifier(r.f.clients)
	}
	return nil
}

func (w *putWorkload) teardown(context.Context) {}

func (w *putWorkload) op(ctx context.Context, i int) error {
	if w.v != nil {
		return w.v.put(ctx, w.r, i)
	}
	_, err := w.r.clientOf(i).Put(ctx, w.r.nameOf("key", rand.IntN(w.r.f.keys)), w.r.value)
	return err
}

// getWorkload: each op is a linearizable get of a random key; setup writes
// every key first, so that no get is a miss.
type getWorkload struct{ r *benchRunner }

func (w *getWorkload) setup(ctx context.Context, r *benchRunner) error {
	w.r = r
	return benchParallel(ctx, r.f.keys, min(r.f.keys, 64), func(ctx context.Context, k int) error {
		_, err := r.clientOf(k).Put(ctx, r.nameOf("key", k), r.value)
		return err
	})
}

func (w *getWorkload) teardown(context.Context) {}

func (w *getWorkload) op(ctx context.Context, i int) error {
	_, err := w.r.clientOf(i).Get(ctx, w.r.nameOf("key", rand.IntN(w.r.f.keys)))
	return err
}

// sessions keeps one session per client, opened in setup and reopened by
// the client's own goroutine if it is lost during the run.
type sessions struct {
	r  *benchRunner
	ss []*client.Session
}

func (s *sessions) open(ctx context.Context, r *benchRunner) error {
	s.r = r
	s.ss = make([]*client.Session, r.f.clients)
	return benchParallel(ctx, r.f.clients, min(r.f.clients, 64), func(ctx context.Context, i int) error {
		var err error
		s.ss[i], err = r.clientOf(i).NewSession(ctx, r.f.sessionTTL)
		return err
	})
}

// get returns client i's live session, opening a new one if it was lost.
func (s *sessions) get(ctx context.Context, i int) (*client.Session, error) {
	if ss := s.ss[i]; ss != nil {
		select {
		case <-ss.Done():
		default:
			return ss, nil
		}
	}
	ss, err := s.r.clientOf(i).NewSession(ctx, s.r.f.sessionTTL)
	if err != nil {
		return nil, err
	}
	s.ss[i] = ss
	return ss, nil
}

// close ends every session (releasing whatever a client still holds).
func (s *sessions) close(ctx context.Context) {
	_ = benchParallel(ctx, len(s.ss), min(len(s.ss), 64), func(ctx context.Context, i int) error {
		if s.ss[i] != nil {
			_ = s.ss[i].Close(ctx)
		}
		return nil
	})
}

// lockWorkload: client i locks and unlocks its own lock; one cycle is one op.
type lockWorkload struct{ sessions }

func (w *lockWorkload) setup(ctx context.Context, r *benchRunner) error { return w.open(ctx, r) }
func (w *lockWorkload) teardown(ctx context.Context)                    { w.close(ctx) }

func (w *lockWorkload) op(ctx context.Context, i int) error {
	s, err := w.get(ctx, i)
	if err != nil {
		return err
	}
	name := w.r.nameOf("lock", i)
	if _, err := s.Lock(ctx, name); err != nil {
		return err
	}
	return s.Unlock(ctx, name)
}

// campaignWorkload: client i campaigns in its own election and resigns;
// one cycle is one op.
type campaignWorkload struct{ sessions }

func (w *campaignWorkload) setup(ctx context.Context, r *benchRunner) error { return w.open(ctx, r) }
func (w *campaignWorkload) teardown(ctx context.Context)                    { w.close(ctx) }

func (w *campaignWorkload) op(ctx context.Context, i int) error {
	s, err := w.get(ctx, i)
	if err != nil {
		return err
	}
	name := w.r.nameOf("election", i)
	if _, err := s.Campaign(ctx, name, []byte(fmt.Sprint(i))); err != nil {
		return err
	}
	return s.Resign(ctx, name)
}

// contendedWorkload: every client locks and unlocks the same lock; an op
// is one grant (Lock call to Unlock return, the wait in line included).
//
// The handover is the time from one holder's Unlock returning to the next
// holder's Lock returning, both in this process on its monotonic clock.
// Grants are matched by fencing token: the tokens of one lock grow with
// every grant, so sorting the grants by token gives their order, and grant
// k's handover starts at the release of grant k-1. Both answers come from
// the same applied release, so the next grant can even reach its client
// first: such a handover counts as 0.
type contendedWorkload struct {
	sessions
	name string

	mu       sync.Mutex
	grants   []benchEvent // Lock returned, by token
	releases map[uint64]time.Time
}

type benchEvent struct {
	token uint64
	at    time.Time
}

func (w *contendedWorkload) setup(ctx context.Context, r *benchRunner) error {
	w.name = r.nameOf("contended", 0)
	w.releases = map[uint64]time.Time{}
	return w.open(ctx, r)
}

func (w *contendedWorkload) teardown(ctx context.Context) { w.close(ctx) }

func (w *contendedWorkload) op(ctx context.Context, i int) error {
	s, err := w.get(ctx, i)
	if err != nil {
		return err
	}
	l, err := s.Lock(ctx, w.name)
	if err != nil {
		return err
	}
	granted := time.Now()
	err = s.Unlock(ctx, w.name)
	released := time.Now()
	w.mu.Lock()
	w.grants = append(w.grants, benchEvent{l.Token, granted})
	if err == nil {
		w.releases[l.Token] = released
	}
	w.mu.Unlock()
	return err
}

// handover returns the handover times of the grants made in the measured
// window.
func (w *contendedWorkload) handover(r *benchRunner) *benchHist {
	w.mu.Lock()
	defer w.mu.Unlock()
	gs := slices.Clone(w.grants)
	slices.SortFunc(gs, func(a, b benchEvent) int {
		switch {
		case a.token < b.token:
			return -1
		case a.token > b.token:
			return 1
		}
		return 0
	})
	h := &benchHist{}
	for k := 1; k < len(gs); k++ {
		g := gs[k]
		if g.at.Before(r.start) || !g.at.Before(r.end) {
			continue
		}
		if rel, ok := w.releases[gs[k-1].token]; ok {
			h.Record(g.at.Sub(rel)) // negative → 0 (see the type's comment)
		}
	}
	return h
}

// benchParallel runs fn(0..n-1) on at most par goroutines and returns the
// first error.
func benchParallel(ctx context.Context, n, par int, fn func(ctx context.Context, k int) error) error {
	var (
		mu    sync.Mutex
		first error
		next  int
		wg    sync.WaitGroup
	)
	for g := 0; g < par; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				k := next
				next++
				stop := first != nil || k >= n
				mu.Unlock()
				if stop {
					return
				}
				if err := fn(ctx, k); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}
