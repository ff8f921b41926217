package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLaggingVoterHearsNewMember: a voter that was down while the
// membership changed around it hears the member added meanwhile, which its
// own membership does not name, and is caught up by it. Node 3 stops; node
// 4 is added and promoted, node 1 removed and stopped (voters {2,3,4});
// node 2 stops. Node 3 restarts knowing only {1,2,3}, both others gone:
// the quorum of {2,3,4} needs it and node 4, and only node 4 can tell it
// so. Node 4 dials node 3 (its membership names node 3), but node 3 could
// not answer (a peer sends only on connections it dials, and it had no
// address for node 4) until node 4's hello said where it is (protocol 19):
// before, no write went through again. The node simulation missed it while
// it delivered a node's messages to nodes it knew no address for.
func TestLaggingVoterHearsNewMember(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Run("plaintext", func(t *testing.T) { testLaggingVoterHearsNewMember(t, false) })
	t.Run("tls", func(t *testing.T) {
		// Over TLS a node accepts a peer connection only from a member its
		// membership names, and refuses node 4's before its hello's
		// address is learned (docs/DESIGN.md, "Why it stays live").
		t.Skip("known gap: over TLS a lagging voter refuses the connections of members added since (docs/DESIGN.md)")
		testLaggingVoterHearsNewMember(t, true)
	})
}

func testLaggingVoterHearsNewMember(t *testing.T, withTLS bool) {
	c := &cluster{t: t, bin: buildBinary(t), dir: t.TempDir(), addrs: freePorts(t, 4)}
	addr1, addr2, addr3, addr4 := c.addrs[0], c.addrs[1], c.addrs[2], c.addrs[3]
	c.addrs = c.addrs[:3]
	var tlsCLI, tls4 []string
	if withTLS {
		pki := newTestPKI(t, "e2e CA", "e2e-user")
		pair4, err := pki.ca.Node(4, "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		cert4, key4, err := pair4.Write(t.TempDir(), "node4")
		if err != nil {
			t.Fatal(err)
		}
		user := pki.users["e2e-user"]
		c.extra = pki.serveFlags
		tlsCLI = []string{"--cacert", pki.caFile, "--cert", user[0], "--key", user[1]}
		tls4 = []string{"--cert-file", cert4, "--key-file", key4, "--trusted-ca-file", pki.caFile, "--client-cert-auth"}
	}
	launch(c)
	cli := func(endpoints []string, args ...string) (string, error) {
		return c.cli(endpoints, append(args, tlsCLI...)...)
	}
	if _, err := cli(c.addrs, "kv", "put", "before", "1"); err != nil {
		t.Fatal(err)
	}

	c.kill(2) // node 3 misses everything below
	waitFor(t, "the cluster level that allows membership changes", 20*time.Second, func() bool {
		out, err := cli([]string{addr1, addr2}, "member", "add", "4="+addr4, "--learner")
		if err != nil && strings.Contains(err.Error(), "membership changes need cluster level") {
			return false
		}
		if err != nil {
			t.Fatalf("member add: %v: %s", err, out)
		}
		return true
	})
	c.startJoiner(4, addr4, filepath.Join(c.dir, "node4"), tls4...)
	if out, err := cli([]string{addr1, addr2}, "member", "promote", "4", "--wait"); err != nil {
		t.Fatalf("member promote 4: %v: %s", err, out)
	}
	if out, err := cli([]string{addr1, addr2, addr4}, "member", "remove", "1"); err != nil {
		t.Fatalf("member remove 1: %v: %s", err, out)
	}
	if _, err := cli([]string{addr2, addr4}, "kv", "put", "during", "2"); err != nil {
		t.Fatal(err)
	}
	c.kill(0)
	c.kill(1)

	// Node 3 restarts with its old data and its old --peers.
	all := c.addrs
	c.addrs = all[:3]
	c.start(2)
	c.addrs = all
	waitFor(t, "a write through nodes 3 and 4, the quorum of {2,3,4} alive", 60*time.Second, func() bool {
		_, err := cli([]string{addr3, addr4}, "kv", "put", "after", "3")
		return err == nil
	})
	waitFor(t, "node 3 to serve every write", 20*time.Second, func() bool {
		for k, want := range map[string]string{"before": "1", "during": "2", "after": "3"} {
			if v, err := cli([]string{addr3}, "kv", "get", k, "--serializable"); err != nil || strings.TrimSpace(v) != want {
				return false
			}
		}
		return true
	})
	if b, _ := os.ReadFile(filepath.Join(c.dir, "node3.log")); !strings.Contains(string(b), "from its hello") {
		t.Errorf("node 3 did not learn node 4's address from its hello:\n%s", b)
	}
}
