package wire

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// listenNotify stands in for the service manager: a datagram socket that
// receives what paxosd notifies.
func listenNotify(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func readNotify(t *testing.T, ln *net.UnixConn) string {
	t.Helper()
	ln.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := ln.Read(buf)
	if err != nil {
		t.Fatalf("no notification arrived: %v", err)
	}
	return string(buf[:n])
}

// TestNotifyPath: the state arrives whole, as one datagram, on the socket
// $NOTIFY_SOCKET names.
func TestNotifyPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.sock")
	ln := listenNotify(t, path)
	t.Setenv(NotifySocketEnv, path)
	for _, state := range []string{"READY=1\nSTATUS=serving as node 1", "STOPPING=1"} {
		sent, err := Notify(state)
		if !sent || err != nil {
			t.Fatalf("Notify(%q) = %v, %v; want sent", state, sent, err)
		}
		if got := readNotify(t, ln); got != state {
			t.Errorf("received %q, want %q", got, state)
		}
	}
}

// TestNotifyAbstract: "@name" reaches a socket in the abstract namespace,
// which is what systemd itself hands out in some setups.
func TestNotifyAbstract(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("abstract sockets are Linux only")
	}
	name := fmt.Sprintf("@paxosd-notify-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	ln := listenNotify(t, name)
	t.Setenv(NotifySocketEnv, name)
	if sent, err := Notify("READY=1"); !sent || err != nil {
		t.Fatalf("Notify = %v, %v; want sent", sent, err)
	}
	if got := readNotify(t, ln); got != "READY=1" {
		t.Errorf("received %q, want READY=1", got)
	}
}

// TestNotifyUnset: without $NOTIFY_SOCKET nothing is sent and nothing fails.
func TestNotifyUnset(t *testing.T) {
	t.Setenv(NotifySocketEnv, "")
	if sent, err := Notify("READY=1"); sent || err != nil {
		t.Errorf("Notify without a socket = %v, %v; want false, nil", sent, err)
	}
}

// TestNotifyBadSocket: a socket that cannot be used is an error naming it,
// not a silent success.
func TestNotifyBadSocket(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nobody-listens.sock")
	for _, addr := range []string{"relative/notify.sock", missing, "vsock:2:1234"} {
		err := NotifyTo(addr, "READY=1")
		if !errors.Is(err, ErrNotifySocket) {
			t.Errorf("NotifyTo(%q) = %v, want ErrNotifySocket", addr, err)
		}
	}
}
