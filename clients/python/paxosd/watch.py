"""Watches (PROTOCOL.md §4, "Streams"): an iterator of WatchEvent that
resumes on another endpoint, from the revision after the last it
reported, when its connection breaks."""

import time
from collections import namedtuple

from . import errors, wire

WatchProgress = namedtuple("WatchProgress", "revision")
WatchProgress.__doc__ = ("A watch's position moved without a change of its keys (Watch with "
                         "progress=True): every matching change up to revision was delivered.")


# Stream ends to resume from: Unavailable, NotLeader, Timeout (the node
# cannot serve it now) and SlowWatcher (protocol 15; an older client is
# told Unavailable).
_RESUME = (wire.ERR_UNAVAILABLE, wire.ERR_NOT_LEADER, wire.ERR_TIMEOUT, wire.ERR_SLOW_WATCHER)


class _ResumingStream:
    """A stream opened again from where it was after a lost connection.
    Subclasses set OP, _fields() (the request's fields to resume from the
    current position) and _take(resp) (what one response yields)."""

    OP = None

    def __init__(self, client):
        self.client = client
        self._stream = None   # None: to be (re)opened
        self._buf = []
        self._ended = False   # the stream is over (stream_end, or cancelled)
        self._backoff = 0.05  # before resuming after an end (reset by items)
        if not self._open(time.monotonic() + client.timeout):
            raise errors.NoEndpointError("cannot open the stream: no endpoint answered")

    def _open(self, deadline):
        """Open the stream from the current position; False if deadline
        (None: never) passed first."""
        delay = 0.05
        while True:
            try:
                self._stream = self.client.stream(self.OP, **self._fields())
                return True
            except errors.UnavailableError:
                if self._ended or (deadline is not None and time.monotonic() + delay > deadline):
                    return False
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def __iter__(self):
        return self

    def __next__(self):
        item = self.next(timeout=None)
        if item is None:
            raise StopIteration
        return item

    def next(self, timeout=None):
        """The next item, or None when timeout seconds pass first or the
        stream has ended (cancelled). Raises the error that ended it
        otherwise (CompactedError: the history to resume from is gone). A
        lost connection is not an end: the stream is opened again, on any
        endpoint, from where it was."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._buf:
            if self._ended and self._stream is None:
                return None
            if self._stream is None and not self._open(deadline):
                return None
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                resp = self._stream.get(left)
            except errors.ConnectionLostError:
                self._stream = None  # resume elsewhere from the last position
                continue
            if resp is None:
                return None
            if resp.stream_end:
                if resp.err in _RESUME:
                    # The node is going away (or has no quorum), or found
                    # this stream too slow: resume from the position,
                    # elsewhere, after a pause that grows while every
                    # member answers so (a partition: no storm of
                    # reconnections).
                    self.client._drop(self._stream.conn)
                    self._stream = None
                    time.sleep(self._backoff)
                    self._backoff = min(self._backoff * 2, 1.0)
                    continue
                self._stream = None
                self._ended = True
                if resp.err == wire.ERR_CANCELED:
                    break
                if resp.err:
                    raise errors.from_response(resp)
            self._take(resp)
            if resp.events or getattr(resp.leader, "seq", 0):
                self._backoff = 0.05  # a change came: the stream works
        return self._buf.pop(0) if self._buf else None

    def cancel(self):
        """Stop the stream (Cancel on its connection); next() then returns
        what was already delivered, then None."""
        self._ended = True
        if self._stream is not None:
            self._stream.cancel()
            if self._stream.conn.closed:
                self._stream = None

    close = cancel

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cancel()


class Watch(_ResumingStream):
    """The changes of a key (or of every key starting with it) from a
    revision on, as WatchEvent objects (type 1 put, 2 delete; kv.mod_revision
    the change's revision; prev_kv the pair before it, key "" if none).

    start_revision: the revision the watch starts after, from the server's
    acknowledgement; revision: the watch's position, the last event's
    revision or a later one from a progress notification (protocol 11: a
    node tells an idle watch how far it is up to date, past the changes of
    other keys); every matching change up to it was delivered, and the
    watch resumes after it. With progress=True the iteration also yields
    a WatchProgress(revision) whenever the position moves without an
    event (first where a watch "from now" starts): a program that stores
    it resumes later with from_revision=revision + 1."""

    OP = wire.OP_WATCH

    def __init__(self, client, key, prefix=False, from_revision=0, progress=False):
        self.key, self.prefix = key, prefix
        self.from_revision = from_revision
        self.progress = progress
        self.start_revision = None
        self.revision = from_revision - 1 if from_revision else None
        self._acked = False
        super().__init__(client)
        # The acknowledgement comes first: wait for it, so that a watch
        # "from now" has a position before anything is written.
        while not self._acked and self._stream is not None:
            resp = self._stream.get(self.client.timeout)
            if resp is None:
                self.cancel()
                raise errors.TimeoutError("watch %r: no acknowledgement" % key)
            if resp.stream_end:
                self._stream = None
                self._ended = True
                raise errors.from_response(resp)
            self._take(resp)

    def _fields(self):
        frm = self.from_revision if self.revision is None else self.revision + 1
        self._acked = False
        return dict(key=self.key, watch_prefix=self.prefix, from_revision=frm)

    def _take(self, resp):
        if not self._acked:
            # The first response of each (re)opened watch: err 0, no
            # events, revision = the revision it starts after.
            self._acked = True
            if self.start_revision is None:
                self.start_revision = resp.revision
            if self.revision is None:
                self.revision = resp.revision
                if self.progress:
                    self._buf.append(WatchProgress(resp.revision))
            return
        if not resp.events and not resp.stream_end and not resp.err:
            # A progress notification (protocol 11).
            if resp.revision > self.revision:
                self.revision = resp.revision
                if self.progress:
                    self._buf.append(WatchProgress(resp.revision))
            return
        for ev in resp.events:
            self.revision = ev.kv.mod_revision
            self._buf.append(ev)
