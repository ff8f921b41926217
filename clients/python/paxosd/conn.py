"""One client connection to one node: the hello exchange, then requests
multiplexed by id (PROTOCOL.md §2, §4). A reader thread matches responses
to their requests; a stream's responses go to its queue."""

import itertools
import queue
import socket
import threading

from . import errors, wire


def split_addr(addr):
    """'host:port' or '[v6]:port' -> (host, port)."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError("endpoint %r is not host:port" % addr)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or "127.0.0.1", int(port)


class _Call:
    """A request awaiting its one response."""

    __slots__ = ("event", "response", "error")

    def __init__(self):
        self.event = threading.Event()
        self.response = None
        self.error = None

    def deliver(self, resp):
        self.response = resp
        self.event.set()
        return True  # done: forget the id

    def fail(self, err):
        self.error = err
        self.event.set()


class Stream:
    """The responses of a Watch or Observe, in order. get() returns the next
    Response; a lost connection ends it with ConnectionLostError."""

    def __init__(self, conn, rid):
        self.conn = conn
        self.id = rid
        self.q = queue.Queue()
        self.ended = False

    def deliver(self, resp):
        self.q.put(resp)
        return resp.stream_end

    def fail(self, err):
        self.q.put(err)

    def get(self, timeout=None):
        """The next Response, or None when timeout passes first. Raises the
        connection's error if it broke."""
        try:
            item = self.q.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, Exception):
            self.ended = True
            raise item
        if item.stream_end:
            self.ended = True
        return item

    def cancel(self):
        """Ask the node to end the stream (it answers stream_end, err
        Canceled). Responses already sent may still arrive first."""
        if not self.ended and not self.conn.closed:
            try:
                self.conn.send(wire.Request(op=wire.OP_CANCEL, cancel_id=self.id), _Call())
            except errors.PaxosdError:
                pass


class Connection:
    """A client connection to addr, after a successful hello."""

    def __init__(self, addr, cluster="", dial_timeout=3.0, frame_max=wire.FRAME_BYTES_MAX, credentials=None, tls=None):
        self.addr = addr
        self.frame_max = frame_max
        self.closed = False
        self.error = None
        self._ids = itertools.count(1)
        self._pending = {}
        self._lock = threading.Lock()
        self._wlock = threading.Lock()
        host, port = split_addr(addr)
        self.sock = socket.create_connection((host, port), timeout=dial_timeout)
        if tls is not None:
            # tls: an ssl.SSLContext (tls.tls_context); the node's
            # certificate must name host. A handshake failure is an OSError
            # (ssl.SSLError), which the client treats as an unreachable node.
            try:
                self.sock = tls.wrap_socket(self.sock, server_hostname=host)
            except BaseException:
                self.sock.close()
                raise
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._rfile = self.sock.makefile("rb")
            self._hello(cluster, credentials is not None)
        except BaseException:
            if hasattr(self, "_rfile"):
                self._rfile.close()
            self.sock.close()
            raise
        self.sock.settimeout(None)
        self._reader = threading.Thread(target=self._read_loop, name="paxosd-conn " + addr, daemon=True)
        self._reader.start()
        if credentials is not None:
            try:
                self._authenticate(credentials, dial_timeout)
            except BaseException:
                self.close()
                raise

    def _authenticate(self, credentials, wait):
        """Make this connection the user's, once (PROTOCOL.md, "Users, roles
        and auth"): every request on it is then that user's."""
        if self.version < wire.AUTH_VERSION:
            raise errors.InvalidError("%s speaks protocol %d, which has no users (%d or newer does)"
                                      % (self.addr, self.version, wire.AUTH_VERSION))
        user, password = credentials
        resp = self.call(wire.Request(op=wire.OP_AUTHENTICATE, name=user, value=password), wait)
        if resp is None:
            raise errors.TimeoutError("%s: no answer to authenticate" % self.addr)
        if resp.err:
            raise errors.from_response(resp)

    def _readexact(self, n):
        b = self._rfile.read(n)
        if b is None or len(b) < n:
            raise ConnectionError("connection closed by %s" % self.addr)
        return b

    def _hello(self, cluster, auth=False):
        # A client's hello: node_id 0 makes it a client connection; it
        # never sends cluster_uuid. It speaks PROTOCOL_VERSION, which has
        # users (AUTH_VERSION) and more; a node of an older version answers
        # with its own, and _authenticate refuses one without users.
        version = wire.PROTOCOL_VERSION
        self.sock.sendall(wire.encode_frame(wire.Hello(
            magic=wire.MAGIC, version=version, cluster_id=cluster, node_id=0), fields=4))
        body = wire.read_frame(self._readexact, 4096)
        _, h = wire.decode_body(body, wire.FRAME_HELLO)
        if h.magic != wire.MAGIC:
            raise errors.ProtocolError("%s: bad magic %r" % (self.addr, h.magic))
        if h.version == 0 or h.version > version:
            raise errors.ProtocolError("%s: answered protocol version %d (this client speaks 1..%d)"
                                       % (self.addr, h.version, version))
        if wire.norm_cluster(h.cluster_id) != wire.norm_cluster(cluster):
            raise errors.ClusterMismatchError("%s is a node of cluster %r, not %r"
                                              % (self.addr, wire.norm_cluster(h.cluster_id), wire.norm_cluster(cluster)))
        self.version = h.version
        self.node_id = h.node_id

    def send(self, req, handler):
        """Send req with a new id; handler.deliver(resp) gets its responses
        until it returns True, handler.fail(err) a broken connection."""
        with self._lock:
            if self.closed:
                raise errors.ConnectionLostError("connection to %s is closed: %s" % (self.addr, self.error))
            req.id = next(self._ids)
            self._pending[req.id] = handler
        frame = wire.encode_frame(req)
        try:
            with self._wlock:
                self.sock.sendall(frame)
        except OSError as e:
            self._fail(e)
            raise errors.ConnectionLostError("send to %s: %s" % (self.addr, e)) from None
        return req.id

    def forget(self, rid):
        with self._lock:
            self._pending.pop(rid, None)

    def call(self, req, wait=None):
        """Send req and wait up to `wait` seconds (None: for ever) for its
        response. Returns the Response, or None if none came in time."""
        c = _Call()
        rid = self.send(req, c)
        if not c.event.wait(wait):
            self.forget(rid)
            return None
        if c.error is not None:
            raise c.error
        return c.response

    def open_stream(self, req):
        s = Stream(self, 0)
        s.id = self.send(req, s)
        return s

    def _read_loop(self):
        try:
            while True:
                body = wire.read_frame(self._readexact, self.frame_max)
                _, resp = wire.decode_body(body, wire.FRAME_RESPONSE)
                with self._lock:
                    h = self._pending.get(resp.id)
                if h is None:
                    continue  # e.g. a stream's responses after we stopped listening
                if h.deliver(resp):
                    with self._lock:
                        if self._pending.get(resp.id) is h:
                            del self._pending[resp.id]
        except Exception as e:  # noqa: BLE001 - any failure ends the connection
            self._fail(e)

    def _fail(self, err):
        with self._lock:
            if self.closed:
                return
            self.closed = True
            self.error = err
            pending, self._pending = self._pending, {}
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self._rfile.close()
        except (OSError, ValueError):
            pass
        self.sock.close()
        lost = errors.ConnectionLostError("connection to %s lost: %s" % (self.addr, err))
        for h in pending.values():
            h.fail(lost)

    def close(self):
        self._fail(errors.ClientClosedError("closed"))
