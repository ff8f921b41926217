package wal

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
	"github.com/paxosd/paxosd/paxos"
)

// TestIdentityMismatch: a data directory opens only under the identity it
// was created with, and the error names both.
func TestIdentityMismatch(t *testing.T) {
	fs := vfs.NewMem()
	s, err := Open("/x", Identity{ClusterID: "a", NodeID: 2}, Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	mustSave(t, s, paxos.Persist{Promised: paxos.Ballot{Round: 3, Node: 1}})
	s.Close()

	for _, tc := range []struct {
		id   Identity
		want string
	}{
		{Identity{ClusterID: "b", NodeID: 3}, `wal: data directory /x belongs to cluster "a" node 2, not cluster "b" node 3`},
		{Identity{ClusterID: "a", NodeID: 3}, `wal: data directory /x belongs to cluster "a" node 2, not cluster "a" node 3`},
		{Identity{ClusterID: "b", NodeID: 2}, `wal: data directory /x belongs to cluster "a" node 2, not cluster "b" node 2`},
	} {
		_, err := Open("/x", tc.id, Options{FS: fs})
		if !errors.Is(err, ErrIdentityMismatch) {
			t.Fatalf("Open as %+v: %v, want ErrIdentityMismatch", tc.id, err)
		}
		if err.Error() != tc.want {
			t.Errorf("Open as %+v:\n got %q\nwant %q", tc.id, err, tc.want)
		}
		var mm *IdentityMismatchError
		if !errors.As(err, &mm) || mm.Stored != (Identity{ClusterID: "a", NodeID: 2}) || mm.Want != tc.id {
			t.Errorf("Open as %+v: errors.As gives %+v", tc.id, mm)
		}
	}

	// The refused opens changed nothing.
	s, err = Open("/x", Identity{ClusterID: "a", NodeID: 2}, Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.IsNew() || mustLoad(t, s).Promised != (paxos.Ballot{Round: 3, Node: 1}) {
		t.Fatalf("store changed by refused opens: IsNew=%v %s", s.IsNew(), describeState(mustLoad(t, s)))
	}
}

func TestInvalidIdentity(t *testing.T) {
	for _, id := range []Identity{
		{ClusterID: "", NodeID: 1},
		{ClusterID: "a", NodeID: 0},
		{ClusterID: strings.Repeat("c", clusterIDBytesMax+1), NodeID: 1},
	} {
		if _, err := Open("/x", id, Options{FS: vfs.NewMem()}); !errors.Is(err, ErrInvalidIdentity) {
			t.Errorf("Open as %q/%d: %v, want ErrInvalidIdentity", id.ClusterID, id.NodeID, err)
		}
	}
}

// TestCorruptRecords: a stored record with bad bytes (planted under the
// store's nose) is reported as ErrCorrupt, by Open for the records it reads
// and by Load/Entries for entries, and nothing panics.
func TestCorruptRecords(t *testing.T) {
	good := func(t *testing.T) vfs.FS {
		fs := vfs.NewMem()
		s := openMem(t, fs)
		mustSave(t, s, paxos.Persist{
			Promised: paxos.Ballot{Round: 1, Node: 1},
			Entries:  []paxos.Entry{ent(1, 1, 1, batch("a")), ent(2, 1, 1, batch("b"))},
			Commit:   1,
		})
		s.Close()
		return fs
	}
	plant := func(t *testing.T, fs vfs.FS, key, value []byte) {
		db := rawDB(t, fs)
		if err := db.Set(key, value, pebble.Sync); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
	garbage := []byte{0x01, 0xff, 0xff}

	for _, tc := range []struct {
		name      string
		key       []byte
		atOpen    bool
		wantInMsg string
	}{
		{"identity", keyIdentity, true, "identity record"},
		{"promised", keyPromised, true, "promised ballot"},
		{"commit", keyCommit, true, "commit watermark"},
		{"entry", entryKey(2), false, "entry at slot 2"},
		{"entry key", []byte("e/short"), false, "entry key"},
		{"entry slot 0", entryKey(0), false, "slot 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := good(t)
			value := garbage
			if tc.name == "entry slot 0" {
				value = appendEntryValue(nil, ent(0, 1, 1, batch("z")))
			}
			plant(t, fs, tc.key, value)
			s, err := Open("/data", testID, Options{FS: fs})
			if tc.atOpen {
				checkCorrupt(t, "Open", err, tc.wantInMsg)
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer s.Close()
			_, err = s.Load()
			checkCorrupt(t, "Load", err, tc.wantInMsg)
			_, err = s.Entries(0, math.MaxUint64, 0)
			checkCorrupt(t, "Entries", err, tc.wantInMsg)
		})
	}

	t.Run("no identity", func(t *testing.T) {
		fs := vfs.NewMem()
		plant(t, fs, keyPromised, appendBallotValue(nil, paxos.Ballot{Round: 1, Node: 1}))
		_, err := Open("/data", testID, Options{FS: fs})
		checkCorrupt(t, "Open", err, "holds data but no identity record")
	})

	t.Run("pebble manifest", func(t *testing.T) {
		fs := good(t)
		names, err := fs.List("/data")
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if strings.HasPrefix(n, "MANIFEST-") {
				f, err := fs.Create("/data/" + n)
				if err != nil {
					t.Fatal(err)
				}
				f.Write([]byte("this is not a manifest, just some garbage bytes"))
				f.Close()
			}
		}
		_, err = Open("/data", testID, Options{FS: fs})
		checkCorrupt(t, "Open", err, "manifest")
	})
}

func checkCorrupt(t *testing.T, op string, err error, wantInMsg string) {
	t.Helper()
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("%s: %v, want ErrCorrupt", op, err)
	}
	if !strings.HasPrefix(err.Error(), "wal: ") || !strings.Contains(err.Error(), wantInMsg) {
		t.Fatalf("%s: message %q should start with \"wal: \" and mention %q", op, err, wantInMsg)
	}
}
