package bench

// scale_outage.go is bench scale's --outage run (issue 12): one more put
// run at the first --clients count, during which a follower is stopped
// (SIGTERM) as the measured window starts, kept down for --outage while
// the puts go on, and started again with the same command line. By then
// the leader has snapshotted and deleted its log past the follower (every
// --snapshot-entries slots), so the follower rejoins by a streamed
// snapshot transfer. The run's interval lines add the throughput as a
// share of the run without an outage and the phase (normal, node N down,
// catching up, caught up); a summary follows: the throughput before the
// outage, during the catch-up and during the snapshot transfer
// (scale_transfer.go), the rejoining node's peak RSS against
// 2 x live data + 150 MiB, the time from its restart to caught up (its
// applied within scaleCaughtUpSlots of the leader's commit), and whether
// its log says it installed the leader's snapshot.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/internal/cli"
	"github.com/paxosd/paxosd/paxos"
)

// scaleCaughtUpSlots: a rejoining node is caught up once its applied is
// within this many slots of the leader's commit.
const scaleCaughtUpSlots = 64

// scaleSnapshotInstalled is what a node logs (at info) once it has
// installed a snapshot the leader streamed to it (service/snapshotter.go).
const scaleSnapshotInstalled = "installed the leader's snapshot"

// scaleOutage is the outage's controller: it takes the follower down and
// back, and records when (the phases) and what the cluster did meanwhile.
type scaleOutage struct {
	f     *scaleFlags
	nodes *benchNodes
	cf    *cli.ClientFlags
	i     int         // the follower is node i+1
	out   *syncWriter // stdout, shared with the interval lines
	done  chan struct{}

	mu                    sync.Mutex
	r                     *benchRunner
	down, up, caught      time.Time // zero: not yet
	opsDown, opsUp        uint64    // r.completed() at down, up
	opsCaught             uint64    // ... and at caught (or the run's end)
	commitDown, commitUp  paxos.Slot
	firstStatus           time.Duration // from up until it first answered a status
	secs                  []opsSample   // from up, every 200 ms or so, until caught
	hwmCaught             int64         // its VmHWM once caught up
	logOffset             int64         // node log's size at the restart
	err                   error
	appliedAt, leaderAtCU paxos.Slot
}

type opsSample struct {
	at  time.Time
	ops uint64
}

// syncWriter serializes whole writes of the interval printer and the
// outage's event lines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *syncWriter) printf(format string, args ...any) { fmt.Fprintf(s, format, args...) }

// scaleOutageRun runs the outage run at clients; normal is the median
// ops/s of the intervals of the run at clients without an outage.
func scaleOutageRun(ctx context.Context, f *scaleFlags, nodes *benchNodes, cf *cli.ClientFlags, clients int, normal float64, stdout, stderr io.Writer) (*benchResult, error) {
	leader, err := waitClusterHealthy(ctx, client.Config{Endpoints: nodes.addrs, ClusterID: cf.ClusterID}, time.Minute)
	if err != nil {
		return nil, err
	}
	i := 0
	if int(leader) == 1 {
		i = 1
	}
	o := &scaleOutage{f: f, nodes: nodes, cf: cf, i: i, out: &syncWriter{w: stdout}, done: make(chan struct{})}
	fmt.Fprintf(stdout, "\nput, %d clients, %s (+%s warmup), over all %d keys; node %d (a follower; node %d leads) down for the first %s, then restarted\n",
		clients, f.duration, f.warmup, f.keys, i+1, leader, f.outage)
	octx, cancel := context.WithCancel(ctx)
	defer cancel()
	bf := benchFlags{
		clients: clients, conns: f.conns, duration: f.duration, warmup: f.warmup, valueSize: f.valueSize,
		keys: f.keys, interval: f.interval, cf: *cf, runID: scaleRunID, sessionTTL: 10 * time.Second,
		onStart: func(r *benchRunner) {
			o.mu.Lock()
			o.r = r
			o.mu.Unlock()
			go o.run(octx, r)
		},
	}
	mon := newNodeMonitor(nodes)
	mon.phase, mon.normal = o.phase, normal
	var line bytes.Buffer
	print := mon.printer(&line)
	res, err := runBench(ctx, "put", &bf, newLiveLine(stderr), func(s intervalStats) {
		line.Reset()
		print(s)
		o.out.Write(line.Bytes())
	})
	if err != nil {
		cancel()
		o.mu.Lock()
		started := o.r != nil
		o.mu.Unlock()
		if started {
			<-o.done
		}
		return nil, fmt.Errorf("put with %d clients and an outage: %w", clients, err)
	}
	res.Workload = "put+outage"
	<-o.done
	hwmEnd := procHWM(nodes.pid(i))
	return res, o.summary(stdout, clients, normal, len(mon.rates), hwmEnd)
}

// run is the controller: node i+1 down as the measured window starts, up
// again --outage later, then watched until caught up.
func (o *scaleOutage) run(ctx context.Context, r *benchRunner) {
	defer close(o.done)
	err := o.cycle(ctx, r)
	o.mu.Lock()
	o.err = err
	o.mu.Unlock()
}

func (o *scaleOutage) cycle(ctx context.Context, r *benchRunner) error {
	id := o.i + 1
	if err := benchSleep(ctx, time.Until(r.start)); err != nil {
		return err
	}
	commit, _ := o.leaderCommit(ctx)
	o.mu.Lock()
	o.down, o.opsDown, o.commitDown = time.Now(), r.completed(), commit
	o.mu.Unlock()
	took, err := o.nodes.stop(o.i, time.Minute)
	if err != nil {
		return fmt.Errorf("stopping node %d: %w", id, err)
	}
	o.out.printf("outage: node %d stopped (SIGTERM, exited after %.1f s); the leader had committed %d\n", id, took.Seconds(), commit)
	if err := benchSleep(ctx, time.Until(o.down.Add(o.f.outage))); err != nil {
		return err
	}
	commit, _ = o.leaderCommit(ctx)
	var offset int64
	if st, err := os.Stat(o.nodes.logFile(o.i)); err == nil {
		offset = st.Size()
	}
	if err := o.nodes.start(o.i); err != nil {
		return err
	}
	o.mu.Lock()
	o.up, o.opsUp, o.commitUp, o.logOffset = time.Now(), r.completed(), commit, offset
	o.secs = []opsSample{{o.up, o.opsUp}}
	o.mu.Unlock()
	o.out.printf("outage: node %d restarted at %s; the leader has committed %d (%d slots since it stopped)\n",
		id, clock(o.up.Sub(r.start)), commit, commit-o.commitDown)
	deadline := o.up.Add(o.f.restartTimeout)
	cfg := client.Config{Endpoints: o.nodes.addrs, ClusterID: o.cf.ClusterID, DialTimeout: 500 * time.Millisecond}
	why := "no status yet"
	for {
		if time.Now().After(deadline) {
			return fmt.Errorf("outage: node %d not caught up %s after its restart: %s", id, o.f.restartTimeout, why)
		}
		if err := benchSleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
		now := time.Now()
		o.mu.Lock()
		if last := o.secs[len(o.secs)-1]; now.Sub(last.at) >= 200*time.Millisecond {
			o.secs = append(o.secs, opsSample{now, r.completed()})
		}
		o.mu.Unlock()
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		ms := client.Unconnected(cfg).Status(sctx)
		cancel()
		var leaderCommit paxos.Slot
		for j, m := range ms {
			if j != o.i && m.Err == nil && m.Status.Role == "leader" {
				leaderCommit = m.Status.Commit
			}
		}
		self := ms[o.i]
		if self.Err != nil {
			why = "no status: " + self.Err.Error()
			continue
		}
		o.mu.Lock()
		if o.firstStatus == 0 {
			o.firstStatus = now.Sub(o.up)
		}
		o.mu.Unlock()
		if leaderCommit == 0 {
			why = "no leader answers"
			continue
		}
		if self.Status.Applied+scaleCaughtUpSlots < leaderCommit {
			why = fmt.Sprintf("applied %d of %d", self.Status.Applied, leaderCommit)
			continue
		}
		hwm := procHWM(o.nodes.pid(o.i))
		o.mu.Lock()
		o.caught, o.opsCaught, o.hwmCaught = time.Now(), r.completed(), hwm
		o.appliedAt, o.leaderAtCU = self.Status.Applied, leaderCommit
		o.mu.Unlock()
		o.out.printf("outage: node %d caught up at %s, %.1f s after its restart (applied %d, the leader's commit %d)\n",
			id, clock(o.caught.Sub(r.start)), o.caught.Sub(o.up).Seconds(), self.Status.Applied, leaderCommit)
		return nil
	}
}

// leaderCommit asks the members (but node i+1) for the leader's commit.
func (o *scaleOutage) leaderCommit(ctx context.Context) (paxos.Slot, error) {
	sctx, cancel := context.WithTimeout(ctx, o.cf.Timeout)
	defer cancel()
	ms := client.Unconnected(client.Config{Endpoints: o.nodes.addrs, ClusterID: o.cf.ClusterID, DialTimeout: 500 * time.Millisecond}).Status(sctx)
	for j, m := range ms {
		if j != o.i && m.Err == nil && m.Status.Role == "leader" {
			return m.Status.Commit, nil
		}
	}
	return 0, fmt.Errorf("no member says it leads")
}

// phase labels the interval s: the phases it overlaps, in order.
func (o *scaleOutage) phase(s intervalStats) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.r == nil {
		return "normal"
	}
	from, to := o.r.start.Add(s.From), o.r.start.Add(s.To)
	return phaseLabel(o.i+1, from, to, o.down, o.up, o.caught)
}

// phaseLabel names what node id went through in [from, to): normal
// before down, down until up, catching up until caught, then caught up; a
// zero time has not happened (yet). Normal and down count only if they
// take more than a second (a tenth of a shorter interval) of it: the
// outage starts with the measured window and ends with an interval, a few
// milliseconds off.
func phaseLabel(id int, from, to, down, up, caught time.Time) string {
	// overlap is how much of [from, to) [a, b) takes; a zero a is the
	// start of time, a zero b the end.
	overlap := func(a, b time.Time) time.Duration {
		if a.IsZero() || a.Before(from) {
			a = from
		}
		if b.IsZero() || b.After(to) {
			b = to
		}
		return max(b.Sub(a), 0)
	}
	slack := min(time.Second, to.Sub(from)/10)
	var names, node []string
	if down.IsZero() || overlap(time.Time{}, down) > slack {
		names = append(names, "normal")
	}
	if down.IsZero() {
		return "normal"
	}
	if overlap(down, up) > slack {
		node = append(node, "down")
	}
	if !up.IsZero() && overlap(up, caught) > 0 {
		node = append(node, "catching up")
	}
	if !caught.IsZero() && overlap(caught, time.Time{}) > 0 {
		node = append(node, "caught up")
	}
	if len(node) > 0 {
		names = append(names, fmt.Sprintf("node %d %s", id, strings.Join(node, " > ")))
	}
	return strings.Join(names, " > ")
}

// summary prints the outage's figures; it returns the controller's error.
func (o *scaleOutage) summary(w io.Writer, clients int, normal float64, intervals int, hwmEnd int64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	id, r := o.i+1, o.r
	fmt.Fprintf(w, "\noutage summary (node %d down %s from %s, put at %d clients):\n", id, o.f.outage, clock(o.down.Sub(r.start)), clients)
	if normal > 0 {
		fmt.Fprintf(w, "  throughput before the outage:   %8.0f ops/s (median of the %d intervals of the run without an outage)\n", normal, intervals)
	}
	if !o.down.IsZero() && !o.up.IsZero() {
		fmt.Fprintf(w, "  throughput while node %d down:   %8.0f ops/s\n", id, float64(o.opsUp-o.opsDown)/o.up.Sub(o.down).Seconds())
	}
	if !o.up.IsZero() && !o.caught.IsZero() {
		end, ops := o.caught, o.opsCaught
		note := ""
		if end.After(r.end) {
			end, note = r.end, " (the load ended first: counted until then)"
		}
		took := o.caught.Sub(o.up)
		rate := float64(ops-o.opsUp) / end.Sub(o.up).Seconds()
		low := "-"
		if v, ok := lowestSecond(o.secs); ok {
			low = fmt.Sprintf("%.0f", v)
		}
		fmt.Fprintf(w, "  throughput during the catch-up: %8.0f ops/s (restart to caught up%s; lowest second %s ops/s)\n", rate, note, low)
		if normal > 0 {
			verdict := "ok"
			if rate < 0.7*normal {
				verdict = "below 70%"
			}
			fmt.Fprintf(w, "  catch-up / before:              %8.0f%% (%s)\n", 100*rate/normal, verdict)
		}
		fmt.Fprintf(w, "  restart to caught up:           %8.1f s (first answered status after %.1f s; applied %d, leader's commit %d)\n",
			took.Seconds(), o.firstStatus.Seconds(), o.appliedAt, o.leaderAtCU)
		o.transferSummary(w, normal)
	} else if !o.up.IsZero() {
		fmt.Fprintf(w, "  restart to caught up:           not caught up\n")
	}
	bound := scaleRSSBound(scaleLiveBytes(o.f.keys, o.f.valueSize))
	verdict := "ok"
	if max(hwmEnd, o.hwmCaught) > bound {
		verdict = "over bound"
	}
	fmt.Fprintf(w, "  node %d peak RSS after restart: %8s MB until caught up, %s MB until the run's end; bound 2 x live + 150 MiB = %s MB: %s\n",
		id, mbOrDash(o.hwmCaught), mbOrDash(hwmEnd), mbOrDash(bound), verdict)
	snap := "no"
	if b, err := os.ReadFile(o.nodes.logFile(o.i)); err == nil && int64(len(b)) >= o.logOffset &&
		bytes.Contains(b[o.logOffset:], []byte(scaleSnapshotInstalled)) {
		snap = "yes"
	}
	fmt.Fprintf(w, "  rejoined by snapshot: %s (%q in %s since the restart)\n", snap, scaleSnapshotInstalled, o.nodes.logFile(o.i))
	return o.err
}

// transferSummary prints the throughput during the snapshot transfer and
// install (transferWindow), if the node's log shows one.
func (o *scaleOutage) transferSummary(w io.Writer, normal float64) {
	b, err := os.ReadFile(o.nodes.logFile(o.i))
	if err != nil || int64(len(b)) < o.logOffset {
		return
	}
	from, to, ok := transferWindow(b[o.logOffset:])
	if !ok {
		return
	}
	rate, ok := rateBetween(o.secs, from, to)
	if !ok {
		fmt.Fprintf(w, "  snapshot transfer and install:  %8.1f s (too short to measure the throughput)\n", to.Sub(from).Seconds())
		return
	}
	share := ""
	if normal > 0 {
		share = fmt.Sprintf(", %.0f%% of before", 100*rate/normal)
	}
	fmt.Fprintf(w, "  during the snapshot transfer:   %8.0f ops/s (%.1f s from the fetch's start to installed%s)\n", rate, to.Sub(from).Seconds(), share)
	// Which step costs the cluster: the copy (disk and network), the
	// check or the decode (the rejoining node's CPU).
	for _, st := range transferSteps(b[o.logOffset:]) {
		line := fmt.Sprintf("    %-7s %5.1f s", st.name, st.to.Sub(st.from).Seconds())
		if rate, ok := rateBetween(o.secs, st.from, st.to); ok {
			line += fmt.Sprintf(": %8.0f ops/s", rate)
			if normal > 0 {
				line += fmt.Sprintf(" (%.0f%% of before)", 100*rate/normal)
			}
		}
		fmt.Fprintln(w, line)
	}
}
