"""The paxosd client: endpoints, retries with the same (client_id, seq),
leader following, and the KV operations. Sessions, locks, elections and
watches are in their own modules and built on Client.call / Client.stream.
"""

import os
import random
import threading
import time
from collections import namedtuple

from . import errors, wire
from .conn import Connection

PutResult = namedtuple("PutResult", "revision prev_kv")
PutResult.__doc__ = "A put's revision, and the pair it replaced (None if the key was new)."
DeleteResult = namedtuple("DeleteResult", "found revision prev_kv")
DeleteResult.__doc__ = "found: the key existed (prev_kv is what was deleted); revision: the delete's, or the store's if nothing was deleted."
CasResult = namedtuple("CasResult", "succeeded revision kv")
CasResult.__doc__ = ("succeeded: written; revision: the write's (else the store's); kv: the pair "
                     "before the write, or on failure the current pair (None: the key does not exist).")
ListResult = namedtuple("ListResult", "kvs revision more")
ListResult.__doc__ = "The pairs in key order, the revision they were read at, whether keys remain (after limit)."

# Retry pacing after Timeout, Unavailable or a lost connection.
_BACKOFF_MIN, _BACKOFF_MAX = 0.05, 1.0

# How far a client's newest seq may run ahead of its oldest request still
# waiting for an answer: half the 1,024 answers a node keeps per client.
SEQ_WINDOW = 512
# The longest wait a Busy answer's retry_after_ms gets (a node says at most
# 2 s), and the jitter added to it (up to half again), so the clients a
# node shed together do not all come back together.
_BUSY_WAIT_MAX = 5.0
_BUSY_JITTER = 0.5


def _busy_wait(retry_after_ms):
    """How long to wait after a Busy answer: retry_after_ms, bounded,
    plus jitter."""
    wait = min(max(retry_after_ms, 1) / 1000.0, _BUSY_WAIT_MAX)
    return wait * (1 + random.random() * _BUSY_JITTER)
# How long past a request's timeout_ms the client waits for the node's own
# Timeout answer before giving up on the connection's answer.
_GRACE = 2.0


def _fence_fields(fence):
    """fence: a Lock (with .name and .token) or a (name, token) pair."""
    if fence is None:
        return {}
    if isinstance(fence, tuple):
        name, token = fence
    else:
        name, token = fence.name, fence.token
    return {"fence_name": name, "fence_token": token}


def _kv_or_none(found, kv):
    return kv if found else None


class Client:
    """A connection to a paxosd cluster through any of its endpoints.

    endpoints: "host:port" strings (a list, or one comma-separated string).
    cluster: the cluster id ("" = the default). timeout: the default deadline
    of a call, in seconds, retries included. user, password: authenticate
    every connection (a cluster with auth enabled). tls: an ssl.SSLContext
    from tls_context(cacert, cert, key) for a cluster with TLS on.
    Thread-safe.
    """

    def __init__(self, endpoints, cluster="", timeout=10.0, dial_timeout=3.0, user=None, password="", tls=None):
        if isinstance(endpoints, str):
            endpoints = [e.strip() for e in endpoints.split(",") if e.strip()]
        if not endpoints:
            raise ValueError("no endpoints")
        self.endpoints = list(endpoints)
        self.cluster = cluster
        self.timeout = timeout
        self.dial_timeout = dial_timeout
        # user, password: every connection authenticates as user (a
        # cluster with auth enabled; protocol 10).
        self._credentials = (user, password) if user else None
        # tls: an ssl.SSLContext (paxosd.tls_context) for a cluster with
        # TLS on; None: plaintext.
        self._tls = tls
        # A random non-zero 64-bit id per client: with seq it names an
        # operation across retries and connections.
        self.client_id = int.from_bytes(os.urandom(8), "big") or 1
        self._lock = threading.Lock()
        # Signalled as a request gets its final answer: _new_seq waits on it
        # while SEQ_WINDOW numbers are taken above the oldest unanswered one.
        self._seq_freed = threading.Condition(self._lock)
        self._next_seq = 1
        self._outstanding = {}    # seq -> whether it holds the window (_new_seq)
        self._conns = {}          # addr -> Connection
        self._current = None      # the address requests go to
        self._leader_addr = None  # the leader's address, from leader_hint
        self._unreachable = {}    # leader address -> when a dial to it failed
        self._next_ep = random.randrange(len(self.endpoints))
        self._closed = False

    # --- connections -------------------------------------------------------

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        with self._lock:
            self._closed = True
            conns, self._conns = list(self._conns.values()), {}
        for c in conns:
            c.close()

    @property
    def node_id(self):
        """The node id of the node requests go to now (0 if none yet)."""
        c = self._conns.get(self._current) if self._current else None
        return c.node_id if c else 0

    @property
    def version(self):
        """The protocol version negotiated with the current node."""
        return self.connection().version

    def _dial(self, addr):
        with self._lock:
            if self._closed:
                raise errors.ClientClosedError("client closed")
            c = self._conns.get(addr)
            if c is not None and not c.closed:
                return c
        c = Connection(addr, self.cluster, self.dial_timeout, credentials=self._credentials, tls=self._tls)
        with self._lock:
            old = self._conns.get(addr)
            if self._closed or (old is not None and not old.closed):
                c.close()
                if self._closed:
                    raise errors.ClientClosedError("client closed")
                return old
            self._conns[addr] = c
        return c

    def connection(self, avoid=None):
        """The connection requests go to: the leader's when a hint named
        it, else the current endpoint's, else the next endpoint that
        answers a hello. avoid: an address to skip (it just failed)."""
        cur = self._current
        if cur and cur != avoid:
            c = self._conns.get(cur)
            if c is not None and not c.closed:
                return c
        tried, failures = set(), []
        lead = self._leader_addr
        candidates = []
        if lead and lead != avoid:
            candidates.append(lead)
        n = len(self.endpoints)
        with self._lock:
            start = self._next_ep
            self._next_ep = (self._next_ep + 1) % n
        candidates += [self.endpoints[(start + i) % n] for i in range(n)]
        if avoid:
            candidates.append(avoid)  # last resort
        for addr in candidates:
            if addr in tried:
                continue
            tried.add(addr)
            try:
                c = self._dial(addr)
            except errors.ClusterMismatchError:
                raise
            except (OSError, errors.ProtocolError) as e:
                failures.append("%s: %s" % (addr, e))
                if addr == lead:
                    self._leader_addr = None
                    self._unreachable[addr] = time.monotonic()
                continue
            self._current = addr
            return c
        raise errors.NoEndpointError("no endpoint answered: " + "; ".join(failures))

    def _drop(self, conn):
        """Stop sending to conn (it failed, or its node cannot serve)."""
        if self._current == conn.addr:
            self._current = None
        if self._leader_addr == conn.addr:
            self._leader_addr = None

    def _note_leader(self, conn, resp):
        # A follower's answer to a request it forwarded names the leader:
        # move later requests there, saving the forwarding hop.
        # (Not an address this client failed to reach lately: the leader
        # may name itself by an address only its peers can dial.)
        if resp.leader_hint and resp.leader_addr and resp.leader_hint != conn.node_id:
            failed = self._unreachable.get(resp.leader_addr)
            if failed is not None and time.monotonic() - failed < 30:
                return
            self._leader_addr = resp.leader_addr
            if self._current == conn.addr:
                self._current = None

    # --- sequence numbers --------------------------------------------------

    def _window_floor(self):
        # The oldest seq still waiting that holds the window: not a blocking
        # call's (the node keeps waiting calls' answers, and a lock wait may
        # last). self._lock must be held.
        holding = [s for s, holds in self._outstanding.items() if holds]
        return min(holding) if holding else self._next_seq

    def _new_seq(self, op=None, timeout=None, deadline=None, blocking=False):
        # A node keeps a client's last 1,024 answers and raises the client's
        # floor past those it forgets: a request shed Busy again and again
        # while this client's newer ones went through would fall below the
        # floor and come back "stale request". So no seq is taken SEQ_WINDOW
        # or more above the oldest request still waiting (docs/PROTOCOL.md,
        # "Exactly-once retries"). Keep-alives never wait: a session must not
        # expire behind the client's puts.
        exempt = op in (wire.OP_SESSION_KEEPALIVE, wire.OP_SESSION_KEEPALIVE_BATCH)
        with self._seq_freed:
            while not exempt and self._next_seq - self._window_floor() >= SEQ_WINDOW:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise errors.TimeoutError("%s: %d of this client's requests under way, the oldest unanswered for %.1fs"
                                              % (wire.OP_NAMES.get(op, op), SEQ_WINDOW, timeout))
                self._seq_freed.wait(remaining)
            seq = self._next_seq
            self._next_seq += 1
            self._outstanding[seq] = not blocking
            return seq

    def _done_seq(self, seq):
        with self._seq_freed:
            self._outstanding.pop(seq, None)
            self._seq_freed.notify_all()

    def _acked_below(self):
        # Every seq below the lowest still outstanding has been answered.
        with self._lock:
            return min(self._outstanding) if self._outstanding else self._next_seq

    # --- the one request path ----------------------------------------------

    def call(self, op, timeout=None, blocking=False, raise_error=True, min_version=0, min_version_error=None,
             **fields):
        """Send one request and return its Response.

        A request through the log gets a new seq; on Timeout, Unavailable
        or a lost connection it is sent again with the same client_id and
        seq (to another member for Unavailable and lost connections) until
        it is answered or `timeout` seconds (default: the client's) pass.
        On Busy (protocol 13) it waits the answer's retry_after_ms, with
        jitter, and sends it again, same seq; BusyError is raised if the
        deadline would pass first.
        A blocking call (LockAcquire with wait, Campaign) with timeout None
        waits for ever, sending itself again after each such failure: the
        session keeps its place in the queue.

        With raise_error, an error answer raises its PaxosdError; else the
        Response is returned as it is.

        min_version: the request must only reach a node whose connection
        negotiated at least that protocol version (an older node would
        ignore the fields that need it: a put's session_id); checked on
        every attempt, since a retry may go to another node. On an older
        connection min_version_error(conn) is raised.
        """
        serializable = fields.get("serializable", False)
        if timeout is None and not blocking:
            timeout = self.timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        seq = self._new_seq(op, timeout, deadline, blocking) if wire.through_log(op, serializable) else 0
        backoff = _BACKOFF_MIN
        last = None
        avoid = None
        try:
            while True:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    if isinstance(last, errors.PaxosdError) and last.code is not None:
                        raise last
                    raise errors.TimeoutError("%s: no answer within %.1fs (last: %s)"
                                              % (wire.OP_NAMES.get(op, op), timeout, last))
                try:
                    conn = self.connection(avoid)
                except errors.NoEndpointError as e:
                    last = e
                    if deadline is not None and time.monotonic() + backoff > deadline:
                        raise
                    time.sleep(backoff)
                    backoff = min(backoff * 2, _BACKOFF_MAX)
                    continue
                avoid = None
                if conn.version < min_version:
                    raise min_version_error(conn)
                req = wire.Request(op=op, client_id=self.client_id if seq else 0, seq=seq,
                                   acked_below=self._acked_below() if seq else 0, **fields)
                if remaining is not None:
                    req.timeout_ms = max(1, min(int(remaining * 1000), 0xFFFFFFFF))
                try:
                    resp = conn.call(req, None if remaining is None else remaining + _GRACE)
                except errors.ConnectionLostError as e:
                    # Unknown outcome: send it again elsewhere, same seq.
                    last, avoid = e, conn.addr
                    self._drop(conn)
                    continue
                if resp is None:  # not even the node's Timeout came back
                    last = errors.TimeoutError("no answer from %s" % conn.addr)
                    self._drop(conn)
                    continue
                if resp.err == wire.ERR_NOT_LEADER:
                    last = errors.from_response(resp)
                    if resp.leader_addr and resp.leader_addr != conn.addr:
                        self._leader_addr = resp.leader_addr
                        self._current = None
                    else:
                        avoid = conn.addr
                        self._drop(conn)
                        time.sleep(backoff)
                        backoff = min(backoff * 2, _BACKOFF_MAX)
                    continue
                if resp.err == wire.ERR_BUSY:
                    # Shed before it was proposed: the node asks for a
                    # pause, not another member (the leader is what is
                    # overloaded). Same seq again after it.
                    last = errors.from_response(resp)
                    wait = _busy_wait(resp.retry_after_ms)
                    if deadline is not None and time.monotonic() + wait >= deadline:
                        raise last
                    time.sleep(wait)
                    continue
                if resp.err in (wire.ERR_TIMEOUT, wire.ERR_UNAVAILABLE):
                    # May have applied (Timeout) or not known to have
                    # (Unavailable): the same seq again learns the outcome
                    # and applies it at most once.
                    last = errors.from_response(resp)
                    if resp.err == wire.ERR_UNAVAILABLE:
                        avoid = conn.addr
                        self._drop(conn)
                    if deadline is not None and time.monotonic() + backoff >= deadline:
                        raise last
                    time.sleep(backoff)
                    backoff = min(backoff * 2, _BACKOFF_MAX)
                    continue
                self._note_leader(conn, resp)
                if resp.err and raise_error:
                    raise errors.from_response(resp)
                return resp
        finally:
            if seq:
                self._done_seq(seq)

    def stream(self, op, **fields):
        """Open a stream (Watch, Observe) on the current connection; see
        watch.Watch and election.Observer for the resuming iterators."""
        conn = self.connection()
        return conn.open_stream(wire.Request(op=op, **fields))

    # --- KV -----------------------------------------------------------------

    def put(self, key, value, fence=None, session=None, timeout=None, prev=True):
        """Set key to value (bytes, or str as UTF-8). prev=False asks for
        no previous pair (omit_prev, protocol 17; an older server sends it
        anyway): prev_kv is then None, and neither end spends a value's
        bytes on it. fence: a Lock (or a
        (name, token) pair) the write is applied under, else FencedError.
        session: a Session (or its id) the key is bound to, an ephemeral
        key: deleted when the session ends (protocol 9, cluster level 9;
        ProtocolError on an older server's connection, InvalidError from a
        cluster below level 9, SessionExpiredError if it has ended). A put
        without a session makes the key permanent again."""
        fields = _fence_fields(fence)
        if session is not None:
            sid = session.id if hasattr(session, "id") else session
            if isinstance(sid, bool) or not isinstance(sid, int) or sid <= 0:
                raise errors.InvalidError("put: session must be a Session or a session id above 0, not %r" % (session,))
            fields["session_id"] = sid
            # Checked on every attempt: a retry may reach a node of an
            # older protocol, which would ignore session_id and write a
            # permanent key.
            fields["min_version"] = wire.VERSION_EPHEMERAL
            fields["min_version_error"] = lambda conn: errors.ProtocolError(
                "%s speaks protocol %d: a put with a session (an ephemeral key) needs %d"
                % (conn.addr, conn.version, wire.VERSION_EPHEMERAL))
        if not prev:
            fields["omit_prev"] = True
        r = self.call(wire.OP_PUT, timeout=timeout, key=key, value=value, **fields)
        return PutResult(r.revision, _kv_or_none(r.found and prev, r.kv))

    def keepalive_sessions(self, session_ids, timeout=None):
        """Renew every session of session_ids (Sessions or ids) with keep-alive
        batches (protocol 12, cluster level 12; up to KEEPALIVE_BATCH_MAX
        ids a request) and return the ids that no longer exist; every other
        one was renewed. A Session's own thread keeps it alive with single
        keep-alives: this is for a program that renews many sessions itself
        (Session(..., keepalive=False)), counting each TTL from before the
        call. ProtocolError on an older server's connection, InvalidError
        from a cluster below level 12."""
        ids = [s if isinstance(s, int) else s.id for s in session_ids]
        conn = self.connection()
        if conn.version < wire.VERSION_KEEPALIVE_BATCH:
            raise errors.ProtocolError("%s speaks protocol %d: a keep-alive batch needs %d"
                                       % (conn.addr, conn.version, wire.VERSION_KEEPALIVE_BATCH))
        expired = []
        for i in range(0, len(ids), wire.KEEPALIVE_BATCH_MAX):
            r = self.call(wire.OP_SESSION_KEEPALIVE_BATCH, timeout=timeout,
                          session_ids=ids[i:i + wire.KEEPALIVE_BATCH_MAX])
            expired.extend(r.expired_sessions)
        return expired

    def get(self, key, serializable=False, timeout=None):
        """The KV of key, or None if it does not exist. serializable: from
        the contacted node's state (fast, possibly stale)."""
        r = self.call(wire.OP_GET, timeout=timeout, raise_error=False, key=key, serializable=serializable)
        if r.err == wire.ERR_NOT_FOUND:
            return None
        if r.err:
            raise errors.from_response(r)
        return r.kv

    def delete(self, key, fence=None, timeout=None, prev=True):
        """Delete key. A missing key is no error: found is False. prev=False
        asks for no deleted pair (omit_prev, protocol 17): prev_kv is then
        None."""
        fields = _fence_fields(fence)
        if not prev:
            fields["omit_prev"] = True
        r = self.call(wire.OP_DELETE, timeout=timeout, raise_error=False, key=key, **fields)
        if r.err == wire.ERR_NOT_FOUND:  # a server speaking version 6 or older
            return DeleteResult(False, r.revision, None)
        if r.err:
            raise errors.from_response(r)
        return DeleteResult(r.found, r.revision, _kv_or_none(r.found and prev, r.kv))

    def cas(self, key, value, prev_value=None, prev_revision=None, fence=None, timeout=None):
        """Write value only if key holds prev_value and/or its mod revision
        is prev_revision (0: the key must not exist). At least one
        condition. A failed compare is not an exception: succeeded False,
        kv the current pair."""
        if prev_value is None and prev_revision is None:
            raise ValueError("cas needs prev_value or prev_revision")
        fields = dict(key=key, value=value, **_fence_fields(fence))
        if prev_value is not None:
            fields.update(prev_value=prev_value, has_prev_value=True)
        if prev_revision is not None:
            fields.update(prev_revision=prev_revision, has_prev_revision=True)
        r = self.call(wire.OP_CAS, timeout=timeout, raise_error=False, **fields)
        if r.err == wire.ERR_CAS_FAILED:
            return CasResult(False, r.revision, _kv_or_none(r.found, r.kv))
        if r.err:
            raise errors.from_response(r)
        return CasResult(True, r.revision, _kv_or_none(r.found, r.kv))

    def txn(self, compares=(), then_ops=(), else_ops=(), timeout=None):
        """A transaction (protocol 8; see txn.py for compare(), op_put()
        and the others): when every compare holds (or there are none)
        then_ops run, else else_ops, as one command at one revision.
        Returns TxnResponse(succeeded, revision, results); a compare that
        does not hold is no exception. Retried with the same seq like
        every write, so applied once. Raises InvalidError (a malformed
        transaction, a key written twice in a branch, or a cluster below
        level 8), TooLargeError (over 128 compares and operations, or keys
        and values over the value limit), QuotaExceededError."""
        from .txn import TxnResponse
        if self.connection().version < 8:
            raise errors.InvalidError("transactions need protocol 8; %s speaks %d"
                                      % (self.connection().addr, self.connection().version))
        r = self.call(wire.OP_TXN, timeout=timeout, compares=list(compares),
                      then_ops=list(then_ops), else_ops=list(else_ops))
        return TxnResponse(r.succeeded, r.revision, r.txn_results)

    def list_page(self, prefix="", start_key="", revision=0, limit=0, page_bytes=1 << 20,
                  serializable=False, timeout=None):
        """One page of a paged listing (protocol version 4+): the raw
        Response, with kvs, revision, more and next_key."""
        return self.call(wire.OP_LIST, timeout=timeout, prefix=prefix, start_key=start_key,
                         revision=revision, limit=limit, page_bytes=page_bytes,
                         serializable=serializable)

    def list(self, prefix="", limit=0, serializable=False, page_bytes=1 << 20, timeout=None):
        """The keys starting with prefix, in key order, at most limit (0:
        all), read page by page at one revision (the first page's): one
        consistent listing however long. A listing that the watch history
        no longer covers (err Compacted) starts again."""
        if self.connection().version < 4:  # no paging before version 4
            r = self.call(wire.OP_LIST, timeout=timeout, prefix=prefix, limit=limit, serializable=serializable)
            return ListResult(r.kvs, r.revision, r.more)
        return self._list_paged(prefix, limit, serializable, page_bytes, timeout)

    def _list_paged(self, prefix, limit, serializable, page_bytes, timeout):
        for _ in range(5):
            kvs, revision, start = [], 0, ""
            try:
                while True:
                    left = limit - len(kvs) if limit else 0
                    r = self.list_page(prefix, start, revision, left, page_bytes, serializable, timeout)
                    kvs += r.kvs
                    revision = revision or r.revision
                    if not r.more:
                        return ListResult(kvs, revision, False)
                    if limit and len(kvs) >= limit:
                        return ListResult(kvs, revision, True)
                    start = r.next_key
            except errors.CompactedError:
                continue
        raise errors.CompactedError("listing of %r outran the history five times" % prefix)

    # --- status --------------------------------------------------------------

    def status(self, endpoint=None, timeout=None):
        """The status list of one node (default: the current one): its own
        entry first, then the other members with only id, addr, connected."""
        if endpoint is None:
            return self.call(wire.OP_STATUS, timeout=timeout).status
        c = Connection(endpoint, self.cluster, self.dial_timeout, credentials=self._credentials, tls=self._tls)
        try:
            r = c.call(wire.Request(op=wire.OP_STATUS), timeout or self.timeout)
            if r is None:
                raise errors.TimeoutError("no status from %s" % endpoint)
            if r.err:
                raise errors.from_response(r)
            return r.status
        finally:
            c.close()

    def cluster_status(self, timeout=None):
        """Each member's own status, asked of each at its addr: a dict
        {addr: NodeStatus or the exception it failed with}."""
        first = self.status(timeout=timeout)
        out = {}
        for m in first:
            if m.role:  # the answering node's own entry
                out[m.addr] = m
                continue
            try:
                out[m.addr] = self.status(endpoint=m.addr, timeout=timeout)[0]
            except (OSError, errors.PaxosdError) as e:
                out[m.addr] = e
        return out

    # --- sessions, locks, elections, watches (other modules) -------------

    def session(self, ttl=10.0, keepalive=True):
        """Open a session of ttl seconds (1 s to 1 h), kept alive by a
        background thread. See session.Session."""
        from .session import Session
        return Session(self, ttl, keepalive)

    def election(self, name):
        from .election import Election
        return Election(self, name)

    def watch(self, key, prefix=False, from_revision=0, progress=False):
        """Watch key (prefix: every key starting with key) from
        from_revision (0: changes after now); progress: also yield
        WatchProgress items. See watch.Watch."""
        from .watch import Watch
        return Watch(self, key, prefix, from_revision, progress)

    # --- users, roles and auth (protocol 10) ------------------------------

    def user_add(self, name, password, timeout=None):
        """Add user name (root's alone while auth is enabled)."""
        self.call(wire.OP_USER_ADD, timeout=timeout, name=name, value=password)

    def user_delete(self, name, timeout=None):
        self.call(wire.OP_USER_DELETE, timeout=timeout, name=name)

    def user_grant_role(self, user, role, timeout=None):
        self.call(wire.OP_USER_GRANT_ROLE, timeout=timeout, name=user, role=role)

    def user_revoke_role(self, user, role, timeout=None):
        self.call(wire.OP_USER_REVOKE_ROLE, timeout=timeout, name=user, role=role)

    def role_add(self, name, timeout=None):
        self.call(wire.OP_ROLE_ADD, timeout=timeout, name=name)

    def role_grant(self, name, prefix, perm=wire.PERM_READWRITE, timeout=None):
        """Let role name do perm (wire.PERM_*) under prefix."""
        self.call(wire.OP_ROLE_GRANT, timeout=timeout, name=name, prefix=prefix, perm=perm)

    def auth_enable(self, timeout=None):
        self.call(wire.OP_AUTH_ENABLE, timeout=timeout)

    def auth_disable(self, timeout=None):
        self.call(wire.OP_AUTH_DISABLE, timeout=timeout)

    def auth_status(self, timeout=None):
        """(enabled, the user this client's connection is)."""
        r = self.call(wire.OP_AUTH_STATUS, timeout=timeout)
        return r.auth_enabled, r.user

    def member_list(self, timeout=None):
        """(config_version, [Member]): the cluster's membership as the
        node this client talks to applied it (protocol 16); the leader's
        answer has every member's watermark and lag."""
        r = self.call(wire.OP_MEMBER_LIST, timeout=timeout)
        return r.config_version, r.members

    def lock_list(self, prefix="", limit=0, timeout=None):
        return self.call(wire.OP_LOCK_LIST, timeout=timeout, prefix=prefix, limit=limit).locks

    def session_list(self, limit=0, timeout=None):
        return self.call(wire.OP_SESSION_LIST, timeout=timeout, limit=limit).sessions

    def lock_check(self, name, token, timeout=None):
        """Whether token is the current holder's of lock name (linearizable)."""
        return self.call(wire.OP_LOCK_CHECK, timeout=timeout, name=name, token=token).held
