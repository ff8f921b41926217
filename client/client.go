package client

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/paxosd/paxosd/wire"
)

// Config configures a Client. Endpoints is required; the rest default.
type Config struct {
	// Endpoints are the nodes' addresses (host:port), any of them.
	Endpoints []string
	// ClusterID must match the cluster's. Default "paxosd".
	ClusterID string
	// DialTimeout bounds connecting to one endpoint. Default 1s.
	DialTimeout time.Duration
	// AttemptTimeout bounds one attempt at one endpoint before the client
	// retries (same sequence number) elsewhere. Default 3s.
	AttemptTimeout time.Duration
	// FrameBytesMax bounds a frame. Default 16 MiB.
	FrameBytesMax int
	// TLS, if set, connects with TLS (1.2 or later): RootCAs holds the
	// cluster's CA, and Certificates the client's certificate if the
	// nodes require one (paxosd serve --client-cert-auth). Without a
	// ServerName each node's certificate is checked against the host of
	// its endpoint. Default: plaintext.
	TLS *tls.Config
	// User and Password, if User is set, authenticate every connection
	// as that user (a cluster with auth enabled; docs/SECURITY.md). With
	// a client certificate instead, its CommonName is the user: leave
	// User empty. A refused password fails New (and later calls) with
	// ErrAuthFailed at once, without trying other endpoints.
	User     string
	Password string
	// AutoSyncInterval is how often the client asks the cluster for its
	// membership and replaces Endpoints with the members' addresses, so
	// that a client started with three endpoints keeps working after the
	// cluster grows, shrinks or moves (etcd's auto-sync). Default 30s;
	// negative: never.
	AutoSyncInterval time.Duration
}

// Client is a connection to a paxosd cluster. Safe for concurrent use.
type Client struct {
	cfg Config
	id  uint64

	mu sync.Mutex
	// calls is the connection for requests, moved to the leader once a
	// node names it (preferLeader); streams is the one for watches and
	// observers, which any member serves from its own state: it stays
	// where it is, started at a random member other than the leader, so
	// that many clients' watches spread over the members instead of
	// leaving the leader to send every event to every watcher.
	calls, streams connSlot
	leader         string // the leader's address, as a node last named it
	nextSeq        uint64
	outstanding    map[uint64]bool // true: the request holds the window (sequence)
	// seqFreed, when set, is closed (and cleared) as a request gets its
	// final answer: sequence waits on it for a number (seqWindow).
	seqFreed chan struct{}
	closed   bool

	// ka renews every session of the client (keepalive.go), made by
	// keepAliver on first use.
	kaOnce sync.Once
	ka     *keepAliver
	// stop ends the auto-sync (members.go); given are the endpoints
	// the client was configured with.
	stop  chan struct{}
	given []string
}

// New connects to the cluster at endpoints. It fails if none answers
// before ctx ends.
func New(ctx context.Context, endpoints ...string) (*Client, error) {
	return NewWithConfig(ctx, Config{Endpoints: endpoints})
}

// NewWithConfig is New with every option.
func NewWithConfig(ctx context.Context, cfg Config) (*Client, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, fmt.Errorf("%w: no endpoints given", ErrInvalid)
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = time.Second
	}
	if cfg.AttemptTimeout == 0 {
		cfg.AttemptTimeout = 3 * time.Second
	}
	if cfg.AutoSyncInterval == 0 {
		cfg.AutoSyncInterval = 30 * time.Second
	}
	cfg.Endpoints = slices.Clone(cfg.Endpoints)
	c := &Client{cfg: cfg, id: randomID(), outstanding: map[uint64]bool{}, stop: make(chan struct{}), given: slices.Clone(cfg.Endpoints)}
	c.streams.next = int(c.id % uint64(len(cfg.Endpoints)))
	c.streams.forStreams = true
	if _, err := c.connect(ctx, nil); err != nil {
		return nil, err
	}
	if cfg.AutoSyncInterval > 0 {
		go c.autoSync(cfg.AutoSyncInterval)
	}
	return c, nil
}

func randomID() uint64 {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			panic("client: no randomness: " + err.Error())
		}
		if id := binary.LittleEndian.Uint64(b[:]); id != 0 {
			return id
		}
	}
}

// ID returns the client id that, with a sequence number, identifies each
// of this client's requests.
func (c *Client) ID() uint64 { return c.id }

// Close closes the client's connection.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed && c.stop != nil {
		close(c.stop)
	}
	c.closed = true
	for _, sl := range []*connSlot{&c.calls, &c.streams} {
		if sl.conn != nil {
			sl.conn.close()
			sl.conn = nil
		}
	}
	return nil
}

// connSlot is one of a client's connections (Client.calls, Client.streams)
// and where to dial it next.
type connSlot struct {
	conn *conn
	next int // index of the endpoint to try next
	// forStreams: a new connection avoids the leader when another
	// endpoint answers.
	forStreams bool
}

// connect returns a live connection for calls, dialing endpoints in turn,
// starting with the one after the last that failed.
func (c *Client) connect(ctx context.Context, reach *reachLog) (*conn, error) {
	return c.connectSlot(ctx, &c.calls, reach)
}

// connectStreams returns a live connection for streams.
func (c *Client) connectStreams(ctx context.Context) (*conn, error) {
	return c.connectSlot(ctx, &c.streams, nil)
}

func (c *Client) connectSlot(ctx context.Context, sl *connSlot, reach *reachLog) (*conn, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	if sl.conn != nil && !sl.conn.broken() {
		cn := sl.conn
		c.mu.Unlock()
		return cn, nil
	}
	start := sl.next
	endpoints := c.cfg.Endpoints // replaced, never modified, by the auto-sync
	if n := len(endpoints); sl.forStreams && n > 1 {
		// The leader (the calls' connection moves there) has enough to
		// do: tried last.
		if e := endpoints[start%n]; e == c.leader || (c.calls.conn != nil && e == c.calls.conn.addr) {
			start = (start + 1) % n
		}
	}
	c.mu.Unlock()
	var errs []string
	for i := 0; i < len(endpoints); i++ {
		addr := endpoints[(start+i)%len(endpoints)]
		dctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
		cn, err := dial(dctx, addr, c.dialConfig(), c.creds())
		cancel()
		if reach != nil {
			reach.dialed(addr, err)
		}
		var ae errAuth
		if errors.As(err, &ae) {
			return nil, ae.err
		}
		if err != nil {
			errs = append(errs, err.Error())
			if ctx.Err() != nil {
				break
			}
			continue
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			cn.close()
			return nil, ErrClosed
		}
		if sl.conn != nil && !sl.conn.broken() {
			cn.close() // another call connected meanwhile
			cn = sl.conn
		} else {
			sl.conn = cn
			sl.next = (start + i) % len(endpoints)
		}
		c.mu.Unlock()
		return cn, nil
	}
	return nil, unavailable("cannot reach any endpoint (%s): %s", strings.Join(endpoints, ", "), joinDialErrors(errs))
}

// joinDialErrors lists why each endpoint failed, saying once a reason
// every endpoint gave: a TLS mistake ("pass --cacert") is the same at
// every node, and one line should say it once.
func joinDialErrors(errs []string) string {
	if len(errs) > 1 {
		reason := func(e string) string {
			// "wire: dial ADDR: why" -> "why"
			if rest, ok := strings.CutPrefix(e, "wire: dial "); ok {
				if _, why, ok := strings.Cut(rest, ": "); ok {
					return why
				}
			}
			return e
		}
		first := reason(errs[0])
		same := strings.HasPrefix(first, wire.ErrTLS.Error())
		for _, e := range errs[1:] {
			same = same && reason(e) == first
		}
		if same {
			return first
		}
	}
	return strings.Join(errs, "; ")
}

// abandon drops cn and makes the next connect start at the following
// endpoint (or at prefer, if it is one of the endpoints).
func (c *Client) abandon(cn *conn, prefer string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, sl := range []*connSlot{&c.calls, &c.streams} {
		if sl.conn != cn {
			continue
		}
		sl.conn = nil
		sl.next = (sl.next + 1) % len(c.cfg.Endpoints)
		for i, e := range c.cfg.Endpoints {
			if e == prefer {
				sl.next = i
			}
		}
	}
	cn.close()
}

// moveOff makes new calls start elsewhere (at prefer, if it is one of the
// endpoints) after a node answered that it cannot serve one (NotLeader,
// Unavailable, Timeout). The connection itself is sound: calls still in
// flight on it finish there, and it is closed once they have had ample
// time (closing it at once would fail them, and a retried call that is
// not deduplicated, a member change, could then report its own effect as
// a conflict).
func (c *Client) moveOff(cn *conn, prefer string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	moved := false
	for _, sl := range []*connSlot{&c.calls, &c.streams} {
		if sl.conn != cn {
			continue
		}
		moved = true
		sl.conn = nil
		sl.next = (sl.next + 1) % len(c.cfg.Endpoints)
		for i, e := range c.cfg.Endpoints {
			if e == prefer {
				sl.next = i
			}
		}
	}
	if moved {
		time.AfterFunc(2*c.cfg.AttemptTimeout, cn.close)
	}
}

// preferLeader moves new requests to the leader at addr (when it is one of
// the endpoints): any node serves any request, but the leader does so
// without forwarding. Calls still in flight on cn finish there; cn is closed
// once they have had ample time.
func (c *Client) preferLeader(cn *conn, addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.leader = addr
	if c.calls.conn != cn {
		return
	}
	for i, e := range c.cfg.Endpoints {
		if e == addr {
			c.calls.conn, c.calls.next = nil, i
			time.AfterFunc(2*c.cfg.AttemptTimeout, cn.close)
			return
		}
	}
}

// seqWindow bounds how far a client's newest sequence number may run
// ahead of its oldest request still waiting for an answer. A node keeps a
// client's last 1,024 answers (statemachine, ResultsPerClientMax) and
// raises the client's floor past the ones it forgets: a request shed Busy
// again and again while the client's later ones went through fell below
// that floor and came back "stale request" (TestBackPressureEndToEnd,
// 32 writers on one client). Half the node's window keeps the oldest one
// above the floor with room to spare. Blocking calls (a lock wait, a
// campaign) do not hold the window: the node keeps the answers of waiting
// calls, and they may wait for as long as a lock is held; keep-alives do
// not wait for it: a session must not expire behind the client's puts.
const seqWindow = 512

// sequence assigns q the next sequence number and the acknowledgement
// watermark, first waiting (until ctx ends) while seqWindow numbers are
// taken above the oldest request still waiting that holds the window;
// done must be called once the call has its final answer.
func (c *Client) sequence(ctx context.Context, q *wire.Request) (done func(), err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	keepAlive := q.Op == wire.OpSessionKeepAlive || q.Op == wire.OpSessionKeepAliveBatch
	for {
		acked, floor := c.lowestWaitingLocked()
		if keepAlive || c.nextSeq+1-floor < seqWindow {
			q.AckedBelow = acked
			break
		}
		if c.seqFreed == nil {
			c.seqFreed = make(chan struct{})
		}
		freed := c.seqFreed
		c.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
		}
		c.mu.Lock()
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%w: %d of this client's requests were under way, the oldest still unanswered: %w", ErrTimeout, seqWindow, err)
		}
	}
	c.nextSeq++
	seq := c.nextSeq
	c.outstanding[seq] = !q.Blocking()
	q.ClientID, q.Seq = c.id, seq
	return func() {
		c.mu.Lock()
		delete(c.outstanding, seq)
		if c.seqFreed != nil { // someone waits for a number
			close(c.seqFreed)
			c.seqFreed = nil
		}
		c.mu.Unlock()
	}, nil
}

// ackedBelowLocked is the lowest sequence number still waiting for its
// final answer: every one below it has its answer. c.mu must be held.
func (c *Client) ackedBelowLocked() uint64 {
	acked, _ := c.lowestWaitingLocked()
	return acked
}

// lowestWaitingLocked returns, in one pass over the requests still
// waiting for their final answer, the lowest sequence number among them
// (acked_below) and the lowest among those that hold the window
// (seqWindow: not a blocking call's); the next number to be taken when
// none is. c.mu must be held.
func (c *Client) lowestWaitingLocked() (acked, window uint64) {
	acked, window = c.nextSeq+1, c.nextSeq+1
	for s, holds := range c.outstanding {
		acked = min(acked, s)
		if holds {
			window = min(window, s)
		}
	}
	return acked, window
}

// do sends q until it gets an answer that is not "try again", moving to
// another endpoint whenever the current one fails, is unreachable, or has
// no leader. Retries keep q's client id and sequence number.
func (c *Client) do(ctx context.Context, q *wire.Request) (*wire.Response, error) {
	if q.Op != wire.OpStatus && q.Op != wire.OpSessionList && q.Op != wire.OpLockList && q.Op != wire.OpQuotaGet {
		done, err := c.sequence(ctx, q)
		if err != nil {
			return nil, err
		}
		defer done()
	}
	backoff := 5 * time.Millisecond
	reach := newReachLog(c.endpoints())
	var busy *wire.Response // the last answer, while it is Busy
	for {
		if err := ctx.Err(); err != nil {
			if busy != nil {
				return nil, &busyError{resp: &Error{Code: busy.Err, Msg: busy.ErrMsg}, ctxErr: err}
			}
			return nil, reach.timeout(err)
		}
		cn, err := c.connect(ctx, reach)
		if errors.Is(err, ErrClosed) {
			return nil, err
		}
		if err == nil && cn.mux.Version() < versionNeeded(q) {
			// Checked before sending: the node would not refuse it, but
			// misread it (page.go).
			return nil, errVersion(cn, q)
		}
		if err == nil {
			var resp *wire.Response
			resp, err = c.attempt(ctx, cn, q)
			if errors.Is(err, wire.ErrFrameTooLarge) {
				// Nothing was sent, and no node would take it: retrying
				// would only end in a timeout that hides the reason.
				return nil, fmt.Errorf("%w: %w", ErrTooLarge, err)
			}
			busy = nil
			if err == nil {
				switch resp.Err {
				case wire.ErrBusy:
					// Shed before it was proposed. The node (the leader,
					// usually) is what is overloaded: another would
					// forward to it, so the same one is asked again once
					// the wait it asked for is over.
					busy = resp
					reach.answered(cn.addr, resp, nil, c.cfg.AttemptTimeout)
					select {
					case <-time.After(busyWait(resp.RetryAfterMs)):
					case <-ctx.Done():
					}
					if q.Seq != 0 {
						// Answers that came meanwhile may make q the
						// oldest request waiting: the node admits that one
						// a little further (service/busy.go), so it is
						// not starved by this client's newer ones.
						c.mu.Lock()
						q.AckedBelow = c.ackedBelowLocked()
						c.mu.Unlock()
					}
					continue
				case wire.ErrNotLeader, wire.ErrUnavailable, wire.ErrTimeout:
					reach.answered(cn.addr, resp, nil, c.cfg.AttemptTimeout)
					err = responseError(resp)
					c.moveOff(cn, resp.LeaderAddr)
				default:
					if resp.LeaderAddr != "" && resp.LeaderAddr != cn.addr {
						c.preferLeader(cn, resp.LeaderAddr)
					}
					return resp, nil
				}
			} else {
				reach.answered(cn.addr, nil, err, c.cfg.AttemptTimeout)
				c.abandon(cn, "")
			}
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
		if backoff < 200*time.Millisecond {
			backoff *= 2
		}
	}
}

// busyWaitMax bounds the wait a Busy answer asks for (a node asks at most
// 2 s); busyJitter is the share added at random, so that the clients a
// node shed together do not all come back together.
const (
	busyWaitMax = 5 * time.Second
	busyJitter  = 0.5
)

// busyWait is how long to wait after a Busy answer asking for ms.
func busyWait(ms uint64) time.Duration {
	d := min(time.Duration(max(ms, 1))*time.Millisecond, busyWaitMax)
	return d + time.Duration(mrand.Float64()*busyJitter*float64(d))
}

// attempt makes one try at one node. A blocking call (a lock wait, a
// campaign) has no per-attempt limit: only ctx, or the connection's death,
// ends it.
func (c *Client) attempt(ctx context.Context, cn *conn, q *wire.Request) (*wire.Response, error) {
	actx := ctx
	if dl, ok := ctx.Deadline(); !blocking(q) && (!ok || time.Until(dl) > c.cfg.AttemptTimeout) {
		// Only when the attempt's bound is nearer than the caller's: a
		// derived context costs a timer and a registration on ctx, a
		// sixth of a load generator's CPU when it was made on every call.
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, c.cfg.AttemptTimeout)
		defer cancel()
	}
	q.TimeoutMs = 0
	if dl, ok := actx.Deadline(); ok {
		q.TimeoutMs = uint32(max(time.Until(dl)/time.Millisecond, 1))
	}
	return cn.call(actx, q)
}

func blocking(q *wire.Request) bool {
	return (q.Op == wire.OpLockAcquire && q.Wait) || q.Op == wire.OpCampaign
}
