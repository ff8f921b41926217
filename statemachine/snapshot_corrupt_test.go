package statemachine

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// richSnapshotSM returns a small state machine holding some of everything:
// keys, results with errors, sessions renewed and not, a held lock with
// waiters, a lock in its lock-delay, an election with candidates and one
// without a leader, and a KV history with dropped events.
func richSnapshotSM(t testing.TB) *StateMachine {
	h := newSMHarness(t, SMOptions{KVHistoryMax: 4, ElectionHistoryMax: 3, ResultsPerClientMax: 4})
	for i := 0; i < 6; i++ {
		h.do(cs(9, uint64(i+1), putCmd(fmt.Sprint("k", i%4), fmt.Sprint(i))))
	}
	h.do(cs(9, 7, delCmd("k0")))
	h.do(cs(9, 8, delCmd("nope")))                       // ErrNotFound, stored
	h.do(cs(9, 9, casValueCmd("k1", "x", "y")))          // failed cas
	h.do(Command{Op: OpPut, Key: "k9", Value: []byte{}}) // empty, not nil
	for i := 0; i < 4; i++ {
		h.do(openCmd(3000))
	}
	h.do(clockCmd(100))
	h.do(keepCmd(2))
	h.do(cs(1, 1, acquireCmd("l", 1, true, 500)))
	h.do(cs(2, 1, acquireCmd("l", 2, true, 0)))
	h.do(cs(3, 1, acquireCmd("l", 3, true, 0)))
	h.do(cs(4, 1, acquireCmd("l", 4, false, 0))) // ErrLockHeld
	h.do(cs(4, 2, acquireCmd("d", 4, false, 2000)))
	h.do(cs(1, 2, campaignCmd("e", 1, "a")))
	h.do(cs(2, 2, campaignCmd("e", 2, "b")))
	h.do(cs(3, 2, campaignCmd("e", 3, "c")))
	h.do(cs(1, 3, proclaimCmd("e", 1, "a2")))
	h.do(cs(4, 3, campaignCmd("f", 4, "")))
	h.do(cs(4, 4, resignCmd("f", 4)))
	h.do(cs(2, 3, fenced(putCmd("k1", "z"), "l", 99))) // ErrFenced
	h.do(keepCmd(4))
	h.do(clockCmd(3200)) // sessions 1, 3 expire: "l" goes into its delay, "e" to session 2
	h.do(keepCmd(2))
	h.do(cs(4, 5, campaignCmd("e", 4, "d")))
	h.do(cs(2, 4, acquireCmd("d", 2, true, 0))) // waits behind session 4
	if len(h.sm.TakeAnswers()) == 0 || h.sm.LockCount() != 2 {
		t.Fatalf("the rich state is not what it should be: %+v", h.sm.Locks())
	}
	return h.sm
}

// TestSnapshotCorrupt: truncated, extended, random, flipped, mislabelled
// and inconsistent snapshots give ErrBadSnapshot (or, for a flip that
// still decodes, a sound state machine), never a panic.
func TestSnapshotCorrupt(t *testing.T) {
	sm := richSnapshotSM(t)
	opts := sm.opts
	data := mustSnapshot(t, sm)
	r := mustRestore(t, opts, data)
	checkSameState(t, sm, r)

	if info, err := checkBytes(opts, data); err != nil || info.Applied != r.Applied() || info.Keys != len(r.List("", 0)) || info.LiveBytes != r.Quota().Used || info.Revision != r.Revision() {
		t.Fatalf("CheckSnapshot of a sound snapshot: %+v, %v; the state: applied %d, %d keys, %d bytes",
			info, err, r.Applied(), len(r.List("", 0)), r.Quota().Used)
	}
	bad := func(what string, b []byte) {
		t.Helper()
		if _, err := RestoreStateMachine(opts, b); !errors.Is(err, ErrBadSnapshot) {
			t.Fatalf("%s: %v, want ErrBadSnapshot", what, err)
		}
		if _, err := checkBytes(opts, b); !errors.Is(err, ErrBadSnapshot) {
			t.Fatalf("%s: CheckSnapshot: %v, want ErrBadSnapshot", what, err)
		}
	}
	for n := 0; n < len(data); n++ {
		bad(fmt.Sprintf("truncated to %d bytes", n), data[:n])
	}
	bad("trailing byte", append(slices.Clone(data), 0))
	bad("two snapshots", append(slices.Clone(data), data...))
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		b := make([]byte, rng.IntN(64))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		if i%2 == 0 && len(b) > 0 {
			b[0] = 0x93 // an array of 3, as the envelope
		}
		bad(fmt.Sprintf("random %x", b), b)
	}
	// A huge declared length in a short input.
	huge := append([]byte{0x93, 0xa0 | byte(len(snapshotMagic))}, snapshotMagic...)
	bad("huge array", append(slices.Clone(huge), 0x01, 0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0))
	bad("huge map", append(slices.Clone(huge), 0x01, 0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0))
	bad("huge bin", append(data[:len(data)-1:len(data)-1], 0xc6, 0xff, 0xff, 0xff, 0xff))

	st, err := decodeSnapshotState(data)
	if err != nil {
		t.Fatal(err)
	}
	enc := func(version uint64, st *SnapshotState) []byte {
		b, err := encodeState(version, st)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if !bytes.Equal(enc(1, st), data) { // no identity: written as version 1
		t.Fatal("decode and encode do not give the snapshot back")
	}
	for _, v := range []uint64{0, SnapshotFormatVersion + 1, 1 << 40} {
		_, err := RestoreStateMachine(opts, enc(v, st))
		if !errors.Is(err, ErrBadSnapshot) || !strings.Contains(err.Error(), "version") {
			t.Fatalf("version %d: %v", v, err)
		}
	}
	wrongMagic := bytes.Replace(slices.Clone(data), []byte(snapshotMagic), []byte("paxosd/statemachinX"), 1)
	bad("wrong magic", wrongMagic)

	// Inconsistent states, each one change away from the real one.
	for name, change := range map[string]func(st *SnapshotState){
		"keys out of order":        func(st *SnapshotState) { st.KVs[0], st.KVs[1] = st.KVs[1], st.KVs[0] },
		"key repeated":             func(st *SnapshotState) { st.KVs[1].Key = st.KVs[0].Key },
		"empty key":                func(st *SnapshotState) { st.KVs[0].Key = "" },
		"key from the future":      func(st *SnapshotState) { st.KVs[0].ModRevision = st.Revision + 1 },
		"key of version 0":         func(st *SnapshotState) { st.KVs[0].Version = 0 },
		"client 0":                 func(st *SnapshotState) { st.Clients[0].ID = 0 },
		"clients out of order":     func(st *SnapshotState) { st.Clients[0], st.Clients[1] = st.Clients[1], st.Clients[0] },
		"client from the future":   func(st *SnapshotState) { st.Clients[0].LastSlot = st.Applied + 1 },
		"results out of order":     func(st *SnapshotState) { st.Clients[0].Results[1].Seq = st.Clients[0].Results[0].Seq },
		"unknown sentinel":         func(st *SnapshotState) { firstErr(st).Is = []uint8{200} },
		"sentinel 0":               func(st *SnapshotState) { firstErr(st).Is = []uint8{0} },
		"sentinels repeated":       func(st *SnapshotState) { firstErr(st).Is = []uint8{1, 1} },
		"session above the last":   func(st *SnapshotState) { st.LastSession = 1 },
		"session 0":                func(st *SnapshotState) { st.Sessions[0].ID = 0 },
		"sessions out of order":    func(st *SnapshotState) { st.Sessions[0].ID = st.Sessions[1].ID },
		"session past deadline":    func(st *SnapshotState) { st.Sessions[0].Deadline = st.Clock },
		"session TTL out of range": func(st *SnapshotState) { st.Sessions[0].TTLMs = 0 },
		"renewed unknown session":  func(st *SnapshotState) { st.Renewed = append(st.Renewed, 1000) },
		"renewed twice":            func(st *SnapshotState) { st.Renewed = append(st.Renewed, st.Sessions[0].ID, st.Sessions[0].ID) },
		"locks out of order":       func(st *SnapshotState) { st.Locks[0], st.Locks[1] = st.Locks[1], st.Locks[0] },
		"lock without name":        func(st *SnapshotState) { st.Locks[0].Name = "" },
		"lock holder gone":         func(st *SnapshotState) { heldLock(st).Holder = 1000 },
		"lock token above fence":   func(st *SnapshotState) { heldLock(st).Token = st.Fence + 1 },
		"lock holder no token":     func(st *SnapshotState) { heldLock(st).Token = 0 },
		"lock held and delayed":    func(st *SnapshotState) { heldLock(st).DelayUntil = st.Clock + 1 },
		"lock delay over":          func(st *SnapshotState) { delayedLock(st).DelayUntil = st.Clock },
		"free lock recorded":       func(st *SnapshotState) { l := delayedLock(st); l.DelayUntil, l.Waiters = 0, nil },
		"free lock with waiters":   func(st *SnapshotState) { delayedLock(st).DelayUntil = 0 },
		"waiter gone":              func(st *SnapshotState) { heldLock(st).Waiters[0].Session = 1000 },
		"waiter is the holder":     func(st *SnapshotState) { l := heldLock(st); l.Waiters[0].Session = l.Holder },
		"waiter twice": func(st *SnapshotState) {
			l := heldLock(st)
			l.Waiters = append(l.Waiters, l.Waiters[0])
		},
		"elections out of order": func(st *SnapshotState) { st.Elections[0], st.Elections[1] = st.Elections[1], st.Elections[0] },
		"leader gone":            func(st *SnapshotState) { st.Elections[0].Leader = 1000 },
		"term above fence":       func(st *SnapshotState) { st.Elections[0].Term = st.Fence + 1 },
		"leaderless with term":   func(st *SnapshotState) { st.Elections[1].Term = 1 },
		"leaderless candidates":  func(st *SnapshotState) { st.Elections[1].Candidates = st.Elections[0].Candidates },
		"candidate gone":         func(st *SnapshotState) { st.Elections[0].Candidates[0].Session = 1000 },
		"candidate leads":        func(st *SnapshotState) { st.Elections[0].Candidates[0].Session = st.Elections[0].Leader },
		"no history":             func(st *SnapshotState) { st.Elections[0].History = nil },
		"history gap":            func(st *SnapshotState) { st.Elections[0].History[0].Seq-- },
		"history not the state":  func(st *SnapshotState) { st.Elections[0].Seq++ },
		"history beyond the max": func(st *SnapshotState) {
			e := &st.Elections[0]
			e.History = append([]SnapLeaderChange{e.History[0]}, e.History...)
			for i := range e.History {
				e.History[i].Seq = e.Seq - uint64(len(e.History)-1-i)
			}
		},
		"latest change is not the leader": func(st *SnapshotState) { st.Elections[0].History[len(st.Elections[0].History)-1].Term++ },
		"event out of order":              func(st *SnapshotState) { st.KVHistory[0], st.KVHistory[1] = st.KVHistory[1], st.KVHistory[0] },
		"event below the dropped":         func(st *SnapshotState) { st.KVHistoryDropped = st.KVHistory[0].Revision },
		"event from the future":           func(st *SnapshotState) { st.KVHistory[len(st.KVHistory)-1].Revision = st.Revision + 1 },
		"event of no type":                func(st *SnapshotState) { st.KVHistory[0].Type = 0 },
		"dropped from the future":         func(st *SnapshotState) { st.KVHistoryDropped, st.KVHistory = st.Revision+1, nil },
		"other options":                   func(st *SnapshotState) { st.Options.ClientsMax++ },
		"too many clients": func(st *SnapshotState) {
			st.Options.ClientsMax = 1
		},
	} {
		st, err := decodeSnapshotState(data)
		if err != nil {
			t.Fatal(err)
		}
		change(st)
		b := enc(1, st)
		if name == "too many clients" {
			if _, err := RestoreStateMachine(SMOptions{KVHistoryMax: 4, ElectionHistoryMax: 3, ResultsPerClientMax: 4, ClientsMax: 1}, b); !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("%s: %v", name, err)
			}
			continue
		}
		bad(name, b)
	}

	// Flipped bytes: an error, or a state machine that is sound and goes on
	// applying commands.
	restored := 0
	for i := range data {
		for _, x := range []byte{0x01, 0x80, 0xff} {
			b := slices.Clone(data)
			b[i] ^= x
			sm, err := RestoreStateMachine(opts, b)
			if _, cerr := checkBytes(opts, b); (cerr == nil) != (err == nil) {
				t.Fatalf("flip %#x at %d: CheckSnapshot says %v, RestoreStateMachine %v", x, i, cerr, err)
			}
			if err != nil {
				if !errors.Is(err, ErrBadSnapshot) {
					t.Fatalf("flip %#x at %d: %v", x, i, err)
				}
				continue
			}
			restored++
			checkDerived(t, sm)
			exerciseRestored(sm)
		}
	}
	t.Logf("%d of %d single-byte flips still restore", restored, 3*len(data))
}

func firstErr(st *SnapshotState) *SnapError {
	for i := range st.Clients {
		for j := range st.Clients[i].Results {
			if e := st.Clients[i].Results[j].Result.Err; e != nil {
				return e
			}
		}
	}
	panic("no stored error")
}

func heldLock(st *SnapshotState) *SnapLock {
	for i := range st.Locks {
		if st.Locks[i].Holder != 0 && len(st.Locks[i].Waiters) > 0 {
			return &st.Locks[i]
		}
	}
	panic("no held lock with waiters")
}

func delayedLock(st *SnapshotState) *SnapLock {
	for i := range st.Locks {
		if st.Locks[i].DelayUntil != 0 && len(st.Locks[i].Waiters) > 0 {
			return &st.Locks[i]
		}
	}
	panic("no delayed lock with waiters")
}

// exerciseRestored applies commands that walk through every part of a
// restored state machine: every key deleted and rewritten, every session
// kept alive, every lock and election acted on by every session, every
// history read, and a clock jump that expires every session and ends every
// lock-delay. A state that restored must take all this without panicking.
func exerciseRestored(sm *StateMachine) {
	slot := sm.Applied()
	do := func(c Command) {
		if slot == math.MaxUint64 {
			return // no slot after it (a real log never gets there)
		}
		slot++
		sm.ApplyCommand(slot, &c)
		sm.TakeAnswers()
	}
	for _, kv := range sm.List("", 0) {
		do(delCmd(kv.Key))
		do(putCmd(kv.Key, "x"))
	}
	sessions := sortedKeys(sm.sessions.m)
	for _, name := range sortedKeys(sm.locks.m) {
		for _, id := range sessions {
			do(cs(1, uint64(slot), acquireCmd(name, id, true, 10)))
		}
		do(checkCmd(name, sm.fence))
	}
	for _, name := range sortedKeys(sm.elect.m) {
		for _, id := range sessions {
			do(cs(2, uint64(slot), campaignCmd(name, id, "v")))
			do(proclaimCmd(name, id, "w"))
		}
		for after := uint64(0); after < 10; after++ {
			sm.ElectionChanges(name, sm.elect.m[name].seq-after)
		}
	}
	for _, id := range sessions {
		do(keepCmd(id))
	}
	sm.KVEvents(0, "", true, 0)
	sm.KVEvents(sm.OldestRevision(), "", true, 0)
	if c := sm.Clock(); c < 1<<62 {
		do(clockCmd(c + 1))
		do(clockCmd(c + 2*SessionTTLMaxMs + LockDelayMaxMs))
	}
	for _, id := range sessions {
		do(closeCmd(id))
	}
	if _, err := sm.Snapshot(); err != nil {
		panic(err)
	}
}

// FuzzRestoreStateMachine: no input panics RestoreStateMachine; an input it
// accepts gives a sound state machine whose snapshot restores to the same
// bytes, and that goes on applying commands without panicking.
// checkBytes runs CheckSnapshot over data in memory.
func checkBytes(opts SMOptions, data []byte) (SnapshotInfo, error) {
	return CheckSnapshot(opts, func() (io.Reader, error) { return bytes.NewReader(data), nil }, int64(len(data)))
}

func FuzzRestoreStateMachine(f *testing.F) {
	rich := richSnapshotSM(f)
	opts := rich.opts
	data := mustSnapshot(f, rich)
	empty, err := NewStateMachine(opts).Snapshot()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add(empty)
	// Format 8, with a membership change waiting for its activation.
	mh := membersHarness(f, LevelMembership)
	mh.configSlot(withMember(mh.sm.Members(), 4, true))
	f.Add(mustSnapshot(f, mh.sm))
	f.Add(data[:len(data)/2])
	f.Add(bytes.Replace(slices.Clone(empty), []byte{0xa0 | byte(len(snapshotMagic)), 's'}, []byte{0xa0 | byte(len(snapshotMagic)), 'S'}, 1))
	f.Add([]byte{0x93, 0xb3})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		sm, err := RestoreStateMachine(opts, b)
		if _, cerr := checkBytes(opts, b); (cerr == nil) != (err == nil) {
			t.Fatalf("CheckSnapshot says %v, RestoreStateMachine %v", cerr, err)
		}
		if err != nil {
			if !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("error without ErrBadSnapshot: %v", err)
			}
			return
		}
		checkDerived(t, sm)
		s1 := mustSnapshot(t, sm)
		sm2 := mustRestore(t, opts, s1)
		if s2 := mustSnapshot(t, sm2); !bytes.Equal(s1, s2) || sm.Hash() != sm2.Hash() {
			t.Fatal("a restored state does not snapshot to itself")
		}
		exerciseRestored(sm)
	})
}
