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
  paxosd dev [--data-dir DIR] [--tls]               a local 3-node cluster (--tls: with throwaway certificates)
  paxosd kv put KEY VALUE                           set a key (VALUE "-": read it from stdin)
  paxosd kv get KEY [--serializable]                print a key's value (-w json: and its revisions)
  paxosd kv del KEY [--prefix]                      delete a key (--prefix: every key under KEY, atomically; prints how many)
  paxosd kv cas KEY VALUE --if-value OLD            set a key if it holds OLD (or --if-mod-rev N, --if-absent)
  paxosd kv ls [PREFIX] [--from KEY] [--limit N]    list keys (and values) by prefix (--count-only: how many)
  paxosd kv watch KEY [--prefix] [--rev N]          print every change of a key or prefix (--prev-kv: and the value before)
  paxosd txn < TXN                                  a transaction: compares, then/else operations (etcdctl's format)
  paxosd lock NAME [--ttl 10s] -- COMMAND ARGS...    run COMMAND holding lock NAME (token in $PAXOSD_LOCK_TOKEN)
  paxosd lock NAME [--wait=false]                   take lock NAME, print its token, hold it until interrupted
  paxosd lock ls [PREFIX]                           the locks: holder, fencing token, waiters
  paxosd elect NAME --value V -- COMMAND ARGS...    run COMMAND while leader (term in $PAXOSD_ELECTION_TERM)
  paxosd elect NAME --value V                       campaign, print "elected term N", lead until interrupted
  paxosd elect NAME --observe                       print every leadership change
  paxosd elect NAME --leader                        print the current leader's value
  paxosd register KEY VALUE [--ttl 10s] -- COMMAND  keep KEY=VALUE while COMMAND runs (an ephemeral key; gone a TTL after paxosd dies)
  paxosd session ls                                 the sessions: TTL, what each holds and waits for
  paxosd session revoke ID                          end a session now, releasing its locks
  paxosd leader transfer [ID]                       hand the leadership to member ID (default: the most caught-up)
  paxosd quota [get]                                the space quota and its usage
  paxosd quota set BYTES                            set the space quota (e.g. 8GiB, 512MiB, 1G)
  paxosd user add NAME [--password-stdin]           add a user (also: user list, delete, grant-role, revoke-role)
  paxosd role add NAME                              add a role (also: role list, delete, revoke)
  paxosd role grant NAME --prefix P --readwrite     let a role read and write under P (or --read, --write)
  paxosd auth enable|disable|status                 check every request against the users' roles
  paxosd snapshot save FILE                         save a backup: a snapshot taken now, checked, written atomically
  paxosd snapshot status FILE                       check a backup; print its slot, revision, keys, size, checksum
  paxosd snapshot restore FILE --data-dir DIR --id ID --peers 1=HOST:PORT,...
                                                    a data dir from which 'paxosd serve' starts a NEW cluster
  paxosd member list                                members: id, address, voter or learner, reachable, applied, lag
  paxosd member add ID=HOST:PORT [--learner]        add a member, then start it with serve --join
  paxosd member promote ID [--wait]                 make a learner a voter (--wait: once caught up)
  paxosd member remove ID                           remove a member
  paxosd member update ID=HOST:PORT                 record a member's new address
  paxosd status                                     every member's role, ballot, commit and applied index;
                                                    exit 1 if one is down or none leads
  paxosd bench WORKLOAD [--clients N]               load generator: put, get, lock, sessions, watch, ...
  paxosd version

Client commands find the cluster with --endpoints or $PAXOSD_ENDPOINTS
(default 127.0.0.1:7401,127.0.0.1:7402,127.0.0.1:7403, what 'paxosd dev' starts);
for a cluster with TLS they take --cacert, --cert and --key, or $PAXOSD_CACERT,
$PAXOSD_CERT and $PAXOSD_KEY (docs/SECURITY.md); with auth enabled,
--user NAME[:PASSWORD] or $PAXOSD_USER and $PAXOSD_PASSWORD (or a client
certificate whose CommonName is the user).
Those that print data take -w json (--write-out json): one JSON object, one per
line for kv watch and elect --observe, and errors as {"error": "..."} on stderr
(docs/CLI.md).
Run 'paxosd COMMAND --help' for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs a command with the process's stdin.
func run(args []string, stdout, stderr io.Writer) int {
	return runStdin(args, os.Stdin, stdout, stderr)
}

// runStdin runs the command args and returns its exit status. An error
// is one line on stderr, or with -w json an {"error": ...} object.
func runStdin(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
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
		err = cmdKV(args[1:], stdin, stdout)
	case "status":
		err = cmdStatus(args[1:], stdout)
	case "lock":
		err = cmdLock(args[1:], stdout, stderr)
	case "elect":
		err = cmdElect(args[1:], stdout, stderr)
	case "register":
		err = cmdRegister(args[1:], stdout, stderr)
	case "session":
		err = cmdSession(args[1:], stdout)
	case "leader":
		err = cmdLeader(args[1:], stdout)
	case "quota":
		err = cmdQuota(args[1:], stdout)
	case "txn":
		err = cmdTxn(args[1:], stdin, stdout)
	case "user":
		err = cmdUser(args[1:], stdin, stdout)
	case "role":
		err = cmdRole(args[1:], stdout)
	case "auth":
		err = cmdAuth(args[1:], stdout)
	case "snapshot":
		err = cmdSnapshot(args[1:], stdout, stderr)
	case "member":
		err = cmdMember(args[1:], stdout)
	case "bench":
		err = bench.Command(args[1:], stdout, stderr)
	case "version", "--version":
		err = cmdVersion(args[1:], stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		err = fmt.Errorf("%w: unknown command %q (see 'paxosd --help')", cli.ErrUsage, args[0])
	}
	asJSON := writesOut[args[0]] && jsonRequested(args[1:])
	switch {
	case err == nil:
		return 0
	case errors.Is(err, pflag.ErrHelp):
		return 0
	case errors.As(err, &exit):
		// A command's own exit status (paxosd lock/elect pass on their
		// COMMAND's), with its message if it has one.
		if exit.msg != "" {
			printError(stderr, asJSON, "paxosd: error: ", exit.msg)
		}
		return exit.code
	case errors.Is(err, cli.ErrUsage):
		printError(stderr, asJSON, "paxosd: ", trimUsage(err))
		return 2
	default:
		printError(stderr, asJSON, "paxosd: error: ", err.Error())
		return 1
	}
}

// writesOut are the commands that take -w.
var writesOut = map[string]bool{
	"kv": true, "status": true, "lock": true, "elect": true, "session": true, "register": true,
	"leader": true, "quota": true, "version": true, "txn": true,
	"user": true, "role": true, "auth": true, "snapshot": true, "member": true,
}

func trimUsage(err error) string {
	s := err.Error()
	const p = "usage: "
	if len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}
