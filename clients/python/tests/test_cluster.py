"""The Python client against a real cluster, and interoperating both ways
with the Go CLI. Needs PAXOSD_ENDPOINTS (comma-separated endpoints of a
running cluster) and, for the CLI tests, PAXOSD_BIN (the paxosd binary);
skipped without them. cmd/paxosd/python_e2e_test.go runs this against a
3-node cluster of `paxosd serve` processes."""

import json
import os
import signal
import subprocess
import threading
import time
import unittest
import uuid

import paxosd
from paxosd import wire

ENDPOINTS = [e for e in os.environ.get("PAXOSD_ENDPOINTS", "").split(",") if e]
BIN = os.environ.get("PAXOSD_BIN", "")
# The cluster's --watch-progress-interval in seconds (default 10 s).
PROGRESS_INTERVAL = float(os.environ.get("PAXOSD_WATCH_PROGRESS", "10"))


def unique(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:8])


@unittest.skipUnless(ENDPOINTS, "PAXOSD_ENDPOINTS not set: no cluster to test against")
class ClusterTest(unittest.TestCase):
    def setUp(self):
        self.c = paxosd.Client(ENDPOINTS, timeout=15)
        self.addCleanup(self.c.close)

    def session(self, ttl=5.0, client=None):
        s = (client or self.c).session(ttl)
        self.addCleanup(s.close)
        return s

    def cli(self, *args, check=True, stdin=None, timeout=20):
        """Run the paxosd CLI against the cluster: (exit status, stdout, stderr)."""
        if not BIN:
            self.skipTest("PAXOSD_BIN not set")
        args = list(args)
        at = args.index("--") if "--" in args else len(args)  # flags before a COMMAND
        args[at:at] = ["--endpoints", ",".join(ENDPOINTS)]
        p = subprocess.run([BIN] + args, input=stdin, capture_output=True, timeout=timeout)
        if check and p.returncode != 0:
            self.fail("paxosd %s: exit %d: %s" % (" ".join(args), p.returncode, p.stderr.decode()))
        return p.returncode, p.stdout.decode(), p.stderr.decode()


class Basics(ClusterTest):
    def test_hello_and_status(self):
        self.assertEqual(self.c.version, paxosd.PROTOCOL_VERSION)
        st = self.c.status()
        self.assertEqual(len(st), len(ENDPOINTS))
        self.assertIn(st[0].role, ("leader", "follower", "precandidate", "candidate"))
        self.assertTrue(st[0].connected)
        self.assertEqual(st[0].id, self.c.node_id)
        for m in st[1:]:
            self.assertEqual(m.role, "")  # their own status is theirs to tell
        every = self.c.cluster_status()
        self.assertEqual(len(every), len(ENDPOINTS))
        roles = [m.role for m in every.values() if isinstance(m, paxosd.NodeStatus)]
        self.assertEqual(roles.count("leader"), 1, every)

    def test_member_list(self):
        version, members = self.c.member_list()
        self.assertGreaterEqual(version, 1)
        self.assertEqual(sorted(m.addr for m in members), sorted(ENDPOINTS))
        self.assertTrue(all(not m.learner for m in members))
        self.assertTrue(any(m.reachable for m in members))

    def test_follows_the_leader(self):
        leader = [a for a, m in self.c.cluster_status().items() if isinstance(m, paxosd.NodeStatus) and m.role == "leader"][0]
        followers = [e for e in ENDPOINTS if e != leader]
        # Connected to a follower first: its answer names the leader, and
        # the client moves there.
        c = paxosd.Client(followers + [leader])
        self.addCleanup(c.close)
        c._next_ep = 0
        c.put(unique("follow"), b"x")
        c.put(unique("follow"), b"y")
        self.assertEqual(c.connection().addr, leader)

    def test_protocol_doc_sketch(self):
        # The sketch of docs/PROTOCOL.md §7, run as it is against the cluster.
        import re
        import sys
        doc = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "docs", "PROTOCOL.md")
        with open(doc) as f:
            m = re.search(r"```python\n(.*?)```", f.read(), re.S)
        self.assertIsNotNone(m, "no python sketch in PROTOCOL.md")
        host, port = ENDPOINTS[0].rsplit(":", 1)
        script = m.group(1).replace('("127.0.0.1", 7401)', '(%r, %s)' % (host, port))
        p = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.assertRegex(p.stdout.decode(), r"^greeting b'hello' revision \d+\n$")

    def test_readme_lock_example(self):
        # The ten-line lock-with-fencing example of clients/python/README.md.
        import re
        import sys
        here = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(here, "..", "README.md")) as f:
            m = re.search(r"```python\n(.*?)```", f.read(), re.S)
        code = m.group(1)
        self.assertLessEqual(len([l for l in code.splitlines() if l.strip() and not l.strip().startswith("#")]), 10)
        script = code.replace('["10.0.0.1:7401", "10.0.0.2:7401", "10.0.0.3:7401"]', repr(ENDPOINTS))
        p = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=30,
                           env=dict(os.environ, PYTHONPATH=os.path.join(here, "..")))
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.assertRegex(p.stdout.decode(), r"^holding with token \d+\n$")
        self.assertEqual(self.c.get("jobs/owner").value, b"me")

    def test_short_hello(self):
        # A client's hello may stop after the version (PROTOCOL.md §2).
        import socket
        from paxosd.conn import split_addr
        sock = socket.create_connection(split_addr(ENDPOINTS[0]), timeout=10)
        f = sock.makefile("rb")
        try:
            sock.sendall(wire.encode_frame(wire.Hello(magic="paxosd", version=7), fields=2))
            _, h = wire.decode_body(wire.read_frame(f.read), wire.FRAME_HELLO)
            self.assertEqual((h.magic, h.version, h.cluster_id), ("paxosd", 7, "paxosd"))
            self.assertNotEqual(h.node_id, 0)
            sock.sendall(wire.encode_frame(wire.Request(id=1, op=wire.OP_STATUS)))
            _, r = wire.decode_body(wire.read_frame(f.read), wire.FRAME_RESPONSE)
            self.assertEqual((r.id, r.err, r.status[0].id), (1, 0, h.node_id))
        finally:
            f.close()
            sock.close()

    def test_wrong_cluster(self):
        c = paxosd.Client(ENDPOINTS, cluster="not-this-one", timeout=2)
        self.addCleanup(c.close)
        with self.assertRaises(paxosd.ClusterMismatchError):
            c.get("k")


class KV(ClusterTest):
    def test_put_get_delete(self):
        k = unique("kv")
        self.assertIsNone(self.c.get(k))
        r1 = self.c.put(k, b"one")
        self.assertIsNone(r1.prev_kv)
        r2 = self.c.put(k, "two")  # str values are UTF-8
        self.assertGreater(r2.revision, r1.revision)
        self.assertEqual(r2.prev_kv.value, b"one")
        kv = self.c.get(k)
        self.assertEqual((kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version),
                         (k, b"two", r1.revision, r2.revision, 2))
        self.assertEqual(self.c.get(k, serializable=True).key, k)  # the contacted node may lag; the key exists once applied
        d = self.c.delete(k)
        self.assertTrue(d.found)
        self.assertEqual(d.prev_kv.value, b"two")
        self.assertIsNone(self.c.get(k))
        # Deleting a missing key is no error (protocol version 7).
        d2 = self.c.delete(k)
        self.assertFalse(d2.found)
        self.assertIsNone(d2.prev_kv)
        # prev=False (omit_prev, protocol 17): no previous pair comes back.
        self.c.put(k, b"one")
        r3 = self.c.put(k, b"two", prev=False)
        self.assertIsNone(r3.prev_kv)
        self.assertEqual(self.c.get(k).value, b"two")
        # The node leaves the pair out (found still says there was one).
        raw = self.c.call(wire.OP_PUT, key=k, value=b"three", omit_prev=True)
        self.assertTrue(raw.found)
        self.assertFalse(raw.kv and (raw.kv.key or raw.kv.value))
        raw = self.c.call(wire.OP_PUT, key=k, value=b"four")
        self.assertEqual(raw.kv.value, b"three")
        d3 = self.c.delete(k, prev=False)
        self.assertTrue(d3.found)
        self.assertIsNone(d3.prev_kv)

    def test_cas(self):
        k = unique("cas")
        r = self.c.cas(k, b"a", prev_revision=0)  # create only if absent
        self.assertTrue(r.succeeded)
        self.assertIsNone(r.kv)
        again = self.c.cas(k, b"b", prev_revision=0)
        self.assertFalse(again.succeeded)
        self.assertEqual(again.kv.value, b"a")
        ok = self.c.cas(k, b"b", prev_value=b"a")
        self.assertTrue(ok.succeeded)
        self.assertEqual(ok.kv.value, b"a")
        bad = self.c.cas(k, b"c", prev_value=b"a", prev_revision=ok.revision)
        self.assertFalse(bad.succeeded)
        both = self.c.cas(k, b"c", prev_value=b"b", prev_revision=ok.revision)
        self.assertTrue(both.succeeded)
        self.assertEqual(self.c.get(k).value, b"c")
        with self.assertRaises(ValueError):
            self.c.cas(k, b"d")
        # The server refuses a CAS without a condition too.
        with self.assertRaises(paxosd.InvalidError):
            self.c.call(wire.OP_CAS, key=k, value=b"d")

    def test_list_paging(self):
        p = unique("ls") + "/"
        for i in range(25):
            self.c.put("%s%02d" % (p, i), b"v" * 50)
        self.c.put(p[:-1] + "0", b"outside")  # not under the prefix
        # Pages of about 200 bytes: several pages, one listing.
        pages, start, rev = 0, "", 0
        keys = []
        while True:
            r = self.c.list_page(p, start_key=start, revision=rev, page_bytes=200)
            pages += 1
            keys += [kv.key for kv in r.kvs]
            rev = rev or r.revision
            self.assertEqual(r.revision, rev)
            if not r.more:
                break
            start = r.next_key
        self.assertGreater(pages, 3)
        self.assertEqual(keys, ["%s%02d" % (p, i) for i in range(25)])
        whole = self.c.list(p, page_bytes=200)
        self.assertEqual([kv.key for kv in whole.kvs], keys)
        self.assertFalse(whole.more)
        # A listing pinned at its first page's revision ignores later writes.
        lim = self.c.list(p, limit=7, page_bytes=200)
        self.assertEqual(len(lim.kvs), 7)
        self.assertTrue(lim.more)
        old = self.c.list_page(p, revision=lim.revision, page_bytes=1 << 20)
        self.c.put(p + "zz", b"new")
        again = self.c.list_page(p, revision=lim.revision, page_bytes=1 << 20)
        self.assertEqual([kv.key for kv in again.kvs], [kv.key for kv in old.kvs])
        self.assertEqual(len(self.c.list(p).kvs), 26)

    def test_limits_and_errors(self):
        with self.assertRaises(paxosd.InvalidError):
            self.c.put("", b"x")
        with self.assertRaises(paxosd.TooLargeError):
            self.c.put("k" * 5000, b"x")
        with self.assertRaises(paxosd.TooLargeError):
            self.c.put(unique("big"), b"x" * (2 << 20))

    def test_exactly_once_retry(self):
        # The same (client_id, seq) sent twice is applied once and answered
        # with the first answer; the client's retries rely on it.
        k = unique("dedup")
        conn = self.c.connection()
        seq = self.c._new_seq()
        q = dict(op=wire.OP_PUT, client_id=self.c.client_id, seq=seq, acked_below=seq, key=k, value=b"once", timeout_ms=10000)
        r1 = conn.call(wire.Request(**q), 15)
        r2 = conn.call(wire.Request(**q), 15)
        self.c._done_seq(seq)
        self.assertEqual(r1.err, 0)
        self.assertEqual((r2.err, r2.revision), (0, r1.revision))
        self.assertEqual(self.c.get(k).version, 1)
        # Through the log, client_id 0 is refused.
        r = conn.call(wire.Request(op=wire.OP_PUT, key=k, value=b"x", timeout_ms=10000), 15)
        self.assertEqual(r.err, wire.ERR_INVALID)


class Sessions(ClusterTest):
    def test_keepalive_keeps_it(self):
        s = self.session(ttl=2.0)
        self.assertGreater(s.id, 0)
        time.sleep(4.5)  # more than two TTLs: only the keep-alives keep it
        self.assertTrue(s.alive, s.lost_reason)
        ids = [x.id for x in self.c.session_list()]
        self.assertIn(s.id, ids)
        s.close()
        self.assertFalse(s.alive)
        with self.assertRaises(paxosd.SessionExpiredError):
            self.c.call(wire.OP_SESSION_KEEPALIVE, session_id=s.id)

    def test_expires_without_keepalive(self):
        s = self.c.session(1.0, keepalive=False)
        name = unique("exp")
        lk = s.lock(name, lock_delay=30)
        time.sleep(1.2)
        self.assertFalse(s.alive)  # the client's own count of the TTL
        deadline = time.time() + 10  # the cluster's clock, soon after
        while lk.check() and time.time() < deadline:
            time.sleep(0.1)
        self.assertFalse(lk.check())
        with self.assertRaises(paxosd.SessionExpiredError):
            s.keepalive()
        # It expired holding a lock with a lock-delay: free, but granted to
        # nobody for a while.
        with self.assertRaises(paxosd.LockHeldError) as cm:
            self.session().lock(name, wait=False)
        self.assertEqual(cm.exception.lock.holder, 0)
        self.assertGreater(cm.exception.lock.delay_until_ms, 0)


    def test_keepalive_batch(self):
        """One keep-alive batch renews live sessions and names the ended
        ones; sessions kept alive only by batches outlive their TTL."""
        a = self.c.session(1.0, keepalive=False)
        b = self.c.session(1.0, keepalive=False)
        self.addCleanup(a.close)
        b.close()
        deadline = time.time() + 10  # a new cluster raises its level at once
        while True:
            try:
                expired = self.c.keepalive_sessions([a, b.id])
                break
            except paxosd.InvalidError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        self.assertEqual(expired, [b.id])
        for _ in range(8):  # 2.4 s: more than two TTLs
            time.sleep(0.3)
            self.assertEqual(self.c.keepalive_sessions([a]), [])
        self.assertIn(a.id, [x.id for x in self.c.session_list()])

    def test_ephemeral_key(self):
        """A key put with a session goes when the session is closed, and
        when it expires; a put without one makes it permanent."""
        prefix = unique("svc") + "/"
        s = self.session(ttl=5.0)
        self.c.put(prefix + "a", "addr-a", session=s)
        self.c.put(prefix + "b", "addr-b", session=s.id)
        self.c.put(prefix + "b", "permanent")
        s.close()
        self.assertIsNone(self.c.get(prefix + "a"))
        self.assertEqual(self.c.get(prefix + "b").value, b"permanent")
        with self.assertRaises(paxosd.SessionExpiredError):
            self.c.put(prefix + "c", "late", session=s)
        gone = self.c.session(1.0, keepalive=False)
        self.c.put(prefix + "d", "addr-d", session=gone)
        deadline = time.time() + 10
        while self.c.get(prefix + "d") is not None and time.time() < deadline:
            time.sleep(0.1)
        self.assertIsNone(self.c.get(prefix + "d"))

    def test_register_cli(self):
        """paxosd register's key exists while its COMMAND runs (which
        reads it with the CLI, through $PAXOSD_ENDPOINTS), register exits
        with COMMAND's status, and the key is gone then."""
        key = unique("svc") + "/web"
        code, _, err = self.cli("register", key, "10.0.0.7", "--", "sh", "-c",
                                '"$0" kv get "$PAXOSD_REGISTER_KEY" | grep -qx 10.0.0.7 || exit 9; exit 4', BIN,
                                check=False)
        self.assertEqual(code, 4, err)
        self.assertIsNone(self.c.get(key))


class Locks(ClusterTest):
    def test_try_block_release_fence(self):
        name = unique("lock")
        a, b = self.session(), self.session()
        la = a.lock(name, wait=False)
        self.assertGreater(la.token, 0)
        self.assertEqual(la.info.holder, a.id)
        # Holding it again gives the same token back.
        self.assertEqual(a.lock(name, wait=False).token, la.token)
        with self.assertRaises(paxosd.LockHeldError) as cm:
            b.lock(name, wait=False)
        self.assertEqual(cm.exception.lock.holder, a.id)
        self.assertEqual(cm.exception.lock.token, la.token)

        # A fenced write under the holder's token goes through.
        k = unique("fenced")
        self.c.put(k, b"by a", fence=la)

        got = {}
        t = threading.Thread(target=lambda: got.setdefault("lock", b.lock(name)))
        t.start()
        deadline = time.time() + 10
        while time.time() < deadline:  # b waits in the queue
            locks = [l for l in self.c.lock_list(name) if l.name == name]
            if locks and b.id in locks[0].waiters:
                break
            time.sleep(0.05)
        self.assertTrue(t.is_alive())
        la.release()
        t.join(10)
        lb = got["lock"]
        self.assertGreater(lb.token, la.token)
        self.assertTrue(lb.check())
        self.assertFalse(self.c.lock_check(name, la.token))
        # The stale token is fenced off.
        with self.assertRaises(paxosd.FencedError):
            self.c.put(k, b"by a, late", fence=la)
        with self.assertRaises(paxosd.FencedError):
            self.c.delete(k, fence=(name, la.token))
        self.assertEqual(self.c.get(k).value, b"by a")
        lb.release()
        with self.assertRaises(paxosd.NotHeldError):
            self.c.call(wire.OP_LOCK_RELEASE, name=name, session_id=b.id)

    def test_wait_timeout_withdraws(self):
        name = unique("lockto")
        a, b = self.session(), self.session()
        a.lock(name)
        t0 = time.time()
        with self.assertRaises(paxosd.TimeoutError):
            b.lock(name, timeout=1.0)
        self.assertLess(time.time() - t0, 5)
        lock = [l for l in self.c.lock_list(name) if l.name == name][0]
        self.assertNotIn(b.id, lock.waiters)  # the wait was withdrawn

    def test_session_close_releases(self):
        name = unique("lockclose")
        a, b = self.session(), self.session()
        a.lock(name)
        a.close()
        self.assertGreater(b.lock(name, wait=False).token, 0)


class Elections(ClusterTest):
    def test_campaign_proclaim_observe_resign(self):
        e = self.c.election(unique("elect"))
        self.assertIsNone(e.leader())
        s1, s2 = self.session(), self.session()
        obs = e.observe()
        l1 = e.campaign(s1, b"host-1")
        self.assertEqual((l1.session, l1.value), (s1.id, b"host-1"))
        got = {}
        t = threading.Thread(target=lambda: got.setdefault("l", e.campaign(s2, b"host-2")))
        t.start()
        p = e.proclaim(s1, b"host-1b")
        self.assertEqual((p.value, p.term), (b"host-1b", l1.term))
        with self.assertRaises(paxosd.NotElectionLeaderError):
            e.proclaim(s2, b"nope")
        self.assertEqual(e.leader().value, b"host-1b")
        time.sleep(0.2)
        self.assertTrue(t.is_alive())
        e.resign(s1)
        t.join(10)
        l2 = got["l"]
        self.assertEqual(l2.session, s2.id)
        self.assertGreater(l2.term, l1.term)
        e.resign(s2)
        self.assertIsNone(e.leader())
        changes = []
        while len(changes) < 4:
            ch = obs.next(10)
            self.assertIsNotNone(ch, "observe: only %r" % changes)
            changes.append(ch)
        obs.cancel()
        self.assertEqual([c.seq for c in changes], [1, 2, 3, 4])
        self.assertEqual([c.session for c in changes], [s1.id, s1.id, s2.id, 0])
        self.assertEqual([c.value for c in changes[:3]], [b"host-1", b"host-1b", b"host-2"])
        # Resuming after change 2 replays 3 and 4.
        again = e.observe(after_seq=2)
        self.assertEqual([again.next(10).seq, again.next(10).seq], [3, 4])
        again.cancel()


class Watches(ClusterTest):
    def test_watch_and_resume(self):
        p = unique("watch") + "/"
        w = self.c.watch(p, prefix=True)
        self.assertIsNotNone(w.start_revision)
        r1 = self.c.put(p + "a", b"1")
        r2 = self.c.put(p + "b", b"2")
        self.c.put(unique("elsewhere"), b"x")
        r3 = self.c.delete(p + "a")
        evs = [w.next(10) for _ in range(3)]
        self.assertEqual([(e.type, e.kv.key, e.kv.mod_revision) for e in evs], [
            (paxosd.EVENT_PUT, p + "a", r1.revision),
            (paxosd.EVENT_PUT, p + "b", r2.revision),
            (paxosd.EVENT_DELETE, p + "a", r3.revision),
        ])
        self.assertEqual(evs[2].prev_kv.value, b"1")
        self.assertEqual(w.revision, r3.revision)
        w.cancel()
        self.assertIsNone(w.next(5))  # ended by the Cancel
        # From a revision: replays history.
        w2 = self.c.watch(p + "b", from_revision=r1.revision)
        self.assertEqual(w2.start_revision, r1.revision - 1)
        e = w2.next(10)
        self.assertEqual((e.kv.key, e.kv.value), (p + "b", b"2"))
        w2.cancel()

    def test_watch_resumes_after_connection_loss(self):
        p = unique("wres") + "/"
        w = self.c.watch(p, prefix=True)
        self.c.put(p + "1", b"a")
        self.assertEqual(w.next(10).kv.key, p + "1")
        w._stream.conn.close()  # as if the connection broke
        self.c.put(p + "2", b"b")
        self.c.put(p + "3", b"c")
        self.assertEqual([w.next(10).kv.key for _ in range(2)], [p + "2", p + "3"])
        w.cancel()

    def test_watch_progress(self):
        # An idle watch learns, from the node's progress notifications
        # (protocol 11), that it is up to date past writes to other keys;
        # a watch resumed from there misses and repeats nothing.
        wait = 3 * PROGRESS_INTERVAL + 5
        p = unique("wprog") + "/"
        w = self.c.watch(p, prefix=True, progress=True)
        start = w.next(10)
        self.assertEqual(start, paxosd.WatchProgress(w.start_revision))
        r1 = self.c.put(p + "a", b"1").revision
        self.assertEqual(w.next(10).kv.mod_revision, r1)
        last = 0
        for i in range(3):
            last = self.c.put(unique("elsewhere"), b"x").revision
        while True:
            item = w.next(wait)
            self.assertIsInstance(item, paxosd.WatchProgress)
            self.assertLessEqual(item.revision, last)
            if item.revision == last:
                break
        self.assertEqual(w.revision, last)
        w.cancel()
        r2 = self.c.put(p + "b", b"2").revision
        w2 = self.c.watch(p, prefix=True, from_revision=last + 1)
        e = w2.next(10)
        self.assertEqual((e.kv.key, e.kv.mod_revision), (p + "b", r2))
        self.assertIsNone(w2.next(0.5))  # nothing repeated, nor progress items without progress=True
        w2.cancel()

    def test_watch_refused(self):
        with self.assertRaises(paxosd.InvalidError):
            self.c.watch("")  # an empty key: refused with stream_end


class Txn(ClusterTest):
    def fund(self, a, b):
        for k in (a, b):
            self.c.put(k, b"100")

    def test_transfer_under_fencing_token(self):
        a, b, lock = unique("acct-a"), unique("acct-b"), unique("acct-lock")
        self.fund(a, b)
        s = self.session()
        lk = s.lock(lock)
        r = self.c.txn([paxosd.compare(paxosd.lock_token(lock), "=", lk.token),
                        paxosd.compare(paxosd.value(a), "=", b"100")],
                       then_ops=[paxosd.op_put(a, b"90"), paxosd.op_put(b, b"110")],
                       else_ops=[paxosd.op_get(a)])
        self.assertTrue(r.succeeded)
        self.assertEqual([(x.type, x.found, x.kv.value) for x in r.results],
                         [(wire.TXN_PUT, True, b"100"), (wire.TXN_PUT, True, b"100")])
        ka, kb = self.c.get(a), self.c.get(b)
        self.assertEqual((ka.value, kb.value), (b"90", b"110"))
        self.assertEqual((ka.mod_revision, kb.mod_revision), (r.revision, r.revision))  # one revision
        # The lock changes hands: the old token no longer holds, and the
        # else branch (a read) runs, writing nothing.
        lk.release()
        s2 = self.session()
        lk2 = s2.lock(lock)
        self.assertGreater(lk2.token, lk.token)
        r = self.c.txn([paxosd.compare(paxosd.lock_token(lock), "=", lk.token)],
                       then_ops=[paxosd.op_put(a, b"0"), paxosd.op_put(b, b"200")],
                       else_ops=[paxosd.op_get(a), paxosd.op_get(b)])
        self.assertFalse(r.succeeded)
        self.assertEqual([x.kv.value for x in r.results], [b"90", b"110"])
        self.assertEqual(self.c.get(a).value, b"90")
        # The other compares and operations.
        r = self.c.txn([paxosd.compare(paxosd.exists(a), "=", True),
                        paxosd.compare(paxosd.version(a), ">", 1),
                        paxosd.compare(paxosd.create_revision(a), "<", ka.mod_revision),
                        paxosd.compare(paxosd.mod_revision(a), "=", ka.mod_revision)],
                       then_ops=[paxosd.op_delete(b), paxosd.op_get(a[:6], prefix=True, limit=1)])
        self.assertTrue(r.succeeded)
        self.assertEqual(r.results[0].deleted, 1)
        self.assertEqual((len(r.results[1].kvs), r.results[1].kvs[0].key[:6]), (1, a[:6]))
        self.assertIsNone(self.c.get(b))

    def test_refusals(self):
        k = unique("txn-twice")
        with self.assertRaises(paxosd.InvalidError):  # a key written twice in a branch
            self.c.txn(then_ops=[paxosd.op_put(k, b"1"), paxosd.op_delete(k)])
        with self.assertRaises(paxosd.TooLargeError):  # over 128 compares and operations
            self.c.txn(then_ops=[paxosd.op_get(k) for _ in range(129)])
        with self.assertRaises(ValueError):
            paxosd.compare(paxosd.version(k), ">=", 1)
        with self.assertRaises(TypeError):
            paxosd.compare(paxosd.value(k), "=", 1)
        self.assertIsNone(self.c.get(k))

    def test_interop_with_cli_txn(self):
        a, b, lock = unique("cli-acct-a"), unique("cli-acct-b"), unique("cli-acct-lock")
        self.fund(a, b)
        s = self.session()
        lk = s.lock(lock)
        # The CLI's transaction under the token of a lock Python holds.
        stdin = ('token("%s") = "%d"\nvalue("%s") = "100"\n\nput %s 70\nput %s 130\n\nget %s\n'
                 % (lock, lk.token, a, a, b, a)).encode()
        _, out, _ = self.cli("txn", "-w", "json", stdin=stdin)
        got = json.loads(out)
        self.assertTrue(got["succeeded"], got)
        self.assertEqual((self.c.get(a).value, self.c.get(b).value), (b"70", b"130"))
        self.assertEqual(self.c.get(a).mod_revision, got["revision"])
        # Python's transaction, read by the CLI; a stale token: FAILURE.
        r = self.c.txn([paxosd.compare(paxosd.value(a), "=", "70")],
                       then_ops=[paxosd.op_put(a, "60"), paxosd.op_put(b, "140")])
        self.assertTrue(r.succeeded)
        _, out, _ = self.cli("kv", "get", b, "-w", "json")
        self.assertEqual((json.loads(out)["value"], json.loads(out)["mod_revision"]), ("140", r.revision))
        stdin = ('token("%s") = "%d"\n\nput %s 0\n' % (lock, lk.token + 1000, a)).encode()
        status, out, _ = self.cli("txn", stdin=stdin)
        self.assertEqual((status, out.splitlines()[0]), (0, "FAILURE"))
        self.assertEqual(self.c.get(a).value, b"60")


class CLIInterop(ClusterTest):
    def test_kv_both_ways(self):
        k1, k2 = unique("cli-put"), unique("py-put")
        self.cli("kv", "put", k1, "from the CLI")
        self.assertEqual(self.c.get(k1).value, b"from the CLI")
        self.c.put(k2, b"\xff\x00binary")
        _, out, _ = self.cli("kv", "get", k2, "-w", "json")
        got = json.loads(out)
        self.assertEqual(got["key"], k2)
        import base64
        self.assertEqual(base64.b64decode(got["value_base64"]), b"\xff\x00binary")
        self.c.put(k2, "text")
        _, out, _ = self.cli("kv", "get", k2, "-w", "json")
        self.assertEqual(json.loads(out)["value"], "text")
        self.assertEqual(json.loads(out)["mod_revision"], self.c.get(k2).mod_revision)

    def test_python_watch_sees_cli_put(self):
        k = unique("cli-watch")
        w = self.c.watch(k)
        self.cli("kv", "put", k, "seen")
        e = w.next(10)
        self.assertIsNotNone(e)
        self.assertEqual((e.type, e.kv.key, e.kv.value), (paxosd.EVENT_PUT, k, b"seen"))
        w.cancel()

    def test_locks_and_tokens_across_clients(self):
        name = unique("cli-lock")
        s = self.session()
        lk = s.lock(name, wait=False)
        # Held from Python: the CLI's try-lock fails and its COMMAND never runs.
        code, out, err = self.cli("lock", name, "--wait=false", "--", "echo", "ran", check=False)
        self.assertEqual(code, 1, (out, err))
        self.assertIn("lock held", err)
        self.assertNotIn("ran", out)
        lk.release()
        # Free: the CLI gets it with a greater token.
        _, out, _ = self.cli("lock", name, "--wait=false", "--", "sh", "-c", 'echo "$PAXOSD_LOCK_TOKEN"')
        cli_token = int(out.strip())
        self.assertGreater(cli_token, lk.token)
        # And Python after it, greater still.
        lk2 = s.lock(name, wait=False)
        self.assertGreater(lk2.token, cli_token)
        lk2.release()
        # Held by the CLI (no COMMAND: it holds until interrupted): Python's
        # try-lock fails and names the CLI's token.
        if not BIN:
            self.skipTest("PAXOSD_BIN not set")
        hold = subprocess.Popen([BIN, "lock", name, "--endpoints", ",".join(ENDPOINTS)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            held_token = int(hold.stdout.readline().decode().strip())
            self.assertGreater(held_token, lk2.token)
            with self.assertRaises(paxosd.LockHeldError) as cm:
                s.lock(name, wait=False)
            self.assertEqual(cm.exception.lock.token, held_token)
            hold.send_signal(signal.SIGINT)
            self.assertEqual(hold.wait(10), 0)
        finally:
            if hold.poll() is None:
                hold.kill()
                hold.wait()
            hold.stdout.close()
            hold.stderr.close()
        self.assertGreater(s.lock(name, wait=False).token, held_token)


PIDS = dict(kv.rsplit("=", 1) for kv in os.environ.get("PAXOSD_PIDS", "").split(",") if "=" in kv)


@unittest.skipUnless(ENDPOINTS and PIDS, "PAXOSD_PIDS not set: cannot kill nodes")
class ZFailover(ClusterTest):
    """Last (the name sorts last): it kills nodes of the cluster."""

    def test_failover_then_no_quorum(self):
        status = self.c.cluster_status()
        leader = [a for a, m in status.items() if isinstance(m, paxosd.NodeStatus) and m.role == "leader"][0]
        others = [e for e in ENDPOINTS if e != leader]
        c = paxosd.Client([leader] + others, timeout=20)
        self.addCleanup(c.close)
        c._next_ep = 0
        p = unique("failover") + "/"
        c.put(p + "1", b"before")
        self.assertEqual(c.connection().addr, leader)
        w = c.watch(p, prefix=True)
        os.kill(int(PIDS[leader]), signal.SIGKILL)
        # The put's connection breaks: sent again, same client_id/seq, to
        # the survivors, which elect a new leader and apply it once.
        t0 = time.time()
        r = c.put(p + "2", b"after")
        self.assertNotEqual(c.connection().addr, leader)
        kv = c.get(p + "2")
        self.assertEqual((kv.value, kv.version, kv.mod_revision), (b"after", 1, r.revision))
        # The watch resumes on a survivor from where it was.
        e = w.next(15)
        self.assertIsNotNone(e, "the watch did not resume")
        self.assertEqual((e.kv.key, e.kv.value), (p + "2", b"after"))
        w.cancel()
        failover = time.time() - t0
        # One survivor more killed: the last node has no quorum and
        # answers Unavailable (protocol 7) rather than let the call hang.
        second = c.connection().addr
        last = [e for e in others if e != second][0]
        os.kill(int(PIDS[second]), signal.SIGKILL)
        t0 = time.time()
        with self.assertRaises(paxosd.UnavailableError):
            c.put(p + "3", b"no quorum", timeout=5)
        self.assertLess(time.time() - t0, 10)
        lone = paxosd.Client([last], timeout=2)
        self.addCleanup(lone.close)
        with self.assertRaises(paxosd.UnavailableError) as cm:
            lone.call(wire.OP_PUT, key=p + "4", value=b"x")
        self.assertIn("no quorum", str(cm.exception))
        # Served from its own state meanwhile: a serializable read, status.
        self.assertEqual(lone.get(p + "2", serializable=True).value, b"after")
        self.assertTrue(lone.status())
        print("failover took %.1fs" % failover)


if __name__ == "__main__":
    unittest.main()


class Auth(ClusterTest):
    """Users and roles (protocol 10): a client with credentials may write
    under its role's prefix and nowhere else; without credentials it is
    refused. Auth is disabled again at the end, for the other tests."""

    def test_credentials(self):
        user = unique("py")
        deadline = time.monotonic() + 30
        while True:  # the cluster level rises to 10 once every member speaks it
            try:
                self.c.user_add("root", "rootpw")
                break
            except paxosd.InvalidError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        root = paxosd.Client(ENDPOINTS, timeout=15, user="root", password="rootpw")
        self.addCleanup(root.close)
        self.c.user_add(user, "pw")
        self.c.role_add(user + "-role")
        self.c.role_grant(user + "-role", "py-app/", wire.PERM_READWRITE)
        self.c.user_grant_role(user, user + "-role")
        self.c.auth_enable()
        self.addCleanup(lambda: (root.auth_disable(), root.user_delete(user), root.user_delete("root")))

        with self.assertRaises(paxosd.AuthRequiredError):
            paxosd.Client(ENDPOINTS, timeout=5).put("py-app/x", b"1")
        with self.assertRaises(paxosd.AuthFailedError):
            paxosd.Client(ENDPOINTS, timeout=5, user=user, password="wrong").put("py-app/x", b"1")
        c = paxosd.Client(ENDPOINTS, timeout=15, user=user, password="pw")
        self.addCleanup(c.close)
        self.assertEqual(c.auth_status(), (True, user))
        c.put("py-app/x", b"1")
        with self.assertRaises(paxosd.PermissionDeniedError) as cm:
            c.put("py-other/x", b"1")
        self.assertEqual(str(cm.exception), 'permission denied: %s may not write "py-other/x"' % user)
        self.assertIsNone(root.get("py-other/x"))  # nothing written
