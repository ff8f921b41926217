package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/paxosd/paxosd/client"
)

// TestBenchPutVerify: bench put --verify reads every written key back and
// passes on a healthy cluster; the same check fails when a key no longer
// holds its last acknowledged value (overwritten behind the writer's back,
// as a lost write would leave it).
func TestBenchPutVerify(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	eps := benchTestCluster(t)
	var out, errb bytes.Buffer
	args := []string{"put", "--endpoints", eps, "--duration", "1s", "--warmup", "0s", "--clients", "4", "--keys", "40", "--verify", "--run-id", "verify"}
	if err := Command(args, &out, &errb); err != nil {
		t.Fatalf("bench put --verify: %v: %s%s", err, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), " 0 LOST, 0 unreadable") {
		t.Fatalf("no verify line:\n%s", out.String())
	}

	// The check itself, after one key was changed by someone else.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f := benchFlags{clients: 2, conns: 1, keys: 4, valueSize: 16, runID: "verify-bad", verify: true}
	f.cf.Endpoints, f.cf.Timeout = eps, 10*time.Second
	r := &benchRunner{name: "put", f: &f, runID: f.runID, value: make([]byte, 16)}
	if err := r.connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer r.pool[0].Close()
	v := newPutVerifier(2)
	for i := 0; i < 8; i++ {
		if err := v.put(ctx, r, i%2); err != nil {
			t.Fatal(err)
		}
	}
	if res := v.check(ctx, r); res.Lost != 0 || res.Matched != res.Keys || res.Keys == 0 {
		t.Fatalf("before the overwrite: %+v", res)
	}
	var k int
	for k = range v.logs[1].acked {
		break
	}
	cl, err := client.New(ctx, strings.Split(eps, ",")...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.Put(ctx, r.nameOf("key", k), []byte("someone else")); err != nil {
		t.Fatal(err)
	}
	res := v.check(ctx, r)
	if res.Lost != 1 || !strings.Contains(res.FirstBad, "someone else") {
		t.Fatalf("after the overwrite: %+v", res)
	}
	if err := res.report(&bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "1 acknowledged writes lost") {
		t.Fatalf("report: %v", err)
	}
}
