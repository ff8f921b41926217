package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/paxosd/paxosd/paxos"
	"github.com/vmihailenco/msgpack/v5"
)

// randBytes returns nil or 1..max random bytes: the codec reads empty byte
// strings back as nil.
func randBytes(rng *rand.Rand, max int) []byte {
	n := rng.IntN(max + 1)
	if n == 0 {
		return nil
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func randCmds(rng *rand.Rand) [][]byte {
	n := rng.IntN(4)
	if n == 0 {
		return nil
	}
	cs := make([][]byte, n)
	for i := range cs {
		cs[i] = randBytes(rng, 300)
		if cs[i] == nil {
			cs[i] = []byte{0}
		}
	}
	return cs
}

// randUint spreads values over every msgpack integer width.
func randUint(rng *rand.Rand) uint64 {
	switch rng.IntN(5) {
	case 0:
		return uint64(rng.IntN(128))
	case 1:
		return uint64(rng.IntN(1 << 8))
	case 2:
		return uint64(rng.IntN(1 << 16))
	case 3:
		return uint64(rng.Uint32())
	}
	return rng.Uint64()
}

func randMessage(rng *rand.Rand, t paxos.MsgType) paxos.Message {
	m := paxos.Message{
		Type:   t,
		From:   paxos.NodeID(rng.Uint32()),
		To:     paxos.NodeID(rng.Uint32()),
		Ballot: paxos.Ballot{Round: randUint(rng), Node: paxos.NodeID(randUint(rng) & math.MaxUint32)},
		Slot:   paxos.Slot(randUint(rng)),
		Commit: paxos.Slot(randUint(rng)),
		Reject: rng.IntN(2) == 0,
		Cmds:   randCmds(rng),
	}
	if n := rng.IntN(5); n > 0 {
		for range n {
			e := paxos.Entry{
				Slot:   paxos.Slot(randUint(rng)),
				Ballot: paxos.Ballot{Round: randUint(rng), Node: paxos.NodeID(rng.Uint32())},
				Value:  paxos.Value{Kind: paxos.ValueKind(rng.IntN(2)), Cmds: randCmds(rng)},
			}
			m.Entries = append(m.Entries, e)
		}
	}
	if n := rng.IntN(20); n > 0 {
		for range n {
			m.Slots = append(m.Slots, paxos.Slot(randUint(rng)))
		}
	}
	switch rng.IntN(3) {
	case 0:
		m.Transfer = paxos.Ballot{Round: randUint(rng), Node: paxos.NodeID(rng.Uint32())}
	case 1:
		m.Addr = randString(rng, 30) // with or without a transfer ballot
		if rng.IntN(2) == 0 {
			m.Transfer = paxos.Ballot{Round: randUint(rng), Node: paxos.NodeID(rng.Uint32())}
		}
	}
	return m
}

func randString(rng *rand.Rand, max int) string {
	return string(bytes.ToValidUTF8(randBytes(rng, max), []byte("?")))
}

func randRequest(rng *rand.Rand) *Request {
	return &Request{
		ID: randUint(rng), Op: Op(rng.IntN(24)), ClientID: randUint(rng), Seq: randUint(rng),
		AckedBelow: randUint(rng), Key: randString(rng, 40), Value: randBytes(rng, 300),
		Prefix: randString(rng, 40), PrevValue: randBytes(rng, 70000), HasPrevValue: rng.IntN(2) == 0,
		PrevRevision: randUint(rng), HasPrevRevision: rng.IntN(2) == 0, Serializable: rng.IntN(2) == 0,
		Limit: rng.Uint32(), TimeoutMs: rng.Uint32(),
		SessionID: randUint(rng), TTLMs: randUint(rng), Name: randString(rng, 40), Token: randUint(rng),
		Wait: rng.IntN(2) == 0, LockDelayMs: randUint(rng), FenceName: randString(rng, 40), FenceToken: randUint(rng),
		FromRevision: randUint(rng), WatchPrefix: rng.IntN(2) == 0, AfterSeq: randUint(rng), CancelID: randUint(rng),
		Compares: randCompares(rng), ThenOps: randTxnOps(rng), ElseOps: randTxnOps(rng),
		MemberID: randUint(rng), MemberAddr: randString(rng, 40), MemberLearner: rng.IntN(2) == 0,
		OmitPrev: rng.IntN(2) == 0,
	}
}

func randCompares(rng *rand.Rand) []Compare {
	var cs []Compare
	for range rng.IntN(4) {
		cs = append(cs, Compare{Target: CompareTarget(rng.IntN(8)), Result: CompareResult(rng.IntN(6)),
			Key: randString(rng, 40), Value: randBytes(rng, 50), Number: randUint(rng)})
	}
	return cs
}

func randTxnOps(rng *rand.Rand) []TxnOp {
	var ops []TxnOp
	for range rng.IntN(4) {
		ops = append(ops, TxnOp{Type: TxnOpType(rng.IntN(5)), Key: randString(rng, 40), Value: randBytes(rng, 50),
			Prefix: rng.IntN(2) == 0, Limit: rng.Uint32()})
	}
	return ops
}

func randStrings(rng *rand.Rand, max int) []string {
	var list []string
	for range rng.IntN(max + 1) {
		list = append(list, randString(rng, 30))
	}
	return list
}

func randUints(rng *rand.Rand, max int) []uint64 {
	var list []uint64
	for range rng.IntN(max + 1) {
		list = append(list, randUint(rng))
	}
	return list
}

func randSession(rng *rand.Rand) SessionInfo {
	return SessionInfo{ID: randUint(rng), TTLMs: randUint(rng), RemainingMs: randUint(rng),
		Locks: randStrings(rng, 4), Waiting: randStrings(rng, 3), Elections: randStrings(rng, 3)}
}

func randLock(rng *rand.Rand) LockInfo {
	return LockInfo{Name: randString(rng, 40), Holder: randUint(rng), Token: randUint(rng),
		Waiters: randUints(rng, 6), DelayUntilMs: randUint(rng)}
}

func randKV(rng *rand.Rand) KV {
	return KV{Key: randString(rng, 300), Value: randBytes(rng, 100), CreateRevision: randUint(rng), ModRevision: randUint(rng), Version: randUint(rng)}
}

func randResponse(rng *rand.Rand) *Response {
	s := &Response{
		ID: randUint(rng), Err: ErrCode(rng.IntN(17)), ErrMsg: randString(rng, 50),
		LeaderHint: paxos.NodeID(rng.Uint32()), LeaderAddr: randString(rng, 30), Revision: randUint(rng),
		Found: rng.IntN(2) == 0, KV: randKV(rng), Succeeded: rng.IntN(2) == 0,
		Session: randSession(rng), Token: randUint(rng), Held: rng.IntN(2) == 0, Lock: randLock(rng),
		Leader: LeaderInfo{Election: randString(rng, 40), Session: randUint(rng), Value: randBytes(rng, 100),
			Term: randUint(rng), Seq: randUint(rng), Revision: randUint(rng)},
		CompactRevision: randUint(rng), StreamEnd: rng.IntN(2) == 0,
	}
	for range rng.IntN(4) {
		s.Sessions = append(s.Sessions, randSession(rng))
	}
	for range rng.IntN(4) {
		s.Locks = append(s.Locks, randLock(rng))
	}
	for range rng.IntN(6) {
		s.Events = append(s.Events, WatchEvent{Type: EventType(1 + rng.IntN(2)), KV: randKV(rng), PrevKV: randKV(rng)})
	}
	for range rng.IntN(20) {
		s.KVs = append(s.KVs, randKV(rng))
	}
	for range rng.IntN(4) {
		r := TxnResult{Type: TxnOpType(rng.IntN(5)), Found: rng.IntN(2) == 0, KV: randKV(rng), More: rng.IntN(2) == 0, Deleted: randUint(rng)}
		for range rng.IntN(3) {
			r.KVs = append(r.KVs, randKV(rng))
		}
		s.TxnResults = append(s.TxnResults, r)
	}
	for range rng.IntN(4) {
		s.Status = append(s.Status, NodeStatus{
			ID: paxos.NodeID(rng.Uint32()), Addr: randString(rng, 20), Role: "follower",
			Ballot: paxos.Ballot{Round: randUint(rng), Node: paxos.NodeID(rng.Uint32())},
			Leader: paxos.NodeID(rng.Uint32()), Commit: paxos.Slot(randUint(rng)), Applied: paxos.Slot(randUint(rng)),
			Connected: rng.IntN(2) == 0,
		})
	}
	return s
}

// TestMessageRoundTrip encodes random messages of every type and decodes
// them back; a standard msgpack implementation must read every body too.
func TestMessageRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for typ := paxos.MsgPreVote; typ.Valid(); typ++ {
		for range 200 {
			m := randMessage(rng, typ)
			body := EncodeMessage(nil, m)
			got, err := DecodeMessage(body)
			if err != nil {
				t.Fatalf("%s: decode: %v", m, err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, m)
			}
			want := messageElems // the optional trailing elements only when set
			switch {
			case m.Addr != "":
				want += 3
			case !m.Transfer.IsZero():
				want += 2
			}
			var v []any
			if err := msgpack.Unmarshal(body, &v); err != nil || len(v) != want {
				t.Fatalf("%s: vmihailenco/msgpack reads %d elements (want %d), err %v", m, len(v), want, err)
			}
		}
	}
}

func TestClientRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 500 {
		q := randRequest(rng)
		body := EncodeRequest(nil, q)
		got, err := DecodeRequest(body)
		if err != nil {
			t.Fatalf("decode request: %v", err)
		}
		if !reflect.DeepEqual(got, q) {
			t.Fatalf("request round trip:\n got %#v\nwant %#v", got, q)
		}
		s := randResponse(rng)
		body = EncodeResponse(nil, s)
		gotS, err := DecodeResponse(body)
		if err != nil {
			t.Fatalf("decode response: %v", err)
		}
		if !reflect.DeepEqual(gotS, s) {
			t.Fatalf("response round trip:\n got %#v\nwant %#v", gotS, s)
		}
		var v []any
		if err := msgpack.Unmarshal(body, &v); err != nil || len(v) != 1+len(responseFields) {
			t.Fatalf("vmihailenco/msgpack reads %d elements, err %v", len(v), err)
		}
	}
	for _, h := range []Hello{
		{Version: 7, ClusterID: "prod-east", NodeID: 3},
		{Version: 2, ClusterID: "prod-east", NodeID: 3, ClusterUUID: []byte("0123456789abcdef")},
		{Version: 19, ClusterID: "prod-east", NodeID: 3, ClusterUUID: []byte("0123456789abcdef"), Addr: "10.0.0.3:7000"},
		{Version: 19, ClusterID: "prod-east", NodeID: 3, Addr: "node3.example:7000"}, // no uuid known yet
	} {
		if got, err := DecodeHello(EncodeHello(nil, h)); err != nil || !reflect.DeepEqual(got, h) {
			t.Fatalf("hello round trip: %+v, %v", got, err)
		}
	}
}

// TestDecodeForeignEncoding decodes bodies written by a general msgpack
// encoder (as another language's client would), with extra trailing
// elements and other integer widths, and bodies with missing trailing
// fields.
func TestDecodeForeignEncoding(t *testing.T) {
	// A Python-style request: ints as small as possible, signed formats,
	// nil for absent fields, str for bytes, and a future field at the end.
	body, err := msgpack.Marshal([]any{
		int8(2), int64(9), uint16(OpPut), int32(5), uint64(6), nil, "k", "v-as-str",
		nil, nil, nil, nil, nil, true, nil, int64(100),
		int16(300), nil, []byte("lk"), uint8(4), true, int64(0), "fence", int32(8), uint32(70000), false, nil, 1,
		nil, nil, nil, nil, nil,
		nil, nil, nil, // version 4: start_key, revision, page_bytes
		nil,           // version 4: quota_bytes
		nil, nil, nil, // version 8: compares, then_ops, else_ops
		nil, nil, // version 10: role, perm
		nil,           // version 12: session_ids
		nil, nil, nil, // version 16: member_id, member_addr, member_learner
		true, // version 17: omit_prev
		map[string]any{"future": []any{1, 2.5, "x"}}, "another future field",
	})
	if err != nil {
		t.Fatal(err)
	}
	q, err := DecodeRequest(body)
	if err != nil {
		t.Fatal(err)
	}
	want := &Request{ID: 9, Op: OpPut, ClientID: 5, Seq: 6, Key: "k", Value: []byte("v-as-str"), Serializable: true, TimeoutMs: 100,
		SessionID: 300, Name: "lk", Token: 4, Wait: true, FenceName: "fence", FenceToken: 8, FromRevision: 70000, CancelID: 1, OmitPrev: true}
	if !reflect.DeepEqual(q, want) {
		t.Fatalf("got %#v\nwant %#v", q, want)
	}
	// A response with nested values written by a general encoder, nil for
	// empty lists, and future elements in the nested arrays.
	body, err = msgpack.Marshal([]any{
		3, 4, 0, nil, nil, nil, 9, nil, nil, nil, nil, nil,
		[]any{7, 1000, 999, []string{"a", "b"}, nil, []any{"e"}, "future"},
		nil, int64(12), true,
		[]any{"l", 7, 12, []any{8, uint64(1) << 40}, 0, 2.5},
		[]any{[]any{"m"}},
		[]any{"el", 7, "val", 2, 5, 9, nil},
		[]any{[]any{2, []any{"k", nil, 1, 9, 1}, nil, "future"}},
		3, true, nil, nil, nil, nil, false, nil, nil, nil, nil,
		[]any{[]any{2, false, nil, nil, nil, int64(3), "future"}}, // version 8: txn_results
		nil, nil, nil, nil, // version 10: users, roles, auth_enabled, user
		[]any{int8(4), uint64(9)}, // version 12: expired_sessions
		int16(250),                // version 13: retry_after_ms
		[]any{[]any{int8(4), "h:1", true, nil, false, true, int32(9), 2, "future"}}, // version 16: members
		uint8(3), // version 16: config_version
		"future",
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := DecodeResponse(body)
	if err != nil {
		t.Fatal(err)
	}
	wantS := &Response{ID: 4, Revision: 9,
		Session: SessionInfo{ID: 7, TTLMs: 1000, RemainingMs: 999, Locks: []string{"a", "b"}, Elections: []string{"e"}},
		Token:   12, Held: true,
		Lock:            LockInfo{Name: "l", Holder: 7, Token: 12, Waiters: []uint64{8, 1 << 40}},
		Locks:           []LockInfo{{Name: "m"}},
		Leader:          LeaderInfo{Election: "el", Session: 7, Value: []byte("val"), Term: 2, Seq: 5, Revision: 9},
		Events:          []WatchEvent{{Type: EventDelete, KV: KV{Key: "k", CreateRevision: 1, ModRevision: 9, Version: 1}}},
		CompactRevision: 3, StreamEnd: true,
		TxnResults:      []TxnResult{{Type: TxnDelete, Deleted: 3}},
		ExpiredSessions: []uint64{4, 9},
		RetryAfterMs:    250,
		Members:         []MemberInfo{{ID: 4, Addr: "h:1", Learner: true, Reachable: true, Commit: 9, Lag: 2}},
		ConfigVersion:   3,
	}
	if !reflect.DeepEqual(s, wantS) {
		t.Fatalf("got %#v\nwant %#v", s, wantS)
	}
	// Missing trailing fields read as zero.
	body, _ = msgpack.Marshal([]any{3, 9, int(ErrNotLeader)})
	s, err = DecodeResponse(body)
	if err != nil || !reflect.DeepEqual(s, &Response{ID: 9, Err: ErrNotLeader}) {
		t.Fatalf("short response: %#v, %v", s, err)
	}
	// A message with an extra element, and an entry with one.
	body, _ = msgpack.Marshal([]any{1, int(paxos.MsgAccept), 1, 2, 7, 1, 0, 3, false,
		[]any{[]any{4, 7, 1, 1, [][]byte{[]byte("c")}, "future"}}, nil, nil, false, nil, nil, "", "future"})
	m, err := DecodeMessage(body)
	wantM := paxos.Message{Type: paxos.MsgAccept, From: 1, To: 2, Ballot: paxos.Ballot{Round: 7, Node: 1}, Commit: 3,
		Entries: []paxos.Entry{{Slot: 4, Ballot: paxos.Ballot{Round: 7, Node: 1}, Value: paxos.Value{Kind: paxos.ValueBatch, Cmds: [][]byte{[]byte("c")}}}}}
	if err != nil || !reflect.DeepEqual(m, wantM) {
		t.Fatalf("message: %v, %v", m, err)
	}
}

// TestDecodeMalformed: every broken input is an ErrMalformed error.
func TestDecodeMalformed(t *testing.T) {
	accept := EncodeMessage(nil, paxos.Message{Type: paxos.MsgAccept, From: 1, To: 2, Ballot: paxos.Ballot{Round: 300, Node: 1},
		Entries: []paxos.Entry{{Slot: 1, Value: paxos.Value{Kind: paxos.ValueBatch, Cmds: [][]byte{[]byte("hello")}}}}})
	request := EncodeRequest(nil, &Request{ID: 1, Op: OpPut, Key: "k", Value: []byte("v")})
	cases := map[string][]byte{
		"empty":             {},
		"not an array":      {0x01},
		"empty array":       {0x90},
		"wrong frame type":  request,
		"unknown msg type":  {0x92, 0x01, 0x7f},
		"msg type 0":        {0x92, 0x01, 0x00},
		"negative int":      {0x93, 0x01, 0x05, 0xd0, 0xff},
		"node id overflow":  {0x93, 0x01, 0x05, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0},
		"string for uint":   {0x93, 0x01, 0x05, 0xa1, 'x'},
		"bool wrong type":   {0x99, 0x01, 0x05, 0, 0, 0, 0, 0, 0, 0x01},
		"trailing bytes":    append(bytes.Clone(accept), 0xc0),
		"invalid byte 0xc1": {0x93, 0x01, 0x05, 0xc1},
		"array32 of 4 billion": {0x9c, 0x01, 0x05, 1, 2, 0, 0, 0, 0, 0xc2,
			0xdd, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"bin32 of 4 billion": {0x9c, 0x01, 0x05, 1, 2, 0, 0, 0, 0, 0xc2, 0x90, 0x90,
			0x91, 0xc6, 0xff, 0xff, 0xff, 0xff, 0, 0},
		"skip: map32 huge": {0x9d, 0x01, 0x05, 1, 2, 0, 0, 0, 0, 0xc2, 0x90, 0x90, 0x90, 0xdf, 0xff, 0xff, 0xff, 0xff},
	}
	for i := 1; i < len(accept); i++ {
		cases["truncated accept at "+strconv.Itoa(i)] = accept[:i]
	}
	for name, body := range cases {
		if _, err := DecodeMessage(body); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeMessage(%s = % x) = %v, want ErrMalformed", name, body, err)
		}
	}
	for i := 0; i < len(request); i++ {
		if _, err := DecodeRequest(request[:i]); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeRequest(truncated at %d) = %v, want ErrMalformed", i, err)
		}
	}
	if _, err := DecodeRequest(accept); !errors.Is(err, ErrMalformed) {
		t.Errorf("DecodeRequest(message frame) = %v", err)
	}
	for _, body := range [][]byte{{}, {0x95, 0, 0xa6, 'p', 'a', 'x', 'o', 's', 'X', 1, 0xa0, 0}, EncodeHello(nil, Hello{})} {
		if _, err := DecodeHello(body); !errors.Is(err, ErrBadHello) {
			t.Errorf("DecodeHello(% x) = %v, want ErrBadHello", body, err)
		}
	}
}

// TestRandomBytes feeds random bodies to every decoder: errors, no panics.
func TestRandomBytes(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	valid := [][]byte{
		EncodeMessage(nil, randMessage(rng, paxos.MsgAccept)),
		EncodeRequest(nil, randRequest(rng)),
		EncodeResponse(nil, randResponse(rng)),
	}
	for range 20000 {
		var body []byte
		if rng.IntN(2) == 0 {
			body = randBytes(rng, 64)
		} else { // mutate a valid body
			body = bytes.Clone(valid[rng.IntN(len(valid))])
			for range 1 + rng.IntN(4) {
				if len(body) > 0 {
					body[rng.IntN(len(body))] = byte(rng.Uint32())
				}
			}
		}
		DecodeMessage(body)
		DecodeRequest(body)
		DecodeResponse(body)
		DecodeHello(body)
	}
}

// TestDecodeAllocationBound: whatever the body declares, decoding allocates
// in proportion to the body's actual size.
func TestDecodeAllocationBound(t *testing.T) {
	// The worst case per input byte: entries that are empty arrays.
	n := 100000
	body := []byte{0x9a, 0x01, byte(paxos.MsgAccept), 1, 2, 0, 0, 0, 0, 0xc2, 0xdd}
	body = binary.BigEndian.AppendUint32(body, uint32(n))
	body = append(body, bytes.Repeat([]byte{0x90}, n)...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	m, err := DecodeMessage(body)
	runtime.ReadMemStats(&after)
	if err != nil || len(m.Entries) != n {
		t.Fatalf("decode: %d entries, %v", len(m.Entries), err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64*uint64(len(body)) {
		t.Fatalf("allocated %d bytes for a %d-byte body", alloc, len(body))
	}
}

func TestFrameReader(t *testing.T) {
	var stream []byte
	bodies := [][]byte{{}, []byte("a"), bytes.Repeat([]byte("b"), 200000), []byte("c")}
	for _, b := range bodies {
		stream = AppendFrame(stream, b)
	}
	fr := NewFrameReader(bytes.NewReader(stream), 300000)
	for i, want := range bodies {
		got, err := fr.ReadFrame()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("frame %d: %d bytes, %v", i, len(got), err)
		}
	}
	if _, err := fr.ReadFrame(); err != io.EOF {
		t.Fatalf("at end: %v", err)
	}
	// A limit below the big frame refuses it from its prefix alone.
	fr = NewFrameReader(bytes.NewReader(stream), 1000)
	fr.ReadFrame()
	fr.ReadFrame()
	if _, err := fr.ReadFrame(); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversized: %v", err)
	}
	// A truncated frame is an unexpected EOF, even a large one.
	for _, cut := range []int{2, 6, 100, len(stream) - 1} {
		fr = NewFrameReader(bytes.NewReader(stream[:cut]), 0)
		var err error
		for err == nil {
			_, err = fr.ReadFrame()
		}
		if err != io.ErrUnexpectedEOF {
			t.Fatalf("cut at %d: %v", cut, err)
		}
	}
	// A 4 GiB prefix on a short stream, under a huge limit, allocates only
	// what arrives.
	fr = NewFrameReader(bytes.NewReader([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3}), math.MaxInt)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := fr.ReadFrame()
	runtime.ReadMemStats(&after)
	if err != io.ErrUnexpectedEOF || after.TotalAlloc-before.TotalAlloc > 1<<20 {
		t.Fatalf("4 GiB prefix: %v, allocated %d", err, after.TotalAlloc-before.TotalAlloc)
	}
	// With a little more than a first chunk's bytes behind it, it
	// allocates about frameGrowth times more than arrived (twice that
	// under the race detector, whose build of slices.Grow allocates its
	// zeroed tail before copying it in; the bound leaves room for both),
	// not what the prefix claims.
	sent := frameChunkBytes + 1
	fr = NewFrameReader(bytes.NewReader(append([]byte{0xff, 0xff, 0xff, 0xff}, make([]byte, sent)...)), math.MaxInt)
	runtime.ReadMemStats(&before)
	_, err = fr.ReadFrame()
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; err != io.ErrUnexpectedEOF || alloc > uint64(3*frameGrowth*sent) {
		t.Fatalf("4 GiB prefix and %d bytes: %v, allocated %d", sent, err, alloc)
	}
}

// TestNumbering pins the op and error numbers, which are shared with the
// state machine and other clients: they must never change.
func TestNumbering(t *testing.T) {
	ops := []Op{OpPut, OpGet, OpDelete, OpCAS, OpList, OpStatus, OpSessionOpen, OpSessionKeepAlive,
		OpSessionClose, OpSessionList, OpLockAcquire, OpLockRelease, OpLockCheck, OpLockList,
		OpCampaign, OpProclaim, OpResign, OpLeader, OpObserve, OpWatch, OpCancel, opReservedClock, OpSnapshotRead}
	for i, o := range ops {
		if o == opReservedClock {
			continue
		}
		if int(o) != i+1 || !o.Valid() || strings.HasPrefix(o.String(), "Op(") {
			t.Errorf("op %d: %d %q valid=%v", i+1, o, o, o.Valid())
		}
		if o.IsStream() != (o == OpWatch || o == OpObserve) {
			t.Errorf("%s: IsStream %v", o, o.IsStream())
		}
	}
	if OpLeaderTransfer != 27 || OpQuotaSet != 28 || OpQuotaGet != 29 || !OpQuotaSet.Valid() || !OpQuotaGet.Valid() {
		t.Errorf("quota ops %d %d", OpQuotaSet, OpQuotaGet)
	}
	if OpTxn != 32 || !OpTxn.Valid() || OpTxn.String() != "Txn" {
		t.Errorf("txn op %d %q", OpTxn, OpTxn)
	}
	for o := OpUserAdd; o <= OpAuthenticate; o++ {
		if !o.Valid() || strings.HasPrefix(o.String(), "Op(") || o.IsAuthAdmin() != (o != OpAuthenticate) {
			t.Errorf("auth op %d: %q valid=%v", o, o, o.Valid())
		}
	}
	if OpUserAdd != 33 || OpAuthenticate != 46 {
		t.Errorf("auth ops %d..%d", OpUserAdd, OpAuthenticate)
	}
	if OpSessionKeepAliveBatch != 47 || !OpSessionKeepAliveBatch.Valid() || OpSessionKeepAliveBatch.IsAuthAdmin() {
		t.Errorf("keep-alive batch op %d %q", OpSessionKeepAliveBatch, OpSessionKeepAliveBatch)
	}
	if OpSnapshotSave != 48 || !OpSnapshotSave.Valid() || !OpSnapshotSave.IsStream() || OpSnapshotSave.IsAuthAdmin() {
		t.Errorf("snapshot save op %d %q", OpSnapshotSave, OpSnapshotSave)
	}
	for o := OpMemberList; o <= OpMemberUpdate; o++ {
		if !o.Valid() || !o.IsMember() || o.ChangesMembers() != (o != OpMemberList) || strings.HasPrefix(o.String(), "Op(") || o.IsStream() || o.IsAuthAdmin() {
			t.Errorf("member op %d %q", o, o)
		}
	}
	if OpMemberList != 49 || OpMemberUpdate != 53 {
		t.Errorf("member ops %d..%d", OpMemberList, OpMemberUpdate)
	}
	for _, o := range []Op{0, 22, 24, 25, 26, 30, 31, 54, 255} { // 22: the internal clock command; 30 the default quota; 31 the cluster level
		if o.Valid() {
			t.Errorf("op %d is valid", o)
		}
	}
	codes := []ErrCode{ErrNone, ErrNotLeader, ErrNotFound, ErrCASFailed, ErrInvalid, ErrTooLarge, ErrTimeout,
		ErrUnavailable, ErrInternal, ErrSessionExpired, ErrLockHeld, ErrNotHeld, ErrCanceled, ErrFenced,
		ErrCompacted, ErrNotElectionLeader, ErrQuotaExceeded, ErrAuthRequired, ErrAuthFailed, ErrPermissionDenied,
		ErrBusy, ErrSlowWatcher, ErrMemberConflict}
	for i, c := range codes {
		if int(c) != i || strings.HasPrefix(c.String(), "ErrCode(") {
			t.Errorf("error %d: %d %q", i, c, c)
		}
	}
	if ErrCode(23).String() != "ErrCode(23)" || EventPut != 1 || EventDelete != 2 || EventType(3).String() != "EventType(3)" {
		t.Errorf("unknown values: %s %s", ErrCode(23), EventType(3))
	}
	blocking := map[*Request]bool{
		{Op: OpLockAcquire, Wait: true}: true, {Op: OpLockAcquire}: false,
		{Op: OpCampaign}: true, {Op: OpWatch}: false, {Op: OpPut, Wait: true}: false,
	}
	for q, want := range blocking {
		if q.Blocking() != want {
			t.Errorf("%s wait=%v: Blocking %v", q.Op, q.Wait, !want)
		}
	}
}

// TestDecodeMalformedNested: the nested values added for sessions, locks,
// elections and watches reject bad input as ErrMalformed too.
func TestDecodeMalformedNested(t *testing.T) {
	pre := []any{3, 1, 0, nil, nil, nil, 0, nil, nil, nil, nil, nil}
	cases := map[string][]any{
		"int in session locks":   append(append([]any{}, pre...), []any{1, 2, 3, []any{5}}),
		"str in lock waiters":    append(append([]any{}, pre...), nil, nil, nil, nil, []any{"l", 1, 2, []any{"x"}}),
		"negative lock waiter":   append(append([]any{}, pre...), nil, nil, nil, nil, []any{"l", 1, 2, []any{-1}}),
		"event type too large":   append(append([]any{}, pre...), nil, nil, nil, nil, nil, nil, nil, []any{[]any{256}}),
		"leader not an array":    append(append([]any{}, pre...), nil, nil, nil, nil, nil, nil, "leader"),
		"stream_end not a bool":  append(append([]any{}, pre...), nil, nil, nil, nil, nil, nil, nil, nil, 0, 1),
		"sessions of non-arrays": append(append([]any{}, pre...), nil, []any{1}),
	}
	for name, v := range cases {
		body, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeResponse(body); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	body, _ := msgpack.Marshal([]any{2, 1, int(OpCancel), 0, 0, 0, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil,
		nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, "cancel id"})
	if _, err := DecodeRequest(body); !errors.Is(err, ErrMalformed) {
		t.Errorf("string cancel_id: %v, want ErrMalformed", err)
	}
}

// TestShortHello: a hello that stops after its version (or its cluster id)
// is complete, its missing trailing fields zero (docs/PROTOCOL.md §1), as
// a client written from the spec sends it; without a version it is not.
func TestShortHello(t *testing.T) {
	for _, c := range []struct {
		elems []any
		want  Hello
	}{
		{[]any{0, "paxosd", 6}, Hello{Version: 6}},
		{[]any{0, "paxosd", 6, "prod"}, Hello{Version: 6, ClusterID: "prod"}},
		{[]any{0, "paxosd", 6, nil, nil}, Hello{Version: 6}},
	} {
		body, err := msgpack.Marshal(c.elems)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := DecodeHello(body); err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("DecodeHello(%v) = %+v, %v; want %+v", c.elems, got, err, c.want)
		}
	}
	for _, elems := range [][]any{{0, "paxosd"}, {0}, {}, {0, "paxosd", 19, "prod", 4, nil, strings.Repeat("a", helloAddrBytesMax+1)}} {
		body, _ := msgpack.Marshal(elems)
		if _, err := DecodeHello(body); !errors.Is(err, ErrBadHello) {
			t.Errorf("DecodeHello(%v) = %v, want ErrBadHello", elems, err)
		}
	}
}
