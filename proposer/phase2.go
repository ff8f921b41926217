package proposer

import "github.com/paxosd/paxosd/paxos"

// Flush turns queued work into slots: a leader proposes, in slot order
// while its window has room and its Phase 1 covers the slot, the values
// it recovered, then a membership change, then batches of queued
// commands, then no-ops up to the slot where its last change takes effect
// (so that an idle cluster does not wait for traffic to reach it), and
// returns the Accepts (and the entries proposed, for the learner to
// count); a follower hands its queued commands to the leader. The driver
// calls it once per Ready, which is what makes batching natural: whatever
// arrived while the last batch was in flight forms the next one.
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
	if p.nextSlot <= commit {
		p.nextSlot = commit + 1
	}
	if at := p.view.PendingAt(); at > 0 {
		// A change waits for its activation slot, whoever proposed it:
		// fill up to it (a leader that learned the change chosen from a
		// Promise, or after it proposed it, must too).
		p.padTo = max(p.padTo, at-1)
	}
	for p.windowOpen(commit) {
		s := p.nextSlot
		if !p.covered(s) {
			msgs = append(msgs, p.askCoverage(s)...)
			break
		}
		v, skip, ok := p.take(s)
		if !ok {
			break
		}
		p.nextSlot++
		if skip {
			continue
		}
		if v.Kind == paxos.ValueConfig {
			p.padTo = max(p.padTo, s+p.view.Activation()-1)
		}
		e := paxos.Entry{Slot: s, Ballot: p.ballot, Value: v}
		p.addInflight(e.Slot, v)
		proposed = append(proposed, e)
	}
	return append(msgs, p.accepts(proposed, commit)...), proposed
}

// take returns the value to propose at slot s (see Flush), or skip when s
// is known chosen, or ok false when there is nothing to propose.
func (p *Proposer) take(s paxos.Slot) (v paxos.Value, skip, ok bool) {
	if s <= p.maxReported {
		r, found := p.recovered[s]
		delete(p.recovered, s)
		if _, chosen := p.chosenSeen[s]; chosen || p.view.IsChosen(s) {
			return v, true, true
		}
		if !found {
			return paxos.Noop, false, true
		}
		return r.Value, false, true
	}
	switch {
	case p.config != nil:
		v, p.config = *p.config, nil
	case len(p.own) > 0:
		v, p.own, _ = cutBatch(p.own, p.cfg.BatchBytesMax)
	case len(p.pending) > 0:
		var size int
		v, p.pending, size = cutBatch(p.pending, p.cfg.BatchBytesMax)
		p.pendingBytes -= size
	case s <= p.padTo:
		v = paxos.Noop
	default:
		return v, false, false
	}
	return v, false, true
}

// ProposeConfig queues a membership change for a slot of its own. Only a
// leader takes one, and only one at a time: it fails with
// paxos.ErrConfigInFlight while another waits for a slot, is in flight or
// is being recovered.
func (p *Proposer) ProposeConfig(v paxos.Value) error {
	if p.role != Leader {
		return paxos.ErrNoLeader
	}
	if p.config != nil {
		return paxos.ErrConfigInFlight
	}
	for _, pr := range p.inflight {
		if pr.value.Kind == paxos.ValueConfig {
			return paxos.ErrConfigInFlight
		}
	}
	for _, e := range p.recovered {
		if e.Value.Kind == paxos.ValueConfig {
			return paxos.ErrConfigInFlight
		}
	}
	p.config = &v
	return nil
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

// accepts returns Accept messages carrying entries to every member but the
// laggards (laggards.go), including this node's own acceptor, split so no
// message grows past Config.PageBytes.
func (p *Proposer) accepts(entries []paxos.Entry, commit paxos.Slot) []paxos.Message {
	if len(entries) == 0 {
		return nil
	}
	skip := p.Laggards(commit, entries[0].Slot, entries[len(entries)-1].Slot)
	var out []paxos.Message
	for _, chunk := range p.chunk(entries) {
		m := paxos.Message{Type: paxos.MsgAccept, Ballot: p.ballot, Commit: commit, Entries: chunk}
		for _, id := range p.view.Nodes() {
			if !skip[id] {
				m.From, m.To = p.id, id
				out = append(out, m)
			}
		}
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
	for _, to := range p.view.Nodes() {
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
