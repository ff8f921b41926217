"""Elections (PROTOCOL.md §4, "Elections"): campaign, proclaim, resign,
leader, observe."""

from . import errors, wire
from .watch import _ResumingStream


class Election:
    """Election name of the client's cluster. Each leader gets a term
    greater than every earlier fencing token: usable as one."""

    def __init__(self, client, name):
        self.client = client
        self.name = name

    def campaign(self, session, value=b"", timeout=None):
        """Queue session as a candidate and block until it leads (or
        timeout seconds pass: the candidacy is then withdrawn and
        TimeoutError raised). Returns the LeaderInfo (its term)."""
        try:
            r = self.client.call(wire.OP_CAMPAIGN, timeout=timeout, blocking=True,
                                 name=self.name, session_id=session.id, value=value)
        except (errors.TimeoutError, errors.UnavailableError):
            try:
                self.resign(session)
            except errors.PaxosdError:
                pass
            raise
        return r.leader

    def proclaim(self, session, value):
        """Publish a new value as the leader; NotElectionLeaderError if the
        session does not lead."""
        return self.client.call(wire.OP_PROCLAIM, name=self.name, session_id=session.id, value=value).leader

    def resign(self, session):
        """Give up leadership (or a candidacy); returns the new state."""
        return self.client.call(wire.OP_RESIGN, name=self.name, session_id=session.id).leader

    def leader(self):
        """The current LeaderInfo, or None when nobody leads."""
        r = self.client.call(wire.OP_LEADER, raise_error=False, name=self.name)
        if r.err == wire.ERR_NOT_FOUND:
            return None
        if r.err:
            raise errors.from_response(r)
        return r.leader

    def observe(self, after_seq=0):
        """An iterator of LeaderInfo, one per change (seq without gaps),
        starting with the current state when after_seq is 0."""
        return Observer(self.client, self.name, after_seq)


class Observer(_ResumingStream):
    OP = wire.OP_OBSERVE

    def __init__(self, client, name, after_seq=0):
        self.name = name
        self.seq = after_seq
        super().__init__(client)

    def _fields(self):
        return dict(name=self.name, after_seq=self.seq)

    def _take(self, resp):
        if resp.leader.seq == 0:  # not a change
            return
        self.seq = resp.leader.seq
        self._buf.append(resp.leader)
