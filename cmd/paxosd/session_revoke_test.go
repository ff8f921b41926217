package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/service/servicetest"
)

// TestSessionRevoke: 'paxosd session revoke ID' ends another client's
// session through the log: it prints one line naming what was released,
// the lock is free at once (no lock-delay) for another session, the owner
// learns at its next keep-alive, and the session is gone from 'session
// ls'. Revoking it again, or an id that is not a number, fails clearly.
func TestSessionRevoke(t *testing.T) {
	c := servicetest.Start(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := client.New(ctx, c.Endpoints...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	owner, err := cl.NewSession(ctx, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := owner.Lock(ctx, "backup", client.WithLockDelay(time.Minute)); err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(append(args, "--endpoints", strings.Join(c.Endpoints, ","), "--timeout", "5s"), &out, &errb)
		return code, out.String(), errb.String()
	}
	id := fmt.Sprint(owner.ID())

	code, out, stderr := cli("session", "revoke", id)
	want := "revoked session " + id + " (TTL 3s): released backup; waits ended -; elections left -\n"
	if code != 0 || out != want {
		t.Fatalf("session revoke %s: exit %d, stdout %q, stderr %q\nwant %q", id, code, out, stderr, want)
	}
	// Free at once for another session, although the owner asked for a
	// minute of lock-delay: a revoked session was closed, not lost.
	other, err := cl.NewSession(ctx, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(context.Background())
	if _, err := other.TryLock(ctx, "backup"); err != nil {
		t.Fatalf("the revoked session's lock is not free: %v", err)
	}
	select {
	case <-owner.Done():
		if !errors.Is(owner.Err(), client.ErrSessionExpired) {
			t.Errorf("the owner's session ended with %v, want ErrSessionExpired", owner.Err())
		}
	case <-time.After(5 * time.Second): // a keep-alive every TTL/3 = 1 s
		t.Error("the owner did not learn that its session was revoked")
	}
	if _, out, _ := cli("session", "ls"); strings.Contains(out, "\n"+id+" ") {
		t.Errorf("session ls still lists session %s:\n%s", id, out)
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"session", "revoke", id}, 1, "paxosd: error: no session " + id + ": it expired, was closed, or never existed (see 'paxosd session ls')"},
		{[]string{"session", "revoke", "backup"}, 2, `paxosd: session revoke: "backup" is not a session ID, a number from 1 (see 'paxosd session ls')`},
		{[]string{"session", "revoke", "0"}, 2, `paxosd: session revoke: "0" is not a session ID, a number from 1 (see 'paxosd session ls')`},
		{[]string{"session", "revoke"}, 2, "paxosd: session revoke takes one session ID (see 'paxosd session ls')"},
		{[]string{"session", "drop", id}, 2, "paxosd: session needs a subcommand: ls or revoke (see 'paxosd --help')"},
	} {
		if code, _, stderr := cli(tc.args...); code != tc.code || stderr != tc.want+"\n" {
			t.Errorf("paxosd %s: exit %d, stderr %q\nwant exit %d, %q", strings.Join(tc.args, " "), code, stderr, tc.code, tc.want)
		}
	}
}
