package service

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/wire"
)

// The tests in this file pin what docs/PROTOCOL.md promises a client
// written from it alone, on raw frames, as such a client sees them (issue
// 14, item 8: where the spec and the server disagreed).

// rawClient is a client connection driven frame by frame.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	fr   *wire.FrameReader
	// version is what the listener's hello answered.
	version uint32
}

// dialSpec connects to addr and exchanges hellos with a hello of the given
// elements (msgpack-encoded as another language's client would).
func dialSpec(t *testing.T, addr string, hello ...any) *rawClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	rc := &rawClient{t: t, conn: conn, fr: wire.NewFrameReader(conn, 0)}
	body, err := msgpack.Marshal(hello)
	if err != nil {
		t.Fatal(err)
	}
	rc.write(body)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	back, err := rc.fr.ReadFrame()
	if err != nil {
		t.Fatalf("hello %v: no hello back: %v", hello, err)
	}
	h, err := wire.DecodeHello(back)
	if err != nil {
		t.Fatal(err)
	}
	rc.version = h.Version
	return rc
}

func (rc *rawClient) write(body []byte) {
	rc.t.Helper()
	if _, err := rc.conn.Write(wire.AppendFrame(nil, body)); err != nil {
		rc.t.Fatal(err)
	}
}

func (rc *rawClient) send(q *wire.Request) { rc.write(wire.EncodeRequest(nil, q)) }

// recv reads the next response, failing the test if none comes within
// wait.
func (rc *rawClient) recv(wait time.Duration) *wire.Response {
	rc.t.Helper()
	resp, err := rc.tryRecv(wait)
	if err != nil {
		rc.t.Fatalf("no response within %v: %v", wait, err)
	}
	return resp
}

func (rc *rawClient) tryRecv(wait time.Duration) (*wire.Response, error) {
	rc.conn.SetReadDeadline(time.Now().Add(wait))
	body, err := rc.fr.ReadFrame()
	if err != nil {
		return nil, err
	}
	return wire.DecodeResponse(body)
}

// call sends q and returns the next response, which must be q's.
func (rc *rawClient) call(q *wire.Request) *wire.Response {
	rc.t.Helper()
	rc.send(q)
	resp := rc.recv(10 * time.Second)
	if resp.ID != q.ID {
		rc.t.Fatalf("answer to request %d, want %d: %+v", resp.ID, q.ID, resp)
	}
	return resp
}

// TestSpecShortHello: a client hello that stops after its version is
// served (docs/PROTOCOL.md §1: missing trailing fields read as zero).
func TestSpecShortHello(t *testing.T) {
	fn := startSmallNode(t, zerolog.Nop())
	for _, hello := range [][]any{{0, "paxosd", wire.ProtocolVersion}, {0, "paxosd", wire.ProtocolVersion, ""}} {
		rc := dialSpec(t, fn.addr, hello...)
		resp := rc.call(&wire.Request{ID: 1, Op: wire.OpGet, Key: "nope", Serializable: true})
		if resp.Err != wire.ErrNotFound {
			t.Fatalf("hello %v: get: %+v", hello, resp)
		}
	}
}

// TestSpecRefusedStreamEnds: a watch or observe refused before it opens
// gets its refusal with stream_end, so the client frees its id; and
// nothing follows it.
func TestSpecRefusedStreamEnds(t *testing.T) {
	fn := startSmallNode(t, zerolog.Nop())
	rc := dialSpec(t, fn.addr, 0, "paxosd", wire.ProtocolVersion, "", 0)
	for _, q := range []*wire.Request{
		{ID: 7, Op: wire.OpWatch},                                   // no key, no prefix
		{ID: 8, Op: wire.OpObserve},                                 // no election name
		{ID: 9, Op: wire.OpWatch, Key: "k\xff"},                     // not UTF-8
		{ID: 10, Op: wire.OpWatch, Key: string(make([]byte, 5000))}, // too long
	} {
		resp := rc.call(q)
		if resp.Err == wire.ErrNone || !resp.StreamEnd {
			t.Errorf("%s %.20q: %s %q, stream_end %v; want an error with stream_end", q.Op, q.Key, resp.Err, resp.ErrMsg, resp.StreamEnd)
		}
	}
	if resp, err := rc.tryRecv(300 * time.Millisecond); err == nil {
		t.Fatalf("a response after the refusals: %+v", resp)
	}
}

// TestSpecDeleteMissingKey: from protocol 7 deleting a missing key
// succeeds with found false (as etcd's delete of nothing); a version-6
// client still gets err NotFound, as it always did.
func TestSpecDeleteMissingKey(t *testing.T) {
	fn := startSmallNode(t, zerolog.Nop())
	v7 := dialSpec(t, fn.addr, 0, "paxosd", wire.VersionClientAnswers)
	v6 := dialSpec(t, fn.addr, 0, "paxosd", wire.VersionClientAnswers-1)
	if v7.version != wire.VersionClientAnswers || v6.version != wire.VersionClientAnswers-1 {
		t.Fatalf("negotiated versions %d and %d", v7.version, v6.version)
	}
	put := v7.call(&wire.Request{ID: 1, Op: wire.OpPut, ClientID: 71, Seq: 1, AckedBelow: 1, Key: "k", Value: []byte("v")})
	if put.Err != wire.ErrNone {
		t.Fatalf("put: %+v", put)
	}
	del := v7.call(&wire.Request{ID: 2, Op: wire.OpDelete, ClientID: 71, Seq: 2, AckedBelow: 2, Key: "k"})
	if del.Err != wire.ErrNone || !del.Found || string(del.KV.Value) != "v" || del.Revision != put.Revision+1 {
		t.Fatalf("delete of k: %+v", del)
	}
	missing := v7.call(&wire.Request{ID: 3, Op: wire.OpDelete, ClientID: 71, Seq: 3, AckedBelow: 3, Key: "k"})
	if missing.Err != wire.ErrNone || missing.Found || missing.Revision != del.Revision {
		t.Fatalf("version 7, delete of a missing key: %s %q found %v revision %d; want success, found false, revision %d",
			missing.Err, missing.ErrMsg, missing.Found, missing.Revision, del.Revision)
	}
	// A retry is answered from the remembered answer, the same way.
	again := v7.call(&wire.Request{ID: 4, Op: wire.OpDelete, ClientID: 71, Seq: 3, AckedBelow: 3, Key: "k"})
	if again.Err != wire.ErrNone || again.Found {
		t.Fatalf("retry: %+v", again)
	}
	old := v6.call(&wire.Request{ID: 1, Op: wire.OpDelete, ClientID: 61, Seq: 1, AckedBelow: 1, Key: "k"})
	if old.Err != wire.ErrNotFound || old.Revision != del.Revision {
		t.Fatalf("version 6, delete of a missing key: %+v; want err NotFound", old)
	}
}

// TestSpecUnavailableWithoutQuorum: a node that has known no leader for a
// while answers a version-7 client err Unavailable, both the request it
// had waiting and a new one, at once; a retry with the same sequence
// number once the quorum is back applies it. A version-6 client still
// gets a Timeout.
func TestSpecUnavailableWithoutQuorum(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	c := startTestCluster(t)
	c.waitLeader()
	ctx, cl := c.client(20 * time.Second)
	if _, err := cl.Put(ctx, "warm", []byte("up")); err != nil {
		t.Fatal(err)
	}
	const survivor = 1
	v7 := dialSpec(t, c.peers[survivor], 0, "paxosd", wire.VersionClientAnswers)
	v6 := dialSpec(t, c.peers[survivor], 0, "paxosd", wire.VersionClientAnswers-1)
	for _, id := range []paxos.NodeID{2, 3} {
		c.nodes[id].Stop()
		delete(c.nodes, id)
	}
	// Waiting when the quorum goes: no timeout of its own, so without an
	// Unavailable it would wait for the node's default (10 s).
	start := time.Now()
	v7.send(&wire.Request{ID: 1, Op: wire.OpPut, ClientID: 77, Seq: 1, AckedBelow: 1, Key: "k", Value: []byte("v")})
	resp := v7.recv(8 * time.Second)
	if resp.ID != 1 || resp.Err != wire.ErrUnavailable || !strings.Contains(resp.ErrMsg, "not known to have applied") {
		t.Fatalf("waiting put after %v: %+v; want err Unavailable", time.Since(start), resp)
	}
	// A new request is refused at once.
	start = time.Now()
	resp = v7.call(&wire.Request{ID: 2, Op: wire.OpGet, ClientID: 77, Seq: 2, AckedBelow: 1, Key: "k"})
	if resp.Err != wire.ErrUnavailable || time.Since(start) > time.Second {
		t.Fatalf("new get after %v: %+v; want err Unavailable at once", time.Since(start), resp)
	}
	// An older client keeps its Timeout.
	resp = v6.call(&wire.Request{ID: 1, Op: wire.OpPut, ClientID: 66, Seq: 1, AckedBelow: 1, Key: "k6", Value: []byte("v"), TimeoutMs: 500})
	if resp.Err != wire.ErrTimeout {
		t.Fatalf("version 6 put without a quorum: %+v; want err Timeout", resp)
	}
	// Back to a quorum: the retry of seq 1 applies once (or returns its
	// answer, had it committed).
	c.start(2)
	deadline := time.Now().Add(15 * time.Second)
	for id := uint64(3); ; id++ {
		resp = v7.call(&wire.Request{ID: id, Op: wire.OpPut, ClientID: 77, Seq: 1, AckedBelow: 1, Key: "k", Value: []byte("v")})
		if resp.Err == wire.ErrNone {
			break
		}
		if resp.Err != wire.ErrUnavailable && resp.Err != wire.ErrTimeout || time.Now().After(deadline) {
			t.Fatalf("retry with the quorum back: %+v", resp)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if kv, err := cl.Get(ctx, "k"); err != nil || kv.Version != 1 {
		t.Fatalf("k after the retry: %+v, %v; want version 1 (applied once)", kv, err)
	}
}

// TestSpecClientIDRequired: every request through the log, a
// linearizable read too, needs a client id and a sequence number (err
// Invalid without); the others need none. A read's sequence number is not
// remembered: sent again, the read runs again.
func TestSpecClientIDRequired(t *testing.T) {
	fn := startSmallNode(t, zerolog.Nop())
	rc := dialSpec(t, fn.addr, 0, "paxosd", wire.ProtocolVersion)
	for i, q := range []*wire.Request{
		{Op: wire.OpPut, Key: "k", Value: []byte("v")},
		{Op: wire.OpGet, Key: "k"},
		{Op: wire.OpList, Prefix: "k"},
		{Op: wire.OpSessionOpen, TTLMs: 5000},
		{Op: wire.OpGet, Key: "k", ClientID: 5}, // seq 0
	} {
		q.ID = uint64(i + 1)
		if resp := rc.call(q); resp.Err != wire.ErrInvalid || !strings.Contains(resp.ErrMsg, "client id and sequence number must be set") {
			t.Errorf("%s without client id or seq: %s %q; want err Invalid", q.Op, resp.Err, resp.ErrMsg)
		}
	}
	for i, q := range []*wire.Request{
		{Op: wire.OpGet, Key: "k", Serializable: true},
		{Op: wire.OpList, Serializable: true},
		{Op: wire.OpStatus},
		{Op: wire.OpSessionList},
		{Op: wire.OpLockList},
		{Op: wire.OpQuotaGet},
	} {
		q.ID = uint64(i + 10)
		if resp := rc.call(q); resp.Err != wire.ErrNone && resp.Err != wire.ErrNotFound {
			t.Errorf("%s without client id: %s %q; want an answer", q.Op, resp.Err, resp.ErrMsg)
		}
	}
	get := &wire.Request{ID: 20, Op: wire.OpGet, Key: "k", ClientID: 9, Seq: 2, AckedBelow: 1}
	for i, v := range []string{"1", "2"} {
		put := rc.call(&wire.Request{ID: 21 + uint64(i), Op: wire.OpPut, Key: "k", Value: []byte(v), ClientID: 9, Seq: 3 + uint64(i), AckedBelow: 1})
		if put.Err != wire.ErrNone {
			t.Fatalf("put: %+v", put)
		}
		if resp := rc.call(get); resp.Err != wire.ErrNone || string(resp.KV.Value) != v {
			t.Fatalf("get with seq 2, sent again after put %s: %+v; want the value now", v, resp)
		}
	}
}

// TestSpecWatchAcknowledgement: a watch's first response is its
// acknowledgement, without events, whose revision is the one the watch
// starts after (from_revision - 1; with from_revision 0 the store's); an
// observe has none.
func TestSpecWatchAcknowledgement(t *testing.T) {
	fn := startSmallNode(t, zerolog.Nop())
	rc := dialSpec(t, fn.addr, 0, "paxosd", wire.ProtocolVersion)
	put := rc.call(&wire.Request{ID: 1, Op: wire.OpPut, Key: "w", Value: []byte("1"), ClientID: 9, Seq: 1, AckedBelow: 1})
	for _, c := range []struct{ from, want uint64 }{{0, put.Revision}, {put.Revision, put.Revision - 1}, {put.Revision + 100, put.Revision + 99}} {
		id := 10 + c.from
		ack := rc.call(&wire.Request{ID: id, Op: wire.OpWatch, Key: "w", FromRevision: c.from})
		if ack.Err != wire.ErrNone || len(ack.Events) != 0 || ack.StreamEnd || ack.Revision != c.want {
			t.Fatalf("watch from %d: first response %+v; want an acknowledgement of revision %d", c.from, ack, c.want)
		}
		if c.from == put.Revision {
			if ev := rc.recv(5 * time.Second); ev.ID != id || len(ev.Events) != 1 || ev.Events[0].KV.ModRevision != put.Revision {
				t.Fatalf("watch from %d: %+v; want the put", c.from, ev)
			}
		}
		rc.send(&wire.Request{ID: 100 + id, Op: wire.OpCancel, CancelID: id})
		if end := rc.recv(5 * time.Second); end.ID != id || !end.StreamEnd || end.Err != wire.ErrCanceled {
			t.Fatalf("cancel: %+v", end)
		}
		rc.recv(5 * time.Second) // the Cancel's own answer
	}
	rc.send(&wire.Request{ID: 50, Op: wire.OpObserve, Name: "nobody-campaigned"})
	if resp, err := rc.tryRecv(300 * time.Millisecond); err == nil {
		t.Fatalf("observe of an election without changes: %+v; want no response", resp)
	}
}

// TestSpecStatusPerMember: Status answers one entry per member: the
// contacted node's own status first, then each other member, in id order,
// with its id, address and whether the node is connected to it (a leader
// is, to every member it reaches).
func TestSpecStatusPerMember(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	c := startTestCluster(t)
	leader := c.waitLeader()
	rc := dialSpec(t, c.peers[leader], 0, "paxosd", wire.ProtocolVersion)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp := rc.call(&wire.Request{ID: 1, Op: wire.OpStatus})
		st := resp.Status
		if len(st) != 3 || st[0].ID != leader || st[0].Role != "leader" || st[0].Addr != c.peers[leader] {
			t.Fatalf("status: %+v; want the leader's own status first, then the two other members", st)
		}
		prev, connected := paxos.NodeID(0), true
		for _, m := range st[1:] {
			if m.ID == leader || m.ID <= prev || m.Addr != c.peers[m.ID] || m.Role != "" {
				t.Fatalf("status: %+v; want the other members in id order, with only id, addr and connected", st)
			}
			prev, connected = m.ID, connected && m.Connected
		}
		if connected {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("status: %+v; want the other members connected to the leader", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSpecFollowerForwards: a follower serves a write by forwarding it to
// the leader, and its answer names the leader (leader_hint, leader_addr)
// though it succeeded; err NotLeader comes only from an op that needs the
// leader itself (LeaderTransfer, QuotaSet), with the leader named too.
func TestSpecFollowerForwards(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	c := startTestCluster(t)
	leader := c.waitLeader()
	follower := leader%3 + 1
	rc := dialSpec(t, c.peers[follower], 0, "paxosd", wire.ProtocolVersion)
	deadline := time.Now().Add(10 * time.Second)
	for seq := uint64(1); ; seq++ {
		resp := rc.call(&wire.Request{ID: seq, Op: wire.OpPut, Key: "k", Value: []byte("v"), ClientID: 5, Seq: seq, AckedBelow: seq})
		if resp.Err != wire.ErrNone {
			t.Fatalf("put at follower %d: %+v", follower, resp)
		}
		// The leader it names: the one found above, or one elected since
		// (a loaded machine may see a check-quorum step-down meanwhile).
		if h := resp.LeaderHint; h != 0 && h != follower && resp.LeaderAddr == c.peers[h] {
			leader = h
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("put at follower %d: %+v; want leader_hint %d", follower, resp, leader)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i, q := range []*wire.Request{{Op: wire.OpLeaderTransfer}, {Op: wire.OpQuotaSet, QuotaBytes: 1 << 30, ClientID: 5, Seq: 100, AckedBelow: 100}} {
		q.ID = 1000 + uint64(i)
		resp := rc.call(q)
		if resp.Err != wire.ErrNotLeader || resp.LeaderHint != leader || resp.LeaderAddr != c.peers[leader] || !strings.Contains(resp.ErrMsg, "is not the leader") {
			t.Fatalf("%s at follower %d: %+v; want err NotLeader naming leader %d", q.Op, follower, resp, leader)
		}
	}
}

// TestSpecStreamTooLargeEnds: a watch push that does not fit in a frame is
// replaced by err TooLarge, which ends the stream (stream_end), and
// nothing follows it.
func TestSpecStreamTooLargeEnds(t *testing.T) {
	fn := startSmallNode(t, zerolog.Nop())
	rc := dialSpec(t, fn.addr, 0, "paxosd", wire.ProtocolVersion)
	value := make([]byte, fuzzValueBytesMax-100)
	for i := range 100 {
		seq := uint64(i + 1)
		if resp := rc.call(&wire.Request{ID: seq, Op: wire.OpPut, Key: fmt.Sprintf("big/%03d", i), Value: value, ClientID: 3, Seq: seq, AckedBelow: seq}); resp.Err != wire.ErrNone {
			t.Fatalf("put %d: %+v", i, resp)
		}
	}
	const id = 1000
	ack := rc.call(&wire.Request{ID: id, Op: wire.OpWatch, Key: "big/", WatchPrefix: true, FromRevision: 1})
	if ack.Err != wire.ErrNone || ack.StreamEnd {
		t.Fatalf("acknowledgement: %+v", ack)
	}
	end := rc.recv(5 * time.Second)
	if end.ID != id || end.Err != wire.ErrTooLarge || !end.StreamEnd {
		t.Fatalf("a push of 100 KB on 64 KiB frames: %s %q stream_end %v; want err TooLarge with stream_end", end.Err, end.ErrMsg, end.StreamEnd)
	}
	rc.send(&wire.Request{ID: 2000, Op: wire.OpPut, Key: "big/last", Value: value, ClientID: 3, Seq: 200, AckedBelow: 200})
	if resp := rc.recv(5 * time.Second); resp.ID != 2000 {
		t.Fatalf("after the stream ended: %+v; want only the put's answer", resp)
	}
	if resp, err := rc.tryRecv(300 * time.Millisecond); err == nil {
		t.Fatalf("a response after the stream ended: %+v", resp)
	}
}

// TestSpecCompactedStreamEndsOnce: an observe of changes no longer kept
// ends at once with err Compacted and stream_end, and only once: the
// election's next change sends nothing more on its id.
func TestSpecCompactedStreamEndsOnce(t *testing.T) {
	fn := startSmallNode(t, zerolog.Nop())
	rc := dialSpec(t, fn.addr, 0, "paxosd", wire.ProtocolVersion)
	seq := uint64(0)
	op := func(q *wire.Request) *wire.Response {
		seq++
		q.ID, q.ClientID, q.Seq, q.AckedBelow = seq, 4, seq, seq
		return rc.call(q)
	}
	open := op(&wire.Request{Op: wire.OpSessionOpen, TTLMs: 60000})
	if open.Err != wire.ErrNone {
		t.Fatalf("session: %+v", open)
	}
	sid := open.Session.ID
	if resp := op(&wire.Request{Op: wire.OpCampaign, Name: "e", SessionID: sid}); resp.Err != wire.ErrNone {
		t.Fatalf("campaign: %+v", resp)
	}
	// More changes than an election keeps (1024), sent a hundred at a time.
	for sent := 0; sent < 1100; sent += 100 {
		first := seq + 1
		for i := range 100 {
			seq++
			rc.send(&wire.Request{ID: seq, Op: wire.OpProclaim, Name: "e", SessionID: sid, Value: []byte{byte(i)}, ClientID: 4, Seq: seq, AckedBelow: first})
		}
		for range 100 {
			if resp := rc.recv(10 * time.Second); resp.Err != wire.ErrNone {
				t.Fatalf("proclaim: %+v", resp)
			}
		}
	}
	const id = 1 << 20
	end := rc.call(&wire.Request{ID: id, Op: wire.OpObserve, Name: "e", AfterSeq: 1})
	if end.Err != wire.ErrCompacted || !end.StreamEnd {
		t.Fatalf("observe after change 1: %+v; want err Compacted with stream_end", end)
	}
	if resp := op(&wire.Request{Op: wire.OpProclaim, Name: "e", SessionID: sid, Value: []byte("last")}); resp.Err != wire.ErrNone {
		t.Fatalf("last proclaim: %+v (a second end of stream %d before it?)", resp, id)
	}
	if resp, err := rc.tryRecv(300 * time.Millisecond); err == nil {
		t.Fatalf("a response after the stream ended: %+v", resp)
	}
}

// TestSpecOmitPrev: a Put or a Delete answers with the previous pair,
// unless the request sets omit_prev (version 17): found still says
// whether there was one, kv is empty. A retry of the same seq with the
// other choice gets the answer its own request asks for.
func TestSpecOmitPrev(t *testing.T) {
	fn := startSmallNode(t, zerolog.Nop())
	rc := dialSpec(t, fn.addr, 0, "paxosd", wire.ProtocolVersion)
	seq := uint64(0)
	call := func(q wire.Request) *wire.Response {
		t.Helper()
		seq++
		q.ID, q.ClientID, q.Seq, q.AckedBelow = seq, 11, seq, seq
		resp := rc.call(&q)
		if resp.Err != wire.ErrNone {
			t.Fatalf("%s %+v: %s %q", q.Op, q, resp.Err, resp.ErrMsg)
		}
		return resp
	}
	if r := call(wire.Request{Op: wire.OpPut, Key: "k", Value: []byte("one"), OmitPrev: true}); r.Found || r.KV.Key != "" {
		t.Fatalf("first put with omit_prev: found %v kv %+v; want no previous pair", r.Found, r.KV)
	}
	if r := call(wire.Request{Op: wire.OpPut, Key: "k", Value: []byte("two"), OmitPrev: true}); !r.Found || r.KV.Key != "" || r.KV.Value != nil {
		t.Fatalf("overwrite with omit_prev: found %v kv %+v; want found and an empty kv", r.Found, r.KV)
	}
	if r := call(wire.Request{Op: wire.OpPut, Key: "k", Value: []byte("three")}); !r.Found || r.KV.Key != "k" || string(r.KV.Value) != "two" {
		t.Fatalf("overwrite without omit_prev: found %v kv %+v; want the previous pair k=two", r.Found, r.KV)
	}
	if r := call(wire.Request{Op: wire.OpDelete, Key: "k", OmitPrev: true}); !r.Found || r.KV.Key != "" {
		t.Fatalf("delete with omit_prev: found %v kv %+v; want found and an empty kv", r.Found, r.KV)
	}
	call(wire.Request{Op: wire.OpPut, Key: "k", Value: []byte("four"), OmitPrev: true})
	if r := call(wire.Request{Op: wire.OpDelete, Key: "k"}); !r.Found || string(r.KV.Value) != "four" {
		t.Fatalf("delete without omit_prev: found %v kv %+v; want the deleted pair k=four", r.Found, r.KV)
	}
	// A retry (same client and seq) is answered from what was applied,
	// shaped by the retry's own request.
	q := wire.Request{ID: 100, Op: wire.OpPut, Key: "r", Value: []byte("x"), ClientID: 12, Seq: 1}
	rc.call(&q)
	q.ID, q.Seq, q.Value = 101, 2, []byte("y")
	if r := rc.call(&q); string(r.KV.Value) != "x" {
		t.Fatalf("put: %+v; want the previous pair r=x", r)
	}
	q.ID, q.OmitPrev = 102, true
	if r := rc.call(&q); r.Err != wire.ErrNone || !r.Found || r.KV.Key != "" {
		t.Fatalf("retry of the put with omit_prev: %s found %v kv %+v; want found and an empty kv", r.Err, r.Found, r.KV)
	}
}
