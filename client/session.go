package client

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/paxosd/paxosd/wire"
)

// Session is a lease the cluster keeps while the client keeps it alive.
// Locks and election candidacies belong to a session and end with it.
//
// The session is kept alive in the background (a renewal every TTL/3,
// sent with the client's other sessions in one request: keepalive.go). It
// counts its own TTL on this process's monotonic clock from the moment it
// SENT the last renewal the cluster acknowledged, and declares itself lost
// once that runs out (with a margin for clock-rate differences, see
// margin) — never later than the cluster can expire it, since the
// cluster's clock only counts time its leaders saw pass. Done is closed
// when the session is lost or closed.
type Session struct {
	c   *Client
	id  uint64
	ttl time.Duration

	mu   sync.Mutex
	err  error // why the session ended
	done chan struct{}

	ka kaState // the keepAliver's, guarded by its mu
}

// TTLMin and TTLMax bound a session's TTL.
const (
	TTLMin = time.Second
	TTLMax = time.Hour
)

// NewSession opens a session with the given TTL.
func (c *Client) NewSession(ctx context.Context, ttl time.Duration) (*Session, error) {
	if ttl < TTLMin || ttl > TTLMax {
		return nil, fmt.Errorf("%w: session TTL %s is outside [%s, %s]", ErrInvalid, ttl, TTLMin, TTLMax)
	}
	sent := time.Now()
	resp, err := c.do(ctx, &wire.Request{Op: wire.OpSessionOpen, TTLMs: uint64(ttl / time.Millisecond)})
	if err == nil {
		err = responseError(resp)
	}
	if err != nil {
		return nil, err
	}
	s := &Session{c: c, id: resp.Session.ID, ttl: ttl, done: make(chan struct{})}
	c.keepAliver().add(s, sent)
	return s, nil
}

// ID returns the session's id.
func (s *Session) ID() uint64 { return s.id }

// TTL returns the session's time to live.
func (s *Session) TTL() time.Duration { return s.ttl }

// Done is closed when the session is lost or closed.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err says why the session ended: nil while it lives or after Close,
// ErrSessionExpired (wrapped) once it is lost.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// margin is how much earlier than the TTL the client gives up on its own.
// The cluster expires a session by its leaders' clocks, which may run up to
// 10% faster than this one (the documented bound: monotonic clocks on the
// machines advance at rates within 10% of each other), so its TTL may pass
// after only TTL/1.1 ≈ 0.91 TTL of this clock. Giving up after TTL − TTL/9
// ≈ 0.89 TTL is before that.
func (s *Session) margin() time.Duration { return SessionMargin(s.ttl) }

// SessionMargin is how long before its TTL a session gives itself up: a
// session with this TTL is declared lost TTL − SessionMargin(TTL) after
// the last acknowledged keep-alive was sent (see Session).
func SessionMargin(ttl time.Duration) time.Duration { return ttl / 9 }

// end ends the session (lost with err, or closed with nil): it is no
// longer renewed, and Done is closed.
func (s *Session) end(err error) {
	s.c.keepAliver().forget(s)
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
		return
	default:
	}
	s.err = err
	close(s.done)
}

// Close ends the session: its locks are released and its candidacies
// withdrawn at once (no lock-delay).
func (s *Session) Close(ctx context.Context) error {
	s.c.keepAliver().forget(s)
	resp, err := s.c.do(ctx, &wire.Request{Op: wire.OpSessionClose, SessionID: s.id})
	if err == nil {
		err = responseError(resp)
		if resp.Err == wire.ErrSessionExpired {
			err = nil // already gone: nothing is held
		}
	}
	s.end(nil)
	return err
}

// call runs q on behalf of this session, failing fast once it is lost.
func (s *Session) call(ctx context.Context, q *wire.Request) (*wire.Response, error) {
	select {
	case <-s.done:
		if err := s.Err(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: session %d is closed", ErrSessionExpired, s.id)
	default:
	}
	q.SessionID = s.id
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	resp, err := s.c.do(ctx, q)
	if err != nil {
		if serr := s.Err(); serr != nil {
			return nil, serr
		}
		return nil, err
	}
	if resp.Err == wire.ErrSessionExpired {
		s.end(fmt.Errorf("%w: the cluster expired session %d", ErrSessionExpired, s.id))
		return nil, s.Err()
	}
	return resp, responseError(resp)
}
