package chaos

import (
	"math/rand/v2"
	"time"
)

// PlanLocks is the fault sequence of the lock-holders schedule
// (TestChaosLocks) for a seed: the faults a process holding many locks
// must ride out without losing a session. The first fault is a kill -9 of
// the leader and the second a partition, so that even a short run has
// both; after that the seed draws among
//
//   - kill -9 of the leader (0.5–4 s down): the others elect a new one;
//   - the leader cut off from the other nodes (1–6 s): the majority elects
//     a new one while the old one still has its clients;
//   - a node picked by the seed cut off (1–6 s), leader or not;
//   - the leader killed and, at the same time, another node cut off
//     (Mixed: Net IsolateNode, Also a Kill of the leader): no majority is
//     left until the fault heals, so it is held at most outage, which the
//     caller picks short enough for its sessions' TTL.
//
// Node is 0-based for IsolateNode; for the Mixed fault it picks which of
// the nodes other than the leader is cut off (the Node-th of them).
func PlanLocks(seed int64, n, nodes int, outage time.Duration) []Fault {
	r := rand.New(rand.NewPCG(uint64(seed), 0x6c6f636b73))
	between := func(lo, hi time.Duration) time.Duration {
		if hi <= lo {
			return lo
		}
		return lo + time.Duration(r.Int64N(int64(hi-lo)+1))
	}
	kinds := []FaultKind{Kill, IsolateLeader, IsolateNode, Mixed}
	out := make([]Fault, 0, n)
	for i := 0; i < n; i++ {
		var kind FaultKind
		switch i {
		case 0:
			kind = Kill
		case 1:
			kind = []FaultKind{IsolateLeader, IsolateNode}[r.IntN(2)]
		default:
			kind = kinds[r.IntN(len(kinds))]
		}
		f := Fault{Kind: kind, Node: r.IntN(nodes), Quiet: between(time.Second, 3*time.Second)}
		switch kind {
		case Kill:
			f.Target = TheLeader
			f.Hold = between(500*time.Millisecond, 4*time.Second)
		case IsolateLeader:
			f.Target = TheLeader
			f.Hold = between(time.Second, 6*time.Second)
		case IsolateNode:
			f.Hold = between(time.Second, 6*time.Second)
		case Mixed:
			f.Net, f.Node = IsolateNode, r.IntN(nodes-1)
			f.Hold = between(min(500*time.Millisecond, outage), outage)
			f.Also = &Fault{Kind: Kill, Target: TheLeader, Hold: f.Hold}
		}
		out = append(out, f)
	}
	return out
}
