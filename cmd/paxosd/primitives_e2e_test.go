package main

// Multi-process tests of paxosd lock and paxosd elect: real 'paxosd serve'
// nodes, real 'paxosd lock'/'paxosd elect' processes, and as their COMMAND
// this very test binary re-executed in a child mode (TestMain looks at
// PAXOSD_TEST_CHILD), which records what it does in files the test reads.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	switch mode := os.Getenv("PAXOSD_TEST_CHILD"); mode {
	case "":
		os.Exit(m.Run())
	case "critical":
		os.Exit(criticalChild(os.Getenv("PAXOSD_TEST_DIR")))
	case "leader":
		os.Exit(leaderChild(os.Getenv("PAXOSD_TEST_DIR")))
	case "paxosd":
		// This binary as paxosd itself, without building one: the
		// arguments are paxosd's (json_e2e_test.go).
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	default:
		fmt.Fprintf(os.Stderr, "unknown PAXOSD_TEST_CHILD %q\n", mode)
		os.Exit(2)
	}
}

// appendLine appends one line to a file with a single O_APPEND write, so
// that lines of concurrent processes never interleave.
func appendLine(path, format string, args ...any) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	if _, err := f.WriteString(fmt.Sprintf(format, args...) + "\n"); err != nil {
		panic(err)
	}
}

func readUint(path string) uint64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return n
}

func readLines(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return strings.FieldsFunc(string(b), func(r rune) bool { return r == '\n' })
}

// criticalChild is one critical section, run by 'paxosd lock counter --
// <this binary>' with PAXOSD_TEST_CHILD=critical. It records its start,
// checks its fencing token against the last one seen, and increments the
// shared counter slowly (read, sleep, write) so that two overlapping
// sections would lose an increment. SIGTERM (from paxosd when the session
// is lost, or the parent-death signal) aborts it before the write.
//
// If the file "hold" exists, the first child to remove it holds the lock
// for up to a minute (the test kills its paxosd lock meanwhile), after
// writing "PID PPID" to the file "holding".
func criticalChild(dir string) int {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	token, err := strconv.ParseUint(os.Getenv("PAXOSD_LOCK_TOKEN"), 10, 64)
	if err != nil || os.Getenv("PAXOSD_LOCK_NAME") != "counter" {
		appendLine(filepath.Join(dir, "violations"), "bad environment: token %q name %q", os.Getenv("PAXOSD_LOCK_TOKEN"), os.Getenv("PAXOSD_LOCK_NAME"))
		return 1
	}
	pid, ppid := os.Getpid(), os.Getppid()
	appendLine(filepath.Join(dir, "events"), "start %d %d %d %d", token, time.Now().UnixNano(), pid, ppid)
	if last := readUint(filepath.Join(dir, "last-token")); token <= last {
		appendLine(filepath.Join(dir, "violations"), "token %d after token %d", token, last)
	}
	if err := os.WriteFile(filepath.Join(dir, "last-token"), []byte(strconv.FormatUint(token, 10)), 0o644); err != nil {
		panic(err)
	}
	n := readUint(filepath.Join(dir, "counter"))
	sleep := 3 * time.Millisecond
	if os.Remove(filepath.Join(dir, "hold")) == nil {
		sleep = time.Minute
		tmp := filepath.Join(dir, "holding.tmp")
		if err := os.WriteFile(tmp, []byte(fmt.Sprintf("%d %d", pid, ppid)), 0o644); err != nil {
			panic(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "holding")); err != nil {
			panic(err)
		}
	}
	select {
	case <-time.After(sleep):
	case <-term:
		appendLine(filepath.Join(dir, "sigterm"), "%d %d", pid, time.Now().UnixNano())
		return 143
	}
	if err := os.WriteFile(filepath.Join(dir, "counter"), []byte(strconv.FormatUint(n+1, 10)), 0o644); err != nil {
		panic(err)
	}
	appendLine(filepath.Join(dir, "events"), "end %d %d %d %d", token, time.Now().UnixNano(), pid, ppid)
	return 0
}

// leaderChild is the work of an elected replica, run by 'paxosd elect
// sched -- <this binary>' with PAXOSD_TEST_CHILD=leader: it records when
// it starts and when it stops (on SIGTERM or SIGINT).
func leaderChild(dir string) int {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	name, term := os.Getenv("PAXOSD_TEST_NAME"), os.Getenv("PAXOSD_ELECTION_TERM")
	log := filepath.Join(dir, "leadership")
	appendLine(log, "start %s %s %d %d", name, term, time.Now().UnixNano(), os.Getppid())
	<-sig
	appendLine(log, "stop %s %s %d %d", name, term, time.Now().UnixNano(), os.Getppid())
	return 0
}

// testChildEnv is the environment of a COMMAND that re-executes this test
// binary. A binary built with -race sleeps a second at exit (to let other
// goroutines report races) unless told not to: that second would be spent
// holding the lock.
func testChildEnv(extra ...string) []string {
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	return append(append(os.Environ(), "GORACE="+gorace), extra...)
}

func testBinary(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// section is one critical section as the children recorded it.
type section struct {
	token      uint64
	start, end int64 // unix nanos; end 0 if it did not finish
	pid, ppid  int
}

func readSections(t *testing.T, dir string) []section {
	t.Helper()
	byToken := map[uint64]*section{}
	for _, line := range readLines(filepath.Join(dir, "events")) {
		var kind string
		var s section
		var at int64
		if _, err := fmt.Sscanf(line, "%s %d %d %d %d", &kind, &s.token, &at, &s.pid, &s.ppid); err != nil {
			t.Fatalf("events: bad line %q: %v", line, err)
		}
		switch kind {
		case "start":
			if byToken[s.token] != nil {
				t.Fatalf("events: token %d started twice", s.token)
			}
			s.start = at
			byToken[s.token] = &s
		case "end":
			if byToken[s.token] == nil {
				t.Fatalf("events: token %d ended without starting", s.token)
			}
			byToken[s.token].end = at
		}
	}
	var out []section
	for _, s := range byToken {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start < out[j].start })
	return out
}

func countEnded(t *testing.T, dir string) int {
	n := 0
	for _, line := range readLines(filepath.Join(dir, "events")) {
		if strings.HasPrefix(line, "end ") {
			n++
		}
	}
	return n
}

// sigterms maps a child's pid to when it got SIGTERM.
func sigterms(t *testing.T, dir string) map[int]int64 {
	out := map[int]int64{}
	for _, line := range readLines(filepath.Join(dir, "sigterm")) {
		var pid int
		var at int64
		if _, err := fmt.Sscanf(line, "%d %d", &pid, &at); err != nil {
			t.Fatalf("sigterm: bad line %q", line)
		}
		out[pid] = at
	}
	return out
}

// TestLockMutualExclusion: four workers loop 'paxosd lock counter --ttl 2s
// -- <critical section>' against three real nodes while the leader node is
// killed (-9) and restarted, and while one paxosd lock process is killed
// (-9) holding the lock. Checks: the fencing tokens the critical sections
// see only grow, sections never overlap, no increment is lost, the killed
// holder's COMMAND got SIGTERM at once (parent-death signal) and the lock
// passed on within TTL + 1 s.
func TestLockMutualExclusion(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	const ttl = 2 * time.Second
	c := startCluster(t)
	dir := t.TempDir()
	exe := testBinary(t)
	waitFor(t, "a leader", 20*time.Second, func() bool { return c.leader() >= 0 })

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stop atomic.Bool
	var wg sync.WaitGroup
	var mu sync.Mutex
	outcomes := map[string]int{}
	const workers = 4
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("worker%d.log", w)))
			if err != nil {
				panic(err)
			}
			defer logf.Close()
			for !stop.Load() {
				cmd := exec.CommandContext(ctx, c.bin, "lock", "counter", "--ttl", ttl.String(),
					"--endpoints", strings.Join(c.addrs, ","), "--timeout", "15s", "--", exe)
				cmd.Env = testChildEnv("PAXOSD_TEST_CHILD=critical", "PAXOSD_TEST_DIR="+dir)
				cmd.Stdout, cmd.Stderr = logf, logf
				err := cmd.Run()
				outcome := "ok"
				if err != nil {
					outcome = err.Error()
					fmt.Fprintf(logf, "--- paxosd lock: %v\n", err)
				}
				mu.Lock()
				outcomes[outcome]++
				mu.Unlock()
			}
		}()
	}
	defer func() {
		stop.Store(true)
		if t.Failed() {
			cancel() // a paxosd lock may wait forever on a broken cluster
		}
		wg.Wait()
	}()
	progress := func(what string, more int) {
		t.Helper()
		target := countEnded(t, dir) + more
		waitFor(t, what, 30*time.Second, func() bool { return countEnded(t, dir) >= target })
	}
	progress("first critical sections", 10)

	// Kill the leader node, make progress without it, bring it back.
	lead := c.leader()
	if lead < 0 {
		t.Fatal("no leader")
	}
	t.Logf("kill -9 leader node %d", lead+1)
	c.kill(lead)
	progress("critical sections without the old leader", 10)
	c.start(lead)
	progress("critical sections after the restart", 5)

	// Kill a paxosd lock process while its COMMAND holds the lock.
	if err := os.WriteFile(filepath.Join(dir, "hold"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var holderPid, holderPpid int
	waitFor(t, "a child holding the lock", 20*time.Second, func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "holding"))
		if err != nil {
			return false
		}
		_, err = fmt.Sscanf(string(b), "%d %d", &holderPid, &holderPpid)
		return err == nil
	})
	killedAt := time.Now()
	if err := syscall.Kill(holderPpid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 paxosd lock (pid %d): %v", holderPpid, err)
	}
	t.Logf("kill -9 paxosd lock pid %d, whose COMMAND pid %d holds the lock", holderPpid, holderPid)
	var next section
	waitFor(t, "the next critical section after the kill", 20*time.Second, func() bool {
		for _, s := range readSections(t, dir) {
			if s.start > killedAt.UnixNano() {
				next = s
				return true
			}
		}
		return false
	})
	handover := time.Duration(next.start - killedAt.UnixNano())
	t.Logf("handover after kill -9 of the holder: %s (TTL %s)", handover, ttl)
	if handover > ttl+time.Second {
		t.Errorf("the lock passed on %s after its holder was killed; the bound is TTL + 1s = %s", handover, ttl+time.Second)
	}
	waitFor(t, "the orphaned COMMAND to get SIGTERM", 5*time.Second, func() bool {
		_, ok := sigterms(t, dir)[holderPid]
		return ok
	})
	if at := sigterms(t, dir)[holderPid]; at >= next.start {
		t.Errorf("the orphaned COMMAND got SIGTERM %s after the next holder started", time.Duration(at-next.start))
	} else {
		t.Logf("the orphaned COMMAND got SIGTERM %s after its paxosd lock was killed", time.Duration(at-killedAt.UnixNano()))
	}
	progress("critical sections after the holder's death", 5)
	stop.Store(true)
	wg.Wait()

	// Checks.
	if v := readLines(filepath.Join(dir, "violations")); len(v) > 0 {
		t.Errorf("%d fencing violations: %q", len(v), v)
	}
	sections := readSections(t, dir)
	ended := 0
	terms := sigterms(t, dir)
	for i, s := range sections {
		if s.end != 0 {
			ended++
		}
		if i == 0 {
			continue
		}
		prev := sections[i-1]
		if s.token <= prev.token {
			t.Errorf("token %d started after token %d", s.token, prev.token)
		}
		// The previous section must be over before this one starts: it
		// ended, or it was stopped by SIGTERM.
		over := prev.end
		if over == 0 {
			over = terms[prev.pid]
		}
		switch {
		case over == 0:
			t.Errorf("section with token %d neither ended nor got SIGTERM", prev.token)
		case over > s.start:
			t.Errorf("sections overlap: token %d was still running %s after token %d started", prev.token, time.Duration(over-s.start), s.token)
		case prev.end == 0:
			t.Logf("token %d started %s after token %d stopped", s.token, time.Duration(s.start-over), prev.token)
		}
	}
	if got := readUint(filepath.Join(dir, "counter")); got != uint64(ended) {
		t.Errorf("counter = %d, want %d (the number of completed critical sections)", got, ended)
	}
	mu.Lock()
	t.Logf("%d critical sections (%d completed); paxosd lock outcomes: %v", len(sections), ended, outcomes)
	mu.Unlock()
	for w := 0; w < workers; w++ {
		for _, line := range readLines(filepath.Join(dir, fmt.Sprintf("worker%d.log", w))) {
			if strings.HasPrefix(line, "paxosd:") {
				t.Logf("worker %d: %s", w, line)
			}
		}
	}
}

// replica runs 'paxosd elect' over and over, like a supervisor that
// restarts a crashed service.
type replica struct {
	name string
	args []string
	env  []string
	bin  string
	log  *os.File

	mu   sync.Mutex
	cmd  *exec.Cmd
	stop bool
	done chan struct{}
}

func (r *replica) run() {
	defer close(r.done)
	for {
		r.mu.Lock()
		if r.stop {
			r.mu.Unlock()
			return
		}
		cmd := exec.Command(r.bin, r.args...)
		cmd.Env = r.env
		cmd.Stdout, cmd.Stderr = r.log, r.log
		if err := cmd.Start(); err != nil {
			r.mu.Unlock()
			panic(err)
		}
		r.cmd = cmd
		r.mu.Unlock()
		err := cmd.Wait()
		r.mu.Lock()
		r.cmd = nil
		r.mu.Unlock()
		fmt.Fprintf(r.log, "--- paxosd elect exited: %v\n", err)
		time.Sleep(200 * time.Millisecond)
	}
}

// shutdown stops restarting and sends the running paxosd elect SIGTERM,
// which it forwards to its COMMAND before resigning.
func (r *replica) shutdown() {
	r.mu.Lock()
	r.stop = true
	if r.cmd != nil {
		r.cmd.Process.Signal(syscall.SIGTERM)
	}
	r.mu.Unlock()
}

// leadership is one "start" or "stop" of a leader's COMMAND.
type leadership struct {
	kind, name string
	term       uint64
	at         int64
	ppid       int
}

func readLeadership(t *testing.T, dir string) []leadership {
	var out []leadership
	for _, line := range readLines(filepath.Join(dir, "leadership")) {
		var l leadership
		if _, err := fmt.Sscanf(line, "%s %s %d %d %d", &l.kind, &l.name, &l.term, &l.at, &l.ppid); err != nil {
			t.Fatalf("leadership: bad line %q: %v", line, err)
		}
		out = append(out, l)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].at < out[j].at })
	return out
}

// current returns the latest start that has no stop yet.
func currentLeader(events []leadership) (leadership, bool) {
	stopped := map[uint64]bool{}
	var cur leadership
	found := false
	for _, e := range events {
		switch e.kind {
		case "stop":
			stopped[e.term] = true
		case "start":
			cur, found = e, true
		}
	}
	if !found || stopped[cur.term] {
		return leadership{}, false
	}
	return cur, true
}

// TestElectionFailover: three replicas run 'paxosd elect sched --value
// replicaN --ttl 2s -- <work>', each talking to a single node (replica i
// to node i), so that killing a node cuts off exactly the replica that
// uses it. Kill -9 the leading paxosd elect: another replica leads within
// TTL + 2 s and the killed one's work got SIGTERM (parent-death signal).
// Then kill -9 the node the new leader talks to: its paxosd elect loses
// its session, stops its work, and a replica on a live node takes over.
// Throughout, the intervals between a work's start and stop never
// overlap, terms grow, and 'paxosd elect sched --observe' sees every
// change with no gap in the numbering.
func TestElectionFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	const ttl = 2 * time.Second
	c := startCluster(t)
	dir := t.TempDir()
	exe := testBinary(t)
	waitFor(t, "a leader", 20*time.Second, func() bool { return c.leader() >= 0 })

	// The observer talks to all nodes and must ride through the node kill.
	var obsOut bytes.Buffer
	var obsMu sync.Mutex
	obs := exec.Command(c.bin, "elect", "sched", "--observe", "--endpoints", strings.Join(c.addrs, ","))
	obsPipe, err := obs.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	obsLog, _ := os.Create(filepath.Join(dir, "observer.log"))
	obs.Stderr = obsLog
	if err := obs.Start(); err != nil {
		t.Fatal(err)
	}
	obsDone := make(chan struct{})
	go func() {
		defer close(obsDone)
		sc := bufio.NewScanner(obsPipe)
		for sc.Scan() {
			obsMu.Lock()
			obsOut.WriteString(sc.Text() + "\n")
			obsMu.Unlock()
		}
	}()
	defer func() {
		obs.Process.Signal(syscall.SIGKILL)
		obs.Wait()
	}()

	replicas := make([]*replica, 3)
	for i := range replicas {
		name := fmt.Sprintf("replica%d", i+1)
		logf, err := os.Create(filepath.Join(dir, name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		defer logf.Close()
		r := &replica{
			name: name, bin: c.bin, log: logf, done: make(chan struct{}),
			// Each replica talks to its node alone (no auto-sync): killing
			// the node cuts the replica off, as a partition would.
			args: []string{"elect", "sched", "--value", name, "--ttl", ttl.String(), "--endpoints", c.addrs[i], "--auto-sync-interval", "0", "--timeout", "5s", "--", exe},
			env:  testChildEnv("PAXOSD_TEST_CHILD=leader", "PAXOSD_TEST_DIR="+dir, "PAXOSD_TEST_NAME="+name),
		}
		replicas[i] = r
		go r.run()
	}
	stopReplicas := func() {
		for _, r := range replicas {
			r.shutdown()
		}
		for _, r := range replicas {
			<-r.done
		}
	}
	defer stopReplicas()

	var first leadership
	waitFor(t, "a first leader", 20*time.Second, func() bool {
		var ok bool
		first, ok = currentLeader(readLeadership(t, dir))
		return ok
	})
	out, err := c.cli(c.addrs, "elect", "sched", "--leader")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSuffix(out, "\n"); got != first.name {
		t.Errorf("elect --leader = %q, want %q", got, first.name)
	}

	// 1. Kill -9 the leading paxosd elect process.
	killedAt := time.Now()
	if err := syscall.Kill(first.ppid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	t.Logf("kill -9 paxosd elect of %s (pid %d, term %d)", first.name, first.ppid, first.term)
	var second leadership
	waitFor(t, "a new leader after killing the leader's paxosd elect", 20*time.Second, func() bool {
		var ok bool
		second, ok = currentLeader(readLeadership(t, dir))
		return ok && second.term > first.term
	})
	handover := time.Duration(second.at - killedAt.UnixNano())
	t.Logf("%s leads (term %d) %s after the kill (TTL %s)", second.name, second.term, handover, ttl)
	if handover > ttl+2*time.Second {
		t.Errorf("the new leader started %s after the old one was killed; the bound is TTL + 2s = %s", handover, ttl+2*time.Second)
	}
	stoppedFirst := false
	for _, e := range readLeadership(t, dir) {
		if e.kind == "stop" && e.term == first.term {
			stoppedFirst = true
			t.Logf("the killed leader's work got SIGTERM %s after the kill", time.Duration(e.at-killedAt.UnixNano()))
		}
	}
	if !stoppedFirst {
		t.Errorf("the work of the killed paxosd elect (term %d) never got SIGTERM", first.term)
	}

	// 2. Kill -9 the node the new leader's paxosd elect talks to.
	node := int(second.name[len("replica")]-'0') - 1
	nodeKilledAt := time.Now()
	t.Logf("kill -9 node %d, the only endpoint of %s", node+1, second.name)
	c.kill(node)
	var third leadership
	waitFor(t, "a new leader after killing the leader's node", 30*time.Second, func() bool {
		var ok bool
		third, ok = currentLeader(readLeadership(t, dir))
		return ok && third.term > second.term
	})
	t.Logf("%s leads (term %d) %s after the node was killed", third.name, third.term, time.Duration(third.at-nodeKilledAt.UnixNano()))
	if third.name == second.name {
		t.Errorf("%s leads again although its only node is down", third.name)
	}
	c.start(node)
	waitFor(t, "the restarted node to answer elect --leader", 20*time.Second, func() bool {
		out, err := c.cli([]string{c.addrs[node]}, "elect", "sched", "--leader")
		return err == nil && strings.TrimSuffix(out, "\n") == third.name
	})

	// 3. Stop every replica (SIGTERM: forwarded to the work, then resign)
	// and let the observer see the election end leaderless.
	stopReplicas()
	deadline := time.Now().Add(10 * time.Second)
	for {
		obsMu.Lock()
		seen := obsOut.String()
		obsMu.Unlock()
		if strings.HasSuffix(seen, " no leader\n") {
			break
		}
		if time.Now().After(deadline) {
			sessions, err := c.cli(c.addrs, "session", "ls")
			t.Logf("session ls: %v\n%s", err, sessions)
			for _, r := range replicas {
				b, _ := os.ReadFile(r.log.Name())
				t.Logf("%s:\n%s", r.name, b)
			}
			b, _ := os.ReadFile(filepath.Join(dir, "leadership"))
			t.Logf("leadership:\n%s", b)
			t.Fatalf("the observer did not see the election end leaderless; it saw:\n%s", seen)
		}
		time.Sleep(50 * time.Millisecond)
	}
	obs.Process.Signal(syscall.SIGINT)
	<-obsDone // EOF: the observer has exited
	if err := obs.Wait(); err != nil {
		t.Errorf("paxosd elect --observe after SIGINT: %v", err)
	}

	// Checks: leaderships never overlap and terms grow.
	events := readLeadership(t, dir)
	var cur *leadership
	var lastTerm uint64
	var lastStop int64
	starts := map[uint64]string{}
	for i := range events {
		e := events[i]
		switch e.kind {
		case "start":
			if cur != nil {
				t.Errorf("%s started (term %d) while %s (term %d) had not stopped", e.name, e.term, cur.name, cur.term)
			} else if lastStop != 0 {
				t.Logf("term %d (%s) started %s after the previous leader's work stopped", e.term, e.name, time.Duration(e.at-lastStop))
			}
			if e.term <= lastTerm {
				t.Errorf("term %d started after term %d", e.term, lastTerm)
			}
			lastTerm = e.term
			starts[e.term] = e.name
			cur = &events[i]
		case "stop":
			if cur == nil || cur.term != e.term {
				t.Errorf("%s stopped term %d, which was not the running leadership", e.name, e.term)
				continue
			}
			cur, lastStop = nil, e.at
		}
	}
	if cur != nil {
		t.Errorf("%s (term %d) never stopped", cur.name, cur.term)
	}
	if len(starts) < 3 {
		t.Errorf("%d leaderships, want at least 3", len(starts))
	}

	// The observer: consecutive change numbers, and every leadership the
	// works saw, with its value.
	obsMu.Lock()
	lines := strings.Split(strings.TrimSpace(obsOut.String()), "\n")
	obsMu.Unlock()
	var prevSeq uint64
	seen := map[uint64]string{}
	for i, line := range lines {
		var seq, term, session uint64
		var value string
		if n, _ := fmt.Sscanf(line, "seq=%d term=%d session=%d value=%s", &seq, &term, &session, &value); n == 4 {
			seen[term] = value
		} else if _, err := fmt.Sscanf(line, "seq=%d no leader", &seq); err != nil {
			t.Fatalf("observer: bad line %q", line)
		}
		if i > 0 && seq != prevSeq+1 {
			t.Errorf("observer: seq %d after %d", seq, prevSeq)
		}
		prevSeq = seq
	}
	for term, name := range starts {
		if seen[term] != name {
			t.Errorf("observer saw term %d as %q, the work recorded %q", term, seen[term], name)
		}
	}
	t.Logf("observer: %d changes; leaderships: %v", len(lines), starts)
}

// TestLockAndElectCLI: the hold modes, try-lock, lock ls, session ls,
// elect --leader, and exit statuses, against a real cluster.
func TestLockAndElectCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	c := startCluster(t)
	waitFor(t, "a leader", 20*time.Second, func() bool { return c.leader() >= 0 })
	eps := strings.Join(c.addrs, ",")

	// Hold a lock without a COMMAND: the token comes out on stdout.
	hold := exec.Command(c.bin, "lock", "res", "--ttl", "5s", "--endpoints", eps)
	holdOut, err := hold.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var holdErr bytes.Buffer
	hold.Stderr = &holdErr
	if err := hold.Start(); err != nil {
		t.Fatal(err)
	}
	defer hold.Process.Kill()
	line, err := bufio.NewReader(holdOut).ReadString('\n')
	if err != nil {
		t.Fatalf("paxosd lock res: %v: %s", err, holdErr.String())
	}
	token, err := strconv.ParseUint(strings.TrimSpace(line), 10, 64)
	if err != nil || token == 0 {
		t.Fatalf("paxosd lock res printed %q, want a token", line)
	}

	// A try-lock fails with "lock held", exit 1, and its COMMAND never runs.
	marker := filepath.Join(t.TempDir(), "ran")
	code, _, stderr := runBin(t, c.bin, "lock", "res", "--wait=false", "--endpoints", eps, "--", "touch", marker)
	if code != 1 || !strings.Contains(stderr, "lock held") {
		t.Errorf("try-lock of a held lock: exit %d, stderr %q; want exit 1 and 'lock held'", code, stderr)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("the COMMAND of a failed try-lock ran")
	}

	// lock ls and session ls answer from the contacted node's state (like
	// a serializable read): a follower shows the grant once it applied it.
	var out string
	waitFor(t, fmt.Sprintf("lock ls to show res with token %d", token), 10*time.Second, func() bool {
		out, err = c.cli(c.addrs, "lock", "ls")
		if err != nil {
			t.Fatal(err)
		}
		return strings.Contains(out, "res") && strings.Contains(out, strconv.FormatUint(token, 10))
	})
	waitFor(t, "session ls to show the session holding res", 10*time.Second, func() bool {
		out, err = c.cli(c.addrs, "session", "ls")
		if err != nil {
			t.Fatal(err)
		}
		return strings.Contains(out, "res")
	})

	// SIGINT releases and exits 0; then the lock is free for a try-lock,
	// whose COMMAND's exit status paxosd passes on.
	hold.Process.Signal(syscall.SIGINT)
	if err := hold.Wait(); err != nil {
		t.Errorf("paxosd lock after SIGINT: %v: %s", err, holdErr.String())
	}
	code, stdout, stderr := runBin(t, c.bin, "lock", "res", "--wait=false", "--endpoints", eps, "--", "sh", "-c", `echo "$PAXOSD_LOCK_NAME $PAXOSD_LOCK_TOKEN"; exit 7`)
	if code != 7 {
		t.Errorf("lock -- sh -c 'exit 7': exit %d, want 7 (stderr %q)", code, stderr)
	}
	var name string
	var token2 uint64
	if _, err := fmt.Sscanf(stdout, "%s %d", &name, &token2); err != nil || name != "res" || token2 <= token {
		t.Errorf("COMMAND saw %q; want the name res and a token above %d", stdout, token)
	}
	checkSupervisedInterrupt(t, c.bin, eps)
	if code, _, stderr := runBin(t, c.bin, "lock", "res", "--endpoints", eps, "--", "/no/such/command"); code != 127 {
		t.Errorf("lock -- /no/such/command: exit %d (stderr %q), want 127", code, stderr)
	}

	// Elections: no leader yet is an error; a leader's value, term in the
	// environment.
	if code, _, stderr := runBin(t, c.bin, "elect", "none", "--leader", "--endpoints", eps); code != 1 || !strings.Contains(stderr, "no leader") {
		t.Errorf("elect --leader with no leader: exit %d, stderr %q", code, stderr)
	}
	code, stdout, stderr = runBin(t, c.bin, "elect", "e1", "--value", "me", "--endpoints", eps, "--", "sh", "-c", `echo "term=$PAXOSD_ELECTION_TERM"`)
	if code != 0 || !strings.HasPrefix(stdout, "term=") || stdout == "term=\n" {
		t.Errorf("elect -- sh: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if code, _, _ := runBin(t, c.bin, "elect", "e1", "--leader", "--endpoints", eps); code != 1 {
		t.Errorf("elect --leader after the leader resigned: exit %d, want 1", code)
	}
}

// checkSupervisedInterrupt: 'paxosd lock res -- CMD' started as systemd or
// 'docker run' without -t start it (stdin /dev/null, no terminal) runs CMD
// in a process group of its own, and SIGINT to paxosd reaches CMD, ends
// the hold, and frees the lock. (It used to take /dev/null for a terminal,
// leave CMD in its own group and not forward SIGINT: the lock stayed held.)
func checkSupervisedInterrupt(t *testing.T, bin, eps string) {
	t.Helper()
	cmd := exec.Command(bin, "lock", "res", "--endpoints", eps, "--", "sh", "-c", "echo $$; exec sleep 60")
	cmd.Stdin = nil // /dev/null
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("lock res -- sh: %v: %s", err, stderr.String())
	}
	child, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("lock res -- sh printed %q, want its pid", line)
	}
	if pg, err := syscall.Getpgid(child); err != nil || pg != child {
		t.Errorf("with stdin /dev/null the COMMAND (pid %d) is in process group %d (%v), want its own", child, pg, err)
	}
	cmd.Process.Signal(syscall.SIGINT)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 128+int(syscall.SIGINT) {
			t.Errorf("paxosd lock -- sleep after SIGINT: %v, want exit status %d (the COMMAND's, ended by SIGINT): %s", err, 128+int(syscall.SIGINT), stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("paxosd lock -- sleep with stdin /dev/null still holds the lock 10 s after SIGINT")
	}
}

// runBin runs the binary and returns its exit status, stdout and stderr.
func runBin(t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String(), errb.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, out.String(), errb.String()
}

// TestPrimitiveUsageErrors: bad lock/elect/session command lines exit 2
// with a message, without contacting any cluster.
func TestPrimitiveUsageErrors(t *testing.T) {
	t.Setenv("PAXOSD_ENDPOINTS", "127.0.0.1:1") // nothing listens there
	for _, args := range [][]string{
		{"lock"},
		{"lock", "--", "true"},
		{"lock", "a", "b"},
		{"lock", "a", "--"},
		{"lock", "a", "--ttl", "500ms", "--", "true"},
		{"lock", "a", "--ttl", "2h"},
		{"lock", "a", "--ttl", "0s"},
		{"lock", "a", "--lock-delay", "-1s"},
		{"lock", "a", "--lock-delay", "2m"},
		{"lock", "a", "--kill-grace", "0s"},
		{"lock", "a", "--bogus"},
		{"lock", "ls", "a", "b"},
		{"elect"},
		{"elect", "sched"},
		{"elect", "sched", "--", "true"},
		{"elect", "sched", "--value", "v", "--ttl", "10ms"},
		{"elect", "sched", "--value", "v", "--ttl", "61m"},
		{"elect", "sched", "--observe", "--leader"},
		{"elect", "sched", "--observe", "--", "true"},
		{"elect", "sched", "--leader", "--value", "v"},
		{"elect", "sched", "--value", "v", "--after-seq", "3"},
		{"register"},
		{"register", "k"},
		{"register", "k", "v", "extra"},
		{"register", "", "v"},
		{"register", "k", "v", "--"},
		{"register", "--", "true"},
		{"register", "k", "v", "--ttl", "500ms"},
		{"register", "k", "v", "--kill-grace", "0s"},
		{"session"},
		{"session", "frob"},
		{"session", "ls", "extra"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 2 || errb.Len() == 0 {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and a message", args, code, errb.String())
		}
	}
}
