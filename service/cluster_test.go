package service

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/rs/zerolog"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/internal/linearize"
	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/proposer"
	"github.com/paxosd/paxosd/wire"
)

// testCluster is three in-process nodes on loopback.
type testCluster struct {
	t     *testing.T
	dir   string
	peers map[paxos.NodeID]string
	nodes map[paxos.NodeID]*Node
	// tune, if set, adjusts each node's Config before it starts.
	tune func(*Config)
}

func startTestCluster(t *testing.T) *testCluster { return startTunedCluster(t, nil) }

func startTunedCluster(t *testing.T, tune func(*Config)) *testCluster {
	t.Helper()
	c := newTestCluster(t, tune)
	for id := range c.peers {
		c.start(id)
	}
	return c
}

// newTestCluster reserves three loopback addresses and starts no node:
// the caller starts those it wants (start); every started node is stopped
// when the test ends.
func newTestCluster(t *testing.T, tune func(*Config)) *testCluster {
	t.Helper()
	c := &testCluster{t: t, dir: t.TempDir(), peers: map[paxos.NodeID]string{}, nodes: map[paxos.NodeID]*Node{}, tune: tune}
	for id := paxos.NodeID(1); id <= 3; id++ {
		ln, err := wire.Listen("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c.peers[id] = ln.Addr().String()
		ln.Close()
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			n.Stop()
		}
	})
	return c
}

func (c *testCluster) start(id paxos.NodeID) {
	c.t.Helper()
	cfg := Config{
		ID: id, Listen: c.peers[id], Peers: c.peers, NoSync: true,
		DataDir: filepath.Join(c.dir, fmt.Sprint(id)),
		Logger:  zerolog.New(os.Stderr).Level(zerolog.WarnLevel),
	}
	if c.tune != nil {
		c.tune(&cfg)
	}
	n, err := Start(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.nodes[id] = n
}

// client returns a client of the cluster and a context of the given
// length for its calls, both closed when the test ends.
func (c *testCluster) client(timeout time.Duration) (context.Context, *client.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	c.t.Cleanup(cancel)
	cl, err := client.New(ctx, c.endpoints()...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cl.Close() })
	return ctx, cl
}

func (c *testCluster) endpoints() []string {
	var out []string
	for id := paxos.NodeID(1); id <= 3; id++ {
		out = append(out, c.peers[id])
	}
	return out
}

func (c *testCluster) leader() paxos.NodeID {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, m := range client.Unconnected(client.Config{Endpoints: c.endpoints()}).Status(ctx) {
		if m.Err == nil && m.Status.Role == proposer.Leader.String() {
			return m.Status.ID
		}
	}
	return 0
}

func (c *testCluster) waitLeader() paxos.NodeID {
	c.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if l := c.leader(); l != 0 {
			return l
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatal("no leader elected")
	return 0
}

// TestLinearizableKV runs concurrent clients doing puts, linearizable gets
// and compare-and-sets on a few keys while the leader is stopped and
// restarted, and checks the history with porcupine.
func TestLinearizableKV(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	c := startTestCluster(t)
	c.waitLeader()
	var (
		mu      sync.Mutex
		history []porcupine.Operation
		wg      sync.WaitGroup
	)
	start := time.Now()
	stop := make(chan struct{})
	const clients = 6
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(id int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(id)))
			ctx := context.Background()
			// Each client starts at a different node: reads answered from
			// one node's state would look linearizable to clients that all
			// use that node, so the history must span nodes.
			eps := c.endpoints()
			eps = append(eps[id%len(eps):], eps[:id%len(eps)]...)
			cl, err := client.NewWithConfig(ctx, client.Config{Endpoints: eps, AttemptTimeout: time.Second})
			if err != nil {
				t.Error(err)
				return
			}
			defer cl.Close()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				in := linearize.KVInput{Key: fmt.Sprintf("k%d", rng.Intn(3)), Value: fmt.Sprintf("v%d-%d", id, n)}
				var out linearize.KVOutput
				callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
				call := time.Since(start).Nanoseconds()
				var err error
				switch r := rng.Intn(10); {
				case r < 4:
					in.Op = "put"
					_, err = cl.Put(callCtx, in.Key, []byte(in.Value))
				case r < 8:
					in.Op, in.Value = "get", ""
					var kv client.KV
					kv, err = cl.Get(callCtx, in.Key)
					if errors.Is(err, client.ErrNotFound) {
						err = nil
					} else {
						out.Value, out.Found = string(kv.Value), err == nil
					}
				default:
					in.Op = "cas"
					in.Expected = fmt.Sprintf("v%d-%d", rng.Intn(clients), n-1-rng.Intn(2))
					var prev client.KV
					out.OK, prev, err = cl.CompareAndSet(callCtx, in.Key, []byte(in.Value), client.IfValue([]byte(in.Expected)))
					if prev.ModRevision != 0 {
						out.Value = string(prev.Value)
					}
				}
				cancel()
				ret := time.Since(start).Nanoseconds()
				if err != nil {
					if in.Op == "get" {
						continue // a failed read changed nothing
					}
					out.Unknown, ret = true, math.MaxInt64
				}
				mu.Lock()
				history = append(history, porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: ret})
				mu.Unlock()
			}
		}(i)
	}
	c.bounceLeader()
	close(stop)
	wg.Wait()

	if len(history) < 100 {
		t.Fatalf("only %d operations completed", len(history))
	}
	res, info := porcupine.CheckOperationsVerbose(linearize.KVModel, history, 30*time.Second)
	if res != porcupine.Ok {
		path := filepath.Join(os.TempDir(), "paxosd-linearizability.html")
		if f, err := os.Create(path); err == nil {
			porcupine.Visualize(linearize.KVModel, info, f)
			f.Close()
		}
		t.Fatalf("history of %d operations is not linearizable (%v); visualization in %s", len(history), res, path)
	}
	t.Logf("%d operations, linearizable", len(history))
}

// bounceLeader lets the workload run 0.7 s, stops the leader for 0.9 s,
// restarts it, and lets the workload run 0.7 s more: a leader change in
// the middle of concurrent clients. It returns the node it stopped.
func (c *testCluster) bounceLeader() paxos.NodeID {
	time.Sleep(700 * time.Millisecond)
	l := c.waitLeader()
	c.nodes[l].Stop()
	delete(c.nodes, l)
	time.Sleep(900 * time.Millisecond)
	c.start(l)
	time.Sleep(700 * time.Millisecond)
	return l
}
