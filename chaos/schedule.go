package chaos

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// FaultKind names a kind of fault.
type FaultKind string

// The faults. Each lasts Fault.Hold and is then healed.
const (
	// Kill: kill -9 a node (the leader, or one at random), restart it
	// when the fault heals.
	Kill FaultKind = "kill"
	// LoseDisk: kill -9 a node and delete its data directory; it restarts
	// with --rejoin (docs/SNAPSHOTS.md) when the fault heals.
	LoseDisk FaultKind = "lose-disk"
	// Pause: SIGSTOP a node for longer than the election timeout, then
	// SIGCONT.
	Pause FaultKind = "pause"
	// IsolateLeader: cut the leader off from both other nodes (clients
	// still reach it: a deposed leader must not answer them wrongly).
	IsolateLeader FaultKind = "partition-leader"
	// IsolateNode: cut a node picked at random off from the others, a
	// minority/majority split whether or not it leads.
	IsolateNode FaultKind = "partition-minority"
	// Bridge: A-B and B-C connected, A-C cut.
	Bridge FaultKind = "partition-bridge"
	// OneWay: the messages of one node to another are lost, the other
	// direction works.
	OneWay FaultKind = "partition-one-way"
	// Loss: a fraction of the packets in and out of some nodes are lost.
	Loss FaultKind = "packet-loss"
	// Delay: the packets leaving some nodes are held back.
	Delay FaultKind = "packet-delay"
	// CrashAll: kill -9 every node at once, restart them all.
	CrashAll FaultKind = "crash-all"
	// Mixed: a network fault (Fault's own fields) and, at the same time, a
	// kill or pause (Also). Often no majority is left until both heal.
	Mixed FaultKind = "mixed"
	// Replace: an operator replaces a member (docs/MEMBERSHIP.md): member
	// remove (of the leader, or of a node killed first if Dead), its data
	// deleted, member add --learner of a new id at the same address or
	// (NewAddr) another port, paxosd serve --join, member promote --wait.
	// It is not held: it lasts as long as the commands take.
	Replace FaultKind = "replace-member"
)

// Target says which node(s) a fault hits: the leader (found when the fault
// starts), or nodes picked by the seed.
type Target int

// Targets.
const (
	RandomNode Target = iota
	TheLeader
	AllNodes
	// FromLeader and ToLeader are one-way cuts of the leader's messages
	// to Node, and of Node's messages to the leader.
	FromLeader
	ToLeader
)

// Fault is one step of a schedule.
type Fault struct {
	Kind   FaultKind
	Target Target
	Node   int // the node picked by the seed (0-based)
	Other  int // a second node (one-way: the receiving end), != Node
	Hold   time.Duration
	Loss   float64       // Loss: the fraction lost, each way
	Delay  time.Duration // Delay: added to every packet
	Jitter time.Duration // Delay: up to this much more, at random
	// Quiet is how long the cluster runs without a fault after this one
	// healed and a write got through.
	Quiet time.Duration
	// Net is the kind of network fault of a Mixed fault; Also its kill or
	// pause, held as long as the network fault.
	Net  FaultKind
	Also *Fault
	// Dead (Replace): the member is killed before it is removed, as a
	// machine that died; NewAddr: its replacement listens on another port.
	Dead, NewAddr bool
}

func (f Fault) String() string {
	if f.Kind == Mixed {
		n := f
		n.Kind, n.Also = f.Net, nil
		a := *f.Also
		a.Hold = 0
		return fmt.Sprintf("mixed: %s, with %s", n, strings.TrimSuffix(a.String(), " for 0s"))
	}
	s := string(f.Kind)
	switch f.Target {
	case TheLeader:
		s += " of the leader"
	case AllNodes:
		s += " on every node"
	case FromLeader:
		s += fmt.Sprintf(" leader -> node %d", f.Node+1)
	case ToLeader:
		s += fmt.Sprintf(" node %d -> leader", f.Node+1)
	default:
		if f.Kind == OneWay {
			s += fmt.Sprintf(" node %d -> node %d", f.Node+1, f.Other+1)
		} else {
			s += fmt.Sprintf(" node %d", f.Node+1)
		}
	}
	switch f.Kind {
	case Replace:
		if f.Dead {
			s += ", killed first"
		}
		if f.NewAddr {
			s += ", by a node at a new address"
		}
		return s
	case Loss:
		s += fmt.Sprintf(" %.0f%%", f.Loss*100)
	case Delay:
		s += fmt.Sprintf(" %s+%s", f.Delay, f.Jitter)
	}
	return s + fmt.Sprintf(" for %s", f.Hold)
}

// PlanConfig shapes a schedule.
type PlanConfig struct {
	Nodes int
	// ElectionTimeoutMax is the longest a follower waits for a leader
	// (2 x election-ticks x tick); pauses last longer than that.
	ElectionTimeoutMax time.Duration
}

// Plan is the sequence of faults a seed stands for: n faults, and among
// the first few a whole-cluster crash, which every schedule must have. The
// seed fixes the faults, their targets and durations; which node leads
// when a fault starts, and so where "the leader" is, depends on the run.
func Plan(seed int64, n int, cfg PlanConfig) []Fault {
	r := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	crashAt := 1 + r.IntN(4)
	kinds := []struct {
		kind   FaultKind
		weight int
	}{
		{Kill, 3}, {Pause, 3}, {IsolateLeader, 2}, {IsolateNode, 2}, {Bridge, 2},
		{OneWay, 2}, {Loss, 2}, {Delay, 2}, {CrashAll, 1}, {Mixed, 3}, {LoseDisk, 1}, {Replace, 2},
	}
	total := 0
	for _, k := range kinds {
		total += k.weight
	}
	between := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(r.Int64N(int64(hi-lo)+1)) }
	one := func(kind FaultKind) Fault {
		f := Fault{Kind: kind, Node: r.IntN(cfg.Nodes)}
		f.Other = (f.Node + 1 + r.IntN(cfg.Nodes-1)) % cfg.Nodes
		f.Hold = between(time.Second, 6*time.Second)
		f.Quiet = between(500*time.Millisecond, 2*time.Second)
		switch kind {
		case Kill, LoseDisk:
			if r.IntN(2) == 0 {
				f.Target = TheLeader
			}
			f.Hold = between(500*time.Millisecond, 4*time.Second)
		case Pause:
			if r.IntN(2) == 0 {
				f.Target = TheLeader
			}
			f.Hold = between(cfg.ElectionTimeoutMax*2, 5*time.Second)
		case IsolateLeader:
			f.Target = TheLeader
		case OneWay:
			f.Target = []Target{RandomNode, FromLeader, ToLeader}[r.IntN(3)]
		case Loss:
			if r.IntN(2) == 0 {
				f.Target = AllNodes
			}
			f.Loss = float64(5+r.IntN(26)) / 100
		case Delay:
			if r.IntN(2) == 0 {
				f.Target = AllNodes
			}
			// Now and then longer than the election timeout, so that the
			// followers of a slow leader give up on it.
			f.Delay = between(10*time.Millisecond, 2*cfg.ElectionTimeoutMax)
			f.Jitter = f.Delay / 4
		case CrashAll:
			f.Target = AllNodes
			f.Hold = between(200*time.Millisecond, 2*time.Second)
		case Replace:
			if r.IntN(2) == 0 {
				f.Target = TheLeader
			}
			f.Dead, f.NewAddr = r.IntN(2) == 0, r.IntN(2) == 0
			f.Hold = 0
		}
		return f
	}
	out := make([]Fault, 0, n)
	for i := 0; i < n; i++ {
		kind := CrashAll
		if i != crashAt {
			w := r.IntN(total)
			for _, k := range kinds {
				if w -= k.weight; w < 0 {
					kind = k.kind
					break
				}
			}
		}
		var f Fault
		if kind == Mixed {
			f = one([]FaultKind{IsolateLeader, IsolateNode, Bridge, OneWay, Loss, Delay}[r.IntN(6)])
			also := one([]FaultKind{Kill, Pause}[r.IntN(2)])
			// Hit another node than the network fault does, so that often
			// no majority is left.
			also.Node, also.Other, also.Hold = f.Other, f.Node, f.Hold
			f.Net, f.Kind, f.Also = f.Kind, Mixed, &also
		} else {
			f = one(kind)
		}
		out = append(out, f)
	}
	return out
}
