package main

// child.go runs the COMMAND of 'paxosd lock NAME -- COMMAND' and
// 'paxosd elect NAME -- COMMAND': the process that must run only while the
// lock (or the leadership) is held.
//
// Three ways the COMMAND is stopped, so that it does not outlive what it
// holds:
//
//   - The session is lost while it runs: the COMMAND gets SIGTERM, then
//     SIGKILL after --kill-grace (superviseChild). The session is declared
//     lost by the client before the cluster can expire it (client.Session
//     counts its TTL from the moment it sent the last acknowledged
//     keep-alive), so the SIGTERM comes before the lock can pass to anyone
//     else; the grace period is the caller's to keep shorter than
//     the lock-delay, or to cover with fencing tokens.
//
//   - paxosd itself dies, even by SIGKILL, when no code of ours can run: on
//     Linux the kernel sends the COMMAND SIGTERM (the parent-death signal,
//     prctl PR_SET_PDEATHSIG, set through SysProcAttr.Pdeathsig). Its
//     session is then no longer kept alive and expires after its TTL, so
//     the COMMAND has at least a TTL's worth of time to stop before the
//     lock passes on.
//
//   - paxosd receives SIGINT, SIGTERM or SIGHUP: it forwards the signal to
//     the COMMAND and releases the lock once the COMMAND has exited.
//
// The Go gotcha with Pdeathsig: the kernel sends the parent-death signal
// when the THREAD that forked the child exits, not when the process does.
// The Go runtime runs goroutines on a pool of threads and terminates a
// thread when a goroutine that locked it (runtime.LockOSThread) returns
// without unlocking it. If the fork happened on a thread that later goes
// away, the child would get SIGTERM while paxosd is alive and well. So
// startChild forks from a goroutine that locks its OS thread and never
// unlocks it, and that goroutine stays in cmd.Wait until the child has
// exited: the forking thread lives exactly as long as the child needs it.
// When the goroutine returns (the child has gone), its locked thread is
// terminated, which is harmless.
//
// Process group. When paxosd's stdin is not a terminal (a supervisor, cron,
// a script), the COMMAND runs in a process group of its own and every
// signal paxosd sends goes to the whole group, so that 'sh -c "a; b"'
// stops a and b too, not only sh. When stdin is a terminal the COMMAND
// stays in paxosd's process group so that it can read the terminal; the
// terminal then delivers Ctrl-C (SIGINT) and Ctrl-\ (SIGQUIT) to both, and
// paxosd does not forward those a second time. The parent-death signal
// reaches only the direct child: a shell script that starts other
// processes should 'exec' its last command or pass the TERM on (trap).

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/paxosd/paxosd/internal/cli"
)

// terminationSignals are the signals paxosd lock/elect catch: before the
// COMMAND runs they interrupt the wait (or the hold), while it runs they
// are forwarded to it.
var terminationSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP}

// exitLost is the exit status of paxosd lock/elect when the session is
// lost: the lock or the leadership may already belong to another process.
const exitLost = 3

// exitError ends a command with a given exit status; msg, when not empty,
// is printed as the usual one-line error.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string {
	if e.msg == "" {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.msg
}

// child is a running COMMAND.
type child struct {
	cmd   *exec.Cmd
	group bool          // it leads a process group of its own
	done  chan struct{} // closed once it has exited and been reaped
	err   error         // cmd.Wait's answer; read after done
}

// startChild starts argv with env, on a locked OS thread that stays alive
// until the child exits (see the file comment), with SIGTERM as its
// parent-death signal.
func startChild(argv, env []string, stdout, stderr io.Writer) (*child, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	group := !cli.IsTerminal(os.Stdin)
	cmd.SysProcAttr = childSysProcAttr(group)
	c := &child{cmd: cmd, group: group, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// Never unlocked: the thread that forks the child must outlive it,
		// and a locked goroutine keeps its thread to itself.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		c.err = cmd.Wait()
		close(c.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return c, nil
}

// signal sends sig to the child (to its process group when it has one),
// unless it has already exited.
func (c *child) signal(sig syscall.Signal) {
	select {
	case <-c.done:
		return
	default:
	}
	pid := c.cmd.Process.Pid
	if c.group {
		pid = -pid
	}
	_ = syscall.Kill(pid, sig)
}

// forward passes a signal paxosd received on to the child. Signals the
// terminal sends to its whole foreground group already reached a child in
// paxosd's group.
func (c *child) forward(s os.Signal) {
	sig, ok := s.(syscall.Signal)
	if !ok {
		return
	}
	if !c.group && (sig == syscall.SIGINT || sig == syscall.SIGQUIT) {
		return
	}
	c.signal(sig)
}

// exitCode is the child's exit status as a shell reports it: its code, or
// 128+N when signal N ended it.
func (c *child) exitCode() int {
	var ee *exec.ExitError
	if errors.As(c.err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	if c.err != nil {
		return 1 // it ran, but copying its output failed
	}
	return 0
}

// superviseChild waits for the child to exit, forwarding the signals that
// arrive on sigs. If lost is closed first, it calls onLost, sends the
// child SIGTERM and, if it has not exited after grace, SIGKILL; it returns
// once the child has exited, reporting whether lost came first.
func superviseChild(c *child, sigs <-chan os.Signal, lost <-chan struct{}, grace time.Duration, onLost func()) bool {
	for {
		select {
		case <-c.done:
			return false
		case s := <-sigs:
			c.forward(s)
		case <-lost:
			onLost()
			c.signal(syscall.SIGTERM)
			kill := time.NewTimer(grace)
			defer kill.Stop()
			for {
				select {
				case <-c.done:
					return true
				case s := <-sigs:
					c.forward(s)
				case <-kill.C:
					c.signal(syscall.SIGKILL)
				}
			}
		}
	}
}

// childEnv returns paxosd's environment with extra variables set (and any
// inherited value of theirs replaced).
func childEnv(extra ...string) []string {
	drop := map[string]bool{}
	for _, kv := range extra {
		k, _, _ := strings.Cut(kv, "=")
		drop[k] = true
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// runFailed is the error for a COMMAND that could not be started; 127 as
// a shell answers for a command it cannot run.
func runFailed(argv []string, err error) error {
	return &exitError{code: 127, msg: fmt.Sprintf("cannot run %s: %v", argv[0], err)}
}
