package paxostest

import (
	"fmt"
	"math/rand"
	"strings"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/paxos/replica"
	"github.com/paxosd/paxosd/proposer"
)

// Faults are the network and node failure rates of the safety phase, all
// drawn from the seed.
type Faults struct {
	DropRate      float64 // a delivered message is lost
	DupRate       float64 // a delivered message is delivered again later
	CrashRate     float64 // per step: a random node crashes
	RestartRate   float64 // per step: a crashed node restarts
	PartitionRate float64 // per step: the network splits or heals
}

// Options configure a simulation run.
type Options struct {
	Seed  int64
	Nodes int
	// Steps is the length of the safety phase.
	Steps int
	// LivenessRounds bounds the liveness phase.
	LivenessRounds int
	// Faults, when zero, are drawn from the seed.
	Faults Faults
	// Trace, when set, receives a line per step.
	Trace func(string)
	// Workload, when set, supplies the commands proposed and a checker per
	// replica incarnation for what it applies; by default commands are
	// opaque unique strings.
	Workload Workload
}

// Workload generates commands and checks what each replica applies.
type Workload interface {
	// NextCommand returns a command to propose at node; it must be unique
	// across the run (the liveness check tracks commands by their bytes).
	NextCommand(rng *rand.Rand, node paxos.NodeID) []byte
	// NewApplier returns a fresh state for a node (re)starting from
	// scratch: it is fed every chosen slot from slot 1 on.
	NewApplier(node paxos.NodeID) Applier
}

// Applier applies one replica's chosen slots and checks its invariants.
type Applier interface {
	// Apply applies e (slots arrive in order, from 1) and returns an
	// error if an invariant broke.
	Apply(e paxos.Entry) error
}

// SnapshotWorkload is a Workload whose appliers can be snapshotted. Without
// it (with a Workload that lacks it) the run never truncates its logs.
type SnapshotWorkload interface {
	Workload
	// Snapshot encodes a's state.
	Snapshot(a Applier) ([]byte, error)
	// Restore returns node's applier rebuilt from a snapshot's bytes.
	Restore(node paxos.NodeID, data []byte) (Applier, error)
}

type node struct {
	id      paxos.NodeID
	r       *replica.Replica // nil while crashed
	store   *memStore
	applied paxos.Slot
	// digest folds every applied value in, so a snapshot carries a
	// checkable summary of the state it stands for.
	digest  uint64
	rand    *rand.Rand
	applier Applier // nil without a Workload
	// configs is the membership as of applied (what the state machine
	// keeps and a snapshot carries).
	configs paxos.Configs
	// With an asynchronous disk (Env.asyncDisk), unsynced Persists wait
	// for a sync step, a crash loses them, and held AfterPersist messages
	// wait for them, as in the node.
	unsynced []paxos.Persist
	held     []paxos.Message
}

// Env is a simulated cluster.
type Env struct {
	opts   Options
	rng    *rand.Rand
	cfg    paxos.Config
	nodes  []*node
	net    []paxos.Message
	group  map[paxos.NodeID]int // partition: messages cross only within a group
	step   int
	faults Faults
	// asyncDisk: writes are synced by steps of their own (see node).
	asyncDisk bool

	// retain: how many durable slots below the watermark replicas keep in
	// memory (Compact drops the rest; reads go back to the store).
	retain paxos.Slot
	// snapEvery: a node snapshots every snapEvery applied slots (0: never)
	// and keeps snapKeep slots of log below the snapshot.
	snapEvery, snapKeep paxos.Slot

	// bootstrap is the cluster's first membership; maxNodes bounds the
	// ids membership changes may add (members.go).
	bootstrap paxos.Configs
	maxNodes  int

	chosen   map[paxos.Slot]paxos.Value
	proposed map[string]bool
	acked    map[string]bool // decided somewhere: a client would have its answer
	nextCmd  int

	Stats Stats
}

// Stats count what a run did.
type Stats struct {
	Delivered, Dropped, Duplicated, Crashes, Restarts, Partitions, Proposed, Decided int
	Snapshots, Installs                                                              int
	// ConfigsProposed counts membership changes a leader took,
	// ConfigsApplied those that took effect (seen by the node furthest
	// ahead at the end).
	ConfigsProposed, ConfigsApplied int
	MaxSlot                         paxos.Slot
}

// NewEnv builds a cluster of opts.Nodes replicas.
func NewEnv(opts Options) (*Env, error) {
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	e := &Env{
		opts:     opts,
		rng:      rand.New(rand.NewSource(opts.Seed)),
		group:    map[paxos.NodeID]int{},
		chosen:   map[paxos.Slot]paxos.Value{},
		proposed: map[string]bool{},
		acked:    map[string]bool{},
	}
	e.faults = opts.Faults
	if e.faults == (Faults{}) {
		e.faults = Faults{
			DropRate:      e.rng.Float64() * 0.3,
			DupRate:       e.rng.Float64() * 0.1,
			CrashRate:     e.rng.Float64() * 0.004,
			RestartRate:   0.01 + e.rng.Float64()*0.02,
			PartitionRate: e.rng.Float64() * 0.004,
		}
	}
	e.retain = paxos.Slot(e.rng.Intn(8))
	if _, ok := opts.Workload.(SnapshotWorkload); ok || opts.Workload == nil {
		if e.rng.Intn(4) != 0 {
			e.snapEvery = paxos.Slot(2 + e.rng.Intn(30))
			e.snapKeep = paxos.Slot(e.rng.Intn(6))
		}
	}
	var members []paxos.NodeID
	for i := 1; i <= opts.Nodes; i++ {
		members = append(members, paxos.NodeID(i))
	}
	e.cfg = paxos.Config{Members: members, HeartbeatTicks: 2, ElectionTicks: 10, WindowSlots: 8, BatchBytesMax: 64}
	// α is small here (8 to 40 slots, at least the window) so that
	// membership changes take effect within a run, with slots of the old
	// and new configurations in flight at once.
	e.bootstrap = e.cfg.InitialConfigs()
	e.bootstrap.Alpha = paxos.Slot(8 + e.rng.Intn(33))
	e.cfg.Configs = e.bootstrap
	e.maxNodes = opts.Nodes + 3
	// Half the seeds page Promises and Accepts (a frame of 256 bytes holds
	// a few entries); half sync their disks in steps of their own, after
	// the messages that need not wait have left.
	if e.rng.Intn(2) == 0 {
		e.cfg.MessageBytesMax = 256
	}
	e.asyncDisk = e.rng.Intn(2) == 0
	// Half the seeds leave a follower a few slots behind out of new
	// slots' Accepts (proposer.Laggards), so the rule and its way back
	// are reached often; the others run at the default (4096 slots),
	// which a run rarely reaches.
	if rand.New(rand.NewSource(opts.Seed^0x1a66)).Intn(2) == 0 {
		e.cfg.LaggardSlots = 2*e.cfg.WindowSlots + rand.New(rand.NewSource(opts.Seed^0x1a67)).Intn(16)
	}
	for _, id := range members {
		n := &node{id: id, store: newMemStore(), rand: rand.New(rand.NewSource(opts.Seed*31 + int64(id)))}
		e.nodes = append(e.nodes, n)
		if err := e.start(n); err != nil {
			return nil, err
		}
	}
	return e, nil
}

func (e *Env) start(n *node) error {
	cfg := e.cfg
	cfg.ID = n.id
	cfg.Rand = n.rand
	cfg.Log = n.store
	// Restart as the node does: from the snapshot and the tail, the chosen
	// slots after the snapshot read back from the store and replayed.
	snap := n.store.snap
	if snap.slot > 0 {
		cfg.Configs = snap.configs
	}
	r, err := replica.New(cfg, n.store.tail(), snap.slot)
	if err != nil {
		return err
	}
	n.r = r
	return e.restoreApplier(n, snap)
}

// restoreApplier sets n's applied state to snap's.
func (e *Env) restoreApplier(n *node, snap snapshot) error {
	n.applied, n.digest = snap.slot, snap.digest
	n.configs = e.bootstrap
	if snap.slot > 0 {
		n.configs = snap.configs.Clone()
	}
	w := e.opts.Workload
	if w == nil {
		return nil
	}
	if snap.slot == 0 {
		n.applier = w.NewApplier(n.id)
		return nil
	}
	a, err := w.(SnapshotWorkload).Restore(n.id, snap.data)
	if err != nil {
		return fmt.Errorf("node %d: restoring the snapshot at slot %d: %w", n.id, snap.slot, err)
	}
	n.applier = a
	return nil
}

// maybeSnapshot snapshots n's applied state every snapEvery slots and
// truncates its log below, as the node does.
func (e *Env) maybeSnapshot(n *node) error {
	if e.snapEvery == 0 || n.applied < n.store.snap.slot+e.snapEvery {
		return nil
	}
	snap := snapshot{slot: n.applied, digest: n.digest, configs: n.configs.Clone()}
	if w, ok := e.opts.Workload.(SnapshotWorkload); ok {
		data, err := w.Snapshot(n.applier)
		if err != nil {
			return fmt.Errorf("node %d: snapshot at slot %d: %w", n.id, n.applied, err)
		}
		snap.data = data
	}
	var upTo paxos.Slot
	if n.applied > e.snapKeep {
		upTo = n.applied - e.snapKeep
	}
	e.tracef("snapshot %d at slot %d, truncate to %d", n.id, n.applied, upTo)
	n.store.takeSnapshot(snap, upTo)
	n.r.Truncate(upTo)
	e.Stats.Snapshots++
	return nil
}

// installSnapshot gives n the snapshot of the node m came from, as the node
// layer does when a leader says n needs one.
func (e *Env) installSnapshot(n *node, m paxos.Message) error {
	snap := e.node(m.From).store.snap
	if snap.slot <= n.r.Status().Commit {
		return nil
	}
	if want := e.prefixDigest(snap.slot); want != snap.digest {
		return fmt.Errorf("node %d's snapshot at slot %d does not match the chosen values", m.From, snap.slot)
	}
	if err := e.syncDisk(n); err != nil { // the install queues behind every write
		return err
	}
	e.tracef("install %d's snapshot at slot %d on %d", m.From, snap.slot, n.id)
	n.store.install(snap)
	if !n.r.Restore(snap.slot, snap.configs) {
		return fmt.Errorf("node %d refused a snapshot at slot %d above its watermark", n.id, snap.slot)
	}
	e.Stats.Installs++
	return e.restoreApplier(n, snap)
}

// prefixDigest is the digest of the values chosen up to slot.
func (e *Env) prefixDigest(slot paxos.Slot) uint64 {
	var d uint64
	for s := paxos.Slot(1); s <= slot; s++ {
		d = fold(d, e.chosen[s])
	}
	return d
}

// fold adds v to digest d (FNV-1a over the value's kind and commands).
func fold(d uint64, v paxos.Value) uint64 {
	const prime = 1099511628211
	if d == 0 {
		d = 14695981039346656037
	}
	d = (d ^ uint64(v.Kind)) * prime
	for _, c := range v.Cmds {
		for _, b := range c {
			d = (d ^ uint64(b)) * prime
		}
		d = (d ^ 0xff) * prime
	}
	return d
}

func (e *Env) tracef(format string, args ...any) {
	if e.opts.Trace != nil {
		e.opts.Trace(fmt.Sprintf("%5d ", e.step) + fmt.Sprintf(format, args...))
	}
}

// node returns the node with id.
func (e *Env) node(id paxos.NodeID) *node { return e.nodes[id-1] }

// propose submits a fresh command at n and returns it, or "" if n did not
// take it.
func (e *Env) propose(n *node) string {
	var cmd []byte
	if w := e.opts.Workload; w != nil {
		cmd = w.NextCommand(e.rng, n.id)
	} else {
		cmd = []byte(fmt.Sprintf("c%d@%d", e.nextCmd, n.id))
	}
	if err := n.r.Propose(cmd); err != nil {
		return ""
	}
	e.nextCmd++
	e.proposed[string(cmd)] = true
	e.Stats.Proposed++
	e.tracef("propose %q at %d", cmd, n.id)
	return string(cmd)
}

// ready drives one Ready of n the way the node loop does: persist, then
// send (self-addressed messages are stepped at once), then apply.
func (e *Env) ready(n *node) error {
	rd := n.r.Ready()
	if !rd.Persist.IsEmpty() {
		n.unsynced = append(n.unsynced, rd.Persist)
	}
	if !e.asyncDisk {
		if err := e.syncDisk(n); err != nil {
			return err
		}
	}
	var self []paxos.Message
	for _, m := range rd.Messages {
		if m.To == n.id {
			self = append(self, m)
		} else {
			e.net = append(e.net, m)
		}
	}
	for _, m := range rd.AfterPersist {
		switch {
		case len(n.unsynced) > 0:
			n.held = append(n.held, m)
		case m.To == n.id:
			self = append(self, m)
		default:
			e.net = append(e.net, m)
		}
	}
	for _, m := range self {
		n.r.Step(m)
	}
	if err := e.apply(n, rd.Decided); err != nil {
		return err
	}
	if len(n.unsynced) > 0 {
		return nil // snapshots wait for the disk
	}
	return e.maybeSnapshot(n)
}

// syncDisk makes n's writes durable and releases what waited for them.
func (e *Env) syncDisk(n *node) error {
	for _, p := range n.unsynced {
		if err := n.store.save(p); err != nil {
			return fmt.Errorf("node %d: %w", n.id, err)
		}
	}
	n.unsynced = nil
	if c := n.store.commit; c > e.retain {
		n.r.Compact(c - e.retain)
	}
	held := n.held
	n.held = nil
	for _, m := range held {
		if m.To == n.id {
			n.r.Step(m)
		} else {
			e.net = append(e.net, m)
		}
	}
	return nil
}

// apply checks and records decided entries.
func (e *Env) apply(n *node, decided []paxos.Entry) error {
	for _, d := range decided {
		if d.Slot != n.applied+1 {
			return fmt.Errorf("node %d delivered slot %d after %d", n.id, d.Slot, n.applied)
		}
		n.applied = d.Slot
		n.digest = fold(n.digest, d.Value)
		n.configs.Apply(d.Slot, d.Value)
		if v, ok := e.chosen[d.Slot]; ok {
			if !v.Equal(d.Value) {
				return fmt.Errorf("slot %d chosen twice: %s and %s (node %d)", d.Slot, describe(v), describe(d.Value), n.id)
			}
		} else {
			e.chosen[d.Slot] = d.Value
			e.Stats.Decided++
			if d.Slot > e.Stats.MaxSlot {
				e.Stats.MaxSlot = d.Slot
			}
		}
		for _, c := range d.Value.Cmds {
			if d.Value.Kind == paxos.ValueConfig {
				break
			}
			if !e.proposed[string(c)] {
				return fmt.Errorf("slot %d chose %q, which nobody proposed", d.Slot, c)
			}
			e.acked[string(c)] = true
		}
		if n.applier != nil {
			if err := n.applier.Apply(d); err != nil {
				return fmt.Errorf("node %d, slot %d: %w", n.id, d.Slot, err)
			}
		}
	}
	return nil
}

func describe(v paxos.Value) string {
	if v.Kind == paxos.ValueNoop {
		return "noop"
	}
	parts := make([]string, len(v.Cmds))
	for i, c := range v.Cmds {
		parts[i] = string(c)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// deliver hands the message at index i to its destination, subject to
// partitions and the drop and duplication rates.
func (e *Env) deliver(i int, lossy bool) error {
	m := e.net[i]
	e.net[i] = e.net[len(e.net)-1]
	e.net = e.net[:len(e.net)-1]
	if e.group[m.From] != e.group[m.To] {
		e.Stats.Dropped++
		return nil
	}
	if lossy && e.rng.Float64() < e.faults.DropRate {
		e.Stats.Dropped++
		return nil
	}
	if lossy && e.rng.Float64() < e.faults.DupRate {
		e.net = append(e.net, m)
		e.Stats.Duplicated++
	}
	n := e.node(m.To)
	if n.r == nil {
		e.Stats.Dropped++
		return nil
	}
	e.Stats.Delivered++
	e.tracef("deliver %s", m)
	if m.Type == paxos.MsgSnapshot {
		return e.installSnapshot(n, m)
	}
	n.r.Step(m)
	return nil
}

func (e *Env) crash(n *node) {
	e.tracef("crash %d (losing %d unsynced writes, %d held messages)", n.id, len(n.unsynced), len(n.held))
	n.r = nil
	n.unsynced, n.held = nil, nil
	e.Stats.Crashes++
}

func (e *Env) restart(n *node) error {
	e.tracef("restart %d", n.id)
	e.Stats.Restarts++
	return e.start(n)
}

func (e *Env) partition() {
	e.Stats.Partitions++
	if e.rng.Intn(3) == 0 {
		e.group = map[paxos.NodeID]int{}
		e.tracef("heal")
		return
	}
	for _, n := range e.nodes {
		e.group[n.id] = e.rng.Intn(2)
	}
	e.tracef("partition %v", e.group)
}

func (e *Env) alive() []*node {
	var out []*node
	for _, n := range e.nodes {
		if n.r != nil {
			out = append(out, n)
		}
	}
	return out
}

// Leaders returns the ids of nodes that believe they lead.
func (e *Env) Leaders() []paxos.NodeID {
	var out []paxos.NodeID
	for _, n := range e.alive() {
		if n.r.Status().Role == proposer.Leader {
			out = append(out, n.id)
		}
	}
	return out
}
