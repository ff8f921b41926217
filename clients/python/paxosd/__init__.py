"""A Python client for paxosd, written from docs/PROTOCOL.md (protocol
version 13). Needs only msgpack (Debian: python3-msgpack).

    import paxosd
    with paxosd.Client(["127.0.0.1:7401", "127.0.0.1:7402"]) as c:
        c.put("greeting", b"hello")
        print(c.get("greeting").value)
"""

from . import wire
from .client import CasResult, Client, DeleteResult, ListResult, PutResult
from .election import Election, Observer
from .errors import (AuthFailedError, AuthRequiredError, PermissionDeniedError,  # protocol 10
                     BusyError,  # protocol 13
                     MemberConflictError,  # protocol 16
                     CanceledError, CASFailedError, ClientClosedError, ClusterMismatchError,
                     CompactedError, ConnectionLostError, FencedError, InternalError, InvalidError,
                     LockHeldError, NoEndpointError, NotElectionLeaderError, NotFoundError,
                     NotHeldError, NotLeaderError, PaxosdError, ProtocolError, QuotaExceededError,
                     SessionExpiredError, SessionLostError, TimeoutError, TooLargeError,
                     UnavailableError)
from .session import Lock, Session
from .tls import tls_context
from .txn import (TxnResponse, compare, create_revision, exists, lock_token, mod_revision,
                  op_delete, op_get, op_put, value, version)
from .watch import Watch, WatchProgress
from .wire import (EVENT_DELETE, EVENT_PUT, KV, LeaderInfo, LockInfo, NodeStatus, SessionInfo,
                   WatchEvent)

PROTOCOL_VERSION = wire.PROTOCOL_VERSION

__all__ = [
    "Client", "Session", "Lock", "Election", "Observer", "Watch",
    "PutResult", "DeleteResult", "CasResult", "ListResult",
    "KV", "LeaderInfo", "LockInfo", "NodeStatus", "SessionInfo", "WatchEvent",
    "EVENT_PUT", "EVENT_DELETE", "PROTOCOL_VERSION",
    "PaxosdError", "NotLeaderError", "NotFoundError", "CASFailedError", "InvalidError",
    "TooLargeError", "TimeoutError", "UnavailableError", "InternalError",
    "SessionExpiredError", "LockHeldError", "NotHeldError", "CanceledError", "FencedError",
    "CompactedError", "NotElectionLeaderError", "QuotaExceededError", "NoEndpointError",
    "ConnectionLostError", "ClusterMismatchError", "SessionLostError", "ClientClosedError",
    "ProtocolError",
    "TxnResponse", "compare", "value", "version", "create_revision", "mod_revision", "exists",
    "lock_token", "op_put", "op_delete", "op_get", "WatchProgress",
    "AuthRequiredError", "AuthFailedError", "PermissionDeniedError", "tls_context",
    "BusyError", "MemberConflictError",
]
