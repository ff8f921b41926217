// Package servicetest starts in-process paxosd clusters for the tests of
// packages that use one (client, cmd/paxosd): real nodes on loopback, each
// with its own data directory, fsync off.
package servicetest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/service"
	"github.com/paxosd/paxosd/wire"
)

// Cluster is a running in-process cluster.
type Cluster struct {
	// Endpoints are the nodes' addresses; Nodes[i] listens on Endpoints[i].
	Endpoints []string
	Nodes     []*service.Node
	tune      func(*service.Config)
}

// Start runs n nodes on free loopback ports and stops them when the test
// ends (those still running). Their logs go to stderr at error level.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	return StartTuned(t, n, nil)
}

// StartTuned is Start with tune, if not nil, changing each node's Config
// before it starts (a shorter WatchProgressInterval, say).
func StartTuned(t testing.TB, n int, tune func(*service.Config)) *Cluster {
	t.Helper()
	dir := t.TempDir()
	peers := map[paxos.NodeID]string{}
	for id := paxos.NodeID(1); id <= paxos.NodeID(n); id++ {
		ln, err := wire.Listen("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		peers[id] = ln.Addr().String()
		ln.Close()
	}
	c := &Cluster{tune: tune}
	for id := paxos.NodeID(1); id <= paxos.NodeID(n); id++ {
		c.start(t, id, peers[id], peers, filepath.Join(dir, fmt.Sprint(id)))
	}
	return c
}

// start starts node id and adds it to c; the test's end stops it.
func (c *Cluster) start(t testing.TB, id paxos.NodeID, addr string, peers map[paxos.NodeID]string, dataDir string) {
	t.Helper()
	cfg := service.Config{
		ID: id, Listen: addr, Peers: peers, NoSync: true, DataDir: dataDir,
		Logger: zerolog.New(os.Stderr).Level(zerolog.ErrorLevel),
	}
	if c.tune != nil {
		c.tune(&cfg)
	}
	node, err := service.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		select {
		case <-node.Done():
		default:
			node.Stop()
		}
	})
	c.Endpoints = append(c.Endpoints, addr)
	c.Nodes = append(c.Nodes, node)
}

// Join adds node id to c as `paxosd member add` and `serve --join` do,
// through cl: the membership change (a learner, then promoted unless
// learner), a snapshot saved from the cluster, the node's store written
// from it, the node started. It returns the node's address.
func (c *Cluster) Join(t testing.TB, cl Client, id paxos.NodeID, learner bool) string {
	t.Helper()
	ln, err := wire.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if err := cl.AddMember(id, addr); err != nil {
		t.Fatalf("adding node %d: %v", id, err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "join.snapshot")
	if err := cl.SaveSnapshot(file); err != nil {
		t.Fatalf("saving a snapshot for node %d: %v", id, err)
	}
	if _, err := service.JoinFromBackup(service.JoinConfig{File: file, DataDir: filepath.Join(dir, "data"), ID: id}); err != nil {
		t.Fatal(err)
	}
	// Its --peers is itself alone: the snapshot's membership governs.
	c.start(t, id, addr, map[paxos.NodeID]string{id: addr}, filepath.Join(dir, "data"))
	if !learner {
		if err := cl.PromoteMember(id); err != nil {
			t.Fatalf("promoting node %d: %v", id, err)
		}
	}
	return addr
}

// Client is what Join needs of a client (the client package's, adapted
// by its tests: servicetest cannot import it).
type Client interface {
	AddMember(id paxos.NodeID, addr string) error
	PromoteMember(id paxos.NodeID) error
	SaveSnapshot(file string) error
}
