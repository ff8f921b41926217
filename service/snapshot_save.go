package service

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"sync/atomic"
	"time"

	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// Snapshot saves for backups (OpSnapshotSave, docs/BACKUP.md).
//
// A backup must hold every write acknowledged before the save began, so
// it cannot be the node's last periodic snapshot (up to
// --snapshot-entries slots old), nor a view of a follower's state (which
// may lag). The save is a stream in three steps:
//
//  1. A barrier through the log: the request goes through the log as a
//     List of one key (commandOf: a command every version applies, so no
//     cluster level gates it), like a linearizable read. Once it is
//     applied here, this node's state holds everything chosen before the
//     request arrived, whichever node it is.
//  2. On the loop, at the end of that apply (between values, as a view
//     needs), the node freezes its state: statemachine.View, O(1) for the
//     keys, as the periodic snapshots do (snapshotter.go).
//  3. Off the loop, the view is encoded straight into the stream in
//     saveChunkBytes chunks, each sent once fewer than saveQueuedMax
//     responses wait on the connection (waitForRoom): a client that reads
//     slowly holds the encoder back through TCP (the Go client reads the
//     stream on a connection of its own), so neither end ever holds more
//     than a few chunks. The connection's own bound, 1024 responses, is a
//     count: left to it, a slow client would have the node queue a GiB.
//     The first response carries the slot and revision, the last the size
//     and CRC-32C of the bytes sent.
//
// The view pins the tree pages that writes replace meanwhile, as a
// periodic snapshot's does for as long as it encodes; a client that stops
// reading has its connection closed by the connection's write timeout (5 s,
// as every client connection), which ends the save, and at most savesMax
// saves run on a node at once. An install (install.go) does not wait for
// a save as it waits for a periodic snapshot's encoding: a client that
// reads slowly must not hold a lagging node back; meanwhile the pages the
// view holds stay in memory beside the new state, until the save ends.

// saveChunkBytes is the most snapshot bytes one response carries.
const saveChunkBytes = 1 << 20

// savesMax bounds the saves a node runs at once: each holds a view.
const savesMax = 2

// saveState is the loop's bookkeeping of saves.
type saveState struct {
	ready   []*call // barrier applied, view to take at the end of the apply
	running int
	// canceled flags the running saves by stream: an OpCancel sets one,
	// and its encoder stops at the next chunk.
	canceled map[streamKey]*atomic.Bool
}

// errSaveCanceled ends a save its client cancelled.
var errSaveCanceled = errors.New("snapshot save cancelled")

// cancelSave stops the running save of stream k, if there is one.
func (n *Node) cancelSave(k streamKey) {
	if f := n.saves.canceled[k]; f != nil {
		f.Store(true)
	}
}

// saveBarrier is the command an OpSnapshotSave puts in the log: a List
// of at most one key, whose answer is not sent (the save starts instead).
func saveBarrier(q *wire.Request) statemachine.Command {
	return statemachine.Command{ClientID: q.ClientID, Seq: q.Seq, AckedBelow: q.AckedBelow, Op: statemachine.OpList, Limit: 1}
}

// saveReady takes the answer of a save's barrier: the save starts at the
// end of the apply, or the error ends the stream.
func (n *Node) saveReady(c *call, resp *wire.Response) {
	if resp.Err != wire.ErrNone {
		c.reply(&wire.Response{Err: resp.Err, ErrMsg: resp.ErrMsg})
		return
	}
	n.saves.ready = append(n.saves.ready, c)
}

// startSaves freezes the state for every save whose barrier was applied,
// and starts streaming each. It runs on the loop, between values.
func (n *Node) startSaves() {
	ready := n.saves.ready
	n.saves.ready = nil
	for _, c := range ready {
		switch {
		case n.installing():
			c.reply(&wire.Response{Err: wire.ErrUnavailable, ErrMsg: n.installingMessage()})
			continue
		case n.saves.running >= savesMax:
			c.reply(&wire.Response{Err: wire.ErrUnavailable, ErrMsg: fmt.Sprintf("node %d is already saving %d snapshots: retry when one is done", n.cfg.ID, savesMax)})
			continue
		}
		view, err := n.sm.View()
		if err != nil {
			c.reply(&wire.Response{Err: wire.ErrInternal, ErrMsg: err.Error()})
			continue
		}
		n.saves.running++
		n.streamSave(c, view)
	}
}

// pacedConn is a connection a save can pace itself on (wire.ClientConn):
// its chunks are sent off the loop, each once fewer than saveQueuedMax
// responses wait to be written, so the encoder waits for the client and
// no more than a few chunks are in memory.
type pacedConn interface {
	Send(*wire.Response) error
	Queued() int
	Done() <-chan struct{}
}

// saveQueuedMax is how many responses may wait on the connection before a
// save sends its next chunk: enough to keep the socket busy while the
// encoder looks again (waitForRoom), few enough to bound the memory.
const saveQueuedMax = 4

// saveWaitMax bounds the pause between two looks at a full queue: a few
// milliseconds, far less than the socket takes to drain 4 MiB.
const saveWaitMax = 5 * time.Millisecond

// waitForRoom waits until c has room for the next chunk, the save is
// cancelled, the connection ends, or ctx does.
func waitForRoom(ctx context.Context, c pacedConn, canceled *atomic.Bool) error {
	wait := 100 * time.Microsecond
	for c.Queued() >= saveQueuedMax {
		if canceled.Load() {
			return errSaveCanceled
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("node stopping: %w", ctx.Err())
		case <-c.Done():
			t.Stop()
			return wire.ErrClosed
		case <-t.C:
		}
		wait = min(2*wait, saveWaitMax)
	}
	return nil
}

// streamSave encodes view into c's stream, off the loop.
func (n *Node) streamSave(c *call, view *statemachine.SnapshotView) {
	id, conn, log := c.req.ID, c.conn, n.log
	var send func(*wire.Response) error
	addr := "test"
	pc, paced := conn.(pacedConn)
	if paced {
		send = pc.Send
	} else if conn != nil {
		send = conn.TrySend // the simulation's connections never block
	} else {
		send = func(r *wire.Response) error {
			cp := *r
			cp.Data = append([]byte(nil), r.Data...)
			c.onReply(&cp)
			return nil
		} // a test's call
	}
	if conn != nil {
		addr = conn.RemoteAddr().String()
	}
	start := n.clock.Now()
	n.countAnswer(c, wire.ErrNone)
	key, canceled := streamKey{conn, id}, new(atomic.Bool)
	if n.saves.canceled == nil {
		n.saves.canceled = map[streamKey]*atomic.Bool{}
	}
	n.saves.canceled[key] = canceled
	n.bg.run(0, func(ctx context.Context) func() {
		w := &saveWriter{ctx: ctx, id: id, buf: make([]byte, 0, saveChunkBytes), send: send, canceled: canceled}
		if paced {
			w.wait = func() error { return waitForRoom(ctx, pc, canceled) }
		}
		head := &wire.Response{ID: id, SnapSlot: view.Applied(), Revision: view.Revision()}
		err := send(head)
		if err == nil {
			if _, err = view.WriteTo(w); err == nil {
				err = w.flush()
			}
		}
		switch {
		case err == nil:
			err = send(&wire.Response{ID: id, StreamEnd: true, SnapSlot: view.Applied(), Revision: view.Revision(), SnapSize: w.size, SnapCRC: w.crc})
		case errors.Is(err, errSaveCanceled):
			_ = send(&wire.Response{ID: id, StreamEnd: true, Err: wire.ErrCanceled, ErrMsg: "snapshot save cancelled"})
		default:
			_ = send(&wire.Response{ID: id, StreamEnd: true, Err: wire.ErrInternal, ErrMsg: fmt.Sprintf("saving the snapshot: %v", err)})
		}
		took := n.clock.Now().Sub(start)
		return func() {
			n.saves.running--
			delete(n.saves.canceled, key)
			if err != nil {
				log.Warn().Err(err).Str("client", addr).Uint64("slot", uint64(view.Applied())).Msg("snapshot save for a backup failed")
				return
			}
			log.Info().Str("client", addr).Uint64("slot", uint64(view.Applied())).Uint64("revision", view.Revision()).
				Int("keys", view.Keys()).Uint64("bytes", w.size).Dur("took_ms", took).Msg("snapshot saved for a backup")
		}
	})
}

// saveWriter cuts the encoding into chunk responses, counting their bytes
// and CRC-32C.
type saveWriter struct {
	ctx  context.Context
	id   uint64
	buf  []byte
	send func(*wire.Response) error
	// canceled is set by an OpCancel of the stream (cancelSave).
	canceled *atomic.Bool
	// wait, if set, waits for room on the connection (waitForRoom).
	wait func() error
	size uint64
	crc  uint32
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func (w *saveWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		take := min(len(p), cap(w.buf)-len(w.buf))
		w.buf = append(w.buf, p[:take]...)
		p = p[take:]
		if len(w.buf) == cap(w.buf) {
			if err := w.flush(); err != nil {
				return n - len(p), err
			}
		}
	}
	return n, nil
}

// flush sends the buffered bytes as one chunk. The connection encodes the
// response before Send returns, so the buffer is reused.
func (w *saveWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	if err := w.ctx.Err(); err != nil {
		return fmt.Errorf("node stopping: %w", err)
	}
	if w.canceled.Load() {
		return errSaveCanceled
	}
	if w.wait != nil {
		if err := w.wait(); err != nil {
			return err
		}
	}
	w.crc = crc32.Update(w.crc, castagnoli, w.buf)
	w.size += uint64(len(w.buf))
	if err := w.send(&wire.Response{ID: w.id, Data: w.buf}); err != nil {
		return err
	}
	w.buf = w.buf[:0]
	return nil
}
