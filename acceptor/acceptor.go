package acceptor

import (
	"errors"
	"fmt"
	"sort"

	"github.com/paxosd/paxosd/paxos"
)

// Acceptor is one node's acceptor. It is not safe for concurrent use.
type Acceptor struct {
	id       paxos.NodeID
	promised paxos.Ballot
	log      map[paxos.Slot]paxos.Entry
	maxSlot  paxos.Slot
	// compacted: entries at or below it were dropped from memory (they are
	// chosen, durable, and readable through disk).
	compacted paxos.Slot
	// truncated: entries at or below it are gone from disk too, covered by
	// the node's snapshot. Invariant: truncated <= compacted.
	truncated paxos.Slot
	disk      paxos.LogReader
	// pageBytes bounds the entries (Entry.WireBytes) of one Promise page
	// when the proposer takes pages; 0: no bound.
	pageBytes int

	// pending holds the writes made since the last TakePersist.
	pendingPromised bool
	pendingEntries  []paxos.Entry
}

// New returns an acceptor resuming from the durable state st. disk, if not
// nil, reads back entries that Compact drops from memory; st.Entries then
// need only hold the entries above st.Compacted.
func New(id paxos.NodeID, st paxos.State, disk paxos.LogReader) *Acceptor {
	a := &Acceptor{id: id, promised: st.Promised, log: make(map[paxos.Slot]paxos.Entry, len(st.Entries)), disk: disk}
	a.truncated, a.compacted, a.maxSlot = st.Truncated, st.Truncated, st.Truncated
	if disk != nil && st.Compacted > a.compacted {
		a.compacted = st.Compacted
		a.maxSlot = st.Compacted
	}
	for _, e := range st.Entries {
		a.log[e.Slot] = e
		if e.Slot > a.maxSlot {
			a.maxSlot = e.Slot
		}
	}
	return a
}

// SetPageBytes bounds a Promise page (see paxos.MsgPromise) to n bytes of
// entries, at least one entry.
func (a *Acceptor) SetPageBytes(n int) { a.pageBytes = n }

// Promised returns the highest ballot promised.
func (a *Acceptor) Promised() paxos.Ballot { return a.promised }

// MaxSlot returns the highest slot with an accepted entry.
func (a *Acceptor) MaxSlot() paxos.Slot { return a.maxSlot }

// Entry returns the entry accepted at slot, if any (reading a compacted
// one back from disk).
func (a *Acceptor) Entry(slot paxos.Slot) (paxos.Entry, bool) {
	if slot <= a.truncated {
		return paxos.Entry{}, false
	}
	if slot <= a.compacted {
		es, err := a.readDisk(slot, slot, 0)
		if err != nil {
			return paxos.Entry{}, false
		}
		return es[0], true
	}
	e, ok := a.log[slot]
	return e, ok
}

// Compact drops the entries at or below upTo from memory. The caller
// promises they are chosen, durable, and readable through the LogReader.
func (a *Acceptor) Compact(upTo paxos.Slot) {
	if a.disk == nil {
		return
	}
	a.forget(upTo)
}

// forget drops the entries at or below upTo from memory.
func (a *Acceptor) forget(upTo paxos.Slot) {
	if upTo <= a.compacted {
		return
	}
	for s := a.compacted + 1; s <= upTo; s++ {
		delete(a.log, s)
	}
	a.compacted = upTo
	if a.maxSlot < upTo {
		a.maxSlot = upTo
	}
}

// Compacted returns the highest slot dropped from memory.
func (a *Acceptor) Compacted() paxos.Slot { return a.compacted }

// Truncate records that the entries at or below upTo are gone from disk as
// well. The caller promises a durable snapshot covers them (so they are
// chosen and applied). Nothing is persisted: the caller deleted them.
func (a *Acceptor) Truncate(upTo paxos.Slot) {
	if upTo <= a.truncated {
		return
	}
	a.truncated = upTo
	a.forget(upTo)
}

// Truncated returns the highest slot gone from the log.
func (a *Acceptor) Truncated() paxos.Slot { return a.truncated }

// Restore replaces everything at or below slot with an installed snapshot:
// those slots are chosen and the caller has deleted them from disk. Entries
// above slot stay: they may be votes a leader is counting on.
func (a *Acceptor) Restore(slot paxos.Slot) {
	for s := range a.log {
		if s <= slot {
			delete(a.log, s)
		}
	}
	kept := a.pendingEntries[:0]
	for _, e := range a.pendingEntries {
		if e.Slot > slot {
			kept = append(kept, e)
		}
	}
	a.pendingEntries = kept
	if a.compacted < slot {
		a.compacted = slot
	}
	a.Truncate(slot)
}

// Step handles a Prepare or an Accept addressed to this acceptor and returns
// the reply. commit is the replica's chosen watermark, reported in replies so
// a new leader learns which reported entries are already chosen.
func (a *Acceptor) Step(m paxos.Message, commit paxos.Slot) paxos.Message {
	switch m.Type {
	case paxos.MsgPrepare:
		return a.stepPrepare(m, commit)
	case paxos.MsgAccept:
		return a.stepAccept(m, commit)
	}
	panic("acceptor: Step called with " + m.Type.String())
}

// stepPrepare is Phase 1b. A Prepare equal to the promised ballot is
// answered again (a retransmission from the same proposer, or the request
// for the next page of the Promise); only a lower one is refused. A
// proposer that takes pages (m.More) gets at most pageBytes of entries.
func (a *Acceptor) stepPrepare(m paxos.Message, commit paxos.Slot) paxos.Message {
	if m.Ballot.Less(a.promised) {
		return a.nack(m, a.promised)
	}
	budget := 0
	if m.More {
		budget = a.pageBytes
	}
	entries, more, err := a.entriesFrom(m.Slot, budget)
	if err != nil {
		// A Promise must report every accepted entry at or above from; one
		// that cannot be read back is not sent. The candidate tries again.
		return paxos.Message{}
	}
	a.promise(m.Ballot)
	return paxos.Message{
		Type:    paxos.MsgPromise,
		From:    a.id,
		To:      m.From,
		Ballot:  m.Ballot,
		Slot:    m.Slot,
		Commit:  commit,
		Entries: entries,
		More:    more,
	}
}

// stepAccept is Phase 2b. Accepting ballot b implies promising b. An entry
// already held at a higher ballot (learned as chosen from a later leader) is
// not replaced; the stale proposer is told the higher ballot and steps down.
func (a *Acceptor) stepAccept(m paxos.Message, commit paxos.Slot) paxos.Message {
	if m.Ballot.Less(a.promised) {
		return a.nack(m, a.promised)
	}
	a.promise(m.Ballot)
	slots := make([]paxos.Slot, 0, len(m.Entries))
	for _, e := range m.Entries {
		if e.Slot <= a.compacted {
			// Chosen long ago and kept only on disk: nothing to accept, and
			// no vote is needed for a chosen slot.
			continue
		}
		old, ok := a.log[e.Slot]
		if ok && m.Ballot.Less(old.Ballot) {
			return a.nack(m, old.Ballot)
		}
		if !ok || old.Ballot != m.Ballot {
			// The leader of a ballot proposes one value per slot, so an
			// entry held at this ballot already is this one (a resent
			// Accept): writing it again would only load the disk. Its vote
			// still waits for that earlier write to be durable (the driver
			// holds AfterPersist messages behind every write before them).
			a.store(paxos.Entry{Slot: e.Slot, Ballot: m.Ballot, Value: e.Value})
		}
		slots = append(slots, e.Slot)
	}
	return paxos.Message{
		Type:   paxos.MsgAccepted,
		From:   a.id,
		To:     m.From,
		Ballot: m.Ballot,
		Commit: commit,
		Slots:  slots,
	}
}

// Learn records e, a chosen value learned from another node (catch-up or a
// Promise), unless this acceptor already holds the slot at a ballot at least
// as high — Paxos guarantees such an entry holds the same value.
func (a *Acceptor) Learn(e paxos.Entry) {
	if e.Slot <= a.compacted {
		return
	}
	if old, ok := a.log[e.Slot]; ok && !old.Ballot.Less(e.Ballot) {
		return
	}
	a.store(e)
}

// Raise promises b if it is above the current promise (see
// replica.RaisePromise).
func (a *Acceptor) Raise(b paxos.Ballot) { a.promise(b) }

// TakePersist returns the writes made since the last call and forgets them.
func (a *Acceptor) TakePersist() (promised paxos.Ballot, entries []paxos.Entry) {
	if a.pendingPromised {
		promised = a.promised
	}
	entries = a.pendingEntries
	a.pendingPromised, a.pendingEntries = false, nil
	return promised, entries
}

func (a *Acceptor) promise(b paxos.Ballot) {
	if a.promised.Less(b) {
		a.promised = b
		a.pendingPromised = true
	}
}

func (a *Acceptor) store(e paxos.Entry) {
	a.log[e.Slot] = e
	if e.Slot > a.maxSlot {
		a.maxSlot = e.Slot
	}
	a.pendingEntries = append(a.pendingEntries, e)
}

func (a *Acceptor) nack(m paxos.Message, b paxos.Ballot) paxos.Message {
	return paxos.Message{Type: paxos.MsgNack, From: a.id, To: m.From, Ballot: b, Slot: m.Slot}
}

// entriesFrom returns the accepted entries at or above from, in slot
// order: all of them, or with budget > 0 a contiguous page of at most
// budget bytes (Entry.WireBytes; at least one entry), more reporting that
// entries above the page's last remain. Phase 1 must cover all of them,
// not one slot: a leader that skipped a slot accepted by a minority could
// choose a second value for it.
func (a *Acceptor) entriesFrom(from paxos.Slot, budget int) (out []paxos.Entry, more bool, err error) {
	if from <= a.truncated {
		// The chosen values there are known only as a snapshot. A
		// candidate this far behind must not lead: it could fill those
		// slots with no-ops.
		return nil, false, fmt.Errorf("%w: slot %d (truncated up to %d)", ErrTruncated, from, a.truncated)
	}
	used := 0
	full := func(e paxos.Entry) bool {
		if budget <= 0 || len(out) == 0 || used+e.WireBytes() <= budget {
			used += e.WireBytes()
			return false
		}
		return true
	}
	if from <= a.compacted {
		// Chosen entries kept only on disk: read them a page at a time
		// (the disk counts payload bytes, a lower bound of WireBytes).
		old, err := a.readDisk(from, a.compacted, max(budget, 0))
		if err != nil {
			return nil, false, err
		}
		for _, e := range old {
			if full(e) {
				return out, true, nil
			}
			out = append(out, e)
		}
		if last := out[len(out)-1].Slot; last < a.compacted {
			return out, true, nil
		}
		from = a.compacted + 1
	}
	if from > a.maxSlot {
		return out, false, nil
	}
	var mem []paxos.Entry
	if int(a.maxSlot-from) < len(a.log) {
		for s := from; s <= a.maxSlot; s++ {
			if e, ok := a.log[s]; ok {
				mem = append(mem, e)
			}
		}
	} else {
		for s, e := range a.log {
			if s >= from {
				mem = append(mem, e)
			}
		}
		sort.Slice(mem, func(i, j int) bool { return mem[i].Slot < mem[j].Slot })
	}
	for _, e := range mem {
		if full(e) {
			return out, true, nil
		}
		out = append(out, e)
	}
	return out, false, nil
}

// EntriesRange returns the entries from..to in slot order, stopping after
// maxBytes of value payload (always at least one entry if any exists). The
// leader uses it to send chosen values to a follower that is behind.
func (a *Acceptor) EntriesRange(from, to paxos.Slot, maxBytes int) []paxos.Entry {
	if from <= a.truncated {
		return nil // the caller sends the snapshot instead (see Truncated)
	}
	if from <= a.compacted {
		es, err := a.readDisk(from, min(to, a.compacted), maxBytes)
		if err != nil {
			return nil
		}
		return es
	}
	var out []paxos.Entry
	n := 0
	for s := from; s <= to; s++ {
		e, ok := a.log[s]
		if !ok {
			break
		}
		// Counted as on the wire, overhead included: a run of no-ops
		// (a leader padding to a membership change's activation) has
		// almost no payload, and counted by payload a catch-up Decide of
		// thousands of them outgrew the frame limit (the node simulation's
		// seed 5192: dropped, resent, dropped, the follower never caught
		// up).
		if n += e.WireBytes(); len(out) > 0 && n > maxBytes {
			break
		}
		out = append(out, e)
	}
	return out
}

// ErrTruncated is returned for reads of slots that are gone from the log.
var ErrTruncated = errors.New("acceptor: slots truncated below a snapshot")

// errLogGap reports a disk read that came back with a hole or short: every
// slot up to the watermark is in the log unless truncated, so a hole means
// a truncation raced the read (or the disk lost something). Treating it as
// an error matters: a Promise that silently skipped a chosen slot would let
// the candidate fill it with another value.
var errLogGap = errors.New("acceptor: log read back with a gap")

// readDisk reads from..to (up to maxBytes; at least one entry) and checks
// that the entries are contiguous from from.
func (a *Acceptor) readDisk(from, to paxos.Slot, maxBytes int) ([]paxos.Entry, error) {
	es, err := a.disk.Entries(from, to, maxBytes)
	if err != nil {
		return nil, err
	}
	if len(es) == 0 || (maxBytes == 0 && len(es) != int(to-from+1)) {
		return nil, fmt.Errorf("%w: %d of slots %d..%d", errLogGap, len(es), from, to)
	}
	for i, e := range es {
		if e.Slot != from+paxos.Slot(i) {
			return nil, fmt.Errorf("%w: slot %d where %d belongs", errLogGap, e.Slot, from+paxos.Slot(i))
		}
	}
	return es, nil
}
