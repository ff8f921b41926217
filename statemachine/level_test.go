package statemachine

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/paxosd/paxosd/paxos"
)

func levelCmd(level uint64) Command { return Command{Op: OpLevel, Level: level} }

// TestLevelOp: OpLevel raises the level to the largest applied, never
// lowers it, is idempotent, moves no revision; a level of 0, one above
// what this build implements, or one from a client is refused and changes
// nothing.
func TestLevelOp(t *testing.T) {
	h := newSMHarness(t, SMOptions{})
	h.do(putCmd("k", "v"))
	if h.sm.Level() != 0 {
		t.Fatalf("a new state at level %d", h.sm.Level())
	}
	for _, c := range []Command{levelCmd(0), levelCmd(LevelMax + 1), cs(1, 1, levelCmd(LevelDedupBytes))} {
		if r := h.do(c); !errors.Is(r.Err, ErrInvalid) {
			t.Fatalf("%s: %v, want ErrInvalid", c.String(), r.Err)
		}
		if h.sm.Level() != 0 || len(h.sm.dedup.clients) != 0 {
			t.Fatalf("%s: level %d, %d clients", c.String(), h.sm.Level(), len(h.sm.dedup.clients))
		}
	}
	for _, step := range []struct{ apply, want uint64 }{
		{LevelDedupBytes, LevelDedupBytes},
		{LevelDedupBytes, LevelDedupBytes}, // again: idempotent
		{1, LevelDedupBytes},               // lower: never goes back
	} {
		r := h.do(levelCmd(step.apply))
		if r.Err != nil || r.Revision != 1 {
			t.Fatalf("level %d: %s", step.apply, describeResult(r))
		}
		if h.sm.Level() != step.want {
			t.Fatalf("after level %d: level %d, want %d", step.apply, h.sm.Level(), step.want)
		}
	}
	if LevelMax < LevelDedupBytes {
		t.Fatalf("LevelMax %d below a level this build implements", LevelMax)
	}
}

// levelZeroState is a state of every kind built without any OpLevel: the
// coordination setup, a random stream with evictions and trims, a quota.
func levelZeroState(t testing.TB) *StateMachine {
	h := newSMHarness(t, SMOptions{ClientsMax: 4, ResultsPerClientMax: 6})
	for _, c := range fuzzSetup {
		h.do(c)
	}
	g := newCmdGen(7, 6)
	for i := 0; i < 2000; i++ {
		c := g.next(h.sm.Get)
		h.slot++
		h.sm.Apply(h.slot, EncodeCommand(&c))
	}
	h.do(Command{Op: OpQuotaDefault, Quota: 1 << 20})
	h.sm.ApplyValue(h.slot+1, paxos.Value{})
	h.sm.TakeAnswers()
	return h.sm
}

// TestLevelZeroAsBefore: a state that never raised its level hashes and
// snapshots exactly as the build before levels existed did (the values
// were taken from that build, commit 9e71c4e, with this same state): what
// members of a mixed cluster compare in the state check, and read from
// each other's snapshots.
func TestLevelZeroAsBefore(t *testing.T) {
	sm := levelZeroState(t)
	data := mustSnapshot(t, sm)
	if got, want := sm.Hash(), uint64(0xaf6c93ffb50e67f1); got != want {
		t.Errorf("hash %#x, want %#x", got, want)
	}
	sum := sha256.Sum256(data)
	if got, want := hex.EncodeToString(sum[:]), "f46de3d38b6ee311a0a650a6e3a5f393a3e8d4e068dbdd5164a195a176b56d94"; got != want {
		t.Errorf("snapshot (%d bytes, version %d) sha256 %s, want %s", len(data), snapshotVersion(t, data), got, want)
	}
}

// TestLevelSnapshot: a state above level 0 snapshots in format 4 (with or
// without a quota) and hashes differently from the same state at level 0;
// the restore brings the level back, hashes and snapshots the same, and
// recomputes the duplicate table's bytes. A format 4 snapshot with level
// 0, a level this build does not implement, or another DedupBytesMax, is
// refused.
func TestLevelSnapshot(t *testing.T) {
	opts := SMOptions{ClientsMax: 4, ResultsPerClientMax: 6}
	for _, quota := range []bool{false, true} {
		a, b := newSMHarness(t, opts), newSMHarness(t, opts)
		for _, h := range []*smHarness{a, b} {
			for _, c := range fuzzSetup {
				h.do(c)
			}
			if quota {
				h.do(Command{Op: OpQuotaDefault, Quota: 1 << 20})
			}
			h.do(cs(9, 1, putCmd("k", "a longer value")))
		}
		before := a.sm.Hash()
		a.do(levelCmd(LevelDedupBytes))
		b.do(Command{Op: OpClock, Now: b.sm.Clock()}) // the same slot, nothing else changed
		if a.sm.Hash() == b.sm.Hash() || a.sm.Hash() == before {
			t.Fatal("the level does not change the hash")
		}
		a.sm.TakeAnswers()
		data := mustSnapshot(t, a.sm)
		if v := snapshotVersion(t, data); v != 4 {
			t.Fatalf("quota %v: snapshot version %d at level %d, want 4", quota, v, a.sm.Level())
		}
		r := mustRestore(t, opts, data)
		checkDerived(t, r)
		if r.Level() != LevelDedupBytes || r.Hash() != a.sm.Hash() || r.Quota() != a.sm.Quota() || r.dedup.bytes != a.sm.dedup.bytes {
			t.Fatalf("quota %v: restored level %d quota %+v bytes %d, want %d %+v %d", quota, r.Level(), r.Quota(), r.dedup.bytes,
				a.sm.Level(), a.sm.Quota(), a.sm.dedup.bytes)
		}
		if again := mustSnapshot(t, r); !bytes.Equal(again, data) {
			t.Fatalf("quota %v: the restored state snapshots differently", quota)
		}

		st, err := decodeSnapshotState(data)
		if err != nil {
			t.Fatal(err)
		}
		for name, change := range map[string]func(*SnapshotState){
			"level 0":               func(st *SnapshotState) { st.Level.Level = 0 },
			"a newer build's level": func(st *SnapshotState) { st.Level.Level = LevelMax + 1 },
			"another bound":         func(st *SnapshotState) { st.Level.DedupBytesMax++ },
		} {
			bad := *st
			change(&bad)
			enc, err := encodeState(4, &bad)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := RestoreStateMachine(opts, enc); !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("quota %v, %s: %v, want ErrBadSnapshot", quota, name, err)
			}
		}
		// Format 3 still needs its quota.
		if !quota {
			enc, err := encodeState(3, st)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := RestoreStateMachine(opts, enc); !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("format 3 without a quota: %v", err)
			}
		}
	}
}
