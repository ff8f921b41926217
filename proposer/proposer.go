package proposer

import (
	"sort"

	"github.com/paxosd/paxosd/paxos"
)

// Role is what a proposer is doing.
type Role uint8

const (
	Follower Role = iota
	PreCandidate
	Candidate
	Leader
)

func (r Role) String() string {
	return [...]string{"follower", "precandidate", "candidate", "leader"}[r]
}

// Proposer is one node's proposer. Not safe for concurrent use.
type Proposer struct {
	cfg  paxos.Config
	id   paxos.NodeID
	view View

	role    Role
	ballot  paxos.Ballot // ours, while Candidate or Leader
	maxSeen paxos.Ballot // the highest ballot observed anywhere
	leader  paxos.NodeID // the leader we follow (or ourselves); 0 if unknown

	ticks           int64
	electionElapsed int
	// sinceLeader counts ticks since this node last heard from a leader
	// (or started). Unlike electionElapsed it is not reset when this node
	// campaigns, so two followers that time out at once still grant each
	// other's PreVotes; it is what the leader's lease relies on.
	sinceLeader      int
	electionTimeout  int // randomized in [ElectionTicks, 2*ElectionTicks)
	heartbeatElapsed int

	// Leader liveness (check-quorum) and progress checks.
	active map[paxos.NodeID]bool
	// Laggards (laggards.go): heardAt and votedAt are the ticks at which
	// each node last answered this leader and voted for its slots, votedTo
	// the highest slot it voted for; laggardMarks where each laggard stood
	// when last judged, keptIn those whose catch-up lost the race.
	heardAt, votedAt map[paxos.NodeID]int64
	votedTo          map[paxos.NodeID]paxos.Slot
	laggardMarks     map[paxos.NodeID]laggardMark
	keptIn           map[paxos.NodeID]bool
	// followerCommit is each follower's last reported watermark;
	// handoverAfter, for a leader the configuration in force no longer
	// counts as a voter, the watermark a voter must have reached to take
	// over (it then knows it votes).
	followerCommit map[paxos.NodeID]paxos.Slot
	handoverAfter  paxos.Slot
	commitAtCheck  paxos.Slot
	stalledChecks  int

	// Leader lease: heartbeat rounds and which quorum acknowledged them.
	// leaseTick is the tick at which the newest round a quorum acknowledged
	// was sent; no other node can have been elected before that tick plus
	// ElectionTicks (see LeaseTick).
	hbRound     uint64
	hbRoundTick map[uint64]int64
	hbAcks      map[uint64]map[paxos.NodeID]bool
	leaseTick   int64
	// leaseVersion is the configuration whose quorum acknowledged the
	// round at leaseTick: a lease counts only in that configuration (a
	// new one makes the leader earn it again from the new voters).
	leaseVersion uint64
	// readyFrom: the leader serves lease reads once its watermark reaches
	// it, i.e. once every slot it recovered in Phase 1 is chosen again.
	readyFrom paxos.Slot

	// PreVote and Phase 1. votes are the acceptors whose Promise of
	// ballot is all in, reporting from promisedFrom (the slot their
	// Prepare named: p.from for the campaign's, the first slot of a new
	// configuration for those a leader asks later, askCoverage). They
	// live as long as the leadership: Phase 1 is per configuration.
	prevoteBallot paxos.Ballot
	// preVoteRounds counts the PreVote rounds started (startPreVote): the
	// probe ballot stays the same from one to the next while nothing
	// higher is seen.
	preVoteRounds uint64
	votes         map[paxos.NodeID]bool
	promisedFrom  map[paxos.NodeID]paxos.Slot
	rejects       map[paxos.NodeID]bool
	from          paxos.Slot
	// pageFrom is, per acceptor whose Promise comes in pages, the slot
	// its next page must start at; prepareTick when Prepares last went
	// out (they are sent again to whoever has not answered in full), and
	// askedFrom the slot a leader last asked coverage for.
	pageFrom    map[paxos.NodeID]paxos.Slot
	prepareTick int64
	askedFrom   paxos.Slot
	// recovered is the highest-ballot report per slot not yet proposed
	// again, chosenSeen those reported at or below the sender's watermark
	// (chosen), maxReported the highest slot reported: a leader proposes
	// every slot up to it again (recovery) before anything new.
	recovered   map[paxos.Slot]paxos.Entry
	chosenSeen  map[paxos.Slot]paxos.Entry
	maxReported paxos.Slot

	// Phase 2.
	nextSlot      paxos.Slot
	inflight      map[paxos.Slot]proposal
	inflightLow   paxos.Slot // no inflight slot is below it
	inflightBytes int        // Σ WireBytes of the values in flight
	// pending are client commands waiting for a slot (as Leader) or to be
	// forwarded (as Follower, once a leader is known). One queue for both,
	// so a command survives any change of role.
	pending      [][]byte
	pendingBytes int
	// own are commands only this node's leadership justifies (the
	// cluster clock): proposed ahead of pending while it leads, dropped,
	// never forwarded, when it stops.
	own [][]byte
	// config is a membership change waiting for a slot of its own
	// (ProposeConfig); padTo the last slot before the newest change
	// proposed takes effect: an idle leader fills the slots up to it with
	// no-ops, so that the change takes effect without waiting for
	// traffic.
	config *paxos.Value
	padTo  paxos.Slot

	// leaderBallot is the ballot of the leader this node last heard from
	// (its own while it leads): the leadership its lease pledge is owed
	// to. transfer is the ballot of the leader that handed leadership to
	// this node (transfer.go), carried by this campaign's Prepares.
	leaderBallot paxos.Ballot
	transfer     paxos.Ballot
}

type proposal struct {
	value paxos.Value
	tick  int64 // when last sent
}

// retransmitTicks is how long a slot waits before its Accept is sent again
// to the acceptors that have not voted for it.
func (p *Proposer) retransmitTicks() int64 {
	return int64(max(p.cfg.HeartbeatTicks, p.cfg.ElectionTicks/3))
}

// New returns a follower of the fixed configuration cfg describes. cfg
// must have passed Validate.
func New(cfg paxos.Config) *Proposer {
	return NewWithView(cfg, staticView{cfg.InitialConfigs().Current})
}

// NewWithView returns a follower whose membership and knowledge of chosen
// slots come from view (its replica).
func NewWithView(cfg paxos.Config, view View) *Proposer {
	p := &Proposer{
		cfg:       cfg,
		id:        cfg.ID,
		view:      view,
		inflight:  map[paxos.Slot]proposal{},
		leaseTick: -1,
	}
	p.resetElectionTimeout()
	return p
}

// Role returns the current role.
func (p *Proposer) Role() Role { return p.role }

// Ballot returns the ballot this node leads (or campaigns) with, or the
// highest seen as a follower.
func (p *Proposer) Ballot() paxos.Ballot {
	if p.role == Leader || p.role == Candidate {
		return p.ballot
	}
	return p.maxSeen
}

// Leader returns the node believed to lead, 0 if none.
func (p *Proposer) Leader() paxos.NodeID { return p.leader }

// NextSlot returns the next slot a leader will assign.
func (p *Proposer) NextSlot() paxos.Slot { return p.nextSlot }

// InFlight returns the number of proposed, not yet chosen slots.
func (p *Proposer) InFlight() int { return len(p.inflight) }

// Pending returns the number of commands waiting for a slot.
func (p *Proposer) Pending() int { return len(p.pending) + len(p.own) }

// HasWork reports whether Flush may have something to send: commands
// queued, or (leading) a change, recovered slots or no-ops to propose.
func (p *Proposer) HasWork() bool {
	if p.Pending() > 0 {
		return true
	}
	return p.role == Leader && (p.config != nil || p.nextSlot <= p.maxReported || p.nextSlot <= p.padTo)
}

// InflightBytes returns the bytes proposed and not yet chosen.
func (p *Proposer) InflightBytes() int { return p.inflightBytes }

// QueuedBytes returns the bytes of the commands waiting for a slot (or to
// be forwarded) and of the values in flight: the work this node has taken
// on and not yet seen chosen.
func (p *Proposer) QueuedBytes() int { return p.pendingBytes + p.inflightBytes }

// addInflight records that value is in flight at slot.
func (p *Proposer) addInflight(slot paxos.Slot, value paxos.Value) {
	p.inflight[slot] = proposal{value: value, tick: p.ticks}
	p.inflightBytes += value.WireBytes()
}

func (p *Proposer) resetElectionTimeout() {
	p.electionTimeout = p.cfg.ElectionTicks + p.cfg.Rand.Intn(p.cfg.ElectionTicks)
}

// Observe notes a ballot seen in any message.
func (p *Proposer) Observe(b paxos.Ballot) { p.maxSeen = paxos.MaxBallot(p.maxSeen, b) }

// MarkActive notes that from answered the leader in this check period.
func (p *Proposer) MarkActive(from paxos.NodeID) {
	if p.role == Leader && p.active != nil {
		p.active[from] = true
		p.heardAt[from] = p.ticks
	}
}

// Ticks returns the number of Tick calls so far.
func (p *Proposer) Ticks() int64 { return p.ticks }

// LeaseTick returns the tick at which this leader sent the newest
// heartbeat a quorum acknowledged, or -1 if none (or not leader). Each of
// those followers heard from this leader at that tick or later, and grants
// no PreVote until ElectionTicks of its own ticks later — and ticks never
// run faster than real time — so no other leader can exist before
// LeaseTick+ElectionTicks ticks' worth of real time has passed.
func (p *Proposer) LeaseTick() int64 {
	if p.role != Leader || p.leaseVersion != p.view.Current().Version {
		return -1
	}
	return p.leaseTick
}

// ReadyFrom returns the watermark this leader must reach before it may
// answer reads from its own state: the highest slot it recovered in
// Phase 1 (slots a previous leader may have had chosen and acknowledged).
// With a new configuration it is not enough (ReadReady).
func (p *Proposer) ReadyFrom() paxos.Slot { return p.readyFrom }

// ReadReady reports whether this leader's applied state, once it reaches
// commit, holds every write any leader acknowledged: its watermark covers
// every slot recovered, and its Phase 1 covers the slot after the
// watermark, so that if that slot's configuration is one it came to
// while leading, that configuration's voters have reported what earlier
// leaders had chosen under it.
func (p *Proposer) ReadReady(commit paxos.Slot) bool {
	return p.role == Leader && commit >= p.readyFrom && p.covered(commit+1)
}

// OnHeartbeatAck counts from's acknowledgement of heartbeat round.
func (p *Proposer) OnHeartbeatAck(from paxos.NodeID, round uint64) {
	p.MarkActive(from)
	acks, ok := p.hbAcks[round]
	if p.role != Leader || !ok {
		return
	}
	acks[from] = true
	current := p.view.Current()
	if current.IsQuorum(func(id paxos.NodeID) bool { return id == p.id || acks[id] }) {
		if p.leaseVersion != current.Version {
			p.leaseTick, p.leaseVersion = -1, current.Version
		}
		if t := p.hbRoundTick[round]; t > p.leaseTick {
			p.leaseTick = t
		}
		for r := range p.hbAcks {
			if r <= round {
				delete(p.hbAcks, r)
				delete(p.hbRoundTick, r)
			}
		}
	}
}

// Propose queues cmd: a leader (or a node campaigning to be one) proposes
// it at the next Flush, a follower forwards it to the leader. A follower
// that knows no leader returns paxos.ErrNoLeader; a full queue (by count or
// by bytes) paxos.ErrBusy.
func (p *Proposer) Propose(cmd []byte) error {
	if p.role == Follower && p.leader == 0 {
		return paxos.ErrNoLeader
	}
	if len(p.pending) >= p.cfg.PendingMax || (len(p.pending) > 0 && p.pendingBytes+len(cmd) > p.cfg.PendingBytesMax) {
		return paxos.ErrBusy
	}
	p.pending = append(p.pending, cmd)
	p.pendingBytes += len(cmd)
	return nil
}

// ProposeOwn queues cmd only while this node leads, ahead of the client
// commands; it is dropped (never forwarded) if the node stops leading
// before cmd gets a slot. It is for commands that only this leader's own
// view justifies, such as the cluster clock it measured: a deposed
// leader's clock must not reach the next leader. It returns
// paxos.ErrNoLeader when the node does not lead.
func (p *Proposer) ProposeOwn(cmd []byte) error {
	if p.role != Leader {
		return paxos.ErrNoLeader
	}
	if len(p.own) >= p.cfg.PendingMax {
		return paxos.ErrBusy
	}
	p.own = append(p.own, cmd)
	return nil
}

// InLease reports whether this node must refuse to help another proposer
// take over: it leads, or it heard from a leader within an election
// timeout (counted from its own start too). Both PreVotes and Prepares
// are refused meanwhile — the lease a leader reads under rests on it.
func (p *Proposer) InLease() bool {
	return p.role == Leader || p.sinceLeader < p.cfg.ElectionTicks
}

// stepDown makes the node a follower after seeing ballot b.
func (p *Proposer) stepDown(b paxos.Ballot) {
	p.Observe(b)
	if p.leader == p.id {
		p.leader = 0
	}
	p.role = Follower
	p.votes, p.rejects, p.recovered, p.chosenSeen, p.active, p.pageFrom = nil, nil, nil, nil, nil, nil
	p.promisedFrom = nil
	p.hbAcks, p.hbRoundTick, p.leaseTick = nil, nil, -1
	p.inflight, p.inflightBytes = map[paxos.Slot]proposal{}, 0
	p.own, p.config, p.padTo = nil, nil, 0
	p.transfer = paxos.Ballot{}
	p.electionElapsed = 0
	p.resetElectionTimeout()
	// Queued commands stay queued: they go to whichever leader comes next.
	// Slots already in flight are not re-queued: they may yet be chosen,
	// and the clients waiting for them retry (deduplicated) if not.
}

// Abdicate makes a leader or candidate a follower without a new ballot
// (the replica installs a snapshot and must recover afresh).
func (p *Proposer) Abdicate() {
	if p.role != Follower {
		p.stepDown(p.ballot)
	}
}

// OnLeaderContact is called for a Heartbeat, Accept or Decide from the
// leader of ballot b, once the acceptor found b at least its promise.
func (p *Proposer) OnLeaderContact(b paxos.Ballot) {
	p.Observe(b)
	if b.Node == p.id {
		return
	}
	if (p.role == Leader || p.role == Candidate) && p.ballot.Less(b) {
		p.stepDown(b)
	}
	if p.role == PreCandidate {
		p.role = Follower
	}
	if p.role == Follower {
		p.leader = b.Node
		p.leaderBallot = b
		p.electionElapsed = 0
		p.sinceLeader = 0
	}
}

// OnPromisedOther is called when this node's acceptor promised b to another
// proposer.
func (p *Proposer) OnPromisedOther(b paxos.Ballot) {
	p.Observe(b)
	if (p.role == Leader || p.role == Candidate) && p.ballot.Less(b) {
		p.stepDown(b)
	}
	if p.role == Follower {
		// Someone is taking over; give it an election timeout to do so.
		p.leader = 0
		p.electionElapsed = 0
	}
}

// OnNack handles a refusal: a higher ballot makes a leader or candidate
// step down.
func (p *Proposer) OnNack(m paxos.Message) {
	p.Observe(m.Ballot)
	if (p.role == Leader || p.role == Candidate) && p.ballot.Less(m.Ballot) {
		p.stepDown(m.Ballot)
	}
}

// OnCommit drops in-flight bookkeeping for slots at or below commit.
func (p *Proposer) OnCommit(commit paxos.Slot) {
	for ; p.inflightLow <= commit && len(p.inflight) > 0; p.inflightLow++ {
		if pr, ok := p.inflight[p.inflightLow]; ok {
			p.inflightBytes -= pr.value.WireBytes()
			delete(p.inflight, p.inflightLow)
		}
	}
	if p.inflightLow <= commit {
		p.inflightLow = commit + 1
	}
}

// sortedInflight returns the in-flight slots in order.
func (p *Proposer) sortedInflight() []paxos.Slot {
	out := make([]paxos.Slot, 0, len(p.inflight))
	for s := range p.inflight {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// broadcast addresses m to every member of the current and the next
// configuration, learners included (self too if asked).
func (p *Proposer) broadcast(m paxos.Message, self bool) []paxos.Message {
	return p.sendTo(p.view.Nodes(), m, self)
}

func (p *Proposer) sendTo(ids []paxos.NodeID, m paxos.Message, self bool) []paxos.Message {
	out := make([]paxos.Message, 0, len(ids))
	for _, id := range ids {
		if id == p.id && !self {
			continue
		}
		mm := m
		mm.From, mm.To = p.id, id
		out = append(out, mm)
	}
	return out
}
