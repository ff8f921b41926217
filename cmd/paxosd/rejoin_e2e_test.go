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

	"github.com/paxosd/paxosd/client"
)

// A member whose data directory is lost refuses to start as if new, with a
// line that says how to recover; with --rejoin it rebuilds itself (by
// snapshot transfer, since the others truncated their logs), votes again
// once caught up, and serves the latest values.
func TestLostDataDirRefusedThenRejoins(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	c := startCluster(t)
	waitFor(t, "a leader", 15*time.Second, func() bool { return c.leader() >= 0 })
	if _, err := c.cli(c.addrs, "kv", "put", "k0", "0"); err != nil {
		t.Fatal(err)
	}
	victim := (c.leader() + 1) % 3
	c.kill(victim)
	dataDir := filepath.Join(c.dir, fmt.Sprintf("node%d", victim+1))
	if err := os.RemoveAll(dataDir); err != nil {
		t.Fatal(err)
	}
	base := []string{"serve", "--id", fmt.Sprint(victim + 1), "--listen", c.addrs[victim], "--peers", c.peers(), "--data-dir", dataDir}

	// Without --rejoin (or --new-cluster) it must refuse, creating nothing.
	out, err := exec.Command(c.bin, base...).CombinedOutput()
	if err == nil {
		t.Fatalf("serve on a lost data directory started:\n%s", out)
	}
	msg := strings.TrimSpace(string(out))
	if strings.Count(msg, "\n") != 0 || !strings.Contains(msg, "holds no state") || !strings.Contains(msg, "--rejoin") {
		t.Fatalf("refusal is not one clear line naming --rejoin:\n%s", msg)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "CURRENT")); err == nil {
		t.Fatal("the refused start created a store")
	}

	// With --rejoin it catches up (from the others' logs here; the
	// snapshot transfer path is tested in-process) and votes again.
	logf, err := os.Create(filepath.Join(c.dir, "rejoin.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(c.bin, append(base, "--rejoin", "--log-format", "json")...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c.procs[victim] = cmd
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := client.New(ctx, c.addrs...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := 40; i < 300; i++ { // past the target: the watermark plus the window (256)
		if _, err := cl.Put(ctx, fmt.Sprintf("k%d", i%5), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the rejoined node to vote again", 30*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(c.dir, "rejoin.log"))
		return strings.Contains(string(b), "rejoined: this node votes again")
	})
	for k := 0; k < 5; k++ {
		want := fmt.Sprint(295 + k)
		waitFor(t, "the rejoined node to serve k"+fmt.Sprint(k), 10*time.Second, func() bool {
			out, err := c.cli([]string{c.addrs[victim]}, "kv", "get", "--serializable", fmt.Sprintf("k%d", k))
			return err == nil && strings.TrimSpace(out) == want
		})
	}
	// The rejoined node now counts: with another member down, writes go on.
	other := (victim + 1) % 3
	c.kill(other)
	survivors := []string{c.addrs[victim], c.addrs[(victim+2)%3]}
	waitFor(t, "a write with the rejoined node in the quorum", 15*time.Second, func() bool {
		_, err := c.cli(survivors, "kv", "put", "after", "rejoin")
		return err == nil
	})
}
