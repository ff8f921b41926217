package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/service/servicetest"
)

// waitTxn waits until the cluster at eps applies transactions (cluster
// level 8, which its leader raises by itself).
func waitTxn(t *testing.T, eps string) {
	t.Helper()
	waitFor(t, "cluster level 8", 10*time.Second, func() bool {
		code, _, _ := cliIn(t, eps, []byte("\nget probe\n"), "txn")
		return code == 0
	})
}

// TestTxnCLI: paxosd txn reads etcdctl's format from stdin: a transfer
// under a fencing-token compare prints SUCCESS and each result; when a
// compare fails, FAILURE and the else branch's; -w json; exit 0 either
// way, 1 for a refused transaction, 2 for bad input.
func TestTxnCLI(t *testing.T) {
	eps := servicetest.Start(t, 1).Endpoints[0]
	waitTxn(t, eps)
	cliOK(t, eps, nil, "kv", "put", "acct/a", "100")
	cliOK(t, eps, nil, "kv", "put", "acct/b", "100")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := client.New(ctx, eps)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	s, err := cl.NewSession(ctx, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	lock, err := s.Lock(ctx, "acct/lock")
	if err != nil {
		t.Fatal(err)
	}
	tok := uintStr(lock.Token)
	transfer := `token("acct/lock") = "` + tok + `"
value("acct/a") = "100"
version("acct/a") > "0"
mod("acct/a") < "1000"
create("acct/new") = "0"

put acct/a 90
put acct/b 110
get acct/a
get acct/ --prefix

get acct/a
`
	out := cliOK(t, eps, []byte(transfer), "txn")
	want := "SUCCESS\n\nOK\n\nOK\n\nacct/a\n90\n\nacct/a\n90\nacct/b\n110\n"
	if out != want {
		t.Fatalf("txn:\n%s\nwant:\n%s", out, want)
	}
	// Again: acct/a holds 90 now, the else branch reads it; exit 0.
	if out := cliOK(t, eps, []byte(transfer), "txn"); out != "FAILURE\n\nacct/a\n90\n" {
		t.Fatalf("txn whose compare fails:\n%s", out)
	}
	// -w json: the branch, the revision, each result.
	j := decodeObj(t, "txn -w json", cliOK(t, eps, []byte(`value("acct/a") = "90"

put acct/a 80
del acct/b
get acct/a
get nothing
`), "txn", "-w", "json"))
	res := j.list(t, "results")
	if j["succeeded"] != true || j.num(t, "revision") == 0 || len(res) != 4 {
		t.Fatalf("txn -w json = %v", j)
	}
	put, del, get, none := obj(res[0].(map[string]any)), obj(res[1].(map[string]any)), obj(res[2].(map[string]any)), obj(res[3].(map[string]any))
	if put.str(t, "op") != "put" || put.sub(t, "prev_kv").str(t, "value") != "90" {
		t.Errorf("put result %v", put)
	}
	if del.str(t, "op") != "del" || del.num(t, "deleted") != 1 {
		t.Errorf("del result %v", del)
	}
	if kvs := get.list(t, "kvs"); len(kvs) != 1 || obj(kvs[0].(map[string]any)).num(t, "mod_revision") != j.num(t, "revision") {
		t.Errorf("get result %v: want the pair at the txn's revision %d", get, j.num(t, "revision"))
	}
	if kvs := none.list(t, "kvs"); len(kvs) != 0 {
		t.Errorf("get of a missing key: %v, want kvs []", none)
	}
	// Refused by the cluster: exit 1 and the reason.
	code, _, errOut := cliIn(t, eps, []byte("\nput x 1\ndel x\n"), "txn")
	if code != 1 || !strings.Contains(errOut, `key "x" written twice`) {
		t.Errorf("a key written twice: exit %d, %q", code, errOut)
	}
	code, _, errOut = cliIn(t, eps, []byte("\ndel p/ --prefix\nput p/x 1\n"), "txn")
	if code != 1 || !strings.Contains(errOut, `overlaps the prefix delete of "p/"`) {
		t.Errorf("a put in a deleted prefix: exit %d, %q", code, errOut)
	}
	// Bad input: exit 2 with the line.
	for _, bad := range []string{
		`value("k") ~ "v"`,
		`weight("k") = "1"`,
		`version("k") = "x"`,
		`value(k) = "v"`,
		"\nput k",
		"\nfrob k",
		"\n\n\n\n",
	} {
		code, _, errOut := cliIn(t, eps, []byte(bad+"\n"), "txn")
		if code != 2 || !strings.Contains(errOut, "txn: line") {
			t.Errorf("txn <<< %q: exit %d, %q; want 2 and the line", bad, code, errOut)
		}
	}
}

// TestKVDelPrefix: kv del KEY --prefix deletes every key under KEY in one
// transaction (one revision: a watcher gets every delete in one batch) and
// prints how many; 0 is no error; -w json; an empty prefix is refused.
func TestKVDelPrefix(t *testing.T) {
	eps := servicetest.Start(t, 1).Endpoints[0]
	waitTxn(t, eps)
	for _, k := range []string{"jobs/1", "jobs/2", "jobs/3", "jobsx", "other"} {
		cliOK(t, eps, nil, "kv", "put", k, "v")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := client.New(ctx, eps)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rev, err := cl.Put(ctx, "zzz", []byte("v")) // the watch starts after it, whenever it opens
	if err != nil {
		t.Fatal(err)
	}
	events, _ := cl.Watch(ctx, "jobs/", client.WithPrefix(), client.WithRevision(rev+1))
	if out := cliOK(t, eps, nil, "kv", "del", "jobs/", "--prefix"); out != "3\n" {
		t.Fatalf("kv del jobs/ --prefix = %q, want 3", out)
	}
	select {
	case batch := <-events:
		if len(batch) != 3 || batch[0].KV.ModRevision != batch[2].KV.ModRevision {
			t.Fatalf("watch: %+v, want the 3 deletes at one revision in one batch", batch)
		}
	case <-ctx.Done():
		t.Fatal("no watch event")
	}
	if out := cliOK(t, eps, nil, "kv", "ls", "--keys-only"); out != "jobsx\nother\nzzz\n" {
		t.Fatalf("left: %q", out)
	}
	if out := cliOK(t, eps, nil, "kv", "del", "jobs/", "--prefix"); out != "0\n" {
		t.Fatalf("again = %q, want 0", out)
	}
	j := decodeObj(t, "del --prefix -w json", cliOK(t, eps, nil, "kv", "del", "jobs", "--prefix", "-w", "json"))
	if j.str(t, "key") != "jobs" || j["prefix"] != true || j.num(t, "deleted") != 1 {
		t.Fatalf("kv del --prefix -w json = %v", j)
	}
	if code, _, errOut := cliIn(t, eps, nil, "kv", "del", "", "--prefix"); code != 2 || !strings.Contains(errOut, "non-empty prefix") {
		t.Fatalf("kv del '' --prefix: exit %d, %q", code, errOut)
	}
	if code, _, errOut := cliIn(t, eps, nil, "kv", "get", "k", "--prefix"); code != 2 || !strings.Contains(errOut, "--prefix is for kv watch and kv del") {
		t.Fatalf("kv get --prefix: exit %d, %q", code, errOut)
	}
}
