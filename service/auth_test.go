package service

import (
	"context"
	"errors"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// userClient connects to c as user with password.
func (c *testCluster) userClient(ctx context.Context, user, password string) (*client.Client, error) {
	cl, err := client.NewWithConfig(ctx, client.Config{Endpoints: c.endpoints(), User: user, Password: password})
	if err == nil {
		c.t.Cleanup(func() { cl.Close() })
	}
	return cl, err
}

// rawAs is a bare connection to node addr, authenticated as user.
func rawAs(t *testing.T, ctx context.Context, addr, user, password string) *wire.Mux {
	t.Helper()
	sc, err := wire.DialClient(ctx, addr, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	m := wire.NewMux(sc)
	t.Cleanup(func() { m.Close() })
	resp, err := m.Call(ctx, &wire.Request{Op: wire.OpAuthenticate, Name: user, Value: []byte(password)})
	if err != nil || resp.Err != wire.ErrNone {
		t.Fatalf("authenticate %s: %v %v %s", user, err, resp.Err, resp.ErrMsg)
	}
	return m
}

// TestAuthCluster: a cluster with auth enabled. A user whose role grants
// readwrite on app/ may put app/x, lock app/lock and campaign in
// app/election, but not put other/x (permission denied, nothing
// written), nor use another user's session; without credentials every
// request is "authentication required"; a wrong password fails and is
// counted; root manages users; a revoked role takes effect on the user's
// next request; listings are filtered.
func TestAuthCluster(t *testing.T) {
	c := startTunedCluster(t, func(cfg *Config) { cfg.BcryptCost = bcrypt.MinCost })
	c.waitLeader()
	ctx, anon := c.client(60 * time.Second)
	c.waitLevel(ctx, statemachine.LevelAuth)

	if err := anon.AuthEnable(ctx); !errors.Is(err, client.ErrInvalid) || !strings.Contains(err.Error(), "no root user") {
		t.Fatalf("auth enable without root: %v", err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(anon.UserAdd(ctx, "root", "rootpw"))
	must(anon.UserAdd(ctx, "alice", "alicepw"))
	must(anon.UserAdd(ctx, "bob", "bobpw"))
	must(anon.RoleAdd(ctx, "app"))
	must(anon.RoleGrant(ctx, "app", "app/", client.PermReadWrite))
	must(anon.UserGrantRole(ctx, "alice", "app"))
	must(anon.UserGrantRole(ctx, "bob", "app"))
	must(anon.AuthEnable(ctx))

	// Without credentials: refused, on a connection made before too.
	if _, err := anon.Put(ctx, "app/x", []byte("1")); !errors.Is(err, client.ErrAuthRequired) ||
		!strings.Contains(err.Error(), "authentication required") {
		t.Fatalf("put without credentials: %v", err)
	}
	// A wrong password: refused at connect, counted.
	before := metricValue(t, c, "paxosd_auth_failures_total")
	if _, err := c.userClient(ctx, "alice", "wrong"); !errors.Is(err, client.ErrAuthFailed) {
		t.Fatalf("wrong password: %v", err)
	}
	if after := metricValue(t, c, "paxosd_auth_failures_total"); after <= before {
		t.Fatalf("paxosd_auth_failures_total %v -> %v: the failure was not counted", before, after)
	}

	root, err := c.userClient(ctx, "root", "rootpw")
	must(err)
	alice, err := c.userClient(ctx, "alice", "alicepw")
	must(err)
	if st, err := alice.AuthStatus(ctx); err != nil || !st.Enabled || st.User != "alice" {
		t.Fatalf("alice's auth status: %+v %v", st, err)
	}
	if _, err := alice.Put(ctx, "app/x", []byte("1")); err != nil {
		t.Fatalf("alice puts app/x: %v", err)
	}
	_, err = alice.Put(ctx, "other/x", []byte("1"))
	if !errors.Is(err, client.ErrPermissionDenied) || err.Error() != `permission denied: alice may not write "other/x"` {
		t.Fatalf("alice puts other/x: %v", err)
	}
	if _, err := root.Get(ctx, "other/x"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("other/x after the refused put: %v (want not found: nothing written)", err)
	}
	if _, err := alice.List(ctx, "", 0); !errors.Is(err, client.ErrPermissionDenied) {
		t.Fatalf("alice lists every key: %v", err)
	}
	if _, err := alice.List(ctx, "app/", 0); err != nil {
		t.Fatalf("alice lists app/: %v", err)
	}
	// A transaction: every key of both branches.
	if _, err := alice.Txn(ctx).If().Then(client.OpPut("app/y", []byte("1"))).Else(client.OpPut("other/y", []byte("1"))).Commit(); !errors.Is(err, client.ErrPermissionDenied) {
		t.Fatalf("a txn whose else branch writes other/y: %v", err)
	}
	s, err := alice.NewSession(ctx, 10*time.Second)
	must(err)
	if _, err := s.Lock(ctx, "app/lock"); err != nil {
		t.Fatalf("alice locks app/lock: %v", err)
	}
	if _, err := s.Lock(ctx, "other/lock"); !errors.Is(err, client.ErrPermissionDenied) {
		t.Fatalf("alice locks other/lock: %v", err)
	}
	if _, err := s.Campaign(ctx, "app/election", []byte("alice")); err != nil {
		t.Fatalf("alice campaigns in app/election: %v", err)
	}
	if err := alice.UserAdd(ctx, "mallory", "x"); !errors.Is(err, client.ErrPermissionDenied) {
		t.Fatalf("alice adds a user: %v", err)
	}

	// Bob, with the same role, may not touch alice's session.
	bob := rawAs(t, ctx, c.endpoints()[0], "bob", "bobpw")
	resp, err := bob.Call(ctx, &wire.Request{Op: wire.OpSessionClose, ClientID: 99, Seq: 1, SessionID: s.ID()})
	if err != nil || resp.Err != wire.ErrPermissionDenied || !strings.Contains(resp.ErrMsg, "belongs to alice") {
		t.Fatalf("bob closes alice's session: %v %v %q", err, resp.Err, resp.ErrMsg)
	}
	resp, err = bob.Call(ctx, &wire.Request{Op: wire.OpSessionList})
	if err != nil || resp.Err != wire.ErrNone || len(resp.Sessions) != 0 {
		t.Fatalf("bob lists sessions: %v %+v (alice's must not show)", err, resp)
	}
	if got, err := root.Sessions(ctx); err != nil || len(got) != 1 {
		t.Fatalf("root lists sessions: %v %v", got, err)
	}

	// Revoking the role: alice's next request is refused.
	must(root.UserRevokeRole(ctx, "alice", "app"))
	if _, err := alice.Put(ctx, "app/x", []byte("2")); !errors.Is(err, client.ErrPermissionDenied) {
		t.Fatalf("alice puts after her role was revoked: %v", err)
	}
	users, err := root.Users(ctx)
	must(err)
	if len(users) != 3 || users[0].Name != "alice" || len(users[0].Roles) != 0 || !users[2].HasPassword {
		t.Fatalf("users: %+v", users)
	}
	// The HTTP port: the status page needs root, /metrics stays open.
	httpGet := func(path, user, password string) int {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", path, nil)
		if user != "" {
			r.SetBasicAuth(user, password)
		}
		c.nodes[1].HTTPHandler().ServeHTTP(w, r)
		return w.Code
	}
	for _, h := range []struct {
		path, user, password string
		want                 int
	}{
		{"/status.json", "", "", 401},
		{"/status.json", "alice", "alicepw", 401},
		{"/status.json", "root", "wrong", 401},
		{"/status.json", "root", "rootpw", 200},
		{"/metrics", "", "", 200},
		{"/healthz", "", "", 200},
	} {
		if got := httpGet(h.path, h.user, h.password); got != h.want {
			t.Errorf("GET %s as %q: %d, want %d", h.path, h.user, got, h.want)
		}
	}

	// Disabling auth lets anyone in again.
	must(root.AuthDisable(ctx))
	if _, err := anon.Put(ctx, "other/x", []byte("1")); err != nil {
		t.Fatalf("put with auth disabled: %v", err)
	}
	waitFor(t, "node 1 to apply auth disable", func() bool { return httpGet("/status.json", "", "") == 200 })
}

// metricValue sums metric name over the cluster's running nodes.
func metricValue(t *testing.T, c *testCluster, name string) float64 {
	t.Helper()
	var sum float64
	for _, n := range c.nodes {
		fams, err := n.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fams {
			if f.GetName() == name {
				for _, m := range f.GetMetric() {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAuthLimiter: a source may fail authFailuresFree times; then it waits
// 1 s, and each further failure doubles the wait up to a minute; success
// forgets it; other sources are not affected.
func TestAuthLimiter(t *testing.T) {
	var l authLimiter
	now := time.Unix(1000, 0)
	for i := 0; i < authFailuresFree-1; i++ {
		l.failed("10.0.0.1", now)
		if w := l.check("10.0.0.1", now); w != 0 {
			t.Fatalf("after %d failures: wait %s", i+1, w)
		}
	}
	l.failed("10.0.0.1", now)
	if w := l.check("10.0.0.1", now); w != time.Second {
		t.Fatalf("after %d failures: wait %s, want 1s", authFailuresFree, w)
	}
	if w := l.check("10.0.0.2", now); w != 0 {
		t.Fatalf("another source waits %s", w)
	}
	for i := 0; i < 20; i++ {
		l.failed("10.0.0.1", now)
	}
	if w := l.check("10.0.0.1", now); w != authBackoffMax {
		t.Fatalf("after many failures: wait %s, want %s", w, authBackoffMax)
	}
	if w := l.check("10.0.0.1", now.Add(authBackoffMax)); w != 0 {
		t.Fatalf("after the wait: %s", w)
	}
	l.succeeded("10.0.0.1")
	l.failed("10.0.0.1", now)
	if w := l.check("10.0.0.1", now); w != 0 {
		t.Fatalf("a success did not forget the failures: wait %s", w)
	}
	if got := sourceOf(&net.TCPAddr{IP: net.ParseIP("10.0.0.9"), Port: 5555}); got != "10.0.0.9" {
		t.Fatalf("sourceOf: %q", got)
	}
}
