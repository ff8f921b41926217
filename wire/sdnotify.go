package wire

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// The service manager's readiness protocol (systemd's sd_notify(3)), kept
// here because wire is the only package that opens sockets. A unit of
// Type=notify starts paxosd with $NOTIFY_SOCKET naming a datagram socket;
// paxosd sends "READY=1" there once it serves, so that `systemctl start`
// returns, and units ordered after paxosd start, only then, and
// "STOPPING=1" when it begins to shut down. Without $NOTIFY_SOCKET (run by
// hand, in tests, under another supervisor) Notify does nothing.
//
// Only what a daemon of this kind needs: no file-descriptor passing, no
// watchdog, no vsock addresses (systemd uses those only for whole
// virtual machines).

// NotifySocketEnv is the variable the service manager sets.
const NotifySocketEnv = "NOTIFY_SOCKET"

// ErrNotifySocket marks a $NOTIFY_SOCKET paxosd cannot use.
var ErrNotifySocket = errors.New("wire: NOTIFY_SOCKET")

// Notify sends state — newline-separated VAR=VALUE assignments such as
// "READY=1\nSTATUS=serving" — to the socket $NOTIFY_SOCKET names. It
// returns false and no error when the variable is unset: nobody listens.
func Notify(state string) (sent bool, err error) {
	addr := os.Getenv(NotifySocketEnv)
	if addr == "" {
		return false, nil
	}
	if err := NotifyTo(addr, state); err != nil {
		return false, err
	}
	return true, nil
}

// NotifyTo sends state to the datagram socket at addr: an absolute path,
// or "@name" for a socket in Linux's abstract namespace (which Go's net
// package maps to the leading NUL byte the kernel expects).
func NotifyTo(addr, state string) error {
	if !strings.HasPrefix(addr, "/") && !strings.HasPrefix(addr, "@") {
		return fmt.Errorf("%w=%q: want an absolute path or an @abstract name", ErrNotifySocket, addr)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("%w=%q: %v", ErrNotifySocket, addr, err)
	}
	defer conn.Close()
	// One datagram, all or nothing. The manager reads it at once; a
	// deadline only keeps a wedged manager from holding shutdown up.
	conn.SetWriteDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("%w=%q: %v", ErrNotifySocket, addr, err)
	}
	return nil
}
