package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/pflag"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/internal/cli"
	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// kvFlags are the flags of the kv subcommands.
type kvFlags struct {
	cf           cli.ClientFlags
	out          output
	serializable bool
	limit        int
	from         string
	keysOnly     bool
	countOnly    bool
	prefix       bool
	fromRev      uint64
	prevKV       bool
	progress     bool
	ifValue      string
	ifModRev     uint64
	ifAbsent     bool
}

func (f *kvFlags) flagSet(name string) *pflag.FlagSet {
	fs := cli.NewFlags(name, "paxosd "+name+" ...")
	f.cf.Register(fs)
	f.out.register(fs)
	fs.BoolVar(&f.serializable, "serializable", false, "get/ls: answer from the contacted node's own state without asking the leader (fast, may be stale)")
	fs.IntVar(&f.limit, "limit", 0, "ls: at most this many keys (0 = all)")
	fs.StringVar(&f.from, "from", "", "ls: start after this key (the last one a --limit listing printed)")
	fs.BoolVar(&f.keysOnly, "keys-only", false, "ls: print keys without values")
	fs.BoolVar(&f.countOnly, "count-only", false, "ls: print how many keys there are, not the keys")
	fs.BoolVar(&f.prefix, "prefix", false, "watch: watch every key starting with KEY; del: delete every key starting with KEY (one transaction) and print how many")
	fs.Uint64Var(&f.fromRev, "rev", 0, "watch: replay the changes since this revision first (0: from now)")
	fs.BoolVar(&f.prevKV, "prev-kv", false, "watch: print each change's previous value too")
	fs.BoolVar(&f.progress, "progress", false, "watch: also print the revision the watch is up to date with, where it starts and whenever the node reports progress on an idle watch (N PROGRESS; -w json: {\"progress_revision\": N})")
	fs.StringVar(&f.ifValue, "if-value", "", "cas: write only if the key holds this value")
	fs.Uint64Var(&f.ifModRev, "if-mod-rev", 0, "cas: write only if the key was last changed at this revision")
	fs.BoolVar(&f.ifAbsent, "if-absent", false, "cas: write only if the key does not exist")
	return fs
}

// kvFlagUse names the subcommands each subcommand-specific flag is for;
// given to another one, it is a usage error rather than ignored.
var kvFlagUse = map[string][]string{
	"serializable": {"get", "ls"},
	"limit":        {"ls"}, "from": {"ls"}, "keys-only": {"ls"}, "count-only": {"ls"},
	"prefix": {"watch", "del"}, "rev": {"watch"}, "prev-kv": {"watch"}, "progress": {"watch"},
	"if-value": {"cas"}, "if-mod-rev": {"cas"}, "if-absent": {"cas"},
}

// check refuses flags that are not sub's, and those that do not go
// together.
func (f *kvFlags) check(fs *pflag.FlagSet, sub string) error {
	var err error
	fs.Visit(func(fl *pflag.Flag) {
		if subs, ok := kvFlagUse[fl.Name]; ok && err == nil && !slices.Contains(subs, sub) {
			err = fmt.Errorf("%w: kv %s: --%s is for kv %s", cli.ErrUsage, sub, fl.Name, strings.Join(subs, " and kv "))
		}
	})
	switch {
	case err != nil:
		return err
	case f.limit < 0:
		return fmt.Errorf("%w: kv ls: --limit %d is negative (0 lists every key)", cli.ErrUsage, f.limit)
	case f.countOnly && f.keysOnly:
		return fmt.Errorf("%w: kv ls: --count-only and --keys-only do not go together", cli.ErrUsage)
	case f.countOnly && f.limit > 0:
		return fmt.Errorf("%w: kv ls: --count-only counts every key; it does not go with --limit", cli.ErrUsage)
	}
	if conds := countTrue(fs.Changed("if-value"), fs.Changed("if-mod-rev"), fs.Changed("if-absent")); sub == "cas" && conds != 1 {
		return fmt.Errorf("%w: kv cas takes one condition: --if-value, --if-mod-rev or --if-absent (%d given)", cli.ErrUsage, conds)
	}
	return nil
}

func countTrue(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// kvSynopsis is what 'paxosd kv --help' prints above the flags.
const kvSynopsis = `paxosd kv put KEY VALUE                  set a key (VALUE "-": read it from stdin)
       paxosd kv get KEY [--serializable]       print a key's value (-w json: with its revisions)
       paxosd kv del KEY [--prefix]             delete a key (--prefix: every key starting with
                                                KEY, in one transaction; prints how many)
       paxosd kv cas KEY VALUE (--if-value OLD | --if-mod-rev N | --if-absent)
                                                set a key if the condition holds (exit 1 if not)
       paxosd kv ls [PREFIX] [--from KEY] [--limit N] [--keys-only | --count-only]
                                                list keys (and values) by prefix
       paxosd kv watch KEY [--prefix] [--rev N] [--prev-kv] [--progress]
                                                print every change of a key or prefix

Every kv command takes -w json (docs/CLI.md).`

func cmdKV(args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		var kf kvFlags
		fs := kf.flagSet("kv")
		fmt.Fprintf(stdout, "Usage: %s\n\nFlags:\n%s", kvSynopsis, fs.FlagUsages())
		return nil
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return fmt.Errorf("%w: kv needs a subcommand: put, get, del, cas, ls or watch (see 'paxosd kv --help')", cli.ErrUsage)
	}
	sub := args[0]
	kf := kvFlags{out: output{w: stdout}}
	fs := kf.flagSet("kv " + sub)
	if err := parseOutput(fs, args[1:], &kf.out); err != nil {
		return err
	}
	want := map[string]int{"put": 2, "get": 1, "del": 1, "cas": 2, "ls": -1, "watch": 1}
	n, ok := want[sub]
	if !ok {
		return fmt.Errorf("%w: unknown kv subcommand %q: want put, get, del, cas, ls or watch", cli.ErrUsage, sub)
	}
	if (n >= 0 && fs.NArg() != n) || (n < 0 && fs.NArg() > 1) {
		return fmt.Errorf("%w: %s", cli.ErrUsage, map[string]string{
			"put": "kv put takes KEY VALUE (VALUE \"-\": read it from stdin)", "get": "kv get takes KEY", "del": "kv del takes KEY", "ls": "kv ls takes at most a PREFIX",
			"cas":   "kv cas takes KEY VALUE (VALUE \"-\": read it from stdin) and a condition",
			"watch": "kv watch takes KEY (with --prefix, a prefix)",
		}[sub])
	}
	if err := kf.check(fs, sub); err != nil {
		return err
	}
	var readOpts []client.ReadOption
	if kf.serializable {
		readOpts = append(readOpts, client.Serializable())
	}
	if sub == "watch" {
		return kvWatch(&kf, fs.Arg(0))
	}
	var value []byte
	if sub == "put" || sub == "cas" {
		// Before connecting: reading stdin does not eat into --timeout.
		v, err := putValue(fs.Arg(1), stdin)
		if err != nil {
			return err
		}
		value = v
	}
	cl, ctx, cancel, err := kf.cf.Connect()
	if err != nil {
		return err
	}
	defer cancel()
	defer cl.Close()
	o := &kf.out
	switch sub {
	case "put":
		rev, err := cl.Put(ctx, fs.Arg(0), value)
		if err != nil {
			return err
		}
		if o.json() {
			return o.print(kvPutJSON{Key: fs.Arg(0), Revision: rev})
		}
		fmt.Fprintln(stdout, "OK")
	case "get":
		kv, err := cl.Get(ctx, fs.Arg(0), readOpts...)
		if err != nil {
			return err
		}
		if o.json() {
			return o.print(newKV(kv, true))
		}
		fmt.Fprintf(stdout, "%s\n", kv.Value)
	case "del":
		if kf.prefix {
			return kvDelPrefix(ctx, cl, fs.Arg(0), o)
		}
		existed, err := cl.Delete(ctx, fs.Arg(0))
		if err != nil {
			return err
		}
		if !existed {
			return fmt.Errorf("%w: %s", client.ErrNotFound, fs.Arg(0))
		}
		if o.json() {
			return o.print(kvDelJSON{Key: fs.Arg(0), Deleted: 1})
		}
		fmt.Fprintln(stdout, "OK")
	case "cas":
		return kvCAS(ctx, cl, fs.Arg(0), value, &kf, fs)
	case "ls":
		return kvList(ctx, cl, fs.Arg(0), &kf, readOpts)
	}
	return nil
}

// kvDelPrefix deletes every key starting with prefix, as one transaction
// (one revision: a watcher sees the deletes in one response), and prints
// how many went: 0 is no error.
func kvDelPrefix(ctx context.Context, cl *client.Client, prefix string, o *output) error {
	if prefix == "" {
		return fmt.Errorf("%w: kv del --prefix takes a non-empty prefix (it would delete every key)", cli.ErrUsage)
	}
	resp, err := cl.Txn(ctx).Then(client.OpDeletePrefix(prefix)).Commit()
	if err != nil {
		return err
	}
	n := resp.Results[0].Deleted
	if o.json() {
		return o.print(kvDelJSON{Key: prefix, Prefix: true, Deleted: int(n)})
	}
	fmt.Fprintln(o.w, n)
	return nil
}

// kvCAS sets key to value if the condition of the flags holds. If it does
// not, that is an error (exit 1) saying where the key is now, so that
// 'if paxosd kv cas ...' works in a script.
func kvCAS(ctx context.Context, cl *client.Client, key string, value []byte, kf *kvFlags, fs *pflag.FlagSet) error {
	var cond client.Condition
	switch {
	case fs.Changed("if-value"):
		cond = client.IfValue([]byte(kf.ifValue))
	case fs.Changed("if-mod-rev"):
		cond = client.IfModRevision(kf.ifModRev)
	default:
		cond = client.IfAbsent()
	}
	ok, kv, err := cl.CompareAndSet(ctx, key, value, cond)
	switch {
	case err != nil:
		return err
	case !ok && kv.Key == "":
		return fmt.Errorf("compare failed: %s does not exist; nothing written", key)
	case !ok && fs.Changed("if-value"):
		return fmt.Errorf("compare failed: %s holds another value (mod revision %d); nothing written", key, kv.ModRevision)
	case !ok && fs.Changed("if-mod-rev") && kf.ifModRev != 0:
		return fmt.Errorf("compare failed: %s is at mod revision %d, not %d; nothing written", key, kv.ModRevision, kf.ifModRev)
	case !ok:
		return fmt.Errorf("compare failed: %s exists (mod revision %d); nothing written", key, kv.ModRevision)
	case kf.out.json():
		out := kvCASJSON{Key: key, Succeeded: true}
		if kv.Key != "" {
			prev := newKV(kv, true)
			out.PrevKV = &prev
		}
		return kf.out.print(out)
	}
	fmt.Fprintln(kf.out.w, "OK")
	return nil
}

// putValue is kv put's VALUE: the argument, or with "-" all of stdin (its
// bytes as they are, a trailing newline included), at most what one
// request can carry.
func putValue(arg string, stdin io.Reader) ([]byte, error) {
	if arg != "-" {
		return []byte(arg), nil
	}
	b, err := io.ReadAll(io.LimitReader(stdin, wire.DefaultFrameBytesMax+1))
	if err != nil {
		return nil, fmt.Errorf("kv put: reading the value from stdin: %w", err)
	}
	if len(b) > wire.DefaultFrameBytesMax {
		return nil, fmt.Errorf("kv put: the value on stdin is over %s, more than a request carries", statemachine.FormatBytes(wire.DefaultFrameBytesMax))
	}
	return b, nil
}

// listing is what kv ls read: the keys (unless only counted), how many,
// the store revision of the read (0: a node older than protocol 4, which
// does not say), and whether keys remain after the last one.
type listing struct {
	kvs      []client.KV
	count    int
	revision uint64
	more     bool
}

// kvList prints the keys starting with prefix, after --from, at most
// --limit of them: keys and values, keys, or their number.
func kvList(ctx context.Context, cl *client.Client, prefix string, kf *kvFlags, opts []client.ReadOption) error {
	l, err := listKeys(ctx, cl, prefix, kf.from, kf.limit, !kf.countOnly, opts)
	if err != nil {
		return err
	}
	o := &kf.out
	switch {
	case kf.countOnly && o.json():
		return o.print(kvCountJSON{Count: l.count, Revision: l.revision})
	case kf.countOnly:
		fmt.Fprintln(o.w, l.count)
	case o.json():
		out := kvListJSON{KVs: make([]kvJSON, len(l.kvs)), Count: l.count, Revision: l.revision, More: l.more}
		for i, kv := range l.kvs {
			out.KVs[i] = newKV(kv, !kf.keysOnly)
		}
		return o.print(out)
	default:
		for _, kv := range l.kvs {
			if kf.keysOnly {
				fmt.Fprintln(o.w, kv.Key)
			} else {
				fmt.Fprintf(o.w, "%s\t%s\n", kv.Key, kv.Value)
			}
		}
	}
	return nil
}

// listKeys reads the keys starting with prefix that come after the key
// after ("" = from the first), at most limit (0 = all), page by page at
// one revision, keeping them if keep (else only counting). A listing that
// outlives the history of its revision starts over, as client.List does.
// A node older than protocol 4 pages nothing: without after, it is asked
// for the whole listing at once.
func listKeys(ctx context.Context, cl *client.Client, prefix, after string, limit int, keep bool, opts []client.ReadOption) (listing, error) {
	for restarts := 0; ; restarts++ {
		l, err := listPaged(ctx, cl, prefix, after, limit, keep, opts)
		switch {
		case errors.Is(err, client.ErrCompacted) && restarts < 3:
			continue // written faster than we read: start over at a newer revision
		case errors.Is(err, client.ErrUnsupported) && after == "":
			kvs, err := cl.List(ctx, prefix, limit, opts...)
			l = listing{count: len(kvs)}
			if keep {
				l.kvs = kvs
			}
			return l, err
		case errors.Is(err, client.ErrUnsupported):
			return listing{}, fmt.Errorf("kv ls --from: %w", err)
		}
		return l, err
	}
}

func listPaged(ctx context.Context, cl *client.Client, prefix, after string, limit int, keep bool, opts []client.ReadOption) (listing, error) {
	var l listing
	start := ""
	if after != "" {
		start = after + "\x00" // the first key after it
	}
	for {
		pageLimit := 0
		if limit > 0 {
			pageLimit = limit - l.count
		}
		p, err := cl.ListPage(ctx, prefix, start, l.revision, pageLimit, opts...)
		if err != nil {
			return listing{}, err
		}
		l.count += len(p.KVs)
		l.revision, l.more = p.Revision, p.More
		if keep {
			l.kvs = append(l.kvs, p.KVs...)
		}
		if !p.More || limit > 0 && l.count >= limit {
			return l, nil
		}
		start = p.Next
	}
}

func cmdStatus(args []string, stdout io.Writer) error {
	fs := cli.NewFlags("status", "paxosd status [--endpoints ...] [-w json]\n\n"+
		"Shows every member of the cluster: the endpoints' answers name all the\n"+
		"members, so one endpoint is enough, and those not among the endpoints are\n"+
		"asked at their --peers address. Exits 1 when a member does not answer or\n"+
		"none leads (etcdctl endpoint health's rule), so scripts and probes can use it.")
	var cf cli.ClientFlags
	cf.Register(fs)
	o := output{w: stdout}
	o.register(fs)
	if err := parseOutput(fs, args, &o); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: status takes no arguments", cli.ErrUsage)
	}
	cfg, err := cf.Config()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), cf.Timeout)
	defer cancel()
	cl := client.Unconnected(cfg)
	members := cl.Members(ctx)
	if o.json() {
		out := statusJSON{Members: make([]memberJSON, len(members))}
		for i, m := range members {
			out.Members[i] = newMember(m)
		}
		if err := o.print(out); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tADDRESS\tROLE\tBALLOT\tLEADER\tCOMMIT\tAPPLIED")
		for _, m := range members {
			if m.Err != nil {
				fmt.Fprintf(tw, "%s\t%s\tunreachable\t-\t-\t-\t-\t(%v)\n", memberName(m, "-"), m.Endpoint, m.Err)
				continue
			}
			s := m.Status
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%d\n", s.ID, m.Endpoint, s.Role, s.Ballot, s.Leader, s.Commit, s.Applied)
		}
		tw.Flush()
	}
	if !slices.ContainsFunc(members, func(m client.MemberStatus) bool { return m.Err == nil }) {
		return fmt.Errorf("%w: no endpoint answered (%s)", client.ErrUnavailable, cf.Endpoints)
	}
	return statusHealth(members)
}

// statusHealth is status's exit status, as etcdctl endpoint health's: an
// error when a member (or a listed endpoint) is unreachable or no node is
// leading, so that scripts and probes can rely on 'paxosd status'.
func statusHealth(members []client.MemberStatus) error {
	var down []string
	leaders := 0
	for _, m := range members {
		if m.Err != nil {
			down = append(down, memberName(m, ""))
		} else if m.Status.Role == "leader" {
			leaders++
		}
	}
	switch {
	case leaders == 0 && len(down) > 0:
		return fmt.Errorf("no leader, and %d of %d nodes unreachable (%s)", len(down), len(members), strings.Join(down, ", "))
	case leaders == 0:
		return fmt.Errorf("no leader: the %d nodes answered, none is leading (an election is under way, or a quorum cannot agree)", len(members))
	case len(down) > 0:
		return fmt.Errorf("%d of %d nodes unreachable (%s)", len(down), len(members), strings.Join(down, ", "))
	}
	return nil
}

// memberName is "node 3 (HOST:PORT)", or the address alone, or unknown
// for the ID column, when no answer said which member is there.
func memberName(m client.MemberStatus, unknown string) string {
	switch {
	case m.ID == 0 && unknown != "":
		return unknown
	case m.ID == 0:
		return m.Endpoint
	case unknown != "":
		return strconv.FormatUint(uint64(m.ID), 10)
	}
	return fmt.Sprintf("node %d (%s)", m.ID, m.Endpoint)
}

// kvWatch prints every change of a key (or prefix) until interrupted: one
// line each, "REVISION PUT KEY VALUE" or "REVISION DELETE KEY", with
// --prev-kv followed by " (was PREVIOUS)" or, for a key the put created,
// " (new)"; or with -w json one object per change.
func kvWatch(kf *kvFlags, key string) error {
	cl, _, cancelConnect, err := kf.cf.Connect()
	if err != nil {
		return err
	}
	cancelConnect()
	defer cl.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := []client.WatchOption{}
	if kf.prefix {
		opts = append(opts, client.WithPrefix())
	}
	if kf.fromRev > 0 {
		opts = append(opts, client.WithRevision(kf.fromRev))
	}
	o := &kf.out
	resps, errf := cl.WatchResponses(ctx, key, opts...)
	for r := range resps {
		if r.IsProgressNotify() {
			if !kf.progress {
				continue
			}
			if o.json() {
				if err := o.print(progressJSON{ProgressRevision: r.Revision}); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(o.w, "%d PROGRESS\n", r.Revision)
			}
			continue
		}
		for _, e := range r.Events {
			if o.json() {
				if err := o.print(newEvent(e, kf.prevKV)); err != nil {
					return err
				}
				continue
			}
			line := fmt.Sprintf("%d PUT %s %s", e.KV.ModRevision, e.KV.Key, e.KV.Value)
			if e.Type == client.EventDelete {
				line = fmt.Sprintf("%d DELETE %s", e.KV.ModRevision, e.KV.Key)
			}
			if kf.prevKV {
				line += prevSuffix(e)
			}
			fmt.Fprintln(o.w, line)
		}
	}
	if err := errf(); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// prevSuffix is what --prev-kv adds to a change's line.
func prevSuffix(e client.Event) string {
	switch {
	case e.PrevKV.Key != "":
		return fmt.Sprintf(" (was %s)", e.PrevKV.Value)
	case e.Type == client.EventPut:
		return " (new)"
	}
	return "" // a delete always has a previous pair, unless the server does not say
}
