package client

import (
	"errors"
	"fmt"

	"github.com/paxosd/paxosd/wire"
)

// Errors a call can return; test with errors.Is. The error's text adds the
// server's explanation.
var (
	ErrNotFound    = errors.New("key not found")
	ErrInvalid     = errors.New("invalid argument")
	ErrTooLarge    = errors.New("too large")
	ErrTimeout     = errors.New("timed out")
	ErrUnavailable = errors.New("cluster unavailable")
	ErrNotLeader   = errors.New("not leader")
	ErrClosed      = errors.New("client closed")
	ErrInternal    = errors.New("internal server error")
	// ErrSessionExpired: the cluster no longer has the session (and
	// Session.Err once a session is lost).
	ErrSessionExpired    = errors.New("session expired")
	ErrLockHeld          = errors.New("lock held by another session")
	ErrNotHeld           = errors.New("lock not held by this session")
	ErrFenced            = errors.New("fencing token no longer holds the lock")
	ErrCanceled          = errors.New("canceled")
	ErrNotElectionLeader = errors.New("not the election's leader")
	ErrCompacted         = errors.New("history compacted")
	// ErrQuotaExceeded: the write would exceed the cluster's space quota
	// (see SetQuota); nothing was written. Deletes still work.
	ErrQuotaExceeded = errors.New("quota exceeded")
)

// Error is an error answered by the server.
type Error struct {
	Code wire.ErrCode
	Msg  string
}

func (e *Error) Error() string {
	if e.Msg == "" {
		return e.Code.String()
	}
	return e.Msg
}

// Is maps the server's code to the sentinel errors above.
func (e *Error) Is(target error) bool {
	switch e.Code {
	case wire.ErrNotFound:
		return target == ErrNotFound
	case wire.ErrInvalid:
		return target == ErrInvalid
	case wire.ErrTooLarge:
		return target == ErrTooLarge
	case wire.ErrTimeout:
		return target == ErrTimeout
	case wire.ErrUnavailable:
		return target == ErrUnavailable
	case wire.ErrNotLeader:
		return target == ErrNotLeader
	case wire.ErrInternal:
		return target == ErrInternal
	case wire.ErrSessionExpired:
		return target == ErrSessionExpired
	case wire.ErrLockHeld:
		return target == ErrLockHeld
	case wire.ErrNotHeld:
		return target == ErrNotHeld
	case wire.ErrFenced:
		return target == ErrFenced
	case wire.ErrCanceled:
		return target == ErrCanceled
	case wire.ErrNotElectionLeader:
		return target == ErrNotElectionLeader
	case wire.ErrCompacted:
		return target == ErrCompacted
	case wire.ErrQuotaExceeded:
		return target == ErrQuotaExceeded
	}
	return false
}

func responseError(r *wire.Response) error {
	if r.Err == wire.ErrNone {
		return nil
	}
	return &Error{Code: r.Err, Msg: r.ErrMsg}
}

func unavailable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnavailable, fmt.Sprintf(format, args...))
}
