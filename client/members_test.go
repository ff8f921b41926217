package client

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/service/servicetest"
	"github.com/paxosd/paxosd/wal"
)

// joiner adapts a Client to servicetest.Client.
type joiner struct{ c *Client }

func (j joiner) AddMember(id paxos.NodeID, addr string) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := j.c.MemberAdd(ctx, id, addr, true)
		cancel()
		if err == nil || !errors.Is(err, ErrMemberConflict) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond) // a new cluster: the level is raised soon
	}
}

func (j joiner) PromoteMember(id paxos.NodeID) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := j.c.MemberPromote(ctx, id)
		cancel()
		if err == nil || !errors.Is(err, ErrMemberConflict) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond) // not caught up yet
	}
}

func (j joiner) SaveSnapshot(file string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w, err := wal.CreateBackup(file)
	if err != nil {
		return err
	}
	defer w.Abort()
	saved, err := j.c.SnapshotSave(ctx, w, nil)
	if err != nil {
		return err
	}
	if _, err := w.Finish(paxos.Slot(saved.Slot)); err != nil {
		return err
	}
	return w.Commit()
}

// TestAutoSyncFollowsTheMembership: a client started with the first three
// members' addresses keeps working as the cluster grows to five and
// shrinks to the two new ones (3 -> 5 -> 2), the old three stopped once
// removed: its endpoints follow the membership (etcd's auto-sync).
func TestAutoSyncFollowsTheMembership(t *testing.T) {
	cl := servicetest.Start(t, 3)
	ctx := context.Background()
	c, err := NewWithConfig(ctx, Config{Endpoints: cl.Endpoints[:3], AutoSyncInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	put := func(k string) {
		t.Helper()
		pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		if _, err := c.Put(pctx, k, []byte(k)); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
	}
	put("a")
	admin, err := NewWithConfig(ctx, Config{Endpoints: cl.Endpoints[:3], AutoSyncInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	cl.Join(t, joiner{admin}, 4, false)
	cl.Join(t, joiner{admin}, 5, false)
	// The members' addresses first; then the ones the client was given
	// that are not among them (tried last).
	waitEndpoints := func(want []string) {
		t.Helper()
		want = slices.Sorted(slices.Values(want))
		for _, e := range cl.Endpoints[:3] {
			if !slices.Contains(want, e) {
				want = append(want, e)
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for !slices.Equal(c.endpoints(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("endpoints %v, want %v", c.endpoints(), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitEndpoints(cl.Endpoints)
	put("b")
	for i := 0; i < 3; i++ {
		rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		_, err := admin.MemberRemove(rctx, paxos.NodeID(i+1))
		cancel()
		if err != nil {
			m, lerr := admin.MemberList(ctx)
			t.Fatalf("removing node %d: %v (membership %+v, %v)", i+1, err, m, lerr)
		}
		waitEndpoints(cl.Endpoints[i+1:])
		cl.Nodes[i].Stop()
		put("c" + string(rune('0'+i)))
	}
	m, err := c.MemberList(ctx)
	if err != nil || m.Version != 8 || len(m.Members) != 2 {
		t.Fatalf("membership at the end: %+v, %v", m, err)
	}
}
