package service

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/wal"
)

// A panic inside the store (Pebble panics on a failed log write; wal.Save
// panics on a broken invariant such as slot 0) reaches the node as an
// error, so it stops with one line instead of a crash — a line that says
// what happened: a full disk, a failing one, or a bug, not "disk full" for
// everything.
func TestSaveTurnsStorePanicIntoError(t *testing.T) {
	store, err := wal.Open(t.TempDir(), wal.Identity{ClusterID: "c", NodeID: 1}, wal.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	save := func(p paxos.Persist) error { return guarded(func() error { return store.Save(p) }) }
	err = save(paxos.Persist{Entries: []paxos.Entry{{Slot: 0}}})
	if err == nil || !strings.Contains(err.Error(), "wal: internal error while writing the data directory (a bug") {
		t.Fatalf("save of an impossible entry: %v, want the internal-error line", err)
	}
	if err := save(paxos.Persist{Commit: 0, Entries: []paxos.Entry{{Slot: 1}}}); err != nil {
		t.Fatalf("ordinary save: %v", err)
	}
	full := &wal.FatalError{}
	for _, tc := range []struct {
		panic any
		want  string
	}{
		{fmt.Errorf("pebble: fatal commit error: %w", &os.PathError{Op: "write", Path: "/d/000006.log", Err: syscall.ENOSPC}), "wal: the data directory's disk is full: "},
		{fmt.Errorf("wrapped: %w", full), "wal: write to the data directory failed (a failing disk?): "},
		{"index out of range", "wal: internal error while writing the data directory (a bug; please report it): index out of range"},
	} {
		err := guarded(func() error { panic(tc.panic) })
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("panic %v: %v, want a line starting %q", tc.panic, err, tc.want)
		}
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
