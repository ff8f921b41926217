package client

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync/atomic"
	"time"

	"github.com/paxosd/paxosd/wire"
)

// SavedSnapshot describes a snapshot SnapshotSave streamed.
type SavedSnapshot struct {
	// Slot and Revision are the log slot and the store revision the
	// state is as of: it holds every write acknowledged before the save
	// began.
	Slot     uint64
	Revision uint64
	// Size and CRC are the snapshot's byte count and CRC-32C
	// (Castagnoli), checked against what arrived.
	Size uint64
	CRC  uint32
	// Endpoint is the node that took it.
	Endpoint string
}

// SnapshotProgress reports a save under way: the bytes received so far,
// of the snapshot of slot and store revision (known from the first
// response on).
type SnapshotProgress struct {
	Bytes, Slot, Revision uint64
}

// saveIdleTimeout bounds the wait for the next response of a save that
// has started: a node streams a chunk every few milliseconds, so a silent
// one is stuck (frozen, or cut off without the connection noticing).
const saveIdleTimeout = 30 * time.Second

// errNoData marks a save that failed before any byte reached w: it may
// be tried at another endpoint.
type errNoData struct{ err error }

func (e errNoData) Error() string { return e.err.Error() }
func (e errNoData) Unwrap() error { return e.err }

// SnapshotSave asks the cluster for a snapshot of its state taken at a
// linearizable point (it holds every write acknowledged before the call
// began; not the nodes' last periodic snapshot) and writes its bytes to
// w as they stream in (docs/BACKUP.md; protocol version 14). progress, if
// set, is called after every chunk. It uses a connection of its own, on
// which the node waits for the client: a slow w slows the node's
// encoding, and no more than a few chunks are in memory at either end.
// The bytes' size and CRC-32C are checked against the node's; a mismatch
// is an error. Once bytes were written to w a failure is not retried
// (the caller starts over with a new w); before, the next endpoint is
// tried. A node that does not start the stream within the attempt timeout
// (Config.AttemptTimeout, and a second), or then sends nothing for 30 s,
// is given up (ErrTimeout). With auth on only root may save a snapshot
// (ErrPermissionDenied).
func (c *Client) SnapshotSave(ctx context.Context, w io.Writer, progress func(SnapshotProgress)) (SavedSnapshot, error) {
	q := &wire.Request{Op: wire.OpSnapshotSave}
	done, err := c.sequence(ctx, q)
	if err != nil {
		return SavedSnapshot{}, err
	}
	defer done()
	for {
		var errs []error
		busy := false
		for _, addr := range c.saveEndpoints() {
			saved, err := c.saveFrom(ctx, addr, q, w, progress)
			var nd errNoData
			if err == nil || !errors.As(err, &nd) || ctx.Err() != nil || errors.Is(err, ErrPermissionDenied) || errors.Is(err, ErrAuthFailed) {
				return saved, err
			}
			busy = busy || errors.Is(err, ErrBusy)
			errs = append(errs, fmt.Errorf("%s: %w", addr, nd.err))
		}
		if !busy {
			return SavedSnapshot{}, fmt.Errorf("snapshot save: no endpoint could take it: %w", errors.Join(errs...))
		}
		// An overloaded cluster shed the save's barrier (saveFrom waited
		// its retry-after): go round again, until ctx ends.
	}
}

// saveEndpoints lists the endpoints to try: the one the client is
// connected to first (likely the leader, which answers the barrier without
// a forwarding hop), then the others.
func (c *Client) saveEndpoints() []string {
	c.mu.Lock()
	first := ""
	if cn := c.calls.conn; cn != nil && !cn.broken() {
		first = cn.addr
	}
	c.mu.Unlock()
	out := []string{}
	if first != "" {
		out = append(out, first)
	}
	for _, e := range c.endpoints() {
		if e != first {
			out = append(out, e)
		}
	}
	return out
}

// saveFrom runs the save at one endpoint.
func (c *Client) saveFrom(ctx context.Context, addr string, q *wire.Request, w io.Writer, progress func(SnapshotProgress)) (SavedSnapshot, error) {
	dctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	sc, err := wire.DialClientConfig(dctx, addr, c.dialConfig())
	cancel()
	if err != nil {
		return SavedSnapshot{}, errNoData{err}
	}
	defer sc.Close()
	stop := context.AfterFunc(ctx, func() { _ = sc.Close() })
	defer stop()
	if sc.Version() < wire.VersionSnapshotSave {
		return SavedSnapshot{}, errNoData{fmt.Errorf("%w: node at %s speaks protocol %d; snapshot save needs %d or newer: upgrade it", ErrInvalid, addr, sc.Version(), wire.VersionSnapshotSave)}
	}
	if creds := c.creds(); creds != nil {
		if err := sc.Send(&wire.Request{ID: 1, Op: wire.OpAuthenticate, Name: creds.user, Value: []byte(creds.password)}); err != nil {
			return SavedSnapshot{}, errNoData{err}
		}
		resp, err := sc.Recv()
		if err != nil {
			return SavedSnapshot{}, errNoData{err}
		}
		if err := responseError(resp); err != nil {
			return SavedSnapshot{}, err
		}
	}
	req := *q
	req.ID = 2
	// The barrier through the log is bounded as any request's attempt
	// (the node answers Timeout), and then each response by
	// saveIdleTimeout: a silent node's connection is closed.
	req.TimeoutMs = uint32(c.cfg.AttemptTimeout / time.Millisecond)
	var silent atomic.Bool
	idle := time.AfterFunc(c.cfg.AttemptTimeout+time.Second, func() { silent.Store(true); _ = sc.Close() })
	defer idle.Stop()
	if err := sc.Send(&req); err != nil {
		return SavedSnapshot{}, errNoData{err}
	}
	saved := SavedSnapshot{Endpoint: addr}
	var crc uint32
	wrote := false
	for {
		resp, err := sc.Recv()
		if err == nil {
			idle.Reset(saveIdleTimeout)
		}
		if err != nil {
			switch {
			case ctx.Err() != nil:
				err = ctx.Err()
			case silent.Load():
				err = fmt.Errorf("%w: node at %s sent nothing for too long: %v", ErrTimeout, addr, err)
			}
			if !wrote {
				return saved, errNoData{err}
			}
			return saved, fmt.Errorf("snapshot save from %s cut after %d bytes: %w", addr, saved.Size, err)
		}
		if resp.ID != req.ID {
			continue
		}
		if resp.Err != wire.ErrNone {
			err := responseError(resp)
			switch {
			case wrote:
				return saved, fmt.Errorf("snapshot save from %s failed after %d bytes: %w", addr, saved.Size, err)
			case resp.Err == wire.ErrNotLeader || resp.Err == wire.ErrUnavailable || resp.Err == wire.ErrTimeout:
				return saved, errNoData{err}
			case resp.Err == wire.ErrBusy:
				select {
				case <-time.After(busyWait(resp.RetryAfterMs)):
				case <-ctx.Done():
				}
				return saved, errNoData{err}
			}
			return saved, err
		}
		if resp.SnapSlot != 0 {
			saved.Slot, saved.Revision = uint64(resp.SnapSlot), resp.Revision
		}
		if len(resp.Data) > 0 {
			wrote = true
			if _, err := w.Write(resp.Data); err != nil {
				return saved, fmt.Errorf("snapshot save: writing: %w", err)
			}
			crc = crc32.Update(crc, crc32.MakeTable(crc32.Castagnoli), resp.Data)
			saved.Size += uint64(len(resp.Data))
			if progress != nil {
				progress(SnapshotProgress{Bytes: saved.Size, Slot: saved.Slot, Revision: saved.Revision})
			}
		}
		if resp.StreamEnd {
			if resp.SnapSize != saved.Size || resp.SnapCRC != crc {
				return saved, fmt.Errorf("snapshot save from %s: received %d bytes (crc %08x), the node sent %d (crc %08x)", addr, saved.Size, crc, resp.SnapSize, resp.SnapCRC)
			}
			saved.CRC = crc
			return saved, nil
		}
	}
}
