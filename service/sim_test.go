package service

import (
	"flag"
	"fmt"
	"math/rand"
	"testing"

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
type primitivesWorkload struct {
	seq     map[uint64]uint64 // per client
	now     uint64            // the simulated cluster clock proposals
	hashes  map[paxos.Slot]uint64
	checked int
	grants  int // lock grants observed (by any replica)
	leaders int // election leaders observed
}

func newPrimitivesWorkload() *primitivesWorkload {
	return &primitivesWorkload{seq: map[uint64]uint64{}, hashes: map[paxos.Slot]uint64{}}
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
	return &primitivesApplier{w: w, sm: NewStateMachine(SMOptions{}), lastToken: map[string]uint64{}, holder: map[string]uint64{}}
}

type primitivesApplier struct {
	w         *primitivesWorkload
	sm        *StateMachine
	lastToken map[string]uint64 // per lock: the highest token granted
	holder    map[string]uint64
	lastTerm  uint64
	leader    uint64
}

func (a *primitivesApplier) Apply(e paxos.Entry) error {
	a.sm.ApplyValue(e.Slot, e.Value)
	a.sm.TakeAnswers()
	// Every replica's state after a slot is the same state.
	h := a.sm.Hash()
	if want, ok := a.w.hashes[e.Slot]; ok && want != h {
		return fmt.Errorf("state after slot %d differs between replicas", e.Slot)
	} else if !ok {
		a.w.hashes[e.Slot] = h
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
	for _, seed := range seeds {
		w := newPrimitivesWorkload()
		nodes := 3
		if seed%2 == 1 {
			nodes = 5
		}
		env, err := paxostest.NewEnv(paxostest.Options{Seed: seed, Nodes: nodes, Steps: 4000, LivenessRounds: 2000, Workload: w})
		if err != nil {
			t.Fatal(err)
		}
		if err := env.Run(); err != nil {
			t.Fatalf("%v\nreplay: go test ./service -run TestPrimitivesSim -prim.seed %d", err, seed)
		}
		checked, grants, leaders = checked+w.checked, grants+w.grants, leaders+w.leaders
	}
	t.Logf("%d seeds, %d applied slots checked, %d lock grants, %d election leaders", len(seeds), checked, grants, leaders)
	if checked == 0 || grants == 0 || leaders == 0 {
		t.Fatal("no slot, grant or leader: the simulation checked nothing")
	}
}
