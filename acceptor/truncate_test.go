package acceptor

import (
	"errors"
	"testing"

	"github.com/paxosd/paxosd/paxos"
)

// diskLog is a LogReader over a map, holes and all.
type diskLog map[paxos.Slot]paxos.Entry

func (d diskLog) Entries(from, to paxos.Slot, maxBytes int) ([]paxos.Entry, error) {
	var out []paxos.Entry
	for s := from; s <= to; s++ {
		if e, ok := d[s]; ok {
			out = append(out, e)
		}
	}
	return out, nil
}

// A candidate whose Phase 1 starts at or below the truncated log gets no
// Promise: the acceptor could not report the values chosen there, and a
// Promise without them would let the candidate fill those slots with
// no-ops. Above the truncation point it promises as usual.
func TestPrepareBelowTruncatedLogIsNotPromised(t *testing.T) {
	disk := diskLog{}
	for s := paxos.Slot(1); s <= 10; s++ {
		disk[s] = entry(s, b(1, 1), "v")
	}
	a := New(2, paxos.State{Promised: b(1, 1), Commit: 10, Compacted: 10}, disk)
	for s := paxos.Slot(1); s <= 6; s++ {
		delete(disk, s)
	}
	a.Truncate(6)
	if m := a.Step(paxos.Message{Type: paxos.MsgPrepare, From: 3, To: 2, Ballot: b(2, 3), Slot: 5}, 10); m.Type != 0 {
		t.Fatalf("Prepare from slot 5 with the log truncated to 6 answered %s, want no reply", m)
	}
	if !a.Promised().Less(b(2, 3)) {
		t.Fatalf("the unanswered Prepare raised the promise to %s", a.Promised())
	}
	m := a.Step(paxos.Message{Type: paxos.MsgPrepare, From: 3, To: 2, Ballot: b(2, 3), Slot: 7}, 10)
	if m.Type != paxos.MsgPromise || len(m.Entries) != 4 || m.Entries[0].Slot != 7 {
		t.Fatalf("Prepare from slot 7 answered %s, want a Promise with slots 7..10", m)
	}
	if _, ok := a.Entry(6); ok {
		t.Error("Entry(6) found a truncated slot")
	}
	if got := a.EntriesRange(3, 10, 1<<20); got != nil {
		t.Errorf("EntriesRange from a truncated slot = %v, want nil (the leader sends a snapshot)", slotsOf(got))
	}
}

// A read of the compacted log that comes back with a hole (a truncation
// racing the read) is an error, never a Promise with a slot missing.
func TestPromiseWithHoleInDiskReadIsNotSent(t *testing.T) {
	disk := diskLog{}
	for s := paxos.Slot(1); s <= 10; s++ {
		disk[s] = entry(s, b(1, 1), "v")
	}
	a := New(2, paxos.State{Commit: 10, Compacted: 10}, disk)
	delete(disk, 4) // deleted on disk; the acceptor not yet told
	if m := a.Step(paxos.Message{Type: paxos.MsgPrepare, From: 3, To: 2, Ballot: b(2, 3), Slot: 2}, 10); m.Type != 0 {
		t.Fatalf("Prepare over a hole answered %s, want no reply", m)
	}
	if _, err := a.readDisk(2, 10, 0); !errors.Is(err, errLogGap) {
		t.Fatalf("readDisk over a hole: err = %v, want errLogGap", err)
	}
	if _, ok := a.Entry(4); ok {
		t.Error("Entry(4) found a slot missing on disk")
	}
}

// Restore drops everything at or below the snapshot's slot, pending writes
// included, and keeps the votes above it.
func TestRestoreKeepsEntriesAboveSnapshot(t *testing.T) {
	a := New(2, paxos.State{}, diskLog{})
	a.Step(paxos.Message{Type: paxos.MsgAccept, From: 1, To: 2, Ballot: b(1, 1), Entries: []paxos.Entry{
		entry(3, paxos.Ballot{}, "a"), entry(8, paxos.Ballot{}, "b"), entry(12, paxos.Ballot{}, "c"),
	}}, 0)
	a.Restore(10)
	_, pending := a.TakePersist()
	if got := slotsOf(pending); len(got) != 1 || got[0] != 12 {
		t.Fatalf("pending writes after Restore(10) = %v, want [12]", got)
	}
	if _, ok := a.Entry(3); ok {
		t.Error("slot 3 survived Restore(10)")
	}
	if e, ok := a.Entry(12); !ok || e.Ballot != b(1, 1) {
		t.Errorf("slot 12 = %v %v, want the accepted entry", e, ok)
	}
	if a.Truncated() != 10 || a.Compacted() != 10 || a.MaxSlot() != 12 {
		t.Errorf("truncated %d compacted %d max %d, want 10 10 12", a.Truncated(), a.Compacted(), a.MaxSlot())
	}
	// An Accept for a restored slot is not voted on: it is chosen.
	m := a.Step(paxos.Message{Type: paxos.MsgAccept, From: 1, To: 2, Ballot: b(2, 1), Entries: []paxos.Entry{entry(9, paxos.Ballot{}, "x")}}, 10)
	if m.Type != paxos.MsgAccepted || len(m.Slots) != 0 {
		t.Errorf("Accept for restored slot 9 = %s, want an Accepted without slots", m)
	}
}
