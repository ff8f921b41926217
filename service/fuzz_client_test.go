package service

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"github.com/paxosd/paxosd/internal/fuzzcorpus"
	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// FuzzClientHandler sends arbitrary bytes to a running node's client port,
// each input on a fresh connection: after a valid client hello (raw false),
// or as the whole connection, hello included (raw true, which also reaches
// the hello checks and the peer path). After writing the input the fuzzer
// closes its sending side, so the node has nothing more to wait for: within
// fuzzConnDeadline it must have closed the connection, having sent only
// well-formed frames (its hello, then responses to request ids the input
// held, never ErrInternal). Then the node must still answer a put on
// another connection, and must not have stopped.
//
// The node is real (wire.Serve, Node.HandleClient, the replica, the state
// machine and a WAL without fsync) and is started once per fuzz worker
// process and reused across inputs, so inputs also meet the state earlier
// ones left: sessions, locks, waiters, watches.
func FuzzClientHandler(f *testing.F) {
	fn := startFuzzNode(f)
	f.Add(false, wire.AppendFrame(nil, wire.EncodeRequest(nil, &wire.Request{ID: 1, Op: wire.OpPut, ClientID: 1, Seq: 1, Key: "k", Value: []byte("v")})))
	f.Add(true, clientHelloFrame("paxosd"))
	f.Fuzz(func(t *testing.T, raw bool, stream []byte) {
		full := stream
		if !raw {
			full = append(clientHelloFrame("paxosd"), stream...)
		}
		fn.exchange(t, full)
		fn.check(t)
	})
}

// fuzzConnDeadline bounds a fuzz connection from dial to close. A node
// answers in milliseconds; the margin is for a loaded machine.
const fuzzConnDeadline = 10 * time.Second

// fuzzNode is the node under FuzzClientHandler, with a connection of its
// own that checks the node still works.
type fuzzNode struct {
	n      *Node
	addr   string
	probe  *wire.Mux
	client uint64 // the probe's client id: random, so inputs cannot collide with it
	seq    uint64
}

// Limits small enough for the fuzzer to reach with small inputs.
const (
	fuzzValueBytesMax = 1 << 10
	fuzzFrameBytesMax = 64 << 10
)

func startFuzzNode(tb testing.TB) *fuzzNode {
	tb.Helper()
	// Every refused connection is logged at warning level; millions of
	// them would only fill the fuzzer's output.
	return startSmallNode(tb, zerolog.New(os.Stderr).Level(zerolog.ErrorLevel))
}

// startSmallNode starts a one-node cluster with small value and frame
// limits, and a client connection to it (fuzzNode.probe).
func startSmallNode(tb testing.TB, log zerolog.Logger) *fuzzNode {
	tb.Helper()
	ln, err := wire.Listen("127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	n, err := Start(Config{
		ID: 1, Listen: addr, Peers: map[paxos.NodeID]string{1: addr}, NoSync: true,
		DataDir:       tb.TempDir(),
		ValueBytesMax: fuzzValueBytesMax, FrameBytesMax: fuzzFrameBytesMax, BatchBytesMax: fuzzFrameBytesMax / 4,
		Logger: log, BcryptCost: bcrypt.MinCost,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(n.Stop)
	fn := &fuzzNode{n: n, addr: addr}
	var id [8]byte
	rand.Read(id[:])
	fn.client = binary.LittleEndian.Uint64(id[:]) | 1
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := wire.DialClient(ctx, addr, "", 0)
	if err != nil {
		tb.Fatal(err)
	}
	fn.probe = wire.NewMux(conn)
	tb.Cleanup(func() { fn.probe.Close() })
	// A one-node cluster elects itself within a few hundred milliseconds,
	// and raises its level at once.
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := fn.put()
		if err == nil && n.authLevel.Load() >= statemachine.LevelAuth {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the fuzz node does not answer at level %d: %v", statemachine.LevelAuth, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The probe is root's, so that an input that enables auth (users and
	// roles are ops like any other) does not lock it out.
	if err := fn.call(&wire.Request{Op: wire.OpUserAdd, Name: "root", Value: []byte(fuzzRootPassword)}); err != nil {
		tb.Fatalf("adding root: %v", err)
	}
	if err := fn.call(&wire.Request{Op: wire.OpAuthenticate, Name: "root", Value: []byte(fuzzRootPassword)}); err != nil {
		tb.Fatalf("authenticating the probe: %v", err)
	}
	return fn
}

// fuzzRootPassword is root's on the fuzz node.
const fuzzRootPassword = "fuzz-root"

// call sends q on the probe connection (with the probe's client id and
// the next seq) and fails unless it succeeds.
func (fn *fuzzNode) call(q *wire.Request) error {
	fn.seq++
	q.ClientID, q.Seq, q.AckedBelow = fn.client, fn.seq, fn.seq
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := fn.probe.Call(ctx, q)
	if err != nil {
		return err
	}
	if resp.Err != wire.ErrNone {
		return fmt.Errorf("%s: %s", resp.Err, resp.ErrMsg)
	}
	return nil
}

// put writes a key through the log on the probe connection.
func (fn *fuzzNode) put() error {
	fn.seq++
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := fn.probe.Call(ctx, &wire.Request{Op: wire.OpPut, ClientID: fn.client, Seq: fn.seq, AckedBelow: fn.seq,
		Key: "fuzz/probe", Value: []byte("alive")})
	if err != nil {
		return err
	}
	if resp.Err != wire.ErrNone {
		return fmt.Errorf("%s: %s", resp.Err, resp.ErrMsg)
	}
	return nil
}

// check fails the test unless the node is running and answers a put.
func (fn *fuzzNode) check(t *testing.T) {
	t.Helper()
	if err := fn.n.Err(); err != nil {
		t.Fatalf("the node stopped: %v", err)
	}
	if err := fn.put(); err != nil {
		t.Fatalf("the node no longer answers a put after this input: %v", err)
	}
}

// exchange writes full on a new connection, closes the sending side, and
// reads what the node sends until it closes the connection.
func (fn *fuzzNode) exchange(t *testing.T, full []byte) {
	t.Helper()
	ids := requestIDs(full)
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
		// The node may close the connection before it has read
		// everything (a bad hello, an oversized frame): write errors are
		// expected.
		_, _ = conn.Write(full)
		_ = conn.(*net.TCPConn).CloseWrite()
	}()
	defer func() { <-wrote }()
	fr := wire.NewFrameReader(conn, 0)
	for i := 0; ; i++ {
		body, err := fr.ReadFrame()
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			t.Fatalf("the node neither answered nor closed the connection within %s (%d frames received)", fuzzConnDeadline, i)
		case err != nil:
			return // closed (EOF, or reset after a refusal): done
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
	}
}

// requestIDs returns the ids of the requests a client connection carrying
// stream holds: those after a client hello, up to the first frame that is
// not a request. The node answers at most these.
func requestIDs(stream []byte) map[uint64]bool {
	ids := map[uint64]bool{}
	fr := wire.NewFrameReader(bytes.NewReader(stream), 0)
	body, err := fr.ReadFrame()
	if err != nil {
		return ids
	}
	if h, err := wire.DecodeHello(body); err != nil || h.NodeID != 0 {
		return ids
	}
	for {
		body, err := fr.ReadFrame()
		if err != nil {
			return ids
		}
		q, err := wire.DecodeRequest(body)
		if err != nil {
			return ids
		}
		ids[q.ID] = true
	}
}

func clientHelloFrame(cluster string) []byte {
	return wire.AppendFrame(nil, wire.EncodeHello(nil, wire.Hello{Version: wire.ProtocolVersion, ClusterID: cluster}))
}

// goldenFrame reads a frame from testdata/wire (annotated hex: '#' starts
// a comment).
func goldenFrame(t testing.TB, name string) []byte {
	t.Helper()
	text, err := os.ReadFile(filepath.Join("..", "testdata", "wire", name+".hex"))
	if err != nil {
		t.Fatal(err)
	}
	var digits strings.Builder
	for _, line := range strings.Split(string(text), "\n") {
		line, _, _ = strings.Cut(line, "#")
		digits.WriteString(strings.Join(strings.Fields(line), ""))
	}
	frame, err := hex.DecodeString(digits.String())
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return frame
}

// TestFuzzCorpus checks the seed corpora of this package's fuzz targets
// under testdata/fuzz; UPDATE_FUZZ_CORPUS=1 regenerates them.
func TestFuzzCorpus(t *testing.T) {
	frame := func(q *wire.Request) []byte { return wire.AppendFrame(nil, wire.EncodeRequest(nil, q)) }
	cat := func(frames ...[]byte) []byte { return bytes.Join(frames, nil) }
	put := goldenFrame(t, "put_request")
	lock := goldenFrame(t, "lock_acquire_request")

	// The client handler: real request frames after the hello...
	handler := map[string][]any{
		"golden-put_request":           {false, put},
		"golden-lock_acquire_request":  {false, lock},
		"golden-put-then-lock":         {false, cat(put, lock)},
		"golden-hello-and-put":         {true, cat(clientHelloFrame(""), put)},
		"golden-peer-hello-and-accept": {true, cat(goldenFrame(t, "hello"), goldenFrame(t, "accept"))},
		"peer-hello-node-2-and-heartbeat": {true, cat(wire.AppendFrame(nil, wire.EncodeHello(nil, wire.Hello{Version: 1, NodeID: 2})),
			wire.AppendFrame(nil, wire.EncodeMessage(nil, paxos.Message{Type: paxos.MsgHeartbeat, From: 2, To: 1, Ballot: paxos.Ballot{Round: 99, Node: 2}, Commit: 5})))},
		"golden-response-on-client-conn":    {false, goldenFrame(t, "get_response")},
		"golden-message-on-client-conn":     {false, goldenFrame(t, "prepare")},
		"hello-version-99":                  {true, cat(wire.AppendFrame(nil, wire.EncodeHello(nil, wire.Hello{Version: 99})), put)},
		"hello-wrong-cluster":               {true, cat(clientHelloFrame("other"), put)},
		"hello-wrong-magic":                 {true, cat(bytes.Replace(clientHelloFrame(""), []byte("paxosd"), []byte("raxosd"), 1), put)},
		"hello-http":                        {true, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
		"frame-too-large":                   {false, []byte{0x7f, 0xff, 0xff, 0xff, 0x92}},
		"frame-truncated":                   {false, put[:len(put)-3]},
		"request-undecodable":               {false, wire.AppendFrame(nil, []byte{0x93, 0x02, 0xa1, 'x'})},
		"request-unknown-op":                {false, frame(&wire.Request{ID: 9, Op: 99, ClientID: 1, Seq: 1})},
		"request-clock-op":                  {false, frame(&wire.Request{ID: 9, Op: wire.Op(statemachine.OpClock), ClientID: 1, Seq: 1})},
		"request-no-client-id":              {false, frame(&wire.Request{ID: 9, Op: wire.OpPut, Key: "k"})},
		"request-empty-key":                 {false, frame(&wire.Request{ID: 9, Op: wire.OpPut, ClientID: 1, Seq: 1})},
		"request-key-too-long":              {false, frame(&wire.Request{ID: 9, Op: wire.OpPut, ClientID: 1, Seq: 1, Key: strings.Repeat("k", 4097)})},
		"request-value-too-large":           {false, frame(&wire.Request{ID: 9, Op: wire.OpPut, ClientID: 1, Seq: 1, Key: "k", Value: make([]byte, fuzzValueBytesMax+1)})},
		"request-empty-lock-name":           {false, frame(&wire.Request{ID: 9, Op: wire.OpLockAcquire, ClientID: 1, Seq: 1, SessionID: 1})},
		"request-ttl-zero":                  {false, frame(&wire.Request{ID: 9, Op: wire.OpSessionOpen, ClientID: 1, Seq: 1})},
		"request-ttl-two-hours":             {false, frame(&wire.Request{ID: 9, Op: wire.OpSessionOpen, ClientID: 1, Seq: 1, TTLMs: 2 * 3600 * 1000})},
		"request-invalid-utf8-key":          {false, frame(&wire.Request{ID: 9, Op: wire.OpPut, ClientID: 1, Seq: 1, Key: "k\xff\xfe", Value: []byte("v")})},
		"request-cancel-unknown":            {false, frame(&wire.Request{ID: 9, Op: wire.OpCancel, CancelID: 12345})},
		"request-watch-all-then-cancel":     {false, cat(frame(&wire.Request{ID: 1, Op: wire.OpWatch, WatchPrefix: true}), frame(&wire.Request{ID: 2, Op: wire.OpCancel, CancelID: 1}))},
		"request-observe-then-close":        {false, frame(&wire.Request{ID: 1, Op: wire.OpObserve, Name: "e"})},
		"session-lock-wait-campaign-cancel": {false, sessionScript(frame)},
		"list-pages": {false, cat(frame(&wire.Request{ID: 1, Op: wire.OpPut, ClientID: 5, Seq: 1, Key: "a", Value: []byte("1")}),
			frame(&wire.Request{ID: 2, Op: wire.OpPut, ClientID: 5, Seq: 2, Key: "b", Value: []byte("2")}),
			frame(&wire.Request{ID: 3, Op: wire.OpList, ClientID: 5, Seq: 3, PageBytes: 1}),
			frame(&wire.Request{ID: 4, Op: wire.OpList, ClientID: 5, Seq: 4, PageBytes: 1, StartKey: "a\x00", Revision: 1}),
			frame(&wire.Request{ID: 5, Op: wire.OpList, Serializable: true, PageBytes: 1 << 20, StartKey: "b", Revision: 2}))},
		"list-page-future-revision":     {false, frame(&wire.Request{ID: 9, Op: wire.OpList, ClientID: 1, Seq: 1, PageBytes: 100, Revision: 1 << 40})},
		"list-page-serializable-future": {false, frame(&wire.Request{ID: 9, Op: wire.OpList, Serializable: true, PageBytes: 100, Revision: 7})},
		"list-start-key-too-long":       {false, frame(&wire.Request{ID: 9, Op: wire.OpList, ClientID: 1, Seq: 1, PageBytes: 100, StartKey: strings.Repeat("k", 4098)})},
		"list-start-key-not-utf8":       {false, frame(&wire.Request{ID: 9, Op: wire.OpList, ClientID: 1, Seq: 1, PageBytes: 100, StartKey: "k\xff"})},
		"golden-txn_request":            {false, goldenFrame(t, "txn_request")},
		"txn-transfer-and-retry":        {false, cat(goldenFrame(t, "txn_request"), goldenFrame(t, "txn_request"))},
		"txn-key-written-twice": {false, frame(&wire.Request{ID: 9, Op: wire.OpTxn, ClientID: 1, Seq: 1,
			ThenOps: []wire.TxnOp{{Type: wire.TxnPut, Key: "k", Value: []byte("v")}, {Type: wire.TxnDelete, Key: "k"}}})},
		"txn-prefix-delete-and-list": {false, frame(&wire.Request{ID: 9, Op: wire.OpTxn, ClientID: 1, Seq: 1,
			Compares: []wire.Compare{{Target: wire.CompareExists, Result: wire.CompareEqual, Key: "k"}},
			ThenOps:  []wire.TxnOp{{Type: wire.TxnDelete, Key: "p/", Prefix: true}, {Type: wire.TxnGet, Prefix: true, Limit: 2}},
			ElseOps:  []wire.TxnOp{{Type: wire.TxnPut, Key: "k", Value: []byte("v")}}})},
		"txn-bad-compare": {false, frame(&wire.Request{ID: 9, Op: wire.OpTxn, ClientID: 1, Seq: 1,
			Compares: []wire.Compare{{Target: 9, Result: 0, Key: "k\xff"}}})},
	}
	for op := wire.OpPut; op < 255; op++ { // every op; 22 is reserved
		if !op.Valid() {
			continue
		}
		handler["op-"+op.String()] = []any{false, frame(&wire.Request{ID: uint64(op), Op: op, ClientID: 1, Seq: uint64(op),
			Key: "k", Value: []byte("v"), Name: "n", SessionID: 1, TTLMs: 10000, Wait: true, TimeoutMs: 100})}
	}
	fuzzcorpus.Sync(t, "FuzzClientHandler", handler)
	fuzzcorpus.Sync(t, "FuzzPeerMessages", peerFuzzSeeds())

	// The command decoder (package statemachine's FuzzDecodeCommand): what
	// the node proposes for the golden requests.
	commands := map[string][]any{}
	for _, name := range []string{"put_request", "lock_acquire_request", "list_page_request", "txn_request"} {
		q, err := wire.DecodeRequest(goldenFrame(t, name)[4:])
		if err != nil {
			t.Fatal(err)
		}
		c := commandOf(q)
		commands["golden-"+name] = []any{statemachine.EncodeCommand(&c)}
	}
	// The sample commands are synced by package statemachine's own
	// TestFuzzCorpus, into the same directory.
	fuzzcorpus.SyncDir(t, filepath.Join("..", "statemachine", "testdata", "fuzz", "FuzzDecodeCommand"), commands)
}

// sessionScript opens a session, takes a lock, waits for it again under a
// second id, campaigns, and cancels the wait: session ids are assigned in
// order, so on a fresh node session 1 is the one opened here.
func sessionScript(frame func(*wire.Request) []byte) []byte {
	return bytes.Join([][]byte{
		frame(&wire.Request{ID: 1, Op: wire.OpSessionOpen, ClientID: 5, Seq: 1, TTLMs: 5000}),
		frame(&wire.Request{ID: 2, Op: wire.OpLockAcquire, ClientID: 5, Seq: 2, SessionID: 1, Name: "l"}),
		frame(&wire.Request{ID: 3, Op: wire.OpLockAcquire, ClientID: 5, Seq: 3, SessionID: 1, Name: "m", Wait: true}),
		frame(&wire.Request{ID: 4, Op: wire.OpCampaign, ClientID: 5, Seq: 4, SessionID: 1, Name: "e", Value: []byte("v")}),
		frame(&wire.Request{ID: 5, Op: wire.OpCancel, CancelID: 3}),
		frame(&wire.Request{ID: 6, Op: wire.OpSessionClose, ClientID: 5, Seq: 5, SessionID: 1}),
	}, nil)
}
