package chaos

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paxosd/paxosd/client"
)

// LockHolders is the lock-holders schedule's workload (TestChaosLocks): N
// sessions spread over a few clients (one connection each, as one process
// holding many locks would have), each session holding a lock of its own
// for the whole run and never releasing it, every session kept alive by
// the client library alone (keep-alive batches, client/keepalive.go).
// Besides, Shared locks are each held by one of the sessions and waited
// for by WaitersPer others, whose Lock calls stay blocked throughout: if a
// holder's session ended, a waiter would be granted its lock.
//
// Nothing here releases anything, so from the baseline on every lock must
// keep its holder, token and line of waiters, and every session must stay
// alive, by the client's reckoning and by the cluster's.
type LockHolders struct {
	Clients    []*client.Client
	N          int
	TTL        time.Duration
	Shared     int
	WaitersPer int
	Parallel   int // sessions opened at a time

	sessions []*client.Session
	own      []uint64 // the token of session i's own lock
	shared   []uint64 // the token of shared lock j (held by session j)

	mu   sync.Mutex
	lost map[int]LostSession // by session index
	// grantedWaiters are waits that ended with the lock (a change of
	// hands): what happened, by lock name.
	grantedWaiters map[string][]string
	// waitErrors are waits that ended otherwise, before the run's end.
	waitErrors []string
	waiting    sync.WaitGroup
}

// LostSession is a session its client declared lost.
type LostSession struct {
	Index int
	ID    uint64
	At    time.Time
	Err   error
}

// OwnLock is the name of session i's own lock; SharedLock that of shared
// lock j.
func OwnLock(i int) string    { return fmt.Sprintf("lh/own/%06d", i) }
func SharedLock(j int) string { return fmt.Sprintf("lh/shared/%04d", j) }

// Waiter is the index of the session that is waiter k of shared lock j.
func (w *LockHolders) Waiter(j, k int) int { return w.Shared + j*w.WaitersPer + k }

// Validate says whether the shape fits: every holder and waiter of the
// shared locks is one of the N sessions.
func (w *LockHolders) Validate() error {
	switch {
	case w.N < 1 || len(w.Clients) < 1:
		return fmt.Errorf("lock holders: need at least one session and one client")
	case w.Shared < 0 || w.WaitersPer < 0:
		return fmt.Errorf("lock holders: negative shared locks or waiters")
	case w.Shared*(1+w.WaitersPer) > w.N:
		return fmt.Errorf("lock holders: %d shared locks with %d waiters each need %d sessions, there are %d",
			w.Shared, w.WaitersPer, w.Shared*(1+w.WaitersPer), w.N)
	}
	return nil
}

// Open opens the N sessions, each taking its own lock with TryLock (the
// lock is free: anything but a grant is an error), then the holders of
// the shared locks take them. It returns how long the opens (with their
// locks) took. A failure is retried a few times: the cluster is healthy
// while this runs, so one that keeps failing ends the schedule.
func (w *LockHolders) Open(ctx context.Context, opTimeout time.Duration, progress func(done int)) (time.Duration, error) {
	if err := w.Validate(); err != nil {
		return 0, err
	}
	w.sessions = make([]*client.Session, w.N)
	w.own = make([]uint64, w.N)
	w.shared = make([]uint64, w.Shared)
	w.lost = map[int]LostSession{}
	start := time.Now()
	var done atomic.Int64
	err := parallel(ctx, w.N, w.Parallel, func(i int) error {
		c := w.Clients[i%len(w.Clients)]
		var err error
		for try := 0; try < 3; try++ {
			if w.sessions[i] == nil {
				octx, cancel := context.WithTimeout(ctx, opTimeout)
				w.sessions[i], err = c.NewSession(octx, w.TTL)
				cancel()
				if err != nil {
					continue
				}
			}
			lctx, cancel := context.WithTimeout(ctx, opTimeout)
			var l *client.Lock
			l, err = w.sessions[i].TryLock(lctx, OwnLock(i))
			cancel()
			if err == nil {
				w.own[i] = l.Token
				if n := done.Add(1); progress != nil && n%1000 == 0 {
					progress(int(n))
				}
				return nil
			}
			if errors.Is(err, client.ErrLockHeld) {
				break // a retried TryLock whose first try got it would say ok: held means someone else
			}
		}
		return fmt.Errorf("session %d (lock %s): %w", i, OwnLock(i), err)
	})
	took := time.Since(start)
	if err != nil {
		return took, err
	}
	err = parallel(ctx, w.Shared, w.Parallel, func(j int) error {
		lctx, cancel := context.WithTimeout(ctx, opTimeout)
		defer cancel()
		l, err := w.sessions[j].TryLock(lctx, SharedLock(j))
		if err != nil {
			return fmt.Errorf("session %d (lock %s): %w", j, SharedLock(j), err)
		}
		w.shared[j] = l.Token
		return nil
	})
	return took, err
}

// StartWaiters starts every waiter's Lock call; each blocks until ctx
// ends. A wait that ends with the lock is a change of hands; one that
// ends with an error before ctx does is noted (WaitErrors). Wait waits
// for them all to end.
func (w *LockHolders) StartWaiters(ctx context.Context) {
	for j := 0; j < w.Shared; j++ {
		for k := 0; k < w.WaitersPer; k++ {
			i, name := w.Waiter(j, k), SharedLock(j)
			w.waiting.Add(1)
			go func() {
				defer w.waiting.Done()
				l, err := w.sessions[i].Lock(ctx, name)
				w.mu.Lock()
				defer w.mu.Unlock()
				switch {
				case err == nil:
					if w.grantedWaiters == nil {
						w.grantedWaiters = map[string][]string{}
					}
					w.grantedWaiters[name] = append(w.grantedWaiters[name], fmt.Sprintf("lock %s changed hands: its waiter session %d (index %d) was granted it with token %d, while session %d held it with token %d",
						name, w.sessions[i].ID(), i, l.Token, w.sessions[j].ID(), w.shared[j]))
				case ctx.Err() == nil:
					w.waitErrors = append(w.waitErrors, fmt.Sprintf("the wait of session %d (index %d) for lock %s ended: %v", w.sessions[i].ID(), i, name, err))
				}
			}()
		}
	}
}

// Wait waits for the waiters to end (after their ctx has).
func (w *LockHolders) Wait() { w.waiting.Wait() }

// Expected is the baseline as the clients know it: each own lock's holder
// and token, each shared lock's holder and token, and which sessions wait
// for each shared lock (in no particular order: their calls raced).
func (w *LockHolders) Expected() (grants map[string]Grant, waiters map[string][]uint64) {
	grants = make(map[string]Grant, w.N+w.Shared)
	waiters = make(map[string][]uint64, w.Shared)
	for i, s := range w.sessions {
		grants[OwnLock(i)] = Grant{Holder: s.ID(), Token: w.own[i]}
	}
	for j := 0; j < w.Shared; j++ {
		grants[SharedLock(j)] = Grant{Holder: w.sessions[j].ID(), Token: w.shared[j]}
		for k := 0; k < w.WaitersPer; k++ {
			waiters[SharedLock(j)] = append(waiters[SharedLock(j)], w.sessions[w.Waiter(j, k)].ID())
		}
		slices.Sort(waiters[SharedLock(j)])
	}
	return grants, waiters
}

// IDs are the sessions' ids, in index order.
func (w *LockHolders) IDs() []uint64 {
	out := make([]uint64, len(w.sessions))
	for i, s := range w.sessions {
		out[i] = s.ID()
	}
	return out
}

// ScanLost records the sessions declared lost since the last scan and
// returns them.
func (w *LockHolders) ScanLost() []LostSession {
	var out []LostSession
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, s := range w.sessions {
		if _, seen := w.lost[i]; seen || !closed(s.Done()) {
			continue
		}
		l := LostSession{Index: i, ID: s.ID(), At: now, Err: s.Err()}
		w.lost[i] = l
		out = append(out, l)
	}
	return out
}

// Lost is every session declared lost so far.
func (w *LockHolders) Lost() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.lost)
}

// GrantedWaiters and WaitErrors are what the waits that ended said: the
// grants by lock name, the errors in the order they came.
func (w *LockHolders) GrantedWaiters() map[string][]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string][]string, len(w.grantedWaiters))
	for k, v := range w.grantedWaiters {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// WaitErrors: see GrantedWaiters.
func (w *LockHolders) WaitErrors() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.waitErrors...)
}

// parallel runs f(0..n-1) on at most width goroutines; the first error
// stops the handing out of more work and is returned.
func parallel(ctx context.Context, n, width int, f func(i int) error) error {
	var (
		next  atomic.Int64
		first error
		mu    sync.Mutex
		wg    sync.WaitGroup
	)
	failed := func() bool { mu.Lock(); defer mu.Unlock(); return first != nil }
	for g := 0; g < max(1, min(width, n)); g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil || failed() {
					return
				}
				if err := f(i); err != nil {
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
	if first == nil {
		first = ctx.Err()
	}
	return first
}
