package service

import (
	"strings"
	"time"

	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// simWatch is a watch on every key under "k", resumed from where it left
// off whenever it breaks, and checked as events arrive: each one must be
// the event the cluster's history holds at its revision, and none under
// "k" may be skipped between two it reports.
type simWatch struct {
	c       *simClient
	id      uint64
	last    uint64 // the last revision accounted for (reported or skipped)
	started bool
	stopped bool
}

func (w *simWatch) open() {
	c, s := w.c, w.c.s
	if w.stopped || s.err != nil {
		return
	}
	q := &wire.Request{Op: wire.OpWatch, Key: "k", WatchPrefix: true}
	if w.started {
		q.FromRevision = w.last + 1
	}
	first := true
	c.obs.send(q, 0, nil, func(r *wire.Response) {
		if first {
			if r.Err == wire.ErrNone && !w.started {
				w.started, w.last = true, r.Revision // created: events after this revision follow
			}
		}
		if r.StreamEnd {
			if r.Err == wire.ErrSlowWatcher && w.started {
				// Its revision is the watch's position: every change
				// under "k" up to it was sent, and has arrived (the
				// end comes after them on the connection).
				if !w.checkPosition(r.Revision, "ended as a slow watcher at") {
					return
				}
				s.stats.watchSlowEnds++
			}
			w.restart(r)
			return
		}
		if !first && len(r.Events) == 0 && w.started {
			w.checkProgress(r.Revision)
			return
		}
		first = false
		w.checkBatch(r.Events)
	}, func() { w.restart(nil) })
	w.id = q.ID
}

// restart opens the watch again after it ended (from scratch if the
// history it needed was compacted away).
func (w *simWatch) restart(r *wire.Response) {
	if r != nil && r.Err == wire.ErrCompacted {
		w.started = false
	}
	if !w.stopped {
		w.c.s.at(time.Duration(20+w.c.s.rng.Intn(200))*time.Millisecond, nil, w.open)
	}
}

// checkBatch checks the events of one response: whole revisions (every
// event under "k" of a transaction's revision in this one response, in
// the transaction's order), each revision after the last reported, none
// under "k" skipped in between.
func (w *simWatch) checkBatch(evs []wire.WatchEvent) {
	s := w.c.s
	for len(evs) > 0 {
		rev := evs[0].KV.ModRevision
		n := 1
		for n < len(evs) && evs[n].KV.ModRevision == rev {
			n++
		}
		all, ok := s.check.kvEvents[rev]
		if !ok {
			s.failf("a watch reported revision %d, which no replica applied", rev)
			return
		}
		want := watched(all)
		if rev <= w.last {
			s.failf("a watch reported revision %d after %d", rev, w.last)
			return
		}
		if len(want) != n {
			s.failf("a watch reported %d events of revision %d in one response; the history holds %d under \"k\"", n, rev, len(want))
			return
		}
		for i, ev := range evs[:n] {
			if want[i].KV.Key != ev.KV.Key || string(want[i].KV.Value) != string(ev.KV.Value) || uint8(want[i].Type) != uint8(ev.Type) {
				s.failf("a watch reported %s %q=%q at revision %d; the history holds %q=%q", ev.Type, ev.KV.Key, ev.KV.Value, rev, want[i].KV.Key, want[i].KV.Value)
				return
			}
		}
		for r := w.last + 1; r < rev; r++ {
			if e := watched(s.check.kvEvents[r]); len(e) > 0 {
				s.failf("a watch skipped revision %d (%s) between %d and %d", r, e[0].KV.Key, w.last, rev)
				return
			}
		}
		w.last = rev
		s.stats.watchEvents += n
		if len(all) > 1 {
			s.stats.txnEvents += n
		}
		evs = evs[n:]
	}
}

// checkProgress checks a progress notification (protocol 11): the node
// says every change under "k" up to rev was sent, so rev must be a
// revision some replica applied, and no change under "k" after the last
// one reported may be at or below it; the watch resumes after it.
func (w *simWatch) checkProgress(rev uint64) {
	s := w.c.s
	if w.c.version() < wire.VersionWatchProgress {
		s.failf("a watch of a protocol %d client got a progress notification (revision %d)", w.c.version(), rev)
		return
	}
	if w.checkPosition(rev, "got progress to") {
		s.stats.watchProgress++
	}
}

// checkPosition checks a position the node reported (how is how, for the
// failure): no change under "k" after the last one reported may be at or
// below it; the watch resumes after it.
func (w *simWatch) checkPosition(rev uint64, how string) bool {
	s := w.c.s
	switch {
	case rev < w.last:
		s.failf("a watch %s revision %d after reporting %d", how, rev, w.last)
		return false
	case rev > s.check.lastRev:
		s.failf("a watch %s revision %d, which no replica applied (the highest is %d)", how, rev, s.check.lastRev)
		return false
	}
	for r := w.last + 1; r <= rev; r++ {
		if e := watched(s.check.kvEvents[r]); len(e) > 0 {
			s.failf("a watch %s revision %d but never got revision %d (%s) after %d", how, rev, r, e[0].KV.Key, w.last)
			return false
		}
	}
	w.last = rev
	return true
}

// watched returns the events under "k", what the watch reports.
func watched(evs []statemachine.KVEvent) []statemachine.KVEvent {
	var out []statemachine.KVEvent
	for _, ev := range evs {
		if strings.HasPrefix(ev.KV.Key, "k") {
			out = append(out, ev)
		}
	}
	return out
}

func (w *simWatch) stop() {
	w.stopped = true
	w.c.obs.cancel(w.id)
	w.c.obs.disconnect()
}

// simObserve is an observer of the election: every change, in order, each
// the one the cluster's history holds under its number.
type simObserve struct {
	c       *simClient
	id      uint64
	last    uint64
	stopped bool
}

func (o *simObserve) open() {
	c, s := o.c, o.c.s
	if o.stopped || s.err != nil {
		return
	}
	q := &wire.Request{Op: wire.OpObserve, Name: simElection, AfterSeq: o.last}
	c.side.send(q, 0, nil, func(r *wire.Response) {
		if r.StreamEnd {
			if r.Err == wire.ErrCompacted {
				o.last = 0
			}
			if !o.stopped {
				s.at(time.Duration(20+s.rng.Intn(200))*time.Millisecond, nil, o.open)
			}
			return
		}
		o.check(r.Leader)
	}, func() {
		if !o.stopped {
			s.at(time.Duration(20+s.rng.Intn(200))*time.Millisecond, nil, o.open)
		}
	})
	o.id = q.ID
}

func (o *simObserve) check(l wire.LeaderInfo) {
	s := o.c.s
	want, ok := s.check.changes[l.Seq]
	switch {
	case !ok:
		s.failf("an observer reported change %d, which no replica applied", l.Seq)
	case want.Session != l.Session || want.Term != l.Term || string(want.Value) != string(l.Value):
		s.failf("an observer reported change %d as session %d term %d; the history holds session %d term %d", l.Seq, l.Session, l.Term, want.Session, want.Term)
	case o.last != 0 && l.Seq != o.last+1:
		s.failf("an observer reported change %d after %d", l.Seq, o.last)
	default:
		o.last = l.Seq
		s.stats.observed++
	}
}

func (o *simObserve) stop() {
	o.stopped = true
	o.c.side.cancel(o.id)
	o.c.side.disconnect()
}
