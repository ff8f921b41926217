package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/wal"
	"github.com/paxosd/paxosd/wire"
)

// saveBackup saves the cluster's snapshot to a backup file at path, as
// paxosd snapshot save does.
func saveBackup(t *testing.T, ctx context.Context, cl *client.Client, path string) client.SavedSnapshot {
	t.Helper()
	w, err := wal.CreateBackup(path)
	if err != nil {
		t.Fatal(err)
	}
	chunks := 0
	saved, err := cl.SnapshotSave(ctx, w, func(client.SnapshotProgress) { chunks++ })
	if err != nil {
		w.Abort()
		t.Fatalf("snapshot save: %v", err)
	}
	if _, err := w.Finish(paxos.Slot(saved.Slot)); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if chunks == 0 {
		t.Error("no progress reported")
	}
	return saved
}

// TestSnapshotSaveRestore: a save holds every acknowledged write (taken
// after a barrier, not the last periodic snapshot: there is none yet);
// restored into three new data directories with new addresses, the new
// cluster serves every key, its numbers are above the old ones, its locks
// are free, old watches get Compacted, and the three members agree.
func TestSnapshotSaveRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	old := startTestCluster(t)
	old.waitLeader()
	ctx, cl := old.client(30 * time.Second)
	var lastRev uint64
	for i := range 300 {
		rev, err := cl.Put(ctx, fmt.Sprintf("k/%03d", i), bytes.Repeat([]byte{byte(i)}, 5000))
		if err != nil {
			t.Fatal(err)
		}
		lastRev = rev
	}
	s, err := cl.NewSession(ctx, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	lk, err := s.Lock(ctx, "jobs")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "backup.snap")
	saved := saveBackup(t, ctx, cl, path)
	if saved.Revision < lastRev || saved.Size < 300*5000 {
		t.Fatalf("saved %+v: want revision >= %d (every acknowledged put) and > 1.5 MB (several chunks)", saved, lastRev)
	}
	info, err := CheckBackup(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Keys != 300 || info.Revision != saved.Revision || uint64(info.Slot) != saved.Slot || info.CRC != saved.CRC || info.Sessions != 1 || info.Locks != 1 {
		t.Fatalf("backup %+v, saved %+v", info, saved)
	}

	// A non-root user may not save once auth is on: tested in
	// cmd/paxosd (the auth end-to-end test); here, the restore.
	nw := newTestCluster(t, func(c *Config) { c.Join = JoinExisting })
	var hashes []uint64
	for id := paxos.NodeID(1); id <= 3; id++ {
		res, err := RestoreBackup(RestoreConfig{File: path, DataDir: filepath.Join(nw.dir, fmt.Sprint(id)), ID: id, Peers: nw.peers, Bump: 1000})
		if err != nil {
			t.Fatalf("restore node %d: %v", id, err)
		}
		if res.Report.Sessions != 1 || res.Report.Locks != 1 {
			t.Errorf("restore report %+v: want the session and its lock released", res.Report)
		}
		hashes = append(hashes, res.Hash)
	}
	if hashes[0] != hashes[1] || hashes[1] != hashes[2] {
		t.Fatalf("restored state hashes differ: %x", hashes)
	}
	if _, err := RestoreBackup(RestoreConfig{File: path, DataDir: filepath.Join(nw.dir, "1"), ID: 1, Peers: nw.peers, Bump: 1000}); err == nil {
		t.Error("restored over a data directory that holds a store")
	}
	for id := range nw.peers {
		nw.start(id)
	}
	nw.waitLeader()
	// The new cluster's membership is its own --peers, never the old
	// cluster's, which the backup holds from cluster level 16 on.
	want := (&Config{Peers: nw.peers}).bootstrapMembers()
	for id, n := range nw.nodes {
		if got := onLoop(n, func() paxos.Configs { return n.sm.Members() }); !reflect.DeepEqual(got, want) {
			t.Errorf("node %d of the restored cluster (the backup's level %d): membership %+v, want %+v", id, info.Level, got, want)
		}
	}
	nctx, ncl := nw.client(30 * time.Second)
	for i := range 300 {
		kv, err := ncl.Get(nctx, fmt.Sprintf("k/%03d", i))
		if err != nil || !bytes.Equal(kv.Value, bytes.Repeat([]byte{byte(i)}, 5000)) {
			t.Fatalf("key %d after the restore: %v", i, err)
		}
	}
	rev, err := ncl.Put(nctx, "after", []byte("x"))
	if err != nil || rev <= saved.Revision+1000 {
		t.Fatalf("first put of the new cluster: revision %d, %v; want above %d", rev, err, saved.Revision+1000)
	}
	ns, err := ncl.NewSession(nctx, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	nlk, err := ns.TryLock(nctx, "jobs") // free: its holder's session is gone
	if err != nil {
		t.Fatalf("the old holder's lock in the new cluster: %v", err)
	}
	if nlk.Token <= lk.Token+1000 {
		t.Errorf("new token %d, old %d: want above old + bump", nlk.Token, lk.Token)
	}
	ch, werr := ncl.Watch(nctx, "k/", client.WithPrefix(), client.WithRevision(saved.Revision))
	for range ch {
	}
	if err := werr(); !errors.Is(err, client.ErrCompacted) {
		t.Errorf("a watch resumed at the old revision: %v, want ErrCompacted", err)
	}
}

// TestSnapshotSaveCancel: a Cancel of a save that is streaming stops it:
// the stream ends with err Canceled before the whole snapshot was sent.
// A client that does not read holds the node's encoder back (blocking
// sends), so the cancel arrives while most of the snapshot is unsent.
func TestSnapshotSaveCancel(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	c := startTestCluster(t)
	c.waitLeader()
	ctx, cl := c.client(60 * time.Second)
	big := bytes.Repeat([]byte("x"), 60<<10)
	for i := range 400 { // 24 MB: far more than the socket buffers hold
		if _, err := cl.Put(ctx, fmt.Sprintf("big/%03d", i), big); err != nil {
			t.Fatal(err)
		}
	}
	sc, err := wire.DialClientConfig(ctx, c.peers[c.waitLeader()], wire.DialConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if err := sc.Send(&wire.Request{ID: 7, Op: wire.OpSnapshotSave, ClientID: 99, Seq: 1}); err != nil {
		t.Fatal(err)
	}
	first, err := sc.Recv()
	if err != nil || first.Err != wire.ErrNone || first.SnapSlot == 0 {
		t.Fatalf("first response %+v, %v", first, err)
	}
	time.Sleep(200 * time.Millisecond) // the encoder fills the buffers and waits
	if err := sc.Send(&wire.Request{ID: 8, Op: wire.OpCancel, CancelID: 7}); err != nil {
		t.Fatal(err)
	}
	var got uint64
	for {
		r, err := sc.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if r.ID != 7 {
			continue
		}
		got += uint64(len(r.Data))
		if r.StreamEnd {
			if r.Err != wire.ErrCanceled {
				t.Fatalf("the save's last response: err %v %q, want Canceled", r.Err, r.ErrMsg)
			}
			break
		}
	}
	if got >= 24<<20 {
		t.Errorf("%d bytes arrived before the cancel took: all of it", got)
	}
}
