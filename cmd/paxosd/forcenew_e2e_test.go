package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/paxosd/paxosd/service"
)

// startServe starts node id (slot i of c) at c.addrs[i] with serve's
// args, its output appended to its log, and returns its log's path.
func (c *cluster) startServe(i int, args ...string) string {
	c.t.Helper()
	logPath := filepath.Join(c.dir, fmt.Sprintf("node%d.log", i+1))
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(c.bin, append([]string{"serve", "--id", fmt.Sprint(i + 1), "--listen", c.addrs[i],
		"--data-dir", filepath.Join(c.dir, fmt.Sprintf("node%d", i+1)), "--log-format", "json"}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.procs[i] = cmd
	return logPath
}

// modRevision is key's mod_revision as kv get -w json says it, asked of
// endpoints with flags.
func (c *cluster) modRevision(endpoints []string, key string, flags ...string) uint64 {
	c.t.Helper()
	out, err := c.cli(endpoints, append([]string{"kv", "get", key, "-w", "json"}, flags...)...)
	if err != nil {
		c.t.Fatal(err)
	}
	var kv struct {
		ModRevision uint64 `json:"mod_revision"`
	}
	if err := json.Unmarshal([]byte(out), &kv); err != nil {
		c.t.Fatalf("kv get %s -w json: %v: %q", key, err, out)
	}
	return kv.ModRevision
}

// stop sends SIGTERM and waits: the shutdown an operator's stop does.
func (c *cluster) stop(i int) {
	if p := c.procs[i]; p != nil {
		p.Process.Signal(syscall.SIGTERM)
		p.Wait()
		c.procs[i] = nil
	}
}

// TestForceNewCluster: a three-member cluster loses two members for good;
// serve --force-new-cluster on the survivor's data directory starts a
// one-member cluster that serves every write the survivor had, takes
// writes with revisions far above the old cluster's, refuses a member of
// the old cluster restarted with its old data directory (another cluster
// identity), grows back to three members by two member adds and --join,
// and ignores the flag left on at a later start.
func TestForceNewCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	c := startCluster(t)
	t.Cleanup(func() {
		if t.Failed() {
			c.dumpLogs()
		}
	})
	waitFor(t, "a leader", 20*time.Second, func() bool { return c.leader() >= 0 })
	for i := 0; i < 5; i++ {
		if _, err := c.cli(c.addrs, "kv", "put", fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// Node 1 survives: it has applied every write (so the test can ask
	// for all of them back), and then the others' machines are gone.
	// Both know the cluster's uuid (the leader proposes it after the
	// cluster forms: writes can come first), and node 2 has applied the
	// writes too: it comes back later as a member of the old cluster (a
	// node killed before it learned anything has no identity to be
	// refused for, and a survivor without one none to recover).
	for i := 0; i < 2; i++ {
		waitFor(t, fmt.Sprintf("node %d to apply the writes and know the cluster's uuid", i+1), 10*time.Second, func() bool {
			v, err := c.cli(c.addrs[i:i+1], "kv", "get", "k4", "--serializable")
			return err == nil && strings.TrimSpace(v) == "v4" && logHas(filepath.Join(c.dir, fmt.Sprintf("node%d.log", i+1)), "cluster uuid known")
		})
	}
	before := c.modRevision(c.addrs[:1], "k4", "--serializable")
	// Node 2 stops cleanly, so that what it knows (the uuid's slot among
	// it) is on its disk: after kill -9 its durable watermark may stop
	// short of the uuid.
	c.stop(1)
	c.kill(2)
	c.stop(0)

	log1 := c.startServe(0, "--peers", c.peers(), "--force-new-cluster")
	waitFor(t, "the forced cluster to take a write", 20*time.Second, func() bool {
		_, err := c.cli(c.addrs[:1], "kv", "put", "after", "x")
		return err == nil
	})
	if !logHas(log1, "writes acknowledged by the old cluster that this node had not applied are LOST") {
		t.Fatal("no warning of the lost writes in the log")
	}
	for i := 0; i < 5; i++ {
		if v, err := c.cli(c.addrs[:1], "kv", "get", fmt.Sprintf("k%d", i)); err != nil || strings.TrimSpace(v) != fmt.Sprintf("v%d", i) {
			t.Fatalf("k%d after the force: %q, %v", i, v, err)
		}
	}
	if _, err := os.Stat(service.ForceNewKeptDir(filepath.Join(c.dir, "node1"))); err != nil {
		t.Fatalf("the old data directory is not kept: %v", err)
	}
	after := c.modRevision(c.addrs[:1], "after")
	if after < before+service.DefaultBumpRevision {
		t.Fatalf("revision after the force %d, before %d: not bumped", after, before)
	}
	if m := c.members(c.addrs[:1]); m.Version != 1 || len(m.Members) != 1 || m.Members[0].ID != 1 || m.Members[0].Addr != c.addrs[0] {
		t.Fatalf("members of the forced cluster: %+v", m)
	}

	// Node 2 of the old cluster comes back with its old data directory:
	// the new cluster refuses it, and goes on alone.
	log2 := c.startServe(1, "--peers", c.peers(), "--log-level", "debug")
	waitFor(t, "node 1 to refuse old node 2", 10*time.Second, func() bool {
		return logHas(log1, "another formation") || logHas(log2, "another formation")
	})
	if _, err := c.cli(c.addrs[:1], "kv", "put", "after2", "y"); err != nil {
		t.Fatal(err)
	}
	if m := c.members(c.addrs[:1]); m.Version != 1 || len(m.Members) != 1 {
		t.Fatalf("members after old node 2 came back: %+v", m)
	}
	if _, err := c.cli(c.addrs[1:2], "kv", "get", "after2", "--serializable"); err == nil {
		t.Fatal("old node 2 serves the new cluster's write")
	}
	c.kill(1)

	// The new cluster grows: node 4 is added and joins on an empty
	// data directory, then is promoted.
	addr4 := freePorts(t, 1)[0]
	if out, err := c.cli(c.addrs[:1], "member", "add", "4="+addr4, "--learner"); err != nil || !strings.Contains(out, "membership version 2 is in force") {
		t.Fatalf("member add: %v: %s", err, out)
	}
	i4 := c.startJoiner(4, addr4, filepath.Join(c.dir, "node4"))
	if out, err := c.cli(c.addrs[:1], "member", "promote", "4", "--wait"); err != nil || !strings.Contains(out, "membership version 3 is in force") {
		t.Fatalf("member promote --wait: %v: %s", err, out)
	}
	waitFor(t, "node 4 to serve the survivor's writes", 20*time.Second, func() bool {
		v, err := c.cli([]string{addr4}, "kv", "get", "k0", "--serializable")
		return err == nil && strings.TrimSpace(v) == "v0"
	})
	// And node 5: the cluster is three members again, as the issue's
	// "--force-new-cluster plus two member adds".
	addr5 := freePorts(t, 1)[0]
	if out, err := c.cli(c.addrs[:1], "member", "add", "5="+addr5, "--learner"); err != nil || !strings.Contains(out, "membership version 4 is in force") {
		t.Fatalf("member add 5: %v: %s", err, out)
	}
	i5 := c.startJoiner(5, addr5, filepath.Join(c.dir, "node5"))
	if out, err := c.cli(c.addrs[:1], "member", "promote", "5", "--wait"); err != nil || !strings.Contains(out, "membership version 5 is in force") {
		t.Fatalf("member promote 5 --wait: %v: %s", err, out)
	}
	if _, err := c.cli([]string{c.addrs[0], addr4, addr5}, "kv", "put", "three", "again"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "node 5 to serve the survivor's writes and the latest", 20*time.Second, func() bool {
		a, err1 := c.cli([]string{addr5}, "kv", "get", "k4", "--serializable")
		b, err2 := c.cli([]string{addr5}, "kv", "get", "three", "--serializable")
		return err1 == nil && err2 == nil && strings.TrimSpace(a) == "v4" && strings.TrimSpace(b) == "again"
	})

	// Node 1 restarts with the flag left on: it is ignored (the members
	// added since stay members), with a warning.
	c.stop(0)
	c.startServe(0, "--peers", c.peers(), "--force-new-cluster")
	all := []string{c.addrs[0], addr4, addr5}
	waitFor(t, "a write after node 1's restart", 20*time.Second, func() bool {
		_, err := c.cli(all, "kv", "put", "restarted", "z")
		return err == nil
	})
	// Writes go on through nodes 4 and 5 meanwhile: node 1's line comes
	// when it has started.
	waitFor(t, "node 1 to report the flag left on ignored", 20*time.Second, func() bool { return logHas(log1, "the flag is ignored") })
	waitFor(t, "node 1 to serve the new cluster's membership", 10*time.Second, func() bool {
		out, err := c.cli(c.addrs[:1], "member", "list", "-w", "json")
		var m membersOut
		return err == nil && json.Unmarshal([]byte(out), &m) == nil &&
			m.Version == 5 && len(m.Members) == 3 && !m.Members[1].Learner && !m.Members[2].Learner
	})
	c.kill(i4)
	c.kill(i5)
}

// TestForceNewClusterRefusals: --force-new-cluster on a data directory
// without state, or with flags that contradict it, refuses with one line.
func TestForceNewClusterRefusals(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	addr := freePorts(t, 1)[0]
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--data-dir", filepath.Join(dir, "none")}, "does not exist: run it on a surviving member's data directory"},
		{[]string{"--data-dir", dir}, "holds no state of this node's"},
		{[]string{"--data-dir", dir, "--join", addr}, "leave out --join, --rejoin and --new-cluster"},
	} {
		args := append([]string{"serve", "--id", "1", "--listen", addr, "--force-new-cluster"}, tc.args...)
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("paxosd %s: %v: %s (want %q)", strings.Join(args, " "), err, out, tc.want)
		}
	}
}
