package replica

import (
	"fmt"

	"github.com/paxosd/paxosd/acceptor"
	"github.com/paxosd/paxosd/learner"
	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/proposer"
)

// followerScanMax bounds how far past its watermark a follower looks for
// entries a leader's watermark covers, per message.
const followerScanMax = 4096

// Replica is one server's Paxos roles. Not safe for concurrent use.
type Replica struct {
	cfg paxos.Config
	// configs is the membership as of the learner's watermark (every
	// configuration value chosen up to it folded in): exact for every
	// slot up to the watermark plus paxos.ActivationSlots.
	configs paxos.Configs
	// nodes caches configs.Nodes() for the versions in nodesKey (view.go).
	nodes    []paxos.NodeID
	nodesKey [2]uint64
	acc      *acceptor.Acceptor
	prop     *proposer.Proposer
	learn    *learner.Learner

	msgs          []paxos.Message
	decided       []paxos.Entry
	persistCommit paxos.Slot // the watermark last handed out in Persist
	// commitAnnounced is the watermark last sent to followers (leader).
	commitAnnounced paxos.Slot
	// settledCommit is the watermark as it was one to two heartbeat
	// intervals ago (recentCommit the sample before it is promoted): a
	// follower behind it has missed something and needs catch-up.
	settledCommit, recentCommit paxos.Slot
	// catchups tracks the catch-up batches in flight to each follower.
	catchups map[paxos.NodeID]catchup
	// preVoteCaughtUp is, per voter, the PreVote round whose answer from
	// behind was last answered with catch-up, or last seen moving (step.go).
	preVoteCaughtUp map[paxos.NodeID]preVoteCatchUp
}

// preVoteCatchUp is a catch-up sent to a voter that answered a PreVote
// from behind: the round (its ballot, and its number: the ballot repeats
// from round to round while nothing higher is seen) and the watermark the
// voter reported.
type preVoteCatchUp struct {
	ballot paxos.Ballot
	round  uint64
	commit paxos.Slot
}

// catchup is the stream of chosen entries sent to a lagging follower:
// the batches on their way (the last slot of each), the last slot sent,
// the highest watermark the follower acknowledged in it, when the stream
// last sent a batch or saw progress (tick) and last saw progress, and how
// many times it resent a batch the follower seemed to wait for; or, with
// snapshot set, the offer of the snapshot at sentTo. gapResent is one
// past the watermark at which the leader last sent again the batches a
// follower's ack showed lost (resendGap; 0: none).
type catchup struct {
	ends             []paxos.Slot
	sentTo, acked    paxos.Slot
	gapResent        paxos.Slot
	tick, progressed int64
	restarts         int
	snapshot         bool
}

// catchUpInFlight bounds the catch-up batches (each up to BatchBytesMax)
// on their way to one follower. One per round trip left the leader idle
// while the follower applied each batch, and the follower's catch-up slower
// than the leader's writes at a few thousand slots a second (the
// follower's apply is the real bound; the others overlap it).
const catchUpInFlight = 4

// New returns a replica resuming from st (what Persist wrote so far). The
// first Ready delivers the chosen slots after applied, so a state machine
// rebuilt from scratch (applied = 0) is replayed from the log.
func New(cfg paxos.Config, st paxos.State, applied paxos.Slot) (*Replica, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if st.Compacted > st.Commit {
		return nil, fmt.Errorf("replica: compacted slot %d is past the stored watermark %d", st.Compacted, st.Commit)
	}
	if applied > st.Commit {
		return nil, fmt.Errorf("replica: applied slot %d is past the stored watermark %d", applied, st.Commit)
	}
	if st.Truncated > st.Commit {
		return nil, fmt.Errorf("replica: truncated slot %d is past the stored watermark %d", st.Truncated, st.Commit)
	}
	if applied < st.Truncated {
		return nil, fmt.Errorf("replica: applied slot %d is below the truncated log (%d): restore the snapshot first", applied, st.Truncated)
	}
	acc := acceptor.New(cfg.ID, st, cfg.Log)
	acc.SetPageBytes(cfg.PageBytes())
	r := &Replica{
		cfg:             cfg,
		configs:         cfg.InitialConfigs(),
		acc:             acc,
		persistCommit:   st.Commit,
		catchups:        map[paxos.NodeID]catchup{},
		preVoteCaughtUp: map[paxos.NodeID]preVoteCatchUp{},
	}
	r.prop = proposer.NewWithView(cfg, view{r})
	r.learn = learner.New(func(s paxos.Slot) paxos.Membership { return r.configs.At(s) }, st.Commit)
	for s := applied + 1; s <= st.Commit; s++ {
		e, ok := r.acc.Entry(s)
		if !ok {
			return nil, fmt.Errorf("replica: stored state lacks chosen slot %d (watermark %d)", s, st.Commit)
		}
		r.decided = append(r.decided, e)
		r.configs.Apply(e.Slot, e.Value)
	}
	r.configs.Settle(st.Commit)
	return r, nil
}

// Compact lets the replica drop the entries at or below upTo from memory.
// The caller promises they are durable (their Persist has been synced) and
// applied; later reads of them go through Config.Log. Without a Config.Log
// it does nothing.
func (r *Replica) Compact(upTo paxos.Slot) {
	r.acc.Compact(min(upTo, r.learn.Commit(), r.persistCommit))
}

// Truncate records that the entries at or below upTo are gone from the
// log (Config.Log no longer returns them). The caller promises that a
// durable snapshot covers them. A follower behind upTo is then sent a
// MsgSnapshot instead of entries, and a candidate behind it gets no
// Promise from this node.
func (r *Replica) Truncate(upTo paxos.Slot) {
	r.acc.Truncate(min(upTo, r.learn.Commit(), r.persistCommit))
}

// Restore installs a snapshot that covers every slot up to slot: the caller
// has replaced its state machine with the snapshot's and durably replaced
// its log at or below slot with it (watermark slot); configs is the
// membership the snapshot records as of slot. It reports false, and
// changes nothing, if slot is not above the watermark (the snapshot is no
// news). A leader or candidate steps down first: its view of the slots it
// is recovering or proposing is stale.
func (r *Replica) Restore(slot paxos.Slot, configs paxos.Configs) bool {
	if slot <= r.learn.Commit() {
		return false
	}
	r.observeRole(func() { r.prop.Abdicate() })
	r.configs = configs.Clone()
	r.configs.Settle(slot)
	r.learn.Restore(slot)
	r.acc.Restore(slot)
	if r.persistCommit < slot {
		r.persistCommit = slot
	}
	kept := r.decided[:0]
	for _, e := range r.decided {
		if e.Slot > slot {
			kept = append(kept, e)
		}
	}
	r.decided = kept
	r.prop.OnCommit(slot)
	return true
}

// StepDown makes a leader or candidate a follower. The node layer calls
// it for a node that must not lead (its state diverged from the cluster's);
// it also stops sending the messages that would make it campaign.
func (r *Replica) StepDown() { r.observeRole(func() { r.prop.Abdicate() }) }

// TransferLeadership hands this leader's leadership to member to
// (proposer/transfer.go): the node steps down at once, giving up its lease,
// and asks to to campaign without waiting. It fails unless this node leads.
func (r *Replica) TransferLeadership(to paxos.NodeID) error {
	var m paxos.Message
	var err error
	r.observeRole(func() { m, err = r.prop.TransferTo(to) })
	if err == nil {
		r.send(m)
	}
	return err
}

// RaisePromise makes the acceptor promise at least b (persisted by the next
// Ready). A node rebuilt after losing its data raises its promise to the
// highest ballot the others know, so it never accepts under a ballot it may
// have promised away before.
func (r *Replica) RaisePromise(b paxos.Ballot) {
	r.acc.Raise(b)
	r.prop.Observe(b)
}

// Propose queues a client command. It fails with paxos.ErrNoLeader when no
// leader is known and paxos.ErrBusy when the queue is full; otherwise the
// command is proposed (or forwarded) at the next Ready. A proposal may still
// be lost (a leader change, a dropped message): the caller learns the
// outcome only by seeing the command in Ready.Decided, and retries
// otherwise.
func (r *Replica) Propose(cmd []byte) error { return r.prop.Propose(cmd) }

// QueuedBytes returns the bytes of the commands queued for a slot (or to be
// forwarded) and of the values in flight (see proposer.QueuedBytes): what
// an overloaded leader's backlog is made of.
func (r *Replica) QueuedBytes() int { return r.prop.QueuedBytes() }

// ProposeOwn queues a command that only this node's leadership justifies
// (see proposer.ProposeOwn): it is dropped, never forwarded, if the node
// stops leading first. It fails with paxos.ErrNoLeader unless this node
// leads.
func (r *Replica) ProposeOwn(cmd []byte) error { return r.prop.ProposeOwn(cmd) }

// Configs returns the membership as of this node's chosen watermark.
func (r *Replica) Configs() paxos.Configs { return r.configs.Clone() }

// ProposeConfig proposes m as the next configuration. Only the leader
// takes one (paxos.ErrNoLeader otherwise), and one at a time: it fails
// with paxos.ErrConfigInFlight while an earlier change waits to take
// effect, paxos.ErrConfigStale unless m.Version follows the latest
// configuration's, and paxos.ErrInvalidMembership for a configuration
// without a voter. Like any proposal it may still be lost; and it takes
// effect only if, when chosen, it still follows the latest configuration
// (paxos.Configs.Admits): the caller watches Configs to learn which.
func (r *Replica) ProposeConfig(m paxos.Membership) error {
	if r.prop.Role() != proposer.Leader {
		return paxos.ErrNoLeader
	}
	if err := r.configs.Admits(r.learn.Commit()+1, m); err != nil {
		return err
	}
	return r.prop.ProposeConfig(paxos.ConfigValue(m.Clone()))
}

// Tick advances the replica's clock by one tick.
func (r *Replica) Tick() {
	r.observeRole(func() {
		r.msgs = append(r.msgs, r.prop.Tick(r.acc.Promised(), r.learn.Commit(), r.voteSettled)...)
	})
	if r.prop.Ticks()%int64(r.cfg.HeartbeatTicks) == 0 {
		r.settledCommit, r.recentCommit = r.recentCommit, r.learn.Commit()
	}
}

// Ready returns the work accumulated since the last call; see paxos.Ready
// for the caller's obligations.
func (r *Replica) Ready() paxos.Ready {
	r.advance()
	msgs, proposed := r.prop.Flush(r.learn.Commit())
	r.expect(proposed)
	r.msgs = append(r.msgs, msgs...)
	r.announceCommit()

	var rd paxos.Ready
	rd.Persist.Promised, rd.Persist.Entries = r.acc.TakePersist()
	if c := r.learn.Commit(); c > r.persistCommit {
		rd.Persist.Commit = c
		r.persistCommit = c
	}
	for _, m := range r.msgs {
		if paxos.NeedsPersist(m.Type) {
			rd.AfterPersist = append(rd.AfterPersist, m)
		} else {
			rd.Messages = append(rd.Messages, m)
		}
	}
	r.msgs = nil
	rd.Decided, r.decided = r.decided, nil
	return rd
}

// announceCommit tells the followers the leader's watermark as soon as it
// moves, unless this Ready already carries it to them on an Accept: a
// follower answers its clients only once it knows their commands are
// chosen, and waiting for the next heartbeat would add up to a heartbeat
// interval to every such answer.
func (r *Replica) announceCommit() {
	c := r.learn.Commit()
	if r.prop.Role() != proposer.Leader || c <= r.commitAnnounced {
		return
	}
	r.commitAnnounced = c
	// Nor a laggard (proposer.Laggards): catch-up tells it, and each
	// announcement would have it look for slots it does not hold.
	covered := r.prop.Laggards(c, c+1, c+1)
	if covered == nil {
		covered = map[paxos.NodeID]bool{}
	}
	for _, m := range r.msgs {
		if m.Type == paxos.MsgAccept && m.Commit == c {
			covered[m.To] = true
		}
	}
	for _, id := range (view{r}).Nodes() {
		if id != r.cfg.ID && !covered[id] {
			r.send(paxos.Message{Type: paxos.MsgHeartbeat, From: r.cfg.ID, To: id, Ballot: r.prop.Ballot(), Commit: c})
		}
	}
}

// voteSettled reports whether the leader no longer needs node's Accepted
// for slot: it has it, or the slot is chosen anyway.
func (r *Replica) voteSettled(slot paxos.Slot, node paxos.NodeID) bool {
	return r.learn.IsChosen(slot) || r.learn.Voted(slot, node)
}

// HasReady reports whether Ready may return work. It can report true when
// Ready then finds nothing (commands waiting for the window to open).
func (r *Replica) HasReady() bool {
	return len(r.msgs) > 0 || len(r.decided) > 0 || r.prop.HasWork() ||
		r.learn.Commit() > r.persistCommit || r.learn.IsChosen(r.learn.Commit()+1)
}

// advance delivers newly contiguous chosen slots. Each one's chosen value
// is written into the local log if it is not there already, in the same
// Persist as the watermark that covers it, so a restart finds every slot up
// to the watermark in the log.
func (r *Replica) advance() {
	done := r.learn.Advance()
	if len(done) == 0 {
		return
	}
	for _, e := range done {
		r.acc.Learn(e)
		r.configs.Apply(e.Slot, e.Value)
	}
	r.configs.Settle(r.learn.Commit())
	r.decided = append(r.decided, done...)
	r.prop.OnCommit(r.learn.Commit())
}

func (r *Replica) expect(proposed []paxos.Entry) {
	for _, e := range proposed {
		r.learn.Expect(e.Slot, e.Ballot, e.Value)
	}
}

// observeRole runs f and follows up on the role changes it made:
//
//   - a node that stops leading clears the learner's vote counts: they
//     belong to a ballot nobody proposes under anymore;
//   - a node that starts campaigning makes its own acceptor promise the
//     new ballot, in this Ready's Persist, before its Prepares (which wait
//     for it: paxos.NeedsPersist) leave. A node that crashed before that
//     promise was durable sent no Prepare under the ballot, and one that
//     restarts after finds it promised and campaigns higher: no ballot is
//     ever used by two incarnations, whose Accepts, Accepteds and acks
//     every rule trusting "one value per (slot, ballot)" would confuse.
func (r *Replica) observeRole(f func()) {
	wasLeader := r.prop.Role() == proposer.Leader
	before := r.prop.Ballot()
	f()
	if wasLeader && (r.prop.Role() != proposer.Leader || r.prop.Ballot() != before) {
		r.learn.ResetTallies()
		clear(r.catchups)
	}
	if r.prop.Role() == proposer.Candidate && r.prop.Ballot() != before {
		r.acc.Raise(r.prop.Ballot())
	}
}
