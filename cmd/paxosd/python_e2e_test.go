package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPythonClient runs the Python client's cluster tests
// (clients/python/tests/test_cluster.py) against three real 'paxosd serve'
// processes: KV, paging, CAS, sessions, locks and fencing, elections,
// watches, status, and interoperation both ways with this CLI (a lock held
// from Python blocks 'paxosd lock --wait=false', fencing tokens keep
// growing across the two, keys put by one are read by the other, a Python
// watch sees a CLI put); then, killing nodes, a put and a watch carried
// over a leader's death, and err Unavailable from a node left without a
// quorum. It skips only when no python3 can import msgpack
// (scripts/install-deps.sh installs Debian's python3-msgpack).
func TestPythonClient(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	python := ""
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(p, "-c", "import msgpack").Run() == nil {
			python = p
			break
		}
	}
	if python == "" {
		t.Skip("python3 with msgpack not installed (make deps installs Debian's python3-msgpack)")
	}
	// Progress notifications every 300 ms, so the watch progress test
	// does not wait the default 10 s.
	c := launch(&cluster{t: t, bin: buildBinary(t), dir: t.TempDir(), addrs: freePorts(t, 3),
		extra: func(int) []string { return []string{"--watch-progress-interval", "300ms"} }})
	waitFor(t, "a leader", 20*time.Second, func() bool { return c.leader() >= 0 })

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-m", "unittest", "-v", "tests.test_cluster")
	cmd.Dir = filepath.Join("..", "..", "clients", "python")
	// PAXOSD_PIDS lets the last tests kill nodes (-9): a failover under
	// the client, then a node left without a quorum.
	var pids []string
	for i, p := range c.procs {
		pids = append(pids, fmt.Sprintf("%s=%d", c.addrs[i], p.Process.Pid))
	}
	cmd.Env = append(os.Environ(), "PAXOSD_ENDPOINTS="+strings.Join(c.addrs, ","), "PAXOSD_BIN="+c.bin,
		"PAXOSD_PIDS="+strings.Join(pids, ","), "PAXOSD_WATCH_PROGRESS=0.3")
	out, err := cmd.CombinedOutput()
	t.Logf("python -m unittest tests.test_cluster:\n%s", out)
	if err != nil {
		t.Fatalf("the Python client's tests failed: %v", err)
	}
	if strings.Contains(string(out), "skipped") {
		t.Fatalf("the Python client's tests skipped some against a real cluster")
	}
}
