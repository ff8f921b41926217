package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRollingUpgradeFromBaseline: three processes of the upgrade baseline
// (testdata/upgrade/BASELINE, built from this repository's history) under
// `paxosd bench put --clients 16`; each node in turn is stopped (SIGTERM)
// and started again on its data directory with the current build, the
// leader last; then one node is rolled back to the baseline, which either
// refuses the data directory naming the format it does not know, and is
// rolled forward again, or (no snapshot reached its store yet) runs on the
// log, which by then raised the cluster level to this build's highest
// (statemachine.LevelMax, 16): a rollback the docs forbid, which the state
// check catches at its next check slot (the baseline cannot apply the
// level command: its state lacks the level and it hashes the old way, so
// its hash differs). No request may fail; the longest write (the worst
// pause) is logged.
func TestRollingUpgradeFromBaseline(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	baseline := buildBaseline(t)
	current := buildBinary(t)
	c := launch(&cluster{t: t, bin: baseline, dir: t.TempDir(), addrs: freePorts(t, 3)})
	waitFor(t, "a leader", 20*time.Second, func() bool { return c.leader() >= 0 })

	const load = 30 * time.Second
	bench := exec.Command(current, "bench", "put", "--clients", "16", "--warmup", "1s", "--duration", load.String(),
		"--keys", "10000", "--json", "--endpoints", strings.Join(c.addrs, ","))
	var benchOut, benchErr bytes.Buffer
	bench.Stdout, bench.Stderr = &benchOut, &benchErr
	if err := bench.Start(); err != nil {
		t.Fatal(err)
	}
	defer bench.Process.Kill()
	time.Sleep(3 * time.Second)

	// Followers first, the leader last: one election in all.
	leader := c.leader()
	order := []int{(leader + 1) % 3, (leader + 2) % 3, leader}
	for _, i := range order {
		c.replace(i, current)
		time.Sleep(2 * time.Second)
	}
	if l := c.leader(); l < 0 {
		t.Fatal("no leader after the upgrade")
	}
	// Roll one node back (a follower, so the rollback is the only change).
	// Once every member speaks this build's protocol the leader sets the
	// default quota (snapshot format 3) and raises the cluster level to
	// LevelMax (snapshot format 8 at level 16), and this build's stores keep snapshots
	// in generations: the baseline cannot read any of them, and must say so
	// rather than run on state it misreads. If it finds only the log, it
	// runs, refusing the level command as unknown: its state then differs
	// from the others', and the state check takes it out of service once
	// a check slot comes (every 10,000 slots, so not always within the
	// load); its clients move to the other members.
	back := (c.leader() + 1) % 3
	backBin := baseline
	if refused := c.rollback(back, baseline); refused != "" {
		t.Logf("the baseline refused node %d's data directory (%s); rolled forward again", back+1, refused)
		c.replace(back, current)
		backBin = current
	} else {
		t.Logf("the baseline runs node %d on the data directory the current build wrote", back+1)
	}
	defer func() {
		if backBin == baseline {
			b, _ := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("node%d.log", back+1)))
			t.Logf("the state check took the baseline on node %d out of service by the end of the load: %v",
				back+1, bytes.Contains(b, []byte("this node's state diverged")))
		}
	}()

	if err := bench.Wait(); err != nil {
		t.Fatalf("bench: %v\n%s", err, benchErr.String())
	}
	var res struct {
		Ops     uint64 `json:"ops"`
		Errors  uint64 `json:"errors"`
		Latency struct {
			P99, Max float64
		} `json:"latency_ms"`
		LastError string `json:"last_error"`
	}
	if err := json.Unmarshal(benchOut.Bytes(), &res); err != nil {
		t.Fatalf("bench output %q: %v", benchOut.String(), err)
	}
	t.Logf("rolling upgrade under load: %d puts, %d failed, p99 %.1f ms, longest put (the worst write pause) %.0f ms",
		res.Ops, res.Errors, res.Latency.P99, res.Latency.Max)
	if res.Errors != 0 || res.Ops == 0 {
		c.dumpLogs()
		t.Fatalf("%d of %d puts failed during the rolling upgrade; the last: %s", res.Errors, res.Ops, res.LastError)
	}
	for _, i := range []int{0, 1, 2} {
		want := current
		if i == back {
			want = backBin
		}
		if c.bins[i] != want {
			t.Fatalf("node %d runs %s", i+1, c.bins[i])
		}
	}
}

// replace stops node i with SIGTERM and starts it again on its data
// directory with binary bin, then waits until it has caught up with the
// leader.
func (c *cluster) replace(i int, bin string) {
	c.t.Helper()
	if p := c.procs[i]; p != nil {
		p.Process.Signal(syscall.SIGTERM)
		p.Wait()
		c.procs[i] = nil
	}
	if c.bins == nil {
		c.bins = make([]string, len(c.addrs))
	}
	saved := c.bin
	c.bin, c.bins[i] = bin, bin
	c.start(i)
	c.bin = saved
	waitFor(c.t, fmt.Sprintf("node %d (%s) to catch up", i+1, filepath.Base(bin)), 30*time.Second, func() bool { return c.caughtUp(i) })
}

// rollback stops node i and starts it with the older build bin on its data
// directory. It returns "" once the node caught up, or the line with which
// it refused to start, which must name a format version.
func (c *cluster) rollback(i int, bin string) (refused string) {
	c.t.Helper()
	if p := c.procs[i]; p != nil {
		p.Process.Signal(syscall.SIGTERM)
		p.Wait()
		c.procs[i] = nil
	}
	saved := c.bin
	c.bin, c.bins[i] = bin, bin
	c.start(i)
	c.bin = saved
	pid := c.procs[i].Process.Pid
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		// Reaped here if it exited, without Cmd.Wait: the cluster's
		// cleanup waits for a node that runs, and two Waits would race.
		var ws syscall.WaitStatus
		if got, _ := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil); got == pid {
			c.procs[i] = nil
			b, _ := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("node%d.log", i+1)))
			for _, l := range strings.Split(string(b), "\n") {
				if strings.Contains(l, "format version") {
					return l
				}
			}
			c.dumpLogs()
			c.t.Fatalf("the baseline exited (%v) on node %d's data directory without naming a format version", ws, i+1)
		}
		time.Sleep(200 * time.Millisecond)
		if c.caughtUp(i) {
			return ""
		}
	}
	c.dumpLogs()
	c.t.Fatalf("the baseline on node %d neither caught up nor refused within 30s", i+1)
	return ""
}

// caughtUp reports whether node i applied within 64 slots of the leader's
// commit.
func (c *cluster) caughtUp(i int) bool {
	var lead, mine uint64
	for _, ms := range c.statuses() {
		if ms.Err != nil {
			continue
		}
		if ms.Status.Role == "leader" {
			lead = uint64(ms.Status.Commit)
		}
		if ms.Endpoint == c.addrs[i] {
			mine = uint64(ms.Status.Applied)
		}
	}
	return lead > 0 && mine+64 >= lead
}

// buildBaseline builds the upgrade baseline from the repository's history,
// once per commit (kept in the user's cache directory).
func buildBaseline(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../../testdata/upgrade/BASELINE")
	if err != nil {
		t.Fatal(err)
	}
	commit := strings.TrimSpace(string(raw))
	root, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skipf("not in a git checkout (%v): the baseline is built from the repository's history", err)
	}
	repo := strings.TrimSpace(string(root))
	if err := exec.Command("git", "-C", repo, "cat-file", "-e", commit+"^{commit}").Run(); err != nil {
		t.Skipf("the baseline commit %s is not in this checkout's history (a shallow clone?)", commit)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "paxosd-upgrade", commit)
	bin := filepath.Join(dir, "paxosd")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	src := filepath.Join(dir, "src")
	os.RemoveAll(src)
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	archive := exec.CommandContext(ctx, "sh", "-c", fmt.Sprintf("git -C %q archive %s | tar -x -C %q", repo, commit, src))
	if out, err := archive.CombinedOutput(); err != nil {
		t.Fatalf("git archive %s: %v\n%s", commit, err, out)
	}
	build := exec.CommandContext(ctx, "go", "build", "-buildvcs=false", "-o", bin+".tmp", "./cmd/paxosd")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the baseline %s: %v\n%s", commit, err, out)
	}
	if err := os.Rename(bin+".tmp", bin); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(src)
	return bin
}
