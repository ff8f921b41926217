package replica

import "github.com/paxosd/paxosd/paxos"

// wellFormed reports whether m is a message an honest member could have
// sent. The transport checks the frame's syntax; this checks what the
// protocol relies on: entries in strictly increasing slot order, none at
// slot 0 (which means "none") nor absurdly far ahead (paxos.SlotsAheadMax
// beyond what this node or the sender knows to be chosen: a follower far
// behind its leader still votes), values of a known kind, and Decides only
// from the leader of the ballot they name. A message that fails is
// dropped, so a bad peer frame can neither stop the node nor make it loop.
func (r *Replica) wellFormed(m paxos.Message) bool {
	if m.Type == paxos.MsgDecide && m.From != m.Ballot.Node && !m.Ballot.IsZero() {
		return false
	}
	base := r.learn.Commit()
	switch m.Type {
	case paxos.MsgPromise:
		base = max(base, m.Slot)
	case paxos.MsgAccept, paxos.MsgDecide:
		base = max(base, m.Commit)
	}
	limit := base + paxos.SlotsAheadMax
	var prev paxos.Slot
	for _, e := range m.Entries {
		if e.Slot <= prev || e.Slot > limit {
			return false
		}
		switch e.Value.Kind {
		case paxos.ValueNoop:
			if len(e.Value.Cmds) != 0 {
				return false
			}
		case paxos.ValueBatch:
		case paxos.ValueConfig:
			if _, err := paxos.DecodeMembership(e.Value); err != nil {
				return false
			}
		default:
			return false
		}
		prev = e.Slot
	}
	if m.Type == paxos.MsgPromise && len(m.Entries) > 0 && m.Entries[0].Slot < m.Slot {
		return false
	}
	return true
}
