package service

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// TestMembershipSurvivesSnapshots: after a membership change whose slot
// the logs have truncated away behind snapshots, a member restarted from
// its own snapshot, and a new member joining from a snapshot saved from
// the cluster, know the changed membership: the snapshot (format 8, from
// cluster level 16 on) carries it. Before, both started again from the
// bootstrap configuration (the restart from its --peers; the join found
// no membership and refused).
func TestMembershipSurvivesSnapshots(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	c := startSnapCluster(t, 20, 5)
	leader := c.waitLeader()
	ctx, cl := c.client(60 * time.Second)
	c.waitLevel(ctx, statemachine.LevelMembership)
	ln, err := wire.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr4 := ln.Addr().String()
	ln.Close()
	if _, err := cl.MemberAdd(ctx, 4, addr4, true); err != nil {
		t.Fatalf("member add: %v", err)
	}
	follower := leader%3 + 1
	f := c.nodes[follower]
	changed := onLoop(f, func() paxos.Slot { return f.sm.Applied() })
	for i := 0; i < 60; i++ {
		if _, err := cl.Put(ctx, "k", []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for start := time.Now(); onLoop(f, func() paxos.Slot { return f.r.Status().Truncated }) <= changed; time.Sleep(20 * time.Millisecond) {
		if time.Since(start) > 20*time.Second {
			t.Fatalf("node %d's log not truncated past slot %d, where the change was in force", follower, changed)
		}
	}
	check := func(what string, got paxos.Configs) {
		t.Helper()
		x, ok := got.Latest().Member(4)
		if got.Latest().Version != 2 || !ok || !x.Learner || x.Addr != addr4 {
			t.Fatalf("%s: membership %+v, want version 2 with learner 4 at %s", what, got, addr4)
		}
	}
	f.Stop()
	delete(c.nodes, follower)
	c.start(follower)
	f = c.nodes[follower]
	check("restarted from its snapshot", onLoop(f, func() paxos.Configs { return f.sm.Members() }))

	path := filepath.Join(t.TempDir(), "backup.snap")
	saveBackup(t, ctx, cl, path)
	members, err := JoinFromBackup(JoinConfig{File: path, DataDir: filepath.Join(t.TempDir(), "4"), ID: 4})
	if err != nil {
		t.Fatalf("join from a snapshot saved after the member add: %v", err)
	}
	check("join", members)
}
