"""The client's request path against fake nodes (no cluster needed): the
same client_id/seq on every retry after Timeout, Unavailable and a lost
connection; NotLeader and leader hints followed; errors mapped."""

import socket
import threading
import time
import unittest

import paxosd
from paxosd import errors, wire


class FakeNode:
    """A listener that answers the hello, then each request with
    handler(node, req): a Response, or None to close the connection."""

    def __init__(self, node_id, handler, cluster="paxosd", version=7):
        self.node_id, self.handler = node_id, handler
        self.cluster, self.version = cluster, version
        self.requests = []
        self.ln = socket.socket()
        self.ln.bind(("127.0.0.1", 0))
        self.ln.listen()
        self.addr = "127.0.0.1:%d" % self.ln.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                s, _ = self.ln.accept()
            except OSError:
                return
            self.conns.append(s)
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        f = s.makefile("rb")

        def readexact(n):
            b = f.read(n)
            if len(b) < n:
                raise ConnectionError
            return b

        try:
            wire.decode_body(wire.read_frame(readexact), wire.FRAME_HELLO)
            s.sendall(wire.encode_frame(wire.Hello(magic="paxosd", version=self.version,
                                                   cluster_id=self.cluster, node_id=self.node_id), fields=4))
            while True:
                _, q = wire.decode_body(wire.read_frame(readexact), wire.FRAME_REQUEST)
                self.requests.append(q)
                r = self.handler(self, q)
                if r is None:
                    f.close()
                    s.close()
                    return
                r.id = q.id
                s.sendall(wire.encode_frame(r))
        except (ConnectionError, OSError, ValueError, wire.ProtocolError):
            f.close()
            s.close()

    def close(self):
        self.ln.close()
        for s in self.conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


def ok(node, q):
    return wire.Response(revision=10, kv=wire.KV(key=q.key, value=b"v", mod_revision=10), found=q.op == wire.OP_GET)


class Retries(unittest.TestCase):
    def setUp(self):
        self.nodes = []

    def tearDown(self):
        for n in self.nodes:
            n.close()

    def node(self, node_id, handler, **kw):
        n = FakeNode(node_id, handler, **kw)
        self.nodes.append(n)
        return n

    def client(self, *nodes, **kw):
        c = paxosd.Client([n.addr for n in nodes], timeout=kw.pop("timeout", 5), **kw)
        c._next_ep = 0  # first endpoint first, for a deterministic test
        self.addCleanup(c.close)
        return c

    def test_unavailable_retried_elsewhere_same_seq(self):
        a = self.node(1, lambda n, q: wire.Response(err=wire.ERR_UNAVAILABLE, err_msg="no quorum"))
        b = self.node(2, ok)
        c = self.client(a, b)
        self.assertEqual(c.put("k", b"v").revision, 10)
        self.assertEqual(len(a.requests), 1)
        self.assertEqual(len(b.requests), 1)
        qa, qb = a.requests[0], b.requests[0]
        self.assertNotEqual(qa.client_id, 0)
        self.assertNotEqual(qa.seq, 0)
        self.assertEqual((qa.client_id, qa.seq, qa.op, qa.key), (qb.client_id, qb.seq, qb.op, qb.key))
        self.assertGreater(qa.timeout_ms, 0)

    def test_timeout_retried_same_seq(self):
        calls = []

        def h(n, q):
            calls.append(q)
            if len(calls) == 1:
                return wire.Response(err=wire.ERR_TIMEOUT, err_msg="deadline")
            return ok(n, q)

        a = self.node(1, h)
        c = self.client(a)
        c.put("k", b"v")
        self.assertEqual(len(calls), 2)
        self.assertEqual((calls[0].client_id, calls[0].seq), (calls[1].client_id, calls[1].seq))
        # The next operation gets the next seq, and acked_below says the
        # first was answered.
        c.put("k2", b"v")
        self.assertEqual(calls[2].seq, calls[0].seq + 1)
        self.assertEqual(calls[2].acked_below, calls[2].seq)

    def test_connection_loss_retried_elsewhere_same_seq(self):
        a = self.node(1, lambda n, q: None)  # closes the connection
        b = self.node(2, ok)
        c = self.client(a, b)
        c.delete("k")
        self.assertEqual((a.requests[0].client_id, a.requests[0].seq), (b.requests[0].client_id, b.requests[0].seq))

    def test_deadline(self):
        a = self.node(1, lambda n, q: wire.Response(err=wire.ERR_UNAVAILABLE, err_msg="no quorum"))
        c = self.client(a, timeout=0.5)
        with self.assertRaises(paxosd.UnavailableError):
            c.put("k", b"v")
        self.assertGreater(len(a.requests), 1)
        self.assertEqual(len({(q.client_id, q.seq) for q in a.requests}), 1)

    def test_busy_waits_and_retries_same_seq(self):
        # Protocol 13: Busy is retried at the same node, same seq, after
        # retry_after_ms (with jitter: at most half again).
        calls = []

        def h(n, q):
            calls.append((time.monotonic(), q))
            if len(calls) <= 2:
                return wire.Response(err=wire.ERR_BUSY, err_msg="busy: retry after 200 ms", retry_after_ms=200)
            return ok(n, q)

        a = self.node(1, h, version=13)
        b = self.node(2, ok, version=13)
        c = self.client(a, b)
        self.assertEqual(c.put("k", b"v").revision, 10)
        self.assertEqual(len(calls), 3)
        self.assertEqual(len(b.requests), 0, "a busy node is waited for, not left")
        self.assertEqual(len({(q.client_id, q.seq) for _, q in calls}), 1)
        for (t0, _), (t1, _) in zip(calls, calls[1:]):
            self.assertGreaterEqual(t1 - t0, 0.2)
            self.assertLess(t1 - t0, 1.0)  # 0.3 s at most, and a loaded machine's delay

    def test_busy_deadline(self):
        # A deadline that comes before the node would take the request:
        # BusyError, carrying the node's retry_after_ms.
        a = self.node(1, lambda n, q: wire.Response(err=wire.ERR_BUSY, err_msg="busy: retry after 300 ms", retry_after_ms=300), version=13)
        c = self.client(a, timeout=1.0)
        t0 = time.monotonic()
        with self.assertRaises(paxosd.BusyError) as cm:
            c.put("k", b"v")
        self.assertLess(time.monotonic() - t0, 1.1)
        self.assertEqual(cm.exception.retry_after_ms, 300)
        self.assertEqual(str(cm.exception), "busy: retry after 300 ms")
        self.assertGreater(len(a.requests), 1)
        self.assertEqual(len({(q.client_id, q.seq) for q in a.requests}), 1)

    def test_not_leader_and_leader_hint(self):
        b = self.node(2, ok)
        a = self.node(1, lambda n, q: wire.Response(err=wire.ERR_NOT_LEADER, leader_hint=2, leader_addr=b.addr))
        c = self.client(a, b)
        c.call(wire.OP_QUOTA_SET, quota_bytes=1 << 30)
        self.assertEqual(len(a.requests), 1)
        self.assertEqual(len(b.requests), 1)
        self.assertEqual(a.requests[0].seq, b.requests[0].seq)
        # A follower's success names the leader: later requests go there.
        hint = self.node(3, lambda n, q: wire.Response(leader_hint=2, leader_addr=b.addr, revision=3))
        c2 = self.client(hint, b)
        c2.put("x", b"1")
        c2.put("y", b"2")
        self.assertEqual([q.key for q in hint.requests], ["x"])
        self.assertEqual([q.key for q in b.requests][-1], "y")
        self.assertEqual(c2.node_id, 2)

    def test_invalid_not_retried(self):
        a = self.node(1, lambda n, q: wire.Response(err=wire.ERR_INVALID, err_msg="stale request"))
        c = self.client(a)
        with self.assertRaises(paxosd.InvalidError) as cm:
            c.put("k", b"v")
        self.assertEqual(cm.exception.code, wire.ERR_INVALID)
        self.assertEqual(str(cm.exception), "stale request")
        self.assertEqual(len(a.requests), 1)

    def test_reads_and_streams_without_seq_when_not_through_log(self):
        a = self.node(1, ok)
        c = self.client(a)
        c.get("k", serializable=True)
        c.get("k")
        self.assertEqual(a.requests[0].seq, 0)
        self.assertNotEqual(a.requests[1].seq, 0)

    def test_cluster_mismatch(self):
        a = self.node(1, ok, cluster="other")
        with self.assertRaises(paxosd.ClusterMismatchError):
            self.client(a).put("k", b"v")

    def test_version_above_ours_refused(self):
        a = self.node(1, ok, version=99)
        with self.assertRaises(paxosd.NoEndpointError):
            self.client(a, timeout=0.3).put("k", b"v")

    def test_error_classes(self):
        for code, cls in [(1, errors.NotLeaderError), (2, errors.NotFoundError), (3, errors.CASFailedError),
                          (4, errors.InvalidError), (5, errors.TooLargeError), (6, errors.TimeoutError),
                          (7, errors.UnavailableError), (8, errors.InternalError), (9, errors.SessionExpiredError),
                          (10, errors.LockHeldError), (11, errors.NotHeldError), (12, errors.CanceledError),
                          (13, errors.FencedError), (14, errors.CompactedError),
                          (15, errors.NotElectionLeaderError), (16, errors.QuotaExceededError),
                          (200, errors.InternalError)]:
            e = errors.from_response(wire.Response(err=code, err_msg="m"))
            self.assertIsInstance(e, cls)
            self.assertIsInstance(e, paxosd.PaxosdError)
            self.assertEqual(e.code, code)
        self.assertIsInstance(errors.from_response(wire.Response(err=6)), TimeoutError)


if __name__ == "__main__":
    unittest.main()


class SeqWindowTest(unittest.TestCase):
    """No seq is taken SEQ_WINDOW or more above the oldest request still
    waiting: newer answers would push the oldest's out of the node's table
    (a "stale request" for a request shed Busy)."""

    def test_waits_for_the_oldest(self):
        from paxosd.client import SEQ_WINDOW
        c = paxosd.Client(["127.0.0.1:1"])
        seqs = [c._new_seq(wire.OP_PUT, None, None) for _ in range(SEQ_WINDOW)]
        c._done_seq(seqs[-1])  # the newest may end: the oldest holds the window
        with self.assertRaises(errors.TimeoutError):
            c._new_seq(wire.OP_PUT, 0.05, time.monotonic() + 0.05)
        got = []
        t = threading.Thread(target=lambda: got.append(c._new_seq(wire.OP_PUT, None, None)))
        t.start()
        time.sleep(0.05)
        self.assertEqual(got, [], "a seq was taken while the oldest request still waited")
        c._done_seq(seqs[0])
        t.join(5)
        self.assertEqual(got, [SEQ_WINDOW + 1])
        self.assertEqual(c._acked_below(), 2)

    def test_blocking_calls_and_keepalives(self):
        from paxosd.client import SEQ_WINDOW
        c = paxosd.Client(["127.0.0.1:1"])
        for _ in range(SEQ_WINDOW):  # lock waits do not hold the window
            c._new_seq(wire.OP_LOCK_ACQUIRE, None, None, blocking=True)
        for _ in range(SEQ_WINDOW):
            c._new_seq(wire.OP_PUT, None, None)
        with self.assertRaises(errors.TimeoutError):
            c._new_seq(wire.OP_PUT, 0.05, time.monotonic() + 0.05)
        c._new_seq(wire.OP_SESSION_KEEPALIVE, 0.05, time.monotonic() + 0.05)  # never waits
