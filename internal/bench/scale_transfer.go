package bench

import (
	"bufio"
	"bytes"
	"time"
)

// The outage line asks for the cluster's write throughput during
// the snapshot transfer; the summary's catch-up window (restart to caught
// up) also holds the node's start and its replay of the log after the
// snapshot. The transfer's window is read from the rejoining node's log:
// from the first "fetching its snapshot" to the last "installed the
// leader's snapshot" since its restart.

// scaleSnapshotFetching is what a node logs (at info) as it starts
// fetching the leader's snapshot (service/snapfetch.go).
const scaleSnapshotFetching = "behind the leader's log: fetching its snapshot"

// scaleLogTimeFormat is the console log's timestamp (cmd/paxosd's
// consoleTimeFormat), in the machine's time zone.
const scaleLogTimeFormat = "2006-01-02 15:04:05.000"

// transferWindow returns when the first snapshot fetch in log began and
// when the last install ended; ok is false without both, in that order.
func transferWindow(log []byte) (from, to time.Time, ok bool) {
	sc := bufio.NewScanner(bytes.NewReader(log))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		fetching, installed := bytes.Contains(line, []byte(scaleSnapshotFetching)), bytes.Contains(line, []byte(scaleSnapshotInstalled))
		if !fetching && !installed || len(line) < len(scaleLogTimeFormat) {
			continue
		}
		at, err := time.ParseInLocation(scaleLogTimeFormat, string(line[:len(scaleLogTimeFormat)]), time.Local)
		if err != nil {
			continue
		}
		switch {
		case fetching && from.IsZero():
			from = at
		case installed && !from.IsZero():
			to = at
		}
	}
	return from, to, !from.IsZero() && to.After(from)
}

// rateBetween returns the ops/s between the first sample at or after from
// and the last at or before to; ok is false with fewer than two.
func rateBetween(secs []opsSample, from, to time.Time) (rate float64, ok bool) {
	var first, last *opsSample
	for i := range secs {
		s := &secs[i]
		if s.at.Before(from) || s.at.After(to) {
			continue
		}
		if first == nil {
			first = s
		}
		last = s
	}
	if first == nil || last == first {
		return 0, false
	}
	return float64(last.ops-first.ops) / last.at.Sub(first.at).Seconds(), true
}
