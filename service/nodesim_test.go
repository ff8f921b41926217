package service

import (
	"container/heap"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/paxosd/paxosd/statemachine"
)

// The node simulation runs whole nodes — the real loop, state machine,
// sessions, locks, elections, lease reads, snapshots and their transfer,
// rejoin, and the real wal.Store on Pebble's crash-testing in-memory filesystem
// — in one goroutine, on virtual time, with every edge (journal, network,
// clocks, clients) simulated and every choice drawn from one seed. A fault
// phase crashes nodes (losing unsynced writes, at any point: between an Accept
// leaving and the sender's own sync too), restarts them, stalls and slows their
// disks, fails a disk, partitions the network (one way too), delays, drops,
// duplicates and reorders messages, freezes nodes longer than an election, runs
// clocks at different rates inside the documented bound, and destroys a data
// directory to restart the node with --rejoin; in half the seeds an operator
// changes the membership (adds learners and voters that join from a saved
// snapshot, promotes, removes members — the leader too — and stops them,
// replaces a member that is down: nodesim_members_test.go). Clients meanwhile
// put, get (leased or through the log), cas, delete, list, hold sessions, take
// and release locks (waiting, cancelling, fencing writes), campaign, resign,
// and watch and observe streams. After every step the checkers look at what the
// nodes did (nodesim_check_test.go); then a liveness phase heals everything and
// requires progress and convergence (nodesim_live_test.go); then the client
// history is checked for linearizability.
//
// Replay a failure: go test ./service -run 'TestNodeSim$' -sim.seed N -sim.trace

var (
	flagSimSeed  = flag.Int64("sim.seed", -1, "replay one seed of the node simulation")
	flagSimFrom  = flag.Int64("sim.from", 0, "first seed TestNodeSim runs")
	flagSimSeeds = flag.Int("sim.seeds", 24, "how many seeds TestNodeSim runs")
	flagSimTrace = flag.Bool("sim.trace", false, "print the events of a -sim.seed run")
	flagSimTime  = flag.Duration("sim.time", 12*time.Second, "virtual time of each seed's fault phase")
	flagSimKeep  = flag.Bool("sim.keepgoing", false, "report a failing seed and go on with the next (make sim)")
)

// simOptions configure one run.
type simOptions struct {
	faultTime time.Duration
	trace     func(string) // every event, when set
	// clockSkewMax bounds how much faster than real time a node's or a
	// client's clock may run (rates are drawn from [1, 1+clockSkewMax)).
	// The design assumes rates within 10% of each other; tests of the
	// checker set it beyond.
	clockSkewMax float64
	// clientRate, when not 0, is every client's clock rate instead
	// (tests of the checkers set it outside the bound).
	clientRate float64
	// mutate, when set, adjusts the drawn parameters; tamper, when set,
	// damages every state machine a node restores or installs from a
	// snapshot (tests of the checkers).
	mutate func(*simParams)
	tamper func(*statemachine.StateMachine)
	// scripted runs no random faults and no clients: a test drives the
	// run with runFor and the sim's methods (crash, restart, cut, ...).
	scripted bool
}

func defaultSimOptions() simOptions {
	return simOptions{faultTime: *flagSimTime, clockSkewMax: 0.09}
}

// sim is one seeded run.
type sim struct {
	seed    int64
	opts    simOptions
	p       simParams
	rng     *rand.Rand
	now     time.Duration
	queue   eventQueue
	nextID  uint64
	epoch   time.Time
	nodes   []*simNode
	clients []*simClient
	net     simNet
	check   *simChecker
	err     error
	ring    traceRing
	stats   simStats
	// healed is set when the liveness phase starts; probeLink writes the
	// probe then.
	healed    bool
	probeLink *simLink
	// op changes the membership, in some seeds (nodesim_members_test.go).
	op *simOperator
	// auth turns auth on and writes as a write-only user (nodesim_auth_test.go); nil in most seeds.
	auth *simAuth
}

// event is one thing that happens at a virtual time. Events at the same
// time happen in the order they were scheduled (id).
type event struct {
	at   time.Duration
	id   uint64
	what func() string // for the trace; may be nil
	do   func()
}

type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].id < q[j].id
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return e
}

// at schedules do after d (never before now).
func (s *sim) at(d time.Duration, what func() string, do func()) {
	s.nextID++
	heap.Push(&s.queue, &event{at: s.now + max(d, 0), id: s.nextID, what: what, do: do})
}

// failf records the first invariant violation; the run stops.
func (s *sim) failf(format string, args ...any) {
	if s.err == nil {
		s.err = fmt.Errorf("t=%s: %s", s.now, fmt.Sprintf(format, args...))
	}
}

// tracef notes a line in the trace (see note).
func (s *sim) tracef(format string, args ...any) {
	s.note(func() string { return fmt.Sprintf(format, args...) })
}

// note adds what happened now to the trace ring, formatted only if a
// failure report (or -sim.trace) needs it, and prints it when tracing.
func (s *sim) note(what func() string) {
	s.ring.add(s.now, what)
	if s.opts.trace != nil {
		s.opts.trace(fmt.Sprintf("%12s %s", s.now, what()))
	}
}

// traceRing keeps the last events of a run, for a failure report.
type traceRing struct {
	at   [300]time.Duration
	what [300]func() string
	n    int
}

func (r *traceRing) add(at time.Duration, what func() string) {
	r.at[r.n%len(r.at)], r.what[r.n%len(r.at)] = at, what
	r.n++
}

func (r *traceRing) String() string {
	var b strings.Builder
	for i := max(0, r.n-len(r.at)); i < r.n; i++ {
		fmt.Fprintf(&b, "%12s %s\n", r.at[i%len(r.at)], r.what[i%len(r.at)]())
	}
	return b.String()
}

// run executes the fault phase, the liveness phase and the final checks.
func (s *sim) run() error {
	s.start()
	end := s.opts.faultTime + livenessTimeMax
	s.at(s.opts.faultTime, nil, s.heal)
	for s.err == nil && s.queue.Len() > 0 {
		ev := heap.Pop(&s.queue).(*event)
		if ev.at > end {
			s.now = end
			s.failf("no convergence %s after the heal: %s", livenessTimeMax, s.progress())
			break
		}
		s.now = ev.at
		if ev.what != nil {
			s.note(ev.what)
		}
		ev.do()
		s.stats.events++
		if s.healed && s.err == nil && s.converged() {
			break
		}
	}
	if s.err == nil {
		s.finalChecks()
	}
	s.shutdown()
	return s.err
}

// runRecovered runs the seed, and turns a panic (a node's, or the
// simulation's) into the run's failure, so that the report names the seed
// and its replay command.
func (s *sim) runRecovered() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("t=%s: panic: %v\n%s", s.now, p, debug.Stack())
		}
	}()
	return s.run()
}

// runFor runs a scripted run's events for d of virtual time (or until a
// check fails).
func (s *sim) runFor(d time.Duration) error {
	end := s.now + d
	for s.err == nil && s.queue.Len() > 0 && s.queue[0].at <= end {
		ev := heap.Pop(&s.queue).(*event)
		s.now = ev.at
		if ev.what != nil {
			s.note(ev.what)
		}
		ev.do()
	}
	s.now = max(s.now, end)
	return s.err
}

// newScripted starts a scripted run of seed's parameters, adjusted by
// mutate (may be nil).
func newScripted(seed int64, mutate func(*simParams)) *sim {
	opts := defaultSimOptions()
	opts.scripted, opts.mutate = true, mutate
	s := newSim(seed, opts)
	s.start()
	return s
}

// livenessTimeMax bounds the liveness phase: every node up, connected and
// on a healthy disk must elect a leader, finish every client operation and
// converge within it.
const livenessTimeMax = 40 * time.Second

// simStats count what runs did, to show the simulation exercises what it
// claims to.
type simStats struct {
	events, delivered, dropped, duplicated, unroutable            int
	crashes, restarts, freezes, partitions, diskStalls, diskFails int
	lostDisks, rejoins                                            int
	// After a membership change: disks lost, and their nodes back by
	// --rejoin --join (a join from the cluster's snapshot, rejoining).
	changedLostDisks, rejoinsByJoin                               int
	refused, gatedStarts, transfers                               int
	elections, snapshots, installs, leaseReads                    int
	installing, installCalls                                      int
	ops, unknown, grants, leaders, watchEvents, observed, cancels int
	slots                                                         int
	stateReports, encodingReports                                 int
	rttSamples, leaderlessTicks                                   int
	txnTransfers, txnEvents                                       int
	ephemeralPuts, ephemeralEnded                                 int
	watchProgress, watchSlowEnds                                  int
	kaBatches, kaBatchSeveral, kaSingles, kaRefused               int
	saves                                                         int
	// Membership changes answered done (adds, joins, ...), conflicts
	// and unknown outcomes (nodesim_members_test.go).
	memberAdds, memberJoins, memberPromotes, memberRemoves int
	memberRemovedLeaders, memberReplaces, memberUpdates    int
	memberConflicts, memberUnknown                         int
	busy                                                   int // answers Busy (busy.go), retried after their wait
	sessionLimit                                           int // opens refused at the client's session limit
	writeOnlyOps                                           int // answers to the write-only user, checked for pairs (nodesim_auth_test.go)
	writeOnlyDenied                                        int // its writes refused while its grant was revoked
}

func (a *simStats) add(b simStats) {
	a.events += b.events
	a.delivered += b.delivered
	a.dropped += b.dropped
	a.duplicated += b.duplicated
	a.unroutable += b.unroutable
	a.crashes += b.crashes
	a.restarts += b.restarts
	a.freezes += b.freezes
	a.partitions += b.partitions
	a.diskStalls += b.diskStalls
	a.diskFails += b.diskFails
	a.lostDisks += b.lostDisks
	a.rejoins += b.rejoins
	a.changedLostDisks += b.changedLostDisks
	a.rejoinsByJoin += b.rejoinsByJoin
	a.refused += b.refused
	a.gatedStarts += b.gatedStarts
	a.transfers += b.transfers
	a.elections += b.elections
	a.snapshots += b.snapshots
	a.installs += b.installs
	a.installing += b.installing
	a.installCalls += b.installCalls
	a.leaseReads += b.leaseReads
	a.ops += b.ops
	a.unknown += b.unknown
	a.grants += b.grants
	a.leaders += b.leaders
	a.watchEvents += b.watchEvents
	a.observed += b.observed
	a.cancels += b.cancels
	a.slots += b.slots
	a.stateReports += b.stateReports
	a.encodingReports += b.encodingReports
	a.rttSamples += b.rttSamples
	a.leaderlessTicks += b.leaderlessTicks
	a.txnTransfers += b.txnTransfers
	a.txnEvents += b.txnEvents
	a.ephemeralPuts += b.ephemeralPuts
	a.ephemeralEnded += b.ephemeralEnded
	a.watchProgress += b.watchProgress
	a.watchSlowEnds += b.watchSlowEnds
	a.kaBatches += b.kaBatches
	a.kaBatchSeveral += b.kaBatchSeveral
	a.kaSingles += b.kaSingles
	a.kaRefused += b.kaRefused
	a.saves += b.saves
	a.memberAdds += b.memberAdds
	a.memberJoins += b.memberJoins
	a.memberPromotes += b.memberPromotes
	a.memberRemoves += b.memberRemoves
	a.memberRemovedLeaders += b.memberRemovedLeaders
	a.memberReplaces += b.memberReplaces
	a.memberUpdates += b.memberUpdates
	a.memberConflicts += b.memberConflicts
	a.memberUnknown += b.memberUnknown
	a.busy += b.busy
	a.sessionLimit += b.sessionLimit
	a.writeOnlyOps += b.writeOnlyOps
	a.writeOnlyDenied += b.writeOnlyDenied
}

// simSeeds returns the seeds a run covers: -sim.seed, or -sim.seeds from
// -sim.from.
func simSeeds() []int64 {
	if *flagSimSeed >= 0 {
		return []int64{*flagSimSeed}
	}
	seeds := make([]int64, *flagSimSeeds)
	for i := range seeds {
		seeds[i] = *flagSimFrom + int64(i)
	}
	return seeds
}

// TestNodeSim runs the node simulation over a seed range. A failure prints
// the seed, the last events and the command that replays it.
func TestNodeSim(t *testing.T) {
	seeds := simSeeds()
	var total simStats
	start := time.Now()
	for i, seed := range seeds {
		if i > 0 && i%100 == 0 && testing.Verbose() {
			// Straight to stderr: a long run (make sim) shows its pace as it goes.
			fmt.Fprintf(os.Stderr, "TestNodeSim: %d seeds done (up to %d), %.0f seeds/hour\n", i, seed-1, float64(i)/time.Since(start).Hours())
		}
		opts := defaultSimOptions()
		if *flagSimTrace && *flagSimSeed >= 0 {
			opts.trace = func(l string) { t.Log(l) }
		}
		s := newSim(seed, opts)
		if err := s.runRecovered(); err != nil {
			report := t.Fatalf
			if *flagSimKeep {
				report = t.Errorf
			}
			report("seed %d: %v\n%s\nlast events:\n%s\nreplay: go test ./service -run 'TestNodeSim$' -sim.seed %d -sim.trace",
				seed, err, s.describe(), s.ring.String(), seed)
			continue
		}
		total.add(s.stats)
	}
	took := time.Since(start)
	t.Logf("%d seeds in %s (%.0f seeds/hour): %+v", len(seeds), took.Round(time.Millisecond),
		float64(len(seeds))/took.Hours(), total)
	if len(seeds) >= 20 {
		for what, n := range map[string]int{
			"crash": total.crashes, "election": total.elections, "snapshot": total.snapshots,
			"snapshot install": total.installs, "client call while a node installs a snapshot": total.installCalls, "lease read": total.leaseReads, "lock grant": total.grants,
			"election leader": total.leaders, "watch event": total.watchEvents, "observed change": total.observed,
			"rejoin": total.rejoins, "refused start": total.refused, "gated start": total.gatedStarts, "leadership transfer": total.transfers, "partition": total.partitions, "freeze": total.freezes, "disk stall": total.diskStalls,
			"cancel": total.cancels, "peer RTT sample": total.rttSamples, "time without a leader": total.leaderlessTicks,
			"state check report at the level of the encoding hash": total.encodingReports,
			"transfer between accounts (a transaction)":            total.txnTransfers,
			"watch event of a transaction's revision":              total.txnEvents,
			"ephemeral key put":                                    total.ephemeralPuts,
			"ephemeral key deleted by its session's end":           total.ephemeralEnded,
			"watch progress notification":                          total.watchProgress,
			"watch ended as a slow watcher (and resumed)":          total.watchSlowEnds,
			"request shed by a busy node, retried after its wait":  total.busy,
			"session open refused at the client's session limit":   total.sessionLimit,
			"answer to a write-only user (checked for pairs)":      total.writeOnlyOps,
			"write refused after its grant was revoked":            total.writeOnlyDenied,
			"keep-alive batch of several sessions":                 total.kaBatchSeveral,
			"single keep-alive (a client below protocol 12)":       total.kaSingles,
			"snapshot save (checked)":                              total.saves,
			"member add answered done":                             total.memberAdds,
			"new member joined from a saved snapshot":              total.memberJoins,
			"learner promoted":                                     total.memberPromotes,
			"member removed (and stopped)":                         total.memberRemoves,
			"disk lost after a membership change":                  total.changedLostDisks,
			"lost disk back by a join from the cluster's snapshot": total.rejoinsByJoin,
		} {
			if n == 0 {
				t.Errorf("no %s in %d seeds: the simulation does not exercise it", what, len(seeds))
			}
		}
	}
}
