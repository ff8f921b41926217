package wal

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/cockroachdb/pebble/vfs/errorfs"

	"github.com/paxosd/paxosd/paxos"
)

// Bad disks: a data directory whose Pebble files are damaged, one in use
// by another process, and a disk that fills up. Each gets one line that
// names the directory and what happened (the DamagedError line ends by
// saying what to do), never a panic that reaches the operator.

// damagedSuffix ends every DamagedError line.
const damagedSuffix = "; the node must not vote from it: restore the directory from a backup, or move it aside and start the node with --rejoin to rebuild it from the other members"

// realStore creates a store on the real disk holding two Saves: the first
// flushed into an sstable, the second only in the WAL, which is how a
// node's directory looks most of the time. It returns the directory.
func realStore(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	s, err := Open(dir, testID, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustSave(t, s, paxos.Persist{Promised: paxos.Ballot{Round: 2, Node: 1}, Entries: []paxos.Entry{ent(1, 2, 1, batch("a"))}, Commit: 1})
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	mustSave(t, s, paxos.Persist{Promised: paxos.Ballot{Round: 3, Node: 1}, Entries: []paxos.Entry{ent(2, 3, 1, batch("b"))}, Commit: 2})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// newest returns the last (by name) file in dir matching pattern.
func newest(t *testing.T, dir, pattern string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, pattern))
	if len(m) == 0 {
		t.Fatalf("no %s in %s", pattern, dir)
	}
	sort.Strings(m)
	return m[len(m)-1]
}

func flipByte(t *testing.T, path string, at float64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[min(int(float64(len(b))*at), len(b)-1)] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func truncateTo(t *testing.T, path string, frac float64) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, int64(float64(fi.Size())*frac)); err != nil {
		t.Fatal(err)
	}
}

// TestDamagedDirectory damages a real store's files the ways a bad disk,
// a bad copy or a careless operator would, and checks that Open refuses it
// with one line: "wal: data directory DIR is damaged (WHAT PEBBLE FOUND);
// the node must not vote from it: ...". WHAT is Pebble's own account, with
// file names and offsets; the patterns below pin it down to those.
func TestDamagedDirectory(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, dir string) (detail string) // a regexp; DIR, MANIFEST, SST stand for the names
	}{
		{"MANIFEST with a byte flipped", func(t *testing.T, dir string) string {
			// Early in the file: damage in its last edit reads as a
			// torn write, which Pebble recovers from the WAL files still
			// there.
			flipByte(t, newest(t, dir, "MANIFEST-*"), 0.1)
			return `pebble: malformed manifest file "MANIFEST" for DB "DIR"`
		}},
		{"MANIFEST truncated", func(t *testing.T, dir string) string {
			truncateTo(t, newest(t, dir, "MANIFEST-*"), 0.1)
			return `pebble: malformed manifest file "MANIFEST" for DB "DIR"`
		}},
		{"MANIFEST deleted", func(t *testing.T, dir string) string {
			os.Remove(newest(t, dir, "MANIFEST-*"))
			return `pebble: could not open manifest file "MANIFEST" for DB "DIR": open DIR/MANIFEST: no such file or directory`
		}},
		// Without its manifest marker Pebble sees no database, and would
		// create an empty one beside the old files: the node would vote
		// again with none of its promises (checkOrphans).
		{"manifest marker deleted", func(t *testing.T, dir string) string {
			os.Remove(newest(t, dir, "marker.manifest.*"))
			return `it holds Pebble data \(` + pebbleFiles + `\) but no database: its manifest marker or MANIFEST is gone`
		}},
		{"only the sstables left", func(t *testing.T, dir string) string {
			names, _ := os.ReadDir(dir)
			for _, n := range names {
				if filepath.Ext(n.Name()) != ".sst" {
					os.Remove(filepath.Join(dir, n.Name()))
				}
			}
			return `it holds Pebble data \(SST.sst\) but no database: its manifest marker or MANIFEST is gone`
		}},
		{"sstable with a byte flipped", func(t *testing.T, dir string) string {
			flipByte(t, newest(t, dir, "*.sst"), 0.3)
			return `corrupt data: pebble: backing file SST error: pebble/table: invalid table SST \(checksum mismatch at [0-9]+/[0-9]+\)`
		}},
		{"sstable footer damaged", func(t *testing.T, dir string) string {
			flipByte(t, newest(t, dir, "*.sst"), 1)
			return `corrupt data: pebble: backing file SST error: pebble/table: invalid table \(bad magic number: 0x[0-9a-f]+\)`
		}},
		{"sstable truncated", func(t *testing.T, dir string) string {
			truncateTo(t, newest(t, dir, "*.sst"), 0.5)
			return `L0: SST: object size mismatch \(DIR/SST.sst\): [0-9]+ \(disk\) != [0-9]+ \(MANIFEST\)`
		}},
		{"sstable deleted", func(t *testing.T, dir string) string {
			os.Remove(newest(t, dir, "*.sst"))
			return `L0: SST: file SST \(type 2\) unknown to the objstorage provider: file does not exist`
		}},
		{"OPTIONS overwritten", func(t *testing.T, dir string) string {
			os.WriteFile(newest(t, dir, "OPTIONS-*"), []byte("garbage"), 0o644)
			return `invalid key=value syntax: "garbage"`
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := realStore(t)
			manifest := filepath.Base(newest(t, dir, "MANIFEST-*"))
			sst := strings.TrimSuffix(filepath.Base(newest(t, dir, "*.sst")), ".sst")
			detail := tc.damage(t, dir)
			r := strings.NewReplacer("DIR", regexp.QuoteMeta(dir), "MANIFEST\"", manifest+`"`, "MANIFEST:", manifest+":", "SST", sst)
			want := regexp.MustCompile("^" + regexp.QuoteMeta("wal: data directory "+dir+" is damaged (") +
				r.Replace(detail) + regexp.QuoteMeta(")"+damagedSuffix) + "$")
			s, err := Open(dir, testID, Options{})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded on a damaged directory")
			}
			var de *DamagedError
			if !want.MatchString(err.Error()) || !errors.As(err, &de) || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open:\n got %s\nwant %s", err, want)
			}
		})
	}
}

// pebbleFiles matches a list of WAL and sstable names.
const pebbleFiles = `[0-9]{6}\.(log|sst)(, [0-9]{6}\.(log|sst))*`

// TestNewStoreBesideLeftovers: what an interrupted creation leaves (a
// MANIFEST written halfway, before Pebble's marker pointed at it) is not
// damage: the store is created.
func TestNewStoreBesideLeftovers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "MANIFEST-000001"), []byte("half a manifest"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir, testID, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.IsNew() {
		t.Fatal("not a new store")
	}
}

// TestPebblePanicOnOpen: a panic inside pebble.Open that is not a fatal
// I/O error (Pebble v1.1 has crashed on directories with files missing) is
// reported as damage, in one line, not as a stack trace.
func TestPebblePanicOnOpen(t *testing.T) {
	_, err := Open("/data", testID, Options{FS: panickyFS{vfs.NewMem()}})
	want := "wal: data directory /data is damaged (pebble crashed reading it: listing /data)" + damagedSuffix
	if err == nil || err.Error() != want || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open:\n got %v\nwant %s", err, want)
	}
}

// panickyFS panics when Pebble lists the directory, standing for a bug in
// Pebble met on a damaged directory.
type panickyFS struct{ vfs.FS }

func (fs panickyFS) List(dir string) ([]string, error) {
	if called := strings.Contains(string(debug.Stack()), "pebble.Open"); called {
		panic("listing " + dir)
	}
	return fs.FS.List(dir)
}

// TestWALDamageReadsAsATornTail documents a limit: Pebble v1.1 cannot tell
// damage inside its newest WAL file from a write torn by a crash, so it
// replays the records before the damage and ignores the rest, Saves that
// had returned included. The store opens in the state of an earlier Save
// (a consistent one: never a mix, never a panic). paxosd cannot detect
// this without checksums of its own outside Pebble; see docs/FUZZING.md.
func TestWALDamageReadsAsATornTail(t *testing.T) {
	for name, damage := range map[string]func(t *testing.T, path string){
		"byte flipped": func(t *testing.T, path string) { flipByte(t, path, 0.02) },
		"truncated":    func(t *testing.T, path string) { truncateTo(t, path, 0.01) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := realStore(t)
			damage(t, newest(t, dir, "*.log"))
			s, err := Open(dir, testID, Options{})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer s.Close()
			want := paxos.State{Promised: paxos.Ballot{Round: 2, Node: 1}, Entries: []paxos.Entry{ent(1, 2, 1, batch("a"))}, Commit: 1}
			if got := mustLoad(t, s); !equalState(got, want) {
				t.Fatalf("after WAL damage: %s, want the first Save's state %s", describeState(got), describeState(want))
			}
		})
	}
}

// TestDirectoryInUse: a second Open of a directory (another node started
// on the same --data-dir) fails at once with one line, and the first goes
// on working.
func TestDirectoryInUse(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s, err := Open(dir, testID, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = Open(dir, testID, Options{})
	want := "wal: data directory " + dir + " is in use (is another paxosd running with this data directory?): lock held by current process"
	if err == nil || err.Error() != want || !errors.Is(err, ErrDirInUse) {
		t.Fatalf("second Open:\n got %v\nwant %s", err, want)
	}
	mustSave(t, s, paxos.Persist{Promised: paxos.Ballot{Round: 1, Node: 1}})
}

// enospcFS fails writes and syncs of the files whose names match, once
// armed, with ENOSPC: a disk that has filled up.
func enospcFS(base vfs.FS, armed *atomic.Bool, match func(path string) bool) vfs.FS {
	return errorfs.Wrap(base, errorfs.InjectorFunc(func(op errorfs.Op, path string) error {
		switch op {
		case errorfs.OpFileWrite, errorfs.OpFileWriteAt, errorfs.OpFileSync, errorfs.OpFileFlush:
		default:
			return nil // files and directories can still be created
		}
		if armed.Load() && match(path) {
			return syscall.ENOSPC
		}
		return nil
	}))
}

// TestSaveOnFullDisk: when the WAL cannot be written, Save does not return
// (see Options.Logger): it panics with a *FatalError that names the cause,
// which the node turns into one error line before it stops. Every Save
// that returned is durable; the one that failed was never acknowledged.
func TestSaveOnFullDisk(t *testing.T) {
	mem := vfs.NewStrictMem()
	var armed atomic.Bool
	s := openMem(t, enospcFS(mem, &armed, func(p string) bool { return strings.HasSuffix(p, ".log") }))
	acked := paxos.Persist{Promised: paxos.Ballot{Round: 1, Node: 1}, Entries: []paxos.Entry{ent(1, 1, 1, batch("a"))}, Commit: 1}
	mustSave(t, s, acked)
	armed.Store(true)
	var fe *FatalError
	msg := mustPanicWith(t, func() {
		_ = s.Save(paxos.Persist{Promised: paxos.Ballot{Round: 2, Node: 1}, Entries: []paxos.Entry{ent(2, 2, 1, batch("b"))}})
	}, &fe)
	if msg != "wal: pebble fatal error: pebble: fatal commit error: no space left on device" || !errors.Is(fe, syscall.ENOSPC) {
		t.Fatalf("Save on a full disk panicked with %q (ENOSPC: %v)", msg, errors.Is(fe, syscall.ENOSPC))
	}
	// The machine restarts with what was synced; the wedged DB is left
	// alone, as a process would exit here.
	mem.ResetToSyncedState()
	s2 := openMem(t, copyFS(t, mem, "/data"))
	defer s2.Close()
	if got := mustLoad(t, s2); !equalState(got, paxos.State{Promised: acked.Promised, Entries: acked.Entries, Commit: 1}) {
		t.Fatalf("after the full disk: %s", describeState(got))
	}
}

// TestOpenOnFullDisk: a node started on a full disk (its MANIFEST, or its
// identity record, cannot be written) gets one error line from Open; Pebble
// treats both as fatal and panics inside, which must not reach the
// operator as a stack trace.
func TestOpenOnFullDisk(t *testing.T) {
	for _, tc := range []struct {
		name  string
		match func(string) bool
		want  string
	}{
		{"MANIFEST", func(p string) bool { return strings.Contains(p, "MANIFEST") },
			"wal: cannot write data directory /data (disk full or failing?): MANIFEST flush failed: no space left on device"},
		{"WAL", func(p string) bool { return strings.HasSuffix(p, ".log") },
			"wal: cannot write data directory /data (disk full or failing?): pebble: fatal commit error: no space left on device"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var armed atomic.Bool
			armed.Store(true)
			_, err := Open("/data", testID, Options{FS: enospcFS(vfs.NewMem(), &armed, tc.match)})
			if err == nil || err.Error() != tc.want || !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("Open on a full disk:\n got %v\nwant %s", err, tc.want)
			}
		})
	}
}

// TestBackgroundFatalOnFullDisk: a flush that cannot record its sstable in
// the MANIFEST is fatal on one of Pebble's own goroutines, where nobody can
// recover a panic: backgroundFatal prints one line and exits instead of a
// stack trace. Here it is replaced, to see the line.
func TestBackgroundFatalOnFullDisk(t *testing.T) {
	got := make(chan string, 1)
	report := func(fe *FatalError) {
		got <- fe.Error()
		select {} // stand for the exit: this goroutine never goes on
	}
	old := backgroundFatal.Swap(&report)
	t.Cleanup(func() { backgroundFatal.Store(old) })
	var armed atomic.Bool
	s := openMem(t, enospcFS(vfs.NewMem(), &armed, func(p string) bool { return strings.Contains(p, "MANIFEST") }))
	mustSave(t, s, paxos.Persist{Promised: paxos.Ballot{Round: 1, Node: 1}, Entries: []paxos.Entry{ent(1, 1, 1, batch("a"))}})
	armed.Store(true)
	go s.db.Flush() // waits forever for the dead flush; it is left behind
	select {
	case msg := <-got:
		if msg != "wal: pebble fatal error: MANIFEST flush failed: no space left on device" {
			t.Fatalf("background fatal error: %q", msg)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the failed flush was not reported")
	}
}

// mustPanicWith runs f, which must panic with a *FatalError; it stores it
// in *fe and returns its message.
func mustPanicWith(t *testing.T, f func(), fe **FatalError) (msg string) {
	t.Helper()
	defer func() {
		r := recover()
		var ok bool
		if *fe, ok = r.(*FatalError); !ok {
			t.Fatalf("panicked with %T %v, want a *FatalError", r, r)
		}
		msg = (*fe).Error()
	}()
	f()
	t.Fatal("did not panic")
	return ""
}

// copyFS copies dir of src, but its LOCK, into a new memory FS: the disk
// as a restarted machine finds it.
func copyFS(t *testing.T, src vfs.FS, dir string) vfs.FS {
	t.Helper()
	dst := vfs.NewMem()
	if err := dst.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	names, err := src.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if n == "LOCK" {
			continue
		}
		if _, err := vfs.Clone(src, dst, src.PathJoin(dir, n), dst.PathJoin(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}
