package client_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/wire"
)

// TestListPages: a listing read in pages, with writes between the pages,
// is the listing at the first page's revision; List gathers the pages.
func TestListPages(t *testing.T) {
	eps := startCluster(t)
	ctx := ctxT(t)
	c := newClient(t, eps)
	for i := range 300 {
		if _, err := c.Put(ctx, fmt.Sprintf("p/%03d", i), []byte(fmt.Sprint("v", i))); err != nil {
			t.Fatal(err)
		}
	}
	want, err := c.List(ctx, "p/", 0)
	if err != nil || len(want) != 300 {
		t.Fatalf("List: %d keys, %v", len(want), err)
	}
	var got []client.KV
	pages, rev := 0, uint64(0)
	for p, err := range c.ListPages(ctx, "p/", 7) {
		if err != nil {
			t.Fatal(err)
		}
		if pages == 0 {
			rev = p.Revision
		} else if p.Revision != rev {
			t.Fatalf("page %d at revision %d, the first at %d", pages, p.Revision, rev)
		}
		got = append(got, p.KVs...)
		pages++
		// Change the listing under the pages: delete a key still to
		// come, change one, add some.
		k := fmt.Sprintf("p/%03d", 7*pages+3)
		if _, err := c.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Put(ctx, fmt.Sprintf("p/%03d", 7*pages+5), []byte("changed")); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Put(ctx, k+"-new", []byte("new")); err != nil {
			t.Fatal(err)
		}
	}
	if pages != 43 {
		t.Errorf("%d pages of 7 for 300 keys, want 43", pages)
	}
	if !slices.EqualFunc(got, want, kvEq) {
		t.Fatalf("the pages (%d keys) differ from the listing at their revision (%d keys)", len(got), len(want))
	}
	// List with a limit over pages, and the last keys exactly.
	if kvs, err := c.List(ctx, "p/", 5); err != nil || len(kvs) != 5 || kvs[0].Key != "p/000" {
		t.Fatalf("List with limit 5: %d keys, %v", len(kvs), err)
	}
	// A page past the end of the keys.
	if p, err := c.ListPage(ctx, "p/", "p/999", 0, 0); err != nil || len(p.KVs) != 0 || p.More {
		t.Fatalf("page past the end: %+v, %v", p, err)
	}
	// A revision the cluster never reached is refused.
	if _, err := c.ListPage(ctx, "p/", "", rev+1_000_000, 0); !errors.Is(err, client.ErrInvalid) {
		t.Fatalf("future revision: %v", err)
	}
}

func kvEq(a, b client.KV) bool {
	return a.Key == b.Key && bytes.Equal(a.Value, b.Value) && a.CreateRevision == b.CreateRevision &&
		a.ModRevision == b.ModRevision && a.Version == b.Version
}

// TestListAgainstVersion3: a node that negotiated protocol version 3 would
// ignore a page request's fields and answer the whole listing without
// "more". The client never sends it one: ListPage fails with
// ErrUnsupported, and List asks for the whole listing the version-3 way.
func TestListAgainstVersion3(t *testing.T) {
	srv := startOldServer(t, 3)
	c := newClient(t, []string{srv.addr})
	ctx := ctxT(t)
	if _, err := c.ListPage(ctx, "", "", 0, 2); !errors.Is(err, client.ErrUnsupported) || !strings.Contains(err.Error(), "version 4") {
		t.Fatalf("ListPage from a version-3 node: %v, want ErrUnsupported", err)
	}
	kvs, err := c.List(ctx, "", 0)
	if err != nil || len(kvs) != 3 {
		t.Fatalf("List from a version-3 node: %d keys, %v", len(kvs), err)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.lists) != 1 || srv.lists[0].PageBytes != 0 || srv.lists[0].StartKey != "" || srv.lists[0].Revision != 0 {
		t.Fatalf("the version-3 node got %+v, want one unpaged list", srv.lists)
	}
}

// TestEphemeralPutAgainstVersion8: a node of protocol 8 would ignore a
// put's session and keep the key for ever. The client never sends it one:
// Put with WithSession fails with ErrUnsupported naming version 9, while
// a plain Put goes through; Delete and CompareAndSet refuse WithSession.
func TestEphemeralPutAgainstVersion8(t *testing.T) {
	srv := startOldServer(t, 8)
	c := newClient(t, []string{srv.addr})
	ctx := ctxT(t)
	s, err := c.NewSession(ctx, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	if _, err := c.Put(ctx, "k", []byte("v"), client.WithSession(s)); !errors.Is(err, client.ErrUnsupported) || !strings.Contains(err.Error(), "version 9") {
		t.Fatalf("Put WithSession to a version-8 node: %v, want ErrUnsupported", err)
	}
	if _, err := c.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatalf("plain Put: %v", err)
	}
	if _, err := c.Delete(ctx, "k", client.WithSession(s)); !errors.Is(err, client.ErrInvalid) {
		t.Fatalf("Delete WithSession: %v, want ErrInvalid", err)
	}
	if _, _, err := c.CompareAndSet(ctx, "k", []byte("w"), client.IfAbsent(), client.WithSession(s)); !errors.Is(err, client.ErrInvalid) {
		t.Fatalf("CompareAndSet WithSession: %v, want ErrInvalid", err)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.puts) != 1 || srv.puts[0].SessionID != 0 {
		t.Fatalf("the version-8 node got puts %+v, want the plain one only", srv.puts)
	}
}

// oldServer speaks protocol version `version` to a client: it answers
// every List with its three keys, and everything else with Invalid.
type oldServer struct {
	addr  string
	mu    sync.Mutex
	lists []*wire.Request
	puts  []*wire.Request
}

func startOldServer(t *testing.T, version uint32) *oldServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &oldServer{addr: ln.Addr().String()}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(conn, version)
		}
	}()
	return s
}

func (s *oldServer) serve(conn net.Conn, version uint32) {
	defer conn.Close()
	fr := wire.NewFrameReader(conn, 0)
	if _, err := fr.ReadFrame(); err != nil { // the client's hello
		return
	}
	hello := wire.Hello{Version: version, ClusterID: "paxosd", NodeID: 1}
	if _, err := conn.Write(wire.AppendFrame(nil, wire.EncodeHello(nil, hello))); err != nil {
		return
	}
	for {
		body, err := fr.ReadFrame()
		if err != nil {
			return
		}
		q, err := wire.DecodeRequest(body)
		if err != nil {
			return
		}
		resp := &wire.Response{ID: q.ID, Revision: 3}
		switch q.Op {
		case wire.OpSessionOpen, wire.OpSessionKeepAlive, wire.OpSessionClose:
			resp.Session = wire.SessionInfo{ID: 5, TTLMs: 10000}
		case wire.OpPut:
			s.mu.Lock()
			s.puts = append(s.puts, q)
			s.mu.Unlock()
		case wire.OpList:
			s.mu.Lock()
			s.lists = append(s.lists, q)
			s.mu.Unlock()
			for _, k := range []string{"a", "b", "c"} {
				resp.KVs = append(resp.KVs, wire.KV{Key: k, Value: []byte(k), CreateRevision: 1, ModRevision: 1, Version: 1})
			}
		default:
			resp.Err, resp.ErrMsg = wire.ErrInvalid, "not in this test"
		}
		if _, err := conn.Write(wire.AppendFrame(nil, wire.EncodeResponse(nil, resp))); err != nil {
			return
		}
	}
}
