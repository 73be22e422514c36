"""The unit of work: one engine instance on its way to the database.

Durability: a new action result is committed before the next action runs, every pause and every
end is committed, and each commit writes the workflow row and its new audit-log rows together.
A new workflow's row is inserted (its id claimed, leased) before its first action runs, so two
starts with one id never both run it (a finished ``simple`` flow: two commits).

Leases: whoever runs a workflow holds its lease, and holds a live one whenever an action
starts. Before each action the job renews a lease that is getting old (a version-checked write
of the lease columns) and refuses to start the action if it lost the row (``store.Stale``);
while the action runs, a heartbeat thread keeps renewing it. Every write is version-checked,
so a writer that lost a race reloads and redoes instead of overwriting.
"""
from __future__ import annotations

import functools
import logging
import threading
import time
from contextlib import nullcontext

from .. import store
from ..engine import Status, Workflow
from . import counters
from .errors import Invalid, Unavailable
from .rules import state_keys

log = logging.getLogger("webapp.runtime")

# The latest time a row may hold (wake_at, updated_at, lease): the end of year 9999, the last
# time Python's datetime (and so every answer and page) can show.
MAX_MS = 253_402_300_799_999


def public(method):
    """A runtime's public call: run in the runtime's context (the Flask app's, where it has
    one) and end the thread's own session afterwards."""
    @functools.wraps(method)
    def call(self, *args, **kwargs):
        with self.context():
            try:
                return method(self, *args, **kwargs)
            finally:
                self.store.end()
    return call


def ms(seconds: float) -> int:
    return round(seconds * 1000)


_UNREAD = object()


class Stopping(Exception):
    """The process is shutting down: the job handed its workflow back before an action."""


class Job:
    """Persists one engine instance: each commit writes the row and the log entries appended
    since the last commit, checked against the version it last wrote.

    Row times follow the operation's clock: ``now`` (the time the operation runs at) plus
    however far the runtime's ``clock`` has moved since the job was made (nothing, for a
    test's fake clock; the time a long run takes, for the real one). Leases follow the
    runtime's ``clock`` itself, as runners claim by it.
    """

    def __init__(self, wf: Workflow, *, id: str, flow: str, owner: str, version: int | None,
                 log_count: int, created_at: int, store: store.Store, now: float,
                 lease_ms: int, lease_expires: int | None = None,
                 stopping: threading.Event | None = None, clock=None,
                 heartbeat: Heartbeat | None = None, flow_version: str | None = None,
                 history: bool = False, stats: bool = False,
                 was: tuple[str, str] | None = None):
        self.wf, self.id, self.flow, self.owner = wf, id, flow, owner
        self.flow_version = flow_version       # the version of its flow it runs on
        self.version = version        # None: not inserted yet
        self.log_count = log_count
        self.created_at = created_at
        self.store = store
        self.clock = clock or time.time        # the runtime's clock: leases are kept by it
        self.now, self._started = now, self.clock()
        self.lease_ms = lease_ms
        self.saved = 0                # entries of wf's log list already written
        self.written: store.Record | None = None
        self.lease_expires = lease_expires     # ms; the lease this job holds, if any
        self.heartbeat = heartbeat             # renews the lease while an action runs
        self._beating = False
        self.stopping = stopping               # set: hand the workflow back before an action
        self.lost = False                      # a heartbeat found the row taken over
        self._lock = threading.RLock()         # the job's own writes and the heartbeat's
        # History (TINYFLOW_HISTORY): the step visits begun since the last commit, written by
        # the next one; the state text of the last visit recorded (None: none known, so the
        # next is stored whole; _UNREAD: not looked up yet).
        self.history = history
        self.visits: list[dict] = []
        self._last_state = None if version is None else _UNREAD
        # Flow statistics (TINYFLOW_STATS): the (status, step) the row was at, and when its
        # open visit began (ms; looked up from the log only if a commit ends a visit begun
        # before this job).
        self.stats = stats
        self.was = was
        self.was_version = flow_version        # the version the row records (a migration
                                               # changes flow_version: counted as it moves)
        self._began = None if version is None else (lambda: self.store.visit_began(self.id))
        # Search attributes: the flow's paths, and the keys of the state text last indexed
        # (computed again only when the state changed).
        self.search = getattr(type(wf), "search_attributes", ())
        self._indexed: tuple[str, list] | None = None

    @classmethod
    def of(cls, wf: Workflow, record: store.Record, owner: str, **context) -> Job:
        return cls(wf, id=record.id, flow=record.flow, owner=owner, version=record.version,
                   log_count=record.log_count, created_at=record.created_at,
                   flow_version=record.flow_version, was=(record.status, record.step),
                   **context)

    def at_ms(self) -> int:
        """The operation's clock now, in epoch ms."""
        return ms(self.now + (self.clock() - self._started))

    def lease_now_ms(self) -> int:
        """Now on the clock leases are compared with (the runtime's, as runners claim by it)."""
        return ms(self.clock())

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
        if wake is not None and not 0 <= wake <= MAX_MS:
            raise Invalid(f"workflow {self.id!r} would wake at {wake} ms, outside the years "
                          "1970 to 9999 that can be stored; nothing was stored")
        new = doc["logs"][self.saved:]
        values = {
            "flow": self.flow, "step": doc["step"], "status": str(status),
            "state": store.dumps(doc["state"]), "cache": store.dumps(doc["cache"]),
            "system": store.dumps(doc["system"]),
            "inbox": store.dumps(doc["inbox"]) if doc.get("inbox") else None,
            "error": store.dumps(doc["error"]) if doc.get("error") else None,
            "wake_at": wake,
            "lease_owner": self.owner if lease else None,
            "lease_expires": self.lease_now_ms() + self.lease_ms if lease else None,
            "version": (self.version or 0) + 1,
            "log_count": self.log_count + len(new),
            "updated_at": at,
            "flow_version": self.flow_version, "migrate_error": None,
        }
        if self.version is None:
            values["created_at"] = self.created_at
        return values, new

    def stat_rows(self, values: dict, new: list, *,
                  began=_UNREAD) -> tuple[list[dict] | None, object]:
        """The flow statistics' counter deltas of a commit of ``values`` appending ``new``
        (None with TINYFLOW_STATS off), and when the open visit began after it. ``began``:
        when the open visit began (ms or None) if the caller read it already (a batch reads
        its chunk's at once); else it is looked up when needed."""
        if not self.stats:
            return None, self._began
        tally = counters.Tally(self.flow)
        began = counters.deltas(tally, self.created_at, self.was,
                                (values["status"], values["step"]), new,
                                self._began if began is _UNREAD else began,
                                (self.was_version, values["flow_version"]))
        return tally.rows(), began
    def attrs(self, values: dict) -> list[dict] | None:
        """The search-attribute rows of the commit of ``values`` (None: the flow declares
        none): every declared path's key, each carrying the commit's ``updated_at`` and
        ``status``."""
        if not self.search:
            return None
        text = values["state"]
        if self._indexed is None or self._indexed[0] != text:
            self._indexed = (text, state_keys(self.search, self.wf.state))
        return store.attr_params(self.id, self.flow, self._indexed[1], values["updated_at"],
                                 values["status"])

    def commit(self, *, lease: bool, event_key: str | None = None) -> None:
        """Write the row (``lease``: keep holding it); store.Stale, store.Duplicate, or
        Unavailable when the database stays locked."""
        values, new = self.values(lease=lease)
        with self._lock:
            counted, began = self.stat_rows(values, new)
            try:
                self.store.write(self.id, self.version, values,
                                 store.log_params(self.id, self.log_count + 1, new), event_key,
                                 visits=self.visits, stats=counted,
                                 attrs=self.attrs(values))
            except store.Busy as error:
                raise Unavailable(str(error)) from None
            self.was, self._began = (values["status"], values["step"]), began
            self.was_version = values["flow_version"]
            self.visits = []
            self.version = values["version"]
            self.lease_expires = values["lease_expires"]
        self.log_count = values["log_count"]
        self.saved += len(new)
        self.written = store.Record(id=self.id, created_at=self.created_at,
                                    **{k: v for k, v in values.items() if k != "created_at"})

    # -- history ----------------------------------------------------------------------------

    def record_visit(self, seq: int, step: str, at: int | None, log_n: int, state: dict,
                     **origin) -> None:
        """Note the visit ``seq`` of ``step`` that begins now with ``state`` (written by the
        next commit): the state's text when it differs from the last visit's, else NULL.
        ``origin`` (a fork's first visit: ``forked_from``, ``forked_seq``) stores it whole."""
        text = store.dumps(state)
        if self._last_state is _UNREAD:
            found = self.store.state_before(self.id, 2 ** 62)
            self._last_state = None if found is None or found.unknown else found.state_json
        same = text == self._last_state and not origin
        self.visits.append(store.visit_params(self.id, seq, step, at, log_n,
                                              None if same else text, **origin))
        self._last_state = text

    def _transition(self) -> None:
        """At a transition checkpoint: the visit it begins."""
        wf = self.wf
        logs = wf.to_json()["logs"]
        entry = logs[-1]              # the transition's own entry
        values = entry.get("values") or {}
        self.record_visit(values.get("stepSeq", 0), wf.step, entry.get("_at"),
                          self.log_count + len(logs) - self.saved, wf.state)

    # -- the lease --------------------------------------------------------------------------

    def renew(self) -> None:
        """Extend this job's lease by a full lease from now: a version-checked write of the
        lease columns only (unsaved results stay unsaved); store.Stale if the row changed
        (another runner took it over), Unavailable if the database stays locked."""
        with self._lock:
            expires = self.lease_now_ms() + self.lease_ms
            try:
                self.store.renew(self.id, self.version, self.owner, expires)
            except store.Busy as error:
                raise Unavailable(str(error)) from None
            self.version += 1
            self.lease_expires = expires
            if self.written is not None:
                self.written = self.written.changed(version=self.version,
                                                    lease_owner=self.owner,
                                                    lease_expires=expires)

    def keep_lease(self) -> None:
        """Before an action: make sure this job holds a lease with at least half of it left
        (renew it if not); store.Stale if the row is not ours any more."""
        if self.lost:
            raise store.Stale(self.id)
        if self.version is None:
            return
        left = None if self.lease_expires is None else self.lease_expires - self.lease_now_ms()
        if left is None or left < self.lease_ms / 2:
            self.renew()

    def run(self, now: float) -> None:
        """Run until the workflow waits or ends. A new workflow's row is inserted (leased)
        before its first action runs; a new action result is committed just before the next
        action runs (so a committed result never runs again); before every action the lease
        is checked and renewed if old, and a heartbeat renews it while the action runs; the
        pause or end is committed, and the last commit gives the lease back.

        store.Stale: the row was taken over (no action was started without a live lease).
        Stopping: ``stopping`` was set; the workflow was handed back (committed, no lease)
        before its next action."""
        unsaved = False
        beating = False
        try:
            for checkpoint in self.wf.exec(now, before_actions=True):
                if beating:                   # the action that was running has ended
                    self.heartbeat.remove(self)
                    beating = False
                if checkpoint.kind == "action":
                    unsaved = True
                elif checkpoint.kind == "transition":
                    if self.history:
                        self._transition()
                elif checkpoint.kind == "before_action":
                    if self.stopping is not None and self.stopping.is_set():
                        self.commit(lease=False)      # hand it back: due at once
                        raise Stopping(self.id)
                    if unsaved or self.version is None:
                        self.commit(lease=True)       # the result, or the id's claim
                        unsaved = False
                    else:
                        self.keep_lease()
                    if self.heartbeat is not None:
                        self.heartbeat.add(self)
                        beating = True
        finally:
            if beating:
                self.heartbeat.remove(self)
        if self.lost:
            raise store.Stale(self.id)
        self.commit(lease=False)


class Heartbeat:
    """One thread that renews the leases of the jobs whose action is running, each every third
    of its lease (as Temporal's activity heartbeats), in ``context`` (the Flask app's). A job
    is added when its action starts and removed when it ends; a renewal never overlaps the
    job's own writes (they share its lock), and none happens after it was removed."""

    def __init__(self, context=None):
        self.context = context or nullcontext
        self._jobs: dict[int, list] = {}        # id(job) -> [job, when last renewed]
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, job: Job) -> None:
        with job._lock:
            job._beating = True
        with self._cond:
            self._jobs[id(job)] = [job, time.monotonic()]
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="tiny-workflow-leases",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()

    def remove(self, job: Job) -> None:
        with job._lock:                 # waits for a renewal in progress
            job._beating = False
        with self._cond:
            self._jobs.pop(id(job), None)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._jobs:
                    self._cond.wait()
                now = time.monotonic()
                due = [entry for entry in self._jobs.values()
                       if now - entry[1] >= entry[0].lease_ms / 3000]
                if not due:
                    nearest = min(entry[1] + entry[0].lease_ms / 3000
                                  for entry in self._jobs.values())
                    self._cond.wait(max(0.01, min(1.0, nearest - now)))
                    continue
                for entry in due:
                    entry[1] = now
            for job, _ in due:
                self._beat(job)

    def _beat(self, job: Job) -> None:
        with self.context():
            try:
                with job._lock:
                    if not job._beating:
                        return
                    try:
                        job.renew()
                    except store.Stale:
                        job.lost = True
                        job._beating = False
                        log.warning("workflow %s was taken over while its action ran",
                                    job.id)
            except Exception:               # the database is away: try again next beat
                log.warning("could not renew the lease of workflow %s", job.id,
                            exc_info=True)
            finally:
                job.store.end()
