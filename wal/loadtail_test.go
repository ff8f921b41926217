package wal

import (
	"testing"

	"github.com/paxosd/paxosd/paxos"
)

// LoadTail returns the promise and watermark with only the entries above
// the watermark; the prefix stays readable through Entries.
func TestLoadTail(t *testing.T) {
	s, err := Open(t.TempDir(), Identity{ClusterID: "c", NodeID: 1}, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var es []paxos.Entry
	for sl := paxos.Slot(1); sl <= 5; sl++ {
		es = append(es, paxos.Entry{Slot: sl, Ballot: paxos.Ballot{Round: 1, Node: 1}, Value: paxos.Value{Kind: paxos.ValueBatch, Cmds: [][]byte{{byte(sl)}}}})
	}
	if err := s.Save(paxos.Persist{Promised: paxos.Ballot{Round: 2, Node: 1}, Entries: es, Commit: 3}); err != nil {
		t.Fatal(err)
	}
	st, err := s.LoadTail()
	if err != nil {
		t.Fatal(err)
	}
	if st.Commit != 3 || st.Compacted != 3 || st.Promised != (paxos.Ballot{Round: 2, Node: 1}) {
		t.Fatalf("LoadTail state %+v", st)
	}
	if len(st.Entries) != 2 || st.Entries[0].Slot != 4 || st.Entries[1].Slot != 5 {
		t.Fatalf("LoadTail entries %v, want slots 4 and 5", st.Entries)
	}
	prefix, err := s.Entries(1, 3, 0)
	if err != nil || len(prefix) != 3 {
		t.Fatalf("prefix through Entries: %v, %v", prefix, err)
	}
	full, err := s.Load()
	if err != nil || len(full.Entries) != 5 || full.Compacted != 0 {
		t.Fatalf("Load: %d entries, compacted %d, %v", len(full.Entries), full.Compacted, err)
	}
}
