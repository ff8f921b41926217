package wire

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/paxosd/paxosd/paxos"
	"github.com/vmihailenco/msgpack/v5"
)

var (
	update  = flag.Bool("update", false, "rewrite testdata/wire golden files and the examples in docs/PROTOCOL.md")
	rewrite = flag.Bool("rewrite", false, "same as -update")
)

func updating() bool { return *update || *rewrite || os.Getenv("UPDATE_GOLDEN") == "1" }

const (
	goldenDir = "../testdata/wire"
	protoDoc  = "../docs/PROTOCOL.md"
)

// Element names of each frame layout, as docs/PROTOCOL.md names them.
var (
	helloNames   = []string{"frame_type", "magic", "version", "cluster_id", "node_id", "cluster_uuid", "addr"}
	messageNames = []string{"frame_type", "type", "from", "to", "ballot_round", "ballot_node", "slot", "commit", "reject", "entries", "slots", "cmds", "more", "transfer_round", "transfer_node", "addr"}
	entryNames   = []string{"slot", "ballot_round", "ballot_node", "value_kind", "cmds"}
)

func fieldNames[T any](fs []field[T]) []string {
	var names []string
	for _, f := range fs {
		names = append(names, f.name)
	}
	return names
}

func frameNames[T any](fs []field[T]) []string {
	return append([]string{"frame_type"}, fieldNames(fs)...)
}

var ballot5 = paxos.Ballot{Round: 5, Node: 1}

// goldens are the frames under testdata/wire: each file holds the frame of
// value, annotated. A legacy file was written by an earlier encoder, before
// fields were appended; it is never rewritten, and must go on decoding to
// value, its elements a prefix of what the encoder writes today.
var goldens = []struct {
	file, title string
	value       any
	names       []string
	legacy      bool
}{
	{"hello.hex", "Hello from node 1 of the default cluster", Hello{Version: 1, ClusterID: "paxosd", NodeID: 1}, helloNames, false},
	{"hello_v2.hex", "Hello (version 2) from node 1 of cluster prod, which knows the cluster's uuid", Hello{Version: 2, ClusterID: "prod", NodeID: 1,
		ClusterUUID: []byte{0x3f, 0x6c, 0x1e, 0x95, 0x2b, 0xd4, 0x47, 0x0a, 0x8e, 0x51, 0xc7, 0x09, 0x6d, 0xb2, 0x34, 0xf8}}, helloNames, false},
	{"hello_addr.hex", "Hello (version 19) from node 4 dialing a peer, saying where it may be dialed back", Hello{Version: 19, ClusterID: "prod", NodeID: 4,
		ClusterUUID: []byte{0x3f, 0x6c, 0x1e, 0x95, 0x2b, 0xd4, 0x47, 0x0a, 0x8e, 0x51, 0xc7, 0x09, 0x6d, 0xb2, 0x34, 0xf8}, Addr: "10.0.0.4:7000"}, helloNames, false},
	{"prepare.hex", "Prepare: node 1 asks node 2 to promise ballot 5.1 for slots from 42", paxos.Message{
		Type: paxos.MsgPrepare, From: 1, To: 2, Ballot: ballot5, Slot: 42,
	}, messageNames, true},
	{"promise.hex", "Promise: node 2 promises ballot 5.1 and reports slot 42, accepted under 4.3", paxos.Message{
		Type: paxos.MsgPromise, From: 2, To: 1, Ballot: ballot5, Commit: 41,
		Entries: []paxos.Entry{{Slot: 42, Ballot: paxos.Ballot{Round: 4, Node: 3}, Value: paxos.Value{Kind: paxos.ValueBatch, Cmds: [][]byte{[]byte("put a=1")}}}},
	}, messageNames, true},
	{"prepare_paged.hex", "Prepare: node 1 asks node 2 to promise ballot 5.1 for slots from 42, taking the Promise in pages", paxos.Message{
		Type: paxos.MsgPrepare, From: 1, To: 2, Ballot: ballot5, Slot: 42, More: true,
	}, messageNames, false},
	{"promise_page.hex", "Promise, one page: node 2 promises ballot 5.1 and reports slots 42 and 43; more follow from 44", paxos.Message{
		Type: paxos.MsgPromise, From: 2, To: 1, Ballot: ballot5, Slot: 42, Commit: 41, More: true,
		Entries: []paxos.Entry{
			{Slot: 42, Ballot: paxos.Ballot{Round: 4, Node: 3}, Value: paxos.Value{Kind: paxos.ValueBatch, Cmds: [][]byte{[]byte("put a=1")}}},
			{Slot: 43, Ballot: paxos.Ballot{Round: 4, Node: 3}, Value: paxos.Noop},
		},
	}, messageNames, false},
	{"timeout_now.hex", "TimeoutNow (version 3): leader 1 of ballot 5.1 steps down and hands its leadership to node 2", paxos.Message{
		Type: paxos.MsgTimeoutNow, From: 1, To: 2, Ballot: ballot5,
	}, messageNames, false},
	{"prepare_transfer.hex", "Prepare (version 3): node 2 campaigns for ballot 6.2, handed leadership by the leader of ballot 5.1", paxos.Message{
		Type: paxos.MsgPrepare, From: 2, To: 3, Ballot: paxos.Ballot{Round: 6, Node: 2}, Slot: 42, More: true, Transfer: ballot5,
	}, messageNames, false},
	{"snapshot_offer.hex", "Snapshot offer (version 18): leader 4 of ballot 5.1, whose log starts after slot 3400, tells node 2 where to fetch its snapshot", paxos.Message{
		Type: paxos.MsgSnapshot, From: 4, To: 2, Ballot: ballot5, Slot: 3400, Commit: 3410, Addr: "10.0.0.4:7401",
	}, messageNames, false},
	{"heartbeat_ack_named.hex", "HeartbeatAck (version 20): node 2, whose watermark is slot 41, answers a Decide of ballot 5.1 that ended at slot 60: slots 42 to the Decide's first were lost", paxos.Message{
		Type: paxos.MsgHeartbeatAck, From: 2, To: 1, Ballot: ballot5, Commit: 41, Slots: []paxos.Slot{60},
	}, messageNames, false},
	{"accept.hex", "Accept: node 1 asks node 3 to accept slots 42 (two commands) and 43 (a no-op)", paxos.Message{
		Type: paxos.MsgAccept, From: 1, To: 3, Ballot: ballot5, Commit: 41,
		Entries: []paxos.Entry{
			{Slot: 42, Ballot: ballot5, Value: paxos.Value{Kind: paxos.ValueBatch, Cmds: [][]byte{[]byte("put a=1"), []byte("put b=2")}}},
			{Slot: 43, Ballot: ballot5, Value: paxos.Noop},
		},
	}, messageNames, false},
	{"put_request.hex", "Request 1: put greeting=hello, client 77, seq 1", &Request{
		ID: 1, Op: OpPut, ClientID: 77, Seq: 1, Key: "greeting", Value: []byte("hello"), TimeoutMs: 5000,
	}, frameNames(requestFields), true},
	{"put_session_request.hex", "Request 15 (version 9): put services/web-1=10.0.0.7:8080 bound to session 42 (an ephemeral key), client 77, seq 12", &Request{
		ID: 15, Op: OpPut, ClientID: 77, Seq: 12, AckedBelow: 12, Key: "services/web-1", Value: []byte("10.0.0.7:8080"), SessionID: 42,
	}, frameNames(requestFields), false},
	{"put_omit_prev_request.hex", "Request 16 (version 17): put greeting=hi, answered without the previous pair, client 77, seq 13", &Request{
		ID: 16, Op: OpPut, ClientID: 77, Seq: 13, AckedBelow: 13, Key: "greeting", Value: []byte("hi"), TimeoutMs: 3000, OmitPrev: true,
	}, frameNames(requestFields), false},
	{"get_response.hex", "Response to request 2, a get of greeting", &Response{
		ID: 2, Revision: 8, Found: true,
		KV: KV{Key: "greeting", Value: []byte("hello"), CreateRevision: 7, ModRevision: 8, Version: 2},
	}, frameNames(responseFields), true},
	{"lock_acquire_request.hex", "Request 5: session 42 waits for lock 'jobs/leader', lock-delay 10 s, client 77, seq 3", &Request{
		ID: 5, Op: OpLockAcquire, ClientID: 77, Seq: 3, AckedBelow: 3,
		SessionID: 42, Name: "jobs/leader", Wait: true, LockDelayMs: 10000,
	}, frameNames(requestFields), true},
	{"lock_acquire_response.hex", "Response to request 5: lock 'jobs/leader' granted with fencing token 7", &Response{
		ID: 5, Revision: 19, Token: 7,
		Lock: LockInfo{Name: "jobs/leader", Holder: 42, Token: 7, Waiters: []uint64{43}},
	}, frameNames(responseFields), false},
	{"watch_event_response.hex", "Response on watch stream 9: config/a changed at revision 21, config/b deleted at 22", &Response{
		ID: 9, Revision: 22,
		Events: []WatchEvent{
			{Type: EventPut, KV: KV{Key: "config/a", Value: []byte("on"), CreateRevision: 12, ModRevision: 21, Version: 3},
				PrevKV: KV{Key: "config/a", Value: []byte("off"), CreateRevision: 12, ModRevision: 17, Version: 2}},
			{Type: EventDelete, KV: KV{Key: "config/b", ModRevision: 22},
				PrevKV: KV{Key: "config/b", Value: []byte("x"), CreateRevision: 20, ModRevision: 20, Version: 1}},
		},
	}, frameNames(responseFields), false},
	{"list_page_request.hex", "Request 12 (version 4): the second page of a paged list of 'jobs/' at revision 40, at most 1 MiB", &Request{
		ID: 12, Op: OpList, ClientID: 77, Seq: 9, AckedBelow: 9, Prefix: "jobs/",
		StartKey: "jobs/b\x00", Revision: 40, PageBytes: 1 << 20,
	}, frameNames(requestFields), false},
	{"list_page_response.hex", "Response to request 12: jobs/c as of revision 40; more follow from jobs/c\\x00", &Response{
		ID: 12, Revision: 40,
		KVs:  []KV{{Key: "jobs/c", Value: []byte("3"), CreateRevision: 31, ModRevision: 38, Version: 2}},
		More: true, NextKey: "jobs/c\x00",
	}, frameNames(responseFields), false},
	{"observe_response.hex", "Response on observe stream 11: change 4 of election 'db', session 42 leads in term 3", &Response{
		ID: 11, Revision: 30,
		Leader: LeaderInfo{Election: "db", Session: 42, Value: []byte("10.0.0.5:5432"), Term: 3, Seq: 4, Revision: 30},
	}, frameNames(responseFields), false},
	{"watch_request.hex", "Request 9: watch every key starting with 'config/' from revision 21 (no client id: a watch is not through the log)", &Request{
		ID: 9, Op: OpWatch, Key: "config/", WatchPrefix: true, FromRevision: 21,
	}, frameNames(requestFields), false},
	{"watch_progress_response.hex", "Response on watch stream 9 (version 11): a progress notification, no events: every change under config/ up to revision 57 was sent", &Response{
		ID: 9, Revision: 57,
	}, frameNames(responseFields), false},
	{"cas_failed_response.hex", "Response to request 14: CAS on config/mode failed, the key holds 'green' at mod revision 9", &Response{
		ID: 14, Err: ErrCASFailed, ErrMsg: "compare failed", Revision: 12, Found: true,
		KV: KV{Key: "config/mode", Value: []byte("green"), CreateRevision: 7, ModRevision: 9, Version: 2},
	}, frameNames(responseFields), false},
	{"lock_held_response.hex", "Response to request 6: try-lock of 'jobs/leader' refused, session 42 holds it with token 7", &Response{
		ID: 6, Err: ErrLockHeld, ErrMsg: "lock held", Revision: 19,
		Lock: LockInfo{Name: "jobs/leader", Holder: 42, Token: 7, Waiters: []uint64{43}},
	}, frameNames(responseFields), false},
	{"session_response.hex", "Response to request 3: session 42 kept alive, TTL 10 s, holding jobs/leader and leading db", &Response{
		ID: 3, Revision: 25, LeaderHint: 1, LeaderAddr: "10.0.0.1:7401",
		Session: SessionInfo{ID: 42, TTLMs: 10000, RemainingMs: 10000, Locks: []string{"jobs/leader"}, Elections: []string{"db"}},
	}, frameNames(responseFields), false},
	{"status_response.hex", "Response to request 4: node 2's status, a follower of leader 1; node 1 connected, node 3 not", &Response{
		ID: 4, Status: []NodeStatus{
			{ID: 2, Addr: "10.0.0.2:7401", Role: "follower", Ballot: paxos.Ballot{Round: 5, Node: 1}, Leader: 1, Commit: 41, Applied: 40,
				Connected: true, Promised: paxos.Ballot{Round: 5, Node: 1}, AcceptedMax: 42, WindowSlots: 64, Formed: true,
				ClusterUUID: []byte{0x3f, 0x6c, 0x1e, 0x95, 0x2b, 0xd4, 0x47, 0x0a, 0x8e, 0x51, 0xc7, 0x09, 0x6d, 0xb2, 0x34, 0xf8}, Voters: []uint64{1, 2, 3}},
			{ID: 1, Addr: "10.0.0.1:7401", Connected: true},
			{ID: 3, Addr: "10.0.0.3:7401"},
		},
	}, frameNames(responseFields), false},
	{"txn_request.hex", "Request 14 (version 8): a transfer of 10 from acct/a to acct/b while lock 'acct/lock' is held with token 12 and acct/a holds 100, else read acct/a", &Request{
		ID: 14, Op: OpTxn, ClientID: 77, Seq: 11, AckedBelow: 11,
		Compares: []Compare{
			{Target: CompareToken, Result: CompareEqual, Key: "acct/lock", Number: 12},
			{Target: CompareValue, Result: CompareEqual, Key: "acct/a", Value: []byte("100")},
		},
		ThenOps: []TxnOp{{Type: TxnPut, Key: "acct/a", Value: []byte("90")}, {Type: TxnPut, Key: "acct/b", Value: []byte("110")}},
		ElseOps: []TxnOp{{Type: TxnGet, Key: "acct/a"}},
	}, frameNames(requestFields), false},
	{"txn_response.hex", "Response to request 14: the compares held; both puts at revision 51, replacing acct/a=100 and acct/b=100", &Response{
		ID: 14, Revision: 51, Succeeded: true,
		TxnResults: []TxnResult{
			{Type: TxnPut, Found: true, KV: KV{Key: "acct/a", Value: []byte("100"), CreateRevision: 3, ModRevision: 40, Version: 5}},
			{Type: TxnPut, Found: true, KV: KV{Key: "acct/b", Value: []byte("100"), CreateRevision: 4, ModRevision: 40, Version: 5}},
		},
	}, frameNames(responseFields), false},
	{"authenticate_request.hex", "Request 1 (version 10): authenticate the connection as alice, password s3cret", &Request{
		ID: 1, Op: OpAuthenticate, Name: "alice", Value: []byte("s3cret"),
	}, frameNames(requestFields), false},
	{"role_list_response.hex", "Response to a RoleList (version 10): role app may read and write under app/, and read under pub/", &Response{
		ID: 9, Revision: 12,
		Roles: []RoleInfo{{Name: "app", Perms: []RolePerm{{Prefix: "app/", Perm: PermReadWrite}, {Prefix: "pub/", Perm: PermRead}}}},
	}, frameNames(responseFields), false},
	{"keepalive_batch_request.hex", "Request 15 (version 12): renew sessions 42, 43 and 57 in one keep-alive batch, client 77, seq 12", &Request{
		ID: 15, Op: OpSessionKeepAliveBatch, ClientID: 77, Seq: 12, AckedBelow: 12, SessionIDs: []uint64{42, 43, 57},
	}, frameNames(requestFields), false},
	{"keepalive_batch_response.hex", "Response to request 15: sessions 42 and 57 renewed; 43 no longer exists", &Response{
		ID: 15, Revision: 60, ExpiredSessions: []uint64{43},
	}, frameNames(responseFields), false},
	{"busy_response.hex", "Response to request 16 (version 13): the node is overloaded and shed the request; retry after 120 ms", &Response{
		ID: 16, Err: ErrBusy, ErrMsg: "busy: retry after 120 ms", RetryAfterMs: 120,
	}, frameNames(responseFields), false},
	{"snapshot_save_request.hex", "Request 16 (version 14): stream a snapshot taken at a linearizable point, client 77, seq 13", &Request{
		ID: 16, Op: OpSnapshotSave, ClientID: 77, Seq: 13, AckedBelow: 13,
	}, frameNames(requestFields), false},
	{"snapshot_save_end_response.hex", "The last response of request 16's stream: the snapshot of slot 900 (store revision 750) was 1,048,600 bytes, CRC-32C 0x1c2d3e4f", &Response{
		ID: 16, StreamEnd: true, SnapSlot: 900, Revision: 750, SnapSize: 1048600, SnapCRC: 0x1c2d3e4f,
	}, frameNames(responseFields), false},
}

func encodeAny(v any) []byte {
	switch v := v.(type) {
	case Hello:
		return EncodeHello(nil, v)
	case paxos.Message:
		return EncodeMessage(nil, v)
	case *Request:
		return EncodeRequest(nil, v)
	case *Response:
		return EncodeResponse(nil, v)
	}
	panic(fmt.Sprintf("no encoder for %T", v))
}

func decodeAny(proto any, body []byte) (any, error) {
	switch proto.(type) {
	case Hello:
		return DecodeHello(body)
	case paxos.Message:
		return DecodeMessage(body)
	case *Request:
		return DecodeRequest(body)
	case *Response:
		return DecodeResponse(body)
	}
	panic(fmt.Sprintf("no decoder for %T", proto))
}

// parseHex reads an annotated hex file: '#' starts a comment, whitespace
// is ignored.
func parseHex(text string) ([]byte, error) {
	var digits strings.Builder
	for _, line := range strings.Split(text, "\n") {
		line, _, _ = strings.Cut(line, "#")
		digits.WriteString(strings.Join(strings.Fields(line), ""))
	}
	return hex.DecodeString(digits.String())
}

// TestGolden decodes every golden frame and compares it with the value it
// was made from, and checks that encoding is byte-stable. go test ./wire
// -update (or UPDATE_GOLDEN=1) regenerates the files.
func TestGolden(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.file, func(t *testing.T) {
			frame := AppendFrame(nil, encodeAny(g.value))
			path := filepath.Join(goldenDir, g.file)
			if updating() && !g.legacy {
				if err := os.WriteFile(path, []byte(annotate(g.title, frame, g.names)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			text, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./wire -update)", err)
			}
			golden, err := parseHex(string(text))
			if err != nil {
				t.Fatal(err)
			}
			body, err := NewFrameReader(bytes.NewReader(golden), 0).ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeAny(g.value, body)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, g.value) {
				t.Fatalf("decoded\n %#v\nwant\n %#v", got, g.value)
			}
			if g.legacy {
				old, now := arrayElems(t, body), arrayElems(t, frame[frameHeaderBytes:])
				if !bytes.HasPrefix(now, old) {
					t.Fatalf("the legacy frame's elements are not a prefix of today's encoding:\n got % x\nwant % x...", now, old)
				}
				return
			}
			if !bytes.Equal(frame, golden) {
				t.Fatalf("encoding changed:\n got % x\nwant % x\n(if intended, run go test ./wire -update)", frame, golden)
			}
		})
	}
}

// TestGoldenJSON keeps a JSON description beside each golden frame
// (testdata/wire/NAME.json): the frame's fields by name, as the Go side
// encodes the value today (so a legacy frame's appended fields are listed,
// at zero). Other clients' tests (clients/python) decode the .hex files and
// compare with it. Bin is {"hex": "..."}, str a JSON string; a field
// missing from "fields" is zero. -update rewrites the files.
func TestGoldenJSON(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.file, func(t *testing.T) {
			want, err := goldenJSON(g.title, g.value, g.legacy)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(goldenDir, strings.TrimSuffix(g.file, ".hex")+".json")
			if updating() {
				if err := os.WriteFile(path, want, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./wire -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s is not the description of %s:\n%s\nwant\n%s\n(run go test ./wire -update)", path, g.file, got, want)
			}
		})
	}
	// Every golden frame has its description, and no description is left
	// without its frame.
	paths, _ := filepath.Glob(filepath.Join(goldenDir, "*.json"))
	for _, p := range paths {
		if _, err := os.Stat(strings.TrimSuffix(p, ".json") + ".hex"); err != nil {
			t.Errorf("%s describes no golden frame: %v", p, err)
		}
	}
}

// shape names the elements of a msgpack array layout, and the layouts of
// the fields that hold a nested array (rec) or a list of them (list).
type shape struct {
	names     []string
	rec, list map[string]*shape
}

var (
	kvShape          = &shape{names: fieldNames(kvFields)}
	goldenHelloShape = &shape{names: helloNames}
	messageShape     = &shape{names: messageNames, list: map[string]*shape{"entries": {names: entryNames}}}
	txnOpShape       = &shape{names: fieldNames(txnOpFields)}
	requestShape     = &shape{names: frameNames(requestFields), list: map[string]*shape{
		"compares": {names: fieldNames(compareFields)}, "then_ops": txnOpShape, "else_ops": txnOpShape,
	}}
	sessionShape  = &shape{names: fieldNames(sessionInfoFields)}
	lockShape     = &shape{names: fieldNames(lockInfoFields)}
	responseShape = &shape{
		names: frameNames(responseFields),
		rec: map[string]*shape{
			"kv": kvShape, "session": sessionShape, "lock": lockShape,
			"leader": {names: fieldNames(leaderInfoFields)},
		},
		list: map[string]*shape{
			"kvs": kvShape, "status": {names: fieldNames(nodeStatusFields)}, "sessions": sessionShape, "locks": lockShape,
			"events":      {names: fieldNames(watchEventFields), rec: map[string]*shape{"kv": kvShape, "prev_kv": kvShape}},
			"txn_results": {names: fieldNames(txnResultFields), rec: map[string]*shape{"kv": kvShape}, list: map[string]*shape{"kvs": kvShape}},
			"users":       {names: fieldNames(userInfoFields)},
			"roles":       {names: fieldNames(roleInfoFields), list: map[string]*shape{"perms": {names: fieldNames(rolePermFields)}}},
		},
	}
)

// orderedObj is a JSON object whose keys keep their order.
type orderedObj struct {
	keys []string
	vals []any
}

func (o *orderedObj) add(k string, v any) { o.keys = append(o.keys, k); o.vals = append(o.vals, v) }

func (o *orderedObj) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		vb, err := json.Marshal(o.vals[i])
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// describeElems names the elements of a generically decoded msgpack array.
func describeElems(elems []any, s *shape) *orderedObj {
	o := &orderedObj{}
	for i, e := range elems {
		name := fmt.Sprint(i)
		if i < len(s.names) {
			name = s.names[i]
		}
		switch {
		case s.rec[name] != nil:
			sub, _ := e.([]any)
			o.add(name, describeElems(sub, s.rec[name]))
		case s.list[name] != nil:
			list, _ := e.([]any)
			items := []any{}
			for _, it := range list {
				sub, _ := it.([]any)
				items = append(items, describeElems(sub, s.list[name]))
			}
			o.add(name, items)
		default:
			o.add(name, describeScalar(e))
		}
	}
	return o
}

func describeScalar(v any) any {
	switch v := v.(type) {
	case []byte:
		return map[string]string{"hex": hex.EncodeToString(v)}
	case []any:
		items := []any{}
		for _, e := range v {
			items = append(items, describeScalar(e))
		}
		return items
	}
	return v
}

// goldenJSON describes value's frame, as encoded today.
func goldenJSON(title string, value any, legacy bool) ([]byte, error) {
	var v any
	if err := msgpack.Unmarshal(encodeAny(value), &v); err != nil {
		return nil, err
	}
	elems, _ := v.([]any)
	var s *shape
	var frame string
	switch value.(type) {
	case Hello:
		s, frame = goldenHelloShape, "Hello"
	case paxos.Message:
		s, frame = messageShape, "Message"
	case *Request:
		s, frame = requestShape, "Request"
	case *Response:
		s, frame = responseShape, "Response"
	}
	o := &orderedObj{}
	o.add("title", title)
	o.add("frame", frame)
	o.add("legacy", legacy)
	o.add("fields", describeElems(elems, s))
	b, err := json.MarshalIndent(o, "", "  ")
	return append(b, '\n'), err
}

// arrayElems returns the elements of the msgpack array body, without its
// header.
func arrayElems(t *testing.T, body []byte) []byte {
	t.Helper()
	r := reader{b: body}
	if _, err := r.arrayLen(); err != nil {
		t.Fatal(err)
	}
	return body[r.off:]
}

// nestedList names the list elements annotate shows one entry a line.
var nestedList = map[string]bool{"entries": true, "kvs": true, "status": true, "sessions": true, "locks": true, "events": true,
	"compares": true, "then_ops": true, "else_ops": true, "txn_results": true, "users": true, "roles": true}

// annotate renders a frame as hex, one element per line, with comments.
func annotate(title string, frame []byte, names []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n# Frame: 4-byte big-endian body length, then the msgpack body; one element per line.\n", title)
	line := func(p []byte, indent, comment string) {
		h := indent + hexBytes(p)
		fmt.Fprintf(&b, "%-40s # %s\n", h, comment)
	}
	line(frame[:4], "", fmt.Sprintf("body length = %d", len(frame)-4))
	r := reader{b: frame[4:]}
	n, _ := r.arrayLen()
	line(r.b[:r.off], "", fmt.Sprintf("array of %d elements", n))
	for i := 0; i < n; i++ {
		name := fmt.Sprint(i)
		if i < len(names) {
			name = names[i]
		}
		start := r.off
		if en, err := (&reader{b: r.b, off: r.off}).arrayLen(); err == nil && en > 0 && nestedList[name] {
			r.arrayLen()
			line(r.b[start:r.off], "", fmt.Sprintf("[%d] %s: array of %d", i, name, en))
			for j := 0; j < en; j++ {
				s := r.off
				r.skip()
				line(r.b[s:r.off], "  ", fmt.Sprintf("  %s[%d] = %s", name, j, render(r.b[s:r.off])))
			}
			continue
		}
		r.skip()
		p := r.b[start:r.off]
		line(p, "", fmt.Sprintf("[%d] %s = %s%s", i, name, render(p), describe(name, p)))
	}
	return b.String()
}

func hexBytes(p []byte) string {
	parts := make([]string, len(p))
	for i, c := range p {
		parts[i] = fmt.Sprintf("%02x", c)
	}
	return strings.Join(parts, " ")
}

// render shows one msgpack value Python-style: b'..' for bin, '..' for str;
// bin that is not printable text as x'..' in hex.
func render(p []byte) string {
	var v any
	if err := msgpack.Unmarshal(p, &v); err != nil {
		return "?" + err.Error()
	}
	var show func(v any) string
	show = func(v any) string {
		switch v := v.(type) {
		case nil:
			return "nil"
		case []byte:
			if !utf8.Valid(v) || strings.ContainsFunc(string(v), unicode.IsControl) {
				return fmt.Sprintf("x'%x'", v) // binary: hex, as a SQL blob literal
			}
			return "b'" + string(v) + "'"
		case string:
			return "'" + escapeControls(v) + "'"
		case []any:
			var parts []string
			for _, e := range v {
				parts = append(parts, show(e))
			}
			return "[" + strings.Join(parts, ", ") + "]"
		}
		return fmt.Sprint(v)
	}
	return show(v)
}

// escapeControls writes control characters the way Python's repr does
// ('jobs/b\x00', a paged list's next key), so no golden file holds a raw
// NUL.
func escapeControls(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case !unicode.IsControl(r):
			b.WriteRune(r)
		case r < 0x100:
			fmt.Fprintf(&b, "\\x%02x", r)
		default:
			fmt.Fprintf(&b, "\\u%04x", r)
		}
	}
	return b.String()
}

// describe names enumerated values.
func describe(name string, p []byte) string {
	r := reader{b: p}
	v, err := r.uint(255)
	if err != nil {
		return ""
	}
	switch {
	case name == "frame_type":
		return " (" + FrameType(v).String() + ")"
	case name == "type":
		return " (" + paxos.MsgType(v).String() + ")"
	case name == "op":
		return " (" + Op(v).String() + ")"
	case name == "err":
		return " (" + ErrCode(v).String() + ")"
	}
	return ""
}

// TestProtocolDoc keeps docs/PROTOCOL.md in step with the code: each layout
// table lists the fields in code order, and the worked examples are the
// golden files (-update rewrites them).
func TestProtocolDoc(t *testing.T) {
	raw, err := os.ReadFile(protoDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	tables := map[string][]string{
		"hello":       helloNames,
		"message":     messageNames,
		"entry":       entryNames,
		"request":     frameNames(requestFields),
		"response":    frameNames(responseFields),
		"kv":          fieldNames(kvFields),
		"node_status": fieldNames(nodeStatusFields),
		"session":     fieldNames(sessionInfoFields),
		"lock":        fieldNames(lockInfoFields),
		"leader":      fieldNames(leaderInfoFields),
		"watch_event": fieldNames(watchEventFields),
		"compare":     fieldNames(compareFields),
		"txn_op":      fieldNames(txnOpFields),
		"txn_result":  fieldNames(txnResultFields),
		"user":        fieldNames(userInfoFields),
		"role":        fieldNames(roleInfoFields),
		"role_perm":   fieldNames(rolePermFields),
		"member":      fieldNames(memberInfoFields),
	}
	for name, want := range tables {
		body, ok := between(doc, "<!-- fields:"+name+" -->", "<!-- /fields -->")
		if !ok {
			t.Errorf("docs: no table <!-- fields:%s -->", name)
			continue
		}
		var got []string
		for _, row := range strings.Split(body, "\n") {
			cells := strings.Split(row, "|")
			if len(cells) > 3 && strings.HasPrefix(strings.TrimSpace(cells[2]), "`") {
				got = append(got, strings.Trim(strings.TrimSpace(cells[2]), "`"))
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("docs: table %s lists %v, code has %v", name, got, want)
		}
	}
	changed := false
	for _, g := range goldens {
		text, err := os.ReadFile(filepath.Join(goldenDir, g.file))
		if err != nil {
			t.Fatal(err)
		}
		start := "<!-- golden:" + g.file + " -->"
		body, ok := between(doc, start, "<!-- /golden -->")
		if !ok {
			continue // not every golden frame is shown
		}
		want := "\n```text\n" + string(text) + "```\n"
		if body == want {
			continue
		}
		if !updating() {
			t.Errorf("docs: the example %s differs from %s/%s (run go test ./wire -update)", g.file, goldenDir, g.file)
			continue
		}
		i := strings.Index(doc, start) + len(start)
		doc = doc[:i] + want + doc[i+len(body):]
		changed = true
	}
	if changed {
		if err := os.WriteFile(protoDoc, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func between(s, start, end string) (string, bool) {
	i := strings.Index(s, start)
	if i < 0 {
		return "", false
	}
	rest := s[i+len(start):]
	j := strings.Index(rest, end)
	if j < 0 {
		return "", false
	}
	return rest[:j], true
}
