package service

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/paxos"
)

// getStatusPage asks node n's HTTP handler for /status.json.
func getStatusPage(t *testing.T, n *Node) (statusPage, int) {
	t.Helper()
	w := httptest.NewRecorder()
	n.HTTPHandler().ServeHTTP(w, httptest.NewRequest("GET", "/status.json", nil))
	var p statusPage
	if w.Code == 200 {
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("/status.json Content-Type %q", ct)
		}
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
			t.Fatalf("/status.json: %v\n%s", err, w.Body.String())
		}
	}
	return p, w.Code
}

// TestStatusPageJSON: after writes, a session, a lock and an election, the
// page's data as a follower serves it shows every member as that member
// reports itself, one leader, the lock with its holder and token, the
// session and the election as the client was told, and a throughput and
// latency history covering the calls made.
func TestStatusPageJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	c := startTestCluster(t)
	c.waitLeader()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := client.New(ctx, c.endpoints()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const puts = 20
	for i := range puts {
		if _, err := cl.Put(ctx, fmt.Sprintf("status/%d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	sess, err := cl.NewSession(ctx, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	lk, err := sess.TryLock(ctx, "jobs/nightly")
	if err != nil {
		t.Fatal(err)
	}
	led, err := sess.Campaign(ctx, "primary", []byte("host-a"))
	if err != nil {
		t.Fatal(err)
	}
	calls := uint64(puts + 3) // the puts, the session, the lock, the campaign

	var p statusPage
	var answered uint64
	deadline := time.Now().Add(15 * time.Second)
	for {
		// Every call is counted where it arrived, once its second has
		// closed; every member applies every command.
		answered = 0
		ready := true
		for id, n := range c.nodes {
			np, code := getStatusPage(t, n)
			if code != 200 {
				t.Fatalf("node %d: /status.json %d", id, code)
			}
			answered += np.Rates.Answered
			ready = ready && np.Rates.OpsPerSec > 0
		}
		leader, follower := c.leader(), paxos.NodeID(0)
		for id := range c.nodes {
			if id != leader {
				follower = id
			}
		}
		p, _ = getStatusPage(t, c.nodes[follower])
		if ready && answered >= calls && pageShows(p, sess.ID(), lk.Name, led.Election) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page never showed the calls made (%d answered of %d): %+v", answered, calls, p)
		}
		time.Sleep(100 * time.Millisecond)
	}

	if len(p.Members) != len(c.nodes) {
		t.Fatalf("members %+v, want %d", p.Members, len(c.nodes))
	}
	var top paxos.Slot
	leaders := 0
	for _, m := range p.Members {
		if !m.Reachable || m.Error != "" || m.Addr != c.peers[m.ID] {
			t.Errorf("member %+v: want reachable at %s", m, c.peers[m.ID])
		}
		if m.Role == "leader" {
			leaders++
			if m.ID != p.Leader {
				t.Errorf("member %d leads, but the page's leader is %d", m.ID, p.Leader)
			}
		}
		top = max(top, m.Commit)
	}
	if leaders != 1 || p.LeaderAddr != c.peers[p.Leader] {
		t.Errorf("%d leaders among %+v; leader %d at %q", leaders, p.Members, p.Leader, p.LeaderAddr)
	}
	for _, m := range p.Members {
		if m.Lag == nil || *m.Lag != uint64(top-m.Applied) {
			t.Errorf("member %d: lag %v, want highest commit %d - applied %d", m.ID, m.Lag, top, m.Applied)
		}
	}

	locks, err := cl.Locks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(p.Locks, func(l pageLock) bool { return l.Name == lk.Name })
	if i < 0 || p.Locks[i].Holder != sess.ID() || p.Locks[i].Token != lk.Token || len(p.Locks) != len(locks) || p.LocksTotal != len(locks) {
		t.Errorf("locks %+v (total %d), want %q held by session %d with token %d, as lock ls says: %+v",
			p.Locks, p.LocksTotal, lk.Name, sess.ID(), lk.Token, locks)
	}
	j := slices.IndexFunc(p.Sessions, func(s pageSession) bool { return s.ID == sess.ID() })
	if j < 0 || !slices.Equal(p.Sessions[j].Locks, []string{lk.Name}) || !slices.Equal(p.Sessions[j].Elections, []string{led.Election}) ||
		p.Sessions[j].TTLMs != uint64(sess.TTL()/time.Millisecond) {
		t.Errorf("sessions %+v, want %d holding %q in %q", p.Sessions, sess.ID(), lk.Name, led.Election)
	}
	k := slices.IndexFunc(p.Elections, func(e pageElection) bool { return e.Name == led.Election })
	if k < 0 || p.Elections[k].Session != sess.ID() || p.Elections[k].Term != led.Term || p.Elections[k].Value != string(led.Value) {
		t.Errorf("elections %+v, want %q led by session %d, term %d, value %q", p.Elections, led.Election, sess.ID(), led.Term, led.Value)
	}

	r := p.Rates
	if r.WindowSeconds != rateWindowSeconds || len(r.Samples) == 0 || r.OpsPerSec <= 0 {
		t.Errorf("throughput %+v: want samples and a positive rate", r)
	}
	if r.P50Ms != nil && (r.P99Ms == nil || *r.P50Ms > *r.P99Ms || *r.P50Ms <= 0) {
		t.Errorf("latency p50 %v p99 %v", r.P50Ms, r.P99Ms)
	}
}

// pageShows: the page's applied state has caught up with the lock and the
// election the test's session took, the last of its commands.
func pageShows(p statusPage, session uint64, lock, election string) bool {
	return slices.ContainsFunc(p.Locks, func(l pageLock) bool { return l.Name == lock && l.Holder == session }) &&
		slices.ContainsFunc(p.Elections, func(e pageElection) bool { return e.Name == election && e.Session == session })
}

// TestStatusPageRoutes: / is the embedded page (and only / itself: other
// paths stay 404), locked down to its own origin; a stopped node's data is
// a 503, not a hang.
func TestStatusPageRoutes(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	c := startTestCluster(t)
	n := c.nodes[1]
	get := func(method, path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		n.HTTPHandler().ServeHTTP(w, httptest.NewRequest(method, path, nil))
		return w
	}
	w := get("GET", "/")
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") ||
		!strings.Contains(w.Header().Get("Content-Security-Policy"), "default-src 'none'") ||
		!strings.Contains(w.Body.String(), `<table id="members">`) {
		t.Errorf("GET /: %d %v\n%.300s", w.Code, w.Header(), w.Body.String())
	}
	// No external asset: nothing in the page names another origin.
	for _, ref := range []string{"http://", "https://", "//cdn", "src=\""} {
		if strings.Contains(w.Body.String(), ref) {
			t.Errorf("the page refers to something outside itself: %q", ref)
		}
	}
	for _, path := range []string{"/index.html", "/status", "/favicon.ico", "/status.json/x"} {
		if w := get("GET", path); w.Code != 404 {
			t.Errorf("GET %s: %d, want 404", path, w.Code)
		}
	}
	if w := get("POST", "/"); w.Code != 405 {
		t.Errorf("POST /: %d, want 405", w.Code)
	}
	n.Stop()
	if _, code := getStatusPage(t, n); code != 503 {
		t.Errorf("/status.json of a stopped node: %d, want 503", code)
	}
}

// TestStatusPageRates drives the recorder on made-up time and checks its
// figures against a direct computation from the same inputs.
func TestStatusPageRates(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var r rateRecorder
	if v := r.view(); len(v.Samples) != 0 || v.OpsPerSec != 0 || v.P50Ms != nil {
		t.Fatalf("empty recorder: %+v", v)
	}
	t0 := time.Unix(1_700_000_000, 0)
	r.tick(t0)
	var lats []time.Duration // those of the last rateWindowSeconds seconds
	var ops uint64
	const seconds = 100
	for s := 1; s <= seconds; s++ {
		k := rng.Intn(50)
		r.applied(k)
		for range k {
			d := time.Duration(math.Exp(rng.Float64()*8)) * time.Microsecond * 10
			r.observe(d)
			if s > seconds-rateWindowSeconds {
				lats = append(lats, d)
			}
		}
		if s > seconds-rateWindowSeconds {
			ops += uint64(k)
		}
		r.tick(t0.Add(time.Duration(s)*time.Second - time.Millisecond)) // not a second yet
		r.tick(t0.Add(time.Duration(s) * time.Second))
	}
	v := r.view()
	if len(v.Samples) != seconds || v.Samples[seconds-1].EndUnixMs != t0.Add(seconds*time.Second).UnixMilli() {
		t.Fatalf("%d samples, last at %d", len(v.Samples), v.Samples[len(v.Samples)-1].EndUnixMs)
	}
	if want := math.Round(float64(ops)/rateWindowSeconds*10) / 10; v.OpsPerSec != want || v.Answered != uint64(len(lats)) {
		t.Errorf("ops/s %v answered %d, want %v and %d", v.OpsPerSec, v.Answered, want, len(lats))
	}
	slices.Sort(lats)
	for _, q := range []struct {
		got *float64
		q   float64
	}{{v.P50Ms, 0.5}, {v.P99Ms, 0.99}} {
		want := float64(lats[int(math.Ceil(q.q*float64(len(lats))))-1]) / float64(time.Millisecond)
		// A bucket spans a factor 2^(1/4); its middle is within 2^(1/8).
		if q.got == nil || *q.got < want/math.Exp2(0.126) || *q.got > want*math.Exp2(0.126) {
			t.Errorf("p%v: %v ms, want about %v ms", q.q*100, q.got, want)
		}
	}

	// A stalled loop: five seconds in one sample, at the right rate.
	last := t0.Add(seconds * time.Second)
	r.applied(500)
	r.tick(last.Add(5 * time.Second))
	if v := r.view(); v.Samples[len(v.Samples)-1].OpsPerSec != 100 {
		t.Errorf("a 5 s sample of 500 commands: %+v", v.Samples[len(v.Samples)-1])
	}

	// The ring keeps the last rateHistorySeconds samples, in order.
	for s := 1; s <= 2*rateHistorySeconds; s++ {
		r.tick(last.Add(5*time.Second + time.Duration(s)*time.Second))
	}
	ss := r.view().Samples
	if len(ss) != rateHistorySeconds {
		t.Fatalf("%d samples, want %d", len(ss), rateHistorySeconds)
	}
	for i := 1; i < len(ss); i++ {
		if ss[i].EndUnixMs-ss[i-1].EndUnixMs != 1000 {
			t.Fatalf("samples %d and %d: %d then %d", i-1, i, ss[i-1].EndUnixMs, ss[i].EndUnixMs)
		}
	}
	if v := r.view(); v.OpsPerSec != 0 || v.P50Ms != nil || v.P99Ms != nil {
		t.Errorf("an idle minute: %+v", v)
	}
}

// TestStatusPageText: a client's bytes shown as text are valid UTF-8 and
// bounded, however they were cut.
func TestStatusPageText(t *testing.T) {
	long := strings.Repeat("é", pageValueBytesMax) // 2 bytes a rune: cut mid-rune
	for _, in := range [][]byte{nil, []byte("host-a"), {0xff, 0xfe, 'x'}, []byte(long)} {
		got := pageText(in)
		if !utf8.ValidString(got) || len(got) > pageValueBytesMax+len("\uFFFD") {
			t.Errorf("pageText(%q) = %q", in, got)
		}
	}
	if got := pageText([]byte("host-a")); got != "host-a" {
		t.Errorf("pageText(host-a) = %q", got)
	}
}
