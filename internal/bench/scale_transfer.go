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

// The transfer's steps, as the rejoining node logs them (service/snapfetch.go,
// service/install.go): the copy ends with scaleSnapshotReceived, the check
// of the copy with scaleSnapshotInstalling (the decode begins), the decode
// with scaleSnapshotInstalled.
const (
	scaleSnapshotReceived   = "snapshot received"
	scaleSnapshotInstalling = "installing the leader's snapshot"
)

// transferStep is one step of the last snapshot transfer in a node's log.
type transferStep struct {
	name     string
	from, to time.Time
}

// transferSteps splits the last transfer in log (from its fetch's start to
// its install) into the copy, the check and the decode; nil if the log
// does not show all four marks in that order.
func transferSteps(log []byte) []transferStep {
	marks := []string{scaleSnapshotFetching, scaleSnapshotReceived, scaleSnapshotInstalling, scaleSnapshotInstalled}
	var at [4]time.Time
	sc := bufio.NewScanner(bytes.NewReader(log))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	next := 0
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) < len(scaleLogTimeFormat) {
			continue
		}
		for i, m := range marks {
			if !bytes.Contains(line, []byte(m)) {
				continue
			}
			t, err := time.ParseInLocation(scaleLogTimeFormat, string(line[:len(scaleLogTimeFormat)]), time.Local)
			if err != nil {
				break
			}
			switch {
			case i == 0: // a fetch starts the steps over
				at, next = [4]time.Time{t}, 1
			case i == next:
				at[i], next = t, next+1
			}
			break
		}
	}
	if next < len(marks) {
		return nil
	}
	return []transferStep{{"copy", at[0], at[1]}, {"check", at[1], at[2]}, {"decode", at[2], at[3]}}
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

// lowestSecond returns the lowest rate over a second or more between two
// of secs (taken more often than once a second): for each sample, from the
// latest one at least a second before it.
func lowestSecond(secs []opsSample) (lowest float64, ok bool) {
	j := 0
	for k := range secs {
		for j+1 < k && secs[k].at.Sub(secs[j+1].at) >= time.Second {
			j++
		}
		a, b := secs[j], secs[k]
		if b.at.Sub(a.at) < time.Second {
			continue
		}
		if v := float64(b.ops-a.ops) / b.at.Sub(a.at).Seconds(); !ok || v < lowest {
			lowest, ok = v, true
		}
	}
	return lowest, ok
}
