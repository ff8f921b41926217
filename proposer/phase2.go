package proposer

import "github.com/paxosd/paxosd/paxos"

// Flush turns queued commands into work: a leader cuts batches into new
// slots while its window has room and returns the Accepts (and the entries
// proposed, for the learner to count); a follower hands its queued commands
// to the leader. The driver calls it once per Ready, which is what makes
// batching natural: whatever arrived while the last batch was in flight
// forms the next one.
func (p *Proposer) Flush(commit paxos.Slot) (msgs []paxos.Message, proposed []paxos.Entry) {
	if p.role == Follower && p.leader != 0 && p.leader != p.id {
		for len(p.pending) > 0 {
			var v paxos.Value
			v, p.pending, _ = cutBatch(p.pending, p.cfg.BatchBytesMax)
			msgs = append(msgs, paxos.Message{Type: paxos.MsgForward, From: p.id, To: p.leader, Cmds: v.Cmds})
		}
		p.pendingBytes = 0
		return msgs, nil
	}
	if p.role != Leader {
		return msgs, nil
	}
	for len(p.own)+len(p.pending) > 0 && p.windowOpen(commit) {
		var v paxos.Value
		if len(p.own) > 0 {
			v, p.own, _ = cutBatch(p.own, p.cfg.BatchBytesMax)
		} else {
			var size int
			v, p.pending, size = cutBatch(p.pending, p.cfg.BatchBytesMax)
			p.pendingBytes -= size
		}
		e := paxos.Entry{Slot: p.nextSlot, Ballot: p.ballot, Value: v}
		p.addInflight(e.Slot, v)
		p.nextSlot++
		proposed = append(proposed, e)
	}
	return append(msgs, p.accepts(proposed, commit)...), proposed
}

// windowOpen reports whether the leader may put another slot in flight:
// fewer than WindowSlots, and fewer than InflightBytesMax bytes (unless
// nothing is in flight), are.
func (p *Proposer) windowOpen(commit paxos.Slot) bool {
	return int(p.nextSlot-1-commit) < p.cfg.WindowSlots &&
		(len(p.inflight) == 0 || p.inflightBytes < p.cfg.InflightBytesMax)
}

// cutBatch takes commands from the front of queue, up to maxBytes of
// payload (at least one), and returns them as a value, the rest of the
// queue, and the bytes taken. (The encoding's per-command overhead is
// bounded by PendingMax commands, so it needs no limit of its own.)
func cutBatch(queue [][]byte, maxBytes int) (v paxos.Value, rest [][]byte, payload int) {
	n := 0
	for n < len(queue) {
		c := len(queue[n])
		if n > 0 && payload+c > maxBytes {
			break
		}
		payload += c
		n++
	}
	cmds := make([][]byte, n)
	copy(cmds, queue[:n])
	rest = queue[n:]
	if len(rest) == 0 {
		rest = nil
	}
	return paxos.Value{Kind: paxos.ValueBatch, Cmds: cmds}, rest, payload
}

// accepts returns Accept messages carrying entries to every member,
// including this node's own acceptor, split so no message grows past
// Config.PageBytes.
func (p *Proposer) accepts(entries []paxos.Entry, commit paxos.Slot) []paxos.Message {
	var out []paxos.Message
	for _, chunk := range p.chunk(entries) {
		out = append(out, p.broadcast(paxos.Message{Type: paxos.MsgAccept, Ballot: p.ballot, Commit: commit, Entries: chunk}, true)...)
	}
	return out
}

func (p *Proposer) chunk(entries []paxos.Entry) [][]paxos.Entry {
	var out [][]paxos.Entry
	limit := p.cfg.PageBytes()
	start, size := 0, 0
	for i, e := range entries {
		b := e.WireBytes()
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

// retransmit resends Accepts for slots that have been in flight, unvoted,
// for retransmitTicks to the acceptors that have not answered — never to
// this node's own acceptor, whose Accept is stepped, not sent — and then
// waits as long again: messages get lost, and a slot nobody re-sends is a
// slot that is never chosen, but an acceptor that is merely slow (a slow
// disk) must not be fed the same writes again and again. done reports
// whether a node's vote for a slot is no longer needed (it voted, or the
// slot is already chosen).
func (p *Proposer) retransmit(commit paxos.Slot, done func(paxos.Slot, paxos.NodeID) bool) []paxos.Message {
	if len(p.inflight) == 0 {
		return nil
	}
	cutoff := p.ticks - p.retransmitTicks()
	slots := p.sortedInflight()
	var out []paxos.Message
	resent := map[paxos.Slot]bool{}
	for _, to := range p.members.Nodes {
		if to == p.id {
			continue
		}
		var entries []paxos.Entry
		for _, s := range slots {
			pr := p.inflight[s]
			if s <= commit || pr.tick > cutoff || done(s, to) {
				continue
			}
			entries = append(entries, paxos.Entry{Slot: s, Ballot: p.ballot, Value: pr.value})
			resent[s] = true
		}
		for _, chunk := range p.chunk(entries) {
			out = append(out, paxos.Message{Type: paxos.MsgAccept, From: p.id, To: to, Ballot: p.ballot, Commit: commit, Entries: chunk})
		}
	}
	for s := range resent {
		pr := p.inflight[s]
		pr.tick = p.ticks
		p.inflight[s] = pr
	}
	return out
}
