"""Sessions (with a background keep-alive thread) and locks with fencing
tokens (PROTOCOL.md §4, "Sessions", "Locks and fencing")."""

import threading
import time

from . import errors, wire


class Session:
    """A session of the cluster. Kept alive every ttl/3 by a daemon thread;
    the client counts the TTL itself from when it *sent* the last answered
    keep-alive, so it takes the session as lost before the cluster can
    have expired it. Use as a context manager, or close() it."""

    def __init__(self, client, ttl=10.0, keepalive=True):
        self.client = client
        self.ttl = float(ttl)
        sent = time.monotonic()
        r = client.call(wire.OP_SESSION_OPEN, ttl_ms=int(self.ttl * 1000))
        self.id = r.session.id
        self.info = r.session
        self._valid_until = sent + r.session.ttl_ms / 1000.0
        self._stop = threading.Event()
        self.lost = threading.Event()  # set once the session is lost or closed
        self.lost_reason = None
        self._thread = None
        if keepalive:
            self._thread = threading.Thread(target=self._keepalive_loop, name="paxosd-session %d" % self.id, daemon=True)
            self._thread.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "Session(id=%d, ttl=%gs%s)" % (self.id, self.ttl, ", lost" if self.lost.is_set() else "")

    @property
    def alive(self):
        """True while the session's TTL, counted by the client, has not run
        out and it is not known to have ended."""
        return not self.lost.is_set() and time.monotonic() < self._valid_until

    def keepalive(self):
        """Restart the session's TTL once; raises SessionExpiredError if it
        has ended (and marks it lost)."""
        sent = time.monotonic()
        try:
            r = self.client.call(wire.OP_SESSION_KEEPALIVE, timeout=max(self.ttl / 3, 1.0), session_id=self.id)
        except errors.SessionExpiredError as e:
            self._mark_lost("expired: %s" % e)
            raise
        self.info = r.session
        self._valid_until = max(self._valid_until, sent + r.session.ttl_ms / 1000.0)
        return r.session

    def _keepalive_loop(self):
        interval = self.ttl / 3
        while not self._stop.wait(interval):
            try:
                self.keepalive()
                interval = self.ttl / 3
            except errors.SessionExpiredError:
                return
            except (errors.PaxosdError, OSError) as e:
                # Retry sooner; the session is lost once its TTL, as the
                # client counts it, runs out.
                if time.monotonic() >= self._valid_until:
                    self._mark_lost("no keep-alive answered within the TTL: %s" % e)
                    return
                interval = min(self.ttl / 10, 0.5)
                continue
            if time.monotonic() >= self._valid_until:
                self._mark_lost("keep-alives too slow for the TTL")
                return

    def _mark_lost(self, why):
        if not self.lost.is_set():
            self.lost_reason = why
            self.lost.set()
        self._stop.set()

    def close(self):
        """End the session: everything it holds is released, its waits and
        candidacies withdrawn. Idempotent."""
        if self._stop.is_set() and self.lost.is_set():
            return
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        was_lost = self.lost.is_set()
        self._mark_lost("closed")
        if was_lost:
            return
        try:
            self.client.call(wire.OP_SESSION_CLOSE, session_id=self.id)
        except errors.SessionExpiredError:
            pass

    # --- locks -------------------------------------------------------------

    def lock(self, name, wait=True, timeout=None, lock_delay=0.0):
        """Acquire lock name for this session and return a Lock with its
        fencing token.

        wait=False: fail at once with LockHeldError if the lock is held (or
        kept free by a lock-delay, or has waiters). wait=True: block until
        granted, or until timeout seconds (None: for ever); a wait that
        gives up withdraws the session from the queue (LockRelease) and
        raises TimeoutError. lock_delay: seconds the lock stays free if
        this session expires holding it.
        """
        fields = dict(name=name, session_id=self.id, wait=wait, lock_delay_ms=int(lock_delay * 1000))
        if not wait:
            r = self.client.call(wire.OP_LOCK_ACQUIRE, timeout=timeout, **fields)
            return Lock(self, name, r.token, r.lock)
        try:
            r = self.client.call(wire.OP_LOCK_ACQUIRE, timeout=timeout, blocking=True, **fields)
        except (errors.TimeoutError, errors.UnavailableError):
            # A wait is cluster state: the session stays in the queue (and
            # may even be granted the lock) until it releases.
            self._withdraw(name)
            raise
        return Lock(self, name, r.token, r.lock)

    def _withdraw(self, name):
        try:
            self.client.call(wire.OP_LOCK_RELEASE, name=name, session_id=self.id)
        except errors.PaxosdError:
            pass

    def try_lock(self, name, lock_delay=0.0):
        """lock(name, wait=False): LockHeldError if not free."""
        return self.lock(name, wait=False, lock_delay=lock_delay)


class Lock:
    """A granted lock: name, token (the fencing token), session."""

    def __init__(self, session, name, token, info=None):
        self.session = session
        self.name = name
        self.token = token
        self.info = info
        self.released = False

    def __repr__(self):
        return "Lock(%r, token=%d, session=%d)" % (self.name, self.token, self.session.id)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()

    def release(self):
        """Release the lock (the next waiter gets it). Idempotent."""
        if self.released:
            return
        self.released = True
        try:
            self.session.client.call(wire.OP_LOCK_RELEASE, name=self.name, session_id=self.session.id)
        except (errors.NotHeldError, errors.SessionExpiredError):
            pass

    def check(self):
        """Whether this grant's token is still the holder's (linearizable)."""
        return self.session.client.lock_check(self.name, self.token)
