package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/internal/cli"
)

func cmdElect(args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlags("elect", "paxosd elect NAME --value V [--ttl 10s] [-- COMMAND ARGS...]\n"+
		"       paxosd elect NAME --observe [--after-seq N] [-w json]\n"+
		"       paxosd elect NAME --leader [-w json]\n\n"+
		"Campaigns in election NAME (first come, first served) and, once elected, runs\n"+
		"COMMAND with the term in $PAXOSD_ELECTION_TERM; resigns when COMMAND exits and\n"+
		"exits with its status. Without COMMAND, prints \"elected term N\" and leads until\n"+
		"interrupted. Exit status 3: the session was lost (COMMAND was stopped; another\n"+
		"candidate may lead).")
	var (
		cf cli.ClientFlags
		sf sessionFlags
	)
	value := fs.String("value", "", "what this candidate publishes as leader (its address, its name...)")
	sf.register(fs)
	observe := fs.Bool("observe", false, "print every leadership change, one line each, until interrupted")
	afterSeq := fs.Uint64("after-seq", 0, "--observe: resume after this change number (0 = start with the current leader)")
	leader := fs.Bool("leader", false, "print the current leader's value")
	cf.Register(fs)
	o := output{w: stdout}
	o.register(fs)
	if err := parseOutput(fs, args, &o); err != nil {
		return err
	}
	name, argv, err := nameAndCommand(fs, "elect")
	if err != nil {
		return err
	}
	switch {
	case *observe && *leader:
		return fmt.Errorf("%w: elect: --observe and --leader do not go together", cli.ErrUsage)
	case (*observe || *leader) && len(argv) > 0:
		return fmt.Errorf("%w: elect: --observe and --leader take no COMMAND", cli.ErrUsage)
	case (*observe || *leader) && fs.Changed("value"):
		return fmt.Errorf("%w: elect: --value is for campaigning, not with --observe or --leader", cli.ErrUsage)
	case fs.Changed("after-seq") && !*observe:
		return fmt.Errorf("%w: elect: --after-seq goes with --observe", cli.ErrUsage)
	case *observe:
		return electObserve(&cf, name, *afterSeq, &o)
	case *leader:
		return electLeader(&cf, name, &o)
	case !fs.Changed("value"):
		return fmt.Errorf("%w: elect: --value is required to campaign (or use --observe or --leader)", cli.ErrUsage)
	}
	if err := sf.validate(); err != nil {
		return err
	}

	ctx, sigs, stop := signalContext()
	defer stop()
	cl, s, err := openSession(ctx, &cf, sf.ttl, "election "+name)
	if err != nil {
		return err
	}
	defer cl.Close()
	l, err := s.Campaign(ctx, name, []byte(*value))
	switch {
	case ctx.Err() != nil:
		closeSession(s, &cf, stderr)
		return interrupted("election " + name)
	case err == nil:
	case errors.Is(err, client.ErrSessionExpired):
		return &exitError{code: exitLost, msg: fmt.Sprintf("session lost while campaigning in %s: %v", name, err)}
	default:
		closeSession(s, &cf, stderr)
		return err
	}

	if len(argv) == 0 {
		if o.json() {
			o.print(newLeader(l))
		} else {
			fmt.Fprintf(stdout, "elected term %d\n", l.Term)
		}
		select {
		case <-sigs:
			resign(s, name, &cf, stderr)
			return nil
		case <-s.Done():
			return &exitError{code: exitLost, msg: fmt.Sprintf("leadership of %s (term %d) lost: %v", name, l.Term, s.Err())}
		}
	}
	env := childEnv(append([]string{
		"PAXOSD_ELECTION_NAME=" + name,
		"PAXOSD_ELECTION_TERM=" + strconv.FormatUint(l.Term, 10),
		"PAXOSD_ELECTION_VALUE=" + *value,
		"PAXOSD_SESSION_ID=" + strconv.FormatUint(s.ID(), 10),
	}, cf.Env()...)...)
	return runHolding(argv, env, s, &cf, sf.killGrace, sigs, stdout, stderr,
		fmt.Sprintf("leadership of %s (term %d)", name, l.Term))
}

// resign steps down and closes the session (which would withdraw the
// leadership by itself; the explicit resign says what is meant).
func resign(s *client.Session, name string, cf *cli.ClientFlags, stderr io.Writer) {
	ctx, cancel := context.WithTimeout(context.Background(), cf.Timeout)
	err := s.Resign(ctx, name)
	cancel()
	if err != nil && !errors.Is(err, client.ErrSessionExpired) {
		fmt.Fprintf(stderr, "paxosd: warning: resigning from %s: %v\n", name, err)
	}
	closeSession(s, cf, stderr)
}

// electObserve prints the election's changes until interrupted.
func electObserve(cf *cli.ClientFlags, name string, afterSeq uint64, o *output) error {
	cfg, err := cf.Config()
	if err != nil {
		return err
	}
	ctx, _, stop := signalContext()
	defer stop()
	cctx, cancel := context.WithTimeout(ctx, cf.Timeout)
	cl, err := client.NewWithConfig(cctx, cfg)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer cl.Close()
	last := afterSeq
	for {
		changes, errf := cl.Observe(ctx, name, last)
		for l := range changes {
			if o.json() {
				o.print(newLeader(l))
			} else {
				fmt.Fprintln(o.w, formatLeader(l))
			}
			last = l.Seq
		}
		err := errf()
		switch {
		case ctx.Err() != nil:
			return nil // interrupted
		case err != nil:
			return fmt.Errorf("observing %s: %w", name, err)
		}
		// The stream ended without an error although nobody stopped it
		// (a connection that dies can look like a clean end): resume
		// after the last change printed.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// formatLeader is one line of 'paxosd elect NAME --observe'.
func formatLeader(l client.Leader) string {
	if l.Session == 0 {
		return fmt.Sprintf("seq=%d no leader", l.Seq)
	}
	return fmt.Sprintf("seq=%d term=%d session=%d value=%s", l.Seq, l.Term, l.Session, l.Value)
}

// electLeader prints the current leader's value.
func electLeader(cf *cli.ClientFlags, name string, o *output) error {
	cl, ctx, cancel, err := cf.Connect()
	if err != nil {
		return err
	}
	defer cancel()
	defer cl.Close()
	l, err := cl.Leader(ctx, name)
	if err != nil {
		return err
	}
	if o.json() {
		return o.print(newLeader(l))
	}
	fmt.Fprintf(o.w, "%s\n", l.Value)
	return nil
}
