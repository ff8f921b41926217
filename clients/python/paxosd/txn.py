"""Transactions (PROTOCOL.md §4, "Transactions"; protocol 8, cluster level
8), etcd's shape: compares, and two branches of operations applied as one
command. Build the parts with the functions here and pass them to
Client.txn:

    from paxosd import compare, lock_token, value, op_put, op_get

    r = c.txn([compare(lock_token("acct/lock"), "=", lk.token),
               compare(value("acct/a"), "=", b"100")],
              then_ops=[op_put("acct/a", b"90"), op_put("acct/b", b"110")],
              else_ops=[op_get("acct/a")])
    r.succeeded, r.revision, r.results   # results: one TxnResult per op that ran

Every compare is read on the state before the transaction; when all hold
(or there are none) then_ops run, else else_ops. The writes of the branch
share one revision and reach a watcher in one response. A compare that
does not hold is no error (succeeded False)."""

from collections import namedtuple

from . import wire

TxnResponse = namedtuple("TxnResponse", "succeeded revision results")
TxnResponse.__doc__ = ("succeeded: every compare held and then_ops ran (else else_ops did); "
                       "revision: the store's after the transaction (its writes', if it wrote); "
                       "results: one wire.TxnResult per operation of the branch that ran "
                       "(.found/.kv, .kvs/.more for a prefix get, .deleted for a delete).")

_Target = namedtuple("_Target", "target key")

_RELATIONS = {"=": wire.CMP_EQUAL, "==": wire.CMP_EQUAL, "!=": wire.CMP_NOT_EQUAL,
              "<": wire.CMP_LESS, ">": wire.CMP_GREATER}


def value(key):
    """The key's value (bytes; a str operand is UTF-8). A value compare on
    a missing key never holds."""
    return _Target(wire.CMP_VALUE, key)


def version(key):
    """The key's version: its writes since it was created (0: missing)."""
    return _Target(wire.CMP_VERSION, key)


def create_revision(key):
    """The revision that created the key (0: missing)."""
    return _Target(wire.CMP_CREATE, key)


def mod_revision(key):
    """The revision that last changed the key (0: missing)."""
    return _Target(wire.CMP_MOD, key)


def exists(key):
    """Whether the key exists: compare with True/False (or 1/0)."""
    return _Target(wire.CMP_EXISTS, key)


def lock_token(name):
    """The fencing token of lock name while it is held, 0 while it is free:
    compare(lock_token(name), "=", lk.token) holds exactly when a write
    fenced by lk would apply, so a fenced multi-key write is one txn."""
    return _Target(wire.CMP_TOKEN, name)


def compare(target, relation, operand):
    """The condition target <relation> operand, relation one of "=" (or
    "=="), "!=", "<", ">". operand: bytes or str for value(), a bool or
    integer for exists(), a non-negative integer otherwise."""
    if not isinstance(target, _Target):
        raise TypeError("compare: the target is value(k), version(k), create_revision(k), "
                        "mod_revision(k), exists(k) or lock_token(name), not %r" % (target,))
    if relation not in _RELATIONS:
        raise ValueError("compare: relation %r: want =, !=, < or >" % (relation,))
    c = wire.Compare(target=target.target, result=_RELATIONS[relation], key=target.key)
    if target.target == wire.CMP_VALUE:
        if isinstance(operand, str):
            operand = operand.encode()
        if not isinstance(operand, (bytes, bytearray)):
            raise TypeError("compare: a value compare of %r takes bytes or str, not %r" % (target.key, operand))
        c.value = bytes(operand)
        return c
    if isinstance(operand, bool):
        if target.target != wire.CMP_EXISTS:
            raise TypeError("compare: only exists() compares with a bool")
        operand = int(operand)
    if not isinstance(operand, int) or operand < 0:
        raise ValueError("compare: %r takes a non-negative integer, not %r" % (target.key, operand))
    c.number = operand
    return c


def op_put(key, value):
    """Set key to value (bytes, or str as UTF-8); its result's found/kv is
    the pair it replaced."""
    return wire.TxnOp(type=wire.TXN_PUT, key=key, value=value)


def op_delete(key, prefix=False):
    """Delete key (prefix: every key starting with it, not ""); its
    result's deleted counts the keys removed (a missing key is no error)."""
    return wire.TxnOp(type=wire.TXN_DELETE, key=key, prefix=prefix)


def op_get(key, prefix=False, limit=0):
    """Read key (its result's found/kv); prefix: the keys starting with
    it, at most limit (0: all), as the result's kvs and more."""
    return wire.TxnOp(type=wire.TXN_GET, key=key, prefix=prefix, limit=limit)
