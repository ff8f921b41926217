package replica

import "github.com/paxosd/paxosd/paxos"

// slotsAheadMax bounds how far above this node's watermark a message may
// place entries. A leader proposes at most a window beyond its watermark,
// and a node far behind it catches up (or installs a snapshot) before it
// votes again; a slot further out than this can only come from a crafted
// or corrupted frame, and taking it would make Phase 1 walk (and fill
// with no-ops) an absurd range of slots.
const slotsAheadMax = 1 << 20

// wellFormed reports whether m is a message an honest member could have
// sent. The transport checks the frame's syntax; this checks what the
// protocol relies on: entries in strictly increasing slot order, none at
// slot 0 (which means "none") nor absurdly far ahead, values of a known
// kind, and Decides only from the leader of the ballot they name. A
// message that fails is dropped, so a bad peer frame can neither stop the
// node nor make it loop.
func (r *Replica) wellFormed(m paxos.Message) bool {
	if m.Type == paxos.MsgDecide && m.From != m.Ballot.Node {
		return false
	}
	base := r.learn.Commit()
	if m.Type == paxos.MsgPromise && m.Slot > base {
		base = m.Slot
	}
	limit := base + slotsAheadMax
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
