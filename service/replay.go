package service

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wal"
)

// replayChunkBytes bounds the entries read at once while replaying.
const replayChunkBytes = 4 << 20

// loadSnapshot returns the state machine as of the stored snapshot, or an
// empty one if there is none.
func loadSnapshot(store *wal.Store, opts statemachine.SMOptions, log zerolog.Logger, clock Clock) (*statemachine.StateMachine, error) {
	start := clock.Now()
	meta, err := store.Snapshot()
	if errors.Is(err, wal.ErrNoSnapshot) {
		if t := store.Truncated(); t > 0 {
			return nil, fmt.Errorf("service: the log is truncated up to slot %d but the data directory holds no snapshot: it is damaged; restore it from a backup or remove it and rejoin (--rejoin)", t)
		}
		return statemachine.NewStateMachine(opts), nil
	}
	if err != nil {
		return nil, fmt.Errorf("service: loading the snapshot: %w", err)
	}
	sm, err := restoreStored(store.OpenSnapshot, meta, opts)
	if err != nil {
		return nil, fmt.Errorf("service: decoding the snapshot %s: %w", meta, err)
	}
	if sm.Applied() != meta.Slot {
		return nil, fmt.Errorf("service: the snapshot %s holds the state as of slot %d", meta, sm.Applied())
	}
	log.Info().Str("snapshot", meta.String()).Dur("took_ms", clock.Now().Sub(start)).Msg("state machine loaded from the snapshot")
	return sm, nil
}

// restoreStored decodes the snapshot meta names as open streams it from
// the store (the stored or the staged one), never holding it whole.
func restoreStored(open func(wal.SnapshotMeta) (*wal.SnapshotReader, error), meta wal.SnapshotMeta, opts statemachine.SMOptions) (*statemachine.StateMachine, error) {
	var sm *statemachine.StateMachine
	err := readStored(open, meta, func(o func() (io.Reader, error)) (err error) {
		sm, err = statemachine.RestoreFrom(opts, o, int64(meta.Size))
		return err
	})
	return sm, err
}

// checkStored checks the snapshot meta names as restoreStored would decode
// it, but keeping none of its keys (statemachine.CheckSnapshot): what a
// node does before it lets go of the state the snapshot replaces.
func checkStored(open func(wal.SnapshotMeta) (*wal.SnapshotReader, error), meta wal.SnapshotMeta, opts statemachine.SMOptions) (statemachine.SnapshotInfo, error) {
	var info statemachine.SnapshotInfo
	err := readStored(open, meta, func(o func() (io.Reader, error)) (err error) {
		info, err = statemachine.CheckSnapshot(opts, o, int64(meta.Size))
		return err
	})
	if err == nil && info.Applied != meta.Slot {
		err = fmt.Errorf("the snapshot %s holds the state as of slot %d", meta, info.Applied)
	}
	return info, err
}

// readStored hands decode an opener of the snapshot meta names. The
// decoder's first pass reads every byte, so the reader checks them
// against the snapshot's CRC; its second pass may stop short of the last
// bytes (they are buffered ahead), so every reader is read to its end
// afterwards: bytes that changed on the disk between the passes are an
// error too, not a state quietly different from the one checked.
func readStored(open func(wal.SnapshotMeta) (*wal.SnapshotReader, error), meta wal.SnapshotMeta, decode func(func() (io.Reader, error)) error) error {
	var readers []*wal.SnapshotReader
	defer func() {
		for _, r := range readers {
			_ = r.Close()
		}
	}()
	err := decode(func() (io.Reader, error) {
		r, err := open(meta)
		if err != nil {
			return nil, err
		}
		readers = append(readers, r)
		return r, nil
	})
	if err != nil {
		return err
	}
	for _, r := range readers {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return fmt.Errorf("service: reading the snapshot %s: %w", meta, err)
		}
	}
	return nil
}

// replay brings the state machine from its applied slot (the snapshot's,
// or 0) up to commit with the chosen log in the WAL, reading it a chunk at
// a time so memory stays bounded whatever the length of the log, and
// logging progress when it takes a while.
func replay(store *wal.Store, sm *statemachine.StateMachine, commit paxos.Slot, log zerolog.Logger, clock Clock) error {
	start := clock.Now()
	lastLog := start
	from := sm.Applied()
	for next := from + 1; next <= commit; {
		es, err := store.Entries(next, commit, replayChunkBytes)
		if err != nil {
			return fmt.Errorf("service: replaying the log: %w", err)
		}
		if len(es) == 0 || es[0].Slot != next {
			return fmt.Errorf("service: replaying the log: chosen slot %d is missing from the data directory (watermark %d)", next, commit)
		}
		for _, e := range es {
			if e.Slot != next {
				return fmt.Errorf("service: replaying the log: chosen slot %d is missing from the data directory (watermark %d)", next, commit)
			}
			sm.ApplyValue(e.Slot, e.Value)
			sm.TakeAnswers()
			next++
		}
		if now := clock.Now(); now.Sub(lastLog) > 5*time.Second {
			lastLog = now
			log.Info().Uint64("slot", uint64(next-1)).Uint64("of", uint64(commit)).Msg("replaying the log")
		}
	}
	if commit > from {
		log.Info().Uint64("from", uint64(from)).Uint64("to", uint64(commit)).Dur("took_ms", clock.Now().Sub(start)).Msg("state machine brought up to date from the log")
	}
	return nil
}
