package service

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/paxos"
)

// TestReadyzWithSwappedPeers: a node whose --peers has two members'
// addresses swapped hears the leader's heartbeats (on the leader's
// connection) and so knows a leader, but none of its own messages arrive:
// /readyz must say so, not "ok".
func TestReadyzWithSwappedPeers(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	c := startTunedCluster(t, func(cfg *Config) {
		if cfg.ID != 3 {
			return
		}
		swapped := map[paxos.NodeID]string{}
		for id, addr := range cfg.Peers {
			swapped[id] = addr
		}
		swapped[1], swapped[2] = cfg.Peers[2], cfg.Peers[1]
		cfg.Peers = swapped
	})
	c.waitLeader()
	readyz := func(id paxos.NodeID) (int, string) {
		w := httptest.NewRecorder()
		c.nodes[id].HTTPHandler().ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil))
		return w.Code, w.Body.String()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := readyz(3)
		if code == 503 && strings.Contains(body, "cannot reach the leader") && strings.Contains(body, "expected node") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node 3 with swapped --peers: /readyz %d %q", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, id := range []paxos.NodeID{1, 2} {
		if code, body := readyz(id); code != 200 {
			t.Errorf("node %d: /readyz %d %q", id, code, body)
		}
	}
}

// TestLeaderLosingQuorumSaysSo: a leader whose followers all stop logs a
// warning that it stepped down, rather than going quiet.
func TestLeaderLosingQuorumSaysSo(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	logs := map[paxos.NodeID]*logBuffer{1: {}, 2: {}, 3: {}}
	c := startTunedCluster(t, func(cfg *Config) {
		cfg.Logger = zerolog.New(logs[cfg.ID]).Level(zerolog.InfoLevel)
	})
	leader := c.waitLeader()
	for id, n := range c.nodes {
		if id != leader {
			n.Stop()
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs[leader].String(), `"level":"warn","node":`) || !strings.Contains(logs[leader].String(), "stepped down as leader: a quorum stopped acknowledging") {
		if time.Now().After(deadline) {
			t.Fatalf("leader %d's log after losing both followers:\n%s", leader, logs[leader].String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMetricsExported: a successful request is counted with result="ok"
// (it was the wire's "None") and timed by op; the peers' counters, the Go
// runtime's and process's metrics and the release are exported.
func TestMetricsExported(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	c := startTestCluster(t)
	leader := c.waitLeader()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := client.NewWithConfig(ctx, client.Config{Endpoints: []string{c.peers[leader]}})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	c.nodes[leader].HTTPHandler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	body := w.Body.String()
	if !strings.Contains(body, `paxosd_client_requests_total{op="Put",result="ok"} 1`) {
		t.Errorf("metrics after one put lack result=\"ok\":\n%s", grepLines(body, "paxosd_client_requests_total"))
	}
	// The peers' counters, the runtime's and the process's are there too.
	for _, want := range []string{`paxosd_peer_messages_sent_total{peer="`, `paxosd_peer_connected{peer="`, `paxosd_peer_connects_total{peer="`,
		`paxosd_request_duration_seconds_count{op="Put"} 1`, "paxosd_has_leader 1", "go_goroutines ", "process_resident_memory_bytes ",
		"go_build_info{", "paxosd_build_info{goversion="} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
