package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/pflag"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/internal/cli"
)

// kvFlags are the flags of the kv subcommands.
type kvFlags struct {
	cf           cli.ClientFlags
	serializable bool
	limit        int
	keysOnly     bool
	prefix       bool
	fromRev      uint64
}

func (f *kvFlags) flagSet(name string) *pflag.FlagSet {
	fs := cli.NewFlags(name, "paxosd "+name+" ...")
	f.cf.Register(fs)
	fs.BoolVar(&f.serializable, "serializable", false, "get/ls: answer from the contacted node's own state without asking the leader (fast, may be stale)")
	fs.IntVar(&f.limit, "limit", 0, "ls: at most this many keys (0 = all)")
	fs.BoolVar(&f.keysOnly, "keys-only", false, "ls: print keys without values")
	fs.BoolVar(&f.prefix, "prefix", false, "watch: watch every key starting with KEY")
	fs.Uint64Var(&f.fromRev, "rev", 0, "watch: replay the changes since this revision first (0: from now)")
	return fs
}

// kvSynopsis is what 'paxosd kv --help' prints above the flags.
const kvSynopsis = `paxosd kv put KEY VALUE                  set a key
       paxosd kv get KEY [--serializable]       print a key's value
       paxosd kv del KEY                        delete a key
       paxosd kv ls [PREFIX] [--limit N] [--keys-only]
                                                list keys (and values) by prefix
       paxosd kv watch KEY [--prefix] [--rev N] print every change of a key or prefix`

func cmdKV(args []string, stdout io.Writer) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		var kf kvFlags
		fs := kf.flagSet("kv")
		fmt.Fprintf(stdout, "Usage: %s\n\nFlags:\n%s", kvSynopsis, fs.FlagUsages())
		return nil
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return fmt.Errorf("%w: kv needs a subcommand: put, get, del, ls or watch (see 'paxosd kv --help')", cli.ErrUsage)
	}
	sub := args[0]
	var kf kvFlags
	fs := kf.flagSet("kv " + sub)
	if err := cli.Parse(fs, args[1:]); err != nil {
		return err
	}
	want := map[string]int{"put": 2, "get": 1, "del": 1, "ls": -1, "watch": 1}
	n, ok := want[sub]
	if !ok {
		return fmt.Errorf("%w: unknown kv subcommand %q: want put, get, del, ls or watch", cli.ErrUsage, sub)
	}
	if (n >= 0 && fs.NArg() != n) || (n < 0 && fs.NArg() > 1) {
		return fmt.Errorf("%w: %s", cli.ErrUsage, map[string]string{
			"put": "kv put takes KEY VALUE", "get": "kv get takes KEY", "del": "kv del takes KEY", "ls": "kv ls takes at most a PREFIX",
			"watch": "kv watch takes KEY (with --prefix, a prefix)",
		}[sub])
	}
	var readOpts []client.ReadOption
	if kf.serializable {
		readOpts = append(readOpts, client.Serializable())
	}
	if sub == "watch" {
		return kvWatch(kf.cf, fs.Arg(0), kf.prefix, kf.fromRev, stdout)
	}
	cl, ctx, cancel, err := kf.cf.Connect()
	if err != nil {
		return err
	}
	defer cancel()
	defer cl.Close()
	switch sub {
	case "put":
		if _, err := cl.Put(ctx, fs.Arg(0), []byte(fs.Arg(1))); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "OK")
	case "get":
		kv, err := cl.Get(ctx, fs.Arg(0), readOpts...)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", kv.Value)
	case "del":
		existed, err := cl.Delete(ctx, fs.Arg(0))
		if err != nil {
			return err
		}
		if !existed {
			return fmt.Errorf("%w: %s", client.ErrNotFound, fs.Arg(0))
		}
		fmt.Fprintln(stdout, "OK")
	case "ls":
		kvs, err := cl.List(ctx, fs.Arg(0), kf.limit, readOpts...)
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			if kf.keysOnly {
				fmt.Fprintln(stdout, kv.Key)
			} else {
				fmt.Fprintf(stdout, "%s\t%s\n", kv.Key, kv.Value)
			}
		}
	}
	return nil
}

func cmdStatus(args []string, stdout io.Writer) error {
	fs := cli.NewFlags("status", "paxosd status [--endpoints ...]\n\n"+
		"Shows every member of the cluster: the endpoints' answers name all the\n"+
		"members, so one endpoint is enough, and those not among the endpoints are\n"+
		"asked at their --peers address. Exits 1 when a member does not answer or\n"+
		"none leads (etcdctl endpoint health's rule), so scripts and probes can use it.")
	var cf cli.ClientFlags
	cf.Register(fs)
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: status takes no arguments", cli.ErrUsage)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cf.Timeout)
	defer cancel()
	cl := client.Unconnected(client.Config{Endpoints: cf.List(), ClusterID: cf.ClusterID})
	members := cl.Members(ctx)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tADDRESS\tROLE\tBALLOT\tLEADER\tCOMMIT\tAPPLIED")
	reachable := 0
	for _, m := range members {
		if m.Err != nil {
			fmt.Fprintf(tw, "%s\t%s\tunreachable\t-\t-\t-\t-\t(%v)\n", memberName(m, "-"), m.Endpoint, m.Err)
			continue
		}
		reachable++
		s := m.Status
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%d\n", s.ID, m.Endpoint, s.Role, s.Ballot, s.Leader, s.Commit, s.Applied)
	}
	tw.Flush()
	if reachable == 0 {
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

// kvWatch prints every change of a key (or prefix), one line each —
// "REVISION PUT KEY VALUE" or "REVISION DELETE KEY" — until interrupted.
func kvWatch(cf cli.ClientFlags, key string, prefix bool, rev uint64, stdout io.Writer) error {
	cl, _, cancelConnect, err := cf.Connect()
	if err != nil {
		return err
	}
	cancelConnect()
	defer cl.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := []client.WatchOption{}
	if prefix {
		opts = append(opts, client.WithPrefix())
	}
	if rev > 0 {
		opts = append(opts, client.WithRevision(rev))
	}
	events, errf := cl.Watch(ctx, key, opts...)
	for evs := range events {
		for _, e := range evs {
			if e.Type == client.EventDelete {
				fmt.Fprintf(stdout, "%d DELETE %s\n", e.KV.ModRevision, e.KV.Key)
			} else {
				fmt.Fprintf(stdout, "%d PUT %s %s\n", e.KV.ModRevision, e.KV.Key, e.KV.Value)
			}
		}
	}
	if err := errf(); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}
