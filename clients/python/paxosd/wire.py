"""The paxosd wire protocol (docs/PROTOCOL.md), version 13: frames, msgpack
encoding, and the positional layouts of every frame and nested record.

Each frame is a 4-byte big-endian length and one msgpack array whose first
element is the frame type. Records are positional: element i is field i of
the layout below. A decoder reads missing trailing fields as zero, ignores
unknown trailing elements, and reads nil as zero (PROTOCOL.md §1). A new
field is added by appending one line to a layout; a new op or error code by
adding a line to OPS / ERRORS.
"""

import struct

import msgpack

# 8 adds transactions (OP_TXN; their fields are in the layouts below), 9
# gives a put's session_id a meaning (an ephemeral key), 11 sends idle
# watches progress notifications (watch.py reads them), 12 adds keep-alive
# batches (OP_SESSION_KEEPALIVE_BATCH, Client.keepalive_sessions), 13 adds
# back-pressure (ERR_BUSY with retry_after_ms, which Client.call waits).
PROTOCOL_VERSION = 13
VERSION_EPHEMERAL = 9
VERSION_WATCH_PROGRESS = 11
VERSION_KEEPALIVE_BATCH = 12
VERSION_BUSY = 13
MAGIC = "paxosd"
DEFAULT_CLUSTER = "paxosd"
FRAME_BYTES_MAX = 16 << 20

FRAME_HELLO, FRAME_MESSAGE, FRAME_REQUEST, FRAME_RESPONSE = 0, 1, 2, 3
FRAME_NAMES = {0: "Hello", 1: "Message", 2: "Request", 3: "Response"}

# Operations (PROTOCOL.md §4, "Requests"). Numbers are never reused.
OP_PUT = 1
OP_GET = 2
OP_DELETE = 3
OP_CAS = 4
OP_LIST = 5
OP_STATUS = 6
OP_SESSION_OPEN = 7
OP_SESSION_KEEPALIVE = 8
OP_SESSION_CLOSE = 9
OP_SESSION_LIST = 10
OP_LOCK_ACQUIRE = 11
OP_LOCK_RELEASE = 12
OP_LOCK_CHECK = 13
OP_LOCK_LIST = 14
OP_CAMPAIGN = 15
OP_PROCLAIM = 16
OP_RESIGN = 17
OP_LEADER = 18
OP_OBSERVE = 19
OP_WATCH = 20
OP_CANCEL = 21
OP_SNAPSHOT_READ = 23
OP_LEADER_TRANSFER = 27
OP_QUOTA_SET = 28
OP_QUOTA_GET = 29
OP_TXN = 32
# (version 12) renews every session of session_ids in one command; the
# answer's expired_sessions lists the ids that no longer exist. At most
# KEEPALIVE_BATCH_MAX ids.
OP_SESSION_KEEPALIVE_BATCH = 47
KEEPALIVE_BATCH_MAX = 4096
# (version 14) a stream: a snapshot taken at a linearizable point, in
# chunks (paxosd snapshot save; docs/BACKUP.md). This client does not send
# it; it is named so that its tables cover every op.
OP_SNAPSHOT_SAVE = 48
# (version 16) membership (PROTOCOL.md, "Membership"): MemberList answers
# the members and the configuration's version (Client.member_list); the
# changes are the operator's (paxosd member add|promote|remove|update) and
# are named here so that the tables cover every op.
VERSION_MEMBERSHIP = 16
OP_MEMBER_LIST = 49
OP_MEMBER_ADD = 50
OP_MEMBER_PROMOTE = 51
OP_MEMBER_REMOVE = 52
OP_MEMBER_UPDATE = 53

# Users, roles and auth (PROTOCOL.md, "Users, roles and auth"; protocol
# 10). A client with credentials says version AUTH_VERSION in its hello
# and authenticates each connection with OP_AUTHENTICATE (conn.py).
AUTH_VERSION = 10
OP_USER_ADD = 33
OP_USER_DELETE = 34
OP_USER_GRANT_ROLE = 35
OP_USER_REVOKE_ROLE = 36
OP_ROLE_ADD = 37
OP_ROLE_DELETE = 38
OP_ROLE_GRANT = 39
OP_ROLE_REVOKE = 40
OP_AUTH_ENABLE = 41
OP_AUTH_DISABLE = 42
OP_USER_LIST = 43
OP_ROLE_LIST = 44
OP_AUTH_STATUS = 45
OP_AUTHENTICATE = 46
PERM_READ, PERM_WRITE, PERM_READWRITE = 1, 2, 3

OP_NAMES = {
    1: "Put", 2: "Get", 3: "Delete", 4: "CAS", 5: "List", 6: "Status",
    7: "SessionOpen", 8: "SessionKeepAlive", 9: "SessionClose",
    10: "SessionList", 11: "LockAcquire", 12: "LockRelease",
    13: "LockCheck", 14: "LockList", 15: "Campaign", 16: "Proclaim",
    17: "Resign", 18: "Leader", 19: "Observe", 20: "Watch", 21: "Cancel",
    23: "SnapshotRead", 27: "LeaderTransfer", 28: "QuotaSet", 29: "QuotaGet",
    32: "Txn",
    33: "UserAdd", 34: "UserDelete", 35: "UserGrantRole", 36: "UserRevokeRole",
    37: "RoleAdd", 38: "RoleDelete", 39: "RoleGrant", 40: "RoleRevoke",
    41: "AuthEnable", 42: "AuthDisable", 43: "UserList", 44: "RoleList",
    45: "AuthStatus", 46: "Authenticate",
    47: "SessionKeepAliveBatch",
    48: "SnapshotSave",
}

# The ops that go through the replicated log and so need a non-zero
# client_id and seq (PROTOCOL.md §4): Put, Get, Delete, CAS, List (Get and
# List only when not serializable), 7-18 but SessionList and LockList, and
# QuotaSet, Txn, the user, role and auth commands, and
# SessionKeepAliveBatch, and SnapshotSave (its barrier). The others are
# served by the contacted node alone.
_LOG_OPS = frozenset([1, 2, 3, 4, 5, 7, 8, 9, 11, 12, 13, 15, 16, 17, 18, 28, 32,
                      33, 34, 35, 36, 37, 38, 39, 40, 41, 42,  # 33-42: protocol 10
                      47,  # protocol 12
                      48])  # protocol 14


def through_log(op, serializable=False):
    """Whether a request of op goes through the log (needs client_id/seq)."""
    if op in (OP_GET, OP_LIST) and serializable:
        return False
    return op in _LOG_OPS


# Error codes (PROTOCOL.md §4, "Error codes").
ERR_NONE = 0
ERR_NOT_LEADER = 1
ERR_NOT_FOUND = 2
ERR_CAS_FAILED = 3
ERR_INVALID = 4
ERR_TOO_LARGE = 5
ERR_TIMEOUT = 6
ERR_UNAVAILABLE = 7
ERR_INTERNAL = 8
ERR_SESSION_EXPIRED = 9
ERR_LOCK_HELD = 10
ERR_NOT_HELD = 11
ERR_CANCELED = 12
ERR_FENCED = 13
ERR_COMPACTED = 14
ERR_NOT_ELECTION_LEADER = 15
ERR_QUOTA_EXCEEDED = 16
ERR_AUTH_REQUIRED = 17      # protocol 10
ERR_AUTH_FAILED = 18        # protocol 10
ERR_PERMISSION_DENIED = 19  # protocol 10
ERR_BUSY = 20               # protocol 13: shed by an overloaded node; retry after retry_after_ms
ERR_SLOW_WATCHER = 21       # protocol 15
ERR_MEMBER_CONFLICT = 22    # protocol 16

ERR_NAMES = {
    0: "None", 1: "NotLeader", 2: "NotFound", 3: "CASFailed", 4: "Invalid",
    5: "TooLarge", 6: "Timeout", 7: "Unavailable", 8: "Internal",
    9: "SessionExpired", 10: "LockHeld", 11: "NotHeld", 12: "Canceled",
    13: "Fenced", 14: "Compacted", 15: "NotElectionLeader",
    16: "QuotaExceeded", 17: "AuthRequired", 18: "AuthFailed", 19: "PermissionDenied",
    20: "Busy", 21: "SlowWatcher", 22: "MemberConflict",
}

EVENT_PUT, EVENT_DELETE = 1, 2


class ProtocolError(Exception):
    """A frame that does not follow PROTOCOL.md: the connection is closed."""


# --- field kinds -----------------------------------------------------------


class _Uint:
    def __init__(self, bits):
        self.max = (1 << bits) - 1
        self.name = "uint%d" % bits

    def zero(self):
        return 0

    def decode(self, v):
        if v is None:
            return 0
        if isinstance(v, bool) or not isinstance(v, int):
            raise ProtocolError("want %s, got %r" % (self.name, type(v).__name__))
        if v < 0 or v > self.max:
            raise ProtocolError("%d out of range for %s" % (v, self.name))
        return v

    def encode(self, v):
        v = int(v or 0)
        if v < 0 or v > self.max:
            raise ValueError("%d out of range for %s" % (v, self.name))
        return v


class _Bool:
    name = "bool"

    def zero(self):
        return False

    def decode(self, v):
        if v is None:
            return False
        if not isinstance(v, bool):
            raise ProtocolError("want bool, got %r" % type(v).__name__)
        return v

    def encode(self, v):
        return bool(v)


class _Str:
    """str on the wire; a decoder accepts str or bin (PROTOCOL.md §1)."""

    name = "str"

    def zero(self):
        return ""

    def decode(self, v):
        if v is None:
            return ""
        if not isinstance(v, (bytes, str)):
            raise ProtocolError("want str, got %r" % type(v).__name__)
        if isinstance(v, str):
            return v
        # Unpacked with raw=True: str and bin both arrive as bytes. A str
        # that is not UTF-8 keeps its bytes (surrogateescape).
        return v.decode("utf-8", "surrogateescape")

    def encode(self, v):
        if v is None:
            return ""
        if isinstance(v, (bytes, bytearray, memoryview)):
            return bytes(v).decode("utf-8")
        return str(v)


class _Bin:
    """bin on the wire; a decoder accepts bin or str."""

    name = "bin"

    def zero(self):
        return b""

    def decode(self, v):
        if v is None:
            return b""
        if isinstance(v, str):
            return v.encode("utf-8", "surrogateescape")
        if not isinstance(v, bytes):
            raise ProtocolError("want bin, got %r" % type(v).__name__)
        return v

    def encode(self, v):
        if v is None:
            return b""
        if isinstance(v, str):
            return v.encode("utf-8")
        return bytes(v)


class _List:
    def __init__(self, elem):
        self.elem = elem
        self.name = "array of " + (elem.__name__ if isinstance(elem, type) else elem.name)

    def zero(self):
        return []

    def decode(self, v):
        if v is None:
            return []
        if not isinstance(v, (list, tuple)):
            raise ProtocolError("want array, got %r" % type(v).__name__)
        return [_decode_kind(self.elem, e) for e in v]

    def encode(self, v):
        return [_encode_kind(self.elem, e) for e in (v or [])]


U8, U32, U64 = _Uint(8), _Uint(32), _Uint(64)
BOOL, STR, BIN = _Bool(), _Str(), _Bin()


def LIST(elem):
    return _List(elem)


def _is_record(kind):
    return isinstance(kind, type) and issubclass(kind, Record)


def _decode_kind(kind, v):
    if _is_record(kind):
        return kind.from_wire(v)
    return kind.decode(v)


def _encode_kind(kind, v):
    if _is_record(kind):
        return (v if v is not None else kind()).to_wire()
    return kind.encode(v)


def _zero_kind(kind):
    if _is_record(kind):
        return kind()
    return kind.zero()


# --- records ---------------------------------------------------------------


class Record:
    """A positional msgpack array with named fields. Subclasses set FIELDS,
    a list of (name, kind); unset fields are zero."""

    FIELDS = []
    __slots__ = ()

    def __init__(self, **kw):
        for name, kind in self.FIELDS:
            setattr(self, name, kw.pop(name) if name in kw else _zero_kind(kind))
        if kw:
            raise TypeError("%s has no field %s" % (type(self).__name__, ", ".join(sorted(kw))))

    @classmethod
    def field_names(cls):
        return [n for n, _ in cls.FIELDS]

    @classmethod
    def from_wire(cls, v):
        r = cls()
        if v is None:
            return r
        if not isinstance(v, (list, tuple)):
            raise ProtocolError("%s: want array, got %r" % (cls.__name__, type(v).__name__))
        for (name, kind), elem in zip(cls.FIELDS, v):  # extra elements ignored
            try:
                setattr(r, name, _decode_kind(kind, elem))
            except ProtocolError as e:
                raise ProtocolError("%s.%s: %s" % (cls.__name__, name, e)) from None
        return r

    def to_wire(self):
        """Every field, in layout order (as the Go encoder writes them)."""
        return [_encode_kind(kind, getattr(self, name)) for name, kind in self.FIELDS]

    def is_zero(self):
        return all(_is_zero(kind, getattr(self, name)) for name, kind in self.FIELDS)

    def to_dict(self):
        return {name: _to_plain(getattr(self, name)) for name, _ in self.FIELDS}

    def __eq__(self, other):
        return type(self) is type(other) and all(
            getattr(self, n) == getattr(other, n) for n, _ in self.FIELDS)

    def __ne__(self, other):
        return not self == other

    __hash__ = None

    def __repr__(self):
        parts = ["%s=%r" % (n, getattr(self, n)) for n, k in self.FIELDS
                 if not _is_zero(k, getattr(self, n))]
        return "%s(%s)" % (type(self).__name__, ", ".join(parts))


def _is_zero(kind, v):
    if _is_record(kind):
        return v.is_zero()
    return v == kind.zero()


def _to_plain(v):
    if isinstance(v, Record):
        return v.to_dict()
    if isinstance(v, list):
        return [_to_plain(e) for e in v]
    return v


def _record(name, fields, doc=""):
    cls = type(name, (Record,), {"FIELDS": fields, "__slots__": tuple(n for n, _ in fields), "__doc__": doc})
    return cls


# Nested records (PROTOCOL.md §4, "Responses").
KV = _record("KV", [
    ("key", STR), ("value", BIN), ("create_revision", U64),
    ("mod_revision", U64), ("version", U64),
], "A key-value pair with its revisions.")

NodeStatus = _record("NodeStatus", [
    ("id", U32), ("addr", STR), ("role", STR), ("ballot_round", U64),
    ("ballot_node", U32), ("leader", U32), ("commit", U64), ("applied", U64),
    ("connected", BOOL), ("promised_round", U64), ("promised_node", U32),
    ("accepted_max", U64), ("window_slots", U64), ("fresh", BOOL),
    ("cluster_uuid", BIN), ("voters", LIST(U64)), ("formed", BOOL),
], "One member's status, as the answering node sees it.")

SessionInfo = _record("SessionInfo", [
    ("id", U64), ("ttl_ms", U64), ("remaining_ms", U64), ("locks", LIST(STR)),
    ("waiting", LIST(STR)), ("elections", LIST(STR)),
], "A session and what it holds.")

LockInfo = _record("LockInfo", [
    ("name", STR), ("holder", U64), ("token", U64), ("waiters", LIST(U64)),
    ("delay_until_ms", U64),
], "A lock's state: holder 0 = free.")

LeaderInfo = _record("LeaderInfo", [
    ("election", STR), ("session", U64), ("value", BIN), ("term", U64),
    ("seq", U64), ("revision", U64),
], "The state of an election after one change: session 0 = no leader.")

WatchEvent = _record("WatchEvent", [
    ("type", U8), ("kv", KV), ("prev_kv", KV),
], "One change: type 1 put, 2 delete.")

# Transactions (PROTOCOL.md, "Transactions"; protocol 8): Client.txn, with
# the helpers of txn.py building these records.
# compare.target: what is read; compare.result: the relation required.
CMP_VALUE, CMP_VERSION, CMP_CREATE, CMP_MOD, CMP_EXISTS, CMP_TOKEN = 1, 2, 3, 4, 5, 6
CMP_EQUAL, CMP_NOT_EQUAL, CMP_LESS, CMP_GREATER = 1, 2, 3, 4
# txn_op.type and txn_result.type.
TXN_PUT, TXN_DELETE, TXN_GET = 1, 2, 3
Compare = _record("Compare", [
    ("target", U8), ("result", U8), ("key", STR), ("value", BIN),
    ("number", U64),
], "One compare of a transaction.")

TxnOp = _record("TxnOp", [
    ("type", U8), ("key", STR), ("value", BIN), ("prefix", BOOL),
    ("limit", U32),
], "One operation of a transaction's branch.")

TxnResult = _record("TxnResult", [
    ("type", U8), ("found", BOOL), ("kv", KV), ("kvs", LIST(KV)),
    ("more", BOOL), ("deleted", U64),
], "The result of one operation of the branch that ran.")

# Users and roles (protocol 10).
User = _record("User", [
    ("name", STR), ("roles", LIST(STR)), ("has_password", BOOL),
], "A user and its roles (never its password).")

RolePerm = _record("RolePerm", [
    ("prefix", STR), ("perm", U8),
], "One permission of a role: perm 1 read, 2 write, 3 readwrite on prefix.")

Role = _record("Role", [
    ("name", STR), ("perms", LIST(RolePerm)),
], "A role and its permissions, by prefix.")

Member = _record("Member", [
    ("id", U32), ("addr", STR), ("learner", BOOL), ("next", BOOL),
    ("leaving", BOOL), ("reachable", BOOL), ("commit", U64), ("lag", U64),
], "A member of the cluster (protocol 16), as the answering node sees it.")

# Frames. frame_type is element 0 of each and is not a field here.
Hello = _record("Hello", [
    ("magic", STR), ("version", U32), ("cluster_id", STR), ("node_id", U32),
    ("cluster_uuid", BIN),
    # (protocol 19) a node dialing a peer says where it may be dialed
    # back; a client never sends it, and no listener answers with it.
    ("addr", STR),
])

Entry = _record("Entry", [
    ("slot", U64), ("ballot_round", U64), ("ballot_node", U32),
    ("value_kind", U8), ("cmds", LIST(BIN)),
])

# Peer messages: a client never sends nor receives them; the layout is here
# for tools and for the golden frames' test.
Message = _record("Message", [
    ("type", U8), ("from", U32), ("to", U32), ("ballot_round", U64),
    ("ballot_node", U32), ("slot", U64), ("commit", U64), ("reject", BOOL),
    ("entries", LIST(Entry)), ("slots", LIST(U64)), ("cmds", LIST(BIN)),
    ("more", BOOL), ("transfer_round", U64), ("transfer_node", U32),
    ("addr", STR),  # version 18: on a Snapshot offer, the sender's address
])

Request = _record("Request", [
    ("id", U64), ("op", U8), ("client_id", U64), ("seq", U64),
    ("acked_below", U64), ("key", STR), ("value", BIN), ("prefix", STR),
    ("prev_value", BIN), ("has_prev_value", BOOL), ("prev_revision", U64),
    ("has_prev_revision", BOOL), ("serializable", BOOL), ("limit", U32),
    ("timeout_ms", U32), ("session_id", U64), ("ttl_ms", U64), ("name", STR),
    ("token", U64), ("wait", BOOL), ("lock_delay_ms", U64),
    ("fence_name", STR), ("fence_token", U64), ("from_revision", U64),
    ("watch_prefix", BOOL), ("after_seq", U64), ("cancel_id", U64),
    ("snap_slot", U64), ("snap_size", U64), ("snap_crc", U32), ("offset", U64),
    ("target_node", U32), ("start_key", STR), ("revision", U64),
    ("page_bytes", U32), ("quota_bytes", U64), ("compares", LIST(Compare)),
    ("then_ops", LIST(TxnOp)), ("else_ops", LIST(TxnOp)),
    ("role", STR), ("perm", U8),  # protocol 10
    ("session_ids", LIST(U64)),  # protocol 12
    ("member_id", U64), ("member_addr", STR), ("member_learner", BOOL),  # protocol 16
    ("omit_prev", BOOL),  # protocol 17: a Put or Delete answered without the previous pair
])

Response = _record("Response", [
    ("id", U64), ("err", U8), ("err_msg", STR), ("leader_hint", U32),
    ("leader_addr", STR), ("revision", U64), ("found", BOOL), ("kv", KV),
    ("kvs", LIST(KV)), ("status", LIST(NodeStatus)), ("succeeded", BOOL),
    ("session", SessionInfo), ("sessions", LIST(SessionInfo)), ("token", U64),
    ("held", BOOL), ("lock", LockInfo), ("locks", LIST(LockInfo)),
    ("leader", LeaderInfo), ("events", LIST(WatchEvent)),
    ("compact_revision", U64), ("stream_end", BOOL), ("snap_slot", U64),
    ("snap_size", U64), ("snap_crc", U32), ("data", BIN), ("more", BOOL),
    ("next_key", STR), ("quota_used", U64), ("quota_bytes", U64),
    ("quota_set", BOOL), ("txn_results", LIST(TxnResult)),
    ("users", LIST(User)), ("roles", LIST(Role)), ("auth_enabled", BOOL),  # protocol 10
    ("user", STR),
    ("expired_sessions", LIST(U64)),  # protocol 12
    ("retry_after_ms", U64),  # protocol 13
    ("members", LIST(Member)), ("config_version", U64),  # protocol 16
])

FRAME_RECORDS = {
    FRAME_HELLO: Hello,
    FRAME_MESSAGE: Message,
    FRAME_REQUEST: Request,
    FRAME_RESPONSE: Response,
}
_FRAME_TYPES = {cls: t for t, cls in FRAME_RECORDS.items()}


# --- frames ----------------------------------------------------------------


def encode_body(record, fields=None):
    """The msgpack body of a frame: [frame_type, field, ...]. With fields,
    only the first `fields` fields are written (the rest read as zero)."""
    elems = record.to_wire()
    if fields is not None:
        elems = elems[:fields]
    return msgpack.packb([_FRAME_TYPES[type(record)]] + elems, use_bin_type=True)


def encode_frame(record, fields=None):
    body = encode_body(record, fields)
    return struct.pack(">I", len(body)) + body


def unpack_body(body):
    """The raw msgpack array of a frame body (str and bin both as bytes)."""
    try:
        v = msgpack.unpackb(body, raw=True, strict_map_key=False, use_list=True)
    except msgpack.ExtraData:
        raise ProtocolError("bytes after the frame's msgpack value") from None
    except (ValueError, TypeError, msgpack.UnpackException) as e:
        raise ProtocolError("malformed msgpack: %s" % e) from None
    if not isinstance(v, list) or not v:
        raise ProtocolError("a frame body is a non-empty array")
    ft = v[0]
    if isinstance(ft, bool) or not isinstance(ft, int) or ft not in FRAME_RECORDS:
        raise ProtocolError("unknown frame type %r" % (ft,))
    return v


def decode_body(body, want=None):
    """Decode a frame body to (frame_type, record)."""
    v = unpack_body(body)
    ft = v[0]
    if want is not None and ft != want:
        raise ProtocolError("want a %s frame, got %s" % (FRAME_NAMES[want], FRAME_NAMES[ft]))
    return ft, FRAME_RECORDS[ft].from_wire(v[1:])


def split_frame(data):
    """Split one whole frame (length + body) into its body."""
    if len(data) < 4:
        raise ProtocolError("short frame")
    (n,) = struct.unpack(">I", data[:4])
    if len(data) != 4 + n:
        raise ProtocolError("frame length %d, %d bytes present" % (n, len(data) - 4))
    return data[4:]


def read_frame(readexact, frame_max=FRAME_BYTES_MAX):
    """Read one frame body with readexact(n) -> bytes."""
    (n,) = struct.unpack(">I", readexact(4))
    if n > frame_max:
        raise ProtocolError("frame of %d bytes is over the limit of %d" % (n, frame_max))
    return readexact(n)


def norm_cluster(name):
    return name or DEFAULT_CLUSTER
