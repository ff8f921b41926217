package service

import (
	"fmt"
	"math/rand"
	"net"
	"sort"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/paxos/replica"
	"github.com/paxosd/paxosd/proposer"
	"github.com/paxosd/paxosd/wal"
	"github.com/paxosd/paxosd/wire"
)

// drainMax bounds how many queued inputs one loop iteration takes before it
// persists and sends: large enough to batch, small enough to stay prompt.
const drainMax = 4096

// Node is one running paxosd server: the replica, its WAL, its state
// machine, the peer transport and the client server. Its run loop is the
// only goroutine that touches the replica and the state machine.
type Node struct {
	cfg       Config
	log       zerolog.Logger
	store     *wal.Store
	r         *replica.Replica
	sm        *StateMachine
	transport *wire.Transport
	ln        net.Listener

	m       *metrics
	reg     *prometheus.Registry
	leading atomic.Bool // for /readyz, read outside the loop
	led     atomic.Bool // some leader is known

	inbox   chan paxos.Message
	calls   chan *call
	fetched chan snapshotFetched

	rejoinProbed chan rejoinProbe
	stop         chan struct{}
	done         chan struct{}

	// Owned by the run loop.
	wal            *walWriter
	submitted      uint64 // sequence number of the last write handed to wal
	durable        uint64 // ... and of the last one known durable
	held           []heldMessage
	jobCommits     []jobCommit // watermarks in writes not yet known durable
	waiters        map[callKey][]*call
	corked         []*wire.ClientConn // answered in this iteration (uncork)
	streams        map[streamKey]*stream
	streamsApplied paxos.Slot
	clock          leaderClock
	ticks          tickClock
	started        time.Time // origin of the monotonic clock readings
	lastLeader     paxos.NodeID
	lastRole       proposer.Role
	snap           snapshotState
	rejoin         rejoinState
	failed         error
}

// Start opens the data directory, starts serving on cfg.Listen, and runs
// the node until Stop.
func Start(cfg Config) (*Node, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger.With().Uint32("node", uint32(cfg.ID)).Logger()
	store, rejoin, err := openStore(cfg)
	if err != nil {
		return nil, err
	}
	st, err := store.LoadTail()
	if err != nil {
		store.Close()
		return nil, err
	}
	sm, err := loadSnapshot(store, smOptions(cfg), log)
	if err != nil {
		store.Close()
		return nil, err
	}
	snapSlot := sm.Applied()
	if err := replay(store, sm, st.Commit, log); err != nil {
		store.Close()
		return nil, err
	}
	rcfg := paxos.Config{
		ID:             cfg.ID,
		Members:        cfg.members(),
		HeartbeatTicks: cfg.HeartbeatTicks,
		ElectionTicks:  cfg.ElectionTicks,
		WindowSlots:    cfg.WindowSlots,
		BatchBytesMax:  cfg.BatchBytesMax,
		// The frame limit bounds a message body; the core pages well below.
		MessageBytesMax: cfg.FrameBytesMax,
		Rand:            rand.New(rand.NewSource(time.Now().UnixNano() + int64(cfg.ID))),
		Log:             store,
	}
	r, err := replica.New(rcfg, st, st.Commit)
	if err != nil {
		store.Close()
		return nil, err
	}
	ln, err := wire.Listen(cfg.Listen)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("service: listen on %s: %w", cfg.Listen, err)
	}
	reg := cfg.Metrics
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	n := &Node{
		cfg:     cfg,
		m:       newMetrics(reg),
		reg:     reg,
		log:     log,
		store:   store,
		r:       r,
		sm:      sm,
		ln:      ln,
		inbox:   make(chan paxos.Message, drainMax),
		calls:   make(chan *call, drainMax),
		fetched: make(chan snapshotFetched, 1),
		rejoin:  rejoin,

		rejoinProbed: make(chan rejoinProbe, 1),
		snap:         snapshotState{last: snapSlot},
		stop:         make(chan struct{}),
		done:         make(chan struct{}),
		waiters:      map[callKey][]*call{},
		streams:      map[streamKey]*stream{},
		started:      time.Now(),
	}
	n.transport, err = wire.NewTransport(wire.TransportConfig{
		Self: cfg.ID, ClusterID: cfg.ClusterID, Peers: cfg.Peers,
		FrameBytesMax: cfg.FrameBytesMax, Logger: log,
	})
	if err != nil {
		ln.Close()
		store.Close()
		return nil, err
	}
	go func() {
		err := wire.Serve(ln, wire.ServerConfig{Self: cfg.ID, ClusterID: cfg.ClusterID, FrameBytesMax: cfg.FrameBytesMax, Logger: log}, n)
		if err != nil {
			log.Debug().Err(err).Msg("server stopped")
		}
	}()
	n.wal = newWALWriter(store, n.m)
	log.Info().Str("listen", ln.Addr().String()).Uint64("commit", uint64(st.Commit)).
		Int("log_entries", len(st.Entries)).Msg("node started")
	if rejoin.active {
		log.Warn().Msg("rejoining after lost data: this node does not vote until it has caught up")
		if rejoin.target == wal.RejoinUnknown {
			go n.probeForRejoin()
		}
	}
	go n.run()
	return n, nil
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

// Stop shuts the node down and closes its data directory.
func (n *Node) Stop() {
	select {
	case <-n.stop:
	default:
		close(n.stop)
	}
	<-n.done
	n.ln.Close()
	n.transport.Close()
	n.wal.close()
	n.store.Close()
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

func (n *Node) run() {
	defer close(n.done)
	defer n.uncork() // the answers failWaiters gave
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	ticks := 0
	for {
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
		case f := <-n.fetched:
			n.installSnapshot(f)
		case p := <-n.rejoinProbed:
			n.onRejoinProbe(p)
		case err := <-n.wal.errc:
			n.failed = err
			n.log.Error().Err(err).Msg("cannot persist: the node stops rather than acknowledge what it could not make durable")
			n.failWaiters(wire.ErrUnavailable, "node failed: "+err.Error())
			return
		case now := <-ticker.C:
			n.r.Tick()
			n.ticks.tick(now)
			n.proposeClock(now)
			n.rejoinFiller()
			if ticks++; ticks%10 == 0 {
				n.expireWaiters(now)
				n.sampleMetrics()
			}
		}
		n.drain()
		if err := n.processReady(); err != nil {
			n.failed = err
			n.log.Error().Err(err).Msg("cannot persist: the node stops rather than acknowledge what it could not make durable")
			n.failWaiters(wire.ErrUnavailable, "node failed: "+err.Error())
			return
		}
		n.noticeLeaderChange()
		n.pushStreams()
		n.maybeSnapshot()
		n.checkRejoin()
		n.uncork()
	}
}

// step hands a peer's message to the replica; a MsgSnapshot is the node's
// business (the snapshot moves outside the protocol core).
func (n *Node) step(m paxos.Message) {
	if m.Type == paxos.MsgSnapshot {
		n.onSnapshotOffer(m)
		return
	}
	n.r.Step(m)
}

// proposeClock advances the replicated cluster clock while this node leads
// and something depends on it (see leaderClock).
func (n *Node) proposeClock(now time.Time) {
	needed := n.sm.SessionCount() > 0 || n.sm.LockCount() > 0
	if needed && uint64(n.sm.Applied()) < uint64(n.r.Status().Commit) {
		return // not caught up: the applied clock may be behind
	}
	if t, ok := n.clock.next(now.Sub(n.started), n.sm.Clock(), needed); ok {
		// Only this leader's measurement justifies the time: if it is
		// deposed first, the command is dropped, not forwarded.
		_ = n.r.ProposeOwn(EncodeCommand(&Command{Op: OpClock, Now: t}))
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

// processReady hands the replica's writes to the WAL writer, sends the
// messages that promise nothing at once (holding Promise and Accepted until
// the writes before them are durable; see walWriter), and applies what was
// decided — a chosen value is a fact, whether or not this node has synced
// it yet. Messages to this node go straight back into the replica.
func (n *Node) processReady() error {
	for {
		rd := n.r.Ready()
		if rd.IsEmpty() {
			return nil
		}
		if !rd.Persist.IsEmpty() {
			n.submitted++
			select {
			case n.wal.jobs <- walJob{seq: n.submitted, p: rd.Persist}:
			case err := <-n.wal.errc:
				return err
			}
			if rd.Persist.Commit != 0 {
				n.jobCommits = append(n.jobCommits, jobCommit{n.submitted, rd.Persist.Commit})
			}
		}
		var self []paxos.Message
		for _, m := range rd.Messages {
			switch {
			case n.rejoin.active && mutedWhileRejoining(m):
				// Not a vote until caught up (rejoin.go).
			case m.To == n.cfg.ID:
				self = append(self, m)
			default:
				n.transport.Send(m)
			}
		}
		for _, m := range rd.AfterPersist {
			switch {
			case n.rejoin.active && mutedWhileRejoining(m):
			case n.durable < n.submitted:
				n.held = append(n.held, heldMessage{seq: n.submitted, m: m})
			case m.To == n.cfg.ID:
				self = append(self, m)
			default:
				n.transport.Send(m)
			}
		}
		for _, m := range self {
			n.r.Step(m)
		}
		n.apply(rd.Decided)
	}
}

// release sends (or steps) the held messages whose writes are now durable,
// and lets the replica drop from memory what is durable, applied, and old.
func (n *Node) release(seq uint64) {
	if seq > n.durable {
		n.durable = seq
	}
	n.snapshotDurable(n.durable)
	i := 0
	var durableCommit paxos.Slot
	for ; i < len(n.jobCommits) && n.jobCommits[i].seq <= n.durable; i++ {
		durableCommit = n.jobCommits[i].commit
	}
	if i > 0 {
		n.jobCommits = append(n.jobCommits[:0], n.jobCommits[i:]...)
		if durableCommit > logRetainSlots {
			n.r.Compact(durableCommit - logRetainSlots)
		}
	}
	i = 0
	for ; i < len(n.held) && n.held[i].seq <= n.durable; i++ {
		if m := n.held[i].m; m.To == n.cfg.ID {
			n.r.Step(m)
		} else {
			n.transport.Send(m)
		}
	}
	n.held = append(n.held[:0], n.held[i:]...)
}

// apply runs chosen commands through the state machine and answers the
// clients waiting for them.
func (n *Node) apply(decided []paxos.Entry) {
	for _, e := range decided {
		n.m.slotsApplied.Inc()
		n.m.batchCmds.Observe(float64(len(e.Value.Cmds)))
		n.m.cmdsApplied.Add(float64(len(e.Value.Cmds)))
		if e.Value.Kind != paxos.ValueBatch {
			n.sm.ApplyValue(e.Slot, e.Value) // a no-op still advances Applied
			continue
		}
		for _, raw := range e.Value.Cmds {
			cmd, err := DecodeCommand(raw)
			if err != nil {
				n.sm.Apply(e.Slot, raw) // rejected the same way on every replica
				continue
			}
			res := n.sm.ApplyCommand(e.Slot, &cmd)
			n.answer(callKey{cmd.ClientID, cmd.Seq}, cmd.Op, res)
			// Blocking requests granted by this command (a release handing
			// a lock to the next waiter, an expiry, a resignation).
			for _, a := range n.sm.TakeAnswers() {
				n.answer(callKey{a.ClientID, a.Seq}, 0, a.Result)
			}
		}
	}
}

// noticeLeaderChange logs leadership changes and re-proposes every waiting
// command when a new leader appears: a command forwarded to a leader that
// died is lost, and re-proposing at once (deduplicated by client id and
// sequence) answers the client as soon as the new leader commits instead of
// after its timeout.
func (n *Node) noticeLeaderChange() {
	st := n.r.Status()
	if st.Leader == n.lastLeader && st.Role == n.lastRole {
		return
	}
	n.leading.Store(st.Role == proposer.Leader)
	n.led.Store(st.Leader != 0)
	if st.Leader != n.lastLeader && st.Leader != 0 {
		n.m.leaderChanges.Inc()
	}
	if st.Role == proposer.Leader {
		n.m.isLeader.Set(1)
	} else {
		n.m.isLeader.Set(0)
	}
	if st.Role == proposer.Leader && n.lastRole != proposer.Leader {
		n.m.elections.Inc()
		n.clock.start(time.Since(n.started), n.sm.Clock())
	} else if st.Role != proposer.Leader {
		n.clock.active = false
	}
	if st.Role == proposer.Leader && n.lastRole != proposer.Leader {
		n.log.Info().Str("ballot", st.Ballot.String()).Uint64("commit", uint64(st.Commit)).Msg("became leader")
	} else if st.Leader != n.lastLeader && st.Leader != 0 {
		n.log.Info().Uint32("leader", uint32(st.Leader)).Str("ballot", st.Ballot.String()).Msg("following leader")
	}
	n.lastLeader, n.lastRole = st.Leader, st.Role
	if st.Leader == 0 {
		return
	}
	keys := make([]callKey, 0, len(n.waiters))
	for k := range n.waiters {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].less(keys[j]) })
	for _, k := range keys {
		if c := n.waiters[k][0]; !c.queued {
			_ = n.r.Propose(c.cmd)
		}
	}
	if err := n.processReady(); err != nil {
		n.failed = err
	}
}
