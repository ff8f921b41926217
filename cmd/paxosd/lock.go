package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"time"

	"github.com/spf13/pflag"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/internal/cli"
	"github.com/paxosd/paxosd/statemachine"
)

// sessionFlags are the flags paxosd lock and paxosd elect share.
type sessionFlags struct {
	ttl       time.Duration
	killGrace time.Duration
}

func (f *sessionFlags) register(fs *pflag.FlagSet) {
	fs.DurationVar(&f.ttl, "ttl", 10*time.Second, "session TTL: how long after paxosd stops reaching the cluster (killed, partitioned) the cluster frees what it holds ("+client.TTLMin.String()+".."+client.TTLMax.String()+")")
	fs.DurationVar(&f.killGrace, "kill-grace", 5*time.Second, "once the session is lost, how long COMMAND gets between SIGTERM and SIGKILL")
}

func (f *sessionFlags) validate() error {
	if f.ttl < client.TTLMin || f.ttl > client.TTLMax {
		return fmt.Errorf("%w: --ttl %s is outside [%s, %s]", cli.ErrUsage, f.ttl, client.TTLMin, client.TTLMax)
	}
	if f.killGrace <= 0 {
		return fmt.Errorf("%w: --kill-grace must be positive, got %s", cli.ErrUsage, f.killGrace)
	}
	return nil
}

// nameAndCommand reads "NAME [-- COMMAND ARGS...]" from fs's arguments.
func nameAndCommand(fs *pflag.FlagSet, cmd string) (string, []string, error) {
	args := fs.Args()
	var argv []string
	if dash := fs.ArgsLenAtDash(); dash >= 0 {
		args, argv = args[:dash], args[dash:]
		if len(argv) == 0 {
			return "", nil, fmt.Errorf("%w: %s: nothing after --: give a COMMAND, or leave out --", cli.ErrUsage, cmd)
		}
	}
	switch {
	case len(args) == 0:
		return "", nil, fmt.Errorf("%w: %s needs a NAME (see 'paxosd %s --help')", cli.ErrUsage, cmd, cmd)
	case len(args) > 1:
		return "", nil, fmt.Errorf("%w: %s takes one NAME, got %q; put the COMMAND after --", cli.ErrUsage, cmd, args)
	case args[0] == "":
		return "", nil, fmt.Errorf("%w: %s: NAME is empty", cli.ErrUsage, cmd)
	}
	return args[0], argv, nil
}

// signalContext returns a context cancelled by the first termination
// signal, and a channel that receives every one of them (for forwarding to
// a COMMAND). Both stay registered until stop.
func signalContext() (ctx context.Context, sigs chan os.Signal, stop func()) {
	sigs = make(chan os.Signal, 8)
	signal.Notify(sigs, terminationSignals...)
	ctx, cancel := signal.NotifyContext(context.Background(), terminationSignals...)
	return ctx, sigs, func() { cancel(); signal.Stop(sigs) }
}

// openSession connects and opens a session, both within --timeout; if
// ctx ends first (a signal), the error is interrupted(what).
func openSession(ctx context.Context, cf *cli.ClientFlags, ttl time.Duration, what string) (*client.Client, *client.Session, error) {
	cl, s, err := connectSession(ctx, cf, ttl)
	if err != nil && ctx.Err() != nil {
		return nil, nil, interrupted(what)
	}
	return cl, s, err
}

func connectSession(ctx context.Context, cf *cli.ClientFlags, ttl time.Duration) (*client.Client, *client.Session, error) {
	cfg, err := cf.Config()
	if err != nil {
		return nil, nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, cf.Timeout)
	defer cancel()
	cl, err := client.NewWithConfig(cctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	s, err := cl.NewSession(cctx, ttl)
	if err != nil {
		cl.Close()
		return nil, nil, fmt.Errorf("opening a session: %w", err)
	}
	return cl, s, nil
}

// closeSession ends the session, which releases its locks and withdraws
// its candidacies at once. If the cluster cannot be told, they are freed
// when the session's TTL runs out; that is worth a warning, not a failure.
func closeSession(s *client.Session, cf *cli.ClientFlags, stderr io.Writer) {
	ctx, cancel := context.WithTimeout(context.Background(), cf.Timeout)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		fmt.Fprintf(stderr, "paxosd: warning: closing session %d: %v (the cluster frees what it holds when its TTL of %s runs out)\n", s.ID(), err, s.TTL())
	}
}

// interrupted is the error of a command stopped by a signal before it got
// what it waited for.
func interrupted(what string) error {
	return fmt.Errorf("interrupted while waiting for %s", what)
}

func cmdLock(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "ls" && !containsDash(args) {
		return cmdLockList(args[1:], stdout)
	}
	fs := cli.NewFlags("lock", "paxosd lock NAME [--ttl 10s] [--lock-delay 0] [--wait=true] [-- COMMAND ARGS...]\n"+
		"       paxosd lock ls [PREFIX] [-w json]\n\n"+
		"Takes lock NAME and runs COMMAND while holding it, with the fencing token in\n"+
		"$PAXOSD_LOCK_TOKEN; releases the lock when COMMAND exits and exits with its status.\n"+
		"Without COMMAND, prints the token (-w json: {\"name\", \"token\", \"session\"}) and\n"+
		"holds the lock until interrupted.\n"+
		"Exit status 3: the session was lost (COMMAND was stopped; the lock may be another's).")
	var (
		cf cli.ClientFlags
		sf sessionFlags
	)
	sf.register(fs)
	lockDelay := fs.Duration("lock-delay", 0, "if this session expires while holding the lock, keep the lock free this long (the old holder may still be running)")
	wait := fs.Bool("wait", true, "wait in line for a held lock; with --wait=false fail at once (exit 1)")
	waitTimeout := fs.Duration("wait-timeout", 0, "give up waiting for the lock after this long (0 = wait until interrupted)")
	cf.Register(fs)
	o := output{w: stdout}
	o.register(fs)
	if err := parseOutput(fs, args, &o); err != nil {
		return err
	}
	name, argv, err := nameAndCommand(fs, "lock")
	if err != nil {
		return err
	}
	if err := sf.validate(); err != nil {
		return err
	}
	if *lockDelay < 0 || *waitTimeout < 0 {
		return fmt.Errorf("%w: --lock-delay and --wait-timeout cannot be negative", cli.ErrUsage)
	}
	if maxDelay := statemachine.LockDelayMaxMs * time.Millisecond; *lockDelay > maxDelay {
		return fmt.Errorf("%w: --lock-delay %s is longer than the longest allowed, %s", cli.ErrUsage, *lockDelay, maxDelay)
	}

	ctx, sigs, stop := signalContext()
	defer stop()
	cl, s, err := openSession(ctx, &cf, sf.ttl, "lock "+name)
	if err != nil {
		return err
	}
	defer cl.Close()

	var opts []client.LockOption
	if *lockDelay > 0 {
		opts = append(opts, client.WithLockDelay(*lockDelay))
	}
	var l *client.Lock
	if *wait {
		wctx, cancel := ctx, context.CancelFunc(func() {})
		if *waitTimeout > 0 {
			wctx, cancel = context.WithTimeout(ctx, *waitTimeout)
		}
		l, err = s.Lock(wctx, name, opts...)
		timedOut := wctx.Err() != nil && ctx.Err() == nil
		cancel()
		if err != nil && timedOut {
			err = fmt.Errorf("lock %s not acquired within %s", name, *waitTimeout)
		}
	} else {
		tctx, cancel := context.WithTimeout(ctx, cf.Timeout)
		l, err = s.TryLock(tctx, name, opts...)
		cancel()
	}
	switch {
	case err == nil && ctx.Err() != nil:
		closeSession(s, &cf, stderr)
		return interrupted("lock " + name)
	case err == nil:
	case ctx.Err() != nil:
		closeSession(s, &cf, stderr)
		return interrupted("lock " + name)
	case errors.Is(err, client.ErrSessionExpired):
		return &exitError{code: exitLost, msg: fmt.Sprintf("session lost while waiting for lock %s: %v", name, err)}
	default:
		closeSession(s, &cf, stderr)
		return err
	}

	if len(argv) == 0 {
		// Hold until interrupted.
		if o.json() {
			o.print(lockHeldJSON{Name: name, Token: l.Token, Session: s.ID()})
		} else {
			fmt.Fprintln(stdout, l.Token)
		}
		select {
		case <-sigs:
			closeSession(s, &cf, stderr)
			return nil
		case <-s.Done():
			return &exitError{code: exitLost, msg: fmt.Sprintf("lock %s (token %d) lost: %v", name, l.Token, s.Err())}
		}
	}

	env := childEnv(append([]string{
		"PAXOSD_LOCK_NAME=" + name,
		"PAXOSD_LOCK_TOKEN=" + strconv.FormatUint(l.Token, 10),
		"PAXOSD_SESSION_ID=" + strconv.FormatUint(s.ID(), 10),
	}, cf.Env()...)...)
	return runHolding(argv, env, s, &cf, sf.killGrace, sigs, stdout, stderr,
		fmt.Sprintf("lock %s (token %d)", name, l.Token))
}

// runHolding runs COMMAND while the session holds what (a lock or a
// leadership), then closes the session, which releases it. The error
// carries COMMAND's exit status, or exitLost if the session was lost.
func runHolding(argv, env []string, s *client.Session, cf *cli.ClientFlags, grace time.Duration, sigs <-chan os.Signal, stdout, stderr io.Writer, what string) error {
	c, err := startChild(argv, env, stdout, stderr)
	if err != nil {
		closeSession(s, cf, stderr)
		return runFailed(argv, err)
	}
	lost := superviseChild(c, sigs, s.Done(), grace, func() {
		fmt.Fprintf(stderr, "paxosd: error: session %d lost (%v): %s is no longer held; stopping %s (pid %d): SIGTERM now, SIGKILL after %s\n",
			s.ID(), s.Err(), what, argv[0], c.cmd.Process.Pid, grace)
	})
	if lost {
		return &exitError{code: exitLost}
	}
	if s.Err() != nil {
		// The session ended as COMMAND was exiting: its last moments may
		// have run without what it held.
		return &exitError{code: exitLost, msg: fmt.Sprintf("session %d lost (%v) as %s exited: %s may have been lost before it finished", s.ID(), s.Err(), argv[0], what)}
	}
	closeSession(s, cf, stderr)
	if code := c.exitCode(); code != 0 {
		return &exitError{code: code}
	}
	return nil
}

func containsDash(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return true
		}
	}
	return false
}
