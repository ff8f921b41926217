package statemachine

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
	"weak"

	"github.com/paxosd/paxosd/paxos"
)

// A restored state lets go of the values its writes replace. Loading a
// snapshot into the tree left half its items behind in arrays past their
// nodes' ends, where they kept every value overwritten since alive until
// the node was next copied (kvStore.loaded): a node rejoining by a
// million-key snapshot held 60-100 MB beyond its state through its
// catch-up. Here every key of a restored state is overwritten, and none of
// the restored values may outlive a collection.
func TestRestoredStateLetsOverwrittenValuesGo(t *testing.T) {
	const keys = 20000
	value := bytes.Repeat([]byte("v"), 256)
	sm := NewStateMachine(SMOptions{})
	slot := paxos.Slot(0)
	put := func(sm *StateMachine, key string, seq uint64) {
		slot++
		sm.Apply(slot, EncodeCommand(&Command{Op: OpPut, Key: key, Value: value, ClientID: 7, Seq: seq, AckedBelow: seq}))
	}
	for i := 0; i < keys; i++ {
		put(sm, fmt.Sprintf("key/%08d", i), uint64(i+1))
	}
	view, err := sm.View()
	if err != nil {
		t.Fatal(err)
	}
	var snap bytes.Buffer
	if _, err := view.WriteTo(&snap); err != nil {
		t.Fatal(err)
	}
	restored, err := RestoreStateMachine(SMOptions{}, snap.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	sm, view = nil, nil
	// Weak pointers to the restored values (each shares its allocation
	// with its key: joinKeyValue).
	olds := make([]weak.Pointer[byte], keys)
	for i := range olds {
		kv, ok := restored.Get(fmt.Sprintf("key/%08d", i))
		if !ok {
			t.Fatalf("key/%08d missing after the restore", i)
		}
		olds[i] = weak.Make(&kv.Value[0])
	}
	seq := uint64(keys)
	for i := 0; i < keys; i++ {
		seq++
		put(restored, fmt.Sprintf("key/%08d", i), seq)
	}
	// The watch history keeps the latest changes with their previous
	// values (KVHistoryMax events, 16 MiB): those stay, by design.
	hist := min(keys, restored.opts.KVHistoryMax)
	runtime.GC()
	alive := 0
	for i := range olds[:keys-hist] {
		if olds[i].Value() != nil {
			alive++
		}
	}
	runtime.KeepAlive(restored)
	if alive > 0 {
		t.Errorf("%d of the %d values restored from the snapshot and overwritten since are still alive after a collection", alive, keys-hist)
	}
}
