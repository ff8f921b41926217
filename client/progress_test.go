package client_test

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/service"
	"github.com/paxosd/paxosd/service/servicetest"
)

// cutProxy forwards TCP connections to a node; cut breaks every
// connection through it, as a dead link would, and the next dial goes
// through again.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
}

func startCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			go func() { io.Copy(out, in); out.Close() }()
			go func() { io.Copy(in, out); in.Close() }()
		}
	}()
	return p
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestWatchResumesFromProgress: a watch idle while other keys change gets
// a progress notification past those changes (WatchResponses), and after
// its connection breaks it resumes from there: the change of its own key
// made while it was away arrives once, the one before is not repeated —
// and although the history no longer holds the revision after its last
// event (the other keys' 1 MiB values pushed it out), it does not end
// with ErrCompacted, as a resume from that event would.
func TestWatchResumesFromProgress(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	// One node: the 20 MiB of values below are light enough for a loaded
	// machine under -race (three would ship them twice more).
	cl := servicetest.StartTuned(t, 1, func(c *service.Config) { c.WatchProgressInterval = 200 * time.Millisecond })
	ctx := ctxT(t)
	writer := newClient(t, cl.Endpoints)
	proxy := startCutProxy(t, cl.Endpoints[0])
	watcher := newClient(t, []string{proxy.ln.Addr().String()})

	resps, _ := watcher.WatchResponses(ctx, "a/", client.WithPrefix())
	next := func(what string) client.WatchResponse {
		t.Helper()
		select {
		case r, ok := <-resps:
			if !ok {
				t.Fatalf("%s: the watch ended", what)
			}
			return r
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: nothing within 10 s", what)
		}
		panic("unreachable")
	}
	start := next("the start")
	if !start.IsProgressNotify() {
		t.Fatalf("first response %+v; want the position the watch starts after", start)
	}
	rev1, err := writer.Put(ctx, "a/1", []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	if r := next("a/1"); len(r.Events) != 1 || r.Events[0].KV.Key != "a/1" || r.Revision != rev1 {
		t.Fatalf("got %+v; want a/1 at revision %d", r, rev1)
	}
	big := []byte(strings.Repeat("x", 1<<20-100))
	var last uint64
	for i := 0; i < 20; i++ { // 20 MiB: beyond the history's 16 MiB
		if last, err = writer.Put(ctx, fmt.Sprintf("b/%d", i), big); err != nil {
			t.Fatal(err)
		}
	}
	for {
		r := next("progress")
		if !r.IsProgressNotify() {
			t.Fatalf("got %+v; want a progress notification", r)
		}
		if r.Revision > last {
			t.Fatalf("progress to revision %d; the last write was %d", r.Revision, last)
		}
		if r.Revision == last {
			break
		}
	}
	proxy.cut()
	rev2, err := writer.Put(ctx, "a/2", []byte("2"))
	if err != nil {
		t.Fatal(err)
	}
	for {
		r := next("a/2 after the resume")
		if r.IsProgressNotify() {
			continue // progress: the watch resumed after the last write of b/, reported again
		}
		if len(r.Events) != 1 || r.Events[0].KV.Key != "a/2" || r.Revision != rev2 {
			t.Fatalf("got %+v; want a/2 at revision %d, and nothing else", r, rev2)
		}
		break
	}
}
