package wal

import (
	"flag"
	"fmt"
	"math"
	"math/rand"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/paxosd/paxosd/paxos"
)

var (
	seedFlag  = flag.Int64("seed", 0, "run TestCrash with only this seed (also: env WAL_SEED)")
	crashRuns = flag.Int("crash.runs", 40, "seeds TestCrash runs when no seed is given")
)

const crashSteps = 60

// TestCrash is STYLE principle 7: random Saves on a filesystem that drops
// every unsynced write at a crash. After each crash and reopen, the store
// must hold exactly what every returned Save wrote (in particular the
// promise never goes backwards); a Save cut off by the crash may be there
// in full or not at all, never in part. The one exception is the lazy
// watermark: a Save of nothing but the commit watermark is not synced, so a
// crash may take the watermark back to what the last synced Save left, never
// further.
//
// Seeds differ on every run; a failure prints its seed, and
//
//	go test ./wal/ -run TestCrash -seed=N   (or WAL_SEED=N)
//
// replays it exactly.
func TestCrash(t *testing.T) {
	seeds := crashSeeds(t)
	for _, seed := range seeds {
		if trace, msg := runCrash(seed); msg != "" {
			t.Fatalf("crash test failed with seed %d: %s\nlast steps:\n%s\nreplay: go test ./wal/ -run TestCrash -seed=%d",
				seed, msg, trace, seed)
		}
	}
	t.Logf("seeds %d..%d passed", seeds[0], seeds[len(seeds)-1])
}

func crashSeeds(t *testing.T) []int64 {
	if *seedFlag != 0 {
		return []int64{*seedFlag}
	}
	if env := os.Getenv("WAL_SEED"); env != "" {
		seed, err := strconv.ParseInt(env, 10, 64)
		if err != nil {
			t.Fatalf("WAL_SEED=%q: %v", env, err)
		}
		return []int64{seed}
	}
	base := time.Now().UnixNano() % 1e9 // short enough to type
	seeds := make([]int64, *crashRuns)
	for i := range seeds {
		seeds[i] = base + int64(i) + 1
	}
	return seeds
}

// crashModel is what the returned Saves wrote, merged.
type crashModel struct {
	promised paxos.Ballot
	commit   paxos.Slot
	// syncedCommit is the watermark as of the last synced Save: a crash
	// may lose the lazy watermark-only Saves after it.
	syncedCommit paxos.Slot
	entries      map[paxos.Slot]paxos.Entry
}

func (m *crashModel) apply(p paxos.Persist) {
	m.promised = paxos.MaxBallot(m.promised, p.Promised)
	m.commit = max(m.commit, p.Commit)
	if !p.Promised.IsZero() || len(p.Entries) > 0 {
		m.syncedCommit = m.commit // the sync carries the lazy ones too
	}
	for _, e := range p.Entries {
		m.entries[e.Slot] = e
	}
}

// afterCrash takes the watermark found after a crash, if it lies between
// the synced and the latest one, as the truth the next Saves build on.
func (m *crashModel) afterCrash(found paxos.Slot) {
	if found >= m.syncedCommit && found <= m.commit {
		m.commit, m.syncedCommit = found, found
	}
}

func (m *crashModel) clone() *crashModel {
	c := &crashModel{promised: m.promised, commit: m.commit, syncedCommit: m.syncedCommit, entries: map[paxos.Slot]paxos.Entry{}}
	for k, v := range m.entries {
		c.entries[k] = v
	}
	return c
}

func (m *crashModel) state() paxos.State {
	st := paxos.State{Promised: m.promised, Commit: m.commit}
	for _, e := range m.entries {
		st.Entries = append(st.Entries, e)
	}
	sort.Slice(st.Entries, func(i, j int) bool { return st.Entries[i].Slot < st.Entries[j].Slot })
	return st
}

// randPersist draws a legal Persist: the promise and commit never go down,
// entries overwrite a small range of slots often.
func randPersist(rng *rand.Rand, m *crashModel) paxos.Persist {
	var p paxos.Persist
	if rng.Intn(3) == 0 {
		p.Promised = paxos.Ballot{Round: m.promised.Round + uint64(rng.Intn(3)), Node: paxos.NodeID(1 + rng.Intn(5))}
		if p.Promised.Less(m.promised) {
			p.Promised = m.promised
		}
	}
	for n := rng.Intn(7); n > 0; n-- {
		b := paxos.MaxBallot(m.promised, p.Promised)
		p.Entries = append(p.Entries, paxos.Entry{
			Slot:   paxos.Slot(1 + rng.Intn(50)),
			Ballot: paxos.Ballot{Round: b.Round - uint64(rng.Intn(int(min(b.Round, 2))+1)), Node: paxos.NodeID(1 + rng.Intn(5))},
			Value:  randValue(rng, 200),
		})
	}
	if rng.Intn(3) == 0 {
		p.Commit = m.commit + paxos.Slot(rng.Intn(4))
	}
	return p
}

// runCrash runs one seed. It returns a trace of the last steps and, on
// failure, a message; it never calls t.Fatal so that the caller can add
// the seed.
func runCrash(seed int64) (trace, failure string) {
	rng := rand.New(rand.NewSource(seed))
	fs := vfs.NewStrictMem()
	var steps []string
	logf := func(format string, args ...any) {
		steps = append(steps, fmt.Sprintf(format, args...))
		if len(steps) > 20 {
			steps = steps[1:]
		}
	}
	traceStr := func() string { return "  " + strings.Join(steps, "\n  ") }
	fail := func(format string, args ...any) (string, string) {
		return traceStr(), fmt.Sprintf(format, args...)
	}

	s, err := Open("/data", testID, Options{FS: fs})
	if err != nil {
		return fail("Open: %v", err)
	}
	defer func() { _ = s.Close() }()
	model := &crashModel{entries: map[paxos.Slot]paxos.Entry{}}

	// reopen closes s and opens the store again; with crash, every write
	// not yet synced is lost first.
	reopen := func(crash bool) error {
		if crash {
			fs.SetIgnoreSyncs(true) // nothing Close does may reach "disk"
		}
		if err := s.Close(); err != nil {
			return fmt.Errorf("Close: %w", err)
		}
		if crash {
			fs.ResetToSyncedState()
			fs.SetIgnoreSyncs(false)
		}
		s, err = Open("/data", testID, Options{FS: fs})
		if err != nil {
			return fmt.Errorf("reopen: %w", err)
		}
		if s.IsNew() {
			return fmt.Errorf("reopen: IsNew() = true, the identity was lost")
		}
		return nil
	}

	for step := 0; step < crashSteps; step++ {
		switch r := rng.Intn(100); {
		case r < 65:
			p := randPersist(rng, model)
			logf("save %s", describePersist(p))
			if err := s.Save(p); err != nil {
				return fail("Save: %v", err)
			}
			model.apply(p)

		case r < 73:
			logf("flush memtable")
			if err := s.db.Flush(); err != nil {
				return fail("Flush: %v", err)
			}

		case r < 80:
			logf("close and reopen")
			if err := reopen(false); err != nil {
				return fail("%v", err)
			}
			if msg := checkCrashState(s, model, nil); msg != "" {
				return fail("after a clean reopen: %s", msg)
			}

		case r < 95:
			// Half the crashes cut a Save short: its writes happen but its
			// sync is lost, as if the power failed inside Save.
			var inFlight *crashModel
			if rng.Intn(2) == 0 {
				p := randPersist(rng, model)
				logf("crash during save %s", describePersist(p))
				fs.SetIgnoreSyncs(true)
				if err := s.Save(p); err != nil {
					return fail("Save: %v", err)
				}
				inFlight = model.clone()
				inFlight.apply(p)
			} else {
				logf("crash")
			}
			if err := reopen(true); err != nil {
				return fail("%v", err)
			}
			if st, err := s.Load(); err == nil {
				model.afterCrash(st.Commit)
				if inFlight != nil {
					inFlight.afterCrash(st.Commit)
				}
			}
			if msg := checkCrashState(s, model, inFlight); msg != "" {
				return fail("after a crash: %s", msg)
			}
			if inFlight != nil {
				// Whatever survived is now the truth the next Saves build on.
				if st, _ := s.Load(); equalState(st, inFlight.state()) {
					model = inFlight
				}
			}

		default:
			logf("check")
			if msg := checkCrashState(s, model, nil); msg != "" {
				return fail("%s", msg)
			}
		}
	}
	return traceStr(), ""
}

// checkCrashState compares the store with the model of returned Saves (or,
// if alt is not nil, with alt: the model plus a Save cut short by a crash).
func checkCrashState(s *Store, model, alt *crashModel) string {
	got, err := s.Load()
	if err != nil {
		return fmt.Sprintf("Load: %v", err)
	}
	want := model.state()
	if !equalState(got, want) && (alt == nil || !equalState(got, alt.state())) {
		if got.Promised.Less(want.Promised) {
			return fmt.Sprintf("promised went backwards: stored %s, last returned Save %s", got.Promised, want.Promised)
		}
		msg := fmt.Sprintf("Load:\n   got %s\n  want %s", describeState(got), describeState(want))
		if alt != nil {
			msg += fmt.Sprintf("\n    or %s", describeState(alt.state()))
		}
		return msg
	}
	// Save's monotonic checks start from what is on disk.
	if s.promised != got.Promised || s.commit != got.Commit {
		return fmt.Sprintf("store tracks promised %s commit %d, disk has %s %d", s.promised, s.commit, got.Promised, got.Commit)
	}
	// Entries agrees with Load.
	all, err := s.Entries(0, math.MaxUint64, 0)
	if err != nil {
		return fmt.Sprintf("Entries: %v", err)
	}
	if !equalEntries(all, got.Entries) {
		return "Entries(0, max) differs from Load"
	}
	return ""
}
