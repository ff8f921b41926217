package paxos

// Persist is the durable state a Ready asks the driver to write, in one
// atomic, synced batch.
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

// Ready is the work the protocol core hands to its driver. The core sorts
// its messages by what they depend on, so that every driver (the node, the
// simulations) obeys the same send-before-sync rule (as etcd's raft keeps
// msgs apart from msgsAfterAppend). The driver must:
//
//  1. write Persist durably (one batch, one sync), in order after the
//     Persists of earlier Readys; it may do so asynchronously;
//  2. send Messages at once: they promise nothing, so they may leave
//     before Persist is durable (the leader's Accepts go out while its own
//     copy is still being synced);
//  3. send AfterPersist only once this Ready's Persist AND every earlier
//     one are durable — not only this Ready's: a Promise answering a
//     repeated Prepare writes nothing new, but rests on a promise that may
//     still be syncing;
//  4. apply Decided, in order, to the state machine (a chosen value is a
//     fact, whether or not this node has synced it yet).
//
// A message To the node itself is stepped back into it (AfterPersist ones
// once durable, like the others).
type Ready struct {
	Persist Persist
	// Messages may leave at once.
	Messages []Message
	// AfterPersist are the messages that report or rely on durable state:
	// Promise and Accepted (an acceptor's vote), and Prepare (a candidate
	// may campaign under a ballot only once its own promise of that ballot
	// is on disk, so that a restart never reuses a ballot an earlier
	// incarnation campaigned with).
	AfterPersist []Message
	// Decided are newly chosen slots, contiguous and in slot order,
	// following every slot delivered by earlier Readys.
	Decided []Entry
}

// IsEmpty reports whether the Ready holds no work.
func (r Ready) IsEmpty() bool {
	return r.Persist.IsEmpty() && len(r.Messages) == 0 && len(r.AfterPersist) == 0 && len(r.Decided) == 0
}

// NeedsPersist reports whether m may be sent only after the writes that
// precede it are durable (see Ready.AfterPersist).
func NeedsPersist(t MsgType) bool {
	return t == MsgPromise || t == MsgAccepted || t == MsgPrepare
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
