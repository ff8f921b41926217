package bench

// target.go is the cluster the sessions, churn and watch benches load, and
// what its members cost. By default a bench starts three 'paxosd serve'
// processes of its own (nodes.go) and reads their CPU time and resident
// memory from /proc (scale_stats.go); with --endpoints it loads a running
// cluster instead, and reads the processes --pids names, if any (the
// members' cost is then left out of the report without them).

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/internal/cli"
)

// targetFlags choose the cluster: its own, or --endpoints.
type targetFlags struct {
	cf         cli.ClientFlags
	external   bool // --endpoints given
	pids       []int
	dir        string
	binary     string
	serveFlags string
	keep       bool
	cpuProfile string
}

func (t *targetFlags) register(fs *pflag.FlagSet) {
	t.cf.Register(fs)
	fs.Lookup("endpoints").Usage = "load this running cluster (default: start three 'paxosd serve' processes of its own)"
	fs.Lookup("timeout").Usage = "give up on connecting, and on one operation, after this long"
	fs.IntSliceVar(&t.pids, "pids", nil, "with --endpoints: the members' process ids, whose CPU time and RSS the report gives (e.g. the pid of 'paxosd dev')")
	fs.StringVar(&t.dir, "dir", "", "own cluster: make the nodes' data directory in this one (default $TMPDIR); removed at the end unless --keep")
	fs.BoolVar(&t.keep, "keep", false, "own cluster: leave the nodes' data and logs (node1.log, ...) at the end, and say where")
	fs.StringVar(&t.binary, "paxosd", "", "own cluster: the paxosd binary to run (default: this one)")
	fs.StringVar(&t.serveFlags, "serve-flags", "", "own cluster: extra flags for every 'paxosd serve'")
	fs.StringVar(&t.cpuProfile, "cpuprofile", "", "write a CPU profile of the load generator (not the cluster) to this file")
}

// validate checks the flags after parsing (fs says whether --endpoints was
// given); bad makes the usage error.
func (t *targetFlags) validate(fs *pflag.FlagSet, bad func(string, ...any) error) error {
	t.external = fs.Changed("endpoints")
	switch {
	case t.cf.Timeout <= 0:
		return bad("--timeout must be positive, got %s", t.cf.Timeout)
	case t.external && len(t.cf.List()) == 0:
		return bad("--endpoints lists no endpoint")
	case t.external && (t.dir != "" || t.binary != "" || t.serveFlags != "" || t.keep):
		return bad("--dir, --keep, --paxosd and --serve-flags are for the cluster the bench starts itself, not with --endpoints")
	case !t.external && (fs.Changed("cacert") || fs.Changed("cert") || fs.Changed("key")):
		return bad("--cacert, --cert and --key go with --endpoints: the cluster the bench starts itself is plaintext")
	case !t.external && len(t.pids) > 0:
		return bad("--pids goes with --endpoints: without it the bench reads the processes it starts")
	}
	for _, p := range t.pids {
		if p < 1 {
			return bad("--pids must be process ids, got %d", p)
		}
	}
	return nil
}

// benchTarget is the cluster a bench loads.
type benchTarget struct {
	cf    cli.ClientFlags
	nodes *benchNodes // nil: a running cluster (--endpoints)
	pids  []int       // --pids
	// stopProfile ends the load generator's --cpuprofile.
	stopProfile func()
}

// start starts the bench's own cluster (or takes --endpoints) and waits
// until it has a leader every member follows; it starts the --cpuprofile
// too, which stop ends.
func (t *targetFlags) start(ctx context.Context) (*benchTarget, error) {
	stopProfile, err := startCPUProfile(t.cpuProfile)
	if err != nil {
		return nil, err
	}
	if t.external {
		return &benchTarget{cf: t.cf, pids: t.pids, stopProfile: stopProfile}, nil
	}
	dir, err := os.MkdirTemp(t.dir, "paxosd-bench-")
	if err != nil {
		stopProfile()
		return nil, err
	}
	nodes, err := startBenchNodes(t.binary, dir, t.serveFlags)
	if err != nil {
		stopProfile()
		os.RemoveAll(dir)
		return nil, err
	}
	nodes.removeDir = !t.keep
	b := &benchTarget{stopProfile: stopProfile, nodes: nodes, cf: cli.ClientFlags{Endpoints: strings.Join(nodes.addrs, ","), ClusterID: "paxosd", Timeout: t.cf.Timeout}}
	if _, err := waitClusterHealthy(ctx, client.Config{Endpoints: nodes.addrs, ClusterID: b.cf.ClusterID}, time.Minute); err != nil {
		b.stop(io.Discard)
		return nil, err
	}
	return b, nil
}

// stop stops the bench's own cluster, if it started one; stderr is told
// where its data and logs are, if they are kept.
func (b *benchTarget) stop(stderr io.Writer) {
	b.stopProfile()
	if b.nodes == nil {
		return
	}
	b.nodes.stopAll()
	if !b.nodes.removeDir {
		fmt.Fprintf(stderr, "paxosd bench: the nodes' data and logs are in %s\n", b.nodes.dir)
	}
}

// describe says which cluster the bench loads, for its first line.
func (b *benchTarget) describe() string {
	if b.nodes != nil {
		return fmt.Sprintf("its own 3 'paxosd serve' processes at %s", b.cf.Endpoints)
	}
	return "the cluster at " + strings.Join(b.cf.List(), ",")
}

// memberPIDs returns the members' processes (none known: nil).
func (b *benchTarget) memberPIDs() []int {
	if b.nodes == nil {
		return b.pids
	}
	pids := make([]int, b.nodes.count())
	for i := range pids {
		pids[i] = b.nodes.pid(i)
	}
	return pids
}

// cpuMark is the members' CPU time (user + system, all of them together)
// at a moment; known is false when there is no process to read, or one
// could not be read.
type cpuMark struct {
	at    time.Time
	cpu   float64 // seconds
	known bool
}

func (b *benchTarget) markCPU() cpuMark {
	m := cpuMark{at: time.Now(), known: true}
	pids := b.memberPIDs()
	if len(pids) == 0 {
		m.known = false
	}
	for _, p := range pids {
		c := procCPU(p)
		if c < 0 {
			m.known = false
		}
		m.cpu += c
	}
	return m
}

// cpuSpan is what the members spent between two marks.
type cpuSpan struct {
	Seconds float64 `json:"cpu_s"`
	Cores   float64 `json:"cpu_cores"` // Seconds / the wall time between the marks
}

// spanOf returns the CPU between from and to, nil if unknown.
func spanOf(from, to cpuMark) *cpuSpan {
	wall := to.at.Sub(from.at).Seconds()
	if !from.known || !to.known || wall <= 0 {
		return nil
	}
	s := to.cpu - from.cpu
	return &cpuSpan{Seconds: round3(s), Cores: round3(s / wall)}
}

// memoryReport is each member's resident memory, in MiB.
type memoryReport struct {
	RSSMB []float64 `json:"rss_mb"`
	// PeakMB is each process's VmHWM: its peak since it started (with
	// --endpoints, that may be before the bench).
	PeakMB []float64 `json:"peak_rss_mb"`
}

// memory reads each member's RSS now, nil when no process is known.
func (b *benchTarget) memory() *memoryReport {
	pids := b.memberPIDs()
	if len(pids) == 0 {
		return nil
	}
	r := &memoryReport{}
	for _, p := range pids {
		r.RSSMB = append(r.RSSMB, mib(procRSS(p)))
		r.PeakMB = append(r.PeakMB, mib(procHWM(p)))
	}
	return r
}

// loadgenCPU is this process's CPU time in seconds (-1 unknown): the load
// generator shares the machine with the members.
func loadgenCPU() float64 { return procCPU(os.Getpid()) }

// mib converts bytes to MiB with one decimal (-1 stays -1: unknown).
func mib(b int64) float64 {
	if b < 0 {
		return -1
	}
	return float64(b*10/(1<<20)) / 10
}

func round3(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }

// dialPool opens n connections (each one client.Client: one TCP
// connection) to the cluster cf names. Connection j dials endpoint j
// first, round-robin, as etcd's benchmark spreads its connections; the
// client library then moves each connection to the leader (a follower's
// answers name it) and on past a failed node.
func dialPool(ctx context.Context, cf *cli.ClientFlags, n int) ([]*client.Client, error) {
	base, err := cf.Config() // with --cacert, --cert, --key: TLS
	if err != nil {
		return nil, err
	}
	eps := base.Endpoints
	var pool []*client.Client
	for j := 0; j < n; j++ {
		shift := j % len(eps)
		cfg := base
		cfg.Endpoints = append(append([]string{}, eps[shift:]...), eps[:shift]...)
		cctx, cancel := context.WithTimeout(ctx, cf.Timeout)
		c, err := client.NewWithConfig(cctx, cfg)
		cancel()
		if err != nil {
			closePool(pool)
			return nil, err
		}
		pool = append(pool, c)
	}
	return pool, nil
}

func closePool(pool []*client.Client) {
	for _, c := range pool {
		c.Close()
	}
}

// startStallWatch measures how late this process runs: a goroutine that
// sleeps 100 ms at a time records the longest time beyond that it waited.
// A load generator starved of CPU (a busy machine) sends its keep-alives
// late, and the sessions it loses then are its own doing; stop returns the
// longest stall.
func startStallWatch() (stop func() time.Duration) {
	const step = 100 * time.Millisecond
	done := make(chan struct{})
	result := make(chan time.Duration, 1)
	go func() {
		var worst time.Duration
		last := time.Now()
		t := time.NewTicker(step)
		defer t.Stop()
		for {
			select {
			case <-done:
				result <- worst
				return
			case <-t.C:
				// Not the tick's own time: the time it is received, late
				// when this process did not run.
				now := time.Now()
				worst = max(worst, now.Sub(last)-step)
				last = now
			}
		}
	}()
	return func() time.Duration {
		close(done)
		return <-result
	}
}
