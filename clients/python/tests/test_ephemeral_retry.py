"""Client.put(session=) must check the connection's protocol version on
every attempt, not once before call(): call() retries on another member
after a lost connection (or Unavailable), and that member may be of
protocol 8 (a rolling upgrade), which ignores session_id and makes the key
permanent. The Go client checks on every attempt (client/client.go do).
(Found by a review of the ephemeral keys; it failed when the check ran
once.)"""

import unittest

from paxosd import errors, wire
import paxosd
from tests.test_retry import FakeNode, ok


class EphemeralRetry(unittest.TestCase):
    def node(self, node_id, handler, **kw):
        n = FakeNode(node_id, handler, **kw)
        self.addCleanup(n.close)
        return n

    def client(self, *nodes):
        c = paxosd.Client([n.addr for n in nodes], timeout=3)
        c._next_ep = 0  # first endpoint first
        self.addCleanup(c.close)
        return c

    def test_session_put_never_reaches_a_version_8_node_on_retry(self):
        a = self.node(1, lambda n, q: None, version=9)  # v9 node, dies mid-request (restarted for the upgrade)
        b = self.node(2, ok, version=8)                 # not yet upgraded
        c = self.client(a, b)
        try:
            c.put("services/web-1", b"addr", session=7)
        except (errors.PaxosdError, wire.ProtocolError):
            pass  # refusing is fine; sending it to b is not
        sent = [q for q in b.requests if q.op == wire.OP_PUT]
        self.assertEqual([q.session_id for q in sent if q.session_id], [],
                         "a put with session_id was sent to a protocol-8 node, which writes a permanent key")

    def test_session_must_be_a_session_or_a_positive_id(self):
        b = self.node(2, ok, version=9)
        c = self.client(b)
        for bad in (0, -1, True, "7"):
            with self.assertRaises(errors.InvalidError, msg=repr(bad)):
                c.put("k", b"v", session=bad)
        self.assertEqual([q for q in b.requests if q.op == wire.OP_PUT], [])


if __name__ == "__main__":
    unittest.main()
