package main

// Multi-process tests of `paxosd serve` on bad data directories and full
// disks: the process must end with exit status 1 and one line on stderr
// saying what is wrong (never a panic or a stack trace), and a node whose
// disk fills up must stop rather than acknowledge a write it could not make
// durable.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/paxosd/paxosd/client"
)

// serveOnce runs `paxosd serve` and expects it to fail at once: it returns
// the exit status and stderr. A node that starts serving instead is killed
// after 15 s and fails the test.
func serveOnce(t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, append([]string{"serve"}, args...)...)
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("paxosd serve %s did not exit; stderr:\n%s", strings.Join(args, " "), stderr.String())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}

// checkOneLine fails unless the process exited 1 with exactly the line
// matching want on stderr.
func checkOneLine(t *testing.T, code int, stderr string, want *regexp.Regexp) {
	t.Helper()
	if code != 1 || strings.Count(stderr, "\n") != 1 || !want.MatchString(strings.TrimSuffix(stderr, "\n")) {
		t.Fatalf("exit status %d, stderr:\n%s\nwant status 1 and one line matching\n%s", code, stderr, want)
	}
}

// startServe starts a one-node `paxosd serve` on dir and waits until it
// answers a put. Its stderr is the returned buffer's.
func startServe(t *testing.T, bin, dir, addr string, extra ...string) (*exec.Cmd, *syncWriter) {
	t.Helper()
	args := append([]string{"serve", "--id", "1", "--peers", "1=" + addr, "--data-dir", dir, "--log-format", "json"}, extra...)
	cmd := exec.Command(bin, args...)
	var stderr syncWriter
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := dialCluster(ctx, client.Config{Endpoints: []string{addr}})
	if err != nil {
		t.Fatalf("node on %s: %v\n%s", dir, err, stderr.String())
	}
	defer c.Close()
	if _, err := c.Put(ctx, "started", []byte("yes")); err != nil {
		t.Fatalf("node on %s: %v\n%s", dir, err, stderr.String())
	}
	return cmd, &stderr
}

// dialCluster connects a client, retrying while the nodes are starting
// (client.New fails at once when nothing listens yet) until ctx ends.
func dialCluster(ctx context.Context, cfg client.Config) (*client.Client, error) {
	for {
		c, err := client.NewWithConfig(ctx, cfg)
		if err == nil || ctx.Err() != nil {
			return c, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncWriter is a bytes.Buffer safe for a process's output and the test.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// usedDataDir makes the data directory of a real node: `paxosd serve` run,
// written to and stopped, its memtable then flushed into an sstable (as a
// longer-running node's would be).
func usedDataDir(t *testing.T, bin string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "used")
	cmd, _ := startServe(t, bin, dir, freePorts(t, 1)[0], "--new-cluster")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("stopping the node: %v", err)
	}
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietPebble{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// quietPebble keeps Pebble's informational lines out of the test output.
type quietPebble struct{}

func (quietPebble) Infof(string, ...any)              {}
func (quietPebble) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// copyDir copies src (a data directory: Pebble's files and snap/) to a new
// dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() { // snap/: the snapshot files
			copyDir(t, filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()))
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func lastFile(t *testing.T, dir, pattern string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, pattern))
	if len(m) == 0 {
		t.Fatalf("no %s in %s", pattern, dir)
	}
	sort.Strings(m)
	return m[len(m)-1]
}

// damagedLine is the line `paxosd serve` prints for a damaged directory;
// detail is a regexp for what Pebble found.
func damagedLine(dir, detail string) *regexp.Regexp {
	return regexp.MustCompile("^" + regexp.QuoteMeta("paxosd: error: wal: data directory "+dir+" is damaged (") + detail +
		regexp.QuoteMeta("); the node must not vote from it: restore the directory from a backup, or move it aside and start the node with --rejoin to rebuild it from the other members") + "$")
}

// TestServeRefusesBadDataDir: `paxosd serve` on a data directory that is
// damaged, belongs to another node or cluster, or is in use exits 1 with
// one line naming the directory and the problem.
func TestServeRefusesBadDataDir(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	bin := buildBinary(t)
	used := usedDataDir(t, bin)
	addr := freePorts(t, 1)[0]
	cases := []struct {
		name   string
		damage func(t *testing.T, dir string) *regexp.Regexp
		args   []string // instead of serving as node 1 of the default cluster
	}{
		{"MANIFEST with a byte flipped", func(t *testing.T, dir string) *regexp.Regexp {
			m := lastFile(t, dir, "MANIFEST-*")
			b, _ := os.ReadFile(m)
			b[len(b)/10] ^= 0xff
			os.WriteFile(m, b, 0o644)
			return damagedLine(dir, regexp.QuoteMeta(`pebble: malformed manifest file "`+filepath.Base(m)+`" for DB "`+dir+`"`))
		}, nil},
		{"sstable deleted", func(t *testing.T, dir string) *regexp.Regexp {
			sst := lastFile(t, dir, "*.sst")
			os.Remove(sst)
			num := strings.TrimSuffix(filepath.Base(sst), ".sst")
			return damagedLine(dir, regexp.QuoteMeta("L0: "+num+": file "+num+" (type 2) unknown to the objstorage provider: file does not exist"))
		}, nil},
		{"sstable with a byte flipped", func(t *testing.T, dir string) *regexp.Regexp {
			sst := lastFile(t, dir, "*.sst")
			b, _ := os.ReadFile(sst)
			b[len(b)/4] ^= 0xff
			os.WriteFile(sst, b, 0o644)
			// Pebble names the backing file when the table cache opens the
			// table, not when an iterator reads a block of it: which comes
			// first depends on how many tables L0 holds (wal/options.go).
			return damagedLine(dir, `corrupt data: (pebble: backing file [0-9]+ error: )?pebble/table: invalid table [0-9]+ \(checksum mismatch at [0-9]+/[0-9]+\)`)
		}, nil},
		{"manifest marker deleted", func(t *testing.T, dir string) *regexp.Regexp {
			os.Remove(lastFile(t, dir, "marker.manifest.*"))
			return damagedLine(dir, `it holds Pebble data \([0-9]{6}\.(log|sst)(, [0-9]{6}\.(log|sst))*\) but no database: its manifest marker or MANIFEST is gone`)
		}, nil},
		{"another node's directory", func(t *testing.T, dir string) *regexp.Regexp {
			return regexp.MustCompile("^" + regexp.QuoteMeta(`paxosd: error: wal: data directory `+dir+` belongs to cluster "paxosd" node 1, not cluster "paxosd" node 2`) + "$")
		}, []string{"--id", "2", "--peers", "1=127.0.0.1:1,2=" + addr}},
		{"another cluster's directory", func(t *testing.T, dir string) *regexp.Regexp {
			return regexp.MustCompile("^" + regexp.QuoteMeta(`paxosd: error: wal: data directory `+dir+` belongs to cluster "paxosd" node 1, not cluster "prod" node 1`) + "$")
		}, []string{"--id", "1", "--peers", "1=" + addr, "--cluster-id", "prod"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			copyDir(t, used, dir)
			want := tc.damage(t, dir)
			args := tc.args
			if args == nil {
				args = []string{"--id", "1", "--peers", "1=" + addr}
			}
			code, stderr := serveOnce(t, bin, append(args, "--data-dir", dir)...)
			checkOneLine(t, code, stderr, want)
		})
	}

	t.Run("directory in use", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		copyDir(t, used, dir)
		startServe(t, bin, dir, addr)
		code, stderr := serveOnce(t, bin, "--id", "1", "--peers", "1="+freePorts(t, 1)[0], "--data-dir", dir)
		checkOneLine(t, code, stderr, regexp.MustCompile("^"+regexp.QuoteMeta("paxosd: error: wal: data directory "+dir+
			" is in use (is another paxosd running with this data directory?): resource temporarily unavailable")+"$"))
	})
}

// mountTmpfs mounts a tmpfs of size on a new directory, or skips the test
// where that is not permitted (not root, no mount namespace rights).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small filesystem needs root")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v): the full-disk test needs it", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmounting %s: %v", dir, err)
		}
	})
	return dir
}

// fullDiskCluster is three `paxosd serve` processes, with their logs.
type fullDiskCluster struct {
	t     *testing.T
	bin   string
	addrs []string
	dirs  []string
	procs []*exec.Cmd
	logs  []*syncWriter
	exits []chan int // each process's exit status, once it has exited
}

// start starts node i: the first time with --new-cluster, to create its
// state, later on what its data directory holds.
func (c *fullDiskCluster) start(i int) {
	c.t.Helper()
	var peers []string
	for j, a := range c.addrs {
		peers = append(peers, fmt.Sprintf("%d=%s", j+1, a))
	}
	args := []string{"serve", "--id", fmt.Sprint(i + 1), "--peers", strings.Join(peers, ","),
		"--data-dir", c.dirs[i], "--log-format", "json", "--log-level", "info"}
	if c.procs[i] == nil {
		args = append(args, "--new-cluster")
	}
	cmd := exec.Command(c.bin, args...)
	c.logs[i] = &syncWriter{}
	cmd.Stderr = c.logs[i]
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.procs[i] = cmd
	exit := make(chan int, 1)
	c.exits[i] = exit
	go func() {
		cmd.Wait()
		exit <- cmd.ProcessState.ExitCode()
	}()
}

func startFullDiskCluster(t *testing.T, bin string, dirs []string) *fullDiskCluster {
	c := &fullDiskCluster{t: t, bin: bin, addrs: freePorts(t, 3), dirs: dirs, procs: make([]*exec.Cmd, 3),
		logs: make([]*syncWriter, 3), exits: make([]chan int, 3)}
	for i := range dirs {
		c.start(i)
	}
	t.Cleanup(func() {
		for i, p := range c.procs {
			if p != nil && p.ProcessState == nil {
				p.Process.Kill()
				<-c.exits[i]
			}
		}
	})
	// Every member votes before the disks fill: one that started late
	// joins by the rejoin procedure and does not count in a quorum yet.
	waitFor(t, "every member to vote", 30*time.Second, func() bool {
		for i := range dirs {
			if !votes(c.logs[i].String()) {
				return false
			}
		}
		return true
	})
	return c
}

// load puts distinct keys with 16 KiB values from four clients until
// stop is closed, and returns the keys acknowledged (with their values).
// A put that failed or timed out may or may not have been applied; only
// acknowledged ones are promised to be durable. A client does not give up
// on failures: the disks fill only while puts keep coming, and a loaded
// machine can take several seconds to elect a leader after the first
// node stops (CI once saw every client give up there, and the test then
// waited in vain for a second node to fill its disk).
func (c *fullDiskCluster) load(stop <-chan struct{}) map[string][]byte {
	var mu sync.Mutex
	acked := map[string][]byte{}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			cl, err := dialCluster(ctx, client.Config{Endpoints: c.addrs, AttemptTimeout: time.Second})
			cancel()
			if err != nil {
				return
			}
			defer cl.Close()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("w%d/%05d", w, i)
				value := bytes.Repeat([]byte{byte(w), byte(i), byte(i >> 8), '.'}, 4096)
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_, err := cl.Put(ctx, key, value)
				cancel()
				if err != nil {
					select {
					case <-stop:
					case <-time.After(50 * time.Millisecond):
					}
					continue
				}
				mu.Lock()
				acked[key] = value
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return acked
}

// exited reports whether node i's process has exited.
func (c *fullDiskCluster) exited(i int) bool {
	select {
	case code := <-c.exits[i]:
		c.exits[i] <- code
		return true
	default:
		return false
	}
}

// checkStoppedOnFullDisk waits for node i to exit and checks how: status 1,
// one JSON error line saying why it stops, and one closing line.
func (c *fullDiskCluster) checkStoppedOnFullDisk(i int) {
	c.t.Helper()
	select {
	case code := <-c.exits[i]:
		c.exits[i] <- code
		lines := strings.Split(strings.TrimSuffix(c.logs[i].String(), "\n"), "\n")
		var errs []string
		for _, l := range lines {
			if strings.Contains(l, `"level":"error"`) || strings.HasPrefix(l, "paxosd: error:") ||
				strings.Contains(l, "panic") || strings.Contains(l, "goroutine ") {
				errs = append(errs, l)
			}
		}
		wantJSON := regexp.MustCompile(`"level":"error","node":[0-9],"error":"wal: the data directory's disk is full: wal: pebble fatal error: pebble: fatal commit error: write [^"]*/[0-9]+\.log: no space left on device",.*"message":"cannot persist: the node stops rather than acknowledge what it could not make durable"`)
		wantLast := regexp.MustCompile(`^paxosd: error: wal: the data directory's disk is full: wal: pebble fatal error: pebble: fatal commit error: write [^ ]*/[0-9]+\.log: no space left on device$`)
		if code != 1 || len(errs) != 2 || !wantJSON.MatchString(errs[0]) || !wantLast.MatchString(errs[1]) {
			c.t.Fatalf("node %d: exit status %d, error lines:\n%s\nwant status 1, then\n%s\n%s", i+1, code, strings.Join(errs, "\n"), wantJSON, wantLast)
		}
	case <-time.After(30 * time.Second):
		c.t.Fatalf("node %d did not stop on a full disk; log:\n%s", i+1, c.logs[i].String())
	}
}

// checkAcked reads every acknowledged key back from the restarted cluster.
func (c *fullDiskCluster) checkAcked(acked map[string][]byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := dialCluster(ctx, client.Config{Endpoints: c.addrs})
	if err != nil {
		c.t.Fatal(err)
	}
	defer cl.Close()
	// Key by key: all of them in one list can exceed the 16 MiB frame
	// (a thousand 16 KiB values), which the node refuses with ErrTooLarge.
	for k, v := range acked {
		kv, err := cl.Get(ctx, k)
		if err != nil && !errors.Is(err, client.ErrNotFound) {
			for i := range c.logs {
				c.t.Logf("node %d log:\n%s", i+1, c.logs[i].String())
			}
			c.t.Fatal(err)
		}
		if !bytes.Equal(kv.Value, v) {
			c.t.Errorf("acknowledged put of %s is lost after the restart (read %d bytes)", k, len(kv.Value))
		}
	}
	c.t.Logf("%d puts acknowledged, all durable", len(acked))
}

// TestServeFullDisk fills the disk under a put load, on a real small
// filesystem (a tmpfs; needs root). With one node's disk full, that node
// stops with one error line and the other two go on; with every node's
// disk full, they stop (a node left without a quorum writes nothing, and
// refuses the clients), the clients get errors, a node started again on
// the full disk refuses in one line, and after the disk grows and the
// nodes restart every put that was acknowledged is there.
func TestServeFullDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	if os.Geteuid() != 0 {
		t.Skip("mounting a small filesystem needs root")
	}
	bin := buildBinary(t)
	t.Run("one node's disk", func(t *testing.T) {
		small := mountTmpfs(t, "8m")
		dirs := []string{filepath.Join(small, "n1"), filepath.Join(t.TempDir(), "n2"), filepath.Join(t.TempDir(), "n3")}
		c := startFullDiskCluster(t, bin, dirs)
		stop := make(chan struct{})
		ackedc := make(chan map[string][]byte)
		go func() { ackedc <- c.load(stop) }()
		c.checkStoppedOnFullDisk(0)
		time.Sleep(500 * time.Millisecond) // the others go on meanwhile
		close(stop)
		acked := <-ackedc
		if err := syscall.Mount("tmpfs", small, "tmpfs", syscall.MS_REMOUNT, "size=256m"); err != nil {
			t.Fatal(err)
		}
		c.start(0)
		c.checkAcked(acked)
	})
	t.Run("every node's disk", func(t *testing.T) {
		small := mountTmpfs(t, "8m")
		dirs := []string{filepath.Join(small, "n1"), filepath.Join(small, "n2"), filepath.Join(small, "n3")}
		c := startFullDiskCluster(t, bin, dirs)
		stop := make(chan struct{})
		ackedc := make(chan map[string][]byte)
		go func() { ackedc <- c.load(stop) }()
		// Once a quorum has stopped, nothing can be acknowledged. The
		// last node may live on: without a quorum it writes nothing (a
		// PreVote persists nothing), so its disk never refuses it; it
		// must refuse the clients instead.
		quorumStopped := func() bool {
			n := 0
			for i := range dirs {
				if c.exited(i) {
					n++
				}
			}
			return n >= 2
		}
		deadline := time.Now().Add(60 * time.Second)
		for !quorumStopped() && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if !quorumStopped() {
			for i := range c.logs {
				t.Logf("node %d log:\n%s", i+1, c.logs[i].String())
			}
			t.Fatal("timed out after 60s waiting for a quorum of nodes to stop on the full disk")
		}
		close(stop)
		acked := <-ackedc
		for i := range dirs {
			if c.exited(i) {
				c.checkStoppedOnFullDisk(i)
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			cl, err := dialCluster(ctx, client.Config{Endpoints: []string{c.addrs[i]}})
			if err == nil {
				_, err = cl.Put(ctx, "after/the/disk/filled", []byte("x"))
				cl.Close()
			}
			cancel()
			if err == nil {
				t.Fatalf("node %d acknowledged a put with a quorum of its cluster stopped", i+1)
			}
			t.Logf("node %d, still up without a quorum, refuses: %v", i+1, err)
			c.procs[i].Process.Kill()
			<-c.exits[i]
		}
		// Started again on the full disk, a node (with its state, or a
		// new one) says so in one line rather than crash.
		enospc := func(dir string) *regexp.Regexp {
			return regexp.MustCompile(`^paxosd: error: wal: (cannot write data directory ` + regexp.QuoteMeta(dir) +
				` \(disk full or failing\?\)|opening ` + regexp.QuoteMeta(dir) + `): .*no space left on device$`)
		}
		code, stderr := serveOnce(t, bin, "--id", "1", "--peers", "1="+c.addrs[0]+",2="+c.addrs[1]+",3="+c.addrs[2], "--data-dir", dirs[0])
		checkOneLine(t, code, stderr, enospc(dirs[0]))
		fresh := filepath.Join(small, "fresh")
		code, stderr = serveOnce(t, bin, "--id", "1", "--peers", "1="+c.addrs[0], "--data-dir", fresh, "--new-cluster")
		checkOneLine(t, code, stderr, enospc(fresh))
		if err := syscall.Mount("tmpfs", small, "tmpfs", syscall.MS_REMOUNT, "size=256m"); err != nil {
			t.Fatal(err)
		}
		for i := range dirs {
			c.start(i)
		}
		c.checkAcked(acked)
	})
}
