package service

import (
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"math/rand"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/paxos/paxostest"
)

var (
	flagPrimSeed  = flag.Int64("prim.seed", -1, "replay one primitives-simulation seed")
	flagPrimSeeds = flag.Int("prim.seeds", 120, "seeds TestPrimitivesSim runs")
)

// primitivesWorkload drives the real state machine through the simulated
// cluster: clients open sessions, take and release locks, campaign and
// resign, write keys, and a clock advances, while the network drops,
// duplicates and partitions and nodes crash. Every replica incarnation
// applies what it is delivered to its own StateMachine and checks it.
//
// It is a paxostest.SnapshotWorkload: replicas snapshot their state
// machine (and their checker's state), truncate their logs, restart from
// their snapshot and install other replicas' snapshots.
type primitivesWorkload struct {
	seq map[uint64]uint64 // per client
	now uint64            // the simulated cluster clock proposals
	// hashes and watched hold, per slot, the Hash of the state after it
	// and a digest of what watches and election observers read then
	// (which Hash leaves out), as the first replica to apply it saw them:
	// every other replica, restored ones included, must see the same.
	hashes  map[paxos.Slot]uint64
	watched map[paxos.Slot]uint64
	// snaps holds, per slot, a digest of the state machine snapshot taken
	// there: replicas snapshotting the same slot must give the same bytes.
	snaps   map[paxos.Slot]uint64
	checked int
	grants  int // lock grants observed (by any replica)
	leaders int // election leaders observed
	// snapshots taken, and appliers restored from one (restarts from a
	// snapshot and installs).
	snapshots, restores int

	// For the tests of the checks themselves: tamper, when set, damages
	// every applier restored from a snapshot; noStateChecks turns off the
	// comparisons of Hash and history digests between replicas, leaving
	// the checker's own invariants.
	tamper        func(a *primitivesApplier)
	noStateChecks bool
}

// simSMOptions keep the histories short, so that they drop events and
// changes (and snapshots carry trimmed histories).
var simSMOptions = SMOptions{KVHistoryMax: 24, ElectionHistoryMax: 6}

func newPrimitivesWorkload() *primitivesWorkload {
	return &primitivesWorkload{
		seq: map[uint64]uint64{}, hashes: map[paxos.Slot]uint64{},
		watched: map[paxos.Slot]uint64{}, snaps: map[paxos.Slot]uint64{},
	}
}

func (w *primitivesWorkload) NextCommand(rng *rand.Rand, node paxos.NodeID) []byte {
	client := uint64(1 + rng.Intn(4))
	w.seq[client]++
	c := &Command{ClientID: client, Seq: w.seq[client], AckedBelow: w.seq[client]}
	sess := uint64(1 + rng.Intn(6))
	name := fmt.Sprintf("l%d", rng.Intn(2))
	switch r := rng.Intn(100); {
	case r < 12:
		c.ClientID, c.Seq, c.AckedBelow = 0, 0, 0
		w.now += uint64(100 + rng.Intn(900))
		c.Op, c.Now = OpClock, w.now
		// A unique marker: clock commands would otherwise repeat bytes.
		c.Key = fmt.Sprintf("t%d", w.now)
	case r < 22:
		c.Op, c.TTLMs = OpSessionOpen, uint64(1000+rng.Intn(4000))
	case r < 34:
		c.Op, c.SessionID = OpSessionKeepAlive, sess
	case r < 38:
		c.Op, c.SessionID = OpSessionClose, sess
	case r < 56:
		c.Op, c.SessionID, c.Name, c.Wait = OpLockAcquire, sess, name, rng.Intn(3) > 0
		if rng.Intn(4) == 0 {
			c.LockDelayMs = uint64(rng.Intn(2000))
		}
	case r < 66:
		c.Op, c.SessionID, c.Name = OpLockRelease, sess, name
	case r < 76:
		c.Op, c.SessionID, c.Name, c.Value = OpCampaign, sess, "e", []byte(fmt.Sprintf("v%d", sess))
	case r < 82:
		c.Op, c.SessionID, c.Name = OpResign, sess, "e"
	case r < 86:
		c.Op, c.SessionID, c.Name, c.Value = OpProclaim, sess, "e", []byte("p")
	default:
		c.Op, c.Key, c.Value = OpPut, fmt.Sprintf("k%d", rng.Intn(3)), []byte("v")
		if rng.Intn(3) == 0 {
			c.FenceName, c.FenceToken = name, uint64(rng.Intn(20))
		}
	}
	return EncodeCommand(c)
}

func (w *primitivesWorkload) NewApplier(node paxos.NodeID) paxostest.Applier {
	return &primitivesApplier{w: w, sm: NewStateMachine(simSMOptions), lastToken: map[string]uint64{}, holder: map[string]uint64{}}
}

// primitivesApplier is one replica incarnation: its state machine and what
// its checker has seen of it. The checker's state is a function of the
// slots applied (it is updated after every slot from the state alone), so
// it travels in the snapshot with the state machine: a restored applier
// is the applier that took the snapshot, and its checks keep comparing
// against the whole history (a lock's token must exceed every token it was
// ever granted, not only the ones since the restore).
type primitivesApplier struct {
	w         *primitivesWorkload
	sm        *StateMachine
	lastToken map[string]uint64 // per lock: the highest token granted
	holder    map[string]uint64
	lastTerm  uint64
	leader    uint64
}

// simSnapshot is what a snapshot of a primitivesApplier holds.
type simSnapshot struct {
	SM        []byte // StateMachine.Snapshot
	LastToken map[string]uint64
	Holder    map[string]uint64
	LastTerm  uint64
	Leader    uint64
}

// Snapshot encodes a's state machine and checker state.
func (w *primitivesWorkload) Snapshot(a paxostest.Applier) ([]byte, error) {
	pa := a.(*primitivesApplier)
	data, err := pa.sm.Snapshot()
	if err != nil {
		return nil, err
	}
	slot := pa.sm.Applied()
	h := fnv.New64a()
	h.Write(data)
	if want, ok := w.snaps[slot]; ok && want != h.Sum64() {
		return nil, fmt.Errorf("snapshots at slot %d differ between replicas", slot)
	}
	w.snaps[slot] = h.Sum64()
	w.snapshots++
	return msgpack.Marshal(&simSnapshot{SM: data, LastToken: pa.lastToken, Holder: pa.holder, LastTerm: pa.lastTerm, Leader: pa.leader})
}

// Restore rebuilds an applier from a snapshot and checks it: its state is
// the state every replica had after the snapshot's slot (Hash and the
// histories), and its checker's state agrees with that state.
func (w *primitivesWorkload) Restore(node paxos.NodeID, data []byte) (paxostest.Applier, error) {
	var s simSnapshot
	if err := msgpack.Unmarshal(data, &s); err != nil {
		return nil, err
	}
	sm, err := RestoreStateMachine(simSMOptions, s.SM)
	if err != nil {
		return nil, err
	}
	a := &primitivesApplier{w: w, sm: sm, lastToken: s.LastToken, holder: s.Holder, lastTerm: s.LastTerm, leader: s.Leader}
	if a.lastToken == nil {
		a.lastToken = map[string]uint64{}
	}
	if a.holder == nil {
		a.holder = map[string]uint64{}
	}
	if w.tamper != nil {
		w.tamper(a)
	}
	slot := sm.Applied()
	if !w.noStateChecks {
		want, ok := w.hashes[slot]
		if !ok {
			return nil, fmt.Errorf("snapshot at slot %d, which no replica applied", slot)
		}
		if sm.Hash() != want {
			return nil, fmt.Errorf("state restored from the snapshot at slot %d differs from the state after that slot", slot)
		}
		if watchDigest(sm) != w.watched[slot] {
			return nil, fmt.Errorf("histories restored from the snapshot at slot %d differ from those after that slot", slot)
		}
	}
	if err := a.checkRestored(); err != nil {
		return nil, fmt.Errorf("restored at slot %d: %w", slot, err)
	}
	w.restores++
	return a, nil
}

// checkRestored checks that the checker's state came with the state
// machine it describes: the holders and tokens it knows are the current
// ones, and no token or term it saw exceeds the fence counter (a restore
// that rewound the counter would hand them out again).
func (a *primitivesApplier) checkRestored() error {
	held := 0
	for _, l := range a.sm.Locks() {
		if l.Holder == 0 {
			continue
		}
		held++
		if a.holder[l.Name] != l.Holder || a.lastToken[l.Name] != l.Token {
			return fmt.Errorf("lock %s held by session %d with token %d; the checker saw session %d, token %d",
				l.Name, l.Holder, l.Token, a.holder[l.Name], a.lastToken[l.Name])
		}
	}
	if held != len(a.holder) {
		return fmt.Errorf("%d locks held; the checker saw %d", held, len(a.holder))
	}
	l, ok := a.sm.LeaderOf("e")
	if !ok {
		l = LeaderInfo{}
	}
	if l.Session != a.leader || l.Session != 0 && l.Term != a.lastTerm {
		return fmt.Errorf("election led by session %d in term %d; the checker saw session %d, term %d", l.Session, l.Term, a.leader, a.lastTerm)
	}
	fence := a.sm.fence
	for name, token := range a.lastToken {
		if token > fence {
			return fmt.Errorf("lock %s had token %d, above the fence counter %d", name, token, fence)
		}
	}
	if a.lastTerm > fence {
		return fmt.Errorf("election term %d above the fence counter %d", a.lastTerm, fence)
	}
	return nil
}

// watchDigest digests what watches and election observers can read: the
// KV history and the changes of election "e".
func watchDigest(sm *StateMachine) uint64 {
	h := hasher{h: fnv.New64a()}
	h.u64(sm.OldestRevision())
	evs, err := sm.KVEvents(sm.OldestRevision(), "", true, 0)
	h.str(errText(err))
	h.u64(uint64(len(evs)))
	for _, ev := range evs {
		h.u64(ev.Revision)
		h.u64(uint64(ev.Type))
		h.kv(ev.KV)
		h.kv(ev.PrevKV)
	}
	changes, err := sm.ElectionChanges("e", 0)
	h.str(errText(err))
	if errors.Is(err, ErrCompacted) {
		changes, err = sm.ElectionChanges("e", sm.elect.m["e"].history.r.at(0).Seq-1)
		h.str(errText(err))
	}
	h.u64(uint64(len(changes)))
	for _, c := range changes {
		h.u64(c.Seq)
		h.u64(c.Session)
		h.bytes(c.Value)
		h.u64(c.Term)
		h.u64(c.Revision)
	}
	return h.h.Sum64()
}

func (a *primitivesApplier) Apply(e paxos.Entry) error {
	a.sm.ApplyValue(e.Slot, e.Value)
	a.sm.TakeAnswers()
	// Every replica's state after a slot is the same state, and so are the
	// histories that watches and observers read.
	h, wd := a.sm.Hash(), watchDigest(a.sm)
	if want, ok := a.w.hashes[e.Slot]; ok && want != h && !a.w.noStateChecks {
		return fmt.Errorf("state after slot %d differs between replicas", e.Slot)
	} else if !ok {
		a.w.hashes[e.Slot] = h
	}
	if want, ok := a.w.watched[e.Slot]; ok && want != wd && !a.w.noStateChecks {
		return fmt.Errorf("histories after slot %d differ between replicas", e.Slot)
	} else if !ok {
		a.w.watched[e.Slot] = wd
	}
	a.w.checked++
	alive := map[uint64]bool{}
	for _, s := range a.sm.Sessions() {
		alive[s.ID] = true
		if s.RemainingMs > s.TTLMs {
			return fmt.Errorf("session %d has %d ms left of a %d ms TTL", s.ID, s.RemainingMs, s.TTLMs)
		}
	}
	held := map[string]bool{}
	for _, l := range a.sm.Locks() {
		if l.Holder == 0 {
			continue
		}
		held[l.Name] = true
		if !alive[l.Holder] {
			return fmt.Errorf("lock %s held by session %d, which has ended", l.Name, l.Holder)
		}
		if l.Holder != a.holder[l.Name] || l.Token != a.lastToken[l.Name] {
			// A new grant: its token must exceed every earlier one.
			if l.Token <= a.lastToken[l.Name] {
				return fmt.Errorf("lock %s granted to session %d with token %d after token %d", l.Name, l.Holder, l.Token, a.lastToken[l.Name])
			}
			a.holder[l.Name], a.lastToken[l.Name] = l.Holder, l.Token
			a.w.grants++
		}
	}
	for name := range a.holder {
		if !held[name] {
			delete(a.holder, name)
		}
	}
	if l, ok := a.sm.LeaderOf("e"); ok && l.Session != 0 {
		if !alive[l.Session] {
			return fmt.Errorf("election led by session %d, which has ended", l.Session)
		}
		if l.Session != a.leader {
			if l.Term <= a.lastTerm {
				return fmt.Errorf("new leader %d of term %d after term %d", l.Session, l.Term, a.lastTerm)
			}
			a.leader, a.lastTerm = l.Session, l.Term
			a.w.leaders++
		}
	} else {
		a.leader = 0
	}
	return nil
}

// TestPrimitivesSim runs the replicated state machine with sessions, locks
// and elections through the seeded simulation (crashes, partitions, lossy
// network). Replay: go test ./service -run TestPrimitivesSim -prim.seed N
func TestPrimitivesSim(t *testing.T) {
	var seeds []int64
	if *flagPrimSeed >= 0 {
		seeds = []int64{*flagPrimSeed}
	} else {
		for i := 0; i < *flagPrimSeeds; i++ {
			seeds = append(seeds, int64(i))
		}
	}
	checked, grants, leaders := 0, 0, 0
	snapshots, installs, restores := 0, 0, 0
	for _, seed := range seeds {
		w := newPrimitivesWorkload()
		env, err := runPrimitivesSim(seed, w)
		if err != nil {
			t.Fatalf("%v\nreplay: go test ./service -run TestPrimitivesSim -prim.seed %d", err, seed)
		}
		checked, grants, leaders = checked+w.checked, grants+w.grants, leaders+w.leaders
		snapshots, installs, restores = snapshots+env.Stats.Snapshots, installs+env.Stats.Installs, restores+w.restores
		if env.Stats.Snapshots != w.snapshots {
			t.Fatalf("seed %d: %d snapshots, the workload took %d", seed, env.Stats.Snapshots, w.snapshots)
		}
	}
	t.Logf("%d seeds, %d applied slots checked, %d lock grants, %d election leaders", len(seeds), checked, grants, leaders)
	t.Logf("%d snapshots, %d snapshot installs, %d appliers restored from a snapshot (installs and restarts)", snapshots, installs, restores)
	if checked == 0 || grants == 0 || leaders == 0 {
		t.Fatal("no slot, grant or leader: the simulation checked nothing")
	}
	if len(seeds) >= 20 && (snapshots == 0 || installs == 0 || restores <= installs) {
		t.Fatal("no snapshot, install or restart from a snapshot: the simulation did not exercise them")
	}
}

func runPrimitivesSim(seed int64, w *primitivesWorkload) (*paxostest.Env, error) {
	nodes := 3
	if seed%2 == 1 {
		nodes = 5
	}
	env, err := paxostest.NewEnv(paxostest.Options{Seed: seed, Nodes: nodes, Steps: 4000, LivenessRounds: 2000, Workload: w})
	if err != nil {
		return nil, err
	}
	return env, env.Run()
}

// TestPrimitivesSimChecksRestores checks the checks: a restore that
// loses part of the state, whether Hash covers it or not, fails the
// simulation; and with the comparisons between replicas off, the
// checker's own state, carried by the snapshot, still catches a restore
// that would hand out a fencing token again.
func TestPrimitivesSimChecksRestores(t *testing.T) {
	for _, tc := range []struct {
		name          string
		noStateChecks bool
		tamper        func(a *primitivesApplier)
		want          string
	}{
		{"fence counter rewound", false, func(a *primitivesApplier) { a.sm.fence = 0 }, "differs"},
		{"KV history started afresh", false, func(a *primitivesApplier) {
			a.sm.kvHist = newKVHistory(simSMOptions.KVHistoryMax, simSMOptions.KVHistoryBytesMax)
		}, "histories"},
		{"fence counter rewound, only the checker left", true, func(a *primitivesApplier) { a.sm.fence = 0 }, "fence counter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for seed := int64(0); seed < 40; seed++ {
				w := newPrimitivesWorkload()
				w.tamper, w.noStateChecks = tc.tamper, tc.noStateChecks
				_, err := runPrimitivesSim(seed, w)
				if err == nil {
					continue
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("seed %d failed, but not as expected (%q): %v", seed, tc.want, err)
				}
				t.Logf("seed %d: %v", seed, err)
				return
			}
			t.Fatal("no seed noticed the damaged restores")
		})
	}
}
