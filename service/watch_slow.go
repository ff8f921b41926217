package service

import (
	"fmt"
	"time"

	"github.com/paxosd/paxosd/wire"
)

// A watch reads its events from the state machine's history, from its
// own position (stream.nextRev), whenever the node pushes: it has no
// buffer of its own. What a slow client costs the node is what its
// connection holds of answers not yet read (clientConn.Backlog). So a
// node pushes a watch's events only while that backlog is under
// Config.WatchBacklogBytes; otherwise the watch is held at its position
// and tried again at the next tick, resuming from the history when the
// client has read what it had. A watch held for Config.WatchSlowAfter
// (its client reads slower than the changes come, or not at all) is
// ended with err SlowWatcher, carrying its position: the client resumes
// from there, on a new connection (or at another member) that may serve
// it faster. Nothing is lost either way; a watch held so long that the
// history drops its position ends Compacted, as any watch that far
// behind.

// hold reports whether s must wait before it is sent more events, and
// notes when it began to wait; it ends s (false from pushStream) once it
// has waited too long. (A watch held because another watch of its
// connection is catching up may be ended so too: its client resumes it
// on a new connection, which then serves it apart.)
func (n *Node) hold(s *stream) (held, ended bool) {
	conn := s.key.conn
	if conn.Backlog() < n.cfg.WatchBacklogBytes && conn.Queued() < n.cfg.WatchBacklogFrames {
		s.heldSince = time.Time{}
		return false, false
	}
	now := n.clock.Now()
	if s.heldSince.IsZero() {
		s.heldSince = now
		n.m.watchesHeld.Inc()
	}
	if now.Sub(s.heldSince) >= n.cfg.WatchSlowAfter {
		n.endSlowWatch(s)
		return true, true
	}
	n.streamsHeld = true
	return true, false
}

// endSlowWatch ends s, too slow, telling its client where to resume.
func (n *Node) endSlowWatch(s *stream) {
	n.m.watchesEndedSlow.Inc()
	code := wire.ErrSlowWatcher
	if !s.c.speaks(wire.VersionSlowWatcher) {
		code = wire.ErrUnavailable // what an older client resumes from
	}
	pos := s.nextRev - 1
	n.log.Info().Str("client", s.c.conn.RemoteAddr().String()).Uint64("revision", pos).
		Msg("ending a watch its client reads too slowly")
	s.c.reply(&wire.Response{Err: code, StreamEnd: true, Revision: pos, ErrMsg: fmt.Sprintf(
		"slow watcher: the client left over %d bytes (or %d answers) unread on its connection for %v; resume the watch after revision %d",
		n.cfg.WatchBacklogBytes, n.cfg.WatchBacklogFrames, n.cfg.WatchSlowAfter, pos)})
}
