package service

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/paxos"
)

// TestQuotaCluster: a cluster whose members all speak protocol 4 gets the
// leader's default quota by itself; a quota set through the log is
// enforced alike by every member, with the one-line error; deletes bring
// writes back; every member reports the same usage.
func TestQuotaCluster(t *testing.T) {
	c := startTunedCluster(t, func(cfg *Config) { cfg.DefaultQuotaBytes = 1 << 20 })
	c.waitLeader()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := client.New(ctx, c.endpoints()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	// Every member ends up with the default, applied through the log.
	want := client.QuotaInfo{Limit: 1 << 20, Set: true}
	c.waitQuota(ctx, want)

	if err := cl.SetQuota(ctx, 0); !errors.Is(err, client.ErrInvalid) {
		t.Fatalf("quota of 0: %v", err)
	}
	if err := cl.SetQuota(ctx, 100); err != nil {
		t.Fatal(err)
	}
	value := strings.Repeat("v", 40)
	for _, k := range []string{"k1", "k2"} { // 2 x 42 bytes
		if _, err := cl.Put(ctx, k, []byte(value)); err != nil {
			t.Fatal(err)
		}
	}
	_, err = cl.Put(ctx, "k3", []byte(value))
	const msg = "quota exceeded: 84.0 B of 100.0 B used; delete keys or raise it with paxosd quota set"
	if !errors.Is(err, client.ErrQuotaExceeded) || err.Error() != msg {
		t.Fatalf("put over the quota: %v\nwant %s", err, msg)
	}
	// Reads, shrinking writes, deletes and sessions go on.
	if _, err := cl.Get(ctx, "k1"); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Put(ctx, "k1", []byte("small")); err != nil { // 7 bytes
		t.Fatal(err)
	}
	s, err := cl.NewSession(ctx, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	s.Close(ctx)
	if _, err := cl.Put(ctx, "k3", []byte(value)); err != nil {
		t.Fatalf("put after shrinking: %v", err)
	}
	c.waitQuota(ctx, client.QuotaInfo{Used: 7 + 42 + 42, Limit: 100, Set: true})
	if _, err := cl.Put(ctx, "k4", []byte(value)); !errors.Is(err, client.ErrQuotaExceeded) {
		t.Fatalf("put over the quota again: %v", err)
	}
	if _, err := cl.Delete(ctx, "k2"); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Put(ctx, "k4", []byte(value)); err != nil {
		t.Fatalf("put after a delete: %v", err)
	}
	c.waitQuota(ctx, client.QuotaInfo{Used: 7 + 42 + 42, Limit: 100, Set: true})
}

// waitQuota waits until every member reports want.
func (c *testCluster) waitQuota(ctx context.Context, want client.QuotaInfo) {
	c.t.Helper()
	for id := paxos.NodeID(1); id <= 3; id++ {
		one, err := client.New(ctx, c.peers[id])
		if err != nil {
			c.t.Fatal(err)
		}
		var got client.QuotaInfo
		for {
			if got, err = one.Quota(ctx); err == nil && got == want {
				break
			}
			if ctx.Err() != nil {
				c.t.Fatalf("node %d: quota %+v (%v), want %+v", id, got, err, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
		one.Close()
	}
}

// TestQuotaGate: the leader names the first member below protocol 4.
func TestQuotaGate(t *testing.T) {
	versions := map[paxos.NodeID]uint32{2: 4, 3: 3, 4: 0}
	cfg := Config{ID: 1, Peers: map[paxos.NodeID]string{1: "a", 2: "b", 3: "c", 4: "d"}}
	n := &Node{cfg: cfg, book: newMemberBook(cfg.bootstrapMembers()),
		peerVersion: func(id paxos.NodeID) uint32 { return versions[id] }}
	if id, v := n.memberBelow(quotaProtocol); id != 3 || v != 3 {
		t.Fatalf("member below: %d (version %d), want 3", id, v)
	}
	if got, want := quotaGateMessage(3, 3), "quota set needs every member at protocol 4 or newer; upgrade node 3 first"; got != want {
		t.Fatalf("message %q, want %q", got, want)
	}
	versions[3] = 4
	if id, v := n.memberBelow(quotaProtocol); id != 4 || v != 0 {
		t.Fatalf("member below: %d (version %d), want 4 (not connected)", id, v)
	}
	versions[4] = 5
	if id, _ := n.memberBelow(quotaProtocol); id != 0 || !n.allMembersSpeak(quotaProtocol) {
		t.Fatalf("member below: %d, want none", id)
	}
}
