//go:build linux

package chaos

import (
	"bytes"
	"context"
	"fmt"
	"io"
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
	// TLS, if set, makes every node serve TLS with its certificate, and
	// is what the cluster's own status calls (Leader, StatusLine) use.
	TLS *TLSFiles

	mu      sync.Mutex
	procs   []*proc
	started []bool
	// rejoinFrom[i] >= 0: node i lost its data directory (Wipe) and must
	// start with --rejoin until its log, from that offset on, says it
	// finished rejoining.
	rejoinFrom []int64
	// exits are the processes that ended without the cluster ending them:
	// a crash of paxosd itself, always an anomaly.
	exits []string
}

type proc struct {
	cmd    *exec.Cmd
	killed bool // ended by the cluster (kill -9), not on its own
	done   chan struct{}
}

// NewCluster prepares (does not start) a cluster on net.
func NewCluster(net *Network, bin, dir string, serveFlags, firstFlags []string) *Cluster {
	return &Cluster{Net: net, Bin: bin, Dir: dir, ServeFlags: serveFlags, FirstFlags: firstFlags,
		procs: make([]*proc, len(net.Nodes)), started: make([]bool, len(net.Nodes)), rejoinFrom: make([]int64, len(net.Nodes))}
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
	if c.TLS != nil {
		args = append(args, c.TLS.NodeFlags(i)...)
	}
	// --new-cluster (FirstFlags) only the first time: a restarted node
	// must come back from the state it kept, and refuse to start if it
	// kept none, rather than silently starting over.
	if !c.started[i] {
		args = append(args, c.FirstFlags...)
	}
	if c.rejoining(i) {
		args = append(args, "--rejoin")
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
			c.exits = append(c.exits, fmt.Sprintf("node %d (pid %d) exited on its own: %v; the end of its log (%s):\n%s",
				i+1, cmd.Process.Pid, err, c.LogPath(i), tail(c.LogPath(i), 5)))
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

// rejoinedMsg is what a node logs once it has rebuilt its state after
// --rejoin and votes again (service/rejoin.go).
const rejoinedMsg = "rejoined: this node votes again"

// Wipe deletes the data directory of node i, which must not be running: a
// lost disk. Until the node logs that it has rejoined, every start of it
// passes --rejoin.
func (c *Cluster) Wipe(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.procs[i] != nil {
		return fmt.Errorf("node %d is running", i+1)
	}
	var size int64
	if fi, err := os.Stat(c.LogPath(i)); err == nil {
		size = fi.Size()
	}
	c.rejoinFrom[i] = size + 1 // + 1: 0 means "not rejoining"
	return os.RemoveAll(filepath.Join(c.Dir, fmt.Sprintf("node%d", i+1)))
}

// Rejoining reports whether node i lost its data and has not yet logged
// that it rejoined.
func (c *Cluster) Rejoining(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rejoining(i)
}

// rejoining is Rejoining with c.mu held.
func (c *Cluster) rejoining(i int) bool {
	from := c.rejoinFrom[i] - 1
	if from < 0 {
		return false
	}
	f, err := os.Open(c.LogPath(i))
	if err != nil {
		return true
	}
	defer f.Close()
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return true
	}
	b, err := io.ReadAll(f)
	if err != nil || !bytes.Contains(b, []byte(rejoinedMsg)) {
		return true
	}
	c.rejoinFrom[i] = 0
	return false
}

// Pause stops node i with SIGSTOP: it keeps its sockets, and its peers and
// clients see a node that accepts packets but never answers.
func (c *Cluster) Pause(i int) error { return c.signal(i, syscall.SIGSTOP) }

// Resume continues node i after Pause.
func (c *Cluster) Resume(i int) error { return c.signal(i, syscall.SIGCONT) }

func (c *Cluster) signal(i int, sig syscall.Signal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.procs[i]
	if p == nil {
		return fmt.Errorf("node %d is not running", i+1)
	}
	return p.cmd.Process.Signal(sig)
}

// Running reports whether node i has a process.
func (c *Cluster) Running(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.procs[i] != nil
}

// Pid is node i's process id, 0 when it is not running.
func (c *Cluster) Pid(i int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.procs[i]; p != nil {
		return p.cmd.Process.Pid
	}
	return 0
}

// Exits returns (and forgets) the processes that ended on their own.
func (c *Cluster) Exits() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.exits
	c.exits = nil
	return out
}

// ClientConfig is a client configuration for eps: a short dial timeout (a
// stopped or cut-off node should not hold a call long) and, on a TLS
// cluster, the client certificate.
func (c *Cluster) ClientConfig(eps []string) client.Config {
	cfg := client.Config{Endpoints: eps, DialTimeout: 500 * time.Millisecond}
	if c.TLS != nil {
		cfg.TLS = c.TLS.Client
	}
	return cfg
}

// Leader returns the index of the node that says it leads, or -1. A
// stopped or cut-off node costs a dial timeout, so the call is bounded.
func (c *Cluster) Leader() int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st := client.Unconnected(c.ClientConfig(c.Endpoints())).Status(ctx)
	for i, m := range st {
		if m.Err == nil && m.Status.Role == "leader" {
			return i
		}
	}
	return -1
}

// StatusLine is what each node says of itself, on one line: role, ballot,
// the leader it knows, commit and applied slots; or why it did not answer.
func (c *Cluster) StatusLine() string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st := client.Unconnected(c.ClientConfig(c.Endpoints())).Status(ctx)
	parts := make([]string, len(st))
	for i, m := range st {
		if m.Err != nil {
			parts[i] = fmt.Sprintf("node %d: %v", i+1, m.Err)
			continue
		}
		s := m.Status
		parts[i] = fmt.Sprintf("node %d: %s ballot %v leader %d commit %d applied %d", i+1, s.Role, s.Ballot, s.Leader, s.Commit, s.Applied)
	}
	return strings.Join(parts, "; ")
}

// tail returns the last n lines of a file, indented.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "    (" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	lines = lines[max(0, len(lines)-n):]
	return "    " + strings.Join(lines, "\n    ")
}
