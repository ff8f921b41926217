package service

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// waitLevel waits until every running node applied level want.
func (c *testCluster) waitLevel(ctx context.Context, want uint64) {
	c.t.Helper()
	for id, n := range c.nodes {
		for levelOf(n) < want {
			if ctx.Err() != nil {
				c.t.Fatalf("node %d at level %d, want %d", id, levelOf(n), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestTxnCluster: a transaction through a real cluster: a transfer
// between two accounts under a fencing-token compare writes both keys at
// one revision, which a watcher receives in one batch; the else branch
// once the lock is released; a prefix delete; a retry of the same
// (client, seq) is answered with the first answer and applies nothing;
// every member ends with the same keys.
func TestTxnCluster(t *testing.T) {
	c := startTestCluster(t)
	c.waitLeader()
	ctx, cl := c.client(30 * time.Second)
	c.waitLevel(ctx, statemachine.LevelTxn)

	var rev uint64
	for _, k := range []string{"acct/a", "acct/b"} {
		r, err := cl.Put(ctx, k, []byte("100"))
		if err != nil {
			t.Fatal(err)
		}
		rev = r
	}
	s, err := cl.NewSession(ctx, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	lock, err := s.Lock(ctx, "acct/lock")
	if err != nil {
		t.Fatal(err)
	}
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	events, _ := cl.Watch(wctx, "acct/", client.WithPrefix(), client.WithRevision(rev+1))

	transfer := func() *client.TxnResponse {
		t.Helper()
		resp, err := cl.Txn(ctx).
			If(client.Compare(client.LockToken("acct/lock"), "=", lock.Token),
				client.Compare(client.Value("acct/a"), "=", "100")).
			Then(client.OpPut("acct/a", []byte("90")), client.OpPut("acct/b", []byte("110")), client.OpGet("acct/b")).
			Else(client.OpGet("acct/a")).
			Commit()
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := transfer()
	if !resp.Succeeded || len(resp.Results) != 3 || string(resp.Results[0].KV.Value) != "100" ||
		string(resp.Results[2].KV.Value) != "110" || resp.Results[2].KV.ModRevision != resp.Revision {
		t.Fatalf("transfer: %+v", resp)
	}
	for _, k := range []string{"acct/a", "acct/b"} {
		kv, err := cl.Get(ctx, k)
		if err != nil || kv.ModRevision != resp.Revision {
			t.Fatalf("%s: %+v %v, want mod revision %d", k, kv, err, resp.Revision)
		}
	}
	select {
	case batch := <-events:
		if len(batch) != 2 || batch[0].KV.Key != "acct/a" || batch[1].KV.Key != "acct/b" ||
			batch[0].KV.ModRevision != resp.Revision || batch[1].KV.ModRevision != resp.Revision {
			t.Fatalf("watch batch: %+v, want both puts at %d in one batch", batch, resp.Revision)
		}
	case <-ctx.Done():
		t.Fatal("no watch event")
	}
	// The compare on acct/a fails now: the else branch reads it.
	if resp := transfer(); resp.Succeeded || len(resp.Results) != 1 || string(resp.Results[0].KV.Value) != "90" {
		t.Fatalf("second transfer: %+v", resp)
	}
	// Released, the token no longer holds: a fenced txn runs its else branch.
	if err := s.Unlock(ctx, "acct/lock"); err != nil {
		t.Fatal(err)
	}
	resp, err = cl.Txn(ctx).If(client.Compare(client.LockToken("acct/lock"), "=", lock.Token)).
		Then(client.OpPut("acct/a", []byte("0"))).Commit()
	if err != nil || resp.Succeeded {
		t.Fatalf("a stale token's txn: %+v %v", resp, err)
	}

	// A prefix delete: one revision, a count.
	for i := 0; i < 5; i++ {
		if _, err := cl.Put(ctx, fmt.Sprintf("tmp/%d", i), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	resp, err = cl.Txn(ctx).Then(client.OpDeletePrefix("tmp/"), client.OpList("tmp/", 0)).Commit()
	if err != nil || resp.Results[0].Deleted != 5 || len(resp.Results[1].KVs) != 0 {
		t.Fatalf("prefix delete: %+v %v", resp, err)
	}

	// Refusals: a key written twice, too many operations.
	if _, err := cl.Txn(ctx).Then(client.OpPut("x", nil), client.OpDelete("x")).Commit(); !errors.Is(err, client.ErrInvalid) ||
		!strings.Contains(err.Error(), `key "x" written twice`) {
		t.Fatalf("a key written twice: %v", err)
	}
	many := make([]client.Op, statemachine.TxnOpsMax+1)
	for i := range many {
		many[i] = client.OpGet("k")
	}
	if _, err := cl.Txn(ctx).Then(many...).Commit(); !errors.Is(err, client.ErrTooLarge) {
		t.Fatalf("129 operations: %v", err)
	}

	// A retry: the same (client id, seq) sent again after the key changed.
	conn, err := wire.DialClient(ctx, c.peers[c.waitLeader()], "", 0)
	if err != nil {
		t.Fatal(err)
	}
	mux := wire.NewMux(conn)
	defer mux.Close()
	q := &wire.Request{Op: wire.OpTxn, ClientID: 4242, Seq: 1,
		Compares: []wire.Compare{{Target: wire.CompareExists, Result: wire.CompareEqual, Key: "retry", Number: 0}},
		ThenOps:  []wire.TxnOp{{Type: wire.TxnPut, Key: "retry", Value: []byte("1")}, {Type: wire.TxnGet, Key: "acct/b"}},
	}
	first, err := mux.Call(ctx, q)
	if err != nil || first.Err != wire.ErrNone || !first.Succeeded {
		t.Fatalf("first: %+v %v", first, err)
	}
	if _, err := cl.Put(ctx, "acct/b", []byte("changed")); err != nil {
		t.Fatal(err)
	}
	again, err := mux.Call(ctx, q)
	if err != nil || !again.Succeeded || again.Revision != first.Revision || len(again.TxnResults) != 2 ||
		string(again.TxnResults[1].KV.Value) != "110" {
		t.Fatalf("retry: %+v %v, want the first answer %+v", again, err, first)
	}
	if kv, err := cl.Get(ctx, "retry"); err != nil || kv.Version != 1 {
		t.Fatalf("retry applied again: %+v %v", kv, err)
	}
	c.waitSameKeys(ctx)
}

// waitSameKeys waits until every node holds the same keys at the same
// revisions (they apply the same log).
func (c *testCluster) waitSameKeys(ctx context.Context) {
	c.t.Helper()
	dump := func(n *Node) string {
		return onLoop(n, func() string {
			var b strings.Builder
			for _, kv := range n.sm.List("", 0) {
				fmt.Fprintf(&b, "%s=%s@%d/%d/%d ", kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version)
			}
			return fmt.Sprintf("rev %d: %s", n.sm.Revision(), b.String())
		})
	}
	for {
		var first string
		same := true
		for id := paxos.NodeID(1); id <= 3; id++ {
			d := dump(c.nodes[id])
			if id == 1 {
				first = d
			} else if d != first {
				same = false
			}
		}
		if same {
			return
		}
		if ctx.Err() != nil {
			c.t.Fatalf("members differ:\n%s\n%s\n%s", dump(c.nodes[1]), dump(c.nodes[2]), dump(c.nodes[3]))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTxnBeforeLevel: while a member has never connected (its version is
// unknown) the level stays below 8: a transaction is refused on every
// member alike and changes nothing; once the member joins, the level
// rises and the same transaction applies.
func TestTxnBeforeLevel(t *testing.T) {
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
	txn := func() (*client.TxnResponse, error) {
		return cl.Txn(ctx).Then(client.OpPut("k", []byte("v"))).Commit()
	}
	_, err = txn()
	if !errors.Is(err, client.ErrInvalid) || !strings.Contains(err.Error(), "transactions need cluster level 8") {
		t.Fatalf("txn at level 0: %v", err)
	}
	for _, id := range []paxos.NodeID{1, 2} {
		if rev := onLoop(c.nodes[id], func() uint64 { return c.nodes[id].sm.Revision() }); rev != 0 {
			t.Fatalf("node %d at revision %d after a refused txn", id, rev)
		}
	}
	c.start(3)
	c.waitLevel(ctx, statemachine.LevelTxn)
	if resp, err := txn(); err != nil || !resp.Succeeded || resp.Revision != 1 {
		t.Fatalf("txn at level 8: %+v %v", resp, err)
	}
	c.waitSameKeys(ctx)
}

// TestTxnTransfersAcrossFailover: concurrent transfers between accounts,
// each a transaction whose compares pin both accounts' mod revisions and
// the fencing token of a lock, while the leader is stopped and restarted.
// A transfer retried after the failover (the client resends the same
// seq) must not apply twice, and no transfer may apply half: the total
// never changes, and every member agrees.
func TestTxnTransfersAcrossFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	c := startTestCluster(t)
	c.waitLeader()
	ctx, cl := c.client(60 * time.Second)
	c.waitLevel(ctx, statemachine.LevelTxn)
	const accounts, start = 5, 1000
	for i := 0; i < accounts; i++ {
		if _, err := cl.Put(ctx, fmt.Sprintf("bank/%d", i), []byte(strconv.Itoa(start))); err != nil {
			t.Fatal(err)
		}
	}
	s, err := cl.NewSession(ctx, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	lock, err := s.Lock(ctx, "bank/lock")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	applied := 0
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			wcl, err := client.New(ctx, c.endpoints()...)
			if err != nil {
				t.Error(err)
				return
			}
			defer wcl.Close()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for {
				select {
				case <-stop:
					return
				default:
				}
				from, to := rng.IntN(accounts), rng.IntN(accounts-1)
				if to >= from {
					to++
				}
				ok, err := transferOnce(ctx, wcl, lock.Token, from, to, 1+rng.IntN(50))
				if err != nil && ctx.Err() == nil && !errors.Is(err, client.ErrTimeout) && !errors.Is(err, client.ErrUnavailable) {
					t.Errorf("transfer: %v", err)
					return
				}
				if ok {
					mu.Lock()
					applied++
					mu.Unlock()
				}
			}
		}(w)
	}
	l := c.bounceLeader()
	close(stop)
	wg.Wait()
	if applied < 20 {
		t.Fatalf("only %d transfers applied", applied)
	}
	t.Logf("%d transfers applied across the failover of node %d", applied, l)
	total := 0
	for i := 0; i < accounts; i++ {
		kv, err := cl.Get(ctx, fmt.Sprintf("bank/%d", i))
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(string(kv.Value))
		total += n
	}
	if total != accounts*start {
		t.Fatalf("total %d after %d transfers, want %d", total, applied, accounts*start)
	}
	c.waitSameKeys(ctx)
}

// transferOnce reads two accounts and moves amount from one to the other
// in a transaction that holds only if neither changed since the read and
// token still holds the lock; it reports whether it applied.
func transferOnce(ctx context.Context, cl *client.Client, token uint64, from, to, amount int) (bool, error) {
	a, b := fmt.Sprintf("bank/%d", from), fmt.Sprintf("bank/%d", to)
	resp, err := cl.Txn(ctx).Then(client.OpGet(a), client.OpGet(b)).Commit()
	if err != nil {
		return false, err
	}
	ka, kb := resp.Results[0].KV, resp.Results[1].KV
	va, _ := strconv.Atoi(string(ka.Value))
	vb, _ := strconv.Atoi(string(kb.Value))
	if va < amount {
		return false, nil
	}
	resp, err = cl.Txn(ctx).
		If(client.Compare(client.LockToken("bank/lock"), "=", token),
			client.Compare(client.ModRevision(a), "=", ka.ModRevision),
			client.Compare(client.ModRevision(b), "=", kb.ModRevision)).
		Then(client.OpPut(a, []byte(strconv.Itoa(va-amount))), client.OpPut(b, []byte(strconv.Itoa(vb+amount)))).
		Commit()
	if err != nil {
		return false, err
	}
	return resp.Succeeded, nil
}
