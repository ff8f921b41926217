package main

// The output formats of the client commands (-w simple, the default, or
// -w json) and every JSON shape they print, in one place so that one
// schema rule holds for all (docs/CLI.md): snake_case field names; keys
// as strings; a value as "value" when it is valid UTF-8, else as
// "value_base64"; revisions, tokens, ids and sizes as numbers. A command
// prints one JSON object (a stream, one object per line); an error is
// {"error": "..."} on stderr, with the exit status of the simple format.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/spf13/pflag"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/internal/cli"
	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/service"
	"github.com/paxosd/paxosd/wire"
)

// The output formats -w takes.
const (
	formatSimple = "simple"
	formatJSON   = "json"
)

// output is where a client command prints its data, and in which format.
// The zero format is simple.
type output struct {
	w      io.Writer
	format string
}

// register adds -w/--write-out to fs.
func (o *output) register(fs *pflag.FlagSet) {
	fs.StringVarP(&o.format, "write-out", "w", formatSimple, "output format: simple or json (docs/CLI.md)")
}

// check refuses a format other than simple and json: a usage error.
func (o *output) check() error {
	switch o.format {
	case "", formatSimple, formatJSON:
		return nil
	}
	return fmt.Errorf("%w: unknown output format %q (want simple or json)", cli.ErrUsage, o.format)
}

// json reports whether the command prints JSON.
func (o *output) json() bool { return o.format == formatJSON }

// print writes v as one line of JSON.
func (o *output) print(v any) error { return writeJSONLine(o.w, v) }

func writeJSONLine(w io.Writer, v any) error {
	enc := json.NewEncoder(w) // one line, with its newline
	enc.SetEscapeHTML(false)  // keys and values as they are: "a<b", not "a\u003cb"
	return enc.Encode(v)
}

// parseOutput parses a command's flags and checks its -w.
func parseOutput(fs *pflag.FlagSet, args []string, o *output) error {
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	return o.check()
}

// jsonRequested reports whether the command line asks for -w json, read
// before any command parses it, so that an error is an {"error": ...}
// object even when the command line fails to parse. It reads the flags as
// pflag would (the last -w wins; nothing after "--", a COMMAND's
// arguments), except that it cannot know which other flags take a value:
// "--value -w json" (a value that is "-w") reads as -w json.
func jsonRequested(args []string) bool {
	format := ""
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return format == formatJSON
		case a == "-w" || a == "--write-out":
			if i+1 < len(args) {
				format = args[i+1]
				i++
			}
		case strings.HasPrefix(a, "--write-out="):
			format = strings.TrimPrefix(a, "--write-out=")
		case strings.HasPrefix(a, "-w") && !strings.HasPrefix(a, "--"):
			format = strings.TrimPrefix(strings.TrimPrefix(a, "-w"), "=")
		}
	}
	return format == formatJSON
}

// printError is how run reports a failed command: a line "paxosd: MSG"
// (prefix "paxosd: " or "paxosd: error: "), or {"error": "MSG"} in json.
func printError(stderr io.Writer, asJSON bool, prefix, msg string) {
	if asJSON {
		writeJSONLine(stderr, errorJSON{Error: msg})
		return
	}
	fmt.Fprintln(stderr, prefix+msg)
}

type errorJSON struct {
	Error string `json:"error"`
}

// valueJSON is a value as the schema has it: "value" when it is valid
// UTF-8 (an empty value too), else "value_base64" (standard encoding, with
// padding). Embedded in a shape, its field sits beside the others; with
// neither set (noValue), the shape has no value at all.
type valueJSON struct {
	Value       *string `json:"value,omitempty"`
	ValueBase64 *string `json:"value_base64,omitempty"`
}

func newValue(b []byte) valueJSON {
	if utf8.Valid(b) {
		s := string(b)
		return valueJSON{Value: &s}
	}
	s := base64.StdEncoding.EncodeToString(b)
	return valueJSON{ValueBase64: &s}
}

// noValue is a shape's value left out (kv ls --keys-only, a deleted key).
var noValue = valueJSON{}

// kvJSON is a key with its value and revisions (kv get, ls, watch). An
// existing key always has the create revision and version (both >= 1); a
// deleted key in a watch event has only its key and, as mod_revision, the
// revision of the deletion.
type kvJSON struct {
	Key string `json:"key"`
	valueJSON
	CreateRevision uint64 `json:"create_revision,omitempty"`
	ModRevision    uint64 `json:"mod_revision"`
	Version        uint64 `json:"version,omitempty"`
}

func newKV(kv client.KV, withValue bool) kvJSON {
	out := kvJSON{Key: kv.Key, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision, Version: kv.Version}
	if withValue {
		out.valueJSON = newValue(kv.Value)
	}
	return out
}

// kvPutJSON is kv put's answer: the revision of the change.
type kvPutJSON struct {
	Key      string `json:"key"`
	Revision uint64 `json:"revision"`
}

// kvDelJSON is kv del's answer: how many keys went (1; a missing key is
// an error); with --prefix, prefix true and how many keys started with
// it (0 is no error).
type kvDelJSON struct {
	Key     string `json:"key"`
	Prefix  bool   `json:"prefix,omitempty"`
	Deleted int    `json:"deleted"`
}

// kvCASJSON is a successful kv cas's answer: the pair it replaced (left
// out when the key did not exist). A failed comparison is an error.
type kvCASJSON struct {
	Key       string  `json:"key"`
	Succeeded bool    `json:"succeeded"`
	PrevKV    *kvJSON `json:"prev_kv,omitempty"`
}

// kvListJSON is kv ls's answer: the keys (with --keys-only, without
// their values), how many, the store revision they were read at (left out
// by a node older than protocol 4), and whether keys remain after the
// last one (--limit stopped the listing: continue with --from and the
// last key).
type kvListJSON struct {
	KVs      []kvJSON `json:"kvs"`
	Count    int      `json:"count"`
	Revision uint64   `json:"revision,omitempty"`
	More     bool     `json:"more"`
}

// kvCountJSON is kv ls --count-only's answer.
type kvCountJSON struct {
	Count    int    `json:"count"`
	Revision uint64 `json:"revision,omitempty"`
}

// eventJSON is one change a watch reports, one per line: type "put" or
// "delete", the revision of the change, the pair after it and, with
// --prev-kv, the pair before it (left out when the key did not exist).
type eventJSON struct {
	Type     string  `json:"type"`
	Revision uint64  `json:"revision"`
	KV       kvJSON  `json:"kv"`
	PrevKV   *kvJSON `json:"prev_kv,omitempty"`
}

func newEvent(e client.Event, prevKV bool) eventJSON {
	out := eventJSON{Type: "put", Revision: e.KV.ModRevision, KV: newKV(e.KV, true)}
	if e.Type == client.EventDelete {
		out.Type, out.KV = "delete", newKV(e.KV, false)
	}
	if prevKV && e.PrevKV.Key != "" {
		p := newKV(e.PrevKV, true)
		out.PrevKV = &p
	}
	return out
}

// progressJSON is kv watch --progress's line for a progress notification:
// every change of the watched keys up to the revision was printed.
type progressJSON struct {
	ProgressRevision uint64 `json:"progress_revision"`
}

// leaderJSON is an election's state after one change (elect --leader,
// --observe, and an elected campaign): session 0 is "no leader".
type leaderJSON struct {
	Election string `json:"election"`
	Seq      uint64 `json:"seq"`
	Session  uint64 `json:"session"`
	Term     uint64 `json:"term"`
	valueJSON
	Revision uint64 `json:"revision"`
}

func newLeader(l client.Leader) leaderJSON {
	return leaderJSON{Election: l.Election, Seq: l.Seq, Session: l.Session, Term: l.Term, valueJSON: newValue(l.Value), Revision: l.Revision}
}

// lockHeldJSON is what paxosd lock NAME prints once it holds the lock.
type lockHeldJSON struct {
	Name    string `json:"name"`
	Token   uint64 `json:"token"`
	Session uint64 `json:"session"`
}

// lockJSON is one lock of lock ls: holder 0 is a free lock.
type lockJSON struct {
	Name         string   `json:"name"`
	Holder       uint64   `json:"holder"`
	Token        uint64   `json:"token"`
	Waiters      []uint64 `json:"waiters"`
	DelayUntilMs uint64   `json:"delay_until_ms"`
}

type locksJSON struct {
	Locks []lockJSON `json:"locks"`
}

func newLock(l wire.LockInfo) lockJSON {
	return lockJSON{Name: l.Name, Holder: l.Holder, Token: l.Token, Waiters: nonNil(l.Waiters), DelayUntilMs: l.DelayUntilMs}
}

// sessionJSON is one session of session ls, and the session session
// revoke ended (what it held then).
type sessionJSON struct {
	ID          uint64   `json:"id"`
	TTLMs       uint64   `json:"ttl_ms"`
	RemainingMs uint64   `json:"remaining_ms"`
	Locks       []string `json:"locks"`
	Waiting     []string `json:"waiting"`
	Elections   []string `json:"elections"`
}

type sessionsJSON struct {
	Sessions []sessionJSON `json:"sessions"`
}

func newSession(s wire.SessionInfo) sessionJSON {
	return sessionJSON{ID: s.ID, TTLMs: s.TTLMs, RemainingMs: s.RemainingMs,
		Locks: nonNil(s.Locks), Waiting: nonNil(s.Waiting), Elections: nonNil(s.Elections)}
}

// memberJSON is one member of status: its answer, or (error set) why it
// gave none, with only its id (when another member named it) and address.
type memberJSON struct {
	ID       paxos.NodeID `json:"id,omitempty"`
	Endpoint string       `json:"endpoint"`
	*memberStateJSON
	Error string `json:"error,omitempty"`
}

type memberStateJSON struct {
	Role    string       `json:"role"`
	Ballot  ballotJSON   `json:"ballot"`
	Leader  paxos.NodeID `json:"leader"` // 0: it knows of none
	Commit  paxos.Slot   `json:"commit"`
	Applied paxos.Slot   `json:"applied"`
}

type ballotJSON struct {
	Round uint64       `json:"round"`
	Node  paxos.NodeID `json:"node"`
}

type statusJSON struct {
	Members []memberJSON `json:"members"`
}

func newMember(m client.MemberStatus) memberJSON {
	out := memberJSON{ID: m.ID, Endpoint: m.Endpoint}
	if m.Err != nil {
		out.Error = m.Err.Error()
		return out
	}
	s := m.Status
	out.ID = s.ID
	out.memberStateJSON = &memberStateJSON{Role: s.Role, Ballot: ballotJSON{s.Ballot.Round, s.Ballot.Node},
		Leader: s.Leader, Commit: s.Commit, Applied: s.Applied}
	return out
}

// quotaJSON is quota get's answer (set false: the default, not yet
// enforced), and quota set's (quota_bytes only).
type quotaJSON struct {
	UsedBytes  *uint64 `json:"used_bytes,omitempty"`
	QuotaBytes uint64  `json:"quota_bytes"`
	Set        *bool   `json:"set,omitempty"`
}

// transferJSON is leader transfer's answer: who leads, and how long the
// handover took.
type transferJSON struct {
	Leader     paxos.NodeID `json:"leader"`
	HandoverMs int64        `json:"handover_ms"`
}

// versionJSON is paxosd version's answer.
type versionJSON struct {
	Version      string `json:"version"`
	Commit       string `json:"commit"`
	Go           string `json:"go"`
	WireProtocol uint32 `json:"wire_protocol"`
}

// nonNil makes an empty list [] rather than null.
func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}

// txnJSON is paxosd txn's answer: which branch ran, the revision after
// it, and one result per operation of that branch.
type txnJSON struct {
	Succeeded bool            `json:"succeeded"`
	Revision  uint64          `json:"revision"`
	Results   []txnResultJSON `json:"results"`
}

// txnResultJSON is one operation's result: op is put, del or get (with
// prefix true for a del or get of a prefix). A put has prev_kv, the pair
// it replaced (left out when the key was new); a del, deleted, the keys
// it removed; a get, kvs (none, one, or with prefix every pair listed)
// and more, when --limit cut the listing short.
type txnResultJSON struct {
	Op      string    `json:"op"`
	Key     string    `json:"key"`
	Prefix  bool      `json:"prefix,omitempty"`
	PrevKV  *kvJSON   `json:"prev_kv,omitempty"`
	Deleted *uint64   `json:"deleted,omitempty"`
	KVs     *[]kvJSON `json:"kvs,omitempty"`
	More    bool      `json:"more,omitempty"`
}

func newTxn(resp *client.TxnResponse, ops []txnOpLine) txnJSON {
	out := txnJSON{Succeeded: resp.Succeeded, Revision: resp.Revision, Results: make([]txnResultJSON, len(resp.Results))}
	for i, r := range resp.Results {
		op := ops[i]
		j := txnResultJSON{Op: op.kind, Key: op.key, Prefix: op.prefix}
		switch r.Type {
		case wire.TxnPut:
			if r.Found {
				prev := newKV(r.KV, true)
				j.PrevKV = &prev
			}
		case wire.TxnDelete:
			n := r.Deleted
			j.Deleted = &n
		case wire.TxnGet:
			kvs := r.KVs
			if !op.prefix && r.Found {
				kvs = []client.KV{r.KV}
			}
			list := make([]kvJSON, len(kvs))
			for k, kv := range kvs {
				list[k] = newKV(kv, true)
			}
			j.KVs = &list
			j.More = r.More
		}
		out.Results[i] = j
	}
	return out
}

// userJSON is a user in 'paxosd user list -w json'.
type userJSON struct {
	Name        string   `json:"name"`
	Roles       []string `json:"roles"`
	HasPassword bool     `json:"has_password"`
}

func usersJSON(us []client.User) any {
	out := make([]userJSON, len(us))
	for i, u := range us {
		out[i] = userJSON{Name: u.Name, Roles: nonNilStrings(u.Roles), HasPassword: u.HasPassword}
	}
	return struct {
		Users []userJSON `json:"users"`
	}{out}
}

// roleJSON is a role in 'paxosd role list -w json'.
type roleJSON struct {
	Name  string     `json:"name"`
	Perms []permJSON `json:"permissions"`
}

type permJSON struct {
	Prefix string `json:"prefix"`
	Perm   string `json:"permission"` // read, write, readwrite
}

func rolesJSON(rs []client.Role) any {
	out := make([]roleJSON, len(rs))
	for i, r := range rs {
		out[i] = roleJSON{Name: r.Name, Perms: make([]permJSON, len(r.Perms))}
		for j, g := range r.Perms {
			out[i].Perms[j] = permJSON{Prefix: g.Prefix, Perm: g.Perm.String()}
		}
	}
	return struct {
		Roles []roleJSON `json:"roles"`
	}{out}
}

// authStatusJSON is 'paxosd auth status -w json'.
type authStatusJSON struct {
	Enabled bool   `json:"enabled"`
	User    string `json:"user"`
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// snapshotInfoJSON is what a backup holds (paxosd snapshot save and
// status).
type snapshotInfoJSON struct {
	Slot        uint64 `json:"slot"`
	Revision    uint64 `json:"revision"`
	Keys        int    `json:"keys"`
	SizeBytes   uint64 `json:"size_bytes"`
	FileBytes   int64  `json:"file_bytes"`
	CRC32C      string `json:"crc32c"`
	ClusterUUID string `json:"cluster_uuid"`
	Level       uint64 `json:"level"`
	Fence       uint64 `json:"fence"`
	Sessions    int    `json:"sessions"`
	Locks       int    `json:"locks"`
	Elections   int    `json:"elections"`
}

func snapshotJSON(i service.BackupInfo) snapshotInfoJSON {
	return snapshotInfoJSON{
		Slot: uint64(i.Slot), Revision: i.Revision, Keys: i.Keys, SizeBytes: i.Size, FileBytes: i.FileBytes,
		CRC32C: fmt.Sprintf("%08x", i.CRC), ClusterUUID: fmt.Sprintf("%x", i.ClusterID), Level: i.Level, Fence: i.Fence,
		Sessions: i.Sessions, Locks: i.Locks, Elections: i.Elections,
	}
}

// snapshotSaveJSON: paxosd snapshot save -w json.
type snapshotSaveJSON struct {
	File string `json:"file"`
	snapshotInfoJSON
	Endpoint string `json:"endpoint"`
	TookMs   uint64 `json:"took_ms"`
}

// snapshotStatusJSON: paxosd snapshot status -w json.
type snapshotStatusJSON struct {
	File string `json:"file"`
	snapshotInfoJSON
}

// snapshotRestoreJSON: paxosd snapshot restore -w json.
type snapshotRestoreJSON struct {
	File                 string `json:"file"`
	DataDir              string `json:"data_dir"`
	ID                   uint32 `json:"id"`
	ClusterUUID          string `json:"cluster_uuid"`
	Slot                 uint64 `json:"slot"`
	Keys                 int    `json:"keys"`
	Revision             uint64 `json:"revision"`
	Fence                uint64 `json:"fence"`
	StateHash            string `json:"state_hash"`
	SessionsEnded        int    `json:"sessions_ended"`
	LocksReleased        int    `json:"locks_released"`
	WaitersDropped       int    `json:"waiters_dropped"`
	LeadersDropped       int    `json:"leaders_dropped"`
	CandidatesDropped    int    `json:"candidates_dropped"`
	EphemeralKeysDeleted int    `json:"ephemeral_keys_deleted"`
}
