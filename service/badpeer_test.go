package service

import (
	"net"
	"reflect"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/wire"
)

// TestPeerOfAnotherProtocolVersion dials a running node the way a newer
// paxosd, an old one, or another program would, and checks what each gets:
// a newer version is answered with the version the connection then uses
// (the node's own), as docs/PROTOCOL.md specifies, and the first frame it cannot decode
// closes the connection with the reason logged; anything that is not a
// paxosd hello is closed without an answer, with one log line saying why.
// The node goes on serving throughout.
func TestPeerOfAnotherProtocolVersion(t *testing.T) {
	var logs logBuffer
	fn := startSmallNode(t, zerolog.New(&logs).Level(zerolog.WarnLevel))
	helloFrame := func(h wire.Hello) []byte { return wire.AppendFrame(nil, wire.EncodeHello(nil, h)) }

	t.Run("client speaking version 99", func(t *testing.T) {
		conn, fr := dialRaw(t, fn.addr, helloFrame(wire.Hello{Version: 99}))
		defer conn.Close()
		body, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("no hello back: %v", err)
		}
		h, err := wire.DecodeHello(body)
		if err != nil || !reflect.DeepEqual(h, wire.Hello{Version: wire.ProtocolVersion, ClusterID: "paxosd", NodeID: 1}) {
			t.Fatalf("hello back: %+v, %v; want version %d of node 1", h, err, wire.ProtocolVersion)
		}
		// The node's version it is: a request is served.
		conn.Write(wire.AppendFrame(nil, wire.EncodeRequest(nil, &wire.Request{ID: 7, Op: wire.OpStatus})))
		body, err = fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if resp, err := wire.DecodeResponse(body); err != nil || resp.ID != 7 || resp.Err != wire.ErrNone {
			t.Fatalf("status on the negotiated connection: %+v, %v", resp, err)
		}
	})

	refused := []struct {
		name string
		send []byte
		want string // the log line's reason
	}{
		{"peer speaking version 99, then a frame version 1 does not know",
			append(helloFrame(wire.Hello{Version: 99, NodeID: 2}),
				wire.AppendFrame(nil, wire.EncodeMessage(nil, paxos.Message{Type: 99, From: 2, To: 1}))...),
			`"peer":2,"error":"wire: malformed frame: unknown message type 99","message":"wire: closing connection"`},
		{"hello of version 0", helloFrame(wire.Hello{Version: 0}),
			`"error":"wire: bad hello: version 0","message":"wire: closing connection"`},
		{"another program's magic", wire.AppendFrame(nil, []byte("\x95\x00\xa5etcd3\x01\xa0\x00")),
			`"error":"wire: bad hello: bad magic \"etcd3\", want \"paxosd\" (not a paxosd client or node?)","message":"wire: closing connection"`},
		{"an HTTP request", []byte("GET /v3/kv/range HTTP/1.1\r\nHost: x\r\n\r\n"),
			`"error":"reading hello: wire: frame too large: 1195725856 bytes, limit 4096","message":"wire: closing connection"`},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			expectClosedAfter(t, fn.addr, tc.send)
			logs.wait(t, tc.want)
			fn.check(t)
		})
	}
}

// dialRaw connects to addr and sends first, returning a reader of what
// comes back.
func dialRaw(t *testing.T, addr string, first []byte) (net.Conn, *wire.FrameReader) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(first); err != nil {
		t.Fatal(err)
	}
	return conn, wire.NewFrameReader(conn, 0)
}
