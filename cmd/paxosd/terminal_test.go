package main

import (
	"os"
	"testing"
)

// TestDevNullIsNotATerminal: /dev/null, a daemon's stdin under systemd or
// 'docker run' without -t, is a character device but not a terminal; taken
// for one, 'paxosd lock -- CMD' left CMD in its own process group and did
// not forward SIGINT to it.
func TestDevNullIsNotATerminal(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Fatalf("%s taken for a terminal", os.DevNull)
	}
}
