package statemachine

import (
	"errors"
	"testing"

	"github.com/paxosd/paxosd/paxos"
)

// as gives c a client id, sequence number and acknowledgement.
func fromClient(client, seq, acked uint64, c Command) Command {
	c.ClientID, c.Seq, c.AckedBelow = client, seq, acked
	return c
}

func TestDedupRetry(t *testing.T) {
	runSMSteps(t, []smStep{
		{fromClient(1, 1, 0, putCmd("a", "1")), Result{Revision: 1}},
		{fromClient(1, 1, 0, putCmd("a", "1")), Result{Revision: 1}}, // retry: same answer, no new revision
		{fromClient(1, 2, 0, putCmd("a", "2")), Result{Revision: 2, Found: true, KV: mkKV("a", "1", 1, 1, 1)}},
		{fromClient(1, 1, 0, putCmd("a", "1")), Result{Revision: 1}}, // an older retry still finds its answer
		{getCmd("a"), Result{Revision: 2, Found: true, KV: mkKV("a", "2", 1, 2, 2)}},
		// Another client's seq 1 is a different request.
		{fromClient(2, 1, 0, delCmd("a")), Result{Revision: 3, Found: true, KV: mkKV("a", "2", 1, 2, 2)}},
		{fromClient(2, 1, 0, delCmd("a")), Result{Revision: 3, Found: true, KV: mkKV("a", "2", 1, 2, 2)}},
		// A delete of a missing key is remembered as such.
		{fromClient(2, 2, 0, delCmd("a")), Result{Err: ErrNotFound, Revision: 3}},
		{fromClient(1, 3, 0, putCmd("a", "3")), Result{Revision: 4}},
		{fromClient(2, 2, 0, delCmd("a")), Result{Err: ErrNotFound, Revision: 3}},
	})
}

// TestDedupCAS: a retried cas returns its first answer even though running
// it again would now give another one.
func TestDedupCAS(t *testing.T) {
	runSMSteps(t, []smStep{
		{fromClient(1, 1, 0, casRevCmd("a", 0, "x")), Result{Revision: 1, Succeeded: true}},
		{fromClient(1, 1, 0, casRevCmd("a", 0, "x")), Result{Revision: 1, Succeeded: true}},
		{fromClient(1, 2, 0, casValueCmd("a", "nope", "y")), Result{Revision: 1, Found: true, KV: mkKV("a", "x", 1, 1, 1)}},
		{putCmd("a", "nope"), Result{Revision: 2, Found: true, KV: mkKV("a", "x", 1, 1, 1)}},
		{fromClient(1, 2, 0, casValueCmd("a", "nope", "y")), Result{Revision: 1, Found: true, KV: mkKV("a", "x", 1, 1, 1)}},
	})
}

func TestDedupAckedBelow(t *testing.T) {
	h := runSMSteps(t, []smStep{
		{fromClient(1, 1, 0, putCmd("a", "1")), Result{Revision: 1}},
		{fromClient(1, 2, 0, putCmd("a", "2")), Result{Revision: 2, Found: true, KV: mkKV("a", "1", 1, 1, 1)}},
		{fromClient(1, 3, 2, putCmd("a", "3")), Result{Revision: 3, Found: true, KV: mkKV("a", "2", 1, 2, 2)}},
		// Seq 1 is forgotten: refused, nothing applied.
		{fromClient(1, 1, 0, putCmd("a", "1")), Result{Err: ErrStaleRequest, Revision: 3}},
		// Seq 2 and 3 are still known.
		{fromClient(1, 2, 0, putCmd("a", "2")), Result{Revision: 2, Found: true, KV: mkKV("a", "1", 1, 1, 1)}},
		{fromClient(1, 3, 2, putCmd("a", "3")), Result{Revision: 3, Found: true, KV: mkKV("a", "2", 1, 2, 2)}},
		// A retry may carry a newer ack, up to its own seq.
		{fromClient(1, 3, 3, putCmd("a", "3")), Result{Revision: 3, Found: true, KV: mkKV("a", "2", 1, 2, 2)}},
		{fromClient(1, 2, 0, putCmd("a", "2")), Result{Err: ErrStaleRequest, Revision: 3}},
		// The floor never goes down.
		{fromClient(1, 4, 1, putCmd("b", "1")), Result{Revision: 4}},
		{fromClient(1, 2, 0, putCmd("a", "2")), Result{Err: ErrStaleRequest, Revision: 4}},
		// A read carries acks too, and is never refused as stale.
		{fromClient(1, 5, 5, getCmd("b")), Result{Revision: 4, Found: true, KV: mkKV("b", "1", 4, 4, 1)}},
		{fromClient(1, 4, 1, putCmd("b", "1")), Result{Err: ErrStaleRequest, Revision: 4}},
		{fromClient(1, 1, 0, getCmd("b")), Result{Revision: 4, Found: true, KV: mkKV("b", "1", 4, 4, 1)}},
	})
	e := h.sm.dedup.clients[1]
	if e.floor != 5 || len(e.results) != 0 {
		t.Fatalf("client 1: floor %d, %d results; want 5, 0", e.floor, len(e.results))
	}
}

// TestDedupReads: reads are not stored, so a repeated read sees new data,
// and a read does not add a client to the table.
func TestDedupReads(t *testing.T) {
	h := runSMSteps(t, []smStep{
		{fromClient(1, 1, 0, getCmd("a")), Result{Err: ErrNotFound}},
		{fromClient(1, 2, 0, listCmd("", 0)), Result{}},
		{putCmd("a", "1"), Result{Revision: 1}},
		{fromClient(1, 1, 0, getCmd("a")), Result{Revision: 1, Found: true, KV: mkKV("a", "1", 1, 1, 1)}},
		{fromClient(1, 2, 0, listCmd("", 0)), Result{Revision: 1, KVs: []KV{mkKV("a", "1", 1, 1, 1)}}},
	})
	if len(h.sm.dedup.clients) != 0 {
		t.Fatalf("reads added %d clients", len(h.sm.dedup.clients))
	}
}

// TestDedupClientZero: client id 0 opts out, so the same seq applies twice.
func TestDedupClientZero(t *testing.T) {
	h := runSMSteps(t, []smStep{
		{fromClient(0, 1, 0, putCmd("a", "1")), Result{Revision: 1}},
		{fromClient(0, 1, 0, putCmd("a", "1")), Result{Revision: 2, Found: true, KV: mkKV("a", "1", 1, 1, 1)}},
		{fromClient(0, 0, 9, putCmd("a", "1")), Result{Revision: 3, Found: true, KV: mkKV("a", "1", 1, 2, 2)}}, // acks ignored
	})
	if len(h.sm.dedup.clients) != 0 {
		t.Fatalf("client 0 entered the table")
	}
}

// TestDedupResultsPerClientMax: a client that never acknowledges keeps only
// the newest results; older retries are refused, never applied twice.
func TestDedupResultsPerClientMax(t *testing.T) {
	h := newSMHarness(t, SMOptions{ResultsPerClientMax: 3})
	for seq := uint64(1); seq <= 5; seq++ {
		h.do(fromClient(1, seq, 0, putCmd("a", "v")))
	}
	e := h.sm.dedup.clients[1]
	if e.floor != 3 || len(e.results) != 3 || e.results[0].seq != 3 {
		t.Fatalf("floor %d, %d results from seq %d; want 3, 3, 3", e.floor, len(e.results), e.results[0].seq)
	}
	for seq := uint64(1); seq <= 5; seq++ {
		r := h.do(fromClient(1, seq, 0, putCmd("a", "v")))
		if seq < 3 && !errors.Is(r.Err, ErrStaleRequest) || seq >= 3 && (r.Err != nil || r.Revision != seq) {
			t.Fatalf("retry of seq %d: %s", seq, describeResult(r))
		}
	}
	if h.sm.Revision() != 5 {
		t.Fatalf("revision %d after retries, want 5", h.sm.Revision())
	}
	// Out-of-order arrival: a seq older than all stored ones is stored and
	// then is itself the oldest.
	h2 := newSMHarness(t, SMOptions{ResultsPerClientMax: 2})
	h2.do(fromClient(1, 5, 0, putCmd("a", "v")))
	h2.do(fromClient(1, 6, 0, putCmd("a", "v")))
	h2.do(fromClient(1, 4, 0, putCmd("a", "v"))) // applied (never seen), then forgotten
	if e := h2.sm.dedup.clients[1]; e.floor != 5 || len(e.results) != 2 || h2.sm.Revision() != 3 {
		t.Fatalf("floor %d, %d results, revision %d; want 5, 2, 3", e.floor, len(e.results), h2.sm.Revision())
	}
}

// TestDedupEviction: a full table evicts the client whose last command is
// in the oldest slot, the smaller id among equals; the evicted client's
// retry is applied again, the survivors' are not.
func TestDedupEviction(t *testing.T) {
	sm := NewStateMachine(SMOptions{ClientsMax: 3})
	apply := func(slot paxos.Slot, c Command) Result { return sm.Apply(slot, EncodeCommand(&c)) }
	// Slot 1: clients 9, 5 and 7 (ties on the slot).
	apply(1, fromClient(9, 1, 0, putCmd("a", "9")))
	apply(1, fromClient(5, 1, 0, putCmd("a", "5")))
	apply(1, fromClient(7, 1, 0, putCmd("a", "7")))
	// Slot 2: client 5 reads, which refreshes it. Then client 1 arrives and
	// evicts 7 (slot 1, smaller than 9).
	apply(2, fromClient(5, 2, 0, getCmd("a")))
	apply(2, fromClient(1, 1, 0, putCmd("b", "1")))
	if got := sm.dedup.sortedIDs(); !equalIDs(got, 1, 5, 9) {
		t.Fatalf("clients %v, want [1 5 9]", got)
	}
	// Slot 3: client 2 evicts 9, the last one left in slot 1.
	apply(3, fromClient(2, 1, 0, putCmd("b", "2")))
	if got := sm.dedup.sortedIDs(); !equalIDs(got, 1, 2, 5) {
		t.Fatalf("clients %v, want [1 2 5]", got)
	}
	rev := sm.Revision()
	// Survivor 5's retry is deduplicated.
	if r := apply(4, fromClient(5, 1, 0, putCmd("a", "5"))); r.Revision != 2 || sm.Revision() != rev {
		t.Fatalf("retry of a surviving client applied again: %s", describeResult(r))
	}
	// Evicted 7's retry is applied again (and 7 comes back, evicting 1: in
	// slot 2, older than 2's slot 3 and 5's slot 4).
	if r := apply(5, fromClient(7, 1, 0, putCmd("a", "7"))); r.Revision != rev+1 {
		t.Fatalf("retry of an evicted client: %s, want a new revision %d", describeResult(r), rev+1)
	}
	if got := sm.dedup.sortedIDs(); !equalIDs(got, 2, 5, 7) {
		t.Fatalf("clients %v, want [2 5 7]", got)
	}
	if len(sm.dedup.byAge) != len(sm.dedup.clients) {
		t.Fatalf("heap holds %d clients, map %d", len(sm.dedup.byAge), len(sm.dedup.clients))
	}
}

// TestDedupEvictionDeterministic: the table's contents after many
// evictions depend only on the commands, whatever the map's layout.
func TestDedupEvictionDeterministic(t *testing.T) {
	run := func() (uint64, []uint64) {
		sm := NewStateMachine(SMOptions{ClientsMax: 16})
		g := newCmdGen(42, 200)
		for i := 0; i < 5000; i++ {
			c := g.next(sm.Get)
			sm.Apply(paxos.Slot(1+i/7), EncodeCommand(&c))
		}
		return sm.Hash(), sm.dedup.sortedIDs()
	}
	h1, ids1 := run()
	for i := 0; i < 5; i++ {
		h2, ids2 := run()
		if h1 != h2 || !equalIDs(ids2, ids1...) {
			t.Fatalf("run %d: hash %x clients %v, first run %x %v", i, h2, ids2, h1, ids1)
		}
	}
	if len(ids1) != 16 {
		t.Fatalf("%d clients, want a full table of 16", len(ids1))
	}
}

func equalIDs(got []uint64, want ...uint64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}
