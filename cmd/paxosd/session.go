package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/internal/cli"
	"github.com/paxosd/paxosd/wire"
)

// cmdSession: paxosd session ls | revoke ID.
func cmdSession(args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "revoke" {
		return cmdSessionRevoke(args[1:], stdout)
	}
	if len(args) == 0 || args[0] != "ls" {
		return fmt.Errorf("%w: session needs a subcommand: ls or revoke (see 'paxosd --help')", cli.ErrUsage)
	}
	fs := cli.NewFlags("session ls", "paxosd session ls [-w json]\n\n"+
		"Lists the sessions, what each holds and waits for, as the contacted node's\n"+
		"applied state has them (it may lag the leader by a moment).")
	var cf cli.ClientFlags
	cf.Register(fs)
	o := output{w: stdout}
	o.register(fs)
	if err := parseOutput(fs, args[1:], &o); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: session ls takes no arguments", cli.ErrUsage)
	}
	cl, ctx, cancel, err := cf.Connect()
	if err != nil {
		return err
	}
	defer cancel()
	defer cl.Close()
	sessions, err := cl.Sessions(ctx)
	if err != nil {
		return err
	}
	if o.json() {
		out := sessionsJSON{Sessions: make([]sessionJSON, len(sessions))}
		for i, s := range sessions {
			out.Sessions[i] = newSession(s)
		}
		return o.print(out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SESSION\tTTL\tREMAINING\tHOLDS\tWAITS FOR\tELECTIONS")
	for _, s := range sessions {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", s.ID, msDuration(s.TTLMs), msDuration(s.RemainingMs),
			list(s.Locks), list(s.Waiting), list(s.Elections))
	}
	return tw.Flush()
}

// cmdSessionRevoke: paxosd session revoke ID.
func cmdSessionRevoke(args []string, stdout io.Writer) error {
	fs := cli.NewFlags("session revoke", "paxosd session revoke ID [-w json]\n\n"+
		"Ends session ID (as 'paxosd session ls' shows it) through the log, as if its\n"+
		"owner had closed it: its locks are released at once, without lock-delay, its\n"+
		"waits and candidacies end, a leadership it holds passes on. The owner finds\n"+
		"out at its next keep-alive, within a third of the TTL; until then it may still\n"+
		"act as the holder, which fencing tokens guard against.")
	var cf cli.ClientFlags
	cf.Register(fs)
	o := output{w: stdout}
	o.register(fs)
	if err := parseOutput(fs, args, &o); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: session revoke takes one session ID (see 'paxosd session ls')", cli.ErrUsage)
	}
	id, err := strconv.ParseUint(fs.Arg(0), 10, 64)
	if err != nil || id == 0 {
		return fmt.Errorf("%w: session revoke: %q is not a session ID, a number from 1 (see 'paxosd session ls')", cli.ErrUsage, fs.Arg(0))
	}
	cl, ctx, cancel, err := cf.Connect()
	if err != nil {
		return err
	}
	defer cancel()
	defer cl.Close()
	s, err := cl.RevokeSession(ctx, id)
	if errors.Is(err, client.ErrSessionExpired) {
		return fmt.Errorf("no session %d: it expired, was closed, or never existed (see 'paxosd session ls')", id)
	}
	if err != nil {
		return err
	}
	if o.json() {
		return o.print(newSession(s))
	}
	fmt.Fprintf(stdout, "revoked session %d (TTL %s): released %s; waits ended %s; elections left %s\n",
		s.ID, msDuration(s.TTLMs), list(s.Locks), list(s.Waiting), list(s.Elections))
	return nil
}

// cmdLockList: paxosd lock ls [PREFIX].
func cmdLockList(args []string, stdout io.Writer) error {
	fs := cli.NewFlags("lock ls", "paxosd lock ls [PREFIX] [-w json]\n\n"+
		"Lists the locks that are held or waited for (whose name starts with PREFIX):\n"+
		"the holding session and its fencing token, the waiting sessions in line order,\n"+
		"and a lock-delay that keeps a lock free after its holder's session expired.\n"+
		"Answered from the contacted node's applied state.")
	var cf cli.ClientFlags
	cf.Register(fs)
	o := output{w: stdout}
	o.register(fs)
	if err := parseOutput(fs, args, &o); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("%w: lock ls takes at most a PREFIX", cli.ErrUsage)
	}
	prefix := fs.Arg(0)
	cl, ctx, cancel, err := cf.Connect()
	if err != nil {
		return err
	}
	defer cancel()
	defer cl.Close()
	locks, err := cl.Locks(ctx)
	if err != nil {
		return err
	}
	locks = slices.DeleteFunc(locks, func(l wire.LockInfo) bool { return !strings.HasPrefix(l.Name, prefix) })
	if o.json() {
		out := locksJSON{Locks: make([]lockJSON, len(locks))}
		for i, l := range locks {
			out.Locks[i] = newLock(l)
		}
		return o.print(out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LOCK\tHOLDER\tTOKEN\tWAITERS\tLOCK-DELAY")
	for _, l := range locks {
		holder, token := "-", "-"
		if l.Holder != 0 {
			holder, token = strconv.FormatUint(l.Holder, 10), strconv.FormatUint(l.Token, 10)
		}
		waiters := make([]string, len(l.Waiters))
		for i, w := range l.Waiters {
			waiters[i] = strconv.FormatUint(w, 10)
		}
		delay := "-"
		if l.DelayUntilMs != 0 {
			delay = fmt.Sprintf("free until cluster clock %dms", l.DelayUntilMs)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", l.Name, holder, token, list(waiters), delay)
	}
	return tw.Flush()
}

func list(xs []string) string {
	if len(xs) == 0 {
		return "-"
	}
	return strings.Join(xs, ",")
}

func msDuration(ms uint64) string {
	return (time.Duration(ms) * time.Millisecond).String()
}
