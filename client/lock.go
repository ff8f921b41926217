package client

import (
	"context"
	"time"

	"github.com/paxosd/paxosd/wire"
)

// Lock is a held lock. Token is its fencing token: it grows with every
// grant of the lock, so a resource that remembers the highest token it has
// seen can refuse a stale holder (see Client.CheckToken and Fenced).
type Lock struct {
	Name  string
	Token uint64
}

// LockOption changes how a lock is taken.
type LockOption func(*wire.Request)

// WithLockDelay keeps the lock free for d after this session EXPIRES while
// holding it (not after a clean release): the old holder may still be
// running and acting on the lock for a while (Chubby's lock-delay).
func WithLockDelay(d time.Duration) LockOption {
	return func(q *wire.Request) { q.LockDelayMs = uint64(d / time.Millisecond) }
}

// Lock acquires the named lock, waiting in line (first come, first served)
// until it is granted, ctx ends, or the session is lost. A wait that ends
// without the lock leaves the line: the client releases its place.
func (s *Session) Lock(ctx context.Context, name string, opts ...LockOption) (*Lock, error) {
	return s.acquire(ctx, name, true, opts)
}

// TryLock acquires the named lock if it is free, or fails with ErrLockHeld.
func (s *Session) TryLock(ctx context.Context, name string, opts ...LockOption) (*Lock, error) {
	return s.acquire(ctx, name, false, opts)
}

func (s *Session) acquire(ctx context.Context, name string, wait bool, opts []LockOption) (*Lock, error) {
	q := &wire.Request{Op: wire.OpLockAcquire, Name: name, Wait: wait}
	for _, o := range opts {
		o(q)
	}
	resp, err := s.call(ctx, q)
	if err != nil {
		if wait {
			s.leaveQueue(wire.OpLockRelease, name)
		}
		return nil, lockError(err, name)
	}
	return &Lock{Name: name, Token: resp.Token}, nil
}

// leaveQueue withdraws this session from a lock's or election's line after
// a wait was abandoned. If the grant raced the abandonment, this releases
// what was granted, so no ghost holder is left behind.
func (s *Session) leaveQueue(op wire.Op, name string) {
	select {
	case <-s.done:
		return // the session's end withdraws everything
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = s.call(ctx, &wire.Request{Op: op, Name: name})
}

// Unlock releases the named lock; the next waiter gets it.
func (s *Session) Unlock(ctx context.Context, name string) error {
	_, err := s.call(ctx, &wire.Request{Op: wire.OpLockRelease, Name: name})
	return lockError(err, name)
}

// CheckToken reports whether token still holds the named lock, as of a
// linearizable point between the call and its return.
func (c *Client) CheckToken(ctx context.Context, name string, token uint64) (bool, error) {
	resp, err := c.do(ctx, &wire.Request{Op: wire.OpLockCheck, Name: name, Token: token})
	if err != nil {
		return false, err
	}
	if err := responseError(resp); err != nil {
		return false, err
	}
	return resp.Held, nil
}

// lockError returns err as it is: a server *Error already says what
// happened ("lock held: lock \"x\" is held by session 6") and matches the
// sentinels (errors.Is(err, ErrLockHeld)).
func lockError(err error, _ string) error { return err }
