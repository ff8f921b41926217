"""The Python client over TLS, against a cluster of three 'paxosd serve'
processes with TLS and --client-cert-auth whose certificates openssl made
(cmd/paxosd/tls_openssl_e2e_test.go runs it, with $PAXOSD_ENDPOINTS,
$PAXOSD_CACERT, $PAXOSD_CERT, $PAXOSD_KEY for a client certificate, and
$PAXOSD_OTHER_CA_DIR holding another CA's certificate and a client
certificate it signed)."""

import os
import unittest

import paxosd
from paxosd import errors


@unittest.skipUnless(os.environ.get("PAXOSD_CACERT"), "needs a TLS cluster ($PAXOSD_CACERT)")
class TLS(unittest.TestCase):
    def setUp(self):
        self.endpoints = os.environ["PAXOSD_ENDPOINTS"]
        self.other = os.environ["PAXOSD_OTHER_CA_DIR"]

    def client(self, tls, timeout=10):
        c = paxosd.Client(self.endpoints, timeout=timeout, dial_timeout=2, tls=tls)
        self.addCleanup(c.close)
        return c

    def test_kv_lock_and_status(self):
        c = self.client(paxosd.tls_context())  # the files from the environment
        c.put("python-tls/k", "over TLS")
        self.assertEqual(c.get("python-tls/k").value, b"over TLS")
        with c.session(ttl=5) as s:
            with s.lock("python-tls/lock") as lock:
                self.assertGreater(lock.token, 0)
        self.assertTrue(any(m.role == "leader" for m in c.status()))

    def test_refusals(self):
        other_ca = os.path.join(self.other, "ca.crt")
        mallory = (os.path.join(self.other, "mallory.crt"), os.path.join(self.other, "mallory.key"))
        for name, tls in [
            ("plaintext", None),
            ("a CA that did not sign the nodes", paxosd.tls_context(other_ca, *mallory)),
            ("a client certificate of another CA", paxosd.tls_context(os.environ["PAXOSD_CACERT"], *mallory)),
        ]:
            with self.subTest(name):
                with self.assertRaises(errors.PaxosdError):
                    self.client(tls, timeout=3).put("mallory/x", "1")
        key = os.environ.pop("PAXOSD_KEY")  # a certificate without its key
        try:
            with self.assertRaises(ValueError):
                paxosd.tls_context(os.environ["PAXOSD_CACERT"], cert=mallory[0])
        finally:
            os.environ["PAXOSD_KEY"] = key


if __name__ == "__main__":
    unittest.main()
