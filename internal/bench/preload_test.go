package bench

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/internal/cli"
)

// TestBenchPreload: 'bench preload' writes bench/scale/key/0..N-1, and
// 'bench put --run-id scale' then overwrites those keys and writes no
// other (make bench-etcd relies on both: the same keyspace as etcd's).
func TestBenchPreload(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	eps := benchTestCluster(t)
	var out, errb bytes.Buffer
	if err := Command([]string{"preload", "--endpoints", eps, "--keys", "40", "--value-size", "8", "--clients", "4", "--conns", "2"}, &out, &errb); err != nil {
		t.Fatalf("bench preload: %v: %s", err, errb.String())
	}
	if !strings.Contains(out.String(), "preload: 40 keys in") {
		t.Errorf("bench preload printed:\n%s", out.String())
	}
	if err := Command([]string{"put", "--endpoints", eps, "--run-id", "scale", "--keys", "40", "--clients", "4",
		"--duration", "300ms", "--warmup", "0s", "--json"}, &out, &errb); err != nil {
		t.Fatalf("bench put --run-id scale: %v: %s", err, errb.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.NewWithConfig(ctx, client.Config{Endpoints: strings.Split(eps, ",")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	kvs, err := c.List(ctx, "bench/", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(kvs) != 40 {
		t.Fatalf("%d keys under bench/ after the preload and the put run, want the 40 preloaded", len(kvs))
	}
	overwritten := 0
	for _, kv := range kvs {
		if !strings.HasPrefix(kv.Key, "bench/scale/key/") {
			t.Errorf("key %q: not one of bench/scale/key/N", kv.Key)
		}
		if len(kv.Value) == 256 {
			overwritten++ // the put run's value; the preload wrote 8 bytes
		}
	}
	if overwritten == 0 {
		t.Errorf("the put run overwrote none of the preloaded keys")
	}
	for _, args := range [][]string{{"--keys", "0"}, {"--clients", "0"}, {"extra"}} {
		err := Command(append([]string{"preload", "--endpoints", eps}, args...), &out, &errb)
		if !errors.Is(err, cli.ErrUsage) {
			t.Errorf("bench preload %v: %v, want a usage error", args, err)
		}
	}
}
