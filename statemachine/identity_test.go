package statemachine

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/paxosd/paxosd/paxos"
)

// TestClusterIdentity: the first cluster id applied wins; voters form a
// set; both survive a snapshot (format version 2), and a state without
// them is still written as version 1, which members of an older version
// read; clients cannot send either command.
func TestClusterIdentity(t *testing.T) {
	opts := SMOptions{}
	sm := NewStateMachine(opts)
	data, err := sm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if v := snapshotVersion(t, data); v != 1 {
		t.Fatalf("a state without identity snapshots as version %d, want 1", v)
	}
	idA, idB := bytes.Repeat([]byte{0xa}, 16), bytes.Repeat([]byte{0xb}, 16)
	slot := uint64(1)
	apply := func(c Command) Result {
		slot++
		return sm.Apply(paxos.Slot(slot), EncodeCommand(&c))
	}
	for _, c := range []Command{{Op: OpClusterID, Value: idA}, {Op: OpVoter, Reporter: 3}, {Op: OpClusterID, Value: idB},
		{Op: OpVoter, Reporter: 1}, {Op: OpVoter, Reporter: 3}} {
		if r := apply(c); r.Err != nil {
			t.Fatalf("%v: %v", c.String(), r.Err)
		}
	}
	for _, c := range []Command{{Op: OpClusterID, Value: idA[:15]}, {ClientID: 9, Seq: 1, Op: OpVoter, Reporter: 2}, {ClientID: 9, Seq: 2, Op: OpClusterID, Value: idB}} {
		if r := apply(c); !errors.Is(r.Err, ErrInvalid) {
			t.Fatalf("%v: %v, want ErrInvalid", c.String(), r.Err)
		}
	}
	if !bytes.Equal(sm.ClusterID(), idA) || !reflect.DeepEqual(sm.Voters(), []uint64{1, 3}) || !sm.IsVoter(3) || sm.IsVoter(2) {
		t.Fatalf("id %x voters %v", sm.ClusterID(), sm.Voters())
	}
	data, err = sm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if v := snapshotVersion(t, data); v != 2 {
		t.Fatalf("a state with identity snapshots as version %d, want 2", v)
	}
	restored, err := RestoreStateMachine(opts, data)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(restored.ClusterID(), idA) || !reflect.DeepEqual(restored.Voters(), []uint64{1, 3}) || restored.Hash() != sm.Hash() {
		t.Fatalf("restored id %x voters %v", restored.ClusterID(), restored.Voters())
	}
	// Version 2 with a damaged identity is refused.
	st, err := decodeSnapshotState(data)
	if err != nil {
		t.Fatal(err)
	}
	for name, damage := range map[string]func(*SnapIdentity){
		"short id":        func(i *SnapIdentity) { i.ClusterID = i.ClusterID[:3] },
		"unsorted voters": func(i *SnapIdentity) { i.Voters = []uint64{3, 1} },
		"voter 0":         func(i *SnapIdentity) { i.Voters = []uint64{0, 1} },
	} {
		st2 := *st
		st2.Identity = SnapIdentity{ClusterID: idA, Voters: []uint64{1, 3}}
		damage(&st2.Identity)
		b, err := encodeState(2, &st2)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := RestoreStateMachine(opts, b); !errors.Is(err, ErrBadSnapshot) {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

// snapshotVersion reads a snapshot's format version.
func snapshotVersion(t *testing.T, data []byte) uint64 {
	t.Helper()
	// [magic, version, ...]: fixarray header, fixstr magic, then the version.
	off := 1 + 1 + len(snapshotMagic)
	if len(data) <= off {
		t.Fatalf("snapshot of %d bytes", len(data))
	}
	return uint64(data[off])
}

// TestViewKeepsItsVoters: a view is encoded while the state machine goes
// on, and an OpVoter inserts into the voters in place: the view must hold
// its own copy. (The node simulation found replicas' snapshots of one slot
// differing, seed 30274, when the view shared the voters.)
func TestViewKeepsItsVoters(t *testing.T) {
	sm := NewStateMachine(SMOptions{})
	slot := paxos.Slot(0)
	apply := func(c Command) {
		slot++
		sm.ApplyCommand(slot, &c)
	}
	apply(Command{Op: OpClusterID, Value: bytes.Repeat([]byte{7}, 16)})
	for _, id := range []uint64{1, 3, 4} {
		apply(Command{Op: OpVoter, Reporter: id})
	}
	want := mustSnapshot(t, sm)
	v, err := sm.View()
	if err != nil {
		t.Fatal(err)
	}
	apply(Command{Op: OpVoter, Reporter: 2}) // shifts 3 and 4 in place
	var got bytes.Buffer
	if _, err := v.WriteTo(&got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatal("a view encoded after an OpVoter differs from the snapshot of its own slot")
	}
}
