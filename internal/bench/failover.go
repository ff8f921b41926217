package bench

// failover.go is 'paxosd bench failover': kill -9 the leader, again
// and again, while a writer puts continuously, and report for how long
// writes stopped each time.
//
// The nodes of 'paxosd dev' share one process, so one of them cannot be
// killed alone: by default the command starts its own three 'paxosd serve'
// processes (this binary, a temporary data directory, free loopback ports)
// and kills and restarts them itself. For any other cluster, --kill-cmd and
// --start-cmd do it ('{id}' and '{addr}' stand for the leader's node id and
// address), with --endpoints naming the nodes.
//
// A round: wait until every node answers, agrees on the leader and has
// applied what the leader had committed at the first look (so the node
// restarted in the last round has caught up); let the writer run for
// --settle; SIGKILL the leader; wait until writes go through again; restart
// the node. The unavailability of a round is the longest stretch without an
// acknowledged put, from the last put acknowledged before the kill to the
// moment writes flow again: normally the gap between that put and the first
// one acknowledged after the kill. Taking the longest gap rather than the
// first one keeps a put the dying leader had already committed, and that a
// follower acknowledged just after the kill, from hiding the outage.

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"os/signal"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/internal/cli"
	"github.com/paxosd/paxosd/paxos"
)

type failoverFlags struct {
	rounds       int
	killCmd      string
	startCmd     string
	settle       time.Duration
	roundTimeout time.Duration
	valueSize    int
	serveFlags   string
	dataDir      string
	binary       string
	json         bool
	cf           cli.ClientFlags
}

// failoverResult is the JSON report.
type failoverResult struct {
	Workload    string          `json:"workload"`
	Rounds      int             `json:"rounds"`
	Ops         uint64          `json:"ops"`
	Errors      uint64          `json:"errors"`
	Unavailable failoverSummary `json:"unavailable_ms"`
	PerRound    []failoverRound `json:"per_round"`
	LastError   string          `json:"last_error,omitempty"`
}

type failoverSummary struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

type failoverRound struct {
	Round         int     `json:"round"`
	Killed        uint32  `json:"killed"`
	UnavailableMs float64 `json:"unavailable_ms"`
	// Resumed is false when writes had not resumed after --round-timeout
	// (UnavailableMs is then at least that).
	Resumed bool `json:"resumed"`
}

func cmdBenchFailover(args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlags("bench failover", "paxosd bench failover [--rounds 10] [--endpoints ... --kill-cmd 'CMD {id}' --start-cmd 'CMD {id}']\n\n"+
		"Kills the leader with SIGKILL --rounds times, restarting it between rounds, while\n"+
		"a writer puts continuously, and reports how long writes were unavailable each\n"+
		"time. By default it runs its own 3-node cluster of 'paxosd serve' processes.")
	var f failoverFlags
	fs.IntVar(&f.rounds, "rounds", 10, "how many times to kill the leader")
	fs.StringVar(&f.killCmd, "kill-cmd", "", "external cluster: shell command that SIGKILLs node {id} (at {addr})")
	fs.StringVar(&f.startCmd, "start-cmd", "", "external cluster: shell command that starts node {id} again")
	fs.DurationVar(&f.settle, "settle", time.Second, "steady writing before each kill")
	fs.DurationVar(&f.roundTimeout, "round-timeout", 30*time.Second, "a round fails when writes have not resumed this long after the kill")
	fs.IntVar(&f.valueSize, "value-size", 256, "bytes per value the writer puts")
	fs.StringVar(&f.serveFlags, "serve-flags", "", "own cluster: extra flags for every 'paxosd serve', e.g. \"--election-ticks 15\"")
	fs.StringVar(&f.dataDir, "data-dir", "", "own cluster: directory for the nodes' data and logs (default: a temporary one, removed at the end)")
	fs.StringVar(&f.binary, "paxosd", "", "own cluster: the paxosd binary to run (default: this one)")
	fs.BoolVar(&f.json, "json", false, "print one JSON object instead of the table")
	f.cf.Register(fs)
	fs.Lookup("timeout").Usage = "give up on one status query or health check step after this long"
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if err := f.validate(fs.NArg(), fs.Changed("endpoints")); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	var target failoverTarget
	var eps []string
	if f.killCmd != "" {
		eps = f.cf.List()
		target = &shellTarget{killTmpl: f.killCmd, startTmpl: f.startCmd, eps: eps, stderr: stderr}
	} else {
		nodes, err := startBenchNodes(f.binary, f.dataDir, f.serveFlags)
		if err != nil {
			return err
		}
		defer nodes.stopAll()
		eps = nodes.addrs
		target = nodes
	}
	res, err := runFailover(ctx, &f, eps, target, newLiveLine(stderr))
	if err != nil {
		return err
	}
	if res.Errors > 0 {
		fmt.Fprintf(stderr, "paxosd bench failover: %d puts failed; the last: %s\n", res.Errors, res.LastError)
	}
	if f.json {
		return writeBenchJSON(stdout, res)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "ROUND\tKILLED NODE\tUNAVAILABLE ms\t")
	for _, r := range res.PerRound {
		note := ""
		if !r.Resumed {
			note = " (did not resume)"
		}
		fmt.Fprintf(tw, "%d\t%d\t%.1f%s\t\n", r.Round, r.Killed, r.UnavailableMs, note)
	}
	tw.Flush()
	u := res.Unavailable
	fmt.Fprintf(stdout, "failover: %d kills; writes unavailable p50 %.1f ms, p90 %.1f ms, max %.1f ms, mean %.1f ms; %d puts acknowledged, %d failed\n",
		res.Rounds, u.P50, u.P90, u.Max, u.Mean, res.Ops, res.Errors)
	for _, r := range res.PerRound {
		if !r.Resumed {
			return fmt.Errorf("writes did not resume within --round-timeout %s in round %d", f.roundTimeout, r.Round)
		}
	}
	return nil
}

func (f *failoverFlags) validate(nargs int, endpointsGiven bool) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: bench failover: %s", cli.ErrUsage, fmt.Sprintf(format, args...))
	}
	external := f.killCmd != "" || f.startCmd != ""
	switch {
	case nargs > 0:
		return bad("takes no arguments")
	case f.rounds < 1:
		return bad("--rounds must be at least 1, got %d", f.rounds)
	case f.settle < 0:
		return bad("--settle must not be negative, got %s", f.settle)
	case f.roundTimeout <= 0:
		return bad("--round-timeout must be positive, got %s", f.roundTimeout)
	case f.valueSize < 0 || f.valueSize > benchValueSizeMax:
		return bad("--value-size must be between 0 and %d bytes, got %d", benchValueSizeMax, f.valueSize)
	case f.cf.Timeout <= 0:
		return bad("--timeout must be positive, got %s", f.cf.Timeout)
	case external && (f.killCmd == "" || f.startCmd == ""):
		return bad("--kill-cmd and --start-cmd go together: one kills node {id}, the other starts it again")
	case external && !strings.Contains(f.killCmd, "{id}") && !strings.Contains(f.killCmd, "{addr}"):
		return bad("--kill-cmd must name the node to kill with {id} or {addr}")
	case external && len(f.cf.List()) < 3:
		return bad("--endpoints must list every node of the cluster (3 or more) for --kill-cmd")
	case external && (f.serveFlags != "" || f.dataDir != "" || f.binary != ""):
		return bad("--serve-flags, --data-dir and --paxosd are for the cluster bench failover starts itself, not with --kill-cmd")
	case !external && endpointsGiven:
		return bad("--endpoints needs --kill-cmd and --start-cmd: the nodes of 'paxosd dev' share one process and cannot be killed one at a time (without them, bench failover starts its own 3 'paxosd serve' processes)")
	}
	return nil
}

// failoverTarget kills and restarts nodes.
type failoverTarget interface {
	kill(ctx context.Context, id paxos.NodeID) error
	restart(ctx context.Context, id paxos.NodeID) error
}

// shellTarget runs the user's commands.
type shellTarget struct {
	killTmpl, startTmpl string
	eps                 []string
	stderr              io.Writer
}

func (t *shellTarget) run(ctx context.Context, tmpl string, id paxos.NodeID) error {
	addr := ""
	if i := int(id) - 1; i >= 0 && i < len(t.eps) {
		addr = t.eps[i]
	}
	cmdline := strings.NewReplacer("{id}", strconv.Itoa(int(id)), "{addr}", addr).Replace(tmpl)
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", cmdline)
	cmd.Stdout, cmd.Stderr = t.stderr, t.stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", cmdline, err)
	}
	return nil
}

func (t *shellTarget) kill(ctx context.Context, id paxos.NodeID) error {
	return t.run(ctx, t.killTmpl, id)
}

func (t *shellTarget) restart(ctx context.Context, id paxos.NodeID) error {
	return t.run(ctx, t.startTmpl, id)
}

// failoverWriter puts continuously and remembers when each put was
// acknowledged.
type failoverWriter struct {
	mu      sync.Mutex
	acks    []time.Time // in order: one writer
	errs    uint64
	lastErr error
}

func (w *failoverWriter) run(ctx context.Context, cl *client.Client, key string, value []byte, timeout time.Duration) {
	for ctx.Err() == nil {
		octx, cancel := context.WithTimeout(ctx, timeout)
		_, err := cl.Put(octx, key, value)
		cancel()
		now := time.Now()
		w.mu.Lock()
		if err == nil {
			w.acks = append(w.acks, now)
		} else if ctx.Err() == nil {
			w.errs++
			w.lastErr = err
		}
		w.mu.Unlock()
	}
}

// acksSince counts the puts acknowledged at or after t.
func (w *failoverWriter) acksSince(t time.Time) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acks) - sort.Search(len(w.acks), func(i int) bool { return !w.acks[i].Before(t) })
}

// outage returns the longest gap between consecutive acknowledgements from
// the last one before kill on, and whether any came after kill.
func (w *failoverWriter) outage(kill time.Time) (time.Duration, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return benchOutage(w.acks, kill, time.Now())
}

// benchOutage: see failoverWriter.outage; now ends a gap still open.
func benchOutage(acks []time.Time, kill, now time.Time) (time.Duration, bool) {
	j := sort.Search(len(acks), func(i int) bool { return !acks[i].Before(kill) }) - 1
	from := kill
	if j >= 0 {
		from = acks[j]
	}
	if j+1 >= len(acks) {
		return now.Sub(from), false
	}
	longest := acks[j+1].Sub(from)
	for i := j + 1; i+1 < len(acks); i++ {
		longest = max(longest, acks[i+1].Sub(acks[i]))
	}
	return longest, true
}

// failoverResumeAcks is how many acknowledged puts after a kill show that
// writes flow again.
const failoverResumeAcks = 20

func runFailover(ctx context.Context, f *failoverFlags, eps []string, target failoverTarget, live *liveLine) (*failoverResult, error) {
	defer live.clear()
	live.show("failover: waiting for the cluster to elect a leader")
	if _, err := waitClusterHealthy(ctx, client.Config{Endpoints: eps, ClusterID: f.cf.ClusterID}, max(f.roundTimeout, f.cf.Timeout)); err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, f.cf.Timeout)
	cl, err := client.NewWithConfig(cctx, client.Config{Endpoints: eps, ClusterID: f.cf.ClusterID})
	cancel()
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	value := make([]byte, f.valueSize)
	w := &failoverWriter{}
	wctx, stopWriter := context.WithCancel(ctx)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		w.run(wctx, cl, "bench/"+benchRunID()+"/failover", value, f.roundTimeout)
	}()
	defer func() { stopWriter(); <-writerDone }()

	res := &failoverResult{Workload: "failover", Rounds: f.rounds}
	for round := 1; round <= f.rounds; round++ {
		live.show("failover round %d/%d: waiting until every node is up and caught up", round, f.rounds)
		leader, err := waitClusterHealthy(ctx, client.Config{Endpoints: eps, ClusterID: f.cf.ClusterID}, max(f.roundTimeout, f.cf.Timeout))
		if err != nil {
			return nil, fmt.Errorf("round %d: %w", round, err)
		}
		settleFrom := time.Now()
		if err := benchSleep(ctx, f.settle); err != nil {
			return nil, err
		}
		if w.acksSince(settleFrom) == 0 {
			if err := waitAcks(ctx, w, settleFrom, 1, f.roundTimeout); err != nil {
				return nil, fmt.Errorf("round %d: writes are not going through before the kill: %w", round, err)
			}
		}
		// The leader may have changed while we settled: ask again.
		if l, err := findLeader(ctx, eps, f.cf.ClusterID, f.cf.Timeout); err == nil {
			leader = l
		}
		live.show("failover round %d/%d: killed node %d, waiting for writes to resume", round, f.rounds, leader)
		killAt := time.Now()
		if err := target.kill(ctx, leader); err != nil {
			return nil, fmt.Errorf("round %d: killing node %d: %w", round, leader, err)
		}
		resumed := waitAcks(ctx, w, killAt, failoverResumeAcks, f.roundTimeout) == nil
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		gap, any := w.outage(killAt)
		res.PerRound = append(res.PerRound, failoverRound{Round: round, Killed: uint32(leader), UnavailableMs: ms(gap), Resumed: resumed && any})
		if err := target.restart(ctx, leader); err != nil {
			return nil, fmt.Errorf("round %d: restarting node %d: %w", round, leader, err)
		}
	}
	stopWriter()
	<-writerDone
	w.mu.Lock()
	res.Ops, res.Errors = uint64(len(w.acks)), w.errs
	if w.lastErr != nil {
		res.LastError = w.lastErr.Error()
	}
	w.mu.Unlock()
	gaps := make([]float64, len(res.PerRound))
	var sum float64
	for i, r := range res.PerRound {
		gaps[i] = r.UnavailableMs
		sum += r.UnavailableMs
	}
	slices.Sort(gaps)
	res.Unavailable = failoverSummary{
		P50: nearestRank(gaps, 0.5), P90: nearestRank(gaps, 0.9), Max: gaps[len(gaps)-1],
		Mean: float64(int64(sum/float64(len(gaps))*1000)) / 1000,
	}
	return res, nil
}

// nearestRank returns the q-quantile of sorted xs by the nearest-rank rule.
func nearestRank(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	k := int(float64(len(xs))*q+0.999999999) - 1
	return xs[min(max(k, 0), len(xs)-1)]
}

// waitAcks waits until n puts were acknowledged since t, or timeout.
func waitAcks(ctx context.Context, w *failoverWriter, t time.Time, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for w.acksSince(t) < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: fewer than %d puts acknowledged in %s", client.ErrTimeout, n, timeout)
		}
		if err := benchSleep(ctx, 5*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

func benchSleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// findLeader returns the id of the node that says it leads.
func findLeader(ctx context.Context, eps []string, clusterID string, timeout time.Duration) (paxos.NodeID, error) {
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	i, err := findLeaderEndpoint(sctx, eps, clusterID)
	if err != nil {
		return 0, err
	}
	ms := client.Unconnected(client.Config{Endpoints: eps[i : i+1], ClusterID: clusterID}).Status(sctx)
	if ms[0].Err != nil {
		return 0, ms[0].Err
	}
	return ms[0].Status.ID, nil
}

// waitClusterHealthy waits until every endpoint answers, all agree on one
// leader, and every node has applied what the leader had committed when
// they first agreed; it returns the leader.
func waitClusterHealthy(ctx context.Context, cfg client.Config, timeout time.Duration) (paxos.NodeID, error) {
	deadline := time.Now().Add(timeout)
	var want paxos.Slot
	wantSet := false
	var last string
	for {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		members := client.Unconnected(cfg).Status(sctx)
		cancel()
		leader, commit, why := clusterAgreement(members)
		if why == "" {
			if !wantSet {
				want, wantSet = commit, true
			}
			caughtUp := true
			for _, m := range members {
				if m.Status.Applied < want {
					caughtUp = false
					why = fmt.Sprintf("node %d has applied %d of %d", m.Status.ID, m.Status.Applied, want)
				}
			}
			if caughtUp {
				return leader, nil
			}
		}
		last = why
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%w: the cluster is not healthy after %s: %s", client.ErrUnavailable, timeout, last)
		}
		if err := benchSleep(ctx, 50*time.Millisecond); err != nil {
			return 0, err
		}
	}
}

// clusterAgreement returns the leader every member agrees on, or why there
// is none.
func clusterAgreement(members []client.MemberStatus) (paxos.NodeID, paxos.Slot, string) {
	var leader paxos.NodeID
	var commit paxos.Slot
	for _, m := range members {
		if m.Err != nil {
			return 0, 0, fmt.Sprintf("%s does not answer: %v", m.Endpoint, m.Err)
		}
		if m.Status.Role == "leader" {
			if leader != 0 {
				return 0, 0, "two nodes say they lead"
			}
			leader, commit = m.Status.ID, m.Status.Commit
		}
	}
	if leader == 0 {
		return 0, 0, "no node leads"
	}
	for _, m := range members {
		if m.Status.Leader != leader {
			return 0, 0, fmt.Sprintf("node %d follows %d, not %d", m.Status.ID, m.Status.Leader, leader)
		}
	}
	return leader, commit, ""
}
