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
	c := &testCluster{t: t, dir: t.TempDir(), peers: map[paxos.NodeID]string{}, nodes: map[paxos.NodeID]*Node{}, tune: tune}
	for id := paxos.NodeID(1); id <= 3; id++ {
		ln, err := wire.Listen("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c.peers[id] = ln.Addr().String()
		ln.Close()
	}
	for id := range c.peers {
		c.start(id)
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

// linInput and linOutput are one operation of the history checked for
// linearizability.
type linInput struct {
	op       string // put, get, cas
	key      string
	value    string
	expected string // cas: compare with this value
}

type linOutput struct {
	value   string
	found   bool
	ok      bool // cas succeeded
	unknown bool // the call failed: a write may or may not have happened
}

var linearKV = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		for _, op := range h {
			k := op.Input.(linInput).key
			by[k] = append(by[k], op)
		}
		var out [][]porcupine.Operation
		for _, ops := range by {
			out = append(out, ops)
		}
		return out
	},
	Init: func() interface{} { return "" },
	Step: func(state, input, output interface{}) (bool, interface{}) {
		s, in, out := state.(string), input.(linInput), output.(linOutput)
		switch in.op {
		case "put":
			return true, in.value
		case "get":
			return out.value == s && out.found == (s != ""), s
		default: // cas
			if out.unknown {
				if s == in.expected {
					return true, in.value
				}
				return true, s
			}
			if s == in.expected {
				return out.ok, in.value
			}
			return !out.ok, s
		}
	},
	DescribeOperation: func(input, output interface{}) string {
		in, out := input.(linInput), output.(linOutput)
		return fmt.Sprintf("%s(%s,%q,%q) -> %+v", in.op, in.key, in.value, in.expected, out)
	},
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
				in := linInput{key: fmt.Sprintf("k%d", rng.Intn(3)), value: fmt.Sprintf("v%d-%d", id, n)}
				var out linOutput
				callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
				call := time.Since(start).Nanoseconds()
				var err error
				switch r := rng.Intn(10); {
				case r < 4:
					in.op = "put"
					_, err = cl.Put(callCtx, in.key, []byte(in.value))
				case r < 8:
					in.op = "get"
					var kv client.KV
					kv, err = cl.Get(callCtx, in.key)
					if errors.Is(err, client.ErrNotFound) {
						err = nil
					} else {
						out.value, out.found = string(kv.Value), err == nil
					}
				default:
					in.op = "cas"
					in.expected = fmt.Sprintf("v%d-%d", rng.Intn(clients), n-1-rng.Intn(2))
					out.ok, _, err = cl.CompareAndSet(callCtx, in.key, []byte(in.value), client.IfValue([]byte(in.expected)))
				}
				cancel()
				ret := time.Since(start).Nanoseconds()
				if err != nil {
					if in.op == "get" {
						continue // a failed read changed nothing
					}
					out.unknown, ret = true, math.MaxInt64
				}
				mu.Lock()
				history = append(history, porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: ret})
				mu.Unlock()
			}
		}(i)
	}
	time.Sleep(700 * time.Millisecond)
	l := c.waitLeader()
	c.nodes[l].Stop()
	delete(c.nodes, l)
	time.Sleep(900 * time.Millisecond)
	c.start(l)
	time.Sleep(700 * time.Millisecond)
	close(stop)
	wg.Wait()

	if len(history) < 100 {
		t.Fatalf("only %d operations completed", len(history))
	}
	res, info := porcupine.CheckOperationsVerbose(linearKV, history, 30*time.Second)
	if res != porcupine.Ok {
		path := filepath.Join(os.TempDir(), "paxosd-linearizability.html")
		if f, err := os.Create(path); err == nil {
			porcupine.Visualize(linearKV, info, f)
			f.Close()
		}
		t.Fatalf("history of %d operations is not linearizable (%v); visualization in %s", len(history), res, path)
	}
	t.Logf("%d operations, linearizable", len(history))
}
