package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConfigCluster: a cluster whose members take their settings three
// ways forms and serves. Node 1 reads only its config file, node 2 only
// PAXOSD_* variables, and node 3 a file that the environment and the
// command line partly override: its file names a wrong cluster and a wrong
// port, so node 3 joins only if the environment beats the file and the
// command line beats both. Then node 1 restarts from its file alone, as
// its unit would start it.
func TestConfigCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	c := &cluster{t: t, bin: buildBinary(t), dir: t.TempDir(), addrs: freePorts(t, 3), procs: make([]*exec.Cmd, 3)}
	t.Cleanup(func() {
		for i := range c.procs {
			c.kill(i)
		}
	})
	data := func(i int) string { return filepath.Join(c.dir, fmt.Sprintf("node%d", i+1)) }
	peerList := ""
	for i, a := range c.addrs {
		peerList += fmt.Sprintf("  - %d=%s\n", i+1, a)
	}
	file := func(name, text string) string {
		path := filepath.Join(c.dir, name)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	conf1 := file("node1.yaml", fmt.Sprintf("id: 1\npeers:\n%sdata-dir: %s\nlog-format: json\n", peerList, data(0)))
	wrongPort := freePorts(t, 1)[0]
	conf3 := file("node3.yaml", fmt.Sprintf("id: 3\npeers:\n%sdata-dir: %s\nlog-format: json\ncluster-id: not-this-one\nlisten: %q\n",
		peerList, data(2), wrongPort))

	start := func(i int, env []string, args ...string) {
		t.Helper()
		logf, err := os.OpenFile(filepath.Join(c.dir, fmt.Sprintf("node%d.log", i+1)), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer logf.Close()
		cmd := exec.Command(c.bin, append([]string{"serve"}, args...)...)
		cmd.Env = append(cleanEnv(), env...)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		c.procs[i] = cmd
	}
	start(0, nil, "--config", conf1, "--new-cluster")
	start(1, []string{"PAXOSD_ID=2", "PAXOSD_PEERS=" + c.peers(), "PAXOSD_DATA_DIR=" + data(1), "PAXOSD_LOG_FORMAT=json"}, "--new-cluster")
	start(2, []string{"PAXOSD_CLUSTER_ID=paxosd", "PAXOSD_LISTEN=" + wrongPort}, "--config", conf3, "--listen", c.addrs[2], "--new-cluster")

	waitFor(t, "every member up and a leader", 30*time.Second, func() bool {
		_, err := c.cli(c.addrs, "status", "--timeout", "2s")
		return err == nil
	})
	if _, err := c.cli(c.addrs[2:], "kv", "put", "from", "node3"); err != nil {
		t.Fatal(err)
	}
	log3, _ := os.ReadFile(filepath.Join(c.dir, "node3.log"))
	if want := `"from_file":["data-dir","id","log-format","peers"],"from_env":["cluster-id"]`; !strings.Contains(string(log3), want) {
		t.Errorf("node 3's log does not say where its settings came from (%s):\n%s", want, log3)
	}

	// Restarted from the file alone, node 1 finds its state and serves.
	c.kill(0)
	start(0, nil, "--config", conf1)
	waitFor(t, "node 1 to serve the value after its restart", 30*time.Second, func() bool {
		out, err := c.cli(c.addrs[:1], "kv", "get", "--serializable", "from", "--timeout", "2s")
		return err == nil && out == "node3\n"
	})
}
