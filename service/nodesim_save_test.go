package service

import (
	"hash/crc32"
	"time"

	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// Snapshot saves in the node simulation (snapshot_save.go): the watch
// clients save a snapshot now and then, through any node, while nodes
// crash, freeze and install snapshots, and every save that completes is
// checked:
//
//   - its bytes are as many as the node says, with its CRC-32C;
//   - they restore, and the state is the one every replica had after
//     that slot (the checker's hash of it), at the revision announced;
//   - a periodic snapshot of the same slot, if any, is the same bytes;
//   - it is linearizable: its revision is at least that of every write
//     acknowledged to any client before the save was sent (a node that
//     answered from its own state without the barrier could be behind).

// simSaver is a client's snapshot saves.
type simSaver struct {
	c    *simClient
	l    *simLink
	busy bool
}

func newSimSaver(c *simClient, cid uint64) *simSaver {
	return &simSaver{c: c, l: newSimLink(c, "save", cid)}
}

// schedule starts the next save after a pause.
func (sv *simSaver) schedule() {
	s := sv.c.s
	s.at(time.Duration(300+s.rng.Intn(1500))*time.Millisecond, nil, sv.run)
}

func (sv *simSaver) run() {
	s := sv.c.s
	if s.err != nil || sv.c.windDown {
		return
	}
	sv.busy = true
	minRev := s.check.ackedRev
	l := sv.l
	l.seq++
	q := &wire.Request{Op: wire.OpSnapshotSave, ClientID: l.cid, Seq: l.seq, AckedBelow: l.seq}
	var head *wire.Response
	var data []byte
	done := func() {
		sv.busy = false
		sv.schedule()
	}
	l.send(q, 2*time.Second, nil, func(r *wire.Response) {
		switch {
		case r.Err != wire.ErrNone:
			if !r.StreamEnd {
				s.failf("snapshot save: error %s without stream_end", r.Err)
			}
			switch r.Err {
			case wire.ErrNotLeader, wire.ErrUnavailable, wire.ErrTimeout, wire.ErrInternal, wire.ErrBusy:
				// Internal: the connection broke under it; Busy: an
				// overloaded node shed its barrier (the saver tries again
				// later).
			default:
				s.failf("snapshot save: unexpected %s: %s", r.Err, r.ErrMsg)
			}
			done()
			return
		case head == nil:
			if r.SnapSlot == 0 || len(r.Data) != 0 || r.StreamEnd {
				s.failf("snapshot save: first response %+v: want the slot and revision, no data", r)
			}
			head = r
			return
		}
		data = append(data, r.Data...)
		if r.StreamEnd {
			sv.check(head, r, data, minRev)
			done()
		}
	}, func() {
		l.disconnect()
		done()
	})
}

// check checks a completed save (see above).
func (sv *simSaver) check(head, end *wire.Response, data []byte, minRev uint64) {
	s := sv.c.s
	crc := crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))
	if end.SnapSize != uint64(len(data)) || end.SnapCRC != crc || end.SnapSlot != head.SnapSlot || end.Revision != head.Revision {
		s.failf("snapshot save: received %d bytes (crc %08x) of slot %d; the node says %d bytes (crc %08x), slot %d (first response: slot %d)",
			len(data), crc, end.SnapSlot, end.SnapSize, end.SnapCRC, end.SnapSlot, head.SnapSlot)
		return
	}
	sm, err := statemachine.RestoreStateMachine(smOptions(Config{}), data)
	if err != nil {
		s.failf("snapshot save of slot %d does not restore: %v", end.SnapSlot, err)
		return
	}
	slot := end.SnapSlot
	if sm.Applied() != slot || sm.Revision() != end.Revision {
		s.failf("snapshot save: state of slot %d, revision %d; announced slot %d, revision %d", sm.Applied(), sm.Revision(), slot, end.Revision)
	}
	if h, ok := s.check.hashes[slot]; ok && h != sm.Hash() {
		s.failf("snapshot save of slot %d: its state's hash %x is not the replicas' %x", slot, sm.Hash(), h)
	}
	if m, ok := s.check.snaps[slot]; ok && (m.Size != end.SnapSize || m.CRC != crc) {
		s.failf("snapshot save of slot %d (%d bytes, crc %08x) differs from a snapshot taken there (%s)", slot, len(data), crc, m)
	}
	if end.Revision < minRev {
		s.failf("snapshot save at revision %d misses a write acknowledged at revision %d before the save was sent", end.Revision, minRev)
	}
	s.stats.saves++
}
