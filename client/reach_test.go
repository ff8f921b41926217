package client_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/paxosd/paxosd/client"
)

// TestTimeoutSaysWhyNoLeaderAnswered: with two of three nodes stopped, a
// put times out with ErrTimeout (and the context's error) and a message
// that counts the reachable endpoints and says what each did, instead of
// "context deadline exceeded (last error: context deadline exceeded)".
func TestTimeoutSaysWhyNoLeaderAnswered(t *testing.T) {
	eps, nodes := startClusterNodes(t)
	c := newClient(t, eps)
	if _, err := c.Put(ctxT(t), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	nodes[1].Stop()
	nodes[2].Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	_, err := c.Put(ctx, "k", []byte("w"))
	if !errors.Is(err, client.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("put with 1 of 3 nodes up: %v, want ErrTimeout wrapping the deadline", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"with no answer from a leader",
		"only 1 of 3 endpoints reachable: the cluster may have lost its quorum",
		eps[1] + " unreachable (connection refused)",
		eps[2] + " unreachable (connection refused)",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "deadline exceeded") {
		t.Errorf("error %q repeats the context's text", msg)
	}
}
