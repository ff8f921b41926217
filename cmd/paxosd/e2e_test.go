package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/proposer"
)

// cluster is three real paxosd processes on loopback.
type cluster struct {
	t     *testing.T
	bin   string
	dir   string
	addrs []string
	procs []*exec.Cmd
	// http, if set, holds each node's --http-listen address.
	http []string
	// bins, if set, holds the binary each node runs (upgrade tests).
	bins []string
	// extra, if set, gives node i's additional serve flags.
	extra func(i int) []string
}

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "paxosd")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freePorts(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	var lns []net.Listener
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	for _, ln := range lns {
		ln.Close()
	}
	return addrs
}

func startCluster(t *testing.T) *cluster {
	return launch(&cluster{t: t, bin: buildBinary(t), dir: t.TempDir(), addrs: freePorts(t, 3)})
}

// votes reports whether a node's log says it votes: it formed the cluster,
// or joined one formed without it and caught up.
func votes(log string) bool {
	return strings.Contains(log, "bootstrap: formed; this node votes") || strings.Contains(log, "rejoined: this node votes again")
}

// launch starts c's nodes, and stops them when the test ends.
func launch(c *cluster) *cluster {
	c.procs = make([]*exec.Cmd, len(c.addrs))
	for i := range c.addrs {
		c.start(i)
	}
	c.t.Cleanup(c.logTailsIfFailed) // runs after the nodes are killed (cleanups run last first)
	c.t.Cleanup(func() {
		for i := range c.procs {
			c.kill(i)
		}
	})
	// Every member votes before the test goes on: one that started late
	// joins the cluster the others formed by the rejoin procedure, and
	// does not count in a quorum until it has caught up.
	waitFor(c.t, "every member to vote", 30*time.Second, func() bool {
		for i := range c.addrs {
			b, _ := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("node%d.log", i+1)))
			if !votes(string(b)) {
				return false
			}
		}
		return true
	})
	return c
}

// logTailsIfFailed prints the end of each node's log when the test
// failed: the directory holding them goes with the test, and a failure
// under make test's load is often not reproduced alone.
func (c *cluster) logTailsIfFailed() {
	if !c.t.Failed() {
		return
	}
	const tail = 40
	for i := range c.addrs {
		b, _ := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("node%d.log", i+1)))
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		lines = lines[max(0, len(lines)-tail):]
		c.t.Logf("node %d's log, last %d lines:\n%s", i+1, len(lines), strings.Join(lines, "\n"))
	}
}

func (c *cluster) peers() string {
	parts := make([]string, len(c.addrs))
	for i, a := range c.addrs {
		parts[i] = fmt.Sprintf("%d=%s", i+1, a)
	}
	return strings.Join(parts, ",")
}

func (c *cluster) start(i int) {
	c.t.Helper()
	logf, err := os.OpenFile(filepath.Join(c.dir, fmt.Sprintf("node%d.log", i+1)), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(c.bin, "serve", "--id", fmt.Sprint(i+1), "--listen", c.addrs[i], "--peers", c.peers(),
		"--data-dir", filepath.Join(c.dir, fmt.Sprintf("node%d", i+1)), "--log-format", "json", "--new-cluster")
	if c.http != nil {
		cmd.Args = append(cmd.Args, "--http-listen", c.http[i])
	}
	if c.extra != nil {
		cmd.Args = append(cmd.Args, c.extra(i)...)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.procs[i] = cmd
}

// kill sends SIGKILL: no shutdown path runs, whatever was not synced is lost.
func (c *cluster) kill(i int) {
	if p := c.procs[i]; p != nil {
		p.Process.Signal(syscall.SIGKILL)
		p.Wait()
		c.procs[i] = nil
	}
}

// cli runs a client command against the given endpoints.
func (c *cluster) cli(endpoints []string, args ...string) (string, error) {
	args = append(args, "--endpoints", strings.Join(endpoints, ","), "--timeout", "15s")
	var out, errb bytes.Buffer
	cmd := exec.Command(c.bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("paxosd %s: %v: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

// statuses asks every endpoint for its status.
func (c *cluster) statuses() []client.MemberStatus {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return client.Unconnected(client.Config{Endpoints: c.addrs}).Status(ctx)
}

// waitFor polls cond until it holds or the deadline passes. It is a bound
// on a test waiting for convergence, not a performance assertion.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *cluster) leader() int {
	for _, m := range c.statuses() {
		if m.Err == nil && m.Status.Role == proposer.Leader.String() {
			for i, a := range c.addrs {
				if a == m.Endpoint {
					return i
				}
			}
		}
	}
	return -1
}

// TestThreeProcessFailover: puts through the CLI, kill -9 of the leader, a
// put through the survivors, the killed node restarts and catches up, and
// every value reads back right.
func TestThreeProcessFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	c := startCluster(t)
	waitFor(t, "a leader", 20*time.Second, func() bool { return c.leader() >= 0 })
	want := map[string]string{}
	for i := 0; i < 5; i++ {
		k, v := fmt.Sprintf("key%d", i), fmt.Sprintf("value%d", i)
		if _, err := c.cli(c.addrs, "kv", "put", k, v); err != nil {
			t.Fatal(err)
		}
		want[k] = v
	}
	var lead int
	waitFor(t, "a leader", 10*time.Second, func() bool { lead = c.leader(); return lead >= 0 })
	t.Logf("killing leader node %d", lead+1)
	c.kill(lead)

	var survivors []string
	for i, a := range c.addrs {
		if i != lead {
			survivors = append(survivors, a)
		}
	}
	if _, err := c.cli(survivors, "kv", "put", "after", "failover"); err != nil {
		t.Fatalf("put after killing the leader: %v", err)
	}
	want["after"] = "failover"
	if _, err := c.cli(survivors, "kv", "put", "key0", "changed"); err != nil {
		t.Fatal(err)
	}
	want["key0"] = "changed"

	c.start(lead)
	waitFor(t, "the restarted node to catch up", 20*time.Second, func() bool {
		st := c.statuses()
		var commits []uint64
		for _, m := range st {
			if m.Err != nil {
				return false
			}
			commits = append(commits, uint64(m.Status.Applied))
		}
		return commits[0] == commits[1] && commits[1] == commits[2] && commits[0] > 0
	})
	for k, v := range want {
		out, err := c.cli([]string{c.addrs[lead]}, "kv", "get", "--serializable", k)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSuffix(out, "\n"); got != v {
			t.Errorf("restarted node: %s = %q, want %q", k, got, v)
		}
		out, err = c.cli(c.addrs, "kv", "get", k)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSuffix(out, "\n"); got != v {
			t.Errorf("linearizable get: %s = %q, want %q", k, got, v)
		}
	}
	if _, err := c.cli(c.addrs, "kv", "get", "no-such-key"); err == nil || !strings.Contains(err.Error(), "key not found: no-such-key") {
		t.Errorf("get of a missing key: err = %v, want a 'key not found' error", err)
	}
	out, err := c.cli(c.addrs, "status")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(out, "leader ") != 1 {
		t.Errorf("status shows %d leaders, want 1:\n%s", strings.Count(out, "leader "), out)
	}
}

// TestUnreachableCluster: a client command against nothing fails with one
// clear line and a non-zero exit.
func TestUnreachableCluster(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"kv", "get", "k", "--endpoints", freePorts(t, 1)[0], "--timeout", "2s"}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "cannot reach any endpoint") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}

// TestUsageErrors: bad command lines exit 2 with a message naming the problem.
func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"frobnicate"},
		{"kv"},
		{"kv", "put", "onlykey"},
		{"kv", "get", "k", "--bogus"},
		{"serve", "--id", "1", "--peers", "1=nohostport"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 2 || errb.Len() == 0 {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and a message", args, code, errb.String())
		}
	}
}

// TestServeUsageErrors: serve's command-line mistakes exit 2 with one line
// naming the mistake, without the service package's prefix.
func TestServeUsageErrors(t *testing.T) {
	dir := t.TempDir()
	peers := "1=127.0.0.1:7401,2=127.0.0.1:7402,3=127.0.0.1:7403"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--id", "9", "--peers", peers, "--data-dir", dir}, "paxosd: node 9 is not in --peers"},
		{[]string{"--id", "1", "--peers", peers}, "paxosd: --data-dir is required"},
		{[]string{"--id", "1", "--peers", "1=127.0.0.1:7401, 2=127.0.0.1 :7402,3=h:3", "--data-dir", dir},
			`paxosd: --peers entry " 2=127.0.0.1 :7402": address "127.0.0.1 :7402" contains a space; want ID=HOST:PORT`},
		{[]string{"--id", "1", "--peers", "1=127.0.0.1:7401,2=a:b:7402,3=h:3", "--data-dir", dir},
			`paxosd: --peers entry "2=a:b:7402": address "a:b:7402": too many colons in address; want ID=HOST:PORT`},
		{[]string{"--id", "1", "--peers", "1=127.0.0.1:7401,2=h:70000,3=h:3", "--data-dir", dir},
			`paxosd: --peers entry "2=h:70000": address "h:70000": port "70000" is not a number from 1 to 65535; want ID=HOST:PORT`},
		{[]string{"--id", "1", "--listen", ":0", "--peers", peers, "--data-dir", dir},
			`paxosd: --listen: address ":0": port "0" is not a number from 1 to 65535`},
		{[]string{"--id", "1", "--peers", peers, "--data-dir", dir, "--snapshot-fetch-rate", "fast"},
			`paxosd: --snapshot-fetch-rate "fast" is not a size: want bytes a second, such as 32MiB or 100MB (0: no bound)`},
		{[]string{"--id", "1", "--peers", peers, "--data-dir", dir, "--install-nice", "20"},
			`paxosd: --install-nice must be 0 to 19 (got 20)`},
	} {
		var out, errb bytes.Buffer
		if code := run(append([]string{"serve"}, tc.args...), &out, &errb); code != 2 || errb.String() != tc.want+"\n" {
			t.Errorf("serve %v: exit %d, stderr %q\nwant exit 2, %q", tc.args, code, errb.String(), tc.want)
		}
	}
}

// TestHelpIsNotAnError: 'kv --help' prints the kv commands and their flags
// and exits 0; 'dev --help' states dev's own default log level.
func TestHelpIsNotAnError(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"kv", "--help"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "paxosd kv watch KEY") || !strings.Contains(out.String(), "--serializable") {
		t.Errorf("kv --help: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	got, err := exec.Command(buildBinary(t), "dev", "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(got), `log level: debug, info, warn, error (default "warn")`) {
		t.Errorf("dev --help: %v; want the log level's default, warn, in:\n%s", err, got)
	}
}

// TestBusyHTTPPortStopsServeBeforeItStarts: a taken --http-listen port is
// a startup error; the node never started (its data directory was not
// even created), rather than joining and then exiting.
func TestBusyHTTPPortStopsServeBeforeItStarts(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := freePorts(t, 1)[0]
	dataDir := filepath.Join(t.TempDir(), "node1")
	var out, errb bytes.Buffer
	code := run([]string{"serve", "--id", "1", "--peers", "1=" + addr, "--data-dir", dataDir, "--new-cluster",
		"--http-listen", busy.Addr().String(), "--log-level", "error"}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "--http-listen "+busy.Addr().String()) {
		t.Errorf("serve with a busy --http-listen: exit %d, stderr %q", code, errb.String())
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Errorf("the node started before --http-listen was bound: %s exists (%v)", dataDir, err)
	}
}
