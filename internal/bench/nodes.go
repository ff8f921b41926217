package bench

// nodes.go runs a cluster of 'paxosd serve' processes on loopback, for the
// runs that must stop and start one node alone (bench failover, bench
// scale): the nodes of 'paxosd dev' share one process.

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/paxosd/paxosd/paxos"
)

// benchNodes is the cluster bench failover and bench scale run
// themselves: node i+1 is procs[i], listening on addrs[i], its data in
// dir/node<i+1>, its log in dir/node<i+1>.log and its pid in
// dir/node<i+1>.pid (for a script's cleanup, should this process die
// without stopping them).
type benchNodes struct {
	bin, dir  string
	removeDir bool
	addrs     []string
	extra     []string
	// beforeStop, if set, is called with i before node i+1 is stopped or
	// killed (bench scale reads its peak RSS then).
	beforeStop func(i int)

	mu    sync.Mutex // procs: bench scale's samplers read them meanwhile
	procs []*exec.Cmd
}

// startBenchNodes starts three nodes of bin (default: this binary) with
// their data under dir (default: a temporary directory, removed by
// stopAll), each with the extra serveFlags.
func startBenchNodes(bin, dir, serveFlags string) (*benchNodes, error) {
	n := &benchNodes{bin: bin, dir: dir, extra: strings.Fields(serveFlags)}
	if n.bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("finding the paxosd binary to run: %w", err)
		}
		n.bin = exe
	}
	if n.dir == "" {
		d, err := os.MkdirTemp("", "paxosd-failover-")
		if err != nil {
			return nil, err
		}
		n.dir, n.removeDir = d, true
	} else if err := os.MkdirAll(n.dir, 0o755); err != nil {
		return nil, err
	}
	addrs, err := benchFreeAddrs(3)
	if err != nil {
		return nil, err
	}
	n.addrs = addrs
	n.procs = make([]*exec.Cmd, len(addrs))
	for i := range addrs {
		if err := n.start(i); err != nil {
			n.stopAll()
			return nil, err
		}
	}
	return n, nil
}

// benchFreeAddrs returns loopback addresses with ports that were free a
// moment ago.
func benchFreeAddrs(k int) ([]string, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var out []string
	for i := 0; i < k; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	return out, nil
}

func (n *benchNodes) start(i int) error {
	peers := make([]string, len(n.addrs))
	for j, a := range n.addrs {
		peers[j] = fmt.Sprintf("%d=%s", j+1, a)
	}
	logf, err := os.OpenFile(n.logFile(i), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own descriptor
	args := []string{"serve", "--id", strconv.Itoa(i + 1), "--listen", n.addrs[i], "--peers", strings.Join(peers, ","),
		"--data-dir", n.dataDir(i), "--log-level", "warn", "--new-cluster"}
	for _, a := range n.extra {
		// "{id}" in an extra flag is the node's id: --http-listen 127.0.0.1:707{id}
		args = append(args, strings.ReplaceAll(a, "{id}", strconv.Itoa(i+1)))
	}
	cmd := exec.Command(n.bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting node %d (%s): %w", i+1, n.bin, err)
	}
	n.setProc(i, cmd)
	return os.WriteFile(n.pidFile(i), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
}

func (n *benchNodes) pidFile(i int) string {
	return filepath.Join(n.dir, fmt.Sprintf("node%d.pid", i+1))
}

// logFile is node i+1's log: each start appends to it.
func (n *benchNodes) logFile(i int) string {
	return filepath.Join(n.dir, fmt.Sprintf("node%d.log", i+1))
}

// dataDir is node i+1's --data-dir.
func (n *benchNodes) dataDir(i int) string {
	return filepath.Join(n.dir, fmt.Sprintf("node%d", i+1))
}

// pid is node i+1's process id (0 when it is not running).
func (n *benchNodes) pid(i int) int {
	if p := n.proc(i); p != nil {
		return p.Process.Pid
	}
	return 0
}

func (n *benchNodes) proc(i int) *exec.Cmd {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.procs[i]
}

func (n *benchNodes) setProc(i int, p *exec.Cmd) {
	n.mu.Lock()
	n.procs[i] = p
	n.mu.Unlock()
}

func (n *benchNodes) count() int { return len(n.procs) }

// stop sends node i+1 SIGTERM and waits for it to exit (SIGKILL after
// grace), returning how long it took.
func (n *benchNodes) stop(i int, grace time.Duration) (time.Duration, error) {
	p := n.proc(i)
	if p == nil {
		return 0, fmt.Errorf("node %d is not running", i+1)
	}
	if n.beforeStop != nil {
		n.beforeStop(i)
	}
	t0 := time.Now()
	if err := p.Process.Signal(syscall.SIGTERM); err != nil {
		return 0, err
	}
	done := make(chan struct{})
	go func() { _ = p.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		_ = p.Process.Kill()
		<-done
	}
	n.setProc(i, nil)
	os.Remove(n.pidFile(i))
	return time.Since(t0), nil
}

func (n *benchNodes) index(id paxos.NodeID) (int, error) {
	i := int(id) - 1
	if i < 0 || i >= len(n.procs) {
		return 0, fmt.Errorf("no node %d in the bench cluster", id)
	}
	return i, nil
}

func (n *benchNodes) kill(_ context.Context, id paxos.NodeID) error {
	i, err := n.index(id)
	if err != nil {
		return err
	}
	p := n.proc(i)
	if p == nil {
		return fmt.Errorf("node %d is not running", id)
	}
	if n.beforeStop != nil {
		n.beforeStop(i)
	}
	if err := p.Process.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	_ = p.Wait()
	n.setProc(i, nil)
	os.Remove(n.pidFile(i))
	return nil
}

func (n *benchNodes) restart(_ context.Context, id paxos.NodeID) error {
	i, err := n.index(id)
	if err != nil {
		return err
	}
	return n.start(i)
}

// stopAll stops every node (SIGTERM, then SIGKILL after a while) and
// removes a temporary data directory.
func (n *benchNodes) stopAll() {
	var wg sync.WaitGroup
	for i := range n.procs {
		if n.proc(i) == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = n.stop(i, 5*time.Second)
		}()
	}
	wg.Wait()
	if n.removeDir {
		os.RemoveAll(n.dir)
	}
}
