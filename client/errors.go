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
	// (see SetQuota); nothing was written. Deletes still work. Also
	// NewSession's error past the node's limit of sessions per client
	// (protocol 13, "too many sessions"): close sessions first.
	ErrQuotaExceeded = errors.New("quota exceeded")
	// ErrAuthRequired: auth is enabled and the client gave no
	// credentials (Config.User, or a client certificate).
	ErrAuthRequired = errors.New("authentication required")
	// ErrAuthFailed: the node refused Config.User's password (or the
	// source made too many failed attempts).
	ErrAuthFailed = errors.New("authentication failed")
	// ErrPermissionDenied: the user may not do this; nothing changed.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrBusy: an overloaded node shed the request (protocol 13). The
	// client waits the node's retry-after and sends it again by itself;
	// a call returns ErrBusy only when its context ends first (the error
	// then also matches the context's error).
	ErrBusy = errors.New("busy")
	// ErrSlowWatcher: a node ended a watch its client read too slowly.
	// Watch and the election observers resume such a stream by
	// themselves; the sentinel is for code that reads streams from a
	// wire.Mux.
	ErrSlowWatcher = errors.New("slow watcher")
	// ErrMemberConflict: a membership change refused, nothing changed
	// (another change in progress, the membership changed meanwhile, or
	// the change does not fit it); the message says which.
	ErrMemberConflict = errors.New("membership conflict")
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

// codeErrors maps the server's error codes to the sentinel errors above:
// the one table from wire codes to client errors. A code without a
// sentinel (ErrCASFailed, an unknown one) matches none.
var codeErrors = [...]error{
	wire.ErrNotFound:          ErrNotFound,
	wire.ErrInvalid:           ErrInvalid,
	wire.ErrTooLarge:          ErrTooLarge,
	wire.ErrTimeout:           ErrTimeout,
	wire.ErrUnavailable:       ErrUnavailable,
	wire.ErrNotLeader:         ErrNotLeader,
	wire.ErrInternal:          ErrInternal,
	wire.ErrSessionExpired:    ErrSessionExpired,
	wire.ErrLockHeld:          ErrLockHeld,
	wire.ErrNotHeld:           ErrNotHeld,
	wire.ErrFenced:            ErrFenced,
	wire.ErrCanceled:          ErrCanceled,
	wire.ErrNotElectionLeader: ErrNotElectionLeader,
	wire.ErrCompacted:         ErrCompacted,
	wire.ErrQuotaExceeded:     ErrQuotaExceeded,
	wire.ErrAuthRequired:      ErrAuthRequired,
	wire.ErrAuthFailed:        ErrAuthFailed,
	wire.ErrPermissionDenied:  ErrPermissionDenied,
	wire.ErrBusy:              ErrBusy,
	wire.ErrSlowWatcher:       ErrSlowWatcher,
	wire.ErrMemberConflict:    ErrMemberConflict,
}

// Is maps the server's code to the sentinel errors above (codeErrors).
func (e *Error) Is(target error) bool {
	return int(e.Code) < len(codeErrors) && codeErrors[e.Code] != nil && codeErrors[e.Code] == target
}

func responseError(r *wire.Response) error {
	if r.Err == wire.ErrNone {
		return nil
	}
	return &Error{Code: r.Err, Msg: r.ErrMsg}
}

// busyError is the error of a call whose context ended while the node it
// asked was busy: ErrBusy with the node's words, and the context's error.
type busyError struct {
	resp   *Error
	ctxErr error
}

func (e *busyError) Error() string {
	return fmt.Sprintf("%s (gave up: %v)", e.resp.Msg, e.ctxErr)
}

func (e *busyError) Unwrap() []error { return []error{e.resp, e.ctxErr} }

func unavailable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnavailable, fmt.Sprintf(format, args...))
}
