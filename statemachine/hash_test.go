package statemachine

import (
	"bytes"
	"fmt"
	"hash/crc64"
	"runtime"
	"strings"
	"testing"

	"github.com/paxosd/paxosd/paxos"
)

// Tests of the agreement hash (hash.go): what it covers and leaves out at
// each level, and that from LevelHashEncoding on it is the snapshot
// encoding's.

// hashLevels are the levels whose hashes differ in kind: the legacy hash
// (levels 0 and 5 only differ by the level in it) and the encoding hash.
var hashLevels = []uint64{0, LevelHashEncoding, LevelEphemeral}

// atLevel applies OpLevel{level} to h (nothing for level 0).
func atLevel(h *smHarness, level uint64) {
	if level > 0 {
		if r := h.do(levelCmd(level)); r.Err != nil {
			h.t.Fatalf("level %d: %v", level, r.Err)
		}
	}
}

// TestHashCoversState checks that each part of the replicated state moves
// the hash, at every kind of hash.
func TestHashCoversState(t *testing.T) {
	for _, level := range hashLevels {
		base := func() *smHarness {
			h := newSMHarness(t, SMOptions{})
			atLevel(h, level)
			h.do(Command{ClientID: 1, Seq: 1, Op: OpPut, Key: "a", Value: []byte("1")})
			h.do(openCmd(5000))
			h.do(openCmd(5000))
			h.do(cs(1, 2, acquireCmd("l", 1, true, 100)))
			h.do(cs(2, 1, acquireCmd("l", 2, true, 100)))
			h.do(cs(1, 3, campaignCmd("e", 1, "x")))
			h.do(cs(2, 2, campaignCmd("e", 2, "y")))
			h.do(clockCmd(10))
			return h
		}
		ref := base().sm.Hash()
		changes := map[string]func(h *smHarness){
			"value":        func(h *smHarness) { h.sm.kv.tree.Set(itemOf(mkKV("a", "2", 1, 1, 1))) },
			"version":      func(h *smHarness) { h.sm.kv.tree.Set(itemOf(mkKV("a", "1", 1, 1, 2))) },
			"revision":     func(h *smHarness) { h.sm.kv.rev++ },
			"applied":      func(h *smHarness) { h.sm.applied++ },
			"tampered key": func(h *smHarness) { h.sm.TamperPut("evil", []byte("x")) },
			"client floor": func(h *smHarness) { h.sm.dedup.clients[1].floor++ },
			"client slot":  func(h *smHarness) { h.sm.dedup.clients[1].lastSlot++ },
			"stored result": func(h *smHarness) {
				h.sm.dedup.clients[1].results[0].res.Found = true
			},
			"new client":       func(h *smHarness) { h.sm.dedup.touch(3, h.slot, true) },
			"stored token":     func(h *smHarness) { h.sm.dedup.clients[1].results[1].res.Token++ },
			"stored pending":   func(h *smHarness) { h.sm.dedup.clients[2].results[0].res.Pending = false },
			"stored leader":    func(h *smHarness) { h.sm.dedup.clients[1].results[2].res.Leader.Term++ },
			"clock":            func(h *smHarness) { h.sm.clock++ },
			"fence counter":    func(h *smHarness) { h.sm.TamperFence(h.sm.fence + 1) },
			"session ids":      func(h *smHarness) { h.sm.sessions.last++ },
			"session deadline": func(h *smHarness) { h.sm.sessions.m[1].deadline++ },
			"session ttl":      func(h *smHarness) { h.sm.sessions.m[2].ttl++ },
			"session renew": func(h *smHarness) {
				h.sm.sessions.m[2].renew = true
				h.sm.sessions.renewed = append(h.sm.sessions.renewed, 2)
			},
			"lock token":        func(h *smHarness) { h.sm.locks.m["l"].token++ },
			"lock holder delay": func(h *smHarness) { h.sm.locks.m["l"].holderDelay++ },
			"lock delay until":  func(h *smHarness) { h.sm.locks.m["l"].delayUntil++ },
			"lock waiter":       func(h *smHarness) { h.sm.locks.m["l"].waiters[0].seq++ },
			"lock waiter delay": func(h *smHarness) { h.sm.locks.m["l"].waiters[0].delay++ },
			"election value":    func(h *smHarness) { h.sm.elect.m["e"].value = []byte("z") },
			"election term":     func(h *smHarness) { h.sm.elect.m["e"].term++ },
			"election seq":      func(h *smHarness) { h.sm.elect.m["e"].seq++ },
			"candidate value":   func(h *smHarness) { h.sm.elect.m["e"].candidates[0].value = []byte("z") },
			"candidate client":  func(h *smHarness) { h.sm.elect.m["e"].candidates[0].client++ },
			"cluster level":     func(h *smHarness) { h.sm.level = max(h.sm.level+1, LevelDedupBytes) },
		}
		if level >= LevelHashEncoding {
			// Only the encoding hash covers the elections' kept changes.
			changes["election history"] = func(h *smHarness) {
				r := &h.sm.elect.m["e"].history.r
				r.buf[r.start].Revision++
			}
		}
		if level >= LevelEphemeral {
			changes["key binding"] = func(h *smHarness) { h.sm.bound.bind("a", 1) }
		}
		for name, change := range changes {
			h := base()
			change(h)
			if h.sm.Hash() == ref {
				t.Errorf("level %d: changing the %s does not change the hash", level, name)
			}
		}
	}
}

// hashState is a state at level with a bit of everything, the quota and
// the cluster identity included.
func hashState(t testing.TB, opts SMOptions, level uint64) *smHarness {
	h := newSMHarness(t, opts)
	for _, c := range fuzzSetup {
		h.do(c)
	}
	h.do(Command{Op: OpClusterID, Value: bytes.Repeat([]byte{7}, ClusterIDBytes)})
	h.do(Command{Op: OpVoter, Reporter: 2})
	h.do(Command{Op: OpQuotaDefault, Quota: 1 << 20})
	atLevel(h, level)
	g := newCmdGen(11, 4)
	for i := 0; i < 300; i++ {
		c := g.next(h.sm.Get)
		h.do(c)
	}
	h.sm.TakeAnswers()
	return h
}

// viewHash is the hash of a view of sm, as the state check computes it.
func viewHash(t testing.TB, sm *StateMachine) uint64 {
	t.Helper()
	v, err := sm.View()
	if err != nil {
		t.Fatal(err)
	}
	h, err := v.Hash(sm.opts)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestHashEncodingLeavesOut: from LevelHashEncoding on, what hash.go
// leaves out — the KV history, the cluster identity, the quota, the
// options — changes the snapshot but not the hash. (Below that level the
// legacy hash leaves them out as well.)
func TestHashEncodingLeavesOut(t *testing.T) {
	opts := SMOptions{KVHistoryMax: 64}
	for _, level := range hashLevels {
		ref := hashState(t, opts, level)
		refSnap := mustSnapshot(t, ref.sm)
		for name, change := range map[string]func(h *smHarness){
			"KV history": func(h *smHarness) {
				kh := &h.sm.kvHist // as a replica restored from an older snapshot
				for kh.events.len() > 1 {
					old := kh.events.dropFront()
					kh.bytes -= old.size()
					kh.dropped = old.Revision
				}
			},
			"cluster id": func(h *smHarness) { h.sm.ident.id[0]++ },
			"voters":     func(h *smHarness) { h.sm.ident.voters = append(h.sm.ident.voters, 9) },
			"quota":      func(h *smHarness) { h.sm.quota.limit++ },
			"options":    func(h *smHarness) { h.sm.opts.KVHistoryMax++; h.sm.opts.DedupBytesMax++ },
		} {
			h := hashState(t, opts, level)
			change(h)
			if h.sm.Hash() != ref.sm.Hash() || viewHash(t, h.sm) != ref.sm.Hash() {
				t.Errorf("level %d: changing the %s changes the hash", level, name)
			}
			if bytes.Equal(mustSnapshot(t, h.sm), refSnap) {
				t.Errorf("level %d: setup: changing the %s does not change the snapshot", level, name)
			}
		}
	}
}

// TestHashEncodingIsTheSnapshot: from LevelHashEncoding on, the hash is
// the CRC-64 of the snapshot's bytes, but for the sections hash.go leaves
// out, which are zeroed; the view hashes as the state machine does.
func TestHashEncodingIsTheSnapshot(t *testing.T) {
	opts := SMOptions{KVHistoryMax: 64}
	h := hashState(t, opts, LevelHashEncoding)
	data := mustSnapshot(t, h.sm)
	st, err := decodeSnapshotState(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.KVHistory) == 0 || len(st.Identity.ClusterID) == 0 || st.Quota.Limit == 0 || st.Level.DedupBytesMax == 0 {
		t.Fatalf("setup: a section to leave out is empty: %+v", st)
	}
	st.Options, st.KVHistoryDropped, st.KVHistory = SnapOptions{}, 0, nil
	st.Identity, st.Quota, st.Level.DedupBytesMax = SnapIdentity{}, SnapQuota{}, 0
	enc, err := encodeState(snapshotVersion(t, data), st)
	if err != nil {
		t.Fatal(err)
	}
	want := crc64.Checksum(enc, crc64.MakeTable(crc64.ECMA))
	if got := h.sm.Hash(); got != want {
		t.Fatalf("hash %#x, the CRC-64 of the snapshot with the sections left out zeroed %#x", got, want)
	}
	v, err := h.sm.View()
	if err != nil {
		t.Fatal(err)
	}
	h.do(putCmd("after", "the view")) // the view keeps its point in time
	if got, err := v.Hash(opts); err != nil || got != want {
		t.Fatalf("the view's hash %#x (%v), want %#x", got, err, want)
	}
}

// TestHashLevelsAsBefore: below LevelHashEncoding the hash is the legacy
// hash, with the values the build before it computed (commit 9b76592, the
// same states); TestLevelZeroAsBefore pins level 0. From it on the value
// is pinned too: a later build that implements level 6 must hash a level-6
// state to the same value, or a mixed cluster convicts its members.
func TestHashLevelsAsBefore(t *testing.T) {
	for _, tc := range []struct {
		level uint64
		want  uint64
	}{
		{LevelDedupBytes, 0x3ccedb083dd362e9},
		{LevelHashEncoding, 0x4314d355b3842da4},
	} {
		sm := levelZeroState(t)
		sm.ApplyCommand(sm.Applied()+1, &Command{Op: OpLevel, Level: tc.level})
		sm.TakeAnswers()
		got := sm.Hash()
		if got != tc.want {
			t.Errorf("level %d: hash %#x, want %#x", tc.level, got, tc.want)
		}
		if legacy := sm.legacyHash(); (legacy == got) != (tc.level < LevelHashEncoding) {
			t.Errorf("level %d: hash %#x, legacy hash %#x", tc.level, got, legacy)
		}
		v, err := sm.View()
		if err != nil {
			t.Fatal(err)
		}
		if vh, err := v.Hash(sm.opts); err != nil || vh != got {
			t.Errorf("level %d: the view's hash %#x (%v), the state machine's %#x", tc.level, vh, err, got)
		}
	}
}

// TestHashEncodingAcrossLevels: two replicas apply the same commands while
// the level rises from 0 to 5 to 6, and a third follows from a snapshot of
// the first taken at level 5, whose KV history then reaches less far back:
// after every slot all three hash alike, the view's hash is the state
// machine's, and the hash changes kind at the slot of OpLevel{6}, not
// before.
func TestHashEncodingAcrossLevels(t *testing.T) {
	opts := SMOptions{ClientsMax: 6, ResultsPerClientMax: 8}
	a, b := NewStateMachine(opts), NewStateMachine(opts)
	var c *StateMachine
	g := newCmdGen(5, 6)
	for slot := paxos.Slot(1); slot <= 1500; slot++ {
		cmd := g.next(a.Get)
		switch {
		case slot == 500:
			cmd = levelCmd(LevelDedupBytes)
		case slot == 1000:
			cmd = levelCmd(LevelHashEncoding)
		case slot < 700 && slot%5 == 1:
			// Large values, so that a snapshot carries less of the KV
			// history than the replicas hold (snapshotHistoryBytesMax).
			cmd = putCmd(fmt.Sprintf("big/%d", slot%40), strings.Repeat("v", 2048))
		}
		raw := EncodeCommand(&cmd)
		for _, sm := range []*StateMachine{a, b, c} {
			if sm != nil {
				sm.Apply(slot, bytes.Clone(raw))
				sm.TakeAnswers()
			}
		}
		if slot == 700 {
			c = mustRestore(t, opts, mustSnapshot(t, a))
			if c.OldestRevision() <= a.OldestRevision() {
				t.Fatalf("setup: the restored KV history reaches as far back (%d) as the original's (%d)", c.OldestRevision(), a.OldestRevision())
			}
		}
		want := uint64(LevelDedupBytes)
		if slot >= 1000 {
			want = LevelHashEncoding
		}
		if slot >= 500 && a.Level() != want {
			t.Fatalf("slot %d: level %d, want %d", slot, a.Level(), want)
		}
		h := a.Hash()
		if b.Hash() != h || (c != nil && c.Hash() != h) {
			t.Fatalf("slot %d (level %d): the replicas' hashes differ", slot, a.Level())
		}
		if legacy := a.legacyHash(); (legacy == h) != (slot < 1000) {
			t.Fatalf("slot %d (level %d): hash %#x, legacy %#x", slot, a.Level(), h, legacy)
		}
		if slot%100 == 0 {
			v, err := a.View()
			if err != nil {
				t.Fatal(err)
			}
			if vh, err := v.Hash(opts); err != nil || vh != h {
				t.Fatalf("slot %d: the view's hash %#x (%v), the state machine's %#x", slot, vh, err, h)
			}
		}
	}
	if a.Level() != LevelHashEncoding || a.Revision() < 200 {
		t.Fatalf("the stream did too little: level %d, revision %d", a.Level(), a.Revision())
	}
}

// TestHashEncodingStreams: the hash never holds the encoding whole: hashing
// a state of 8 MiB of values allocates a small part of that.
func TestHashEncodingStreams(t *testing.T) {
	h := newSMHarness(t, SMOptions{KVHistoryMax: 16})
	atLevel(h, LevelHashEncoding)
	value := strings.Repeat("v", 1024)
	for i := 0; i < 8192; i++ {
		h.do(putCmd(fmt.Sprintf("key/%05d", i), value))
	}
	v, err := h.sm.View()
	if err != nil {
		t.Fatal(err)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	if _, err := v.Hash(h.sm.opts); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&ms)
	if got := ms.TotalAlloc - before; got > 2<<20 {
		t.Fatalf("hashing %d keys of 1 KiB allocated %d bytes", h.sm.kv.len(), got)
	}
}
