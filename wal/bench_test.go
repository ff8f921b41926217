package wal

import (
	"testing"

	"github.com/paxosd/paxosd/paxos"
)

// BenchmarkSave is the durable path on the real disk: one 256-byte entry per
// Save, each Save one fsync. Its ns/op is the disk's sync latency plus
// Pebble's overhead, and bounds what an acceptor without group commit could
// do.
func BenchmarkSave(b *testing.B) { benchSave(b, 1, false) }

// BenchmarkSaveBatch64 puts 64 entries in each Save, as a node loop does
// when it merges a busy iteration's Accepts: one fsync is shared by all, so
// entries/s rises roughly 64-fold while ns/op barely moves.
func BenchmarkSaveBatch64(b *testing.B) { benchSave(b, 64, false) }

// BenchmarkSaveNoSync shows the cost without fsync (unsafe; for comparison).
func BenchmarkSaveNoSync(b *testing.B) { benchSave(b, 1, true) }

func benchSave(b *testing.B, perSave int, noSync bool) {
	s, err := Open(b.TempDir(), testID, Options{NoSync: noSync})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	cmd := make([]byte, 256)
	val := paxos.Value{Kind: paxos.ValueBatch, Cmds: [][]byte{cmd}}
	p := paxos.Persist{Entries: make([]paxos.Entry, perSave)}
	slot := paxos.Slot(0)
	b.SetBytes(int64(perSave * len(cmd)))
	for b.Loop() {
		for j := range p.Entries {
			slot++
			p.Entries[j] = paxos.Entry{Slot: slot, Ballot: paxos.Ballot{Round: 1, Node: 1}, Value: val}
		}
		if err := s.Save(p); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(slot)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkEntries reads 64 stored entries of 256 bytes, a catch-up batch.
func BenchmarkEntries(b *testing.B) {
	s, err := Open(b.TempDir(), testID, Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var p paxos.Persist
	for slot := paxos.Slot(1); slot <= 4096; slot++ {
		p.Entries = append(p.Entries, ent(slot, 1, 1, paxos.Value{Kind: paxos.ValueBatch, Cmds: [][]byte{make([]byte, 256)}}))
	}
	mustSave(b, s, p)
	from := paxos.Slot(1)
	for b.Loop() {
		es, err := s.Entries(from, from+63, 0)
		if err != nil || len(es) != 64 {
			b.Fatalf("Entries: %d, %v", len(es), err)
		}
		from = from%4000 + 1
	}
}
