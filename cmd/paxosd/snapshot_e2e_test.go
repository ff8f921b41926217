package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paxosd/paxosd/client"
)

// startRestored starts node i of c on the data directory a restore wrote,
// as an operator does: plain 'paxosd serve', without --new-cluster.
func startRestored(c *cluster, i int) {
	c.t.Helper()
	logf, err := os.OpenFile(filepath.Join(c.dir, fmt.Sprintf("node%d.log", i+1)), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(c.bin, "serve", "--id", fmt.Sprint(i+1), "--listen", c.addrs[i], "--peers", c.peers(),
		"--data-dir", filepath.Join(c.dir, fmt.Sprintf("node%d", i+1)), "--log-format", "json")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.procs[i] = cmd
}

// tail is the end of a log, for a failure's message.
func tail(b []byte) string {
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// offline runs a command that talks to no cluster (snapshot status and
// restore).
func offline(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("paxosd %s: %v: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

// TestSnapshotSaveRestoreProcesses: three serve processes; keys, a held
// lock, a leader, an ephemeral key and a watcher; snapshot save (JSON),
// status (table and JSON), restore into three new data directories with
// new addresses, three new serve processes. The new cluster serves every
// key acknowledged before the save, its revisions and lock tokens are
// above any the old cluster handed out (after the save too), the old
// holder's lock is free, the old leader is gone, a watcher resuming from
// the old cluster gets Compacted, the three members restored the same
// state (hash), and an old member and a new one refuse each other.
func TestSnapshotSaveRestoreProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	old := startCluster(t)
	waitFor(t, "a leader", 20*time.Second, func() bool { return old.leader() >= 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ocl, err := client.New(ctx, old.addrs...)
	if err != nil {
		t.Fatal(err)
	}
	defer ocl.Close()
	want := map[string]string{}
	for i := range 200 {
		k, v := fmt.Sprintf("k/%03d", i), strings.Repeat(fmt.Sprint(i%10), 1000+i)
		if _, err := ocl.Put(ctx, k, []byte(v)); err != nil {
			t.Fatal(err)
		}
		want[k] = v
	}
	sess, err := ocl.NewSession(ctx, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	oldLock, err := sess.Lock(ctx, "jobs")
	if err != nil {
		t.Fatal(err)
	}
	oldLeader, err := sess.Campaign(ctx, "scheduler", []byte("old-replica"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ocl.Put(ctx, "members/old", []byte("x"), client.WithSession(sess)); err != nil {
		t.Fatal(err)
	}
	lastRev, err := ocl.Put(ctx, "k/last", []byte("before the save"))
	if err != nil {
		t.Fatal(err)
	}
	want["k/last"] = "before the save"

	backup := filepath.Join(t.TempDir(), "backup.snap")
	out, err := old.cli(old.addrs, "snapshot", "save", backup, "-w", "json")
	if err != nil {
		t.Fatal(err)
	}
	var saved struct {
		File     string `json:"file"`
		Slot     uint64 `json:"slot"`
		Revision uint64 `json:"revision"`
		Keys     int    `json:"keys"`
		Size     uint64 `json:"size_bytes"`
		CRC      string `json:"crc32c"`
		Sessions int    `json:"sessions"`
		Locks    int    `json:"locks"`
	}
	if err := json.Unmarshal([]byte(out), &saved); err != nil {
		t.Fatalf("snapshot save -w json: %v: %q", err, out)
	}
	if saved.File != backup || saved.Revision < lastRev || saved.Keys != len(want)+1 || saved.Sessions != 1 || saved.Locks != 1 {
		t.Fatalf("saved %+v: want every key acknowledged before (revision >= %d, %d keys with the ephemeral one), the session and its lock", saved, lastRev, len(want)+1)
	}
	// The old cluster goes on after the save: its clients get revisions
	// and tokens the new cluster must stay above.
	maxOldRev, err := ocl.Put(ctx, "k/after", []byte("after the save, not in the backup"))
	if err != nil {
		t.Fatal(err)
	}
	s2, err := ocl.NewSession(ctx, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	l2, err := s2.TryLock(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	maxOldToken := l2.Token

	table, err := offline(t, old.bin, "snapshot", "status", backup)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "SLOT REVISION KEYS SIZE CHECKSUM" ||
		!strings.HasPrefix(strings.Join(strings.Fields(lines[1]), " "), fmt.Sprintf("%d %d %d ", saved.Slot, saved.Revision, saved.Keys)) ||
		!strings.HasSuffix(lines[1], "crc32c:"+saved.CRC) {
		t.Fatalf("snapshot status:\n%s", table)
	}
	out, err = offline(t, old.bin, "snapshot", "status", backup, "-w", "json")
	if err != nil {
		t.Fatal(err)
	}
	var status struct {
		Slot     uint64 `json:"slot"`
		Revision uint64 `json:"revision"`
		Keys     int    `json:"keys"`
		CRC      string `json:"crc32c"`
	}
	if err := json.Unmarshal([]byte(out), &status); err != nil || status.Slot != saved.Slot || status.Revision != saved.Revision || status.Keys != saved.Keys || status.CRC != saved.CRC {
		t.Fatalf("snapshot status -w json: %q (%v), saved %+v", out, err, saved)
	}

	// Three new members, new addresses, new data directories.
	nw := &cluster{t: t, bin: old.bin, dir: t.TempDir(), addrs: freePorts(t, 3)}
	nw.procs = make([]*exec.Cmd, 3)
	t.Cleanup(func() {
		for i := range nw.procs {
			nw.kill(i)
		}
	})
	var hash, uuid string
	for i := range 3 {
		out, err := offline(t, old.bin, "snapshot", "restore", backup, "--data-dir", filepath.Join(nw.dir, fmt.Sprintf("node%d", i+1)),
			"--id", fmt.Sprint(i+1), "--peers", nw.peers(), "-w", "json")
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			UUID     string `json:"cluster_uuid"`
			Hash     string `json:"state_hash"`
			Sessions int    `json:"sessions_ended"`
			Locks    int    `json:"locks_released"`
			Leaders  int    `json:"leaders_dropped"`
			Eph      int    `json:"ephemeral_keys_deleted"`
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("restore -w json: %v: %q", err, out)
		}
		if r.Sessions != 1 || r.Locks != 1 || r.Leaders != 1 || r.Eph != 1 {
			t.Errorf("restore %d: %+v: want one session ended, its lock, leadership and ephemeral key gone", i+1, r)
		}
		if i > 0 && (r.Hash != hash || r.UUID != uuid) {
			t.Fatalf("member %d restored state %s of cluster %s; member 1: %s of %s", i+1, r.Hash, r.UUID, hash, uuid)
		}
		hash, uuid = r.Hash, r.UUID
	}
	if _, err := offline(t, old.bin, "snapshot", "restore", backup, "--data-dir", filepath.Join(nw.dir, "node1"), "--id", "1", "--peers", nw.peers()); err == nil ||
		!strings.Contains(err.Error(), "holds a store already") {
		t.Fatalf("a restore over a data directory in use: %v", err)
	}
	for i := range 3 {
		startRestored(nw, i)
	}
	waitFor(t, "a leader of the restored cluster", 30*time.Second, func() bool { return nw.leader() >= 0 })

	ncl, err := client.New(ctx, nw.addrs...)
	if err != nil {
		t.Fatal(err)
	}
	defer ncl.Close()
	for k, v := range want {
		kv, err := ncl.Get(ctx, k)
		if err != nil || string(kv.Value) != v {
			t.Fatalf("restored cluster: %s: %v (value of %d bytes, want %d)", k, err, len(kv.Value), len(v))
		}
	}
	for _, gone := range []string{"k/after", "members/old"} {
		if _, err := ncl.Get(ctx, gone); !errors.Is(err, client.ErrNotFound) {
			t.Errorf("restored cluster: %s: %v, want not found (written after the save / ephemeral)", gone, err)
		}
	}
	rev, err := ncl.Put(ctx, "k/new", []byte("new cluster"))
	if err != nil || rev <= maxOldRev || rev <= saved.Revision+1_000_000_000 {
		t.Fatalf("first put of the restored cluster: revision %d, %v; want above %d (the old cluster's last) and the backup's + 1e9", rev, err, maxOldRev)
	}
	ns, err := ncl.NewSession(ctx, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	nl, err := ns.TryLock(ctx, "jobs") // its old holder's session is gone
	if err != nil {
		t.Fatalf("lock jobs in the restored cluster: %v", err)
	}
	if nl.Token <= maxOldToken || nl.Token <= oldLock.Token {
		t.Errorf("restored cluster's token %d: want above every old one (%d, %d)", nl.Token, oldLock.Token, maxOldToken)
	}
	if _, err := ncl.Leader(ctx, "scheduler"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("election scheduler in the restored cluster: %v, want no leader (old term %d)", err, oldLeader.Term)
	}
	nleader, err := ns.Campaign(ctx, "scheduler", []byte("new-replica"))
	if err != nil || nleader.Term <= oldLeader.Term || nleader.Term <= maxOldToken {
		t.Errorf("new leader's term %d (%v), want above the old %d", nleader.Term, err, oldLeader.Term)
	}
	// A watcher of the old cluster resumes after the last revision it saw.
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	ch, werr := ncl.Watch(wctx, "k/", client.WithPrefix(), client.WithRevision(maxOldRev+1))
	for range ch {
	}
	wcancel()
	if err := werr(); !errors.Is(err, client.ErrCompacted) {
		t.Errorf("an old watcher resuming at revision %d: %v, want Compacted", maxOldRev+1, err)
	}

	// An old member pointed at new ones: each refuses the other. The old
	// cluster stops; old node 3 restarts alone, with new nodes 1 and 2's
	// addresses as its nodes 1 and 2, so it dials them (its PreVotes).
	for i := range old.procs {
		old.kill(i)
	}
	mixed := &cluster{t: t, bin: old.bin, dir: old.dir, addrs: []string{nw.addrs[0], nw.addrs[1], old.addrs[2]}, procs: make([]*exec.Cmd, 3)}
	startRestored(mixed, 2) // node 3's own data dir: state, no --new-cluster needed
	t.Cleanup(func() { mixed.kill(2) })
	refused := func(path string) bool {
		b, _ := os.ReadFile(path)
		return bytes.Contains(b, []byte("another formation"))
	}
	deadline := time.Now().Add(20 * time.Second)
	for !refused(filepath.Join(nw.dir, "node1.log")) || !refused(filepath.Join(old.dir, "node3.log")) {
		if time.Now().After(deadline) {
			b1, _ := os.ReadFile(filepath.Join(nw.dir, "node1.log"))
			b3, _ := os.ReadFile(filepath.Join(old.dir, "node3.log"))
			t.Fatalf("no refusal (\"another formation\") in new node 1's log and old node 3's after 20 s:\nnew node 1:\n%s\nold node 3:\n%s", tail(b1), tail(b3))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := ncl.Put(ctx, "k/still", []byte("serving")); err != nil {
		t.Fatalf("the restored cluster after the old member knocked: %v", err)
	}
}
