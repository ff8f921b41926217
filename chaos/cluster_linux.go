//go:build linux

package chaos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/paxosd/paxosd/client"
)

// Cluster is the paxosd processes of one schedule, one per node namespace
// of a Network, with their data directories and logs under Dir.
type Cluster struct {
	Net        *Network
	Bin        string
	Dir        string
	ServeFlags []string // appended to every `paxosd serve`
	// FirstFlags are appended to each node's first start only
	// (--new-cluster, where the binary has it: a node that restarts must
	// find the state it had).
	FirstFlags []string

	mu      sync.Mutex
	procs   []*proc
	started []bool
	// exits are the processes that ended without the cluster ending them:
	// a crash of paxosd itself, always an anomaly.
	exits []string
}

type proc struct {
	cmd    *exec.Cmd
	killed bool // ended by the cluster (kill -9), not on its own
	paused bool
	done   chan struct{}
}

// NewCluster prepares (does not start) a cluster on net.
func NewCluster(net *Network, bin, dir string, serveFlags, firstFlags []string) *Cluster {
	return &Cluster{Net: net, Bin: bin, Dir: dir, ServeFlags: serveFlags, FirstFlags: firstFlags,
		procs: make([]*proc, len(net.Nodes)), started: make([]bool, len(net.Nodes))}
}

// Endpoints are the nodes' client addresses.
func (c *Cluster) Endpoints() []string {
	out := make([]string, len(c.Net.Nodes))
	for i := range out {
		out[i] = c.Net.Addr(i)
	}
	return out
}

func (c *Cluster) peers() string {
	parts := make([]string, len(c.Net.Nodes))
	for i := range parts {
		parts[i] = fmt.Sprintf("%d=%s", i+1, c.Net.Addr(i))
	}
	return strings.Join(parts, ",")
}

// LogPath is node i's (0-based) log; every start appends to it.
func (c *Cluster) LogPath(i int) string { return filepath.Join(c.Dir, fmt.Sprintf("node%d.log", i+1)) }

// Start starts node i (0-based) in its namespace. The process is
// `ip netns exec NS paxosd serve ...`; ip execs paxosd in place, so the
// pid is paxosd's own and signals reach it directly.
func (c *Cluster) Start(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.procs[i] != nil {
		return fmt.Errorf("node %d is already running", i+1)
	}
	logf, err := os.OpenFile(c.LogPath(i), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "{\"chaos\":\"start\",\"time\":%q}\n", time.Now().Format(time.RFC3339Nano))
	args := []string{"netns", "exec", c.Net.Nodes[i], c.Bin, "serve",
		"--id", fmt.Sprint(i + 1), "--listen", c.Net.Addr(i), "--peers", c.peers(),
		"--data-dir", filepath.Join(c.Dir, fmt.Sprintf("node%d", i+1))}
	args = append(args, c.ServeFlags...)
	// --new-cluster (FirstFlags) only the first time: a restarted node
	// must come back from the state it kept, and refuse to start if it
	// kept none, rather than silently starting over.
	if !c.started[i] {
		args = append(args, c.FirstFlags...)
	}
	cmd := exec.Command("ip", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// If the test process dies, so do its nodes (the namespaces they would
	// keep alive are removed by the next run).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	c.procs[i], c.started[i] = p, true
	go func() {
		err := cmd.Wait()
		c.mu.Lock()
		if !p.killed {
			c.exits = append(c.exits, fmt.Sprintf("node %d (pid %d) exited on its own: %v (log %s)", i+1, cmd.Process.Pid, err, c.LogPath(i)))
		}
		if c.procs[i] == p {
			c.procs[i] = nil
		}
		c.mu.Unlock()
		close(p.done)
	}()
	return nil
}

// Kill sends node i SIGKILL (nothing of its shutdown path runs; what it had
// not synced is lost) and waits for it to end. Killing a stopped process
// works too.
func (c *Cluster) Kill(i int) {
	c.mu.Lock()
	p := c.procs[i]
	if p != nil {
		p.killed = true
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	c.mu.Unlock()
	if p != nil {
		<-p.done
	}
}

// KillAll kills every node at once (as a power failure would).
func (c *Cluster) KillAll() {
	c.mu.Lock()
	var ps []*proc
	for _, p := range c.procs {
		if p != nil {
			p.killed = true
			_ = p.cmd.Process.Signal(syscall.SIGKILL)
			ps = append(ps, p)
		}
	}
	c.mu.Unlock()
	for _, p := range ps {
		<-p.done
	}
}

// Pause stops node i with SIGSTOP: it keeps its sockets, and its peers and
// clients see a node that accepts packets but never answers.
func (c *Cluster) Pause(i int) error { return c.signal(i, syscall.SIGSTOP, true) }

// Resume continues node i after Pause.
func (c *Cluster) Resume(i int) error { return c.signal(i, syscall.SIGCONT, false) }

func (c *Cluster) signal(i int, sig syscall.Signal, paused bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.procs[i]
	if p == nil {
		return fmt.Errorf("node %d is not running", i+1)
	}
	p.paused = paused
	return p.cmd.Process.Signal(sig)
}

// Running reports whether node i has a process.
func (c *Cluster) Running(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.procs[i] != nil
}

// Exits returns (and forgets) the processes that ended on their own.
func (c *Cluster) Exits() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.exits
	c.exits = nil
	return out
}

// Leader returns the index of the node that says it leads, or -1. A
// stopped or cut-off node costs a dial timeout, so the call is bounded.
func (c *Cluster) Leader() int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st := client.Unconnected(client.Config{Endpoints: c.Endpoints(), DialTimeout: 500 * time.Millisecond}).Status(ctx)
	for i, m := range st {
		if m.Err == nil && m.Status.Role == "leader" {
			return i
		}
	}
	return -1
}
