"""The unit of work: one engine instance on its way to the database.

Durability: a new action result is committed before the next action runs, every pause and every
end is committed, and each commit writes the workflow row and its new audit-log rows together
(a finished ``simple`` flow: one commit). Whoever runs a workflow holds its lease; every write
is version-checked, so a writer that lost a race reloads and redoes instead of overwriting.
"""
from __future__ import annotations

from .. import store
from ..engine import Status, Workflow
from .errors import Unavailable


def ms(seconds: float) -> int:
    return round(seconds * 1000)


class Job:
    """Persists one engine instance: each commit writes the row and the log entries appended
    since the last commit, checked against the version it last wrote.

    Row times and leases follow the operation's clock: ``now`` (the time the operation runs
    at) plus however far the runtime's ``clock`` has moved since the job was made (nothing,
    for a test's fake clock; the time a long run takes, for the real one).
    """

    def __init__(self, wf: Workflow, *, id: str, flow: str, owner: str, version: int | None,
                 log_count: int, created_at: int, store: store.Store, now: float,
                 clock, lease_ms: int):
        self.wf, self.id, self.flow, self.owner = wf, id, flow, owner
        self.version = version        # None: not inserted yet
        self.log_count = log_count
        self.created_at = created_at
        self.store = store
        self.now, self.clock = now, clock
        self._started = clock()
        self.lease_ms = lease_ms
        self.saved = 0                # entries of wf's log list already written
        self.written: store.Record | None = None

    @classmethod
    def of(cls, wf: Workflow, record: store.Record, owner: str, **context) -> Job:
        return cls(wf, id=record.id, flow=record.flow, owner=owner, version=record.version,
                   log_count=record.log_count, created_at=record.created_at, **context)

    def at_ms(self) -> int:
        """The operation's clock now, in epoch ms."""
        return ms(self.now + (self.clock() - self._started))

    def values(self, *, lease: bool) -> tuple[dict, list]:
        """The row values of the next commit, and the log entries it appends."""
        doc = self.wf.to_json()
        status = doc["status"]
        at = self.at_ms()
        if status == Status.RUNNING:
            wake = at
        elif status == Status.WAITING:
            wake_s = self.wf.wake_at()
            wake = None if wake_s is None else ms(wake_s)
        else:
            wake = None
        new = doc["logs"][self.saved:]
        values = {
            "flow": self.flow, "step": doc["step"], "status": str(status),
            "state": store.dumps(doc["state"]), "cache": store.dumps(doc["cache"]),
            "system": store.dumps(doc["system"]),
            "inbox": store.dumps(doc["inbox"]) if doc.get("inbox") else None,
            "error": store.dumps(doc["error"]) if doc.get("error") else None,
            "wake_at": wake,
            "lease_owner": self.owner if lease else None,
            "lease_expires": at + self.lease_ms if lease else None,
            "version": (self.version or 0) + 1,
            "log_count": self.log_count + len(new),
            "updated_at": at,
        }
        if self.version is None:
            values["created_at"] = self.created_at
        return values, new

    def commit(self, *, lease: bool, event_key: str | None = None) -> None:
        """Write the row (``lease``: keep holding it); store.Stale, store.Duplicate, or
        Unavailable when the database stays locked."""
        values, new = self.values(lease=lease)
        try:
            self.store.write(self.id, self.version, values,
                             store.log_params(self.id, self.log_count + 1, new), event_key)
        except store.Busy as error:
            raise Unavailable(str(error)) from None
        self.version = values["version"]
        self.log_count = values["log_count"]
        self.saved += len(new)
        self.written = store.Record(id=self.id, created_at=self.created_at,
                                    **{k: v for k, v in values.items() if k != "created_at"})

    def run(self, now: float) -> None:
        """Run until the workflow waits or ends. A new action result is committed just before
        the next action runs (so a committed result never runs again), and the pause or end
        is committed; the last commit gives the lease back."""
        unsaved = False
        for checkpoint in self.wf.exec(now, before_actions=True):
            if checkpoint.kind == "action":
                unsaved = True
            elif checkpoint.kind == "before_action" and unsaved:
                self.commit(lease=True)
                unsaved = False
        self.commit(lease=False)
