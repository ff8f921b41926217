//go:build linux

package chaos

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// newTestNetwork builds a network of n nodes for a test, or skips the test
// when the machine cannot (not root, no namespaces, no iptables).
func newTestNetwork(t *testing.T, n int) *Network {
	t.Helper()
	if err := Supported(); err != nil {
		if errors.Is(err, ErrUnsupported) {
			t.Skipf("skipping the fault-injection suite: %v", err)
		}
		t.Fatal(err)
	}
	net, err := NewNetwork(n, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(net.Close)
	return net
}

// listenIn listens on addr inside namespace ns and echoes what it reads.
func listenIn(t *testing.T, ns, addr string) {
	t.Helper()
	fd, err := socketIn(ns, unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ap, err := net.ResolveTCPAddr("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	sa := &unix.SockaddrInet4{Port: ap.Port}
	copy(sa.Addr[:], ap.IP.To4())
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := unix.Bind(fd, sa); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 16); err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "listener")
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
}

// roundTripFrom connects from namespace ns to addr, sends a byte and
// waits for the echo; it returns how long the echo took.
func roundTripFrom(ns, addr string, timeout time.Duration) (time.Duration, error) {
	fd, err := socketIn(ns, unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return 0, err
	}
	f := os.NewFile(uintptr(fd), "conn")
	ap, err := net.ResolveTCPAddr("tcp4", addr)
	if err != nil {
		f.Close()
		return 0, err
	}
	sa := &unix.SockaddrInet4{Port: ap.Port}
	copy(sa.Addr[:], ap.IP.To4())
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return 0, err
	}
	deadline := time.Now().Add(timeout)
	if err := unix.Connect(fd, sa); err != nil && err != unix.EINPROGRESS {
		f.Close()
		return 0, err
	}
	// Wait for the connection by polling SO_ERROR: simple, and a test
	// helper need not be clever.
	for {
		var soerr int
		_ = rc.Control(func(fd uintptr) { soerr, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR) })
		if soerr != 0 {
			f.Close()
			return 0, unix.Errno(soerr)
		}
		var pfd = []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		if n, _ := unix.Poll(pfd, 10); n > 0 && pfd[0].Revents&unix.POLLOUT != 0 {
			break
		}
		if time.Now().After(deadline) {
			f.Close()
			return 0, fmt.Errorf("connect to %s from %s: timed out", addr, ns)
		}
	}
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(deadline)
	start := time.Now()
	if _, err := c.Write([]byte{1}); err != nil {
		return 0, err
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// TestNetworkFaults checks the fault primitives themselves on a two-node
// network: a drop cuts a link, a one-way cut only one direction, delay
// delays, loss loses, and healing restores everything.
func TestNetworkFaults(t *testing.T) {
	n := newTestNetwork(t, 2)
	a1, a2 := n.Addr(0), n.Addr(1)
	listenIn(t, n.Nodes[0], a1)
	listenIn(t, n.Nodes[1], a2)

	ok := func(what, from, to string) time.Duration {
		t.Helper()
		d, err := roundTripFrom(from, to, 2*time.Second)
		if err != nil {
			t.Fatalf("%s: %s -> %s: %v", what, from, to, err)
		}
		return d
	}
	cut := func(what, from, to string) {
		t.Helper()
		if _, err := roundTripFrom(from, to, 500*time.Millisecond); err == nil {
			t.Fatalf("%s: %s -> %s got through", what, from, to)
		}
	}

	ok("baseline", n.Nodes[0], a2)
	ok("baseline", n.Nodes[1], a1)
	if c, err := net.DialTimeout("tcp", a1, time.Second); err != nil {
		t.Fatalf("host -> node 1: %v", err)
	} else {
		c.Close()
	}

	if err := n.SetRules(0, Rules{In: []string{DropFrom(n.IPs[1])}, Out: []string{DropTo(n.IPs[1])}}); err != nil {
		t.Fatal(err)
	}
	cut("partition", n.Nodes[0], a2)
	cut("partition", n.Nodes[1], a1)
	if _, err := roundTripFrom(n.Nodes[0], n.HostIP+":1", time.Second); !errors.Is(err, unix.ECONNREFUSED) {
		t.Fatalf("partition: node 1 -> host: %v, want connection refused (the host is not cut off)", err)
	}
	if err := n.Heal(); err != nil {
		t.Fatal(err)
	}
	ok("healed", n.Nodes[0], a2)

	if err := n.SetRules(0, Rules{Out: []string{DropConnsTo(n.IPs[1])}}); err != nil {
		t.Fatal(err)
	}
	cut("one-way", n.Nodes[0], a2)
	ok("one-way, other direction", n.Nodes[1], a1)
	if err := n.Heal(); err != nil {
		t.Fatal(err)
	}

	n.SetDelay(0, 150*time.Millisecond, 0)
	if err := n.SetRules(0, Rules{Out: []string{DelayOut()}}); err != nil {
		t.Fatal(err)
	}
	if d := ok("delay", n.Nodes[0], a2); d < 140*time.Millisecond {
		t.Fatalf("delay: round trip %s, want at least 150ms", d)
	}
	if err := n.Heal(); err != nil {
		t.Fatal(err)
	}
	if d := ok("delay healed", n.Nodes[0], a2); d > 100*time.Millisecond {
		t.Fatalf("delay healed: round trip %s", d)
	}

	if err := n.SetRules(1, Rules{In: []string{LossIn(1)}}); err != nil {
		t.Fatal(err)
	}
	cut("total loss", n.Nodes[0], a2)
	if err := n.Heal(); err != nil {
		t.Fatal(err)
	}
	ok("loss healed", n.Nodes[0], a2)
}
