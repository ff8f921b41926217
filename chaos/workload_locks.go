package chaos

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/paxosd/paxosd/client"
)

// HolderWorker takes a lock (or campaigns in an election), holds it a
// moment, and gives it back, again and again, recording each Tenure: the
// stretch during which it was sure to hold it. It is sure from the moment
// Lock (Campaign) returns until it calls Unlock (Resign), or until its
// session is declared lost, whichever comes first. The client declares a
// session lost before the cluster can expire it (docs/SESSIONS.md), so two
// workers' tenures must never overlap.
//
// While it holds a lock it also writes its token with a fenced write
// (client.Fenced); while it leads an election it reads the leader back
// (client.Leader). Both must agree with what it is sure of.
type HolderWorker struct {
	ID       int
	C        *client.Client
	Name     string // lock or election name
	Election bool   // campaign in the election Name instead of locking
	TTL      time.Duration
	Rand     *rand.Rand
	H        *History // its clock only
	Stats    *Stats
	Tenures  *Tenures
	Fence    *FenceLog

	s *client.Session
}

func (w *HolderWorker) kind() string {
	if w.Election {
		return "campaign"
	}
	return "lock"
}

// Run works until ctx ends, then closes its session.
func (w *HolderWorker) Run(ctx context.Context) {
	defer func() {
		if w.s != nil {
			cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = w.s.Close(cctx)
			cancel()
		}
	}()
	for ctx.Err() == nil {
		s := w.session(ctx)
		if s == nil {
			sleepCtx(ctx, 200*time.Millisecond)
			continue
		}
		w.once(ctx, s)
	}
}

// session returns a live session, opening a new one when the last was
// lost.
func (w *HolderWorker) session(ctx context.Context) *client.Session {
	if w.s != nil {
		if !closed(w.s.Done()) {
			return w.s
		}
		w.Stats.Op("session", "lost")
		old := w.s
		w.s = nil
		go func() { // frees the server's side at once, if it still has it
			cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = old.Close(cctx)
			cancel()
		}()
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := w.C.NewSession(sctx, w.TTL)
	if err != nil {
		w.Stats.Op("session-open", "fail")
		return nil
	}
	w.Stats.Op("session-open", "ok")
	w.s = s
	return s
}

func (w *HolderWorker) once(ctx context.Context, s *client.Session) {
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	var token, seq, rev uint64
	var err error
	if w.Election {
		var l client.Leader
		l, err = s.Campaign(actx, w.Name, []byte(strconv.Itoa(w.ID)))
		token, seq, rev = l.Term, l.Seq, l.Revision
	} else {
		var l *client.Lock
		l, err = s.Lock(actx, w.Name)
		if l != nil {
			token = l.Token
		}
	}
	cancel()
	start := w.H.Now()
	if err != nil {
		w.Stats.Op(w.kind(), "fail")
		return
	}
	w.Stats.Op(w.kind(), "ok")
	t := Tenure{Worker: w.ID, Session: s.ID(), Token: token, Start: start, Seq: seq, Revision: rev}
	lost := closed(s.Done())
	if !lost {
		hold := time.Duration(10+w.Rand.IntN(140)) * time.Millisecond
		select {
		case <-time.After(hold):
		case <-s.Done():
			lost = true
		case <-ctx.Done():
		}
	}
	if !lost && ctx.Err() == nil {
		lost = w.confirm(ctx, s, token)
	}
	t.End, t.Lost = w.H.Now(), lost
	w.Tenures.Add(t)
	if lost {
		return
	}
	rctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if w.Election {
		err = s.Resign(rctx, w.Name)
	} else {
		err = s.Unlock(rctx, w.Name)
	}
	w.Stats.Op(w.kind()+"-release", outcome(err))
}

// confirm checks what the worker holds through the cluster while it is
// sure to hold it; it returns whether the session was lost meanwhile.
func (w *HolderWorker) confirm(ctx context.Context, s *client.Session, token uint64) bool {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if w.Election {
		call := w.H.Now()
		l, err := w.C.Leader(cctx, w.Name)
		lost := closed(s.Done())
		if err == nil && !lost && (l.Session != s.ID() || l.Term != token) {
			w.Stats.Anomaly("election %s: worker %d (session %d) is sure it leads in term %d, but a linearizable read at %s..%s says session %d term %d leads",
				w.Name, w.ID, s.ID(), token, dur(call), dur(w.H.Now()), l.Session, l.Term)
		}
		w.Stats.Op("leader-read", outcome(err))
		return lost
	}
	fw := FencedWrite{Worker: w.ID, Token: token, Call: w.H.Now()}
	_, err := w.C.Put(cctx, "fence/"+w.Name, []byte(strconv.FormatUint(token, 10)), client.Fenced(w.Name, token))
	fw.Return = w.H.Now()
	lost := closed(s.Done())
	fw.OK, fw.Refused, fw.Sure = err == nil, errors.Is(err, client.ErrFenced), !lost
	w.Fence.Add(fw)
	w.Stats.Op("fenced-put", outcome(err))
	return lost
}

func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, client.ErrFenced):
		return "fenced"
	case errors.Is(err, client.ErrSessionExpired):
		return "session-lost"
	default:
		return "fail"
	}
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// dur formats a time on the history clock.
func dur(ns int64) string { return time.Duration(ns).Round(time.Microsecond).String() }

// Observer follows an election's stream of changes (client.Observe) and
// checks that it never skips a number and that terms never go back.
type Observer struct {
	C     *client.Client
	Name  string
	Stats *Stats
}

// Run observes until ctx ends.
func (o *Observer) Run(ctx context.Context) {
	var after, lastTerm, lastSession uint64
	for ctx.Err() == nil {
		ch, final := o.C.Observe(ctx, o.Name, after)
		for l := range ch {
			o.Stats.Op("observe", "change")
			if after != 0 && l.Seq != after+1 {
				o.Stats.Anomaly("election %s: observed change %d right after change %d", o.Name, l.Seq, after)
			}
			if l.Session != 0 {
				if l.Term < lastTerm || (l.Term == lastTerm && l.Session != lastSession) {
					o.Stats.Anomaly("election %s: change %d: session %d leads in term %d after session %d in term %d",
						o.Name, l.Seq, l.Session, l.Term, lastSession, lastTerm)
				}
				lastTerm, lastSession = l.Term, l.Session
			}
			after = l.Seq
		}
		if err := final(); ctx.Err() == nil {
			// Changes older than the kept history cannot be resumed from:
			// start over from the current state (a gap is then expected).
			o.Stats.Op("observe", "resumed")
			if errors.Is(err, client.ErrCompacted) {
				after = 0
			}
			sleepCtx(ctx, 100*time.Millisecond)
		}
	}
}
