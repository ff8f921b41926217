package service

import (
	"crypto/subtle"
	"fmt"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// Passwords: hashed and checked by the connection's goroutine, never by
// the loop (a bcrypt check at cost 10 takes 0.05-0.3 s of CPU, on purpose),
// at most bcryptParallel at a time so that a burst of logins cannot starve
// the loop of the machine's cores; failures are counted per source address
// and a source that fails too often is refused for a while without a
// check (authLimiter).

const (
	// passwordBytesMax is bcrypt's own limit: it reads no more.
	passwordBytesMax = 72
	// bcryptParallel bounds the hashes and checks running at once.
	bcryptParallel = 2
	// authFailuresFree is how many failures a source may make before it
	// waits; each further failure doubles the wait, up to authBackoffMax.
	authFailuresFree = 5
	authBackoffMin   = time.Second
	authBackoffMax   = time.Minute
	// authSourcesMax bounds the sources the limiter remembers.
	authSourcesMax = 10000
)

// bcryptSlots bounds the bcrypt work of the process.
var bcryptSlots = make(chan struct{}, bcryptParallel)

func withBcryptSlot(f func()) {
	bcryptSlots <- struct{}{}
	defer func() { <-bcryptSlots }()
	f()
}

// bcryptCompare is bcrypt.CompareHashAndPassword in a slot.
func bcryptCompare(hash, password []byte) (err error) {
	withBcryptSlot(func() { err = bcrypt.CompareHashAndPassword(hash, password) })
	return err
}

// dummyHash returns the hash checked against when the user does not
// exist, so that a wrong name costs the same time as a wrong password: of
// the node's cost, made at the first use (not at start: every paxosd
// command links this package).
func (n *Node) dummyHash() []byte {
	n.dummy.once.Do(func() {
		n.dummy.hash, _ = bcrypt.GenerateFromPassword([]byte("paxosd: no such user"), n.bcryptCost())
	})
	return n.dummy.hash
}

// dummyHashOnce holds Node.dummyHash's hash.
type dummyHashOnce struct {
	once sync.Once
	hash []byte
}

func (n *Node) bcryptCost() int {
	if n.cfg.BcryptCost != 0 {
		return n.cfg.BcryptCost
	}
	return bcrypt.DefaultCost
}

// authLimiter counts failed authentications per source address.
type authLimiter struct {
	mu      sync.Mutex
	sources map[string]*authSource
}

type authSource struct {
	failures int
	until    time.Time // refused until then
}

// check reports how long src must still wait (0: it may try now).
func (l *authLimiter) check(src string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.sources[src]; s != nil && now.Before(s.until) {
		return s.until.Sub(now)
	}
	return 0
}

// failed counts a failure of src.
func (l *authLimiter) failed(src string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sources == nil {
		l.sources = map[string]*authSource{}
	}
	s := l.sources[src]
	if s == nil {
		if len(l.sources) >= authSourcesMax {
			// Forget the sources whose wait is over; if all still wait,
			// everyone starts again rather than the map growing.
			for k, v := range l.sources {
				if !now.Before(v.until) {
					delete(l.sources, k)
				}
			}
			if len(l.sources) >= authSourcesMax {
				clear(l.sources)
			}
		}
		s = &authSource{}
		l.sources[src] = s
	}
	s.failures++
	if s.failures >= authFailuresFree {
		wait := authBackoffMin << min(s.failures-authFailuresFree, 6)
		s.until = now.Add(min(wait, authBackoffMax))
	}
}

// succeeded forgets src's failures.
func (l *authLimiter) succeeded(src string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.sources, src)
}

// sourceOf is the address a limiter counts: the host, without the port,
// since a client reconnects from a new port at every attempt.
func sourceOf(addr net.Addr) string {
	if addr == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	return host
}

// authenticate runs an OpAuthenticate on the connection's goroutine: it
// checks the password against the hash in the auth state the loop last
// published, and returns the answer and, on success, the user.
func (n *Node) authenticate(remote net.Addr, q *wire.Request) (*wire.Response, string) {
	src := sourceOf(remote)
	now := n.clock.Now()
	fail := func(why string) (*wire.Response, string) {
		n.limiter.failed(src, now)
		n.m.authFailures.Inc()
		n.log.Warn().Str("client", src).Str("user", q.Name).Str("reason", why).Msg("authentication failed")
		return &wire.Response{Err: wire.ErrAuthFailed, ErrMsg: "authentication failed: wrong user name or password"}, ""
	}
	if wait := n.limiter.check(src, now); wait > 0 {
		n.m.authFailures.Inc()
		n.log.Warn().Str("client", src).Str("user", q.Name).Msg("authentication refused: too many failed attempts from this address")
		return &wire.Response{Err: wire.ErrAuthFailed,
			ErrMsg: fmt.Sprintf("authentication failed: too many failed attempts from %s; retry in %s", src, wait.Round(time.Second))}, ""
	}
	a := n.authState.Load()
	var hash []byte
	u, ok := statemachine.AuthUser{}, false
	if a != nil {
		u, ok = a.User(q.Name)
	}
	if ok {
		hash = u.Hash
	}
	if len(hash) == 0 {
		// No such user, or one without a password: the same work as a
		// wrong password, so that the time does not tell which.
		bcryptCompare(n.dummyHash(), q.Value)
		if ok {
			return fail("the user has no password (client certificate only)")
		}
		return fail("no such user")
	}
	if err := bcryptCompare(hash, q.Value); err != nil {
		return fail("wrong password")
	}
	n.limiter.succeeded(src)
	n.log.Info().Str("client", src).Str("user", q.Name).Msg("client authenticated")
	return &wire.Response{User: q.Name}, q.Name
}

// hashPassword replaces a UserAdd's password with its bcrypt hash, on the
// connection's goroutine: the log carries the hash, never the password.
func (n *Node) hashPassword(q *wire.Request) *wire.Response {
	if len(q.Value) == 0 {
		return nil // a user without a password: a client certificate only
	}
	var h []byte
	var err error
	withBcryptSlot(func() { h, err = bcrypt.GenerateFromPassword(q.Value, n.bcryptCost()) })
	if err != nil {
		return &wire.Response{Err: wire.ErrInvalid, ErrMsg: fmt.Sprintf("cannot hash the password: %v", err)}
	}
	q.Value = h
	return nil
}

// checkBasicAuth checks an HTTP basic-auth pair against root's password,
// for the HTTP endpoints that show data (http.go).
func (n *Node) checkBasicAuth(remote string, user, password string) bool {
	src := remote
	if host, _, err := net.SplitHostPort(remote); err == nil {
		src = host
	}
	now := n.clock.Now()
	if n.limiter.check(src, now) > 0 {
		n.m.authFailures.Inc()
		return false
	}
	a := n.authState.Load()
	var hash []byte
	if a != nil {
		if u, ok := a.User(user); ok {
			hash = u.Hash
		}
	}
	ok := subtle.ConstantTimeCompare([]byte(user), []byte(statemachine.RootUser)) == 1 && len(hash) > 0
	if !ok {
		hash = n.dummyHash()
	}
	if err := bcryptCompare(hash, []byte(password)); err != nil || !ok {
		n.limiter.failed(src, now)
		n.m.authFailures.Inc()
		n.log.Warn().Str("client", src).Str("user", user).Msg("HTTP authentication failed")
		return false
	}
	n.limiter.succeeded(src)
	return true
}
