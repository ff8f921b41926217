package client_test

import (
	"bytes"
	"context"
	"errors"
	"hash/crc32"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/wire"
)

// saveNode is a fake node that answers SnapshotSave as script says: the
// responses after the first (slot 9, revision 90).
type saveNode struct {
	script func() []*wire.Response
}

func (saveNode) HandlePeer(paxos.Message) {}

func (n saveNode) HandleClient(c *wire.ClientConn) {
	for {
		q, err := c.Recv()
		if err != nil {
			return
		}
		if q.Op != wire.OpSnapshotSave {
			c.Send(&wire.Response{ID: q.ID})
			continue
		}
		if q.ClientID == 0 || q.Seq == 0 {
			c.Send(&wire.Response{ID: q.ID, Err: wire.ErrInvalid, ErrMsg: "no client id or seq", StreamEnd: true})
			continue
		}
		for _, r := range n.script() {
			r.ID = q.ID
			c.Send(r)
		}
	}
}

func startSaveNode(t *testing.T, script func() []*wire.Response) string {
	t.Helper()
	ln, err := wire.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go wire.Serve(ln, wire.ServerConfig{Self: 1, Logger: zerolog.Nop()}, saveNode{script})
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// good is a sound stream of two chunks.
func good() []*wire.Response {
	a, b := []byte("first chunk "), []byte("second chunk")
	crc := crc32.Update(crc32.Checksum(a, castagnoli), castagnoli, b)
	return []*wire.Response{
		{SnapSlot: 9, Revision: 90},
		{Data: a}, {Data: b},
		{StreamEnd: true, SnapSlot: 9, Revision: 90, SnapSize: uint64(len(a) + len(b)), SnapCRC: crc},
	}
}

func saveWith(t *testing.T, eps ...string) (client.SavedSnapshot, []byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := client.NewWithConfig(ctx, client.Config{Endpoints: eps})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var buf bytes.Buffer
	var progress []uint64
	saved, err := cl.SnapshotSave(ctx, &buf, func(p client.SnapshotProgress) { progress = append(progress, p.Bytes) })
	if err == nil && len(progress) != 2 {
		t.Errorf("progress %v, want one call per chunk", progress)
	}
	return saved, buf.Bytes(), err
}

// TestSnapshotSaveChecks: the chunks arrive in order with their slot,
// revision, size and CRC; a stream whose bytes do not match the node's
// CRC, or that fails after bytes were written, is an error; a node that
// cannot serve the save before sending any byte is skipped for the next
// endpoint.
func TestSnapshotSaveChecks(t *testing.T) {
	ep := startSaveNode(t, good)
	saved, data, err := saveWith(t, ep)
	if err != nil || string(data) != "first chunk second chunk" || saved.Slot != 9 || saved.Revision != 90 || saved.Size != 24 || saved.Endpoint != ep {
		t.Fatalf("saved %+v, %q, %v", saved, data, err)
	}

	flipped := startSaveNode(t, func() []*wire.Response {
		rs := good()
		rs[2].Data = []byte("second chunK")
		return rs
	})
	if _, _, err := saveWith(t, flipped); err == nil || !strings.Contains(err.Error(), "the node sent 24 (crc") {
		t.Errorf("a damaged chunk: %v, want the CRC mismatch", err)
	}

	cut := startSaveNode(t, func() []*wire.Response {
		rs := good()
		return []*wire.Response{rs[0], rs[1], {StreamEnd: true, Err: wire.ErrInternal, ErrMsg: "disk on fire"}}
	})
	busy := startSaveNode(t, func() []*wire.Response {
		return []*wire.Response{{StreamEnd: true, Err: wire.ErrUnavailable, ErrMsg: "node 1 is already saving 2 snapshots"}}
	})
	if _, _, err := saveWith(t, cut, ep); err == nil || !strings.Contains(err.Error(), "failed after 12 bytes") || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("a save cut after data: %v, want it reported, not retried", err)
	}
	if saved, data, err := saveWith(t, busy, ep); err != nil || saved.Endpoint != ep || len(data) != 24 {
		t.Errorf("a busy node, then a good one: %+v, %v; want the good one's save", saved, err)
	}
	if _, _, err := saveWith(t, busy); err == nil || !strings.Contains(err.Error(), "already saving") {
		t.Errorf("only a busy node: %v", err)
	}
}

// TestSnapshotSaveSilentNode: a node that never answers the save is given
// up after the attempt timeout (and a second), not waited for for ever.
func TestSnapshotSaveSilentNode(t *testing.T) {
	silent := startSaveNode(t, func() []*wire.Response { return nil })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := client.NewWithConfig(ctx, client.Config{Endpoints: []string{silent}, AttemptTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	start := time.Now()
	_, err = cl.SnapshotSave(ctx, io.Discard, nil)
	if !errors.Is(err, client.ErrTimeout) || time.Since(start) > 5*time.Second {
		t.Fatalf("a silent node: %v after %s, want ErrTimeout after about 1.2 s", err, time.Since(start))
	}
}

// TestSnapshotSaveRetriesBusy: an overloaded node sheds the save's barrier
// (err Busy, protocol 13): the save waits the retry-after and asks again,
// rather than failing the backup.
func TestSnapshotSaveRetriesBusy(t *testing.T) {
	var calls atomic.Int32
	ep := startSaveNode(t, func() []*wire.Response {
		if calls.Add(1) <= 2 {
			return []*wire.Response{{StreamEnd: true, Err: wire.ErrBusy, ErrMsg: "busy: retry after 30 ms", RetryAfterMs: 30}}
		}
		return good()
	})
	saved, data, err := saveWith(t, ep)
	if err != nil || len(data) != 24 || saved.Slot != 9 || calls.Load() != 3 {
		t.Fatalf("after two Busy answers: %+v, %d bytes, %v (%d asks); want the save at the third", saved, len(data), err, calls.Load())
	}
}
