package service

import (
	"errors"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// TestAuthWriteOnlyReadsNoPairs: a user whose role grants write but not
// read on a key may put, delete, compare-and-swap and write it in a
// transaction, but the answers leave out the pairs they would report (a
// put's or delete's previous pair, a failed CAS's current pair, a
// transaction put's previous pair): found and succeeded only. A user
// who may read the key gets them as before.
func TestAuthWriteOnlyReadsNoPairs(t *testing.T) {
	c := startTunedCluster(t, func(cfg *Config) { cfg.BcryptCost = bcrypt.MinCost })
	c.waitLeader()
	ctx, anon := c.client(60 * time.Second)
	c.waitLevel(ctx, statemachine.LevelAuth)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(anon.UserAdd(ctx, "root", "rootpw"))
	must(anon.UserAdd(ctx, "carol", "carolpw"))
	must(anon.UserAdd(ctx, "dave", "davepw"))
	must(anon.RoleAdd(ctx, "dropbox"))
	must(anon.RoleGrant(ctx, "dropbox", "drop/", client.PermWrite))
	must(anon.RoleAdd(ctx, "owner"))
	must(anon.RoleGrant(ctx, "owner", "drop/", client.PermReadWrite))
	must(anon.UserGrantRole(ctx, "carol", "dropbox"))
	must(anon.UserGrantRole(ctx, "dave", "owner"))
	must(anon.AuthEnable(ctx))
	root, err := c.userClient(ctx, "root", "rootpw")
	must(err)
	if _, err := root.Put(ctx, "drop/k", []byte("secret")); err != nil {
		t.Fatal(err)
	}

	carol := rawAs(t, ctx, c.endpoints()[0], "carol", "carolpw")
	dave := rawAs(t, ctx, c.endpoints()[1], "dave", "davepw")
	seq := uint64(0)
	call := func(m *wire.Mux, q wire.Request) *wire.Response {
		t.Helper()
		seq++
		q.ClientID, q.Seq = 40+seq, 1
		resp, err := m.Call(ctx, &q)
		if err != nil {
			t.Fatalf("%s: %v", q.Op, err)
		}
		if resp.Err != wire.ErrNone && resp.Err != wire.ErrCASFailed {
			t.Fatalf("%s: %s %q", q.Op, resp.Err, resp.ErrMsg)
		}
		return resp
	}
	empty := func(kv wire.KV) bool { return kv.Key == "" && kv.Value == nil && kv.ModRevision == 0 }

	if r := call(carol, wire.Request{Op: wire.OpPut, Key: "drop/k", Value: []byte("v1")}); !r.Found || !empty(r.KV) {
		t.Fatalf("write-only put over drop/k: found %v kv %+v; want found and no pair", r.Found, r.KV)
	}
	if r := call(dave, wire.Request{Op: wire.OpPut, Key: "drop/k", Value: []byte("v2")}); !r.Found || string(r.KV.Value) != "v1" {
		t.Fatalf("readwrite put over drop/k: found %v kv %+v; want the previous pair v1", r.Found, r.KV)
	}
	if r := call(carol, wire.Request{Op: wire.OpCAS, Key: "drop/k", Value: []byte("v3"), PrevValue: []byte("guess"), HasPrevValue: true}); r.Succeeded || !empty(r.KV) {
		t.Fatalf("write-only failed CAS: succeeded %v kv %+v; want no pair", r.Succeeded, r.KV)
	}
	if r := call(dave, wire.Request{Op: wire.OpCAS, Key: "drop/k", Value: []byte("v3"), PrevValue: []byte("guess"), HasPrevValue: true}); r.Succeeded || string(r.KV.Value) != "v2" {
		t.Fatalf("readwrite failed CAS: succeeded %v kv %+v; want the current pair v2", r.Succeeded, r.KV)
	}
	txn := func(v string) wire.Request {
		return wire.Request{Op: wire.OpTxn, ThenOps: []wire.TxnOp{{Type: wire.TxnPut, Key: "drop/k", Value: []byte(v)}}}
	}
	if r := call(carol, txn("v4")); !r.Succeeded || len(r.TxnResults) != 1 || !r.TxnResults[0].Found || !empty(r.TxnResults[0].KV) {
		t.Fatalf("write-only txn put: %+v; want found and no pair", r.TxnResults)
	}
	if r := call(dave, txn("v5")); len(r.TxnResults) != 1 || string(r.TxnResults[0].KV.Value) != "v4" {
		t.Fatalf("readwrite txn put: %+v; want the previous pair v4", r.TxnResults)
	}
	if r := call(carol, wire.Request{Op: wire.OpDelete, Key: "drop/k"}); !r.Found || !empty(r.KV) {
		t.Fatalf("write-only delete: found %v kv %+v; want found and no pair", r.Found, r.KV)
	}
	if _, err := root.Get(ctx, "drop/k"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("drop/k after carol's delete: %v", err)
	}
}
