package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/paxosd/paxosd/internal/fuzzcorpus"
	"github.com/paxosd/paxosd/paxos"
)

// This file completes the fuzzing of every decoder that reads bytes from the
// network: FuzzDecodeResponse (what a client reads from a node) and
// FuzzDecodeHello (the first frame of every connection, read before the
// other end has identified itself). fuzz_test.go has the frame reader and
// the message and request decoders. TestFuzzCorpus keeps every target's
// seed corpus in testdata/fuzz in step with the golden frames.

// FuzzDecodeResponse: any body decodes or fails with ErrMalformed; what
// decodes re-encodes to something that decodes to the same response.
func FuzzDecodeResponse(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := DecodeResponse(body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		s2, err := DecodeResponse(EncodeResponse(nil, s))
		if err != nil || !reflect.DeepEqual(s, s2) {
			t.Fatalf("re-encoding: %v\n%#v\n%#v", err, s, s2)
		}
	})
}

// FuzzDecodeHello: any body is a hello of version >= 1 or fails with
// ErrBadHello (never another error, never a panic); what decodes
// re-encodes to the same hello.
func FuzzDecodeHello(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		h, err := DecodeHello(body)
		if err != nil {
			if !errors.Is(err, ErrBadHello) {
				t.Fatalf("error %v is not ErrBadHello", err)
			}
			return
		}
		if h.Version == 0 {
			t.Fatalf("decoded version 0")
		}
		h2, err := DecodeHello(EncodeHello(nil, h))
		if err != nil || !reflect.DeepEqual(h, h2) {
			t.Fatalf("re-encoding: %v\n%+v\n%+v", err, h, h2)
		}
	})
}

// goldenFrames reads the frames under testdata/wire, by file name.
func goldenFrames(t testing.TB) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(goldenDir, "*.hex"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no golden frames in %s: %v", goldenDir, err)
	}
	out := map[string][]byte{}
	for _, p := range paths {
		text, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		frame, err := parseHex(string(text))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out[strings.TrimSuffix(filepath.Base(p), ".hex")] = frame
	}
	return out
}

// corpusBodies are real frame bodies: every golden frame, one message of
// each type, a request of each op and a few responses, and some that
// must fail (a frame type on the wrong decoder, a huge claimed array).
func corpusBodies(t testing.TB) map[string][]byte {
	out := map[string][]byte{}
	for name, frame := range goldenFrames(t) {
		out["golden-"+name] = frame[frameHeaderBytes:]
	}
	rng := rand.New(rand.NewPCG(11, 12))
	for typ := paxos.MsgPreVote; typ.Valid(); typ++ {
		out["message-"+typ.String()] = EncodeMessage(nil, randMessage(rng, typ))
	}
	for op := OpPut; op < 255; op++ { // every op; 22 is reserved
		if !op.Valid() {
			continue
		}
		q := &Request{ID: uint64(op), Op: op, ClientID: 77, Seq: uint64(op), Key: "k", Value: []byte("v"),
			Name: "n", SessionID: 1, TTLMs: 10000}
		out["request-"+op.String()] = EncodeRequest(nil, q)
	}
	out["response-random"] = EncodeResponse(nil, randResponse(rng))
	out["response-error"] = EncodeResponse(nil, &Response{ID: 3, Err: ErrNotLeader, ErrMsg: "not the leader", LeaderHint: 2, LeaderAddr: "10.0.0.2:7401"})
	out["hello-client"] = EncodeHello(nil, Hello{Version: ProtocolVersion, ClusterID: "prod"})
	out["hello-version-99"] = EncodeHello(nil, Hello{Version: 99, ClusterID: "paxosd", NodeID: 2})
	out["array32-of-4-billion"] = []byte{0x9c, 0x01, 0x05, 1, 2, 0, 0, 0, 0, 0xc2, 0xdd, 0xff, 0xff, 0xff, 0xff}
	return out
}

// TestFuzzCorpus checks the seed corpus of every fuzz target of this
// package under testdata/fuzz; UPDATE_FUZZ_CORPUS=1 regenerates it.
func TestFuzzCorpus(t *testing.T) {
	bodies := corpusBodies(t)
	seeds := map[string][]any{}
	for name, body := range bodies {
		seeds[name] = []any{body}
	}
	for _, target := range []string{"FuzzDecodeMessage", "FuzzDecodeRequest", "FuzzDecodeResponse", "FuzzDecodeHello"} {
		fuzzcorpus.Sync(t, target, seeds)
	}

	// Streams for the frame reader: each golden frame, all of them in a
	// row, and a stream cut short, each under a generous and a tight limit.
	frames := goldenFrames(t)
	names := make([]string, 0, len(frames))
	for name := range frames {
		names = append(names, name)
	}
	sort.Strings(names)
	var all []byte
	streams := map[string][]any{}
	for _, name := range names {
		all = append(all, frames[name]...)
		streams["golden-"+name] = []any{frames[name], 1 << 20}
	}
	streams["golden-all"] = []any{all, 1 << 20}
	streams["golden-all-limit-64"] = []any{all, 64}
	streams["golden-all-truncated"] = []any{all[:len(all)-7], 1 << 20}
	streams["prefix-4GiB"] = []any{binary.BigEndian.AppendUint32(nil, 0xffffffff), 1 << 20}
	fuzzcorpus.Sync(t, "FuzzReadFrame", streams)
}

// TestDecodeClaimedLengths: a body that claims 2^32-1 elements (or bytes)
// at any position of any decoder fails as malformed from the claim alone,
// without allocating for it.
func TestDecodeClaimedLengths(t *testing.T) {
	huge := []byte{0xff, 0xff, 0xff, 0xff}
	claims := map[string][]byte{
		"array32": append([]byte{mpArray32}, huge...),
		"bin32":   append([]byte{mpBin32}, huge...),
		"str32":   append([]byte{mpStr32}, huge...),
		"map32":   append([]byte{mpMap32}, huge...),
		"ext32":   append([]byte{mpExt32}, huge...),
	}
	resp := EncodeResponse(nil, &Response{ID: 1})
	decoders := []struct {
		name   string
		decode func([]byte) error
		body   []byte // a complete body of this frame type
	}{
		{"message", func(b []byte) error { _, err := DecodeMessage(b); return err },
			EncodeMessage(nil, paxos.Message{Type: paxos.MsgAccept, From: 1, To: 2})},
		{"request", func(b []byte) error { _, err := DecodeRequest(b); return err },
			EncodeRequest(nil, &Request{ID: 1, Op: OpPut})},
		{"response", func(b []byte) error { _, err := DecodeResponse(b); return err }, resp},
		{"hello", func(b []byte) error { _, err := DecodeHello(b); return err },
			EncodeHello(nil, Hello{Version: 1, ClusterID: "c"})},
	}
	for _, d := range decoders {
		bodies := map[string][]byte{"top-level array32": append(bytes.Clone(claims["array32"]), 0xc0)}
		for i := 0; i <= arrayElemCount(t, d.body); i++ {
			for cname, claim := range claims {
				b := append(bytes.Clone(bodyPrefix(t, d.body, i)), claim...)
				bodies[cname+" as element "+strconv.Itoa(i)] = append(b, 0xc0, 0xc0, 0xc0)
			}
		}
		// Inside a response's lists: a list of one element that claims
		// 4 billion of its own.
		if d.name == "response" {
			for _, field := range []int{9, 10, 13, 17, 19} { // kvs, status, sessions, locks, events
				b := append(bytes.Clone(bodyPrefix(t, resp, field)), 0x91)
				bodies["nested in element "+strconv.Itoa(field)] = append(append(b, claims["array32"]...), 0xc0)
			}
		}
		for name, b := range bodies {
			var err error
			if alloc := allocBytes(func() { err = d.decode(b) }); alloc > 64<<10 {
				t.Errorf("%s decoder, %s: allocated %d bytes", d.name, name, alloc)
			}
			if err == nil {
				t.Errorf("%s decoder, %s: decoded without error", d.name, name)
			}
		}
	}
}

// TestDecodeAllocationFactor: what a decoder allocates is bounded by a
// fixed factor of the bytes it is given, never by what a length claims.
// The factor is the size of a list element's struct over the one byte it
// may take on the wire (an empty array or nil reads as a zero element): at
// most 176 for a response's node statuses, 56 for a message's entries. A
// client request has no lists: decoding one allocates its struct, and its
// strings and byte slices alias the frame. So the untrusted client path
// costs about one frame; a peer frame (peers are members of the cluster)
// or a response (the server a client chose) at most 176 frames' worth.
func TestDecodeAllocationFactor(t *testing.T) {
	const n = 50000
	resp := EncodeResponse(nil, &Response{ID: 1})
	list := func(prefix []byte, elem byte) []byte {
		b := binary.BigEndian.AppendUint32(append(bytes.Clone(prefix), mpArray32), n)
		return append(b, bytes.Repeat([]byte{elem}, n)...)
	}
	decodeMessage := func(b []byte) error { _, err := DecodeMessage(b); return err }
	type tc struct {
		decode func([]byte) error
		body   []byte
		factor uint64
	}
	cases := map[string]tc{
		"message entries": {decodeMessage, list([]byte{0x9a, 0x01, byte(paxos.MsgAccept), 1, 2, 0, 0, 0, 0, 0xc2}, 0x90), 64},
		"message slots":   {decodeMessage, list([]byte{0x9b, 0x01, byte(paxos.MsgAccepted), 1, 2, 0, 0, 0, 0, 0xc2, 0x90}, 0x00), 64},
		"message cmds":    {decodeMessage, list([]byte{0x9c, 0x01, byte(paxos.MsgForward), 1, 2, 0, 0, 0, 0, 0xc2, 0x90, 0x90}, 0xc0), 64},
		"request": {func(b []byte) error { _, err := DecodeRequest(b); return err },
			EncodeRequest(nil, &Request{ID: 1, Op: OpPut, Key: strings.Repeat("k", n), Value: bytes.Repeat([]byte("v"), n)}), 2},
	}
	for _, field := range []int{9, 10, 13, 17, 19} { // kvs, status, sessions, locks, events
		body := list(bodyPrefix(t, resp, field), 0x90)
		body[1], body[2] = 0, byte(field+1) // array16 header: the body ends with this list
		cases["response element "+strconv.Itoa(field)] = tc{func(b []byte) error { _, err := DecodeResponse(b); return err }, body, 192}
	}
	for name, c := range cases {
		var err error
		alloc := allocBytes(func() { err = c.decode(c.body) })
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if alloc > c.factor*uint64(len(c.body)) {
			t.Errorf("%s: allocated %d bytes for a %d-byte body (%.1fx, bound %dx)", name, alloc, len(c.body), float64(alloc)/float64(len(c.body)), c.factor)
		}
	}
}

// arrayElemCount returns the element count of the array body holds.
func arrayElemCount(t *testing.T, body []byte) int {
	r := reader{b: body}
	n, err := r.arrayLen()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// bodyPrefix returns body up to its n-th element (after the array header),
// so that something else can be planted as element n.
func bodyPrefix(t *testing.T, body []byte, n int) []byte {
	r := reader{b: body}
	if _, err := r.arrayLen(); err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := r.skip(); err != nil {
			t.Fatal(err)
		}
	}
	return body[:r.off]
}

// allocBytes returns the bytes the heap allocated while f ran.
func allocBytes(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
