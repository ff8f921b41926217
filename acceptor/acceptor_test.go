package acceptor

import (
	"reflect"
	"testing"

	"github.com/paxosd/paxosd/paxos"
)

// The references are to Lamport, "Paxos Made Simple" (2001).

func b(round uint64, node paxos.NodeID) paxos.Ballot { return paxos.Ballot{Round: round, Node: node} }

func val(s string) paxos.Value { return paxos.Value{Kind: paxos.ValueBatch, Cmds: [][]byte{[]byte(s)}} }

func entry(slot paxos.Slot, bal paxos.Ballot, s string) paxos.Entry {
	return paxos.Entry{Slot: slot, Ballot: bal, Value: val(s)}
}

func slotsOf(es []paxos.Entry) []paxos.Slot {
	var out []paxos.Slot
	for _, e := range es {
		out = append(out, e.Slot)
	}
	return out
}

// Reference: §2.2 P1a and Phase 1(b). An acceptor answers a prepare request
// numbered above anything it promised, and promises not to accept anything
// lower; a lower one is refused (the Nack names the promise, so the proposer
// can pick a higher number, §2.4). An equal one is a retransmission by the
// same proposer and is answered again. The promise is written to stable
// storage (§2.5: an acceptor records its response before sending it) only
// when it rises.
func TestPrepareAgainstPromise(t *testing.T) {
	for _, tc := range []struct {
		name        string
		promised    paxos.Ballot
		prepare     paxos.Ballot
		wantType    paxos.MsgType
		wantBallot  paxos.Ballot
		wantPromise paxos.Ballot // after Step
		wantPersist paxos.Ballot // from TakePersist; zero means nothing
	}{
		{"above", b(1, 1), b(2, 2), paxos.MsgPromise, b(2, 2), b(2, 2), b(2, 2)},
		{"equal", b(2, 2), b(2, 2), paxos.MsgPromise, b(2, 2), b(2, 2), paxos.Ballot{}},
		{"below", b(2, 2), b(1, 3), paxos.MsgNack, b(2, 2), b(2, 2), paxos.Ballot{}},
		{"same round lower node", b(2, 2), b(2, 1), paxos.MsgNack, b(2, 2), b(2, 2), paxos.Ballot{}},
		{"first ever", paxos.Ballot{}, b(1, 3), paxos.MsgPromise, b(1, 3), b(1, 3), b(1, 3)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := New(1, paxos.State{Promised: tc.promised}, nil)
			m := a.Step(paxos.Message{Type: paxos.MsgPrepare, From: 3, To: 1, Ballot: tc.prepare, Slot: 4}, 3)
			if m.Type != tc.wantType || m.Ballot != tc.wantBallot || m.From != 1 || m.To != 3 || m.Slot != 4 {
				t.Fatalf("reply = %s, want %s with ballot %s", m, tc.wantType, tc.wantBallot)
			}
			if got := a.Promised(); got != tc.wantPromise {
				t.Errorf("Promised() = %s, want %s", got, tc.wantPromise)
			}
			if got, _ := a.TakePersist(); got != tc.wantPersist {
				t.Errorf("persisted promise = %s, want %s", got, tc.wantPersist)
			}
		})
	}
}

// Reference: §2.2 Phase 1(b) and §3. In Multi-Paxos one prepare covers
// every instance from Slot on, so the Promise must report each accepted
// proposal at or above Slot — all of them, in slot order, holes included —
// or the new leader could pick a second value for a slot a minority
// accepted.
func TestPromiseReportsAcceptedEntriesFromSlot(t *testing.T) {
	for _, tc := range []struct {
		name  string
		slots []paxos.Slot
		from  paxos.Slot
		want  []paxos.Slot
	}{
		{"non-contiguous", []paxos.Slot{2, 4, 9}, 3, []paxos.Slot{4, 9}},
		{"all", []paxos.Slot{2, 4, 9}, 1, []paxos.Slot{2, 4, 9}},
		{"from exactly an entry", []paxos.Slot{2, 4, 9}, 4, []paxos.Slot{4, 9}},
		{"dense", []paxos.Slot{3, 4, 5, 7}, 4, []paxos.Slot{4, 5, 7}},
		{"far apart", []paxos.Slot{1000, 1, 50}, 1, []paxos.Slot{1, 50, 1000}},
		{"none at or above", []paxos.Slot{2, 4, 9}, 10, nil},
		{"empty log", nil, 1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := paxos.State{Promised: b(1, 1)}
			for _, s := range tc.slots {
				st.Entries = append(st.Entries, entry(s, b(1, 1), "v"))
			}
			a := New(1, st, nil)
			m := a.Step(paxos.Message{Type: paxos.MsgPrepare, From: 2, To: 1, Ballot: b(2, 2), Slot: tc.from}, 7)
			if m.Type != paxos.MsgPromise || m.Commit != 7 {
				t.Fatalf("reply = %s, want a Promise with commit=7", m)
			}
			if got := slotsOf(m.Entries); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("reported slots %v, want %v", got, tc.want)
			}
		})
	}
}

// Reference: §2.2 P1a and Phase 2(b). An acceptor accepts a proposal unless
// it promised a higher number. Accepting ballot n also promises n, so a
// promise raised by an Accept is persisted too; the stored entry carries the
// Accept's ballot, whatever ballot the entry field says.
func TestAcceptAgainstPromise(t *testing.T) {
	for _, tc := range []struct {
		name         string
		promised     paxos.Ballot
		accept       paxos.Ballot
		wantType     paxos.MsgType
		wantBallot   paxos.Ballot
		wantPromised paxos.Ballot // persisted; zero means nothing
		wantStored   bool
	}{
		{"at promise", b(2, 2), b(2, 2), paxos.MsgAccepted, b(2, 2), paxos.Ballot{}, true},
		{"above promise", b(1, 1), b(2, 2), paxos.MsgAccepted, b(2, 2), b(2, 2), true},
		{"below promise", b(2, 2), b(1, 1), paxos.MsgNack, b(2, 2), paxos.Ballot{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := New(3, paxos.State{Promised: tc.promised}, nil)
			m := a.Step(paxos.Message{Type: paxos.MsgAccept, From: 2, To: 3, Ballot: tc.accept,
				Entries: []paxos.Entry{entry(5, b(9, 9), "x")}}, 4)
			if m.Type != tc.wantType || m.Ballot != tc.wantBallot || m.To != 2 {
				t.Fatalf("reply = %s, want %s with ballot %s", m, tc.wantType, tc.wantBallot)
			}
			promised, entries := a.TakePersist()
			if promised != tc.wantPromised {
				t.Errorf("persisted promise = %s, want %s", promised, tc.wantPromised)
			}
			e, ok := a.Entry(5)
			if ok != tc.wantStored || (len(entries) == 1) != tc.wantStored {
				t.Fatalf("stored=%v persisted=%v, want stored=%v", ok, entries, tc.wantStored)
			}
			if !ok {
				return
			}
			want := entry(5, tc.accept, "x")
			if !reflect.DeepEqual(e, want) || !reflect.DeepEqual(entries[0], want) {
				t.Errorf("entry = %s, persisted %s, want %s", e, entries[0], want)
			}
			if !reflect.DeepEqual(m.Slots, []paxos.Slot{5}) || m.Commit != 4 {
				t.Errorf("Accepted = %s, want slots=[5] commit=4", m)
			}
		})
	}
}

// Reference: §2.2 P2c. An entry held at a higher ballot (a chosen value
// learned from a later leader) is never replaced by a lower-numbered
// proposal; the stale proposer is Nacked with that higher ballot so it
// steps down (§2.4).
func TestAcceptBelowHeldEntryIsNackedWithItsBallot(t *testing.T) {
	held := entry(3, b(3, 3), "chosen")
	a := New(1, paxos.State{Promised: b(1, 1), Entries: []paxos.Entry{held}}, nil)
	m := a.Step(paxos.Message{Type: paxos.MsgAccept, From: 2, To: 1, Ballot: b(2, 2),
		Entries: []paxos.Entry{entry(3, b(2, 2), "stale")}}, 0)
	if m.Type != paxos.MsgNack || m.Ballot != b(3, 3) {
		t.Fatalf("reply = %s, want Nack with ballot 3.3", m)
	}
	if e, _ := a.Entry(3); !reflect.DeepEqual(e, held) {
		t.Errorf("entry = %s, want it kept as %s", e, held)
	}
}

// Reference: §2.3 and §2.2 P2c. A learned (chosen) value is recorded, but a
// slot already held at a ballot at least as high keeps its entry: by P2c it
// holds the same value, and lowering its ballot would let a lower-numbered
// Accept overwrite it. Learning never touches the promise.
func TestLearnDoesNotLowerEntryBallot(t *testing.T) {
	a := New(1, paxos.State{Promised: b(4, 4), Entries: []paxos.Entry{entry(1, b(3, 3), "a")}}, nil)
	a.Learn(entry(1, b(2, 2), "a"))
	a.Learn(entry(1, b(3, 3), "a"))
	if e, _ := a.Entry(1); e.Ballot != b(3, 3) {
		t.Errorf("entry ballot = %s after learning lower/equal, want 3.3", e.Ballot)
	}
	if p, es := a.TakePersist(); !p.IsZero() || len(es) != 0 {
		t.Errorf("persist = %s %v, want nothing", p, es)
	}

	a.Learn(entry(2, b(1, 1), "b"))
	a.Learn(entry(1, b(5, 5), "a"))
	p, es := a.TakePersist()
	if !p.IsZero() || !reflect.DeepEqual(slotsOf(es), []paxos.Slot{2, 1}) {
		t.Errorf("persist = %s %v, want entries for slots 2 and 1 only", p, es)
	}
	if e, _ := a.Entry(1); e.Ballot != b(5, 5) {
		t.Errorf("entry ballot = %s after learning 5.5, want 5.5", e.Ballot)
	}
	if a.Promised() != b(4, 4) {
		t.Errorf("Promised() = %s, want 4.4", a.Promised())
	}
}

// Reference: §2.2 (last paragraph) and §2.5. An acceptor must remember its
// promise and accepted proposals across a restart: an acceptor rebuilt from
// what TakePersist handed out behaves like the one that crashed.
func TestRestartFromStateKeepsPromiseAndEntries(t *testing.T) {
	a := New(1, paxos.State{}, nil)
	a.Step(paxos.Message{Type: paxos.MsgPrepare, From: 2, To: 1, Ballot: b(2, 2), Slot: 1}, 0)
	a.Step(paxos.Message{Type: paxos.MsgAccept, From: 2, To: 1, Ballot: b(2, 2),
		Entries: []paxos.Entry{entry(1, paxos.Ballot{}, "x"), entry(3, paxos.Ballot{}, "y")}}, 0)
	promised, entries := a.TakePersist()
	st := paxos.State{Promised: promised, Entries: entries}

	r := New(1, st, nil)
	if r.Promised() != b(2, 2) || r.MaxSlot() != 3 {
		t.Fatalf("restarted: promised %s maxSlot %d, want 2.2 and 3", r.Promised(), r.MaxSlot())
	}
	if m := r.Step(paxos.Message{Type: paxos.MsgPrepare, From: 3, To: 1, Ballot: b(1, 3), Slot: 1}, 0); m.Type != paxos.MsgNack {
		t.Errorf("restarted acceptor answered a lower Prepare with %s", m)
	}
	m := r.Step(paxos.Message{Type: paxos.MsgPrepare, From: 3, To: 1, Ballot: b(3, 3), Slot: 1}, 0)
	want := []paxos.Entry{entry(1, b(2, 2), "x"), entry(3, b(2, 2), "y")}
	if !reflect.DeepEqual(m.Entries, want) {
		t.Errorf("restarted Promise reports %v, want %v", m.Entries, want)
	}
}

// Reference: §3 (a leader brings a lagging server up to date with chosen
// commands). EntriesRange returns a contiguous run in slot order, stops at
// the first missing slot and at the byte limit, and always returns at least
// one entry when the first slot is held.
func TestEntriesRange(t *testing.T) {
	var st paxos.State
	for _, s := range []paxos.Slot{1, 2, 3, 4, 5, 7} { // hole at 6
		st.Entries = append(st.Entries, entry(s, b(1, 1), "0123456789")) // 10 bytes each
	}
	a := New(1, st, nil)
	for _, tc := range []struct {
		name     string
		from, to paxos.Slot
		maxBytes int
		want     []paxos.Slot
	}{
		{"whole range", 1, 5, 1000, []paxos.Slot{1, 2, 3, 4, 5}},
		{"stops at hole", 1, 7, 1000, []paxos.Slot{1, 2, 3, 4, 5}},
		// Counted as on the wire: 58 bytes each (40 per entry, 8 per
		// command), so that a run of no-ops is bounded too.
		{"byte limit", 1, 5, 2 * 58, []paxos.Slot{1, 2}},
		{"byte limit, one short", 1, 5, 2*58 - 1, []paxos.Slot{1}},
		{"at least one", 2, 5, 5, []paxos.Slot{2}},
		{"single slot", 3, 3, 1000, []paxos.Slot{3}},
		{"starts in hole", 6, 7, 1000, nil},
		{"past the log", 8, 9, 1000, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := slotsOf(a.EntriesRange(tc.from, tc.to, tc.maxBytes)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("EntriesRange(%d, %d, %d) = %v, want %v", tc.from, tc.to, tc.maxBytes, got, tc.want)
			}
		})
	}
}
