package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/paxosd/paxosd/statemachine"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/paxosd/paxosd/client"
)

// waitLevel waits until every node's log says the cluster reached level.
func (c *cluster) waitLevel(level int) {
	c.t.Helper()
	// A leader raises the level to its build's highest in one step: the
	// logs may name a higher level and never this one.
	logged := regexp.MustCompile(`"cluster_level":(\d+)`)
	waitFor(c.t, "cluster level "+strconv.Itoa(level), 20*time.Second, func() bool {
		for i := range c.addrs {
			b, _ := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("node%d.log", i+1)))
			reached := false
			for _, m := range logged.FindAllSubmatch(b, -1) {
				if l, _ := strconv.Atoi(string(m[1])); l >= level {
					reached = true
				}
			}
			if !reached {
				return false
			}
		}
		return true
	})
}

// TestRegisterEphemeralKey: paxosd register against three real processes.
//
//   - Its exit status is COMMAND's, and KEY is gone once it has exited.
//   - Without COMMAND it prints the key's revision and session (-w json)
//     and deletes KEY when interrupted.
//   - With COMMAND running, paxosd kv ls lists KEY; KEY never disappears
//     while the leader's process is killed and a new leader takes over
//     (polled every 50 ms throughout, through the survivors).
//   - kill -9 of paxosd register: COMMAND dies with it (parent-death
//     signal), and KEY is gone within TTL + 1 s of the kill. The slack of
//     1 s covers the cluster clock's step (100 ms), the commit of the
//     expiry, and the poll's own period; the session's last keep-alive was
//     at most TTL/3 before the kill, so the expiry itself comes at or
//     before TTL.
func TestRegisterEphemeralKey(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	c := startCluster(t)
	c.waitLevel(statemachine.LevelMax) // ephemeral keys need 9; the leader raises it straight to the highest
	eps := strings.Join(c.addrs, ",")
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := client.New(ctx, c.addrs...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	present := func(key string) (bool, error) {
		gctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := cl.Get(gctx, key)
		if errors.Is(err, client.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	}

	// The exit status is COMMAND's; the key goes with it.
	code, _, stderr := runBin(t, c.bin, "register", "services/once", "x", "--endpoints", eps, "--", "sh", "-c", "exit 7")
	if code != 7 {
		t.Fatalf("register -- sh -c 'exit 7': exit %d (%s), want 7", code, stderr)
	}
	if ok, err := present("services/once"); ok || err != nil {
		t.Fatalf("services/once after its COMMAND exited: present %v, %v", ok, err)
	}

	// Without COMMAND: -w json, then interrupted.
	hold := exec.Command(c.bin, "register", "services/held", "x", "--endpoints", eps, "-w", "json")
	out, err := hold.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := hold.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	var reg struct {
		Key      string `json:"key"`
		Revision uint64 `json:"revision"`
		Session  uint64 `json:"session"`
	}
	if err != nil || json.Unmarshal([]byte(line), &reg) != nil || reg.Key != "services/held" || reg.Revision == 0 || reg.Session == 0 {
		t.Fatalf("register -w json printed %q (%v)", line, err)
	}
	hold.Process.Signal(syscall.SIGTERM)
	if err := hold.Wait(); err != nil {
		t.Fatalf("register interrupted: %v", err)
	}
	if ok, err := present("services/held"); ok || err != nil {
		t.Fatalf("services/held after register was interrupted: present %v, %v", ok, err)
	}

	// With COMMAND, through a leader kill, then kill -9.
	const ttl = 4 * time.Second
	pidFile := filepath.Join(dir, "pid")
	reg9 := exec.Command(c.bin, "register", "services/web-1", "10.0.0.7:8080", "--ttl", ttl.String(), "--endpoints", eps,
		"--", "sh", "-c", "echo $$ > "+pidFile+"; exec sleep 600")
	reg9.Stderr = os.Stderr
	if err := reg9.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { reg9.Wait(); close(exited) }()
	t.Cleanup(func() { reg9.Process.Kill(); <-exited })
	waitFor(t, "services/web-1 and its COMMAND", 10*time.Second, func() bool {
		ok, _ := present("services/web-1")
		return ok && readUint(pidFile) != 0
	})
	ls, err := c.cli(c.addrs, "kv", "ls", "services/")
	if err != nil || !strings.Contains(ls, "services/web-1") || !strings.Contains(ls, "10.0.0.7:8080") {
		t.Fatalf("kv ls services/: %q, %v", ls, err)
	}

	lead := -1
	waitFor(t, "a leader", 10*time.Second, func() bool { lead = c.leader(); return lead >= 0 })
	var survivors []string
	for i, a := range c.addrs {
		if i != lead {
			survivors = append(survivors, a)
		}
	}
	watcher, err := client.New(ctx, survivors...)
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()
	var gone, polls, answered atomic.Int64
	stopPoll := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for {
			select {
			case <-stopPoll:
				return
			case <-time.After(50 * time.Millisecond):
			}
			gctx, cancel := context.WithTimeout(ctx, time.Second)
			_, err := watcher.Get(gctx, "services/web-1")
			cancel()
			polls.Add(1)
			switch {
			case errors.Is(err, client.ErrNotFound):
				gone.Add(1)
			case err == nil:
				answered.Add(1)
			}
		}
	}()
	t.Logf("killing the leader, node %d", lead+1)
	c.kill(lead)
	// Twice the TTL: a session not kept alive through the failover would
	// have expired by then.
	time.Sleep(2 * ttl)
	close(stopPoll)
	<-polled
	if gone.Load() > 0 {
		t.Fatalf("services/web-1 disappeared %d times (of %d polls) while paxosd register was alive through the leader kill", gone.Load(), polls.Load())
	}
	if answered.Load() < 10 {
		t.Fatalf("only %d of %d polls answered after the leader kill: the check saw nothing", answered.Load(), polls.Load())
	}
	select {
	case <-exited:
		t.Fatalf("paxosd register exited during the failover: %v", reg9.ProcessState)
	default:
	}
	t.Logf("services/web-1 present in all %d answered polls (%d polls) across the leader kill", answered.Load(), polls.Load())

	child := int(readUint(pidFile))
	reg9.Process.Signal(syscall.SIGKILL)
	killed := time.Now()
	<-exited
	var goneAfter time.Duration
	for {
		gctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := watcher.Get(gctx, "services/web-1")
		cancel()
		if errors.Is(err, client.ErrNotFound) {
			goneAfter = time.Since(killed)
			break
		}
		if time.Since(killed) > ttl+5*time.Second {
			t.Fatalf("services/web-1 still there %s after kill -9 of paxosd register (TTL %s): %v", time.Since(killed), ttl, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("services/web-1 gone %s after kill -9 of paxosd register (TTL %s)", goneAfter.Round(time.Millisecond), ttl)
	if goneAfter > ttl+time.Second {
		t.Fatalf("services/web-1 gone %s after the kill, more than TTL + 1 s (%s)", goneAfter, ttl+time.Second)
	}
	waitFor(t, "COMMAND to die with paxosd register", 5*time.Second, func() bool {
		return syscall.Kill(child, 0) == syscall.ESRCH
	})
}
