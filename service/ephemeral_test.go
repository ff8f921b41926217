package service

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/statemachine"
)

// TestEphemeralCluster: keys put with a session through a real cluster
// are deleted when the session ends — closed by its owner, or revoked by
// another client — and a watcher of their prefix sees each session's keys
// go as deletes at one revision; a key put again without a session
// outlives its old session; a put naming an ended session is refused;
// every member ends with the same keys.
func TestEphemeralCluster(t *testing.T) {
	c := startTestCluster(t)
	c.waitLeader()
	ctx, cl := c.client(30 * time.Second)
	c.waitLevel(ctx, statemachine.LevelEphemeral)

	s1, err := cl.NewSession(ctx, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := cl.NewSession(ctx, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	start, err := cl.Put(ctx, "svc/perm", []byte("p"))
	if err != nil {
		t.Fatal(err)
	}
	events, _ := cl.Watch(ctx, "svc/", client.WithPrefix(), client.WithRevision(start+1))
	for _, p := range []struct {
		key string
		s   *client.Session
	}{{"svc/a", s1}, {"svc/b", s1}, {"svc/c", s2}, {"svc/madepermanent", s1}} {
		if _, err := cl.Put(ctx, p.key, []byte("addr"), client.WithSession(p.s)); err != nil {
			t.Fatalf("put %s: %v", p.key, err)
		}
	}
	if _, err := cl.Put(ctx, "svc/madepermanent", []byte("addr")); err != nil {
		t.Fatal(err)
	}
	if err := s1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.RevokeSession(ctx, s2.ID()); err != nil {
		t.Fatal(err)
	}
	kvs, err := cl.List(ctx, "svc/", 0)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, kv := range kvs {
		keys = append(keys, kv.Key)
	}
	if strings.Join(keys, " ") != "svc/madepermanent svc/perm" {
		t.Fatalf("keys left: %q, want svc/madepermanent and svc/perm", keys)
	}
	// 5 puts, then s1's two keys at one revision, then s2's one.
	var deletes []client.Event
	var revs []uint64
	for len(deletes) < 3 {
		select {
		case evs, ok := <-events:
			if !ok {
				t.Fatal("watch ended")
			}
			for _, ev := range evs {
				if ev.Type == client.EventDelete {
					deletes = append(deletes, ev)
					revs = append(revs, ev.KV.ModRevision)
				}
			}
		case <-ctx.Done():
			t.Fatalf("deletes seen: %+v", deletes)
		}
	}
	if deletes[0].KV.Key != "svc/a" || deletes[1].KV.Key != "svc/b" || deletes[2].KV.Key != "svc/c" ||
		revs[0] != revs[1] || revs[2] != revs[1]+1 || string(deletes[0].PrevKV.Value) != "addr" {
		t.Fatalf("deletes %+v, revisions %v: want svc/a and svc/b at one revision, svc/c at the next", deletes, revs)
	}
	if _, err := cl.Put(ctx, "svc/late", []byte("x"), client.WithSession(s1)); !errors.Is(err, client.ErrSessionExpired) {
		t.Fatalf("put to a closed session: %v, want ErrSessionExpired", err)
	}
	if _, err := cl.Delete(ctx, "svc/perm", client.WithSession(s2)); !errors.Is(err, client.ErrInvalid) {
		t.Fatalf("delete with a session: %v, want ErrInvalid", err)
	}
	c.waitSameKeys(ctx)
}

// TestEphemeralBeforeLevel: while a member has never connected the level
// stays below 9, and every member refuses a put with a session as invalid,
// saying why, before it reaches the log (an older build would apply it as
// a permanent put); once the member joins, the level rises and the same
// put binds the key.
func TestEphemeralBeforeLevel(t *testing.T) {
	c := newTestCluster(t, nil)
	c.start(1)
	c.start(2)
	c.waitLeader()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := client.New(ctx, c.peers[1], c.peers[2])
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	s, err := cl.NewSession(ctx, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cl.Put(ctx, "k", []byte("v"), client.WithSession(s))
	if !errors.Is(err, client.ErrInvalid) || !strings.Contains(err.Error(), "needs cluster level 9") {
		t.Fatalf("put with a session at level 0: %v", err)
	}
	for _, id := range []paxos.NodeID{1, 2} {
		if rev := onLoop(c.nodes[id], func() uint64 { return c.nodes[id].sm.Revision() }); rev != 0 {
			t.Fatalf("node %d at revision %d after a refused put", id, rev)
		}
	}
	c.start(3)
	c.waitLevel(ctx, statemachine.LevelEphemeral)
	if _, err := cl.Put(ctx, "k", []byte("v"), client.WithSession(s)); err != nil {
		t.Fatalf("put with a session at level 9: %v", err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Get(ctx, "k"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("k after its session closed: %v", err)
	}
	c.waitSameKeys(ctx)
}
