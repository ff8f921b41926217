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
	// ids[i] is the node id in slot i (namespace i), ports[i] the port it
	// listens on; joined[i] says it joined with --join (member replace,
	// Replace) and so starts with --join rather than --peers. lastID is
	// the highest id handed out.
	ids    []int
	ports  []int
	joined []bool
	lastID int
}

type proc struct {
	cmd    *exec.Cmd
	killed bool // ended by the cluster (kill -9), not on its own
	done   chan struct{}
}

// NewCluster prepares (does not start) a cluster on net.
func NewCluster(net *Network, bin, dir string, serveFlags, firstFlags []string) *Cluster {
	n := len(net.Nodes)
	c := &Cluster{Net: net, Bin: bin, Dir: dir, ServeFlags: serveFlags, FirstFlags: firstFlags,
		procs: make([]*proc, n), started: make([]bool, n), rejoinFrom: make([]int64, n),
		ids: make([]int, n), ports: make([]int, n), joined: make([]bool, n), lastID: n}
	for i := range n {
		c.ids[i], c.ports[i] = i+1, NodePort
	}
	return c
}

// Endpoints are the nodes' client addresses.
func (c *Cluster) Endpoints() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.endpoints()
}

func (c *Cluster) endpoints() []string {
	out := make([]string, len(c.Net.Nodes))
	for i := range out {
		out[i] = c.addr(i)
	}
	return out
}

// addr is slot i's address (c.mu held).
func (c *Cluster) addr(i int) string { return fmt.Sprintf("%s:%d", c.Net.IPs[i], c.ports[i]) }

// peers is the members as --peers gives them (c.mu held).
func (c *Cluster) peers() string {
	parts := make([]string, len(c.Net.Nodes))
	for i := range parts {
		parts[i] = fmt.Sprintf("%d=%s", c.ids[i], c.addr(i))
	}
	return strings.Join(parts, ",")
}

// ID is the node id in slot i.
func (c *Cluster) ID(i int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ids[i]
}

// LogPath is slot i's (0-based) log, named after the node id in it; every
// start appends to it.
func (c *Cluster) LogPath(i int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.logPath(i)
}

func (c *Cluster) logPath(i int) string {
	return filepath.Join(c.Dir, fmt.Sprintf("node%d.log", c.ids[i]))
}

func (c *Cluster) dataDir(i int) string {
	return filepath.Join(c.Dir, fmt.Sprintf("node%d", c.ids[i]))
}

// Replace puts a new member in slot i, whose node must not be running
// and must have been removed from the membership: the old node's data
// directory is deleted (its machine is gone), and the slot's next start
// is node id at the slot's address with port (the old one or another),
// joining with --join through the other slots. It returns the new
// address, for member add.
func (c *Cluster) Replace(i, id, port int) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.procs[i] != nil {
		return "", fmt.Errorf("node %d is running", c.ids[i])
	}
	if err := os.RemoveAll(c.dataDir(i)); err != nil {
		return "", err
	}
	c.ids[i], c.ports[i], c.joined[i] = id, port, true
	c.lastID = max(c.lastID, id)
	c.rejoinFrom[i] = 0
	return c.addr(i), nil
}

// NextID is an id no node of the cluster has had.
func (c *Cluster) NextID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastID + 1
}

// Port is the port slot i listens on.
func (c *Cluster) Port(i int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ports[i]
}

// Start starts node i (0-based) in its namespace. The process is
// `ip netns exec NS paxosd serve ...`; ip execs paxosd in place, so the
// pid is paxosd's own and signals reach it directly.
func (c *Cluster) Start(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.procs[i] != nil {
		return fmt.Errorf("node %d is already running", i+1)
	}
	logPath := c.logPath(i)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "{\"chaos\":\"start\",\"time\":%q}\n", time.Now().Format(time.RFC3339Nano))
	args := []string{"netns", "exec", c.Net.Nodes[i], c.Bin, "serve",
		"--id", fmt.Sprint(c.ids[i]), "--listen", c.addr(i), "--data-dir", c.dataDir(i)}
	args = append(args, c.ServeFlags...)
	if c.TLS != nil {
		args = append(args, c.TLS.NodeFlags(c.ids[i])...)
	}
	rejoining := c.rejoining(i)
	switch {
	case c.joined[i] && !rejoining:
		// A member that joined restarts as it first started, with --join
		// (docs/MEMBERSHIP.md): with its state it only asks the others for
		// the membership, or starts from its own if none answers.
		var others []string
		for o := range c.Net.Nodes {
			if o != i {
				others = append(others, c.addr(o))
			}
		}
		args = append(args, "--join", strings.Join(others, ","))
	default:
		// --peers only bootstraps: once the membership changed the log's
		// wins. It names the members as they are now, which is what an
		// operator's configuration would say.
		args = append(args, "--peers", c.peers())
		// --new-cluster (FirstFlags) only the first time: a restarted node
		// must come back from the state it kept, and refuse to start if it
		// kept none, rather than silently starting over.
		if !c.started[i] && !c.joined[i] {
			args = append(args, c.FirstFlags...)
		}
	}
	if rejoining {
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
	id := c.ids[i]
	go func() {
		err := cmd.Wait()
		c.mu.Lock()
		if !p.killed {
			c.exits = append(c.exits, fmt.Sprintf("node %d (pid %d) exited on its own: %v; the end of its log (%s):\n%s",
				id, cmd.Process.Pid, err, logPath, tail(logPath, 5)))
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
		return fmt.Errorf("node %d is running", c.ids[i])
	}
	var size int64
	if fi, err := os.Stat(c.logPath(i)); err == nil {
		size = fi.Size()
	}
	c.rejoinFrom[i] = size + 1 // + 1: 0 means "not rejoining"
	return os.RemoveAll(c.dataDir(i))
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
	f, err := os.Open(c.logPath(i))
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
		return fmt.Errorf("node %d is not running", c.ids[i])
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
			parts[i] = fmt.Sprintf("node %d: %v", c.ID(i), m.Err)
			continue
		}
		s := m.Status
		parts[i] = fmt.Sprintf("node %d: %s ballot %v leader %d commit %d applied %d", c.ID(i), s.Role, s.Ballot, s.Leader, s.Commit, s.Applied)
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
