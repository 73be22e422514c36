"""Many workflows at once: start, run, deliver events, fire timers, leases.

Every function runs inside a Flask app context (flask-sqlalchemy's ``db.session``). Times given
as ``now`` are epoch seconds; ``None`` means the runtime's clock
(``current_app.config["TINYFLOW_CLOCK"]``, default ``time.time``).

Durability: a new action result is committed before the next action runs, every pause and every
end is committed, and each commit writes the workflow row and its new audit-log rows together
(a finished ``simple`` flow: one commit). Whoever runs a workflow holds its lease; every write
is version-checked, so a writer that lost a race reloads and redoes instead of overwriting.
"""
from __future__ import annotations

import base64
import binascii
import copy
import importlib
import json
import logging
import math
import os
import pkgutil
import re
import socket
import threading
import time
import uuid
from datetime import datetime, timezone

from flask import current_app

from . import store
from .engine import Status, Workflow, WorkflowClosed
from .engine.workflow import to_seconds

log = logging.getLogger(__name__)

_REDO = 5                 # version misses tolerated before giving up
_ACTIVE = (Status.RUNNING, Status.WAITING)
_STATUSES = frozenset(Status)
_MAX_ID = 200


class RuntimeProblem(Exception):
    """Base of the errors the API turns into JSON answers."""

    status = 400
    code = "bad_request"


class NotFound(RuntimeProblem):
    """Unknown workflow, flow, event handler or wait (404)."""

    status = 404
    code = "not_found"


class Conflict(RuntimeProblem):
    """Not possible in the workflow's status (409), e.g. WorkflowClosed."""

    status = 409
    code = "conflict"


class Invalid(RuntimeProblem):
    """Well-formed request with wrong values, or a handler refused it (422)."""

    status = 422
    code = "invalid"


class Unavailable(RuntimeProblem):
    """The database stayed locked past the retries (503)."""

    status = 503
    code = "unavailable"


class Broken(RuntimeProblem):
    """The stored snapshot of a workflow cannot be read (409): that workflow cannot be shown
    in full or changed; every other one works as before."""

    status = 409
    code = "broken"


# -- flows and the clock ----------------------------------------------------------------------

def registry() -> dict:
    """``{name: WorkflowClass}`` of the flows loaded from ``TINYFLOW_FLOWS`` (cached on the app)."""
    app = current_app._get_current_object()
    flows = app.extensions.get("tinyflow.registry")
    if flows is None:
        flows = app.extensions["tinyflow.registry"] = _load_flows(app.config["TINYFLOW_FLOWS"])
    return flows


def _load_flows(modules) -> dict:
    if isinstance(modules, str):
        modules = [modules]
    flows: dict[str, type] = {}
    for name in filter(None, (m.strip() for m in modules)):
        loaded = [importlib.import_module(name)]
        if hasattr(loaded[0], "__path__"):   # a package: its modules too
            loaded += [importlib.import_module(f"{name}.{info.name}")
                       for info in pkgutil.iter_modules(loaded[0].__path__)]
        for module in loaded:
            for value in vars(module).values():
                if (isinstance(value, type) and issubclass(value, Workflow)
                        and value is not Workflow and hasattr(value, "__workflow__")):
                    other = flows.setdefault(value.__workflow__.name, value)
                    if other is not value:
                        raise RuntimeError(
                            f"two flows are named {value.__workflow__.name!r}: "
                            f"{other.__module__}.{other.__qualname__} and "
                            f"{value.__module__}.{value.__qualname__}")
    return flows


def _flow_class(name: str) -> type:
    cls = registry().get(name)
    if cls is None:
        raise NotFound(f"no flow named {name!r} (known: {', '.join(sorted(registry()))})")
    return cls


def check_json(value, what: str, *, serialise: bool = True) -> None:
    """Refuse (Invalid) a value from outside nested deeper than ``TINYFLOW_MAX_DEPTH`` levels
    (default 64: pages render JSON recursively) or, with ``serialise``, one JSON cannot hold."""
    limit = int(current_app.config.get("TINYFLOW_MAX_DEPTH", 64))
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(
            item, (list, tuple)) else None
        if children is None:
            continue
        if depth > limit:
            raise Invalid(f"{what} is nested deeper than {limit} levels")
        stack.extend((child, depth + 1) for child in children)
    if serialise:
        try:
            store.dumps(value)
        except (TypeError, ValueError) as error:
            raise Invalid(f"{what} cannot be stored as JSON: {error}") from None


def _now(now=None) -> float:
    if now is None:
        return float(current_app.config["TINYFLOW_CLOCK"]())
    try:
        return to_seconds(now)
    except (TypeError, ValueError) as error:
        raise Invalid(str(error)) from None


def _clock_ms() -> int:
    return _ms(current_app.config["TINYFLOW_CLOCK"]())


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _lease_ms() -> int:
    return _ms(float(current_app.config.get("TINYFLOW_LEASE_SECONDS", 60)))


def owner_id(kind: str = "call") -> str:
    """A lease owner name that says who holds it: kind, host, process, and a unique tail."""
    return f"{kind}:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


# -- one workflow's way to the database -------------------------------------------------------

def _document(row, logs: list) -> dict:
    """The snapshot document a row holds, with the audit log ``logs`` the caller read.
    A row that does not hold readable JSON -> Broken."""
    try:
        doc = {"step": row.step, "state": json.loads(row.state), "cache": json.loads(row.cache),
               "system": json.loads(row.system), "logs": logs, "status": row.status}
        if row.inbox:
            doc["inbox"] = json.loads(row.inbox)
        if row.error:
            doc["error"] = json.loads(row.error)
    except (ValueError, TypeError, RecursionError) as error:
        raise _broken(row.id, error) from None
    return doc


def _engine(row) -> Workflow:
    """The engine instance of a row, without its audit log (only new entries get appended).
    A row that does not hold a snapshot its flow can load -> Broken."""
    cls = _flow_class(row.flow)
    doc = _document(row, [])
    try:
        return cls.from_json(doc)
    except (ValueError, TypeError) as error:
        raise _broken(row.id, error) from None


def _broken(id: str, error: Exception) -> Broken:
    return Broken(f"workflow {id!r} is broken: its stored snapshot cannot be read "
                  f"({type(error).__name__}: {error})")


class _Job:
    """Persists one engine instance: each commit writes the row and the log entries appended
    since the last commit, checked against the version it last wrote."""

    def __init__(self, wf: Workflow, *, id: str, flow: str, owner: str, version: int | None,
                 log_count: int, created_at: int):
        self.wf, self.id, self.flow, self.owner = wf, id, flow, owner
        self.version = version        # None: not inserted yet
        self.log_count = log_count
        self.created_at = created_at
        self.saved = 0                # entries of wf's log list already written
        self.values_written: dict = {}

    @classmethod
    def of(cls, wf: Workflow, row, owner: str) -> _Job:
        return cls(wf, id=row.id, flow=row.flow, owner=owner, version=row.version,
                   log_count=row.log_count, created_at=row.created_at)

    def values(self, *, lease: bool) -> tuple[dict, list]:
        """The row values of the next commit, and the log entries it appends."""
        doc = self.wf.to_json()
        status = doc["status"]
        at = _clock_ms()
        if status == Status.RUNNING:
            wake = at
        elif status == Status.WAITING:
            wake_s = self.wf.wake_at()
            wake = None if wake_s is None else _ms(wake_s)
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
            "lease_expires": at + _lease_ms() if lease else None,
            "version": (self.version or 0) + 1,
            "log_count": self.log_count + len(new),
            "updated_at": at,
        }
        if self.version is None:
            values["created_at"] = self.created_at
        return values, new

    def commit(self, *, lease: bool, event_key: str | None = None) -> None:
        values, new = self.values(lease=lease)
        try:
            store.write(self.id, self.version, values,
                        store.log_params(self.id, self.log_count + 1, new), event_key)
        except store.Busy as error:
            raise Unavailable(str(error)) from None
        self.version = values["version"]
        self.log_count = values["log_count"]
        self.saved += len(new)
        self.values_written = values

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

    def row(self) -> store.Record:
        """The row as last written (a detached object: no query)."""
        return store.Record(**{"id": self.id, "created_at": self.created_at,
                               **self.values_written})


def _change(id: str, mutate, now=None, *, run: bool = True, event_key: str | None = None):
    """Load workflow ``id``, apply ``mutate(wf, now)`` (which may return the time to run at),
    commit that together with a lease, run and commit; redo from a fresh load when someone
    else wrote the row in between. Nothing is committed when ``mutate`` raises."""
    now = _now(now)
    owner = owner_id()
    for _ in range(_REDO):
        row = _unleased(id, owner)
        if event_key is not None and store.has_event_key(id, event_key):
            return row
        wf = _engine(row)
        run_at = mutate(wf, now)
        job = _Job.of(wf, row, owner)
        try:
            job.commit(lease=run, event_key=event_key)
        except store.Stale:
            continue
        except store.Duplicate:       # the same idempotency key, delivered meanwhile
            return get(id)
        if run:
            try:
                job.run(now if run_at is None else run_at)
            except store.Stale:       # our lease expired and another runner took over
                return get(id)
            except Unavailable:
                # The change itself was committed (accepted); a runner finishes the run once
                # our lease expires. Answering 503 would invite a retry that applies it twice.
                log.warning("database busy; workflow %s is left to a runner", id)
                return job.row()
        return job.row()
    raise Unavailable(f"workflow {id!r} kept changing; try again")


def _unleased(id: str, owner: str):
    """The row, once no other live runner holds its lease (waits a little, then Unavailable)."""
    patience = float(current_app.config.get("TINYFLOW_BUSY_WAIT", 10.0))
    deadline = time.monotonic() + patience
    while True:
        row = get(id)
        if (row.lease_owner in (None, owner) or row.lease_expires is None
                or row.lease_expires < _clock_ms()):
            return row
        if time.monotonic() >= deadline:
            raise Unavailable(f"workflow {id!r} is being run by {row.lease_owner}; try again")
        store.db.session.rollback()   # end the read, so the next one sees new commits
        time.sleep(0.02)


# ---------------------------------------------------------------------------------------------
# The API: the contract the views, the CLI and the tests share. "Row" is a workflow row: a
# plain row or a store.Record, with WorkflowRow's attributes; ``describe(row)`` is the API's
# one-workflow answer.
# ---------------------------------------------------------------------------------------------

def start(flow: str, state: dict | None = None, id: str | None = None, now=None):
    """Create a workflow of ``flow`` and run it until it waits or ends. Returns the row.
    Unknown flow -> NotFound; id taken -> Conflict; state not a dict -> Invalid."""
    cls = _flow_class(flow)
    if state is not None:
        if not isinstance(state, dict):
            raise Invalid("state must be a JSON object")
        check_json(state, "the state", serialise=False)
        try:  # the engine adopts it: give it a copy, and refuse what cannot be stored
            state = json.loads(store.dumps(state))
        except (TypeError, ValueError) as error:
            raise Invalid(f"state cannot be stored as JSON: {error}") from None
    if id is None:
        id = uuid.uuid4().hex[:16]
    elif not isinstance(id, str) or not id.strip() or len(id) > _MAX_ID:
        raise Invalid(f"a workflow id is 1 to {_MAX_ID} characters of text")
    elif store.exists([id]):
        raise Conflict(f"workflow {id!r} already exists")
    now = _now(now)
    wf = cls(state=state, now=now)
    job = _Job(wf, id=id, flow=flow, owner=owner_id(), version=None, log_count=0,
               created_at=_clock_ms())
    try:
        job.run(now)                   # its first commit inserts the row
    except store.Duplicate:
        raise Conflict(f"workflow {id!r} already exists") from None
    except store.Stale:
        return get(id)
    except Unavailable:
        if job.version is None:        # nothing was stored: the caller may simply try again
            raise
        log.warning("database busy; workflow %s is left to a runner", id)
    return job.row()


def send(id: str, name: str, payload=None, idempotency_key: str | None = None, now=None,
         outcome: dict | None = None):
    """Deliver event ``name`` (wf.send) then run. Same idempotency key twice: delivered once,
    the second call returns the row unchanged. Returns the row; ``outcome`` (a dict), when
    given, gets ``"delivered"``: ``"wait"``, ``"handler"`` or ``"inbox"`` (none when the key
    was seen before)."""
    if not isinstance(name, str) or not name:
        raise Invalid("an event needs a name")
    if len(name) > _MAX_ID:
        raise Invalid(f"an event name is at most {_MAX_ID} characters")
    check_json(payload, "the event's payload")
    if idempotency_key is not None and (not isinstance(idempotency_key, str)
                                        or not idempotency_key or len(idempotency_key) > 200):
        raise Invalid("an idempotency key is 1 to 200 characters of text")

    def mutate(wf, now):
        try:
            delivered = wf.send(name, payload, now=now)
        except WorkflowClosed as error:
            raise Conflict(str(error)) from None
        except Exception as error:    # the flow's handler refused it
            raise Invalid(str(error) or type(error).__name__) from error
        if outcome is not None:
            outcome["delivered"] = delivered
    return _change(id, mutate, now, event_key=idempotency_key)


def resolve(id: str, resume_id: str, payload=None, now=None):
    """Resolve one open wait by resumeId, then run. Unknown resumeId -> NotFound."""
    check_json(payload, "the payload")

    def mutate(wf, now):
        try:
            wf.resolve(resume_id, payload, now=now)
        except WorkflowClosed as error:
            raise Conflict(str(error)) from None
        except KeyError:
            raise NotFound(f"workflow {id!r} has no open wait {resume_id!r}") from None
    return _change(id, mutate, now)


def fire_timer(id: str, resume_id: str, now=None):
    """Fire the open timer ``resume_id`` now, then run. Not an open timer -> NotFound."""
    def mutate(wf, now):
        if not any(p["resumeId"] == resume_id and p["type"] == "timer" for p in wf.pending()):
            raise NotFound(f"workflow {id!r} has no open timer {resume_id!r}")
        wf.resolve(resume_id, None, now=now)
    return _change(id, mutate, now)


def advance(id: str, seconds: float, now=None):
    """Run the workflow as if ``seconds`` had passed: every timer and deadline that falls due
    within them fires, each at its own due time, and its clock stays that far ahead."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not (
            0 <= seconds < 1e10):
        raise Invalid("seconds must be a number from 0 up")

    def mutate(wf, now):
        if wf.status not in _ACTIVE:
            raise Conflict(f"cannot advance the timers of a {wf.status} workflow")
        # The engine fires each wait due within the seconds at its own due time, one after
        # the other, and keeps the workflow's clock that far ahead (wf._clock_offset()).
        wf._advance_clock(seconds, now=now)
    return _change(id, mutate, now)


def cancel(id: str, reason: str | None = None, now=None):
    """Cancel (closed workflow -> Conflict)."""
    def mutate(wf, now):
        try:
            wf.cancel(reason, now=now)
        except WorkflowClosed as error:
            raise Conflict(str(error)) from None
    return _change(id, mutate, now, run=False)


def retry(id: str, now=None):
    """Retry a failed workflow and run it (not failed -> Conflict)."""
    def mutate(wf, now):
        try:
            wf.retry(now=now)
        except ValueError as error:
            raise Conflict(str(error)) from None
    return _change(id, mutate, now)


def run_due(now=None, limit: int = 100, owner: str | None = None) -> int:
    """Claim (lease) and run workflows whose wake_at is due or that are ``running``; return
    how many ran. A database too busy to claim or run any -> Unavailable (not "idle")."""
    now = _now(now)
    owner = owner or owner_id("runner")
    try:
        rows = store.claim_due(_ms(now), list(registry()), owner, _lease_ms(), limit)
    except store.Busy as error:
        raise Unavailable(f"database busy: {error}") from None
    ran = 0
    for row in rows:
        try:
            _Job.of(_engine(row), row, owner).run(now)
            ran += 1
        except Broken as error:
            # Retrying cannot help: park it (no wake time, no lease) and keep it as it is.
            log.error("%s; runners leave it alone until it is repaired", error)
            try:
                store.park(row.id, row.version)
            except (store.Busy, store.Stale):
                pass              # its lease expires; the next runner parks it
        except store.Stale:
            log.info("workflow %s was taken over by another runner", row.id)
        except Unavailable:
            log.warning("database busy; workflow %s is left to a later run", row.id)
            if ran == 0:
                raise
            break
        except Exception:
            # A bug in a flow or the engine: the lease is kept, so this workflow is tried again
            # only once it expires, not in a tight loop.
            log.exception("running workflow %s failed", row.id)
    return ran


class Runner(threading.Thread):
    """Runs ``run_due`` in a loop for an app until stopped: the dashboard's background runner
    (``TINYFLOW_RUNNER``) and the body of ``tiny-workflow worker``."""

    def __init__(self, app, *, interval: float = 1.0, batch: int = 20, owner: str | None = None,
                 exit_when_idle: bool = False):
        super().__init__(name="tiny-workflow-runner", daemon=True)
        self.app = app
        self.interval = interval
        self.batch = batch
        self.owner = owner or owner_id("runner")
        self.exit_when_idle = exit_when_idle
        self.stopped = threading.Event()

    def tick(self) -> int:
        """One pass: run what is due now; how many workflows ran."""
        with self.app.app_context():
            return run_due(limit=self.batch, owner=self.owner)

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                ran = self.tick()
            except Unavailable:
                ran = None          # the database was busy: not idle, try again shortly
            except Exception:
                log.exception("the runner's pass failed")
                ran = 0
            if ran == 0 and self.exit_when_idle:
                return
            if not ran:
                self.stopped.wait(self.interval)

    def stop(self, timeout: float | None = None) -> None:
        self.stopped.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)


def start_runner(app, **options) -> Runner:
    """Start the app's background runner thread (once per app); returns it."""
    runner = app.extensions.get("tinyflow.runner")
    if runner is None or not runner.is_alive():
        runner = app.extensions["tinyflow.runner"] = Runner(app, **options)
        runner.start()
    return runner


# -- reading ----------------------------------------------------------------------------------

def get(id: str):
    """The row of workflow ``id`` -> NotFound."""
    row = store.load(id) if isinstance(id, str) else None
    if row is None:
        raise NotFound(f"no workflow {id!r}")
    return row


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return (datetime.fromtimestamp(ms / 1000, timezone.utc)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"))


def describe(row) -> dict:
    """The API's one-workflow dict for a row (no audit log)."""
    try:   # a closed workflow has no open waits: no need to load it
        pending = _engine(row).pending() if row.status in _ACTIVE else []
    except NotFound:               # its flow is not loaded here: its waits cannot be read
        pending = []
    if row.status not in _STATUSES:
        raise _broken(row.id, ValueError(f"unknown status {row.status!r}"))
    try:
        state, error = json.loads(row.state), json.loads(row.error) if row.error else None
    except ValueError as problem:
        raise _broken(row.id, problem) from None
    return {**summary(row), "state": state, "pending": pending, "error": error,
            "log_count": row.log_count}


def summary(row) -> dict:
    """The API's list item: id, flow, status, step, created_at, updated_at, wake_at."""
    return {"id": row.id, "flow": row.flow, "status": row.status, "step": row.step,
            "created_at": _iso(row.created_at), "updated_at": _iso(row.updated_at),
            "wake_at": _iso(row.wake_at)}


def _encode_cursor(value) -> str:
    return base64.urlsafe_b64encode(store.dumps(value).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str):
    try:
        return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, TypeError):
        raise Invalid("the cursor is not one this server gave out") from None


def _limit(limit, most: int = 500) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise Invalid("limit must be a whole number from 1 up")
    return min(limit, most)


def list_workflows(flows=(), statuses=(), q: str | None = None, cursor: str | None = None,
                   limit: int = 50) -> tuple[list, str | None]:
    """Rows newest-updated first with keyset pagination: (rows, next_cursor or None)."""
    limit = _limit(limit)
    after = None
    if cursor:
        after = _decode_cursor(cursor)
        if (not isinstance(after, list) or len(after) != 2 or not isinstance(after[0], int)
                or not isinstance(after[1], str)):
            raise Invalid("the cursor is not one this server gave out")
    rows = store.page(flows, statuses, q, tuple(after) if after else None, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, _encode_cursor([rows[-1].updated_at, rows[-1].id]) if more else None


def status_counts(flows=(), q: str | None = None) -> dict[str, int]:
    """``{status: count}`` over the rows matching the flow filter and id search."""
    return store.count_by_status(flows, q)


def _entry(log_row, n: bool = False) -> dict:
    try:
        values = json.loads(log_row.values_json)
    except ValueError as error:
        raise _broken(log_row.workflow_id, error) from None
    entry = {"type": log_row.type, "values": values, "_at": log_row.at, "_step": log_row.step}
    return {"n": log_row.n, **entry} if n else entry


def logs(id: str, type: str | None = None, step: str | None = None, cursor: str | None = None,
         limit: int = 100) -> tuple[list[dict], str | None]:
    """Audit-log entries oldest first, each ``{"n", "type", "values", "_at", "_step"}``
    (``n`` is its 1-based position in the workflow's log, stable, used for ``#log-N``)."""
    limit = _limit(limit, 1000)
    after = _decode_cursor(cursor) if cursor else 0
    if isinstance(after, bool) or not isinstance(after, int):
        raise Invalid("the cursor is not one this server gave out")
    get(id)
    rows = store.log_rows(id, type, step, after, limit + 1)
    more = len(rows) > limit
    items = [_entry(r, n=True) for r in rows[:limit]]
    return items, _encode_cursor(items[-1]["n"]) if more else None


def all_logs(id: str) -> list[dict]:
    """The whole audit log as snapshot entries ``{type, values, _at, _step}`` (for the diagram;
    the entries may be shared with other callers: read them, do not change them)."""
    app = current_app._get_current_object()
    cache = app.extensions.get("tinyflow.logs")
    if cache is None:
        cache = app.extensions["tinyflow.logs"] = _LogCache()
    return cache.entries(get(id))


class _LogCache:
    """The audit logs read lately, parsed. Entries are appended and never rewritten, so a log
    read again (a page that polls a long history, its diagram) only reads and parses the
    entries written since. Keyed by id and creation time (an id used again after a delete
    starts afresh); at most ``size`` entries are kept, the least recently read dropped first."""

    def __init__(self, size: int = 50_000):
        self.size = size
        self._logs: dict[tuple, list[dict]] = {}    # in order of use, the latest last
        self._kept = 0
        self._lock = threading.Lock()

    def entries(self, row) -> list[dict]:
        """The whole log of ``row`` (read just now, so its log_count is current)."""
        key = (row.id, row.created_at)
        with self._lock:
            entries = self._logs.pop(key, [])
            self._kept -= len(entries)
        if len(entries) < row.log_count:            # a new list: other readers keep theirs
            entries = entries + [_entry(r) for r in store.log_rows(row.id, after=len(entries))]
        with self._lock:
            if key not in self._logs:
                self._logs[key] = entries
                self._kept += len(entries)
            while self._kept > self.size and len(self._logs) > 1:
                oldest = next(iter(self._logs))
                self._kept -= len(self._logs.pop(oldest))
        return list(entries)


def snapshot(id: str) -> dict:
    """The whole snapshot document (engine format, audit log included)."""
    return _document(get(id), all_logs(id))


# -- import -----------------------------------------------------------------------------------

def import_snapshots(data, flow: str | None = None, *, hint: str | None = None) -> list[str]:
    """A snapshot, or a list of ``[runId, snapshot]`` pairs; returns the ids stored.

    Without ``flow`` each snapshot's flow is the registered one whose steps cover the steps
    the snapshot mentions; ``hint`` (e.g. the file name) settles a tie. All or nothing.
    """
    if isinstance(data, dict):
        pairs = [(uuid.uuid4().hex[:16], data)]
    elif isinstance(data, list) and all(
            isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) and p[0]
            and len(p[0]) <= _MAX_ID and isinstance(p[1], dict) for p in data):
        pairs = [tuple(p) for p in data]
    else:
        raise Invalid("expected a snapshot (a JSON object) or a list of [runId, snapshot] pairs")
    ids = [id for id, _ in pairs]
    if len(set(ids)) != len(ids):
        raise Invalid("the same run id appears twice")
    taken = store.exists(ids)
    if taken:
        raise Conflict(f"workflows already exist: {', '.join(sorted(taken)[:10])}")
    at = _clock_ms()
    rows, log_rows = [], []
    for id, snap in pairs:
        name = flow if flow is not None else _infer_flow(id, snap, hint)
        cls = _flow_class(name)
        snap = copy.deepcopy(snap)
        entries = snap.get("logs") or []
        if not isinstance(entries, list) or not all(
                isinstance(e, dict) and isinstance(e.get("type"), str) for e in entries):
            raise Invalid(f"{id}: 'logs' must be a list of entries with a 'type'")
        _check_storable(id, snap, entries)
        try:
            wf = cls.from_json({**snap, "logs": []})
        except ValueError as error:
            raise Invalid(f"{id}: not a {name} snapshot: {error}") from None
        job = _Job(wf, id=id, flow=name, owner="", version=None, log_count=len(entries),
                   created_at=at)
        rows.append({"id": id, **job.values(lease=False)[0]})
        log_rows += store.log_params(id, 1, entries)
    try:
        store.insert_many(rows, log_rows)
    except store.Duplicate as error:
        raise Conflict(f"could not import: {error}") from None
    except store.Busy as error:
        raise Unavailable(str(error)) from None
    return ids


_MAX_MS = 253_402_300_799_999     # the last millisecond of the year 9999: any later is no time


def _is_time(value) -> bool:
    return (value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)
                              and math.isfinite(value) and 0 <= value <= _MAX_MS))


def _check_storable(id: str, snap: dict, entries: list) -> None:
    """Refuse (Invalid) what an imported snapshot would need but the tables cannot hold:
    names longer than their columns, and times that are not times."""
    for n, entry in enumerate(entries, 1):
        step_name, at, values = entry.get("_step"), entry.get("_at"), entry.get("values")
        if len(entry["type"]) > _MAX_ID or not (
                step_name is None or isinstance(step_name, str) and len(step_name) <= _MAX_ID):
            raise Invalid(f"{id}: log entry {n}: 'type' and '_step' are text of at most "
                          f"{_MAX_ID} characters")
        if not (_is_time(at) and (at is None or at == int(at))):
            raise Invalid(f"{id}: log entry {n}: '_at' must be epoch milliseconds")
        if values is not None and not isinstance(values, dict):
            raise Invalid(f"{id}: log entry {n}: 'values' must be a JSON object")
    system = snap.get("system")
    for key, wait in (system.items() if isinstance(system, dict) else ()):
        if isinstance(wait, dict) and not all(_is_time(wait.get(name))
                                              for name in ("resumeAfter", "timeoutAt")):
            raise Invalid(f"{id}: wait {key!r}: its times must be epoch milliseconds")


def _steps_mentioned(snap: dict) -> set[str]:
    found = [snap.get("step")]
    for part in ("cache", "system"):
        value = snap.get(part)
        for key in (value if isinstance(value, dict) else ()):
            bits = key.split(":")
            if len(bits) >= 3:
                found.append(bits[1])
    entries = snap.get("logs")
    for entry in (entries if isinstance(entries, list) else ()):
        if isinstance(entry, dict):
            found.append(entry.get("_step"))
            values = entry.get("values")
            if entry.get("type") == "transition" and isinstance(values, dict):
                found += [values.get("from"), values.get("to")]
    return {name for name in found if isinstance(name, str)}   # what is not text names none


def _infer_flow(id: str, snap: dict, hint: str | None) -> str:
    steps = _steps_mentioned(snap)
    fits = [name for name, cls in registry().items() if steps <= set(cls.__workflow__.steps)]
    if hint and len(fits) > 1:
        squash = re.sub(r"[^a-z0-9]", "", hint.lower())
        named = [n for n in fits if squash.startswith(re.sub(r"[^a-z0-9]", "", n.lower()))]
        if named:
            return max(named, key=len)
    if len(fits) == 1:
        return fits[0]
    which = (f"several flows fit ({', '.join(sorted(fits))})" if fits
             else "no registered flow has them all")
    raise Invalid(f"{id}: cannot tell the flow of a snapshot with steps "
                  f"{', '.join(sorted(steps))}: {which}; name it (--flow)")
