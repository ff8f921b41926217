package service

import (
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/wal"
)

// replayChunkBytes bounds the entries read at once while replaying.
const replayChunkBytes = 4 << 20

// replay rebuilds the state machine from the chosen prefix in the WAL,
// reading it a chunk at a time so memory stays bounded whatever the length
// of the log, and logging progress when it takes a while.
func replay(store *wal.Store, sm *StateMachine, commit paxos.Slot, log zerolog.Logger) error {
	start := time.Now()
	lastLog := start
	for next := paxos.Slot(1); next <= commit; {
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
		if time.Since(lastLog) > 5*time.Second {
			lastLog = time.Now()
			log.Info().Uint64("slot", uint64(next-1)).Uint64("of", uint64(commit)).Msg("replaying the log")
		}
	}
	if commit > 0 {
		log.Info().Uint64("slots", uint64(commit)).Dur("took", time.Since(start)).Msg("state machine rebuilt from the log")
	}
	return nil
}
