"""Exceptions: one class per wire error code (PROTOCOL.md §4, "Error
codes"), all subclasses of PaxosdError, plus the client's own."""

import builtins

from . import wire


class PaxosdError(Exception):
    """An error answer from the cluster, or a failure of the client.

    code is the wire error code (None for the client's own errors), message
    the server's err_msg, response the whole Response (None if there was
    none)."""

    code = None

    def __init__(self, message="", response=None):
        super().__init__(message or self.__class__.__name__)
        self.message = message
        self.response = response


class NotLeaderError(PaxosdError):
    """1: the op needs the leader itself (LeaderTransfer, QuotaSet)."""
    code = wire.ERR_NOT_LEADER


class NotFoundError(PaxosdError):
    """2: the key (election leader, snapshot) does not exist."""
    code = wire.ERR_NOT_FOUND


class CASFailedError(PaxosdError):
    """3: a compare did not hold; kv is the current pair (found false: none)."""
    code = wire.ERR_CAS_FAILED


class InvalidError(PaxosdError):
    """4: a malformed request, or a stale one. Not retried."""
    code = wire.ERR_INVALID


class TooLargeError(PaxosdError):
    """5: a key, value or answer exceeds a limit."""
    code = wire.ERR_TOO_LARGE


class TimeoutError(PaxosdError, builtins.TimeoutError):
    """6: not done in time; it may have been applied. Also raised when the
    client's own deadline passes. Catchable as the builtin TimeoutError."""
    code = wire.ERR_TIMEOUT


class UnavailableError(PaxosdError):
    """7: the node (or every endpoint) cannot serve the request now; it is
    not known to have applied."""
    code = wire.ERR_UNAVAILABLE


class InternalError(PaxosdError):
    """8, and any unknown code: a server bug."""
    code = wire.ERR_INTERNAL


class SessionExpiredError(PaxosdError):
    """9: the session named by the request has ended."""
    code = wire.ERR_SESSION_EXPIRED


class LockHeldError(PaxosdError):
    """10: a try-lock found the lock held; .lock says by whom."""
    code = wire.ERR_LOCK_HELD

    @property
    def lock(self):
        return self.response.lock if self.response is not None else None


class NotHeldError(PaxosdError):
    """11: the session neither holds nor waits for the lock it releases."""
    code = wire.ERR_NOT_HELD


class CanceledError(PaxosdError):
    """12: a Cancel (or the session's own newer wait, release or resign)
    ended this blocking call or stream."""
    code = wire.ERR_CANCELED


class FencedError(PaxosdError):
    """13: a fenced write's token does not hold the lock; nothing written."""
    code = wire.ERR_FENCED


class CompactedError(PaxosdError):
    """14: the revision (change) asked for is older than the history kept;
    .compact_revision is the oldest still available (watches, paged lists)."""
    code = wire.ERR_COMPACTED

    @property
    def compact_revision(self):
        return self.response.compact_revision if self.response is not None else 0


class NotElectionLeaderError(PaxosdError):
    """15: the session does not lead (or campaign in) the election."""
    code = wire.ERR_NOT_ELECTION_LEADER


class QuotaExceededError(PaxosdError):
    """16: the write would exceed the space quota; nothing written."""
    code = wire.ERR_QUOTA_EXCEEDED


class AuthRequiredError(PaxosdError):
    """17: auth is enabled and the client gave no credentials (Client(user=...))."""
    code = wire.ERR_AUTH_REQUIRED


class AuthFailedError(PaxosdError):
    """18: the node refused the user name or password."""
    code = wire.ERR_AUTH_FAILED


class PermissionDeniedError(PaxosdError):
    """19: the user may not do this; nothing changed."""
    code = wire.ERR_PERMISSION_DENIED


class BusyError(PaxosdError):
    """20 (protocol 13): an overloaded node shed the request before
    proposing it; retry_after_ms says when to send it again. The client
    waits and retries by itself (same seq): it raises this only when its
    deadline comes first."""
    code = wire.ERR_BUSY

    @property
    def retry_after_ms(self):
        return self.response.retry_after_ms if self.response is not None else 0


class MemberConflictError(PaxosdError):
    """22 (protocol 16): a membership change refused (another in
    progress, the membership changed meanwhile, or the change does not fit
    it); nothing changed."""
    code = wire.ERR_MEMBER_CONFLICT


class NoEndpointError(UnavailableError):
    """No endpoint could be reached (connect or hello failed on each)."""
    code = None


class ConnectionLostError(UnavailableError):
    """The connection broke with the request in flight: its outcome is
    unknown (the client retries it elsewhere with the same seq)."""
    code = None


class ClusterMismatchError(PaxosdError):
    """The node answered the hello for another cluster."""


class SessionLostError(PaxosdError):
    """The session's keep-alives failed for a whole TTL (or it expired):
    its locks must be taken as no longer held."""


class ClientClosedError(PaxosdError):
    """The client was closed."""


ProtocolError = wire.ProtocolError

_BY_CODE = {cls.code: cls for cls in [
    NotLeaderError, NotFoundError, CASFailedError, InvalidError, TooLargeError,
    TimeoutError, UnavailableError, InternalError, SessionExpiredError,
    LockHeldError, NotHeldError, CanceledError, FencedError, CompactedError,
    NotElectionLeaderError, QuotaExceededError, AuthRequiredError, AuthFailedError,
    PermissionDeniedError, BusyError, MemberConflictError,
]}


def from_response(resp):
    """The exception for an error response (an unknown code is Internal)."""
    cls = _BY_CODE.get(resp.err, InternalError)
    name = wire.ERR_NAMES.get(resp.err, "code %d" % resp.err)
    msg = resp.err_msg or name
    if cls is InternalError and resp.err not in _BY_CODE:
        msg = "unknown error code %d: %s" % (resp.err, resp.err_msg)
    e = cls(msg, resp)
    e.code = resp.err
    return e
