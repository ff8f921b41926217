package service

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wal"
	"github.com/paxosd/paxosd/wire"
)

// snapshotChunkBytes is how much of a snapshot one OpSnapshotRead returns.
const snapshotChunkBytes = 1 << 20

// snapshotFetchRestarts bounds how often one fetch starts over because the
// leader replaced its snapshot meanwhile.
const snapshotFetchRestarts = 5

// onSnapshotOffer handles a MsgSnapshot: the leader has deleted log this
// node lacks. One fetch runs at a time; the leader repeats the offer while
// this node stays behind, so a failed fetch is retried (and resumes from
// what was staged).
func (n *Node) onSnapshotOffer(m paxos.Message) {
	// Any node may offer (a leader added after this node's membership
	// too): what is needed is its address, learned if unknown (the
	// offer comes again).
	if n.snap.fetching || m.Commit <= n.r.Status().Commit || n.book.addr(m.From) == "" {
		return
	}
	n.snap.fetching, n.snap.fetchStart = true, n.clock.Now()
	n.log.Info().Uint32("from", uint32(m.From)).Uint64("commit", uint64(n.r.Status().Commit)).
		Uint64("leader_log_starts_after", uint64(m.Slot)).Msg("behind the leader's log: fetching its snapshot")
	from := m.From
	n.bg.runYielding(func(ctx context.Context) func() {
		meta, err := n.fetchSnapshot(ctx, from)
		var info statemachine.SnapshotInfo
		if err == nil {
			// Checked in full before the node drops anything for it
			// (install.go).
			if info, err = checkStored(n.store.OpenStaged, meta, n.smOptions()); err != nil {
				n.m.snapshotFailures.WithLabelValues("install").Inc()
				err = fmt.Errorf("the snapshot %s of node %d is damaged: %w", meta, from, err)
				// Resumed, the same bytes would fail again at every
				// offer: the next fetch starts from the first byte.
				if derr := n.store.DiscardStaged(meta); derr != nil {
					err = fmt.Errorf("%w (and discarding it failed: %v)", err, derr)
				}
			}
		}
		return func() { n.snapshotStaged(from, meta, info, err) }
	})
}

// fetchSnapshot copies the snapshot of node from into this node's staging
// area, chunk by chunk, each chunk durable before the next is asked for,
// so a transfer cut by a crash or a dropped connection resumes where it
// stopped. It returns the meta of the snapshot staged in full (its bytes
// are checked as they are decoded). It runs off the loop.
func (n *Node) fetchSnapshot(ctx context.Context, from paxos.NodeID) (wal.SnapshotMeta, error) {
	pc, err := n.peers.dial(ctx, from)
	if err != nil {
		return wal.SnapshotMeta{}, fmt.Errorf("snapshot from node %d: %w", from, err)
	}
	defer pc.Close()
	var reqID uint64
	read := func(meta wal.SnapshotMeta, offset uint64) (*wire.Response, error) {
		reqID++
		cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
		defer ccancel()
		return pc.Call(cctx, &wire.Request{ID: reqID, Op: wire.OpSnapshotRead, SnapSlot: meta.Slot, SnapSize: meta.Size,
			SnapCRC: meta.CRC, Offset: offset, Limit: snapshotChunkBytes})
	}
	pace := fetchPacer{rate: n.cfg.SnapshotFetchRate, start: n.clock.Now()}
	for attempt := 0; attempt < snapshotFetchRestarts; attempt++ {
		resp, err := read(wal.SnapshotMeta{}, 0)
		if err != nil {
			return wal.SnapshotMeta{}, fmt.Errorf("snapshot from node %d: %w", from, err)
		}
		if resp.Err != wire.ErrNone {
			return wal.SnapshotMeta{}, fmt.Errorf("snapshot from node %d: %s: %s", from, resp.Err, resp.ErrMsg)
		}
		meta := wal.SnapshotMeta{Slot: resp.SnapSlot, Size: resp.SnapSize, CRC: resp.SnapCRC}
		offset := uint64(0)
		if staged, received, err := n.store.Staged(); err == nil && staged == meta && received > 0 {
			offset = received
			n.log.Info().Str("snapshot", meta.String()).Uint64("received", received).Msg("resuming the snapshot transfer")
		} else if err := n.store.StageSnapshot(meta, 0, resp.Data); err != nil {
			return meta, err
		} else {
			offset = uint64(len(resp.Data))
			pace.wait(n.clock.Now(), len(resp.Data)) // the next chunk waits for it
		}
		gone, err := n.copySnapshot(ctx, meta, offset, read, &pace)
		if err != nil {
			return meta, fmt.Errorf("snapshot from node %d: %w", from, err)
		}
		if gone {
			// The leader took a newer one: start over with it, and at
			// twice the pace, which would otherwise lose the race again
			// on a cluster writing its log faster than the pace copies.
			pace.restart(n.clock.Now())
			n.log.Info().Str("snapshot", meta.String()).Int64("fetch_rate", pace.rate).
				Msg("the snapshot was replaced during its transfer: fetching the new one, faster")
			continue
		}
		return meta, nil
	}
	return wal.SnapshotMeta{}, fmt.Errorf("snapshot from node %d: replaced %d times during the transfer", from, snapshotFetchRestarts)
}

// copySnapshot reads meta from offset to its end into the staging area, at
// pace. It reports gone if the sender no longer holds meta.
func (n *Node) copySnapshot(ctx context.Context, meta wal.SnapshotMeta, offset uint64, read func(wal.SnapshotMeta, uint64) (*wire.Response, error), pace *fetchPacer) (gone bool, err error) {
	start := n.clock.Now()
	lastLog := start
	for offset < meta.Size {
		resp, err := read(meta, offset)
		if err != nil {
			return false, err
		}
		switch resp.Err {
		case wire.ErrNone:
		case wire.ErrCompacted, wire.ErrNotFound:
			return true, nil
		default:
			return false, fmt.Errorf("%s: %s", resp.Err, resp.ErrMsg)
		}
		if len(resp.Data) == 0 {
			return false, fmt.Errorf("empty chunk at offset %d of %s", offset, meta)
		}
		if err := n.store.StageSnapshot(meta, offset, resp.Data); err != nil {
			return false, err
		}
		offset += uint64(len(resp.Data))
		if d := pace.wait(n.clock.Now(), len(resp.Data)); d > 0 && offset < meta.Size {
			if err := n.bg.pause(ctx, d); err != nil {
				return false, err
			}
		}
		if now := n.clock.Now(); now.Sub(lastLog) > 2*time.Second {
			lastLog = now
			n.log.Info().Str("snapshot", meta.String()).Uint64("received", offset).
				Float64("percent", 100*float64(offset)/float64(meta.Size)).Msg("receiving snapshot")
		}
	}
	n.log.Info().Str("snapshot", meta.String()).Dur("took_ms", n.clock.Now().Sub(start)).Msg("snapshot received")
	return false, nil
}

// fetchPacer spaces the chunks of a snapshot fetch so that it copies at
// most rate bytes a second on average since start (Config.SnapshotFetchRate):
// a rejoining node copying as fast as the network and the disks go takes
// from the member it reads, and from the disk they share, what the
// cluster's writes need (docs/BENCHMARKS.md, "A rejoin that gives way").
type fetchPacer struct {
	rate   int64 // bytes a second; 0 or less: no bound
	start  time.Time
	copied int64
}

// restart starts the count again at now for a new snapshot, at twice
// the rate.
func (p *fetchPacer) restart(now time.Time) {
	p.start, p.copied = now, 0
	if p.rate > 0 {
		p.rate *= 2
	}
}

// wait counts n more bytes copied and returns how long to wait, at now,
// before asking for the next chunk.
func (p *fetchPacer) wait(now time.Time, n int) time.Duration {
	p.copied += int64(n)
	if p.rate <= 0 {
		return 0
	}
	due := p.start.Add(time.Duration(float64(p.copied) / float64(p.rate) * float64(time.Second)))
	return max(due.Sub(now), 0)
}

// chunkBufs holds the buffers snapshot chunks are read into to be served
// (readSnapshot): a member serving its snapshot would otherwise leave a
// megabyte of garbage a chunk on a heap holding its whole state, and its
// collector would mark that state again every few chunks, taking CPU the
// cluster's writes need. A buffer comes back once its answer is encoded
// (recycleChunk).
var chunkBufs = sync.Pool{New: func() any { b := make([]byte, snapshotChunkBytes); return &b }}

// recycleChunk gives the buffer of resp, the answer to q, back to
// chunkBufs if it is one (readSnapshot's); the caller has encoded resp
// and must not touch its Data afterwards.
func recycleChunk(q *wire.Request, resp *wire.Response) {
	if q.Op == wire.OpSnapshotRead && resp.Err == wire.ErrNone && cap(resp.Data) == snapshotChunkBytes {
		b := resp.Data[:cap(resp.Data)]
		resp.Data = nil
		chunkBufs.Put(&b)
	}
}

// readSnapshot serves an OpSnapshotRead from the store, off the loop.
func (n *Node) readSnapshot(q *wire.Request) *wire.Response {
	cur, err := n.store.Snapshot()
	if errors.Is(err, wal.ErrNoSnapshot) {
		return &wire.Response{Err: wire.ErrNotFound, ErrMsg: "this node holds no snapshot"}
	}
	if err != nil {
		return &wire.Response{Err: wire.ErrInternal, ErrMsg: err.Error()}
	}
	meta := wal.SnapshotMeta{Slot: q.SnapSlot, Size: q.SnapSize, CRC: q.SnapCRC}
	if q.SnapSlot == 0 {
		meta = cur
	}
	limit := int(q.Limit)
	if limit <= 0 || limit > snapshotChunkBytes {
		limit = snapshotChunkBytes
	}
	if q.Offset > meta.Size {
		return &wire.Response{Err: wire.ErrInvalid, ErrMsg: fmt.Sprintf("offset %d is beyond the snapshot's %d bytes", q.Offset, meta.Size)}
	}
	buf := chunkBufs.Get().(*[]byte)
	data, err := n.store.ReadSnapshotInto(meta, q.Offset, (*buf)[:limit])
	switch {
	case errors.Is(err, wal.ErrSnapshotGone):
		chunkBufs.Put(buf)
		return &wire.Response{Err: wire.ErrCompacted, ErrMsg: fmt.Sprintf("snapshot %s was replaced by %s", meta, cur)}
	case err != nil:
		chunkBufs.Put(buf)
		return &wire.Response{Err: wire.ErrInternal, ErrMsg: err.Error()}
	}
	n.m.snapshotSent.Add(float64(len(data)))
	n.chunksServed.Add(1)
	return &wire.Response{SnapSlot: meta.Slot, SnapSize: meta.Size, SnapCRC: meta.CRC, Data: data}
}
