package service

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/wire"
)

// The status page: GET / on --http-listen is one HTML file embedded in the
// binary (inline CSS and JS, nothing fetched from anywhere else) whose
// script polls GET /status.json and draws it. The JSON holds nothing the
// node does not already tell its clients: this node's part is built on the
// loop by the same functions that answer OpStatus, OpSessionList and
// OpLockList (status, wireSessions, wireLocks), and every other member's
// row is that member's own OpStatus answer, asked for as the rejoin probe
// asks (askStatus). Only the throughput and latency history is the page's
// own (rates.go).

//go:embed statuspage.html
var statusPageHTML []byte

// statusPageCSP lets the page run its inline script and style and fetch
// from its own origin, and nothing else: a lock or election name is
// client data, and the page renders it as text, never as markup.
const statusPageCSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

const (
	// pageListMax bounds each table (sessions, locks, elections): the
	// page is for looking, `paxosd session ls` and `lock ls` list them all.
	pageListMax = 500
	// pageValueBytesMax bounds an election's value as shown.
	pageValueBytesMax = 256
	// pageGatherTimeout bounds one gathering: the loop's answer and the
	// other members', asked in parallel. A member that has not answered
	// by then is shown unreachable.
	pageGatherTimeout = 1500 * time.Millisecond
)

// statusPage is the JSON document of GET /status.json.
type statusPage struct {
	// Node is the member that answered; TimeUnixMs its clock when it did.
	Node       paxos.NodeID `json:"node"`
	TimeUnixMs int64        `json:"time_unix_ms"`
	// Leader is the leader this node knows of (0 = none known).
	Leader     paxos.NodeID `json:"leader"`
	LeaderAddr string       `json:"leader_addr"`
	// Revision is the store revision of this node's applied state, and
	// ClusterClockMs the replicated cluster clock (see DelayUntilMs).
	Revision       uint64         `json:"revision"`
	ClusterClockMs uint64         `json:"cluster_clock_ms"`
	Members        []pageMember   `json:"members"`
	Rates          pageRates      `json:"throughput"`
	Sessions       []pageSession  `json:"sessions"`
	Locks          []pageLock     `json:"locks"`
	Elections      []pageElection `json:"elections"`
	// The totals count the whole tables; the lists stop at pageListMax.
	SessionsTotal  int `json:"sessions_total"`
	LocksTotal     int `json:"locks_total"`
	ElectionsTotal int `json:"elections_total"`
}

// pageMember is one member's wire.NodeStatus, as it reported it.
type pageMember struct {
	ID      paxos.NodeID `json:"id"`
	Addr    string       `json:"addr"`
	Role    string       `json:"role"` // "" when unreachable
	Ballot  string       `json:"ballot"`
	Leader  paxos.NodeID `json:"leader"`
	Commit  paxos.Slot   `json:"commit"`
	Applied paxos.Slot   `json:"applied"`
	// Lag is how many slots its applied state is behind the highest
	// commit among the members that answered (null if it did not).
	Lag *uint64 `json:"lag"`
	// Reachable: it answered this node's status request; Connected: this
	// node's transport has a connection to it (true for itself).
	Reachable bool   `json:"reachable"`
	Connected bool   `json:"connected"`
	Error     string `json:"error,omitempty"`
}

type pageSession struct {
	ID          uint64   `json:"id"`
	TTLMs       uint64   `json:"ttl_ms"`
	RemainingMs uint64   `json:"remaining_ms"`
	Locks       []string `json:"locks"`
	Waiting     []string `json:"waiting"`
	Elections   []string `json:"elections"`
}

type pageLock struct {
	Name         string   `json:"name"`
	Holder       uint64   `json:"holder"` // session, 0 = free
	Token        uint64   `json:"token"`  // fencing token of the grant
	Waiters      []uint64 `json:"waiters"`
	DelayUntilMs uint64   `json:"delay_until_ms"`
}

type pageElection struct {
	Name     string `json:"name"`
	Session  uint64 `json:"session"` // the leader's, 0 = no leader
	Term     uint64 `json:"term"`
	Value    string `json:"value"` // as text, cut at pageValueBytesMax
	Seq      uint64 `json:"seq"`
	Revision uint64 `json:"revision"`
}

// serveStatusHTML serves the page itself.
func serveStatusHTML(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", statusPageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
	w.Write(statusPageHTML)
}

// serveStatusJSON serves the data the page polls.
func (n *Node) serveStatusJSON(w http.ResponseWriter, r *http.Request) {
	page, err := n.statusPage(r.Context())
	if err != nil {
		http.Error(w, "status unavailable: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	json.NewEncoder(w).Encode(page)
}

// pageFlight lets concurrent requests share one gathering, so that any
// number of open pages costs the loop one visit and each member one status
// request at a time.
type pageFlight struct {
	mu  sync.Mutex
	cur *pageCall
}

type pageCall struct {
	done chan struct{}
	page *statusPage
	err  error
}

// statusPage returns a fresh page, joining a gathering already under way.
// The gathering runs on a context of its own: a viewer that goes away does
// not cut it short for the others.
func (n *Node) statusPage(ctx context.Context) (*statusPage, error) {
	n.page.mu.Lock()
	c := n.page.cur
	if c == nil {
		c = &pageCall{done: make(chan struct{})}
		n.page.cur = c
		go n.gatherPage(c)
	}
	n.page.mu.Unlock()
	select {
	case <-c.done:
		return c.page, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (n *Node) gatherPage(c *pageCall) {
	ctx, cancel := context.WithTimeout(context.Background(), pageGatherTimeout)
	defer cancel()
	c.page, c.err = n.buildStatusPage(ctx)
	n.page.mu.Lock()
	n.page.cur = nil
	n.page.mu.Unlock()
	close(c.done)
}

// errNodeStopped: the loop is not running, so there is no state to show.
var errNodeStopped = errors.New("service: node stopped")

// onLoop runs f on the node loop, between two inputs, and waits for it.
// On an error f may still run later; the caller must then not look at
// what f writes.
func (n *Node) onLoop(ctx context.Context, f func()) error {
	if n.deferred == nil {
		return errNodeStopped // not started (the simulation has no HTTP)
	}
	ran := make(chan struct{})
	select {
	case n.deferred <- func() { f(); close(ran) }:
	case <-n.done:
		return errNodeStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ran:
		return nil
	case <-n.done:
		return errNodeStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// buildStatusPage takes this node's part on the loop, then asks the other
// members for theirs.
func (n *Node) buildStatusPage(ctx context.Context) (*statusPage, error) {
	var p statusPage
	var self wire.NodeStatus
	if err := n.onLoop(ctx, func() { self = n.pageLocal(&p) }); err != nil {
		return nil, err
	}
	p.Members = n.pageMembers(ctx, self)
	return &p, nil
}

// pageLocal fills what this node's loop knows, and returns its own status.
// It runs on the loop.
func (n *Node) pageLocal(p *statusPage) wire.NodeStatus {
	self := n.status()
	p.Node, p.Leader, p.LeaderAddr = self.ID, self.Leader, n.book.addr(self.Leader)
	p.TimeUnixMs = n.clock.Now().UnixMilli()
	p.Rates = n.rates.view()
	// Empty tables are [], not null, for the page's script.
	p.Sessions, p.Locks, p.Elections = []pageSession{}, []pageLock{}, []pageElection{}
	if n.installing() {
		// No state to list (install.go): the dropped state's figures, and
		// empty tables until the snapshot's state is in place.
		p.Revision, p.ClusterClockMs = n.install.revision, n.install.clock
		return self
	}
	p.Revision, p.ClusterClockMs = n.sm.Revision(), n.sm.Clock()

	sessions := n.sm.Sessions()
	p.SessionsTotal = len(sessions)
	for _, s := range wireSessions(sessions[:min(len(sessions), pageListMax)]) {
		p.Sessions = append(p.Sessions, pageSession{ID: s.ID, TTLMs: s.TTLMs, RemainingMs: s.RemainingMs,
			Locks: s.Locks, Waiting: s.Waiting, Elections: s.Elections})
	}
	locks := n.sm.Locks()
	p.LocksTotal = len(locks)
	for _, l := range wireLocks(locks[:min(len(locks), pageListMax)]) {
		p.Locks = append(p.Locks, pageLock{Name: l.Name, Holder: l.Holder, Token: l.Token,
			Waiters: l.Waiters, DelayUntilMs: l.DelayUntilMs})
	}
	elections := n.sm.Elections()
	p.ElectionsTotal = len(elections)
	for _, e := range elections[:min(len(elections), pageListMax)] {
		l := wireLeader(e)
		p.Elections = append(p.Elections, pageElection{Name: l.Election, Session: l.Session, Term: l.Term,
			Value: pageText(l.Value), Seq: l.Seq, Revision: l.Revision})
	}
	return self
}

// pageMembers puts this node's status beside every other member's own
// answer, asked in parallel, and works out each one's lag.
func (n *Node) pageMembers(ctx context.Context, self wire.NodeStatus) []pageMember {
	ids := n.book.members()
	out := make([]pageMember, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		if id == self.ID {
			out[i] = memberRow(self, true, nil)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := n.askStatus(ctx, id)
			if err != nil {
				st = wire.NodeStatus{ID: id, Addr: n.book.addr(id)}
			}
			out[i] = memberRow(st, n.tcp != nil && n.tcp.Stats(id).Connected, err)
		}()
	}
	wg.Wait()
	var top paxos.Slot
	for _, m := range out {
		if m.Reachable {
			top = max(top, m.Commit)
		}
	}
	for i := range out {
		if out[i].Reachable {
			lag := uint64(top - min(top, out[i].Applied))
			out[i].Lag = &lag
		}
	}
	return out
}

func memberRow(st wire.NodeStatus, connected bool, err error) pageMember {
	m := pageMember{ID: st.ID, Addr: st.Addr, Connected: connected}
	if err != nil {
		m.Error = err.Error()
		return m
	}
	m.Role, m.Ballot, m.Leader = st.Role, st.Ballot.String(), st.Leader
	m.Commit, m.Applied, m.Reachable = st.Commit, st.Applied, true
	return m
}

// pageText shows a client's bytes as text: cut short, and invalid UTF-8
// (a cut rune included) replaced.
func pageText(b []byte) string {
	return strings.ToValidUTF8(string(b[:min(len(b), pageValueBytesMax)]), "\uFFFD")
}
