package paxos

// Persist is the durable state a Ready asks the driver to write, in one
// atomic, synced batch, before any of the Ready's messages are sent.
type Persist struct {
	// Promised, when not zero, is the acceptor's new promised ballot.
	Promised Ballot
	// Entries are accepted (slot, ballot, value) triples to store; a later
	// entry for the same slot replaces an earlier one.
	Entries []Entry
	// Commit, when not zero, is the new chosen watermark: every slot at or
	// below it is chosen and the stored entry for it holds the chosen value.
	Commit Slot
}

// IsEmpty reports whether there is nothing to write.
func (p Persist) IsEmpty() bool {
	return p.Promised.IsZero() && len(p.Entries) == 0 && p.Commit == 0
}

// Ready is the work the protocol core hands to its driver. The driver must:
//
//  1. write Persist durably (one batch, one sync) — BEFORE Messages are sent;
//  2. send Messages (a message To the node itself is stepped back into it);
//  3. apply Decided, in order, to the state machine.
type Ready struct {
	Persist  Persist
	Messages []Message
	// Decided are newly chosen slots, contiguous and in slot order,
	// following every slot delivered by earlier Readys.
	Decided []Entry
}

// IsEmpty reports whether the Ready holds no work.
func (r Ready) IsEmpty() bool {
	return r.Persist.IsEmpty() && len(r.Messages) == 0 && len(r.Decided) == 0
}

// State is what a replica restarts from: everything Persist ever wrote.
type State struct {
	Promised Ballot
	// Entries are the accepted entries, one per slot, in slot order: all of
	// them, or (with a Config.Log to read the rest) those above Compacted.
	Entries []Entry
	Commit  Slot
	// Compacted, with a Config.Log, says the entries at or below it are
	// left on disk; it must not exceed Commit.
	Compacted Slot
	// Truncated says the entries at or below it are gone from the log
	// altogether: a snapshot the node keeps covers them. It must not exceed
	// Commit, and the replica must be restarted with applied at least
	// Truncated (the state machine restored from that snapshot).
	Truncated Slot
}
