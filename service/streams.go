package service

import (
	"errors"
	"time"

	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// eventsPerPush bounds the events one stream response carries.
const eventsPerPush = 256

// stream is a watch or an election observer: one request answered by many
// responses, pushed by the loop after each batch of applied commands.
type stream struct {
	c *call
	// watch: the next revision to send; observe: the last change sent.
	// Invariant (watch), outside a push: every change below nextRev that
	// matches the watch was sent, so nextRev-1 is the revision a progress
	// notification reports.
	nextRev  uint64
	afterSeq uint64
	// sentTick is the node's tickCount when the stream last got a
	// response: a watch idle for the progress interval gets a progress
	// notification (notifyProgress).
	sentTick int
	// heldSince: since when the watch has had events it was not sent,
	// its connection's backlog over the bound (watch_slow.go); zero when
	// not held.
	heldSince time.Time
	// key is the stream's key in the node's streamSet; gone is set once
	// it is removed from it (ended), so a push under way sees it at once.
	key  streamKey
	gone bool
	// What a push and a progress check read of the request, kept here:
	// a push visits every stream, and with thousands of them reading the
	// call and the request of each (two more objects, three more cache
	// lines, each a miss) cost more than the push's own work. wkey is
	// the watched key, interned by the streamSet: the watches of one
	// prefix share one string, which compares by its pointer (kvChunk).
	op       wire.Op
	wkey     string
	prefix   bool
	progress bool // its client takes progress notifications
	direct   bool // answered through its connection (no call.onReply)
}

// newStream is the stream c's request opens.
func newStream(c *call) *stream {
	return &stream{c: c, op: c.req.Op, wkey: c.req.Key, prefix: c.req.WatchPrefix,
		progress: c.speaks(wire.VersionWatchProgress), direct: c.onReply == nil}
}

type streamKey struct {
	conn clientConn
	id   uint64
}

// streamSet holds the open streams, iterated in the order they were
// opened (not map order): pushes then go out in an order the simulation
// can replay. The iteration walks the streams themselves, not their keys:
// a push visits every stream after every applied batch, and with
// thousands of watches a map lookup or two per stream was a third of a
// follower's CPU, taken at the moment a writer's answer needed it.
type streamSet struct {
	byKey map[streamKey]*stream
	order []*stream // may hold streams already removed (gone)
	// walking: each is under way; remove then leaves order alone.
	walking bool
	// wkeys interns the open watches' keys (stream.wkey), counting the
	// watches of each: bounded by the open streams.
	wkeys map[string]*internedKey
}

type internedKey struct {
	s    string
	refs int
}

func newStreamSet() streamSet {
	return streamSet{byKey: map[streamKey]*stream{}, wkeys: map[string]*internedKey{}}
}

// forget marks s removed, and releases its key.
func (ss *streamSet) forget(s *stream) {
	s.gone = true
	delete(ss.byKey, s.key)
	if s.op != wire.OpWatch {
		return
	}
	if ik := ss.wkeys[s.wkey]; ik != nil {
		if ik.refs--; ik.refs <= 0 {
			delete(ss.wkeys, s.wkey)
		}
	}
}

func (ss *streamSet) get(k streamKey) (*stream, bool) {
	s, ok := ss.byKey[k]
	return s, ok
}

func (ss *streamSet) len() int { return len(ss.byKey) }

func (ss *streamSet) add(k streamKey, s *stream) {
	if old, ok := ss.byKey[k]; ok {
		ss.forget(old)
	}
	s.key, s.gone = k, false
	if s.op == wire.OpWatch {
		ik := ss.wkeys[s.wkey]
		if ik == nil {
			ik = &internedKey{s: s.wkey}
			ss.wkeys[s.wkey] = ik
		}
		ik.refs++
		s.wkey = ik.s
	}
	ss.byKey[k] = s
	ss.order = append(ss.order, s)
}

func (ss *streamSet) remove(k streamKey) {
	s, ok := ss.byKey[k]
	if !ok {
		return
	}
	ss.forget(s)
	if !ss.walking && len(ss.order) > 2*len(ss.byKey)+64 {
		ss.each(func(streamKey, *stream) bool { return true }) // drop the removed
	}
}

// each calls f for every stream in opening order; f returns false to
// remove it. f may remove streams (and add: those are not visited), but
// must not call each.
func (ss *streamSet) each(f func(streamKey, *stream) bool) {
	ss.walking = true
	defer func() { ss.walking = false }()
	kept := ss.order[:0]
	n := len(ss.order) // streams added meanwhile are appended past n
	for i := 0; i < n; i++ {
		s := ss.order[i]
		if s.gone {
			continue
		}
		if !f(s.key, s) {
			if !s.gone { // (else f removed it, and its key may be another's now)
				ss.remove(s.key)
			}
			continue
		}
		if !s.gone {
			kept = append(kept, s)
		}
	}
	kept = append(kept, ss.order[n:]...)
	clear(ss.order[len(kept):])
	ss.order = kept
}

func (n *Node) openStream(c *call) {
	if now := n.clock.Now(); c.speaks(wire.VersionClientAnswers) && n.quorumLost(now) {
		// It would be ended at the next check (failWithoutQuorum): the
		// client had better go to another member now, and a refusal,
		// unlike an acknowledged watch ended soon after, does not reset
		// its backoff.
		resp := n.unavailableAnswer(now)
		resp.StreamEnd = true
		c.reply(resp)
		return
	}
	q := c.req
	s := newStream(c)
	switch q.Op {
	case wire.OpWatch:
		s.nextRev = q.FromRevision
		if s.nextRev == 0 {
			s.nextRev = n.sm.Revision() + 1
		}
	case wire.OpObserve:
		s.afterSeq = q.AfterSeq
		if s.afterSeq == 0 {
			// Start with the current state: the latest change, if any.
			if changes, err := n.sm.ElectionChanges(q.Name, 0); err == nil && len(changes) > 0 {
				s.afterSeq = changes[len(changes)-1].Seq - 1
			}
		}
	}
	k := streamKey{c.conn, q.ID}
	n.streams.add(k, s)
	if q.Op == wire.OpWatch {
		// "Created": tells the client the revision the watch starts after,
		// so if it must reconnect it resumes from there, not from "now".
		n.sendStream(s, &wire.Response{Revision: s.nextRev - 1})
	}
	if !n.pushStream(s) {
		// Ended at once (compacted): its stream_end is sent, and the
		// next push must not send another.
		n.streams.remove(k)
	}
}

// pushStreams sends every stream what was applied since its last push;
// and, once a tick, tries again the watches held back (watch_slow.go).
func (n *Node) pushStreams() {
	retry := n.streamsHeld && n.tickCount != n.streamsTriedTick
	if n.installing() || (n.sm.Applied() == n.streamsApplied && !retry) {
		return
	}
	n.streamsApplied = n.sm.Applied()
	n.streamsHeld, n.streamsTriedTick = false, n.tickCount
	n.streams.each(func(_ streamKey, s *stream) bool { return n.pushStream(s) })
	clear(n.pushChunks) // the events are the watchers' now: hold on to none
	n.lastChunk = nil
}

// pushChunk is one read of the history for a push, and its response: the
// watchers of the same key or prefix at the same position (typically all
// of a prefix's) share it, read once and encoded once.
type pushChunk struct {
	evs    []statemachine.KVEvent
	err    error
	shared *wire.SharedResponse // made at the first send
}

type pushChunkKey struct {
	key    string
	prefix bool
	from   uint64
}

// kvChunk returns the events of q's watch from revision from on, at most
// eventsPerPush; the same chunk for every watch that asks the same until
// the node applies more (which would make a short chunk wrongly say "up
// to date").
func (n *Node) kvChunk(s *stream, from uint64) *pushChunk {
	if n.pushChunks == nil || n.pushChunksApplied != n.sm.Applied() {
		if n.pushChunks == nil {
			n.pushChunks = map[pushChunkKey]*pushChunk{}
		}
		clear(n.pushChunks)
		n.pushChunksApplied = n.sm.Applied()
		n.lastChunk = nil
	}
	k := pushChunkKey{s.wkey, s.prefix, from}
	// The watches of one prefix at one position follow each other in
	// the set, mostly: the chunk the previous one got, without hashing
	// the key again.
	if n.lastChunk != nil && n.lastChunkKey == k {
		return n.lastChunk
	}
	ch, ok := n.pushChunks[k]
	if !ok {
		evs, err := n.sm.KVEvents(from, s.wkey, s.prefix, eventsPerPush)
		ch = &pushChunk{evs: evs, err: err}
		n.pushChunks[k] = ch
	}
	n.lastChunk, n.lastChunkKey = ch, k
	return ch
}

// pushStream sends s its pending events; false ends the stream.
func (n *Node) pushStream(s *stream) bool {
	switch s.op {
	case wire.OpWatch:
		for {
			ch := n.kvChunk(s, s.nextRev)
			if ch.err != nil {
				n.endStream(s, ch.err)
				return false
			}
			if len(ch.evs) > 0 {
				if held, ended := n.hold(s); held {
					return !ended
				}
				s.nextRev = ch.evs[len(ch.evs)-1].Revision + 1
				if ch.shared == nil {
					ch.shared = wire.NewSharedResponse(&wire.Response{Revision: n.sm.Revision(), Events: wireEvents(ch.evs)})
				}
				s.sentTick = n.tickCount
				n.pushShared(s, ch.shared)
				if s.gone {
					return false // the push did not fit in a frame: corkAnswer ended it
				}
			}
			if len(ch.evs) < eventsPerPush {
				// Every change up to the store's revision was examined
				// (KVEvents): the watch is up to date there, whatever
				// its key. Moving nextRev past the changes of other keys
				// keeps the next push from scanning them again, and an
				// idle watch from ending Compacted when the history
				// drops them.
				s.nextRev = max(s.nextRev, n.sm.Revision()+1)
				return true
			}
		}
	case wire.OpObserve:
		q := s.c.req
		changes, err := n.sm.ElectionChanges(q.Name, s.afterSeq)
		if err != nil {
			n.endStream(s, err)
			return false
		}
		for _, ch := range changes {
			s.afterSeq = ch.Seq
			n.sendStream(s, &wire.Response{Revision: n.sm.Revision(), Leader: wireChange(q.Name, ch)})
			if s.gone {
				return false // the push did not fit in a frame: corkAnswer ended it
			}
		}
	}
	return true
}

// pushShared corks sh for watch s: corkShared, reading only the stream
// and its connection. The watch's first answer (its "created", at
// openStream) was counted already (countAnswer).
func (n *Node) pushShared(s *stream, sh *wire.SharedResponse) {
	if !s.direct {
		n.corkShared(s.c, sh)
		return
	}
	first, err := s.key.conn.CorkShared(s.key.id, sh)
	switch {
	case errors.Is(err, wire.ErrFrameTooLarge):
		n.corkShared(s.c, sh) // which ends the stream, saying why
	case err != nil:
		n.answerFailed(s.key.conn, err)
	case first:
		n.corked = append(n.corked, s.key.conn)
	}
}

// sendStream sends s its next response.
func (n *Node) sendStream(s *stream, resp *wire.Response) {
	s.sentTick = n.tickCount
	s.c.reply(resp)
}

// notifyProgress sends every watch that has had no response for the
// progress interval a progress notification (docs/PROTOCOL.md, "Streams"):
// an empty response whose revision is the watch's position, nextRev-1,
// up to which every matching change was sent. It is this node's own
// position (its applied state, not the leader's), so a client that
// resumes after it misses nothing. Only clients that negotiated
// wire.VersionWatchProgress get them: an older one was promised events in
// every response after the first.
func (n *Node) notifyProgress() {
	if n.cfg.WatchProgressInterval <= 0 || n.installing() || n.sm.Applied() != n.streamsApplied {
		return // off; or a push is due first, which moves the positions
	}
	idle := int(max(1, (n.cfg.WatchProgressInterval+n.cfg.TickInterval-1)/n.cfg.TickInterval))
	n.streams.each(func(_ streamKey, s *stream) bool {
		if n.tickCount-s.sentTick >= idle && s.op == wire.OpWatch && s.progress && s.heldSince.IsZero() {
			n.sendStream(s, &wire.Response{Revision: s.nextRev - 1})
		}
		return true
	})
}

func (n *Node) endStream(s *stream, err error) {
	resp := resultResponse(0, statemachine.Result{Err: err, Revision: n.sm.Revision()})
	if errors.Is(err, statemachine.ErrCompacted) && s.c.req.Op == wire.OpWatch {
		resp.CompactRevision = n.sm.OldestRevision()
	}
	resp.StreamEnd = true
	s.c.reply(&resp)
}

// cancel ends the stream or stops waiting for the blocking call named by
// the request's CancelID on the same connection. A cancelled lock wait
// stays queued in the cluster until the client releases it (the client
// library does) or its session ends.
func (n *Node) cancel(c *call) {
	k := streamKey{c.conn, c.req.CancelID}
	if s, ok := n.streams.get(k); ok {
		n.streams.remove(k)
		s.c.reply(&wire.Response{StreamEnd: true, Err: wire.ErrCanceled, ErrMsg: "stream cancelled"})
	}
	n.cancelSave(k) // snapshot_save.go
	n.removeWaiters(func(w *call) bool { return w.conn == c.conn && w.req.ID == c.req.CancelID }, func(w *call) {
		w.reply(&wire.Response{Err: wire.ErrCanceled, ErrMsg: "request cancelled"})
	})
	c.reply(&wire.Response{})
}

// dropConn forgets the streams and waiting calls of a closed connection.
func (n *Node) dropConn(conn clientConn) {
	n.streams.each(func(k streamKey, _ *stream) bool { return k.conn != conn })
	n.removeWaiters(func(w *call) bool { return w.conn == conn }, nil)
}

func (n *Node) endStreams(code wire.ErrCode, msg string) {
	n.streams.each(func(_ streamKey, s *stream) bool {
		s.c.reply(&wire.Response{Err: code, ErrMsg: msg, StreamEnd: true})
		return false
	})
}
