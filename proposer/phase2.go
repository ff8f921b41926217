package proposer

import "github.com/paxosd/paxosd/paxos"

// acceptBytesMax bounds one Accept message, in multiples of the batch
// limit, so a burst of big slots cannot produce a frame over the wire limit.
const acceptBatchesMax = 4

// Flush turns queued commands into work: a leader cuts batches into new
// slots while its window has room and returns the Accepts (and the entries
// proposed, for the learner to count); a follower hands its queued commands
// to the leader. The driver calls it once per Ready, which is what makes
// batching natural: whatever arrived while the last batch was in flight
// forms the next one.
func (p *Proposer) Flush(commit paxos.Slot) (msgs []paxos.Message, proposed []paxos.Entry) {
	if p.role == Follower && p.leader != 0 && p.leader != p.id {
		for len(p.pending) > 0 {
			msgs = append(msgs, paxos.Message{Type: paxos.MsgForward, From: p.id, To: p.leader, Cmds: p.cutBatch().Cmds})
		}
		return msgs, nil
	}
	if p.role != Leader {
		return msgs, nil
	}
	for len(p.pending) > 0 && int(p.nextSlot-1-commit) < p.cfg.WindowSlots {
		v := p.cutBatch()
		e := paxos.Entry{Slot: p.nextSlot, Ballot: p.ballot, Value: v}
		p.inflight[e.Slot] = proposal{value: v, tick: p.ticks}
		p.nextSlot++
		proposed = append(proposed, e)
	}
	return append(msgs, p.accepts(proposed, commit)...), proposed
}

// cutBatch takes commands from the queue up to BatchBytesMax (at least one).
func (p *Proposer) cutBatch() paxos.Value {
	n, size := 0, 0
	for n < len(p.pending) {
		c := len(p.pending[n])
		if n > 0 && size+c > p.cfg.BatchBytesMax {
			break
		}
		size += c
		n++
	}
	cmds := make([][]byte, n)
	copy(cmds, p.pending[:n])
	p.pending = p.pending[n:]
	p.pendingBytes -= size
	if len(p.pending) == 0 {
		p.pending = nil
	}
	return paxos.Value{Kind: paxos.ValueBatch, Cmds: cmds}
}

// accepts returns Accept messages carrying entries to every member,
// including this node's own acceptor, split so no message grows past
// acceptBatchesMax batches.
func (p *Proposer) accepts(entries []paxos.Entry, commit paxos.Slot) []paxos.Message {
	var out []paxos.Message
	for _, chunk := range p.chunk(entries) {
		out = append(out, p.broadcast(paxos.Message{Type: paxos.MsgAccept, Ballot: p.ballot, Commit: commit, Entries: chunk}, true)...)
	}
	return out
}

func (p *Proposer) chunk(entries []paxos.Entry) [][]paxos.Entry {
	var out [][]paxos.Entry
	limit := acceptBatchesMax * p.cfg.BatchBytesMax
	start, size := 0, 0
	for i, e := range entries {
		b := e.Value.Bytes()
		if i > start && size+b > limit {
			out = append(out, entries[start:i])
			start, size = i, 0
		}
		size += b
	}
	if start < len(entries) {
		out = append(out, entries[start:])
	}
	return out
}

// retransmit resends Accepts for slots that have been in flight for a
// heartbeat interval to the acceptors that have not answered: messages get
// lost, and a slot nobody re-sends is a slot that is never chosen. done
// reports whether a node's vote for a slot is no longer needed (it voted,
// or the slot is already chosen).
func (p *Proposer) retransmit(commit paxos.Slot, done func(paxos.Slot, paxos.NodeID) bool) []paxos.Message {
	if len(p.inflight) == 0 {
		return nil
	}
	cutoff := p.ticks - int64(p.cfg.HeartbeatTicks)
	slots := p.sortedInflight()
	var out []paxos.Message
	for _, to := range p.members.Nodes {
		var entries []paxos.Entry
		for _, s := range slots {
			pr := p.inflight[s]
			if s <= commit || pr.tick > cutoff || done(s, to) {
				continue
			}
			entries = append(entries, paxos.Entry{Slot: s, Ballot: p.ballot, Value: pr.value})
		}
		for _, chunk := range p.chunk(entries) {
			out = append(out, paxos.Message{Type: paxos.MsgAccept, From: p.id, To: to, Ballot: p.ballot, Commit: commit, Entries: chunk})
		}
	}
	return out
}
