package service

import (
	"bytes"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/paxosd/paxosd/internal/fuzzcorpus"
	"github.com/paxosd/paxosd/wire"
)

// The users of the node FuzzAuthenticate talks to: alice may read and
// write under app/; auth is enabled.
const (
	fuzzAlice         = "alice"
	fuzzAlicePassword = "alice-pw"
)

// startAuthFuzzNode is startFuzzNode with user alice (role app: readwrite
// on app/) and auth enabled; one per fuzz worker process.
func startAuthFuzzNode(tb testing.TB) *fuzzNode {
	fn := startSmallNode(tb, zerolog.New(os.Stderr).Level(zerolog.ErrorLevel))
	for _, q := range []*wire.Request{
		{Op: wire.OpUserAdd, Name: fuzzAlice, Value: []byte(fuzzAlicePassword)},
		{Op: wire.OpRoleAdd, Name: "app"},
		{Op: wire.OpRoleGrant, Name: "app", Prefix: "app/", Perm: wire.PermReadWrite},
		{Op: wire.OpUserGrantRole, Name: fuzzAlice, Role: "app"},
		{Op: wire.OpAuthEnable},
	} {
		if err := fn.call(q); err != nil {
			tb.Fatalf("%s: %v", q.Op, err)
		}
	}
	return fn
}

// FuzzAuthenticate fuzzes the authentication exchange of a node with auth
// enabled: a client hello, an Authenticate (request 1) with the input's
// user and password, then the input's other bytes. The node must answer
// request 1 with success only for alice's own password (and then with
// user alice), else with AuthFailed or Invalid; it must never answer
// ErrInternal; on a connection that did not authenticate, no request but
// those open to anyone (Cancel, AuthStatus, and on this plaintext node
// Status and SnapshotRead) may succeed, and neither may alice's outside
// app/ (the fuzzer may send the right password); the node must close the
// connection once the input ends, and go on serving its root probe.
// Failed attempts also exercise the per-source limiter: after a few, even
// alice's right password is refused "too many failed attempts".
func FuzzAuthenticate(f *testing.F) {
	fn := startAuthFuzzNode(f)
	f.Fuzz(func(t *testing.T, user string, password []byte, rest []byte) {
		auth := wire.AppendFrame(nil, wire.EncodeRequest(nil, &wire.Request{ID: 1, Op: wire.OpAuthenticate, Name: user, Value: password}))
		stream := append(append(clientHelloFrame("paxosd"), auth...), rest...)
		ops := requestOps(stream)
		answers := fn.exchangeAnswers(t, stream)
		authed := ""
		if a, ok := answers[1]; ok {
			switch {
			case a.Err == wire.ErrNone:
				if user != fuzzAlice || string(password) != fuzzAlicePassword || a.User != fuzzAlice {
					t.Fatalf("authenticated as %q with user %q and password %q", a.User, user, password)
				}
				authed = fuzzAlice
			case a.Err != wire.ErrAuthFailed && a.Err != wire.ErrInvalid:
				t.Fatalf("authenticate answered %s: %s", a.Err, a.ErrMsg)
			}
		}
		for id, a := range answers {
			op, known := ops[id]
			if id == 1 || !known || a.Err != wire.ErrNone {
				continue
			}
			switch op.Op {
			case wire.OpCancel, wire.OpAuthStatus, wire.OpStatus, wire.OpSnapshotRead, wire.OpAuthenticate:
				continue
			}
			if authed == "" && !op.later {
				t.Fatalf("request %d (%s) succeeded on a connection that did not authenticate", id, op.Op)
			}
			if authed == fuzzAlice && !op.later && !underApp(op.req) {
				t.Fatalf("request %d (%s, key %q, name %q, prefix %q) succeeded for alice outside app/", id, op.Op, op.req.Key, op.req.Name, op.req.Prefix)
			}
		}
		fn.check(t)
	})
}

// underApp reports whether every key, name and prefix q names is under
// app/ (what alice may touch), or whether it needs none (a session).
func underApp(q *wire.Request) bool {
	in := func(s string) bool { return strings.HasPrefix(s, "app/") }
	switch q.Op {
	case wire.OpPut, wire.OpGet, wire.OpDelete, wire.OpCAS, wire.OpWatch:
		return in(q.Key)
	case wire.OpList:
		return in(q.Prefix)
	case wire.OpLockAcquire, wire.OpLockRelease, wire.OpLockCheck, wire.OpCampaign, wire.OpProclaim, wire.OpResign, wire.OpLeader, wire.OpObserve:
		return in(q.Name)
	case wire.OpTxn:
		for _, c := range q.Compares {
			if !in(c.Key) {
				return false
			}
		}
		for _, o := range append(append([]wire.TxnOp{}, q.ThenOps...), q.ElseOps...) {
			if !in(o.Key) {
				return false
			}
		}
		return true
	case wire.OpSessionOpen, wire.OpSessionKeepAlive, wire.OpSessionClose, wire.OpSessionList, wire.OpLockList, wire.OpQuotaGet:
		return true
	}
	return false
}

// sentOp is a request of the input: later marks one that follows a second
// Authenticate (which may have changed the connection's user), or whose id
// repeats an earlier one's (its answer cannot be told apart).
type sentOp struct {
	wire.Op
	req   *wire.Request
	later bool
}

// requestOps maps the request ids of a client stream to their requests.
func requestOps(stream []byte) map[uint64]sentOp {
	out := map[uint64]sentOp{}
	fr := wire.NewFrameReader(bytes.NewReader(stream), 0)
	if _, err := fr.ReadFrame(); err != nil {
		return out
	}
	reauth := false
	for {
		body, err := fr.ReadFrame()
		if err != nil {
			return out
		}
		q, err := wire.DecodeRequest(body)
		if err != nil {
			return out
		}
		_, dup := out[q.ID]
		out[q.ID] = sentOp{Op: q.Op, req: q, later: reauth || dup}
		if q.Op == wire.OpAuthenticate && q.ID != 1 || q.ID == 1 && len(out) > 1 {
			reauth = true
		}
	}
}

// exchangeAnswers is exchange that also returns the answers by request id
// (the first answer of each).
func (fn *fuzzNode) exchangeAnswers(t *testing.T, full []byte) map[uint64]*wire.Response {
	t.Helper()
	conn, err := net.Dial("tcp", fn.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(fuzzConnDeadline)); err != nil {
		t.Fatal(err)
	}
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		_, _ = conn.Write(full)
		_ = conn.(*net.TCPConn).CloseWrite()
	}()
	defer func() { <-wrote }()
	out := map[uint64]*wire.Response{}
	ids := requestIDs(full)
	fr := wire.NewFrameReader(conn, 0)
	for i := 0; ; i++ {
		body, err := fr.ReadFrame()
		var ne net.Error
		switch {
		case err != nil && errors.As(err, &ne) && ne.Timeout():
			t.Fatalf("the node neither answered nor closed the connection within %s", fuzzConnDeadline)
		case err != nil:
			return out
		case i == 0:
			if _, err := wire.DecodeHello(body); err != nil {
				t.Fatalf("the node's first frame is not a hello: %v", err)
			}
			continue
		}
		resp, err := wire.DecodeResponse(body)
		if err != nil {
			t.Fatalf("the node sent an undecodable response: %v", err)
		}
		if !ids[resp.ID] {
			t.Fatalf("response to request id %d, which the input did not send", resp.ID)
		}
		if resp.Err == wire.ErrInternal {
			t.Fatalf("request %d answered with an internal error: %s", resp.ID, resp.ErrMsg)
		}
		if _, seen := out[resp.ID]; !seen {
			out[resp.ID] = resp
		}
	}
}

type authSeed struct {
	user     string
	password []byte
	rest     []byte
}

// authSeeds are FuzzAuthenticate's seed inputs.
func authSeeds() map[string]authSeed {
	frame := func(q *wire.Request) []byte { return wire.AppendFrame(nil, wire.EncodeRequest(nil, q)) }
	cat := func(frames ...[]byte) []byte { return bytes.Join(frames, nil) }
	work := cat(
		frame(&wire.Request{ID: 2, Op: wire.OpPut, ClientID: 7, Seq: 1, Key: "app/x", Value: []byte("1")}),
		frame(&wire.Request{ID: 3, Op: wire.OpPut, ClientID: 7, Seq: 2, Key: "other/x", Value: []byte("1")}),
		frame(&wire.Request{ID: 4, Op: wire.OpList, ClientID: 7, Seq: 3, Prefix: "app"}),
		frame(&wire.Request{ID: 5, Op: wire.OpSessionOpen, ClientID: 7, Seq: 4, TTLMs: 2000}),
		frame(&wire.Request{ID: 6, Op: wire.OpUserAdd, ClientID: 7, Seq: 5, Name: "mallory", Value: []byte("x")}),
		frame(&wire.Request{ID: 7, Op: wire.OpAuthStatus}),
	)
	return map[string]authSeed{
		"alice-right":       {fuzzAlice, []byte(fuzzAlicePassword), work},
		"alice-wrong":       {fuzzAlice, []byte("nope"), work},
		"nobody":            {"nobody", []byte("x"), work},
		"root-wrong":        {"root", []byte(""), nil},
		"empty-user":        {"", []byte("x"), nil},
		"colon-user":        {"a:b", []byte("x"), nil},
		"long-password":     {fuzzAlice, bytes.Repeat([]byte("p"), 100), nil},
		"reauth-then-write": {"nobody", []byte("x"), cat(frame(&wire.Request{ID: 8, Op: wire.OpAuthenticate, Name: fuzzAlice, Value: []byte(fuzzAlicePassword)}), work)},
	}
}

// TestFuzzAuthCorpus keeps FuzzAuthenticate's seed corpus in step with
// authSeeds (UPDATE_FUZZ_CORPUS=1 regenerates it).
func TestFuzzAuthCorpus(t *testing.T) {
	seeds := map[string][]any{}
	for name, s := range authSeeds() {
		seeds[name] = []any{s.user, s.password, s.rest}
	}
	fuzzcorpus.Sync(t, "FuzzAuthenticate", seeds)
}
