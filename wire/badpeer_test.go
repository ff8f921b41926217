package wire

import (
	"context"
	"net"
	"testing"

	"github.com/paxosd/paxosd/paxos"
)

// TestDialingAnotherProtocolVersion is the dialing side of a version
// mismatch (service's TestPeerOfAnotherProtocolVersion is the listening
// side): a listener that answers with a version above ours, or that is not
// a paxosd at all, is refused with one clear error by a client, and by a
// node's transport with one warning line; nothing is sent to it.
func TestDialingAnotherProtocolVersion(t *testing.T) {
	// fake answers every connection with answer, after reading the hello.
	fake := func(t *testing.T, answer []byte) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer conn.Close()
					NewFrameReader(conn, 0).ReadFrame()
					conn.Write(answer)
					conn.Read(make([]byte, 1)) // until the dialer hangs up
				}()
			}
		}()
		return ln.Addr().String()
	}
	cases := []struct {
		name, answer, want string
	}{
		{"a listener choosing version 99",
			string(AppendFrame(nil, EncodeHello(nil, Hello{Version: 99, ClusterID: "test", NodeID: 2}))),
			"wire: bad hello: listener chose version 99, we speak up to 4"},
		{"a listener that is not paxosd", "HTTP/1.1 400 Bad Request\r\n\r\n",
			"wire: not a paxosd node: it answered in HTTP (a node's --http-listen port serves metrics; clients and peers use its --listen address)"},
		{"a silent listener, like an HTTP server waiting for a request line", "",
			"wire: not a paxosd node: no hello before the dial timeout; is this a paxosd node's --listen address? (an HTTP port such as --http-listen's stays silent)"},
		{"a listener with another magic",
			string(AppendFrame(nil, []byte("\x95\x00\xa5etcd3\x01\xa4test\x02"))),
			`wire: bad hello: bad magic "etcd3", want "paxosd" (not a paxosd client or node?)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr := fake(t, []byte(tc.answer))
			_, err := DialClient(context.Background(), addr, "test", 0)
			if want := "wire: dial " + addr + ": " + tc.want; err == nil || err.Error() != want {
				t.Fatalf("DialClient: %v\nwant %s", err, want)
			}
			tr, log := newTestTransport(t, 1, map[paxos.NodeID]string{2: addr}, 10)
			tr.Send(heartbeat(1))
			log.waitLog(t, `"level":"warn","peer":2,"addr":"`+addr+`","error":"`+jsonEscape(tc.want)+`","failures":1,`)
			if tr.Connected(2) {
				t.Fatal("the transport kept the connection")
			}
		})
	}
}

// jsonEscape escapes s as zerolog writes it inside a JSON string.
func jsonEscape(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			out = append(out, '\\')
		}
		out = append(out, s[i])
	}
	return string(out)
}
