package main

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/pflag"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/internal/cli"
)

// registeredJSON is what paxosd register KEY VALUE prints (-w json) once
// the key is in place, without a COMMAND.
type registeredJSON struct {
	Key      string `json:"key"`
	Revision uint64 `json:"revision"`
	Session  uint64 `json:"session"`
}

// cmdRegister is paxosd register KEY VALUE [-- COMMAND ARGS...]: service
// discovery's ephemeral key. The key is put bound to a session of its own
// (client.WithSession), so it goes when the session ends: closed when
// COMMAND exits or paxosd register is interrupted, or expired one TTL
// after paxosd register died (kill -9 included: COMMAND then gets its
// parent-death signal, child.go). The COMMAND machinery is paxosd lock's
// (runHolding): a lost session stops COMMAND, exit status 3.
func cmdRegister(args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlags("register", "paxosd register KEY VALUE [--ttl 10s] [-- COMMAND ARGS...]\n\n"+
		"Puts KEY=VALUE bound to a session of its own (an ephemeral key) and runs\n"+
		"COMMAND; deletes KEY when COMMAND exits, and exits with its status. Without\n"+
		"COMMAND, prints the key's revision and session (-w json: {\"key\", \"revision\",\n"+
		"\"session\"}) and keeps KEY until interrupted. If paxosd register dies (even by\n"+
		"kill -9) COMMAND gets SIGTERM and KEY goes one --ttl later.\n"+
		"COMMAND gets $PAXOSD_REGISTER_KEY and $PAXOSD_SESSION_ID.\n"+
		"Exit status 3: the session was lost (COMMAND was stopped; KEY goes within one\n"+
		"--ttl, when the cluster expires the session, if it has not already).")
	var (
		cf cli.ClientFlags
		sf sessionFlags
	)
	sf.register(fs)
	cf.Register(fs)
	o := output{w: stdout}
	o.register(fs)
	if err := parseOutput(fs, args, &o); err != nil {
		return err
	}
	key, value, argv, err := keyValueAndCommand(fs)
	if err != nil {
		return err
	}
	if err := sf.validate(); err != nil {
		return err
	}

	ctx, sigs, stop := signalContext()
	defer stop()
	cl, s, err := openSession(ctx, &cf, sf.ttl, "registering "+key)
	if err != nil {
		return err
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, cf.Timeout)
	rev, err := cl.Put(pctx, key, []byte(value), client.WithSession(s))
	cancel()
	if err != nil {
		closeSession(s, &cf, stderr)
		if ctx.Err() != nil {
			return interrupted("registering " + key)
		}
		return fmt.Errorf("registering %s: %w", key, err)
	}

	what := "key " + key
	if len(argv) == 0 {
		if o.json() {
			o.print(registeredJSON{Key: key, Revision: rev, Session: s.ID()})
		} else {
			fmt.Fprintf(stdout, "registered %s at revision %d (session %d); deleted when interrupted\n", key, rev, s.ID())
		}
		select {
		case <-sigs:
			closeSession(s, &cf, stderr)
			return nil
		case <-s.Done():
			return &exitError{code: exitLost, msg: fmt.Sprintf("%s lost: its session %d ended (%v)", what, s.ID(), s.Err())}
		}
	}
	env := childEnv(append([]string{
		"PAXOSD_REGISTER_KEY=" + key,
		"PAXOSD_SESSION_ID=" + strconv.FormatUint(s.ID(), 10),
	}, cf.Env()...)...)
	return runHolding(argv, env, s, &cf, sf.killGrace, sigs, stdout, stderr, what)
}

// keyValueAndCommand reads "KEY VALUE [-- COMMAND ARGS...]" from fs's
// arguments.
func keyValueAndCommand(fs *pflag.FlagSet) (key, value string, argv []string, err error) {
	args := fs.Args()
	if dash := fs.ArgsLenAtDash(); dash >= 0 {
		args, argv = args[:dash], args[dash:]
		if len(argv) == 0 {
			return "", "", nil, fmt.Errorf("%w: register: nothing after --: give a COMMAND, or leave out --", cli.ErrUsage)
		}
	}
	switch {
	case len(args) != 2:
		return "", "", nil, fmt.Errorf("%w: register takes KEY VALUE, got %q; put the COMMAND after -- (see 'paxosd register --help')", cli.ErrUsage, args)
	case args[0] == "":
		return "", "", nil, fmt.Errorf("%w: register: KEY is empty", cli.ErrUsage)
	}
	return args[0], args[1], argv, nil
}
