// Command paxosd runs a paxosd node, a local development cluster, and the
// client commands that talk to a cluster.
//
//	paxosd serve --id 1 --listen :7401 --peers 1=a:7401,2=b:7401,3=c:7401 --data-dir /var/lib/paxosd
//	paxosd serve --config /etc/paxosd/paxosd.yaml
//	paxosd dev
//	paxosd kv put KEY VALUE | get KEY | del KEY | ls PREFIX
//	paxosd lock NAME -- COMMAND ...
//	paxosd elect NAME --value V -- COMMAND ...
//	paxosd session ls | session revoke ID | lock ls
//	paxosd status
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"

	"github.com/paxosd/paxosd/internal/bench"
	"github.com/paxosd/paxosd/internal/cli"
)

const usage = `paxosd — a Multi-Paxos coordination service

Usage:
  paxosd serve --id N --listen HOST:PORT --peers 1=HOST:PORT,... --data-dir DIR
  paxosd serve --config FILE                        the same from a YAML file (and $PAXOSD_* variables)
  paxosd dev [--data-dir DIR] [--base-port 7401]    a local 3-node cluster
  paxosd kv put KEY VALUE                           set a key
  paxosd kv get KEY [--serializable]                print a key's value
  paxosd kv del KEY                                 delete a key
  paxosd kv ls [PREFIX]                             list keys (and values) by prefix
  paxosd kv watch KEY [--prefix] [--rev N]          print every change of a key or prefix
  paxosd lock NAME [--ttl 10s] -- COMMAND ARGS...    run COMMAND holding lock NAME (token in $PAXOSD_LOCK_TOKEN)
  paxosd lock NAME [--wait=false]                   take lock NAME, print its token, hold it until interrupted
  paxosd lock ls [PREFIX]                           the locks: holder, fencing token, waiters
  paxosd elect NAME --value V -- COMMAND ARGS...    run COMMAND while leader (term in $PAXOSD_ELECTION_TERM)
  paxosd elect NAME --value V                       campaign, print "elected term N", lead until interrupted
  paxosd elect NAME --observe                       print every leadership change
  paxosd elect NAME --leader                        print the current leader's value
  paxosd session ls                                 the sessions: TTL, what each holds and waits for
  paxosd session revoke ID                          end a session now, releasing its locks
  paxosd leader transfer [ID]                       hand the leadership to member ID (default: the most caught-up)
  paxosd quota [get]                                the space quota and its usage
  paxosd quota set BYTES                            set the space quota (e.g. 8GiB, 512MiB, 1G)
  paxosd status                                     every member's role, ballot, commit and applied index;
                                                    exit 1 if one is down or none leads
  paxosd bench WORKLOAD [--clients N]               load generator: put, get, lock, failover, ...
  paxosd version

Client commands find the cluster with --endpoints or $PAXOSD_ENDPOINTS
(default 127.0.0.1:7401,127.0.0.1:7402,127.0.0.1:7403, what 'paxosd dev' starts).
Run 'paxosd COMMAND --help' for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	var exit *exitError
	switch args[0] {
	case "serve":
		err = cmdServe(args[1:], stderr)
	case "dev":
		err = cmdDev(args[1:], stdout, stderr)
	case "kv":
		err = cmdKV(args[1:], stdout)
	case "status":
		err = cmdStatus(args[1:], stdout)
	case "lock":
		err = cmdLock(args[1:], stdout, stderr)
	case "elect":
		err = cmdElect(args[1:], stdout, stderr)
	case "session":
		err = cmdSession(args[1:], stdout)
	case "leader":
		err = cmdLeader(args[1:], stdout)
	case "quota":
		err = cmdQuota(args[1:], stdout)
	case "bench":
		err = bench.Command(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, versionLine())
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		err = fmt.Errorf("%w: unknown command %q (see 'paxosd --help')", cli.ErrUsage, args[0])
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, pflag.ErrHelp):
		return 0
	case errors.As(err, &exit):
		// A command's own exit status (paxosd lock/elect pass on their
		// COMMAND's), with its message if it has one.
		if exit.msg != "" {
			fmt.Fprintln(stderr, "paxosd: error:", exit.msg)
		}
		return exit.code
	case errors.Is(err, cli.ErrUsage):
		fmt.Fprintln(stderr, "paxosd:", trimUsage(err))
		return 2
	default:
		fmt.Fprintln(stderr, "paxosd: error:", err)
		return 1
	}
}

func trimUsage(err error) string {
	s := err.Error()
	const p = "usage: "
	if len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}
