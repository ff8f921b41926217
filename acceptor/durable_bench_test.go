package acceptor_test

import (
	"fmt"
	"testing"

	"github.com/paxosd/paxosd/acceptor"
	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/wal"
)

// BenchmarkDurableAccept measures the acceptor's durable path as the node
// loop runs it: step an Accept carrying n slots of 256-byte commands,
// persist the writes with one synced Pebble batch, and have the Accepted
// reply ready to send. n > 1 shows what group commit buys.
func BenchmarkDurableAccept(b *testing.B) {
	for _, n := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("slots=%d", n), func(b *testing.B) {
			store, err := wal.Open(b.TempDir(), wal.Identity{ClusterID: "bench", NodeID: 1}, wal.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			a := acceptor.New(1, paxos.State{}, nil)
			cmd := make([]byte, 256)
			ballot := paxos.Ballot{Round: 1, Node: 2}
			slot := paxos.Slot(1)
			b.SetBytes(int64(n * len(cmd)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				m := paxos.Message{Type: paxos.MsgAccept, From: 2, To: 1, Ballot: ballot}
				for j := 0; j < n; j++ {
					m.Entries = append(m.Entries, paxos.Entry{Slot: slot, Value: paxos.Value{Kind: paxos.ValueBatch, Cmds: [][]byte{cmd}}})
					slot++
				}
				reply := a.Step(m, 0)
				promised, entries := a.TakePersist()
				if err := store.Save(paxos.Persist{Promised: promised, Entries: entries}); err != nil {
					b.Fatal(err)
				}
				if reply.Type != paxos.MsgAccepted {
					b.Fatalf("reply %s", reply.Type)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "slots/s")
		})
	}
}
