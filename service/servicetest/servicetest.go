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
	c := &Cluster{}
	for id := paxos.NodeID(1); id <= paxos.NodeID(n); id++ {
		cfg := service.Config{
			ID: id, Listen: peers[id], Peers: peers, NoSync: true,
			DataDir: filepath.Join(dir, fmt.Sprint(id)),
			Logger:  zerolog.New(os.Stderr).Level(zerolog.ErrorLevel),
		}
		if tune != nil {
			tune(&cfg)
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
		c.Endpoints = append(c.Endpoints, peers[id])
		c.Nodes = append(c.Nodes, node)
	}
	return c
}
