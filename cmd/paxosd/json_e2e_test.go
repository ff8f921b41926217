package main

// Tests of -w json (docs/CLI.md) and of the kv commands' reads and writes
// (kv get's revisions, kv ls --from and --count-only, kv put KEY -, kv
// watch --prev-kv): an in-process cluster (service/servicetest), the CLI
// through runStdin, and for the streams (kv watch, elect --observe) and the
// held lock this test binary run as paxosd (TestMain, PAXOSD_TEST_CHILD).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/service/servicetest"
	"github.com/paxosd/paxosd/wire"
)

// cliIn runs paxosd in-process against the endpoints eps, with stdin.
func cliIn(t *testing.T, eps string, stdin []byte, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runStdin(append(args, "--endpoints", eps, "--timeout", "10s"), bytes.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// cliOK is cliIn for a command that must succeed; it returns stdout.
func cliOK(t *testing.T, eps string, stdin []byte, args ...string) string {
	t.Helper()
	code, out, errOut := cliIn(t, eps, stdin, args...)
	if code != 0 {
		t.Fatalf("paxosd %s: exit %d, stderr %q", strings.Join(args, " "), code, errOut)
	}
	return out
}

// obj is one decoded JSON object, numbers kept as json.Number so that a
// test tells a number from a string.
type obj map[string]any

// decodeObj decodes out, which must be exactly one line holding one JSON
// object.
func decodeObj(t *testing.T, what, out string) obj {
	t.Helper()
	if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
		t.Fatalf("%s: want one line of JSON, got %q", what, out)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	var m obj
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("%s: %v in %q", what, err, out)
	}
	return m
}

// num is field f, which must be a JSON number (a whole one).
func (m obj) num(t *testing.T, f string) uint64 {
	t.Helper()
	n, ok := m[f].(json.Number)
	if !ok {
		t.Fatalf("%q is %#v, want a number, in %v", f, m[f], m)
	}
	var v uint64
	if err := json.Unmarshal([]byte(n), &v); err != nil {
		t.Fatalf("%q = %s: %v", f, n, err)
	}
	return v
}

// str is field f, which must be a JSON string.
func (m obj) str(t *testing.T, f string) string {
	t.Helper()
	s, ok := m[f].(string)
	if !ok {
		t.Fatalf("%q is %#v, want a string, in %v", f, m[f], m)
	}
	return s
}

// sub is field f, which must be a JSON object.
func (m obj) sub(t *testing.T, f string) obj {
	t.Helper()
	o, ok := m[f].(map[string]any)
	if !ok {
		t.Fatalf("%q is %#v, want an object, in %v", f, m[f], m)
	}
	return o
}

// list is field f, which must be a JSON array (not null).
func (m obj) list(t *testing.T, f string) []any {
	t.Helper()
	l, ok := m[f].([]any)
	if !ok {
		t.Fatalf("%q is %#v, want an array, in %v", f, m[f], m)
	}
	return l
}

func (m obj) has(f string) bool { _, ok := m[f]; return ok }

// TestKVGetPutDelJSON: kv put -w json says the revision; kv get -w json
// has the value (as value_base64 when it is not UTF-8) and the create and
// mod revisions and version; kv put KEY - takes the value from stdin as it
// is; kv del -w json; an error in json is {"error": ...} on stderr alone,
// with the simple format's exit status.
func TestKVGetPutDelJSON(t *testing.T) {
	eps := servicetest.Start(t, 1).Endpoints[0]

	binary := []byte{0xff, 0xfe, 'a', 0x00, '\n'}
	put := decodeObj(t, "put -", cliOK(t, eps, binary, "kv", "put", "k", "-", "-w", "json"))
	rev1 := put.num(t, "revision")
	if put.str(t, "key") != "k" || rev1 == 0 {
		t.Errorf("kv put -w json = %v, want key k and a revision", put)
	}
	get := decodeObj(t, "get", cliOK(t, eps, nil, "kv", "get", "k", "-w", "json"))
	if get.has("value") {
		t.Errorf("a non-UTF-8 value came out as \"value\": %v", get)
	}
	if b, err := base64.StdEncoding.DecodeString(get.str(t, "value_base64")); err != nil || !bytes.Equal(b, binary) {
		t.Errorf("value_base64 decodes to %q (%v), want the bytes put from stdin, %q", b, err, binary)
	}
	if get.str(t, "key") != "k" || get.num(t, "create_revision") != rev1 || get.num(t, "mod_revision") != rev1 || get.num(t, "version") != 1 {
		t.Errorf("kv get -w json = %v, want create and mod revision %d, version 1", get, rev1)
	}
	if out := cliOK(t, eps, nil, "kv", "get", "k"); out != string(binary)+"\n" {
		t.Errorf("kv get (simple) = %q, want the raw bytes and a newline", out)
	}

	// A second put, UTF-8 from stdin, newline kept: the version and mod
	// revision move, the create revision stays.
	rev2 := decodeObj(t, "put -", cliOK(t, eps, []byte("héllo <&>\n"), "kv", "put", "k", "-", "-w", "json")).num(t, "revision")
	get = decodeObj(t, "get", cliOK(t, eps, nil, "kv", "get", "k", "--write-out", "json"))
	if get.str(t, "value") != "héllo <&>\n" || get.has("value_base64") {
		t.Errorf("a UTF-8 value: %v, want \"value\" only, as put", get)
	}
	if rev2 <= rev1 || get.num(t, "create_revision") != rev1 || get.num(t, "mod_revision") != rev2 || get.num(t, "version") != 2 {
		t.Errorf("after a second put at %d: %v, want create_revision %d, mod_revision %d, version 2", rev2, get, rev1, rev2)
	}
	// An empty value is "value": "", not left out.
	cliOK(t, eps, nil, "kv", "put", "empty", "-")
	if get := decodeObj(t, "get", cliOK(t, eps, nil, "kv", "get", "empty", "-w=json")); get["value"] != "" {
		t.Errorf("an empty value from empty stdin: %v, want \"value\": \"\"", get)
	}
	if out := cliOK(t, eps, nil, "kv", "put", "plain", "v"); out != "OK\n" {
		t.Errorf("kv put (simple) = %q, want OK", out)
	}

	del := decodeObj(t, "del", cliOK(t, eps, nil, "kv", "del", "k", "-w", "json"))
	if del.str(t, "key") != "k" || del.num(t, "deleted") != 1 {
		t.Errorf("kv del -w json = %v, want key k, deleted 1", del)
	}
	code, out, errOut := cliIn(t, eps, nil, "kv", "get", "k", "-w", "json")
	if code != 1 || out != "" {
		t.Errorf("kv get of a deleted key -w json: exit %d, stdout %q; want exit 1, nothing on stdout", code, out)
	}
	if e := decodeObj(t, "error", errOut); e.str(t, "error") != "key not found: k" || len(e) != 1 {
		t.Errorf("the error object is %v, want {\"error\": \"key not found: k\"}", e)
	}
	// The same error in the simple format, for comparison.
	if code, _, errOut := cliIn(t, eps, nil, "kv", "get", "k"); code != 1 || errOut != "paxosd: error: key not found: k\n" {
		t.Errorf("kv get of a deleted key: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := cliIn(t, eps, nil, "kv", "del", "k", "-w", "json"); code != 1 || decodeObj(t, "error", errOut).str(t, "error") != "key not found: k" {
		t.Errorf("kv del of a missing key -w json: exit %d, stderr %q", code, errOut)
	}
}

// TestKVListJSON: kv ls --limit says whether more keys remain, --from
// continues after a key (present or not), --count-only counts, and the
// JSON form has kvs (an empty array when there are none), count, the
// revision read at, and more.
func TestKVListJSON(t *testing.T) {
	eps := servicetest.Start(t, 1).Endpoints[0]
	for _, k := range []string{"ls/a", "ls/b", "ls/c", "ls/d", "ls/e", "lt/x"} {
		cliOK(t, eps, nil, "kv", "put", k, "v"+k[len(k)-1:])
	}
	keys := func(m obj) []string {
		var out []string
		for _, kv := range m.list(t, "kvs") {
			out = append(out, obj(kv.(map[string]any)).str(t, "key"))
		}
		return out
	}

	first := decodeObj(t, "ls --limit 2", cliOK(t, eps, nil, "kv", "ls", "ls/", "--limit", "2", "-w", "json"))
	if got := keys(first); !slices.Equal(got, []string{"ls/a", "ls/b"}) || first.num(t, "count") != 2 || first["more"] != true || first.num(t, "revision") == 0 {
		t.Errorf("kv ls ls/ --limit 2 -w json = %v, want ls/a, ls/b, count 2, more, a revision", first)
	}
	kv0 := obj(first.list(t, "kvs")[0].(map[string]any))
	if kv0.str(t, "value") != "va" || kv0.num(t, "create_revision") == 0 || kv0.num(t, "mod_revision") == 0 || kv0.num(t, "version") != 1 {
		t.Errorf("a listed key: %v, want value va with its revisions and version 1", kv0)
	}
	last := decodeObj(t, "ls --from", cliOK(t, eps, nil, "kv", "ls", "ls/", "--from", "ls/d", "-w", "json"))
	if got := keys(last); !slices.Equal(got, []string{"ls/e"}) || last["more"] != false || last.num(t, "count") != 1 {
		t.Errorf("kv ls ls/ --from ls/d -w json = %v, want ls/e alone and no more", last)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"ls/", "--from", "ls/b", "--limit", "2"}, "ls/c\tvc\nls/d\tvd\n"},
		{[]string{"ls/", "--from", "ls/bb", "--keys-only"}, "ls/c\nls/d\nls/e\n"}, // after a key that is not there
		{[]string{"ls/", "--from", "a", "--keys-only"}, "ls/a\nls/b\nls/c\nls/d\nls/e\n"},
		{[]string{"ls/", "--from", "ls/e"}, ""},
		{[]string{"ls/", "--from", "m"}, ""},
		{[]string{"ls/", "--count-only"}, "5\n"},
		{[]string{"ls/", "--count-only", "--from", "ls/b"}, "3\n"},
		{[]string{"--count-only"}, "6\n"},
	} {
		if got := cliOK(t, eps, nil, append([]string{"kv", "ls"}, tc.args...)...); got != tc.want {
			t.Errorf("kv ls %s = %q, want %q", strings.Join(tc.args, " "), got, tc.want)
		}
	}

	count := decodeObj(t, "count", cliOK(t, eps, nil, "kv", "ls", "ls/", "--count-only", "--from", "ls/a", "-w", "json"))
	if count.num(t, "count") != 4 || count.has("kvs") || count.num(t, "revision") == 0 {
		t.Errorf("kv ls --count-only -w json = %v, want count 4, a revision, no kvs", count)
	}
	ko := decodeObj(t, "keys-only", cliOK(t, eps, nil, "kv", "ls", "lt/", "--keys-only", "-w", "json"))
	if kv := obj(ko.list(t, "kvs")[0].(map[string]any)); kv.str(t, "key") != "lt/x" || kv.has("value") || kv.has("value_base64") || kv.num(t, "mod_revision") == 0 {
		t.Errorf("kv ls --keys-only -w json: %v, want the key and revisions, no value", kv)
	}
	none := decodeObj(t, "empty", cliOK(t, eps, nil, "kv", "ls", "none/", "-w", "json"))
	if len(none.list(t, "kvs")) != 0 || none.num(t, "count") != 0 || none["more"] != false {
		t.Errorf("an empty listing -w json = %v, want kvs [], count 0", none)
	}
}

// TestOutputUsageErrors: a bad -w, and the kv flags that do not apply or
// do not go together, are usage errors (exit 2, one line) without
// contacting a cluster; with -w json the line is an {"error": ...}
// object, even when the command line fails before -w is read. An error
// the cluster side causes (nothing listening) keeps exit 1 in json.
func TestOutputUsageErrors(t *testing.T) {
	t.Setenv("PAXOSD_ENDPOINTS", "127.0.0.1:1") // nothing listens there
	for _, tc := range []struct {
		args []string
		want string // stderr; in json, the "error" field
		json bool
	}{
		{[]string{"kv", "get", "k", "-w", "yaml"}, `paxosd: unknown output format "yaml" (want simple or json)`, false},
		{[]string{"status", "--write-out", "xml"}, `paxosd: unknown output format "xml" (want simple or json)`, false},
		{[]string{"lock", "ls", "-w", "table"}, `paxosd: unknown output format "table" (want simple or json)`, false},
		{[]string{"kv", "ls", "--count-only", "--keys-only"}, "paxosd: kv ls: --count-only and --keys-only do not go together", false},
		{[]string{"kv", "ls", "--count-only", "--limit", "3"}, "paxosd: kv ls: --count-only counts every key; it does not go with --limit", false},
		{[]string{"kv", "ls", "--limit", "-1"}, "paxosd: kv ls: --limit -1 is negative (0 lists every key)", false},
		{[]string{"kv", "get", "k", "--prev-kv"}, "paxosd: kv get: --prev-kv is for kv watch", false},
		{[]string{"kv", "put", "k", "v", "--serializable"}, "paxosd: kv put: --serializable is for kv get and kv ls", false},
		{[]string{"kv", "watch", "k", "--from", "a"}, "paxosd: kv watch: --from is for kv ls", false},
		{[]string{"kv", "put", "k", "-w", "json"}, `kv put takes KEY VALUE (VALUE "-": read it from stdin)`, true},
		{[]string{"kv", "get", "k", "--bogus", "-w", "json"}, "kv get: unknown flag: --bogus (see 'paxosd kv get --help')", true},
		{[]string{"kv", "ls", "--count-only", "--keys-only", "-wjson"}, "kv ls: --count-only and --keys-only do not go together", true},
		{[]string{"elect", "e", "--observe", "--leader", "--write-out=json"}, "elect: --observe and --leader do not go together", true},
	} {
		var out, errb bytes.Buffer
		code := run(tc.args, &out, &errb)
		name := strings.Join(tc.args, " ")
		if code != 2 || out.Len() != 0 {
			t.Errorf("%s: exit %d, stdout %q; want exit 2 and nothing on stdout", name, code, out.String())
		}
		if !tc.json {
			if errb.String() != tc.want+"\n" {
				t.Errorf("%s: stderr %q, want %q", name, errb.String(), tc.want)
			}
			continue
		}
		if e := decodeObj(t, name, errb.String()); e.str(t, "error") != tc.want || len(e) != 1 {
			t.Errorf("%s: stderr %v, want {\"error\": %q}", name, e, tc.want)
		}
	}

	var out, errb bytes.Buffer
	code := run([]string{"kv", "get", "k", "-w", "json", "--timeout", "2s"}, &out, &errb)
	if e := decodeObj(t, "unreachable", errb.String()); code != 1 || !strings.Contains(e.str(t, "error"), "cannot reach any endpoint") {
		t.Errorf("kv get -w json against nothing: exit %d, stderr %q; want exit 1 and the error object", code, errb.String())
	}
}

// TestJSONRequested: the pre-parse that makes a failed command's error
// JSON reads -w as pflag does, and nothing after "--" (a COMMAND's).
func TestJSONRequested(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"get", "k", "-w", "json"}, true},
		{[]string{"-wjson", "get"}, true},
		{[]string{"-w=json"}, true},
		{[]string{"--write-out", "json"}, true},
		{[]string{"--write-out=json"}, true},
		{[]string{"-w", "json", "-w", "simple"}, false},
		{[]string{"-w", "yaml"}, false},
		{[]string{"-w"}, false},
		{[]string{"res", "--", "cmd", "-w", "json"}, false},
		{[]string{"--write-outs", "json"}, false},
		{nil, false},
	} {
		if got := jsonRequested(tc.args); got != tc.want {
			t.Errorf("jsonRequested(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}

// TestJSONShapes: the field names and order of the shapes, byte for byte
// (what docs/CLI.md shows).
func TestJSONShapes(t *testing.T) {
	kv := client.KV{Key: "k", Value: []byte("v"), CreateRevision: 3, ModRevision: 5, Version: 2}
	for _, tc := range []struct {
		v    any
		want string
	}{
		{newKV(kv, true), `{"key":"k","value":"v","create_revision":3,"mod_revision":5,"version":2}`},
		{newKV(client.KV{Key: "k", Value: []byte{0xff}}, true), `{"key":"k","value_base64":"/w==","mod_revision":0}`},
		{newKV(kv, false), `{"key":"k","create_revision":3,"mod_revision":5,"version":2}`},
		{newEvent(client.Event{Type: client.EventDelete, KV: client.KV{Key: "k", ModRevision: 6}, PrevKV: kv}, true),
			`{"type":"delete","revision":6,"kv":{"key":"k","mod_revision":6},"prev_kv":{"key":"k","value":"v","create_revision":3,"mod_revision":5,"version":2}}`},
		{newEvent(client.Event{Type: client.EventPut, KV: kv, PrevKV: kv}, false),
			`{"type":"put","revision":5,"kv":{"key":"k","value":"v","create_revision":3,"mod_revision":5,"version":2}}`},
		{newLeader(client.Leader{Election: "e", Session: 7, Value: []byte("a<b"), Term: 4, Seq: 9, Revision: 12}),
			`{"election":"e","seq":9,"session":7,"term":4,"value":"a<b","revision":12}`},
		{locksJSON{Locks: []lockJSON{newLock(wire.LockInfo{Name: "l", Holder: 7, Token: 4})}},
			`{"locks":[{"name":"l","holder":7,"token":4,"waiters":[],"delay_until_ms":0}]}`},
		{newSession(wire.SessionInfo{ID: 7, TTLMs: 10000, RemainingMs: 9000, Locks: []string{"l"}}),
			`{"id":7,"ttl_ms":10000,"remaining_ms":9000,"locks":["l"],"waiting":[],"elections":[]}`},
		{newMember(client.MemberStatus{Endpoint: "h:1", ID: 3, Err: client.ErrUnavailable}),
			`{"id":3,"endpoint":"h:1","error":"` + client.ErrUnavailable.Error() + `"}`},
		{newMember(client.MemberStatus{Endpoint: "h:1", Status: wire.NodeStatus{ID: 2, Role: "leader", Leader: 2, Commit: 8, Applied: 7}}),
			`{"id":2,"endpoint":"h:1","role":"leader","ballot":{"round":0,"node":0},"leader":2,"commit":8,"applied":7}`},
		{newTxn(&client.TxnResponse{Succeeded: true, Revision: 9, Results: []client.TxnResult{
			{Type: wire.TxnPut, Found: true, KV: kv}, {Type: wire.TxnPut}, {Type: wire.TxnDelete, Deleted: 4},
			{Type: wire.TxnGet, Found: true, KV: kv}, {Type: wire.TxnGet}, {Type: wire.TxnGet, KVs: []client.KV{kv}, More: true},
		}}, []txnOpLine{{"put", "k", false}, {"put", "n", false}, {"del", "p/", true}, {"get", "k", false}, {"get", "m", false}, {"get", "", true}}),
			`{"succeeded":true,"revision":9,"results":[` +
				`{"op":"put","key":"k","prev_kv":{"key":"k","value":"v","create_revision":3,"mod_revision":5,"version":2}},` +
				`{"op":"put","key":"n"},{"op":"del","key":"p/","prefix":true,"deleted":4},` +
				`{"op":"get","key":"k","kvs":[{"key":"k","value":"v","create_revision":3,"mod_revision":5,"version":2}]},` +
				`{"op":"get","key":"m","kvs":[]},` +
				`{"op":"get","key":"","prefix":true,"kvs":[{"key":"k","value":"v","create_revision":3,"mod_revision":5,"version":2}],"more":true}]}`},
		{newTxn(&client.TxnResponse{Revision: 9}, nil), `{"succeeded":false,"revision":9,"results":[]}`},
		{kvDelJSON{Key: "p/", Prefix: true, Deleted: 3}, `{"key":"p/","prefix":true,"deleted":3}`},
	} {
		var b bytes.Buffer
		if err := writeJSONLine(&b, tc.v); err != nil || b.String() != tc.want+"\n" {
			t.Errorf("%T:\n got %s (%v)\nwant %s", tc.v, strings.TrimSpace(b.String()), err, tc.want)
		}
	}
}

// TestPrimitivesJSON: lock ls, session ls, elect --leader, status, quota,
// session revoke and version in json, against a session holding a lock
// and leading an election with a value that is not UTF-8.
func TestPrimitivesJSON(t *testing.T) {
	eps := servicetest.Start(t, 1).Endpoints[0]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := client.New(ctx, eps)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	s, err := cl.NewSession(ctx, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.Lock(ctx, "res")
	if err != nil {
		t.Fatal(err)
	}
	led, err := s.Campaign(ctx, "e1", []byte{0xff, 'x'})
	if err != nil {
		t.Fatal(err)
	}

	locks := decodeObj(t, "lock ls", cliOK(t, eps, nil, "lock", "ls", "-w", "json")).list(t, "locks")
	if len(locks) != 1 {
		t.Fatalf("lock ls -w json: %v, want the one lock", locks)
	}
	lk := obj(locks[0].(map[string]any))
	if lk.str(t, "name") != "res" || lk.num(t, "holder") != s.ID() || lk.num(t, "token") != l.Token || len(lk.list(t, "waiters")) != 0 || lk.num(t, "delay_until_ms") != 0 {
		t.Errorf("lock ls -w json: %v, want res held by session %d with token %d, no waiters", lk, s.ID(), l.Token)
	}
	if got := decodeObj(t, "lock ls PREFIX", cliOK(t, eps, nil, "lock", "ls", "other", "-w", "json")).list(t, "locks"); len(got) != 0 {
		t.Errorf("lock ls other -w json: %v, want no locks", got)
	}

	sessions := decodeObj(t, "session ls", cliOK(t, eps, nil, "session", "ls", "-w", "json")).list(t, "sessions")
	if len(sessions) != 1 {
		t.Fatalf("session ls -w json: %v, want the one session", sessions)
	}
	se := obj(sessions[0].(map[string]any))
	if se.num(t, "id") != s.ID() || se.num(t, "ttl_ms") != 10000 || se.num(t, "remaining_ms") == 0 ||
		!slices.Equal(se.list(t, "locks"), []any{"res"}) || !slices.Equal(se.list(t, "elections"), []any{"e1"}) || len(se.list(t, "waiting")) != 0 {
		t.Errorf("session ls -w json: %v, want session %d, ttl 10 s, holding res, leading e1", se, s.ID())
	}

	lead := decodeObj(t, "elect --leader", cliOK(t, eps, nil, "elect", "e1", "--leader", "-w", "json"))
	if lead.str(t, "election") != "e1" || lead.num(t, "session") != s.ID() || lead.num(t, "term") != led.Term ||
		lead.str(t, "value_base64") != "/3g=" || lead.num(t, "seq") != led.Seq || lead.num(t, "revision") != led.Revision || lead.has("value") {
		t.Errorf("elect e1 --leader -w json: %v, want session %d, term %d, value_base64 /3g=", lead, s.ID(), led.Term)
	}

	st := decodeObj(t, "status", cliOK(t, eps, nil, "status", "-w", "json")).list(t, "members")
	if len(st) != 1 {
		t.Fatalf("status -w json: %v, want one member", st)
	}
	m := obj(st[0].(map[string]any))
	if m.num(t, "id") != 1 || m.str(t, "endpoint") != eps || m.str(t, "role") != "leader" || m.num(t, "leader") != 1 ||
		m.sub(t, "ballot").num(t, "round") == 0 || m.sub(t, "ballot").num(t, "node") != 1 || m.num(t, "commit") == 0 || m.num(t, "applied") == 0 || m.has("error") {
		t.Errorf("status -w json: %v, want node 1 leading, a ballot, commit and applied", m)
	}

	cliOK(t, eps, nil, "kv", "put", "q", "vv")
	q := decodeObj(t, "quota", cliOK(t, eps, nil, "quota", "-w", "json"))
	if _, isBool := q["set"].(bool); q.num(t, "quota_bytes") == 0 || q.num(t, "used_bytes") < 3 || !isBool {
		t.Errorf("quota -w json: %v, want quota_bytes, used_bytes, set", q)
	}

	rv := decodeObj(t, "revoke", cliOK(t, eps, nil, "session", "revoke", uintStr(s.ID()), "-w", "json"))
	if rv.num(t, "id") != s.ID() || !slices.Equal(rv.list(t, "locks"), []any{"res"}) {
		t.Errorf("session revoke -w json: %v, want session %d, which held res", rv, s.ID())
	}
	if got := decodeObj(t, "lock ls", cliOK(t, eps, nil, "lock", "ls", "-w", "json")).list(t, "locks"); len(got) != 0 {
		t.Errorf("lock ls -w json after the revoke: %v, want [] (an empty array, not null)", got)
	}
	code, out, errOut := cliIn(t, eps, nil, "elect", "e1", "--leader", "-w", "json")
	if code != 1 || out != "" || !strings.Contains(decodeObj(t, "no leader", errOut).str(t, "error"), "no leader") {
		t.Errorf("elect --leader -w json with no leader: exit %d, stdout %q, stderr %q; want exit 1 and the error object", code, out, errOut)
	}

	var vout, verr bytes.Buffer
	if code := run([]string{"version", "-w", "json"}, &vout, &verr); code != 0 {
		t.Fatalf("version -w json: exit %d, %q", code, verr.String())
	}
	v := decodeObj(t, "version", vout.String())
	if v.str(t, "version") != version || v.num(t, "wire_protocol") != wire.ProtocolVersion || !strings.HasPrefix(v.str(t, "go"), "go") || !v.has("commit") {
		t.Errorf("version -w json: %v", v)
	}
}

// paxosdProc is this test binary started as paxosd, its stdout read line
// by line.
type paxosdProc struct {
	cmd    *exec.Cmd
	lines  chan string
	stderr *bytes.Buffer
}

func startPaxosd(t *testing.T, args ...string) *paxosdProc {
	t.Helper()
	cmd := exec.Command(testBinary(t), args...)
	cmd.Env = testChildEnv("PAXOSD_TEST_CHILD=paxosd")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &paxosdProc{cmd: cmd, lines: make(chan string, 64), stderr: &bytes.Buffer{}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	go func() {
		defer close(p.lines)
		r := bufio.NewReader(out)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			p.lines <- line
		}
	}()
	return p
}

// next returns the next n lines the process prints.
func (p *paxosdProc) next(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	timeout := time.After(30 * time.Second)
	for len(out) < n {
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatalf("paxosd %s ended after %q: %s", strings.Join(p.cmd.Args[1:], " "), out, p.stderr.String())
			}
			out = append(out, line)
		case <-timeout:
			t.Fatalf("paxosd %s: %d lines in 30 s, want %d: %q %s", strings.Join(p.cmd.Args[1:], " "), len(out), n, out, p.stderr.String())
		}
	}
	return out
}

// TestWatchObserveLockJSON: kv watch --prev-kv prints the previous value
// the server sends (simple and json, one object per line), and without it
// none; elect --observe -w json is one object per change; paxosd lock
// NAME -w json prints the held lock as an object.
func TestWatchObserveLockJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	eps := servicetest.Start(t, 1).Endpoints[0]
	rev := func(args ...string) uint64 {
		return decodeObj(t, "put", cliOK(t, eps, nil, append(args, "-w", "json")...)).num(t, "revision")
	}
	r1 := rev("kv", "put", "w/a", "1")
	r2 := rev("kv", "put", "w/a", "2")
	cliOK(t, eps, nil, "kv", "del", "w/a")
	r4 := rev("kv", "put", "w/b", "x")
	from := []string{"kv", "watch", "w/", "--prefix", "--rev", uintStr(r1), "--endpoints", eps}

	simple := startPaxosd(t, append(from, "--prev-kv")...).next(t, 4)
	want := []string{
		uintStr(r1) + " PUT w/a 1 (new)\n",
		uintStr(r2) + " PUT w/a 2 (was 1)\n",
		" DELETE w/a (was 2)\n",
		uintStr(r4) + " PUT w/b x (new)\n",
	}
	for i := range want {
		if !strings.HasSuffix(simple[i], want[i]) || (i != 2 && simple[i] != want[i]) {
			t.Errorf("kv watch --prev-kv line %d = %q, want %q", i, simple[i], want[i])
		}
	}
	if plain := startPaxosd(t, from...).next(t, 2); plain[1] != uintStr(r2)+" PUT w/a 2\n" {
		t.Errorf("kv watch without --prev-kv: %q, want the line without the previous value", plain[1])
	}

	lines := startPaxosd(t, append(from, "--prev-kv", "-w", "json")...).next(t, 4)
	var evs []obj
	for i, line := range lines {
		evs = append(evs, decodeObj(t, "watch line "+uintStr(uint64(i)), line))
	}
	if e := evs[0]; e.str(t, "type") != "put" || e.num(t, "revision") != r1 || e.sub(t, "kv").str(t, "value") != "1" || e.has("prev_kv") {
		t.Errorf("the put that created w/a: %v, want no prev_kv", e)
	}
	if e := evs[1]; e.str(t, "type") != "put" || e.num(t, "revision") != r2 || e.sub(t, "kv").num(t, "version") != 2 ||
		e.sub(t, "prev_kv").str(t, "value") != "1" || e.sub(t, "prev_kv").num(t, "mod_revision") != r1 {
		t.Errorf("the second put of w/a: %v, want prev_kv value 1 at revision %d", e, r1)
	}
	if e := evs[2]; e.str(t, "type") != "delete" || e.sub(t, "kv").str(t, "key") != "w/a" || e.sub(t, "kv").has("value") ||
		e.sub(t, "kv").num(t, "mod_revision") != e.num(t, "revision") || e.num(t, "revision") <= r2 || e.sub(t, "prev_kv").str(t, "value") != "2" {
		t.Errorf("the delete of w/a: %v, want kv without a value, prev_kv value 2", e)
	}
	if e := evs[3]; e.sub(t, "kv").str(t, "key") != "w/b" || e.sub(t, "kv").str(t, "value") != "x" || e.num(t, "revision") != r4 {
		t.Errorf("the put of w/b: %v", e)
	}
	noPrev := decodeObj(t, "watch", startPaxosd(t, append(from, "-w", "json")...).next(t, 2)[1])
	if noPrev.has("prev_kv") {
		t.Errorf("kv watch -w json without --prev-kv: %v, want no prev_kv", noPrev)
	}

	// A held lock, then an election observed: each one object per line.
	hold := startPaxosd(t, "lock", "held", "-w", "json", "--endpoints", eps)
	h := decodeObj(t, "lock", hold.next(t, 1)[0])
	if h.str(t, "name") != "held" || h.num(t, "token") == 0 || h.num(t, "session") == 0 {
		t.Errorf("paxosd lock held -w json: %v, want name, token, session", h)
	}
	hold.cmd.Process.Signal(syscall.SIGINT)
	if err := hold.cmd.Wait(); err != nil {
		t.Errorf("paxosd lock -w json after SIGINT: %v: %s", err, hold.stderr.String())
	}
	obs := startPaxosd(t, "elect", "e2", "--observe", "-w", "json", "--endpoints", eps)
	camp := startPaxosd(t, "elect", "e2", "--value", "host-a", "-w", "json", "--endpoints", eps)
	elected := decodeObj(t, "elect", camp.next(t, 1)[0])
	change := decodeObj(t, "observe", obs.next(t, 1)[0])
	for _, o := range []obj{elected, change} {
		if o.str(t, "election") != "e2" || o.str(t, "value") != "host-a" || o.num(t, "term") == 0 || o.num(t, "session") == 0 || o.num(t, "seq") != 1 {
			t.Errorf("elect e2 -w json / --observe -w json: %v, want e2 led with value host-a, seq 1", o)
		}
	}
	if elected.num(t, "session") != change.num(t, "session") {
		t.Errorf("the campaign (%v) and the observer (%v) disagree on the leader", elected, change)
	}
}

func uintStr(n uint64) string { return strconv.FormatUint(n, 10) }

// TestCLIDocExamples: every JSON line docs/CLI.md shows parses, and its
// field names, nested ones too, are snake_case, as the rule it states.
func TestCLIDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/CLI.md")
	if err != nil {
		t.Fatal(err)
	}
	snake := regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	var check func(where string, v any)
	check = func(where string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if !snake.MatchString(k) {
					t.Errorf("%s: field %q is not snake_case", where, k)
				}
				check(where, x)
			}
		case []any:
			for _, x := range v {
				check(where, x)
			}
		}
	}
	n := 0
	for i, line := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		n++
		var v any
		where := fmt.Sprintf("docs/CLI.md:%d", i+1)
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Errorf("%s: %v: %s", where, err, line)
			continue
		}
		check(where, v)
	}
	if n < 15 {
		t.Errorf("docs/CLI.md shows %d JSON lines; want one for each command at least", n)
	}
}

// TestKVCAS: kv cas writes only when its one condition holds; a failed
// comparison is exit 1 with a line (or the error object) saying where the
// key is; -w json shows the pair it replaced.
func TestKVCAS(t *testing.T) {
	eps := servicetest.Start(t, 1).Endpoints[0]
	first := decodeObj(t, "cas", cliOK(t, eps, nil, "kv", "cas", "k", "v1", "--if-absent", "-w", "json"))
	if first.str(t, "key") != "k" || first["succeeded"] != true || first.has("prev_kv") {
		t.Errorf("kv cas --if-absent of a new key -w json = %v, want succeeded, no prev_kv", first)
	}
	rev1 := decodeObj(t, "get", cliOK(t, eps, nil, "kv", "get", "k", "-w", "json")).num(t, "mod_revision")
	second := decodeObj(t, "cas", cliOK(t, eps, nil, "kv", "cas", "k", "v2", "--if-mod-rev", uintStr(rev1), "-w", "json"))
	if second["succeeded"] != true || second.sub(t, "prev_kv").str(t, "value") != "v1" || second.sub(t, "prev_kv").num(t, "mod_revision") != rev1 {
		t.Errorf("kv cas --if-mod-rev %d -w json = %v, want prev_kv v1 at %d", rev1, second, rev1)
	}
	rev2 := decodeObj(t, "get", cliOK(t, eps, nil, "kv", "get", "k", "-w", "json")).num(t, "mod_revision")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"k", "x", "--if-absent"}, "paxosd: error: compare failed: k exists (mod revision " + uintStr(rev2) + "); nothing written"},
		{[]string{"k", "x", "--if-mod-rev", uintStr(rev1)}, "paxosd: error: compare failed: k is at mod revision " + uintStr(rev2) + ", not " + uintStr(rev1) + "; nothing written"},
		{[]string{"k", "x", "--if-value", "v1"}, "paxosd: error: compare failed: k holds another value (mod revision " + uintStr(rev2) + "); nothing written"},
		{[]string{"missing", "x", "--if-value", "v1"}, "paxosd: error: compare failed: missing does not exist; nothing written"},
		{[]string{"k", "x"}, "paxosd: kv cas takes one condition: --if-value, --if-mod-rev or --if-absent (0 given)"},
		{[]string{"k", "x", "--if-absent", "--if-value", "v2"}, "paxosd: kv cas takes one condition: --if-value, --if-mod-rev or --if-absent (2 given)"},
		{[]string{"k"}, `paxosd: kv cas takes KEY VALUE (VALUE "-": read it from stdin) and a condition`},
	} {
		code, out, errOut := cliIn(t, eps, nil, append([]string{"kv", "cas"}, tc.args...)...)
		wantCode := 1
		if !strings.HasPrefix(tc.want, "paxosd: error:") {
			wantCode = 2
		}
		if code != wantCode || out != "" || errOut != tc.want+"\n" {
			t.Errorf("kv cas %s: exit %d, stdout %q, stderr %q\nwant exit %d, %q", strings.Join(tc.args, " "), code, out, errOut, wantCode, tc.want)
		}
	}
	if got := cliOK(t, eps, nil, "kv", "get", "k"); got != "v2\n" {
		t.Errorf("after the failed comparisons k = %q, want v2 unchanged", got)
	}
	code, _, errOut := cliIn(t, eps, nil, "kv", "cas", "k", "x", "--if-value", "v1", "-w", "json")
	if code != 1 || !strings.HasPrefix(decodeObj(t, "cas error", errOut).str(t, "error"), "compare failed: k holds another value") {
		t.Errorf("a failed kv cas -w json: exit %d, stderr %q; want exit 1, the error object", code, errOut)
	}
	if out := cliOK(t, eps, []byte{0x80}, "kv", "cas", "k", "-", "--if-value", "v2"); out != "OK\n" {
		t.Errorf("kv cas k - --if-value v2 = %q, want OK", out)
	}
	if got := decodeObj(t, "get", cliOK(t, eps, nil, "kv", "get", "k", "-w", "json")); got.str(t, "value_base64") != "gA==" || got.num(t, "version") != 3 {
		t.Errorf("after kv cas from stdin: %v, want value_base64 gA== (0x80), version 3", got)
	}
	if code, _, errOut := cliIn(t, eps, nil, "kv", "put", "k", "v", "--if-absent"); code != 2 || errOut != "paxosd: kv put: --if-absent is for kv cas\n" {
		t.Errorf("kv put --if-absent: exit %d, %q", code, errOut)
	}
}
