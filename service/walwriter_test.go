package service

import (
	"strings"
	"testing"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/wal"
)

// A panic inside the store (Pebble panics on a failed log write; wal.Save
// panics on a broken invariant such as slot 0) reaches the node as an
// error, so it stops with one line instead of a crash.
func TestSaveTurnsStorePanicIntoError(t *testing.T) {
	store, err := wal.Open(t.TempDir(), wal.Identity{ClusterID: "c", NodeID: 1}, wal.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	err = save(store, paxos.Persist{Entries: []paxos.Entry{{Slot: 0}}})
	if err == nil || !strings.Contains(err.Error(), "wal: write to the data directory failed") {
		t.Fatalf("save of an impossible entry: %v, want the write-failed error", err)
	}
	if err := save(store, paxos.Persist{Commit: 0, Entries: []paxos.Entry{{Slot: 1}}}); err != nil {
		t.Fatalf("ordinary save: %v", err)
	}
}

// mergePersist keeps the later promise and watermark and the later entry
// for a slot written twice.
func TestMergePersist(t *testing.T) {
	a := paxos.Persist{Promised: paxos.Ballot{Round: 1, Node: 1}, Entries: []paxos.Entry{{Slot: 1}}, Commit: 3}
	b := paxos.Persist{Promised: paxos.Ballot{Round: 2, Node: 1}, Entries: []paxos.Entry{{Slot: 1, Ballot: paxos.Ballot{Round: 2, Node: 1}}}}
	m := mergePersist(a, b)
	if m.Promised.Round != 2 || m.Commit != 3 || len(m.Entries) != 2 || m.Entries[1].Ballot.Round != 2 {
		t.Fatalf("merged %+v", m)
	}
}
