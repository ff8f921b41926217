package wal

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/cockroachdb/pebble/vfs/errorfs"
	"github.com/paxosd/paxosd/paxos"
)

// TestCrashFreshDirectory: a store created in a new directory survives a
// crash although nothing but the store itself was ever synced. Pebble
// alone does not sync the parent of the directory it creates (see
// ensureDir); this is the regression test for that.
func TestCrashFreshDirectory(t *testing.T) {
	fs := vfs.NewStrictMem()
	s, err := Open("/var/lib/paxosd", testID, Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	want := paxos.State{Promised: paxos.Ballot{Round: 4, Node: 2}}
	mustSave(t, s, paxos.Persist{Promised: want.Promised})
	fs.SetIgnoreSyncs(true)
	s.Close()
	fs.ResetToSyncedState()
	fs.SetIgnoreSyncs(false)

	s, err = Open("/var/lib/paxosd", testID, Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.IsNew() {
		t.Fatal("the store vanished in the crash")
	}
	if got := mustLoad(t, s); !equalState(got, want) {
		t.Fatalf("after crash: %s, want %s", describeState(got), describeState(want))
	}
}

// TestOpenIOErrors injects an I/O error into the n-th filesystem operation
// of Open, for every n until Open gets through untouched. Open must fail
// with an error naming the I/O error (Pebble v1.1 treats a failed MANIFEST
// write as fatal and panics inside; Open returns that as an error too, so
// that a node started on a bad disk prints one line, not a stack trace) or
// succeed with a working store. It must never hang, never panic, and never
// report success over a broken store.
func TestOpenIOErrors(t *testing.T) {
	for n := int32(0); ; n++ {
		inj := errorfs.OnIndex(n)
		fs := errorfs.Wrap(vfs.NewMem(), inj)
		s, panicked, err := openRecover(fs)
		if panicked != "" {
			t.Fatalf("error at op %d: Open panicked: %s", n, panicked)
		}
		if err != nil {
			if !errors.Is(err, errorfs.ErrInjected) || !strings.HasPrefix(err.Error(), "wal: ") {
				t.Fatalf("error at op %d: Open returned %v", n, err)
			}
			continue
		}
		if inj.Index() >= 0 {
			// Open finished before reaching op n: every op has been tried.
			s.Close()
			return
		}
		// The injected error hit something Open could ignore (a cleanup).
		mustSave(t, s, paxos.Persist{Promised: paxos.Ballot{Round: 1, Node: 1}})
		if got := mustLoad(t, s); got.Promised != (paxos.Ballot{Round: 1, Node: 1}) {
			t.Fatalf("error at op %d: store opened but lost a Save: %s", n, describeState(got))
		}
		s.Close()
	}
}

func openRecover(fs vfs.FS) (s *Store, panicked string, err error) {
	defer func() {
		if r := recover(); r != nil {
			panicked = fmt.Sprint(r)
		}
	}()
	s, err = Open("/data", testID, Options{FS: fs})
	return s, "", err
}

// TestSaveWriteErrorIsFatal: when the WAL write under a Save fails, Save
// does not return (Pebble's commit pipeline is broken and the disk state is
// unknown, so the process must stop): with the default logger it panics
// naming the error. What it must never do is return nil.
func TestSaveWriteErrorIsFatal(t *testing.T) {
	var armed atomic.Bool
	fs := errorfs.Wrap(vfs.NewMem(), errorfs.InjectorFunc(func(op errorfs.Op, path string) error {
		if armed.Load() && op == errorfs.OpFileWrite && strings.HasSuffix(path, ".log") {
			return errorfs.ErrInjected
		}
		return nil
	}))
	s := openMem(t, fs)
	mustSave(t, s, paxos.Persist{Promised: paxos.Ballot{Round: 1, Node: 1}})
	armed.Store(true)
	msg := mustPanic(t, func() { _ = s.Save(paxos.Persist{Promised: paxos.Ballot{Round: 2, Node: 1}}) })
	if !strings.Contains(msg, "wal: pebble fatal error") || !strings.Contains(msg, "injected error") {
		t.Fatalf("Save panicked with %q", msg)
	}
	// The DB is unusable now; it is deliberately not closed (its commit
	// pipeline is wedged), as a real process would exit here.
}
