package replica

import "github.com/paxosd/paxosd/paxos"

// view is what the proposer reads of its replica (proposer.View).
type view struct{ r *Replica }

func (v view) At(s paxos.Slot) paxos.Membership { return v.r.configs.At(s) }
func (v view) Current() paxos.Membership {
	return v.r.configs.At(v.r.learn.Commit() + 1)
}

// Nodes is on the hot path (every broadcast): computed once per
// membership, not per call.
func (v view) Nodes() []paxos.NodeID {
	r := v.r
	key := [2]uint64{r.configs.Current.Version, r.configs.Next.Version}
	if r.nodes == nil || r.nodesKey != key {
		r.nodes, r.nodesKey = r.configs.Nodes(), key
	}
	return r.nodes
}
func (v view) Voters() []paxos.NodeID {
	seen := map[paxos.NodeID]bool{}
	var out []paxos.NodeID
	for _, m := range []paxos.Membership{v.r.configs.Current, v.r.configs.Next} {
		for _, id := range m.Voters() {
			if !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	return out
}
func (v view) IsChosen(s paxos.Slot) bool { return v.r.learn.IsChosen(s) }
func (v view) PendingAt() paxos.Slot {
	if v.r.configs.Pending() {
		return v.r.configs.NextAt
	}
	return 0
}
func (v view) Activation() paxos.Slot { return v.r.configs.Activation() }
