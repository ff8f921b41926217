package service

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"time"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/wal"
	"github.com/paxosd/paxosd/wire"
)

// simParams are a run's settings, drawn from its seed.
type simParams struct {
	nodes                         int
	tick                          time.Duration
	heartbeatTicks, electionTicks int
	window, batchBytes            int
	frameBytes, valueBytes        int
	snapshotEntries, snapshotKeep int
	requestTimeout                time.Duration
	backlogBytes                  int // Config.BacklogBytesMax (0: the default)
	sessionsPerClient             int // Config.SessionsPerClientMax (0: the default)
	laggardSlots                  int // Config.LaggardSlots (0: the default)
	// The network: a message takes latencyMin..latencyMax, or with
	// slowRate up to slowMax; dropRate and dupRate lose and repeat it.
	latencyMin, latencyMax, slowMax time.Duration
	dropRate, dupRate, slowRate     float64
	// Disks: a sync takes syncMin..syncMax when the disk is healthy.
	syncMin, syncMax time.Duration
	// faultEvery is the mean time between two faults; faultWeights
	// weigh the kinds of fault (swarm testing: each seed its own mix).
	faultEvery   time.Duration
	faultWeights [faultKinds]int
	// slowType: messages of a type are delayed up to slowMax with this
	// probability (some seeds slow some types: Prepares, heartbeats...).
	slowType map[paxos.MsgType]float64
	// crashLeader: the probability that a node that just became leader
	// has its disk slowed and crashes before its first writes are durable.
	crashLeader float64
	// slowAfterGrant: the probability that the link from a candidate to a
	// node that just granted its PreVote turns slow, so the candidate's
	// Prepare arrives late (after that node may have heard from a leader
	// again).
	slowAfterGrant float64
	clients        int
	rpcFail        float64 // a snapshot or status request fails midway
	// slowWork: a background job's result comes back up to this much
	// later than the network alone would bring it (a snapshot's encoding,
	// a state hash, a fetched snapshot's check and decode take seconds
	// with a large state): a node installing a snapshot stays without a
	// state machine that long, and clients call it meanwhile.
	slowWork time.Duration
	// slowReaders, when not 0, is how many bytes a second the watch
	// clients read, against a node bound of watchBacklog bytes unread
	// (Config.WatchBacklogBytes; 0: the default): their watches are held
	// and ended as slow watchers, and resume.
	slowReaders float64
	// watchSlowAfter is how long a watch may be held before it ends
	// slow: a second, half that where the clients read slowly, so that a
	// run ends some watches slow whatever the timing of the rest.
	watchSlowAfter time.Duration
	watchBacklog   int64
	watchFrames    int
}

func drawParams(rng *rand.Rand, seed int64, opts simOptions) simParams {
	p := simParams{
		nodes:          3 + 2*rng.Intn(2),
		tick:           10 * time.Millisecond,
		heartbeatTicks: 3,
		electionTicks:  15,
		window:         []int{4, 16, 64, 256}[rng.Intn(4)],
		requestTimeout: 2 * time.Second,
		latencyMin:     time.Duration(20+rng.Intn(200)) * time.Microsecond,
		slowMax:        time.Duration(50+rng.Intn(400)) * time.Millisecond,
		dropRate:       rng.Float64() * 0.1,
		dupRate:        rng.Float64() * 0.05,
		slowRate:       rng.Float64() * 0.05,
		syncMin:        time.Duration(50+rng.Intn(200)) * time.Microsecond,
		faultEvery:     time.Duration(300+rng.Intn(1700)) * time.Millisecond,
		clients:        4 + rng.Intn(5),
		rpcFail:        rng.Float64() * 0.2,
	}
	p.latencyMax = p.latencyMin + time.Duration(rng.Intn(3000))*time.Microsecond
	p.syncMax = p.syncMin + time.Duration(rng.Intn(3000))*time.Microsecond
	switch rng.Intn(3) {
	case 0: // small frames: Promises, Accepts and catch-up page
		p.frameBytes, p.valueBytes, p.batchBytes = 8<<10, 2<<10, 2<<10
	case 1:
		p.frameBytes, p.valueBytes, p.batchBytes = 64<<10, 4<<10, 16<<10
	default:
		p.frameBytes, p.valueBytes, p.batchBytes = 16<<20, 1<<20, 1<<20
	}
	p.snapshotEntries = []int{10, 40, 200, 10000}[rng.Intn(4)]
	p.snapshotKeep = rng.Intn(p.snapshotEntries/2 + 1)
	for k := range p.faultWeights {
		p.faultWeights[k] = []int{0, 1, 1, 2, 4}[rng.Intn(5)]
	}
	p.faultWeights[rng.Intn(faultKinds)] += 2 // never all zero
	p.slowType = map[paxos.MsgType]float64{}
	if rng.Intn(3) == 0 {
		for t := paxos.MsgPreVote; t <= paxos.MsgSnapshot; t++ {
			if rng.Intn(4) == 0 {
				p.slowType[t] = 0.05 + rng.Float64()*0.35
			}
		}
	}
	p.crashLeader = []float64{0, 0, 0.1, 0.3}[rng.Intn(4)]
	p.slowAfterGrant = []float64{0, 0, 0.2, 0.5}[rng.Intn(4)]
	p.watchSlowAfter = time.Second
	if !opts.scripted {
		// From a stream of its own: a seed that draws none runs as it did
		// before slowWork existed.
		p.slowWork = []time.Duration{0, 0, 250 * time.Millisecond, time.Second}[rand.New(rand.NewSource(seed^0x5109)).Intn(4)]
		// Likewise: one seed in four has watch clients that read
		// slowly, against a small bound.
		if r := rand.New(rand.NewSource(seed ^ 0x51d3)); r.Intn(4) == 0 {
			p.slowReaders = float64(1000 + r.Intn(4000))
			p.watchBacklog = int64(256 + r.Intn(2048))
		} else if rand.New(rand.NewSource(seed^0xf4a3)).Intn(6) == 0 {
			// Or held by the count of answers rather than their bytes
			// (pushes then grow: a held watch catches up in one), the
			// clients reading a few hundred bytes a second.
			p.slowReaders, p.watchBacklog, p.watchFrames = 300, 1<<20, 2
		}
		if p.slowReaders != 0 {
			p.watchSlowAfter = 500 * time.Millisecond
		}
		// A backlog bound small enough that the clients' own load is
		// shed now and then (busy.go), from a stream of its own too.
		p.backlogBytes = []int{0, 0, 0, 1 << 10, 4 << 10}[rand.New(rand.NewSource(seed^0xb059)).Intn(5)]
		// A per-client session limit the lock and election clients reach
		// with their spare sessions (session_limit.go).
		p.sessionsPerClient = []int{0, 0, 0, 2}[rand.New(rand.NewSource(seed^0x5e55)).Intn(4)]
		// How far behind a follower gets no new slots' Accepts
		// (proposer.Laggards): half the seeds the least allowed, twice
		// the window, or a few times that, so that followers slowed,
		// partitioned or restarted are left out and taken back often (the
		// default, 4096, a run rarely reaches).
		p.laggardSlots = 2 * p.window * []int{0, 0, 1, 3}[rand.New(rand.NewSource(seed^0x1a66)).Intn(4)]
	}
	if opts.mutate != nil {
		opts.mutate(&p)
	}
	return p
}

// simNode is one member: its disk (a crash-testing in-memory filesystem),
// and, while it runs, its Node.
type simNode struct {
	s     *sim
	id    paxos.NodeID
	fs    *vfs.MemFS
	store *wal.Store
	n     *Node // nil while down
	// inc counts starts and stops: an event scheduled for one incarnation
	// is dropped if the node restarted or stopped since.
	inc  int
	rate float64 // its clock runs rate times as fast as real time
	// frozenUntil: the process is paused (SIGSTOP, a long GC); events
	// for it wait in frozen until then.
	frozenUntil time.Duration
	frozen      []func()
	tickAt      time.Duration
	journal     *simJournal
	// Disk health: syncs take up to slowSync until slowUntil; none
	// completes until stalledUntil; failAt > 0 fails the next write.
	slowUntil, stalledUntil time.Duration
	slowSync                time.Duration
	failNext                bool
	// join is how the next start treats a data directory without state:
	// the flags the operator gave (a leftover --new-cluster, --rejoin, or
	// none). wiped: the data directory was lost since the node last
	// voted; rebuilding: from then until the node is seen voting again.
	join              JoinMode
	wiped, rebuilding bool
	started           bool // started once: later starts are restarts
	// voted: when it last stopped, the node held a voter's state.
	voted bool
	// durablePromise is the promise last made durable by this node's
	// journal, to check it never goes back, across crashes too.
	durablePromise paxos.Ballot
	// pledged is, per node, the highest ballot of a Promise or Accepted
	// this node sent the ballot's owner, in any life (with the owner's
	// disk generation then); pledgeFloor, from its last lost disk, the
	// highest of those whose owner is still a member with the same disk
	// (it holds its own ballot, so a rejoin raises the promise past it):
	// no vote of it may go below that floor (simChecker.voted). diskGen
	// counts the node's lost disks.
	pledged     map[paxos.NodeID]simPledge
	pledgeFloor paxos.Ballot
	diskGen     int
	// campaign is the ballot of the node's latest campaign (faults aim at
	// its start).
	campaign paxos.Ballot
	// Membership changes (nodesim_members_test.go): added by the
	// operator (not one of the first members); joined once its store was
	// written from the cluster's snapshot (joining: a save under way);
	// gone once removed, never to start again.
	added, joined, joining, gone bool
	// absent: the membership version in which the operator first found
	// it removed without having been told.
	absent uint64
	// needsJoin: its disk was lost after the membership changed; it
	// comes back by a join from the cluster's snapshot (--rejoin --join,
	// or an added node's --join run again), which the operator does.
	needsJoin bool
}

func (sn *simNode) up() bool { return sn.n != nil }

func (sn *simNode) isFrozen() bool { return sn.s.now < sn.frozenUntil }

// onNode schedules f on incarnation inc of sn after d: dropped if sn has
// stopped or restarted by then, held while it is frozen, and followed by
// the loop's afterInputs.
func (s *sim) onNode(sn *simNode, inc int, d time.Duration, what func() string, f func(n *Node)) {
	s.at(d, what, func() { s.runOn(sn, inc, f) })
}

func (s *sim) runOn(sn *simNode, inc int, f func(n *Node)) {
	if !sn.up() || sn.inc != inc {
		return
	}
	if sn.isFrozen() {
		sn.frozen = append(sn.frozen, func() { s.runOn(sn, inc, f) })
		return
	}
	f(sn.n)
	if sn.up() && sn.inc == inc {
		sn.n.afterInputs()
		if failed := sn.n.failed; failed != nil {
			s.tracef("node %d stopped: %v", sn.id, failed)
			s.stop(sn)
			if errors.Is(failed, ErrLostData) {
				s.stats.refused++
				if !sn.wiped {
					s.failf("node %d was refused as a voter that lost its data, but its data directory is intact: %v", sn.id, failed)
					return
				}
				s.operatorRejoins(sn)
			}
		}
	}
}

// config is the node's Config in this run.
func (s *sim) config(sn *simNode) Config {
	// --peers is the first configuration, the bootstrap (the log holds
	// the changes since); an added node names itself too, as Validate
	// asks (serve --join passes the membership it was told).
	peers := map[paxos.NodeID]string{}
	for _, o := range s.nodes {
		if !o.added || o == sn {
			peers[o.id] = fmt.Sprintf("node%d:7401", o.id)
		}
	}
	log := zerolog.Nop()
	if s.opts.trace != nil {
		log = zerolog.New(zerolog.ConsoleWriter{Out: traceWriter{s}, NoColor: true, PartsExclude: []string{"time"}}).Level(zerolog.InfoLevel)
	}
	return Config{
		ID: sn.id, ClusterID: "sim", Listen: peers[sn.id], Peers: peers, DataDir: "/data", FS: sn.fs, MemTableBytes: 64 << 10,
		TickInterval: s.p.tick, HeartbeatTicks: s.p.heartbeatTicks, ElectionTicks: s.p.electionTicks,
		WindowSlots: s.p.window, BatchBytesMax: s.p.batchBytes, LaggardSlots: s.p.laggardSlots, ValueBytesMax: s.p.valueBytes,
		FrameBytesMax: s.p.frameBytes, RequestTimeout: s.p.requestTimeout, BacklogBytesMax: s.p.backlogBytes,
		SessionsPerClientMax: s.p.sessionsPerClient,
		SnapshotEntries:      s.p.snapshotEntries, SnapshotKeepEntries: max(s.p.snapshotKeep, 1),
		StateCheckSlots: 16,
		// Progress notifications often enough for a run to see many, on
		// lagging followers and restarted nodes too.
		WatchProgressInterval: 300 * time.Millisecond,
		WatchBacklogBytes:     s.p.watchBacklog,
		WatchBacklogFrames:    s.p.watchFrames,
		WatchSlowAfter:        s.p.watchSlowAfter,
		Join:                  sn.join, Logger: log,
	}
}

// traceWriter turns the nodes' log lines into trace lines.
type traceWriter struct{ s *sim }

func (w traceWriter) Write(p []byte) (int, error) {
	line := string(p)
	w.s.note(func() string { return "  log: " + line })
	return len(p), nil
}

// startNode starts sn from its disk.
func (s *sim) startNode(sn *simNode) {
	cfg := s.config(sn)
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		s.failf("node %d: %v", sn.id, err)
		return
	}
	store, rejoin, boot, err := openStore(cfg)
	if wal.IsNoStore(err) {
		// Refused without --rejoin or --new-cluster: the operator reads
		// the line and restarts it with --rejoin (its data was lost), or
		// with --new-cluster (it crashed before its new store was synced).
		s.tracef("node %d refused to start: %v", sn.id, err)
		s.stats.refused++
		if sn.wiped {
			s.operatorRejoins(sn)
		} else {
			sn.join = JoinForm
			s.at(time.Duration(200+s.rng.Intn(1500))*time.Millisecond, nil, func() { s.restart(sn) })
		}
		return
	}
	if err != nil {
		s.failf("node %d: open: %v", sn.id, err)
		return
	}
	sn.started = true
	sn.inc++
	inc := sn.inc
	n, err := newNode(cfg, nodeEdges{
		store: store, rejoin: rejoin, boot: boot,
		entropy:   rand.New(rand.NewSource(s.seed*1000 + int64(sn.id)*100 + int64(inc) + 7)),
		transport: simTransport{s, sn},
		clock:     simClock{s, sn},
		peers:     simDialer{s, sn},
		bg:        simBackground{s, sn, inc},
		rand:      rand.New(rand.NewSource(s.seed*1000 + int64(sn.id)*100 + int64(inc))),
	})
	if err != nil {
		store.Close()
		s.failf("node %d: start: %v", sn.id, err)
		return
	}
	sn.store, sn.n = store, n
	sn.journal = &simJournal{s: s, sn: sn, inc: inc}
	n.journal = sn.journal
	n.obs = s.check.observer(sn)
	s.check.started(sn)
	if sn.wiped && sn.join == JoinRejoin {
		s.stats.rejoins++
	}
	if boot.active {
		s.stats.gatedStarts++
	}
	n.begin()
	sn.tickAt = s.now
	s.scheduleTick(sn, inc)
}

// scheduleTick runs sn's ticker: a tick every TickInterval of its own
// clock. A paused process misses ticks: it gets one when it resumes, as a
// Go ticker's reader does.
func (s *sim) scheduleTick(sn *simNode, inc int) {
	sn.tickAt += time.Duration(float64(s.p.tick) / sn.rate)
	s.at(sn.tickAt-s.now, nil, func() {
		if !sn.up() || sn.inc != inc {
			return
		}
		if sn.isFrozen() {
			sn.tickAt = sn.frozenUntil
		}
		s.runOn(sn, inc, func(n *Node) { n.tick(n.clock.Now()) })
		if sn.up() && sn.inc == inc {
			s.scheduleTick(sn, inc)
		}
	})
}

// stop ends sn's process: a crash (kill -9, power loss) or the node
// stopping itself on a failed write. Everything its disk had not synced is
// lost; so is what its journal had not written.
func (s *sim) stop(sn *simNode) {
	if !sn.up() {
		return
	}
	s.countNode(sn)
	sn.voted = sn.votes()
	if sn.voted {
		sn.wiped = false // it was voting: its disk holds its state again
	}
	sn.n, sn.journal = nil, nil
	sn.inc++
	sn.frozen, sn.frozenUntil = nil, 0
	sn.fs.SetIgnoreSyncs(true)
	_ = sn.store.Close()
	sn.fs.ResetToSyncedState()
	sn.fs.SetIgnoreSyncs(false)
	sn.store = nil
	for _, c := range s.clients {
		c.nodeStopped(sn)
	}
	if s.op != nil {
		s.op.nodeStopped(sn)
	}
	if s.auth != nil {
		s.auth.nodeStopped(sn)
	}
}

// countNode adds what a node incarnation did to the run's statistics.
func (s *sim) countNode(sn *simNode) {
	s.stats.leaseReads += int(testutil.ToFloat64(sn.n.m.leaseReads))
	// The loop's timings run on the node's simulated clock: the heartbeat
	// round trips and the leaderless spells of a run must show.
	s.stats.leaderlessTicks += int(testutil.ToFloat64(sn.n.m.noLeaderSeconds) / sn.n.cfg.TickInterval.Seconds())
	mfs, err := sn.n.reg.Gather()
	if err != nil {
		s.failf("node %d: gather metrics: %v", sn.id, err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "paxosd_peer_rtt_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if h := m.GetHistogram(); h.GetSampleSum() < 0 {
				s.failf("node %d: peer RTT samples sum to %v seconds", sn.id, h.GetSampleSum())
			} else {
				s.stats.rttSamples += int(h.GetSampleCount())
			}
		}
	}
	if m := testutil.ToFloat64(sn.n.m.stateMismatches); m > 0 {
		s.failf("node %d's state check flagged %v mismatches, but the replicas agree (the checkers compared every slot)", sn.id, m)
	}
}

// simClock is a node's monotonic clock: it runs at the node's rate, and on
// while the node is paused.
type simClock struct {
	s  *sim
	sn *simNode
}

func (c simClock) Now() time.Time {
	return c.s.epoch.Add(time.Duration(float64(c.s.now) * c.sn.rate))
}

// simTransport sends a node's messages into the simulated network.
type simTransport struct {
	s  *sim
	sn *simNode
}

func (t simTransport) Send(m paxos.Message) { t.s.send(t.sn, m) }

// simJournal is a node's disk behind its WAL writer: it takes the writes
// the loop submits and completes them, in order and merged (group
// commit), after a sync time the seed draws — slower on a slow disk, not
// at all on a stalled one until it recovers. Only a completed write
// reaches the store; a crash loses the rest.
type simJournal struct {
	s       *sim
	sn      *simNode
	inc     int
	queue   []walJob
	writing bool
	err     error
}

var errSimDisk = errors.New("simulated disk failure: input/output error")

func (j *simJournal) submit(job walJob) error {
	if j.err != nil {
		return j.err
	}
	j.queue = append(j.queue, job)
	if !j.writing {
		j.write()
	}
	return nil
}

func (j *simJournal) close() {}

// write starts writing everything queued as one batch.
func (j *simJournal) write() {
	s, sn := j.s, j.sn
	batch := j.queue
	j.queue = nil
	j.writing = true
	d := s.syncTime(sn)
	last := batch[len(batch)-1].seq
	s.onNode(sn, j.inc, d, func() string { return fmt.Sprintf("node %d: writes up to %d durable", sn.id, last) }, func(n *Node) {
		j.writing = false
		if sn.failNext {
			sn.failNext = false
			j.err = errSimDisk
			n.fail(errSimDisk)
			return
		}
		if err := writeJobs(sn.store, batch, n.clock, nil); err != nil {
			j.err = err
			n.fail(err)
			return
		}
		s.check.durable(sn, batch)
		n.release(last)
		if len(j.queue) > 0 {
			j.write()
		}
	})
}

// syncTime is how long the next sync of sn's disk takes.
func (s *sim) syncTime(sn *simNode) time.Duration {
	d := s.p.syncMin + time.Duration(s.rng.Int63n(int64(s.p.syncMax-s.p.syncMin)+1))
	if s.now < sn.slowUntil {
		d += time.Duration(s.rng.Int63n(int64(sn.slowSync) + 1))
	}
	if s.now < sn.stalledUntil {
		d += sn.stalledUntil - s.now
	}
	return d
}

// simDialer reaches other members for the snapshot fetch and the rejoin
// probe, through the same partitions as the protocol's messages.
type simDialer struct {
	s  *sim
	sn *simNode
}

var errSimUnreachable = errors.New("simulated network: connection refused or timed out")

func (d simDialer) dial(_ context.Context, id paxos.NodeID) (peerConn, error) {
	to := d.s.node(id)
	// A paused process's kernel still accepts connections: its calls fail
	// instead (a bootstrap probe must tell paused from absent). A node
	// dials only the nodes its book has an address for (tcpDialer).
	if to == nil || d.sn.n.book.addr(id) == "" || !to.up() || !d.s.net.reaches(d.sn.id, id) || !d.s.net.reaches(id, d.sn.id) {
		return nil, errSimUnreachable
	}
	return &simPeerConn{s: d.s, from: d.sn, to: to, inc: to.inc}, nil
}

// simPeerConn calls another member's request handling directly, as its
// state is at that moment; it breaks with the member, with the network,
// and now and then for no reason (a transfer cut midway).
type simPeerConn struct {
	s        *sim
	from, to *simNode
	inc      int
}

func (c *simPeerConn) Call(_ context.Context, q *wire.Request) (*wire.Response, error) {
	s := c.s
	if !c.to.up() || c.to.inc != c.inc || c.to.isFrozen() || !s.net.reaches(c.from.id, c.to.id) || !s.net.reaches(c.to.id, c.from.id) {
		return nil, errSimUnreachable
	}
	if s.rng.Float64() < s.p.rpcFail {
		return nil, errSimUnreachable
	}
	if q.Op == wire.OpStatus {
		// What the node answers a client's OpStatus (handleCall): its
		// own status, then every member it knows with its address, which
		// a node behind a membership change learns addresses from
		// (members_learn.go). Its own status alone left such a node
		// without the new leader's address for good (seed 79384).
		return &wire.Response{ID: q.ID, Status: c.to.n.memberStatuses()}, nil
	}
	_, resp := c.to.n.newCall(nil, q)
	if resp == nil {
		return nil, fmt.Errorf("simulation: a peer request needs the loop: %s", q.Op)
	}
	return resp, nil
}

func (c *simPeerConn) Close() error { return nil }

// simBackground runs a node's background work (snapshot fetch, rejoin
// probe) as events: the work after its delay plus a network's worth, its
// continuation on the loop a moment later.
type simBackground struct {
	s   *sim
	sn  *simNode
	inc int
}

// runYielding: the simulation has one CPU per event; priorities mean nothing.
func (b simBackground) runYielding(work func(ctx context.Context) func()) { b.run(0, work) }

// pause: background work is one event here, which cannot wait in the
// simulation's time.
func (b simBackground) pause(context.Context, time.Duration) error { return nil }

func (b simBackground) run(after time.Duration, work func(ctx context.Context) func()) {
	s, sn, inc := b.s, b.sn, b.inc
	s.onNode(sn, inc, after+s.latency(), func() string { return fmt.Sprintf("node %d: background work", sn.id) }, func(*Node) {
		then := work(context.Background())
		d := s.latency()
		if s.p.slowWork > 0 {
			d += time.Duration(s.rng.Int63n(int64(s.p.slowWork)))
		}
		s.onNode(sn, inc, d, func() string { return fmt.Sprintf("node %d: background work done", sn.id) }, func(*Node) { then() })
	})
}

func (s *sim) node(id paxos.NodeID) *simNode {
	if id == 0 || int(id) > len(s.nodes) {
		return nil
	}
	return s.nodes[id-1]
}

// simAddr names a simulated client connection.
type simAddr string

func (a simAddr) Network() string { return "sim" }
func (a simAddr) String() string  { return string(a) }

var _ net.Addr = simAddr("")

// operatorRejoins restarts a node that refused to start, as an operator
// who read its line would: once, with --rejoin, a little later.
func (s *sim) operatorRejoins(sn *simNode) {
	sn.join = JoinRejoin
	s.at(time.Duration(200+s.rng.Intn(1500))*time.Millisecond, nil, func() { s.restart(sn) })
}

// leftoverFlags draws the flags a restart of an intact node comes back
// with: none, or a one-shot flag left in a unit file (both harmless).
func (s *sim) leftoverFlags() JoinMode {
	return [...]JoinMode{JoinExisting, JoinExisting, JoinForm, JoinRejoin}[s.rng.Intn(4)]
}

// votes reports whether sn holds a voter's state: it has voted and is not
// gated, rejoining or failed (as of its last stop, when it is down).
func (sn *simNode) votes() bool {
	if !sn.up() {
		return sn.voted && !sn.wiped
	}
	n := sn.n
	return !n.rejoin.active && !n.boot.active && n.failed == nil && !sn.durablePromise.IsZero()
}
