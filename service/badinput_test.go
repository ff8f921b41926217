package service

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// Bad input from clients, each case with the exact one-line error it gets:
// through the Go client (which checks some things itself), as raw requests
// (for clients in other languages, which may check nothing), and as broken
// frames (which close only their own connection, with a logged reason). The
// node is the one-node cluster of FuzzClientHandler, whose limits are small
// (values 1 KiB, frames 64 KiB); keys and names are limited to 4096 bytes.

// TestBadInputThroughClient: each bad call fails at once with its error.
func TestBadInputThroughClient(t *testing.T) {
	fn := startSmallNode(t, zerolog.Nop())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.NewWithConfig(ctx, client.Config{Endpoints: []string{fn.addr}, FrameBytesMax: fuzzFrameBytesMax})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.NewSession(ctx, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("n", 4097)
	cases := []struct {
		name string
		call func(context.Context) error
		want string
		is   error
	}{
		{"put with an empty key", func(ctx context.Context) error { _, err := c.Put(ctx, "", []byte("v")); return err },
			"key must not be empty", client.ErrInvalid},
		{"get with an empty key", func(ctx context.Context) error { _, err := c.Get(ctx, ""); return err },
			"key must not be empty", client.ErrInvalid},
		{"delete with an empty key", func(ctx context.Context) error { _, err := c.Delete(ctx, ""); return err },
			"key must not be empty", client.ErrInvalid},
		{"put with a 4097-byte key", func(ctx context.Context) error { _, err := c.Put(ctx, long, []byte("v")); return err },
			"key is 4097 bytes; the limit is 4096", client.ErrTooLarge},
		{"list with a 4097-byte prefix", func(ctx context.Context) error { _, err := c.List(ctx, long, 0); return err },
			"prefix is 4097 bytes; the limit is 4096", client.ErrTooLarge},
		{"put with a key that is not UTF-8", func(ctx context.Context) error { _, err := c.Put(ctx, "k\xff", []byte("v")); return err },
			"key is not valid UTF-8", client.ErrInvalid},
		{"put over --value-bytes-max", func(ctx context.Context) error { _, err := c.Put(ctx, "k", make([]byte, 1025)); return err },
			"value is 1025 bytes; the limit is 1024 (--value-bytes-max)", client.ErrTooLarge},
		{"put over the frame limit", func(ctx context.Context) error {
			_, err := c.Put(ctx, "k", make([]byte, fuzzFrameBytesMax))
			return err
		},
			"too large: wire: frame too large: N bytes, limit 65536", client.ErrTooLarge},
		{"fenced put without a lock name", func(ctx context.Context) error {
			_, err := c.Put(ctx, "k", []byte("v"), client.Fenced("", 7))
			return err
		}, "invalid argument: fence token 7 without a fence lock name", client.ErrInvalid},
		{"session TTL 0", func(ctx context.Context) error { _, err := c.NewSession(ctx, 0); return err },
			"invalid argument: session TTL 0s is outside [1s, 1h0m0s]", client.ErrInvalid},
		{"session TTL 999ms", func(ctx context.Context) error { _, err := c.NewSession(ctx, 999*time.Millisecond); return err },
			"invalid argument: session TTL 999ms is outside [1s, 1h0m0s]", client.ErrInvalid},
		{"session TTL 2h", func(ctx context.Context) error { _, err := c.NewSession(ctx, 2*time.Hour); return err },
			"invalid argument: session TTL 2h0m0s is outside [1s, 1h0m0s]", client.ErrInvalid},
		{"lock with an empty name", func(ctx context.Context) error { _, err := s.Lock(ctx, ""); return err },
			"a lock or election name must not be empty", client.ErrInvalid},
		{"lock with a 4097-byte name", func(ctx context.Context) error { _, err := s.Lock(ctx, long); return err },
			"name is 4097 bytes; the limit is 4096", client.ErrTooLarge},
		{"lock with a name that is not UTF-8", func(ctx context.Context) error { _, err := s.TryLock(ctx, "l\xfe"); return err },
			"name is not valid UTF-8", client.ErrInvalid},
		{"lock with a 2-minute lock-delay", func(ctx context.Context) error {
			_, err := s.TryLock(ctx, "l", client.WithLockDelay(2*time.Minute))
			return err
		}, "invalid argument: lock-delay 120000 ms out of range: at most 60000 ms (1 min)", client.ErrInvalid},
		{"campaign with an empty name", func(ctx context.Context) error { _, err := s.Campaign(ctx, "", []byte("v")); return err },
			"a lock or election name must not be empty", client.ErrInvalid},
		{"campaign with a 4097-byte name", func(ctx context.Context) error { _, err := s.Campaign(ctx, long, []byte("v")); return err },
			"name is 4097 bytes; the limit is 4096", client.ErrTooLarge},
		{"campaign with a value over --value-bytes-max", func(ctx context.Context) error {
			_, err := s.Campaign(ctx, "e", make([]byte, 2000))
			return err
		}, "value is 2000 bytes; the limit is 1024 (--value-bytes-max)", client.ErrTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Answered at once: a bad request is never retried until a
			// timeout hides its reason.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			err := tc.call(ctx)
			got := ""
			if err != nil {
				// The request's encoded size varies with the client's
				// random id: N stands for it.
				got = frameBytes.ReplaceAllString(err.Error(), "$1 N bytes")
			}
			if got != tc.want || !errors.Is(err, tc.is) {
				t.Fatalf("got %v\nwant %q (%v)", err, tc.want, tc.is)
			}
		})
	}
	fn.check(t)
}

// TestBadRequestsOnTheWire: requests a careless client in another language
// could send, which the Go client would have refused: each is answered
// with an error on the same connection, which stays usable.
func TestBadRequestsOnTheWire(t *testing.T) {
	fn := startSmallNode(t, zerolog.Nop())
	cases := []struct {
		name string
		q    wire.Request
		code wire.ErrCode
		want string
	}{
		{"unknown op", wire.Request{Op: 99, ClientID: 1, Seq: 1}, wire.ErrInvalid, "unknown operation 99"},
		{"the internal clock op", wire.Request{Op: wire.Op(statemachine.OpClock), ClientID: 1, Seq: 1}, wire.ErrInvalid, "unknown operation 22"},
		{"the internal level op", wire.Request{Op: wire.Op(statemachine.OpLevel), ClientID: 1, Seq: 1}, wire.ErrInvalid, "unknown operation 31"},
		{"put without client id", wire.Request{Op: wire.OpPut, Key: "k"}, wire.ErrInvalid,
			"client id and sequence number must be set (non-zero)"},
		{"session TTL 0", wire.Request{Op: wire.OpSessionOpen, ClientID: 1, Seq: 1}, wire.ErrInvalid,
			"invalid argument: session TTL 0 ms out of range: it must be 1000..3600000 ms (1 s to 1 h)"},
		{"session TTL 2h", wire.Request{Op: wire.OpSessionOpen, ClientID: 1, Seq: 2, TTLMs: 7200000}, wire.ErrInvalid,
			"invalid argument: session TTL 7200000 ms out of range: it must be 1000..3600000 ms (1 s to 1 h)"},
		{"lock without a session", wire.Request{Op: wire.OpLockAcquire, ClientID: 1, Seq: 3, Name: "l"}, wire.ErrInvalid,
			"invalid argument: lock-acquire without a session id"},
		{"prefix not UTF-8", wire.Request{Op: wire.OpList, Prefix: "\xc3", Serializable: true}, wire.ErrInvalid,
			"prefix is not valid UTF-8"},
		{"fence name not UTF-8", wire.Request{Op: wire.OpPut, ClientID: 1, Seq: 4, Key: "k", FenceName: "\x80", FenceToken: 1}, wire.ErrInvalid,
			"fence name is not valid UTF-8"},
		{"prev value over --value-bytes-max", wire.Request{Op: wire.OpCAS, ClientID: 1, Seq: 5, Key: "k", PrevValue: make([]byte, 1500), HasPrevValue: true},
			wire.ErrTooLarge, "value is 1500 bytes; the limit is 1024 (--value-bytes-max)"},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range cases {
		resp, err := fn.probe.Call(ctx, &tc.q)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if resp.Err != tc.code || resp.ErrMsg != tc.want {
			t.Errorf("%s: %s %q\nwant %s %q", tc.name, resp.Err, resp.ErrMsg, tc.code, tc.want)
		}
	}
	fn.check(t) // same connection, still serving
}

// TestBadFramesCloseOnlyTheirConnection: an oversized, malformed or
// misplaced frame closes its connection, with one log line saying why,
// while the node keeps serving its other clients.
func TestBadFramesCloseOnlyTheirConnection(t *testing.T) {
	var logs logBuffer
	fn := startSmallNode(t, zerolog.New(&logs).Level(zerolog.WarnLevel))
	hello := clientHelloFrame("")
	cases := []struct {
		name string
		send []byte
		want string // the logged reason
	}{
		{"a frame over --frame-bytes-max", append(bytes.Clone(hello), 0x01, 0x00, 0x00, 0x00),
			`"error":"wire: frame too large: 16777216 bytes, limit 65536","message":"wire: closing client connection"`},
		{"an undecodable request", append(bytes.Clone(hello), wire.AppendFrame(nil, []byte{0x93, 0x02, 0xa1, 'x'})...),
			`"error":"wire: malformed frame: at byte 2: found 0xa1 where an unsigned integer is expected (field id)","message":"wire: closing client connection"`},
		{"a peer message on a client connection", append(bytes.Clone(hello), goldenFrame(t, "prepare")...),
			`"error":"wire: malformed frame: frame type Message, want Request","message":"wire: closing client connection"`},
		{"a request with trailing bytes", append(bytes.Clone(hello), wire.AppendFrame(nil, append(wire.EncodeRequest(nil, &wire.Request{ID: 1, Op: wire.OpStatus}), 0xc0))...),
			// (after "at byte N", which moves as fields are appended)
			`: 1 bytes after the end of the value","message":"wire: closing client connection"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expectClosedAfter(t, fn.addr, tc.send)
			logs.wait(t, tc.want)
			fn.check(t)
		})
	}
}

var frameBytes = regexp.MustCompile(`(frame too large:) [0-9]+ bytes`)

// expectClosedAfter sends stream on a new connection and waits for the
// node to close it, reading (and ignoring) its hello meanwhile.
func expectClosedAfter(t *testing.T, addr string, stream []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(stream); err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(io.Discard, conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the node did not close the connection")
	}
}

// logBuffer collects a node's JSON log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// wait waits for a log line (one JSON object) containing want and
// returns it.
func (l *logBuffer) wait(t *testing.T, want string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, line := range strings.Split(l.String(), "\n") {
			if strings.Contains(line, want) {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %s; the log:\n%s", want, l.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
