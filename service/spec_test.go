package service

import (
	"net"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/vmihailenco/msgpack/v5"

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
