package acceptor

import (
	"reflect"
	"testing"

	"github.com/paxosd/paxosd/paxos"
)

// budgetDisk is a LogReader over a map that honours maxBytes as the WAL
// does: it stops after maxBytes of payload, returning at least one entry.
type budgetDisk map[paxos.Slot]paxos.Entry

func (d budgetDisk) Entries(from, to paxos.Slot, maxBytes int) ([]paxos.Entry, error) {
	var out []paxos.Entry
	n := 0
	for s := from; s <= to; s++ {
		e, ok := d[s]
		if !ok {
			continue
		}
		if maxBytes > 0 && len(out) > 0 && n+e.WireBytes() > maxBytes {
			break
		}
		n += e.WireBytes()
		out = append(out, e)
	}
	return out, nil
}

func bigEntry(slot paxos.Slot, bal paxos.Ballot) paxos.Entry {
	return paxos.Entry{Slot: slot, Ballot: bal, Value: paxos.Value{Kind: paxos.ValueBatch, Cmds: [][]byte{make([]byte, 100)}}}
}

// A Promise to a proposer that takes pages (More on the Prepare) stops
// after the page budget, at least one entry, whether the entries come from
// disk (compacted) or memory; following the pages from the slot after each
// one's last entry reports every entry exactly once, and only the last
// page says it is complete. A Prepare without More is answered whole.
func TestPromiseInPages(t *testing.T) {
	disk := budgetDisk{}
	var mem []paxos.Entry
	for s := paxos.Slot(1); s <= 20; s++ {
		e := bigEntry(s, b(1, 1))
		if s <= 8 {
			disk[s] = e
		} else if s != 13 { // a hole above the watermark: a slot never accepted here
			mem = append(mem, e)
		}
	}
	a := New(2, paxos.State{Promised: b(1, 1), Commit: 8, Compacted: 8, Entries: mem}, disk)
	per := bigEntry(1, b(1, 1)).WireBytes()
	a.SetPageBytes(3*per + per/2) // three entries a page
	var got []paxos.Slot
	from, pages := paxos.Slot(3), 0
	for {
		m := a.Step(paxos.Message{Type: paxos.MsgPrepare, From: 3, To: 2, Ballot: b(2, 3), Slot: from, More: true}, 8)
		if m.Type != paxos.MsgPromise || m.Slot != from {
			t.Fatalf("page %d: reply %s, want a Promise from slot %d", pages, m, from)
		}
		pages++
		if len(m.Entries) > 3 {
			t.Fatalf("page %d holds %d entries, over the budget of 3", pages, len(m.Entries))
		}
		got = append(got, slotsOf(m.Entries)...)
		if !m.More {
			break
		}
		from = m.Entries[len(m.Entries)-1].Slot + 1
		if pages > 20 {
			t.Fatal("pages never end")
		}
	}
	want := []paxos.Slot{3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 15, 16, 17, 18, 19, 20}
	if !reflect.DeepEqual(got, want) || pages != 6 {
		t.Fatalf("pages reported %v in %d pages, want %v in 6", got, pages, want)
	}
	whole := a.Step(paxos.Message{Type: paxos.MsgPrepare, From: 3, To: 2, Ballot: b(2, 3), Slot: 3}, 8)
	if whole.More || !reflect.DeepEqual(slotsOf(whole.Entries), want) {
		t.Errorf("a Prepare without More got %v (more=%v), want all of %v", slotsOf(whole.Entries), whole.More, want)
	}
}

// A resent Accept (same slot, same ballot) is voted for again but not
// written again: the leader of a ballot proposes one value per slot, and a
// slow disk must not be fed the same writes over and over. A higher
// ballot's Accept is written.
func TestResentAcceptIsNotRewritten(t *testing.T) {
	a := New(2, paxos.State{}, nil)
	accept := func(bal paxos.Ballot, v string) paxos.Message {
		return a.Step(paxos.Message{Type: paxos.MsgAccept, From: 1, To: 2, Ballot: bal, Entries: []paxos.Entry{entry(4, bal, v)}}, 0)
	}
	if m := accept(b(1, 1), "x"); m.Type != paxos.MsgAccepted {
		t.Fatalf("first Accept answered %s", m)
	}
	if _, es := a.TakePersist(); len(es) != 1 {
		t.Fatalf("first Accept wrote %v, want the entry", es)
	}
	m := accept(b(1, 1), "x")
	if m.Type != paxos.MsgAccepted || !reflect.DeepEqual(m.Slots, []paxos.Slot{4}) {
		t.Fatalf("resent Accept answered %s, want Accepted slots=[4]", m)
	}
	if p, es := a.TakePersist(); len(es) != 0 || !p.IsZero() {
		t.Errorf("resent Accept wrote %v (promise %s), want nothing", es, p)
	}
	accept(b(2, 1), "y")
	if _, es := a.TakePersist(); len(es) != 1 || es[0].Ballot != b(2, 1) {
		t.Errorf("Accept at a higher ballot wrote %v, want the new entry", es)
	}
}
