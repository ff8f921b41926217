package wire

import (
	"bytes"
	"errors"
	"testing"
)

// TestCorkSharedIsCork: a shared response corked for a stream is, byte for
// byte, the frame Cork makes of the same response with that stream's id,
// for ids of every msgpack width; and a shared response too large for a
// frame is refused as Cork refuses it.
func TestCorkSharedIsCork(t *testing.T) {
	resp := &Response{Revision: 912, Events: []WatchEvent{
		{Type: EventPut, KV: KV{Key: "app/a", Value: []byte("1"), CreateRevision: 3, ModRevision: 911, Version: 2},
			PrevKV: KV{Key: "app/a", Value: []byte("0"), CreateRevision: 3, ModRevision: 7, Version: 1}},
		{Type: EventDelete, KV: KV{Key: "app/b", ModRevision: 912}},
	}}
	shared := NewSharedResponse(resp)
	for _, id := range []uint64{0, 1, 127, 128, 255, 256, 65535, 65536, 1 << 32, 1<<64 - 1} {
		a := &ClientConn{fc: &frameConn{frameMax: DefaultFrameBytesMax, writerDone: make(chan struct{}), stop: make(chan struct{})}}
		b := &ClientConn{fc: a.fc}
		r := *resp
		r.ID = id
		if _, err := a.Cork(&r); err != nil {
			t.Fatal(err)
		}
		if _, err := b.CorkShared(id, shared); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.cork, b.cork) {
			t.Fatalf("id %d: CorkShared\n%x\nCork\n%x", id, b.cork, a.cork)
		}
	}
	big := NewSharedResponse(&Response{ErrMsg: string(make([]byte, DefaultFrameBytesMax+1))})
	c := &ClientConn{fc: &frameConn{frameMax: DefaultFrameBytesMax, writerDone: make(chan struct{}), stop: make(chan struct{})}}
	if _, err := c.CorkShared(1, big); !errors.Is(err, ErrFrameTooLarge) || len(c.cork) != 0 {
		t.Fatalf("oversized CorkShared: %v (%d bytes corked), want ErrFrameTooLarge and nothing", err, len(c.cork))
	}
}

// TestRecvDecodesASharedPushOnce: a run of frames that differ only in
// their id (a node's SharedResponse, one per watcher) is decoded once:
// each response still carries its own id and the same content; a frame
// that differs elsewhere is decoded afresh, and a response that carries
// no events is never taken for the one before.
func TestRecvDecodesASharedPushOnce(t *testing.T) {
	client, server := tcpPair(t)
	node := &ClientConn{fc: newFrameConn(server, nil, DefaultFrameBytesMax, 64, testWriteTimeout, false)}
	defer node.Close()
	sc := &ServerConn{fc: newFrameConn(client, NewFrameReader(client, DefaultFrameBytesMax), DefaultFrameBytesMax, 64, testWriteTimeout, false)}
	defer sc.Close()
	push := func(rev uint64) *SharedResponse {
		return NewSharedResponse(&Response{Revision: rev, Events: []WatchEvent{{Type: EventPut, KV: KV{Key: "p/a", Value: []byte{byte(rev)}, ModRevision: rev}}}})
	}
	a, b := push(7), push(8)
	sent := []struct {
		id uint64
		sh *SharedResponse
	}{{1, a}, {2, a}, {300, a}, {4, b}, {5, b}, {6, nil}, {7, nil}, {8, a}}
	for _, x := range sent {
		var err error
		if x.sh == nil {
			_, err = node.Cork(&Response{ID: x.id, Revision: 8})
		} else {
			_, err = node.CorkShared(x.id, x.sh)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := node.Uncork(); err != nil {
		t.Fatal(err)
	}
	var prev *Response
	for i, x := range sent {
		r, err := sc.Recv()
		if err != nil {
			t.Fatal(err)
		}
		want := Response{ID: x.id, Revision: 8}
		if x.sh != nil {
			want = x.sh.Response
			want.ID = x.id
		}
		if r.ID != want.ID || r.Revision != want.Revision || len(r.Events) != len(want.Events) ||
			(len(r.Events) > 0 && (r.Events[0].KV.Key != want.Events[0].KV.Key || r.Events[0].KV.ModRevision != want.Events[0].KV.ModRevision)) {
			t.Fatalf("response %d: got id %d revision %d events %v, want id %d revision %d events %v", i, r.ID, r.Revision, r.Events, want.ID, want.Revision, want.Events)
		}
		shared := prev != nil && len(r.Events) > 0 && len(prev.Events) > 0 && &r.Events[0] == &prev.Events[0]
		if wantShared := i > 0 && x.sh != nil && x.sh == sent[i-1].sh; shared != wantShared {
			t.Fatalf("response %d: decoded once with the one before: %v, want %v", i, shared, wantShared)
		}
		prev = r
	}
}
