"""TLS for the Python client (docs/SECURITY.md): the cluster's CA, and a
client certificate when the nodes run with --client-cert-auth (its
CommonName is the user when auth is enabled)."""

import os
import ssl


def tls_context(cacert=None, cert=None, key=None):
    """An ssl.SSLContext for Client(tls=...): trusts the CA in cacert (a
    PEM bundle) and presents cert/key (PEM files) when given. Missing
    arguments are read from $PAXOSD_CACERT, $PAXOSD_CERT and $PAXOSD_KEY,
    as the CLI does. TLS 1.2 or later; the node's certificate must name
    the host or IP address the client dials."""
    cacert = cacert or os.environ.get("PAXOSD_CACERT")
    cert = cert or os.environ.get("PAXOSD_CERT")
    key = key or os.environ.get("PAXOSD_KEY")
    if not cacert:
        raise ValueError("tls_context: the cluster's CA certificate is needed (cacert=, or $PAXOSD_CACERT)")
    if bool(cert) != bool(key):
        raise ValueError("tls_context: a client certificate needs its key, and a key its certificate (cert=, key=)")
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cacert)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx
