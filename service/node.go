package service

import (
	crand "crypto/rand"
	"fmt"
	"io"
	"math/rand"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/paxos/replica"
	"github.com/paxosd/paxosd/proposer"
	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wal"
	"github.com/paxosd/paxosd/wire"
)

// drainMax bounds how many queued inputs one loop iteration takes before it
// persists and sends: large enough to batch, small enough to stay prompt.
const drainMax = 4096

// Node is one paxosd server: the replica, its WAL, its state machine, and
// the edges it reaches the world through (edges.go). One goroutine at a
// time runs its loop handlers (loop.go), and only they touch the replica
// and the state machine: Node.run in production, the simulation's driver
// in tests. The state machine is nil while the node installs a snapshot
// (install.go): every use of it checks installing first.
type Node struct {
	cfg   Config
	log   zerolog.Logger
	store *wal.Store
	r     *replica.Replica
	sm    *statemachine.StateMachine

	// The edges.
	journal   journal
	transport Transport
	clock     Clock
	peers     peerDialer
	bg        background

	m        *metrics
	reg      *prometheus.Registry
	leading  atomic.Bool // for /readyz, read outside the loop
	led      atomic.Bool // some leader is known
	leaderID atomic.Uint32
	diverged atomic.Bool // the state check found this node's state wrong
	// liveBytes is the key and value bytes of the applied state (the
	// quota's usage), for the process's memory limit, read outside the loop.
	liveBytes atomic.Uint64
	// chunksServed counts the chunks of this node's snapshot read by
	// members fetching it (readSnapshot, off the loop): the loop holds its
	// next snapshot back while they do (snapshotter.go, servingSnapshot).
	chunksServed atomic.Uint64
	uuid         atomic.Pointer[[]byte] // the cluster's uuid, for the hellos
	// authState is the auth state the loop last applied, and authLevel
	// the cluster level with it, for the connections' goroutines
	// (auth_login.go); limiter counts their failed attempts.
	authState atomic.Pointer[statemachine.AuthState]
	authLevel atomic.Uint64
	limiter   authLimiter
	dummy     dummyHashOnce

	// entropy draws the cluster's uuid; peerVersion (nil in the
	// simulation) is the protocol version a member's connection negotiated.
	entropy     io.Reader
	peerVersion func(paxos.NodeID) uint32
	// peerCheck vets peer messages before they reach the loop
	// (peercheck.go); it never changes, so any goroutine may use it.
	peerCheck *peerChecker

	// Production only: what Start wires up and run reads.
	ln  net.Listener
	tcp *wire.Transport
	// peersMu serializes handing tcp the book's addresses (publishPeers).
	peersMu  sync.Mutex
	wal      *walWriter
	inbox    chan paxos.Message
	calls    chan *call
	deferred chan func()
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
	page     pageFlight // status page gathers in progress (statuspage.go)

	// Owned by the loop.
	submitted     uint64 // sequence number of the last write handed to the journal
	durable       uint64 // ... and of the last one known durable
	held          []heldMessage
	announces     []paxos.Message // commit announcements sent after the answers (sendAnnounces)
	jobCommits    []jobCommit     // watermarks in writes not yet known durable
	waiters       map[callKey][]*call
	busy          backlog       // the bytes waiting for the log (busy.go)
	sessCounts    sessionCounts // sessions opened through this node, by client (session_limit.go)
	corked        []clientConn  // answered in this iteration (uncork)
	answerScratch wire.Response // the answer Node.answer builds and reuses
	saves         saveState     // snapshot saves for backups (snapshot_save.go)
	// The request metrics by label, looked up once (requestCounter).
	requestCounters map[requestLabels]prometheus.Counter
	requestTimers   map[wire.Op]prometheus.Observer
	streams         streamSet
	streamsApplied  paxos.Slot
	// streamsHeld: some watch was held back (watch_slow.go) at the push
	// of tick streamsTriedTick; pushStreams tries again at the next.
	streamsHeld      bool
	streamsTriedTick int
	// pushChunks: the history reads of this push, shared by the watches
	// at the same position (kvChunk), valid at pushChunksApplied.
	pushChunks        map[pushChunkKey]*pushChunk
	pushChunksApplied paxos.Slot
	lastChunk         *pushChunk // the chunk kvChunk returned last, for lastChunkKey
	lastChunkKey      pushChunkKey
	clusterClock      leaderClock
	ticks             tickClock
	rates             rateRecorder // the status page's history (rates.go)
	tickCount         int
	started           time.Time // origin of the monotonic clock readings
	lastLeader        paxos.NodeID
	lastRole          proposer.Role
	noLeaderSince     time.Time // when this node last lost sight of a leader; zero while it knows one (quorum.go)
	snap              snapshotState
	install           *installState // a fetched snapshot on its way in (install.go)
	rejoin            rejoinState
	boot              bootstrapState
	ident             identityProposer
	quota             ownProposal                 // the default quota (quota_node.go)
	level             ownProposal                 // the cluster level (level_node.go)
	levelLogged       uint64                      // the cluster level last logged
	peerCommit        map[paxos.NodeID]paxos.Slot // for choosing whom to hand leadership to
	// book is the membership as of the applied slot (members.go);
	// membersSeen its versions (in force, latest) when last synced.
	book          *memberBook
	membersSeen   [2]uint64
	removedLogged bool
	// memberCalls are member changes waiting to take effect; learning
	// and learnedAt pace the asking for unknown members' addresses
	// (members_learn.go).
	memberCalls []memberCall
	learning    bool
	learnedAt   time.Time
	peerVoted   map[paxos.NodeID]int // tickCount of each member's last Promise or Accepted
	peerHeard   map[paxos.NodeID]int // tickCount of each member's last watermark (noteCommit)
	handedTo    paxos.NodeID         // the member this leader last handed its leadership to
	check       stateCheck
	failed      error

	// obs, when set, is told what the loop did: the simulation's
	// checkers. Production leaves it nil.
	obs nodeObserver
}

// nodeObserver watches a node's loop from the outside (the simulation).
type nodeObserver interface {
	// applied: slot e was applied; sm is the state after it.
	applied(e paxos.Entry, sm *statemachine.StateMachine)
	// installing: the state machine was dropped to install a snapshot
	// of slot (Node.sm is nil until installed).
	installing(slot paxos.Slot)
	// installed: the state machine was replaced by a snapshot's.
	installed(sm *statemachine.StateMachine)
	// led: the node started leading under ballot b.
	led(b paxos.Ballot)
	// snapshotted: the node wrote its state as of slot, meta, to its store.
	snapshotted(slot paxos.Slot, meta wal.SnapshotMeta)
}

// nodeEdges are what newNode builds a node over, besides its Config.
type nodeEdges struct {
	store     *wal.Store
	rejoin    rejoinState    // what openStore found
	boot      bootstrapState // ... and whether the start is gated
	entropy   io.Reader
	transport Transport
	clock     Clock
	peers     peerDialer
	bg        background
	rand      paxos.Rand
	journal   journal // nil: the caller sets it once the node exists
}

// Start opens the data directory, starts serving on cfg.Listen, and runs
// the node until Stop.
func Start(cfg Config) (*Node, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	store, rejoin, boot, err := openStore(cfg)
	if err != nil {
		return nil, err
	}
	stop := make(chan struct{})
	deferred := make(chan func(), 16)
	n, err := newNode(cfg, nodeEdges{
		store: store, rejoin: rejoin, boot: boot, entropy: crand.Reader, clock: systemClock{},
		peers: tcpDialer{addr: func(paxos.NodeID) string { return "" }, clusterID: cfg.ClusterID, frameBytesMax: cfg.FrameBytesMax, tls: cfg.TLS},
		bg:    goroutines{deferred: deferred, stop: stop},
		rand:  rand.New(rand.NewSource(time.Now().UnixNano() + int64(cfg.ID))),
	})
	if err != nil {
		store.Close()
		return nil, err
	}
	n.peers = tcpDialer{addr: n.book.addr, clusterID: cfg.ClusterID, frameBytesMax: cfg.FrameBytesMax, tls: cfg.TLS}
	n.bg = goroutines{deferred: deferred, stop: stop, nice: max(cfg.InstallNice, 0), log: &n.log}
	ln, err := wire.Listen(cfg.Listen)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("service: listen on %s: %w", cfg.Listen, err)
	}
	tcp, err := wire.NewTransport(wire.TransportConfig{
		Self: cfg.ID, ClusterID: cfg.ClusterID, ClusterUUID: n.clusterUUID, Peers: n.book.addresses(),
		SelfAddr:      func() string { return n.book.addr(cfg.ID) },
		FrameBytesMax: cfg.FrameBytesMax, TLS: cfg.TLS, Logger: n.log,
	})
	if err != nil {
		ln.Close()
		store.Close()
		return nil, err
	}
	n.ln, n.tcp, n.transport = ln, tcp, tcp
	n.peerVersion = func(id paxos.NodeID) uint32 { return tcp.Stats(id).Version }
	if cfg.Metrics == nil {
		registerProcessMetrics(n.reg, newPeerCollector(cfg.ID, n.book.members, tcp.Stats), cfg.Version)
	}
	n.inbox = make(chan paxos.Message, drainMax)
	n.calls = make(chan *call, drainMax)
	n.deferred, n.stop, n.done = deferred, stop, make(chan struct{})
	n.wal = newWALWriter(store, n.m)
	n.journal = n.wal
	scfg := wire.ServerConfig{Self: cfg.ID, ClusterID: cfg.ClusterID, ClusterUUID: n.clusterUUID, FrameBytesMax: cfg.FrameBytesMax, TLS: cfg.TLS, Logger: n.log}
	scfg.CheckPeerMessage = n.checkPeerMessage
	scfg.PeerAddr = n.heardPeerAddr
	if cfg.TLS != nil {
		// With TLS a peer is who its certificate says; one that is not a
		// member has no business here either. (Plaintext keeps accepting
		// any id, as before: it proves nothing anyway.)
		scfg.Member = n.book.has
	}
	go func() {
		err := wire.Serve(ln, scfg, n)
		if err != nil {
			n.log.Debug().Err(err).Msg("server stopped")
		}
	}()
	n.begin()
	go n.run()
	return n, nil
}

// newNode builds a node over its edges, its state machine loaded from the
// stored snapshot and brought up to the stored watermark from the log. It
// starts nothing.
func newNode(cfg Config, e nodeEdges) (*Node, error) {
	log := cfg.Logger.With().Uint32("node", uint32(cfg.ID)).Logger()
	st, err := e.store.LoadTail()
	if err != nil {
		return nil, err
	}
	sm, err := loadSnapshot(e.store, smOptions(cfg), log, e.clock)
	if err != nil {
		return nil, err
	}
	snapSlot := sm.Applied()
	var snapSize uint64
	if meta, err := e.store.Snapshot(); err == nil {
		snapSize = meta.Size
	}
	if cfg.StateLoaded != nil {
		cfg.StateLoaded(sm.Quota().Used)
	}
	// The first configuration is the one --peers gives; once the log
	// holds a change, the state machine's own (and --peers is ignored).
	sm.SetBootstrapMembers(cfg.bootstrapMembers())
	if err := replay(e.store, sm, st.Commit, log, e.clock); err != nil {
		return nil, err
	}
	rcfg := paxos.Config{
		ID:             cfg.ID,
		Configs:        sm.Members(),
		HeartbeatTicks: cfg.HeartbeatTicks,
		ElectionTicks:  cfg.ElectionTicks,
		WindowSlots:    cfg.WindowSlots,
		BatchBytesMax:  cfg.BatchBytesMax,
		LaggardSlots:   cfg.LaggardSlots,
		// The frame limit bounds a message body; the core pages well below.
		MessageBytesMax: cfg.FrameBytesMax,
		Rand:            e.rand,
		Log:             e.store,
	}
	r, err := replica.New(rcfg, st, st.Commit)
	if err != nil {
		return nil, err
	}
	book := newMemberBook(sm.Members())
	if c := sm.Members(); c.Latest().Version > 1 && !sameAddresses(c.Latest(), cfg.Peers) {
		log.Info().Uint64("version", c.Latest().Version).Msg("--peers differs from the cluster's membership, which the log holds since it first changed: --peers is ignored (see paxosd member list)")
	}
	reg := cfg.Metrics
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	n := &Node{
		cfg:       cfg,
		m:         newMetrics(reg),
		reg:       reg,
		log:       log,
		store:     e.store,
		r:         r,
		sm:        sm,
		journal:   e.journal,
		transport: e.transport,
		clock:     e.clock,
		peers:     e.peers,
		bg:        e.bg,
		rejoin:    e.rejoin,
		boot:      e.boot,
		entropy:   e.entropy,
		snap:      snapshotState{last: snapSlot, size: snapSize},
		waiters:   map[callKey][]*call{},
		streams:   newStreamSet(),
		started:   e.clock.Now(),
		peerCheck: newPeerChecker(cfg.ID),
		book:      book,
	}
	n.rejoin.durableCommit = st.Commit
	n.publishAuth()
	n.noteIdentity()
	n.log.Info().Uint64("commit", uint64(st.Commit)).Int("log_entries", len(st.Entries)).Msg("node started")
	if slot, diverged, err := e.store.Diverged(); err != nil {
		return nil, err
	} else if diverged {
		n.divergedAt(slot, false)
	}
	return n, nil
}

// begin starts what a new node does before its first input: a rejoining
// node asks the others how far the cluster got.
func (n *Node) begin() {
	if n.ln != nil {
		n.log.Info().Str("listen", n.ln.Addr().String()).Msg("serving")
	}
	if n.boot.active {
		n.log.Info().Bool("new_cluster", n.boot.mayForm).
			Msg("bootstrap: this node's data directory holds no state: asking the other members whether it voted before, and whether a cluster exists")
		n.bootstrapProbe(0)
	}
	if n.rejoin.active {
		n.log.Warn().Msg("rejoining after lost data: this node does not vote until it has caught up")
		if n.rejoin.target == wal.RejoinUnknown {
			n.probeForRejoin(0)
		}
	}
}

// jobCommit is the watermark a WAL write carries.
type jobCommit struct {
	seq    uint64
	commit paxos.Slot
}

// logRetainSlots is how many durable, applied slots below the watermark the
// replica keeps in memory (for followers slightly behind, and Prepares from
// a little way back); older ones are read back from the WAL when needed.
const logRetainSlots = 1024

// heldMessage waits for the write submitted as seq to be durable.
type heldMessage struct {
	seq uint64
	m   paxos.Message
}

// Addr returns the address the node listens on.
func (n *Node) Addr() string { return n.ln.Addr().String() }

// LiveBytes returns the bytes of the keys and values of the state this node
// applied: what its memory must scale with. Safe from any goroutine.
func (n *Node) LiveBytes() uint64 { return n.liveBytes.Load() }

// Stop shuts the node down and closes its data directory. It may be called
// more than once, and concurrently: every call returns once it is done.
func (n *Node) Stop() {
	n.stopOnce.Do(func() {
		close(n.stop)
		<-n.done
		n.ln.Close()
		n.tcp.Close()
		n.wal.close()
		n.store.Close()
	})
}

// Done is closed when the node's loop has ended (Stop, or a fatal error).
func (n *Node) Done() <-chan struct{} { return n.done }

// Err returns the fatal error that stopped the node, if any.
func (n *Node) Err() error {
	select {
	case <-n.done:
		return n.failed
	default:
		return nil
	}
}

// HandlePeer takes a message from a peer connection (wire.Handler).
func (n *Node) HandlePeer(m paxos.Message) {
	select {
	case n.inbox <- m:
	case <-n.stop:
	}
}

// run is the production driver of the loop: it feeds the handlers from
// the channels the peer and client connections, the WAL writer, background
// work and the ticker fill, and stops on Stop or a fatal error.
func (n *Node) run() {
	defer close(n.done)
	defer n.uncork() // the answers failWaiters gave
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	for n.failed == nil {
		select {
		case <-n.stop:
			n.failWaiters(wire.ErrUnavailable, "node is shutting down")
			return
		case m := <-n.inbox:
			n.step(m)
		case c := <-n.calls:
			n.handleCall(c)
		case seq := <-n.wal.done:
			n.release(seq)
		case f := <-n.deferred:
			f()
		case <-n.wal.dead:
			n.fail(n.wal.err)
		case <-ticker.C:
			n.tick(n.clock.Now())
		}
		n.drain()
		n.afterInputs()
	}
}

// drain takes whatever else is queued, so one Ready (one sync, one batch)
// covers it all.
func (n *Node) drain() {
	for i := 0; i < drainMax; i++ {
		select {
		case m := <-n.inbox:
			n.step(m)
		case c := <-n.calls:
			n.handleCall(c)
		case seq := <-n.wal.done:
			n.release(seq)
		default:
			return
		}
	}
}
