package wal

import (
	"fmt"
	"math/rand"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
	"github.com/paxosd/paxosd/paxos"
)

// testID is the identity most tests open with.
var testID = Identity{ClusterID: "test", NodeID: 1}

// openMem opens a store in "/data" on fs, failing the test on error.
func openMem(t testing.TB, fs vfs.FS) *Store {
	t.Helper()
	s, err := Open("/data", testID, Options{FS: fs})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func mustSave(t testing.TB, s *Store, p paxos.Persist) {
	t.Helper()
	if err := s.Save(p); err != nil {
		t.Fatalf("Save(%s): %v", describePersist(p), err)
	}
}

func mustLoad(t testing.TB, s *Store) paxos.State {
	t.Helper()
	st, err := s.Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return st
}

func batch(cmds ...string) paxos.Value {
	v := paxos.Value{Kind: paxos.ValueBatch}
	for _, c := range cmds {
		v.Cmds = append(v.Cmds, []byte(c))
	}
	return v
}

func ent(slot paxos.Slot, round uint64, node paxos.NodeID, v paxos.Value) paxos.Entry {
	return paxos.Entry{Slot: slot, Ballot: paxos.Ballot{Round: round, Node: node}, Value: v}
}

// equalEntries compares entries by value (nil and empty command lists alike).
func equalEntries(a, b []paxos.Entry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Slot != b[i].Slot || a[i].Ballot != b[i].Ballot || !a[i].Value.Equal(b[i].Value) {
			return false
		}
	}
	return true
}

func equalState(a, b paxos.State) bool {
	return a.Promised == b.Promised && a.Commit == b.Commit && equalEntries(a.Entries, b.Entries)
}

func describeState(st paxos.State) string {
	var b strings.Builder
	fmt.Fprintf(&b, "promised=%s commit=%d entries=[", st.Promised, st.Commit)
	for i, e := range st.Entries {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d@%s:%s", e.Slot, e.Ballot, describeValue(e.Value))
	}
	b.WriteByte(']')
	return b.String()
}

func describePersist(p paxos.Persist) string {
	return describeState(paxos.State{Promised: p.Promised, Entries: p.Entries, Commit: p.Commit})
}

// describeValue includes a hash of the commands, so two different values
// of the same size print differently.
func describeValue(v paxos.Value) string {
	var h uint32 = 2166136261
	for _, c := range v.Cmds {
		for _, x := range c {
			h = (h ^ uint32(x)) * 16777619
		}
		h = (h ^ 0xff) * 16777619
	}
	return fmt.Sprintf("k%d/%d/%08x", v.Kind, len(v.Cmds), h)
}

// randValue draws a value: sometimes a no-op, sometimes an empty command.
func randValue(rng *rand.Rand, cmdBytesMax int) paxos.Value {
	if rng.Intn(5) == 0 {
		return paxos.Noop
	}
	v := paxos.Value{Kind: paxos.ValueBatch}
	for n := 1 + rng.Intn(3); n > 0; n-- {
		c := make([]byte, rng.Intn(cmdBytesMax+1))
		rng.Read(c)
		v.Cmds = append(v.Cmds, c)
	}
	return v
}

// rawDB opens the store's Pebble directly, to plant bad records.
func rawDB(t testing.TB, fs vfs.FS) *pebble.DB {
	t.Helper()
	db, err := pebble.Open("/data", &pebble.Options{FS: fs, Logger: quietLogger{}})
	if err != nil {
		t.Fatalf("pebble.Open: %v", err)
	}
	return db
}

// syncCountingFS counts file syncs (Sync, SyncData, SyncTo) on WAL files
// (*.log), which is where a commit's fsync lands.
type syncCountingFS struct {
	vfs.FS
	syncs atomic.Int64
}

func (fs *syncCountingFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return &syncCountingFile{File: f, n: &fs.syncs}, nil
}

func (fs *syncCountingFS) Create(name string) (vfs.File, error) {
	f, err := fs.FS.Create(name)
	return fs.wrap(name, f, err)
}

func (fs *syncCountingFS) ReuseForWrite(oldname, newname string) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname)
	return fs.wrap(newname, f, err)
}

type syncCountingFile struct {
	vfs.File
	n *atomic.Int64
}

func (f *syncCountingFile) Sync() error     { f.n.Add(1); return f.File.Sync() }
func (f *syncCountingFile) SyncData() error { f.n.Add(1); return f.File.SyncData() }
func (f *syncCountingFile) SyncTo(length int64) (bool, error) {
	f.n.Add(1)
	return f.File.SyncTo(length)
}

// mustPanic runs f and returns the panic message, failing if f returns.
func mustPanic(t *testing.T, f func()) (msg string) {
	t.Helper()
	defer func() {
		r := recover()
		if r == nil {
			t.Fatalf("did not panic")
		}
		msg = fmt.Sprint(r)
	}()
	f()
	return ""
}
