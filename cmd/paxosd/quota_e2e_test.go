package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/paxosd/paxosd/client"
)

// TestQuotaCLI: three serve processes get the default quota from their
// leader; 'paxosd quota set 64KiB' goes through the log; once the keys fill
// it, 'paxosd kv put' fails with the one-line error, while get and delete
// work, and a put succeeds again after the delete. Every member agrees on
// the usage.
func TestQuotaCLI(t *testing.T) {
	c := startCluster(t)
	bin := c.bin
	eps := strings.Join(c.addrs, ",")
	cli := func(args ...string) (int, string, string) {
		return runBin(t, bin, append(args, "--endpoints", eps, "--timeout", "10s")...)
	}
	// The leader proposes the 8 GiB default by itself: all three speak
	// protocol 4.
	waitFor(t, "the default quota", 10*time.Second, func() bool {
		code, out, _ := cli("quota")
		return code == 0 && out == "used 0.0 B of 8.0 GiB (0%)\n"
	})
	for _, bad := range []string{"0", "12XB", "1.5.5G"} {
		if code, _, errOut := cli("quota", "set", bad); code != 2 || !strings.Contains(errOut, "quota set") {
			t.Fatalf("quota set %s: exit %d, %q", bad, code, errOut)
		}
	}
	if code, out, errOut := cli("quota", "set", "64KiB"); code != 0 || out != "quota set to 64.0 KiB\n" {
		t.Fatalf("quota set: exit %d, %q %q", code, out, errOut)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cl, err := client.New(ctx, c.addrs...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	value := []byte(strings.Repeat("v", 8<<10-2))
	for i := 0; i < 8; i++ { // 8 keys of 2+8190 bytes: exactly 64 KiB
		if _, err := cl.Put(ctx, fmt.Sprintf("k%d", i), value); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}

	const full = "quota exceeded: 64.0 KiB of 64.0 KiB used; delete keys or raise it with paxosd quota set"
	code, out, errOut := cli("kv", "put", "k8", "x")
	if code != 1 || out != "" || errOut != "paxosd: error: "+full+"\n" {
		t.Fatalf("put over the quota: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, out, _ := cli("quota", "get"); code != 0 || out != "used 64.0 KiB of 64.0 KiB (100%)\n" {
		t.Fatalf("quota get: exit %d, %q", code, out)
	}
	// Every member counts the same usage, from its own state.
	for _, a := range c.addrs {
		waitFor(t, "member "+a+" to apply the puts", 5*time.Second, func() bool {
			code, out, _ := runBin(t, bin, "quota", "--endpoints", a, "--timeout", "2s")
			return code == 0 && out == "used 64.0 KiB of 64.0 KiB (100%)\n"
		})
	}
	if code, out, _ := cli("kv", "get", "k0"); code != 0 || out != string(value)+"\n" {
		t.Fatalf("get when full: exit %d", code)
	}
	if code, out, errOut := cli("kv", "del", "k0"); code != 0 || out != "OK\n" {
		t.Fatalf("delete when full: exit %d, %q %q", code, out, errOut)
	}
	if code, out, errOut := cli("kv", "put", "k8", "x"); code != 0 || out != "OK\n" {
		t.Fatalf("put after the delete: exit %d, %q %q", code, out, errOut)
	}
	if code, out, _ := cli("quota"); code != 0 || out != "used 56.0 KiB of 64.0 KiB (87%)\n" {
		t.Fatalf("quota after the delete: exit %d, %q", code, out)
	}
}
