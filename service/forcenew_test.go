package service

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wal"
)

// survivorStore writes a data directory as a member of a formed cluster
// leaves it: slots 1-3 chosen (the cluster's level and uuid, puts of a and
// b), slot 4 accepted but not known chosen (a put of c), watermark 3.
func survivorStore(t *testing.T, dir string, uuid []byte) {
	t.Helper()
	store, err := wal.Open(dir, wal.Identity{ClusterID: "paxosd", NodeID: 1}, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	b := paxos.Ballot{Round: 3, Node: 2}
	batch := func(cs ...*statemachine.Command) paxos.Value {
		v := paxos.Value{Kind: paxos.ValueBatch}
		for _, c := range cs {
			v.Cmds = append(v.Cmds, statemachine.EncodeCommand(c))
		}
		return v
	}
	p := paxos.Persist{Promised: b, Commit: 3, Entries: []paxos.Entry{
		{Slot: 1, Ballot: b, Value: batch(&statemachine.Command{Op: statemachine.OpLevel, Level: statemachine.LevelMax},
			&statemachine.Command{Op: statemachine.OpClusterID, Value: uuid})},
		{Slot: 2, Ballot: b, Value: batch(&statemachine.Command{Op: statemachine.OpPut, Key: "a", Value: []byte("1")})},
		{Slot: 3, Ballot: b, Value: batch(&statemachine.Command{Op: statemachine.OpPut, Key: "b", Value: []byte("2")})},
		{Slot: 4, Ballot: b, Value: batch(&statemachine.Command{Op: statemachine.OpPut, Key: "c", Value: []byte("3")})},
	}}
	if err := store.Save(p); err != nil {
		t.Fatal(err)
	}
}

// TestForceNewCluster: the survivor's state up to its watermark becomes a
// new one-member cluster's (the accepted slot above it dropped), under a
// new uuid, numbers bumped, in a store with no promise and no log; the old
// directory is kept; a second run is ErrForcedBefore; a run cut short
// between the renames is refused with what to do.
func TestForceNewCluster(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node1")
	uuid := bytes.Repeat([]byte{7}, statemachine.ClusterIDBytes)
	survivorStore(t, dir, uuid)
	cfg := ForceNewConfig{DataDir: dir + "/", ID: 1, Listen: "127.0.0.1:7401", Logger: zerolog.Nop(),
		OldPeers: map[paxos.NodeID]string{1: "127.0.0.1:7401", 2: "127.0.0.1:7402", 3: "127.0.0.1:7403"}}
	res, err := ForceNewCluster(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Slot != 3 || res.Dropped != 1 || !bytes.Equal(res.OldClusterID, uuid) || bytes.Equal(res.ClusterID, uuid) {
		t.Fatalf("result %+v", res)
	}

	store, err := wal.Open(dir, wal.Identity{ClusterID: "paxosd", NodeID: 1}, wal.Options{MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.LoadTail()
	if err != nil {
		t.Fatal(err)
	}
	if !st.Promised.IsZero() || len(st.Entries) != 0 || st.Commit != 3 {
		t.Fatalf("the new store's tail: promise %v, %d entries, watermark %d: want no promise, no log, watermark 3", st.Promised, len(st.Entries), st.Commit)
	}
	if formed, err := store.Formed(); err != nil || !formed {
		t.Fatalf("the new store is not marked formed (%v)", err)
	}
	sm, err := loadSnapshot(store, smOptions(Config{}), zerolog.Nop(), systemClock{})
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := sm.Get("c"); ok {
		t.Error("the entry above the watermark was applied")
	}
	a, okA := sm.Get("a")
	b, okB := sm.Get("b")
	if !okA || !okB || string(a.Value) != "1" || string(b.Value) != "2" {
		t.Errorf("the chosen puts: a %+v %v, b %+v %v", a, okA, b, okB)
	}
	if !bytes.Equal(sm.ClusterID(), res.ClusterID) {
		t.Errorf("the state's uuid %x, want the new %x", sm.ClusterID(), res.ClusterID)
	}
	if res.Report.Revision < DefaultBumpRevision || sm.Revision() != res.Report.Revision {
		t.Errorf("revision %d (report %d): not bumped", sm.Revision(), res.Report.Revision)
	}
	m := sm.Members()
	if m.Current.Version != 1 || m.Pending() || len(m.Current.Members) != 1 || m.Current.Members[0].ID != 1 || m.Current.Members[0].Addr != cfg.Listen {
		t.Errorf("membership %+v: want version 1, node 1 alone at %s", m, cfg.Listen)
	}
	if _, err := os.Stat(filepath.Join(res.Kept)); err != nil {
		t.Errorf("the old directory is not kept: %v", err)
	}

	if _, err := ForceNewCluster(cfg); !errors.Is(err, ErrForcedBefore) {
		t.Errorf("a second run: %v, want ErrForcedBefore", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := ForceNewCluster(cfg); err == nil || !strings.Contains(err.Error(), "was cut short; move") {
		t.Errorf("after a run cut short: %v", err)
	}
}

// TestForceNewClusterRefusesDiverged: a node the state check found
// diverged cannot lend its state to a new cluster.
func TestForceNewClusterRefusesDiverged(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node1")
	survivorStore(t, dir, bytes.Repeat([]byte{7}, statemachine.ClusterIDBytes))
	store, err := wal.Open(dir, wal.Identity{ClusterID: "paxosd", NodeID: 1}, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.SetDiverged(2); err != nil {
		t.Fatal(err)
	}
	store.Close()
	_, err = ForceNewCluster(ForceNewConfig{DataDir: dir, ID: 1, Listen: "127.0.0.1:7401", Logger: zerolog.Nop()})
	if err == nil || !strings.Contains(err.Error(), "found to differ from its cluster's") {
		t.Fatalf("got %v", err)
	}
}
