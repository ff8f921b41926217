package statemachine

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/paxosd/paxosd/paxos"
)

// testBoot is a new cluster's first configuration: three voters.
var testBoot = paxos.Bootstrap(paxos.NewMembership(map[paxos.NodeID]string{1: "h1:7001", 2: "h2:7002", 3: "h3:7003"}))

// testAlpha is the α of the membership tests: small, so that a change
// comes into force within a few slots.
const testAlpha = 8

// membersHarness is a state machine at level with the bootstrap
// configuration set, as the node sets it before applying anything.
func membersHarness(t testing.TB, level uint64) *smHarness {
	h := newSMHarness(t, SMOptions{})
	boot := testBoot.Clone()
	boot.Alpha = testAlpha
	h.sm.SetBootstrapMembers(boot)
	atLevel(h, level)
	return h
}

// configSlot applies a configuration value proposing m in the next slot.
func (h *smHarness) configSlot(m paxos.Membership) {
	h.slot++
	h.sm.ApplyValue(h.slot, paxos.ConfigValue(m))
}

// noopSlot applies a no-op in the next slot.
func (h *smHarness) noopSlot() {
	h.slot++
	h.sm.ApplyValue(h.slot, paxos.Value{})
}

// withMember returns the membership after c's latest that has id as a
// voter, or as a learner.
func withMember(c paxos.Configs, id paxos.NodeID, learner bool) paxos.Membership {
	m := c.Latest().Clone()
	m.Version++
	for i := range m.Members {
		if m.Members[i].ID == id {
			m.Members[i].Learner = learner
			return m
		}
	}
	m.Members = append(m.Members, paxos.Member{ID: id, Addr: "new:1", Learner: learner})
	return m.Clone() // sorted
}

// nextChange returns the change after c's latest configuration: node 4
// joins as a learner, then votes, then leaves, and again.
func nextChange(c paxos.Configs) paxos.Membership {
	switch (c.Latest().Version + 1) % 3 {
	case 2:
		return withMember(c, 4, true)
	case 0:
		return withMember(c, 4, false)
	}
	m := paxos.Membership{Version: c.Latest().Version + 1}
	for _, x := range c.Latest().Members {
		if x.ID != 4 {
			m.Members = append(m.Members, x)
		}
	}
	return m
}

// TestMembersSnapshot: at LevelMembership a snapshot carries the
// membership, a pending change with its activation slot included, in
// format 8; the restored state holds the same, comes to the same
// configuration at the same slot as the original, and hashes and
// snapshots the same all the way.
func TestMembersSnapshot(t *testing.T) {
	h := membersHarness(t, LevelMembership)
	h.do(putCmd("k", "v"))
	h.configSlot(withMember(h.sm.Members(), 4, true)) // version 2: a learner joins
	c := h.sm.Members()
	if !c.Pending() || c.Next.Version != 2 || c.NextAt != h.slot+testAlpha {
		t.Fatalf("after the change: %+v", c)
	}
	h.do(putCmd("k2", "v"))
	data := mustSnapshot(t, h.sm)
	if v := snapshotVersion(t, data); v != 8 {
		t.Fatalf("snapshot format %d at level %d, want 8", v, h.sm.Level())
	}
	r := newSMHarness(t, SMOptions{})
	r.sm, r.slot = mustRestore(t, SMOptions{}, data), h.slot
	if got := r.sm.Members(); !reflect.DeepEqual(got, c) {
		t.Fatalf("restored membership %+v, want %+v", got, c)
	}
	// The node sets the bootstrap configuration on every restored state:
	// the snapshot's must win.
	r.sm.SetBootstrapMembers(testBoot)
	checkSameState(t, h.sm, r.sm)
	// Both come to version 2 at its activation slot, then take version 3
	// (the learner votes) alike.
	for _, x := range []*smHarness{h, r} {
		for x.slot+1 < c.NextAt-1 {
			x.noopSlot()
		}
		if x.sm.Members().Current.Version != 1 {
			t.Fatalf("version 2 in force at slot %d, before its activation slot %d", x.slot, c.NextAt)
		}
		x.noopSlot()
		if m := x.sm.Members(); m.Current.Version != 2 || m.Pending() {
			t.Fatalf("at slot %d (activation %d): %+v", x.slot, c.NextAt, m)
		}
		x.configSlot(withMember(x.sm.Members(), 4, false))
	}
	checkSameState(t, h.sm, r.sm)
	if m := r.sm.Members(); m.Next.Version != 3 || !m.Next.IsVoter(4) {
		t.Fatalf("after promoting 4: %+v", m)
	}
	again := mustRestore(t, SMOptions{}, mustSnapshot(t, r.sm))
	checkSameState(t, h.sm, again)
}

// TestMembersBelowLevel: below LevelMembership a snapshot is format 7
// and holds no membership: byte for byte the snapshot of the same state
// without one, which restores with none (the node then sets its --peers).
// The hash does not see it either.
func TestMembersBelowLevel(t *testing.T) {
	with, without := membersHarness(t, LevelAuth), newSMHarness(t, SMOptions{})
	atLevel(without, LevelAuth)
	for _, x := range []*smHarness{with, without} {
		x.do(putCmd("k", "v"))
		x.configSlot(withMember(with.sm.Members(), 4, false))
		x.do(putCmd("k2", "v"))
	}
	if with.sm.Members().Next.Version != 2 || without.sm.Members().Current.Version != 0 {
		t.Fatalf("setup: memberships %+v and %+v", with.sm.Members(), without.sm.Members())
	}
	data := mustSnapshot(t, with.sm)
	if v := snapshotVersion(t, data); v != 7 {
		t.Fatalf("snapshot format %d at level %d, want 7", v, with.sm.Level())
	}
	if !bytes.Equal(data, mustSnapshot(t, without.sm)) || with.sm.Hash() != without.sm.Hash() {
		t.Fatal("below LevelMembership the membership is in the snapshot or the hash")
	}
	r := mustRestore(t, SMOptions{}, data)
	if m := r.Members(); m.Current.Version != 0 || m.Pending() {
		t.Fatalf("a format 7 snapshot restored with membership %+v, want none", m)
	}
	r.SetBootstrapMembers(testBoot)
	if !reflect.DeepEqual(r.Members(), testBoot) {
		t.Fatalf("the bootstrap configuration was not taken: %+v", r.Members())
	}
}

// TestMembersHash: at LevelMembership replicas that differ only in their
// membership (the configuration in force, a pending change, its
// activation slot) hash differently; below it they do not.
func TestMembersHash(t *testing.T) {
	for _, level := range []uint64{LevelAuth, LevelMembership} {
		a, b := membersHarness(t, level), membersHarness(t, level)
		a.do(putCmd("k", "v"))
		b.do(putCmd("k", "v"))
		if a.sm.Hash() != b.sm.Hash() {
			t.Fatalf("level %d: equal states hash differently", level)
		}
		a.configSlot(withMember(a.sm.Members(), 4, true))
		b.noopSlot()
		if differ := a.sm.Hash() != b.sm.Hash(); differ != (level >= LevelMembership) {
			t.Fatalf("level %d: a pending change: hashes differ %v", level, differ)
		}
		b2 := membersHarness(t, level)
		b2.do(putCmd("k", "v"))
		b2.configSlot(withMember(b2.sm.Members(), 4, false)) // another change: 4 votes
		if differ := a.sm.Hash() != b2.sm.Hash(); differ != (level >= LevelMembership) {
			t.Fatalf("level %d: another pending change: hashes differ %v", level, differ)
		}
		for a.sm.Members().Pending() {
			a.noopSlot()
			b.noopSlot()
		}
		if differ := a.sm.Hash() != b.sm.Hash(); differ != (level >= LevelMembership) {
			t.Fatalf("level %d: another configuration in force: hashes differ %v", level, differ)
		}
	}
}

// TestMembersSettleByCommand: the node applies a batch command by command
// (ApplyCommand), not through ApplyValue; a change due meanwhile is in
// force all the same, so that such a replica and one that replayed the
// log (ApplyValue) snapshot and hash alike.
func TestMembersSettleByCommand(t *testing.T) {
	a, b := membersHarness(t, LevelMembership), membersHarness(t, LevelMembership)
	for _, x := range []*smHarness{a, b} {
		x.configSlot(withMember(x.sm.Members(), 4, true))
	}
	at := a.sm.Members().NextAt
	for a.slot < at+2 {
		c := putCmd("k", "v")
		a.slot++
		a.sm.ApplyValue(a.slot, paxos.Value{Kind: paxos.ValueBatch, Cmds: [][]byte{EncodeCommand(&c)}})
		b.slot++
		b.sm.ApplyCommand(b.slot, &c)
		if !reflect.DeepEqual(a.sm.Members(), b.sm.Members()) || a.sm.Hash() != b.sm.Hash() {
			t.Fatalf("slot %d (activation %d): memberships %+v and %+v", a.slot, at, a.sm.Members(), b.sm.Members())
		}
	}
	if b.sm.Members().Current.Version != 2 {
		t.Fatalf("the change is not in force past its activation slot: %+v", b.sm.Members())
	}
	if !bytes.Equal(mustSnapshot(t, a.sm), mustSnapshot(t, b.sm)) {
		t.Fatal("the two replicas snapshot differently")
	}
}

// TestMembersNoneRefused: a state at LevelMembership whose membership was
// never set gives no snapshot (format 8 always holds one); its hash is
// still computed, and differs from a state with one.
func TestMembersNoneRefused(t *testing.T) {
	h := newSMHarness(t, SMOptions{})
	atLevel(h, LevelMembership)
	if _, err := h.sm.Snapshot(); err == nil {
		t.Fatal("a snapshot of a state without a membership at LevelMembership")
	}
	with := membersHarness(t, LevelMembership)
	if h.sm.Hash() == with.sm.Hash() {
		t.Fatal("a state without a membership hashes as one with")
	}
}

// TestMembersSnapshotCorrupt: a format 8 snapshot whose membership is
// missing or inconsistent, or a format that does not match the level,
// is refused with ErrBadSnapshot, by the restore and by CheckSnapshot.
func TestMembersSnapshotCorrupt(t *testing.T) {
	h := membersHarness(t, LevelMembership)
	h.do(putCmd("k", "v"))
	h.configSlot(withMember(h.sm.Members(), 4, true))
	h.do(putCmd("k2", "v"))
	data := mustSnapshot(t, h.sm)
	st, err := decodeSnapshotState(data)
	if err != nil {
		t.Fatal(err)
	}
	if enc, err := encodeState(8, st); err != nil || !bytes.Equal(enc, data) {
		t.Fatalf("decode and encode do not give the snapshot back (%v)", err)
	}
	bad := func(what string, b []byte, want string) {
		t.Helper()
		_, err := RestoreStateMachine(SMOptions{}, b)
		if !errors.Is(err, ErrBadSnapshot) || !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Fatalf("%s: %v, want ErrBadSnapshot saying %q", what, err, want)
		}
		if _, err := checkBytes(SMOptions{}, b); !errors.Is(err, ErrBadSnapshot) {
			t.Fatalf("%s: CheckSnapshot: %v, want ErrBadSnapshot", what, err)
		}
	}
	for n := 0; n < len(data); n++ {
		bad("truncated", data[:n], "")
	}
	applied := st.Applied
	for name, tc := range map[string]struct {
		change func(m *SnapMembers)
		want   string
	}{
		"no membership":         {func(m *SnapMembers) { *m = SnapMembers{} }, "version 0"},
		"current of version 0":  {func(m *SnapMembers) { m.Current.Version = 0 }, "version 0"},
		"no voter":              {func(m *SnapMembers) { m.Current.Members = nil }, "no voting member"},
		"only learners":         {func(m *SnapMembers) { m.Current.Members = []SnapMember{{ID: 1, Learner: true}} }, "no voting member"},
		"member 0":              {func(m *SnapMembers) { m.Current.Members[0].ID = 0 }, "positive"},
		"members out of order":  {func(m *SnapMembers) { m.Current.Members[0].ID = 9 }, "out of order"},
		"member twice":          {func(m *SnapMembers) { m.Current.Members[1].ID = 1 }, "out of order"},
		"member id too large":   {func(m *SnapMembers) { m.Current.Members[2].ID = 1 << 40 }, "out of range"},
		"next skips a version":  {func(m *SnapMembers) { m.Next.Version++ }, "adds one"},
		"next of an old":        {func(m *SnapMembers) { m.Next.Version = m.Current.Version }, "adds one"},
		"next invalid":          {func(m *SnapMembers) { m.Next.Members = m.Next.Members[3:] }, "no voting member"},
		"next already in force": {func(m *SnapMembers) { m.NextAt, m.Alpha = applied+1, 2 }, "already in force"},
		"next from the future":  {func(m *SnapMembers) { m.NextAt = applied + testAlpha + 1 }, "not chosen"},
		"next at slot 0":        {func(m *SnapMembers) { m.NextAt = 0 }, "not chosen"},
		"another alpha":         {func(m *SnapMembers) { m.Alpha = 2 }, "not chosen"},
		"none pending, members": {func(m *SnapMembers) { m.Next.Version = 0 }, "no pending"},
		"none pending, a slot": {func(m *SnapMembers) {
			m.Next = SnapMembership{Members: []SnapMember{}}
		}, "no pending"},
	} {
		b := *st
		b.Members = h.sm.snapMembers() // fresh slices
		tc.change(&b.Members)
		enc, err := encodeState(8, &b)
		if err != nil {
			t.Fatal(err)
		}
		bad(name, enc, tc.want)
	}
	// The format must match the level, both ways.
	enc, err := encodeState(7, st)
	if err != nil {
		t.Fatal(err)
	}
	bad("format 7 at LevelMembership", enc, "version 8 is written from level")
	low := *st
	low.Level.Level = LevelAuth
	if enc, err = encodeState(8, &low); err != nil {
		t.Fatal(err)
	}
	bad("format 8 below LevelMembership", enc, "version 8 is written from level")
	if enc, err = encodeState(7, &low); err != nil {
		t.Fatal(err)
	}
	if r, err := RestoreStateMachine(SMOptions{}, enc); err != nil || r.Members().Current.Version != 0 {
		t.Fatalf("the same state as format 7 below the level: %v, membership %+v (want none)", err, r.Members())
	}
}

// TestStartNewClusterMembers: a restored backup's new cluster has the
// membership its members are given, version 1, not the old cluster's,
// in its snapshot too; a membership that is not a first one is refused.
func TestStartNewClusterMembers(t *testing.T) {
	h := membersHarness(t, LevelMembership)
	h.configSlot(withMember(h.sm.Members(), 4, false))
	for h.sm.Members().Pending() {
		h.noopSlot()
	}
	h.configSlot(withMember(h.sm.Members(), 5, true)) // version 3, pending
	old := mustSnapshot(t, h.sm)
	boot := paxos.Bootstrap(paxos.NewMembership(map[paxos.NodeID]string{1: "new1:7001", 2: "new2:7002"}))
	id := bytes.Repeat([]byte{3}, ClusterIDBytes)
	for name, c := range map[string]paxos.Configs{
		"version 2": func() paxos.Configs { b := boot.Clone(); b.Current.Version = 2; return b }(),
		"pending":   func() paxos.Configs { b := boot.Clone(); b.Next, b.NextAt = boot.Current, 9; return b }(),
		"no voter":  paxos.Bootstrap(paxos.Membership{Version: 1}),
		"none":      {},
	} {
		sm := mustRestore(t, SMOptions{}, old)
		if _, err := sm.StartNewCluster(id, 10, c); !errors.Is(err, ErrInvalid) {
			t.Fatalf("%s: %v, want ErrInvalid", name, err)
		}
	}
	sm := mustRestore(t, SMOptions{}, old)
	if m := sm.Members(); m.Current.Version != 2 || !m.Pending() {
		t.Fatalf("setup: the old membership %+v", m)
	}
	if _, err := sm.StartNewCluster(id, 10, boot); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(sm.Members(), boot) {
		t.Fatalf("new cluster's membership %+v, want %+v", sm.Members(), boot)
	}
	r := mustRestore(t, SMOptions{}, mustSnapshot(t, sm))
	if !reflect.DeepEqual(r.Members(), boot) || r.Hash() != sm.Hash() {
		t.Fatalf("restored new cluster's membership %+v, want %+v", r.Members(), boot)
	}
}
