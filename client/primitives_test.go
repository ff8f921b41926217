package client_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/service"
	"github.com/paxosd/paxosd/service/servicetest"
)

// startCluster runs three in-process nodes and returns their endpoints.
func startCluster(t *testing.T) []string {
	eps, _ := startClusterNodes(t)
	return eps
}

func startClusterNodes(t *testing.T) ([]string, []*service.Node) {
	t.Helper()
	if testing.Short() {
		t.Skip("cluster test")
	}
	c := servicetest.Start(t, 3)
	return c.Endpoints, c.Nodes
}

func newClient(t *testing.T, eps []string) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.New(ctx, eps...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestLockHandOver: FIFO waiting, growing tokens, try-lock, CheckToken and
// fenced writes.
func TestLockHandOver(t *testing.T) {
	eps := startCluster(t)
	ctx := ctxT(t)
	c := newClient(t, eps)
	s1, err := c.NewSession(ctx, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := c.NewSession(ctx, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	l1, err := s1.Lock(ctx, "job")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.TryLock(ctx, "job"); !errors.Is(err, client.ErrLockHeld) {
		t.Fatalf("TryLock of a held lock: %v, want ErrLockHeld", err)
	}
	granted := make(chan *client.Lock, 1)
	go func() {
		l, err := s2.Lock(ctx, "job")
		if err != nil {
			t.Error(err)
		}
		granted <- l
	}()
	time.Sleep(200 * time.Millisecond) // let s2 queue up
	if _, err := c.Put(ctx, "out", []byte("by s1"), client.Fenced("job", l1.Token)); err != nil {
		t.Fatalf("fenced put by the holder: %v", err)
	}
	if err := s1.Unlock(ctx, "job"); err != nil {
		t.Fatal(err)
	}
	l2 := <-granted
	if l2 == nil || l2.Token <= l1.Token {
		t.Fatalf("second grant %+v, first token %d: tokens must grow", l2, l1.Token)
	}
	if held, err := c.CheckToken(ctx, "job", l1.Token); err != nil || held {
		t.Fatalf("CheckToken(old) = %v, %v; want false", held, err)
	}
	if held, err := c.CheckToken(ctx, "job", l2.Token); err != nil || !held {
		t.Fatalf("CheckToken(current) = %v, %v; want true", held, err)
	}
	if _, err := c.Put(ctx, "out", []byte("by stale s1"), client.Fenced("job", l1.Token)); !errors.Is(err, client.ErrFenced) {
		t.Fatalf("fenced put with a stale token: %v, want ErrFenced", err)
	}
}

// TestSessionLossReleasesLock: a session whose keep-alives stop expires and
// its lock passes to the next waiter; the lost client is told.
func TestSessionLossReleasesLock(t *testing.T) {
	eps := startCluster(t)
	ctx := ctxT(t)
	holderClient := newClient(t, eps)
	holder, err := holderClient.NewSession(ctx, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Lock(ctx, "res"); err != nil {
		t.Fatal(err)
	}
	waiter, err := newClient(t, eps).NewSession(ctx, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() { _, err := waiter.Lock(ctx, "res"); got <- err }()
	// Cut the holder off: its keep-alives fail from now on.
	holderClient.Close()
	select {
	case <-holder.Done():
		if !errors.Is(holder.Err(), client.ErrSessionExpired) {
			t.Fatalf("lost session's Err = %v", holder.Err())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the holder never declared its session lost")
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiter never got the lock of an expired session")
	}
}

// TestElection: campaign, queue, resign hands over with a higher term,
// and an observer sees every change in order with no gaps.
func TestElection(t *testing.T) {
	eps := startCluster(t)
	ctx := ctxT(t)
	c := newClient(t, eps)
	obs, obsErr := c.Observe(ctx, "sched", 0)
	a, _ := c.NewSession(ctx, 5*time.Second)
	b, _ := c.NewSession(ctx, 5*time.Second)
	la, err := a.Campaign(ctx, "sched", []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	won := make(chan client.Leader, 1)
	go func() {
		l, err := b.Campaign(ctx, "sched", []byte("b"))
		if err != nil {
			t.Error(err)
		}
		won <- l
	}()
	if err := b.Proclaim(ctx, "sched", []byte("x")); !errors.Is(err, client.ErrNotElectionLeader) {
		t.Fatalf("proclaim by a non-leader: %v", err)
	}
	if err := a.Proclaim(ctx, "sched", []byte("a2")); err != nil {
		t.Fatal(err)
	}
	if l, err := c.Leader(ctx, "sched"); err != nil || string(l.Value) != "a2" {
		t.Fatalf("Leader = %+v, %v", l, err)
	}
	time.Sleep(200 * time.Millisecond)
	if err := a.Resign(ctx, "sched"); err != nil {
		t.Fatal(err)
	}
	lb := <-won
	if lb.Term <= la.Term || string(lb.Value) != "b" {
		t.Fatalf("after resign: %+v (first term %d)", lb, la.Term)
	}
	var seqs []uint64
	var values []string
	for len(seqs) < 3 {
		select {
		case l, ok := <-obs:
			if !ok {
				t.Fatalf("observer ended: %v", obsErr())
			}
			seqs = append(seqs, l.Seq)
			values = append(values, string(l.Value))
		case <-time.After(5 * time.Second):
			t.Fatalf("observer saw only %v %v", seqs, values)
		}
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Fatalf("observed seqs %v have a gap", seqs)
		}
	}
	if fmt.Sprint(values) != "[a a2 b]" {
		t.Fatalf("observed values %v, want [a a2 b]", values)
	}
}

// TestWatch: a prefix watch sees every change in order, and a watch from
// an old revision replays history.
func TestWatch(t *testing.T) {
	eps := startCluster(t)
	ctx := ctxT(t)
	c := newClient(t, eps)
	first, err := c.Put(ctx, "cfg/a", []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	ch, _ := c.Watch(ctx, "cfg/", client.WithPrefix(), client.WithRevision(first))
	c.Put(ctx, "cfg/b", []byte("2"))
	c.Put(ctx, "other", []byte("x"))
	c.Delete(ctx, "cfg/a")
	var got []string
	for len(got) < 3 {
		select {
		case evs := <-ch:
			for _, e := range evs {
				got = append(got, fmt.Sprintf("%d:%s=%s", e.Type, e.KV.Key, e.KV.Value))
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("watch saw only %v", got)
		}
	}
	if want := "[1:cfg/a=1 1:cfg/b=2 2:cfg/a=]"; fmt.Sprint(got) != want {
		t.Fatalf("watch events %v, want %s", got, want)
	}
}

// TestFailoverKeepsSession: killing the leader does not expire a healthy
// client's session (the new leader resumes the replicated cluster clock
// rather than starting TTLs over or charging the election to them), and
// the session keeps its lock.
func TestFailoverKeepsSession(t *testing.T) {
	eps, nodes := startClusterNodes(t)
	ctx := ctxT(t)
	c := newClient(t, eps)
	s, err := c.NewSession(ctx, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.Lock(ctx, "keep")
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range c.Status(ctx) {
		if m.Err == nil && m.Status.Role == "leader" {
			nodes[i].Stop()
		}
	}
	time.Sleep(4 * time.Second) // two TTLs: long enough to expire it if failover broke it
	select {
	case <-s.Done():
		t.Fatalf("healthy session lost across a failover: %v", s.Err())
	default:
	}
	if held, err := c.CheckToken(ctx, "keep", l.Token); err != nil || !held {
		t.Fatalf("after failover, CheckToken = %v, %v; want the lock still held", held, err)
	}
}

// TestDeleteMissingKey: deleting a key that is not there is no error
// (protocol 7: the node answers success with found false).
func TestDeleteMissingKey(t *testing.T) {
	eps := startCluster(t)
	ctx := ctxT(t)
	c := newClient(t, eps)
	if _, err := c.Put(ctx, "d", []byte("1")); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false} {
		found, err := c.Delete(ctx, "d")
		if err != nil || found != want {
			t.Fatalf("delete %d: found %v, %v; want %v, nil", i+1, found, err, want)
		}
	}
}
