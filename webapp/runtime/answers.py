"""What the runtime answers with: the API's dicts for a workflow, and audit-log entries (with
the cache that keeps long logs cheap to read again)."""
from __future__ import annotations

import json
import threading
from datetime import datetime, timezone

from .. import store
from ..engine.workflow import CLOCK_OFFSET
from . import rules
from .errors import broken


def iso(ms: int | None) -> str | None:
    """Epoch ms as ISO 8601 UTC; None for None, and for a stored value no calendar can show
    (an old import, a corrupted row): an answer never fails for one row's time."""
    if ms is None or isinstance(ms, bool):
        return None
    try:
        return (datetime.fromtimestamp(ms / 1000, timezone.utc)
                .isoformat(timespec="milliseconds").replace("+00:00", "Z"))
    except (OverflowError, OSError, ValueError, TypeError):
        return None


def summary(record: store.Record) -> dict:
    """The API's list item: id, flow, status, step, created_at, updated_at, wake_at,
    flow_version (the version of its flow it started on; None: unknown)."""
    return {"id": record.id, "flow": record.flow, "status": record.status,
            "step": record.step, "created_at": iso(record.created_at),
            "updated_at": iso(record.updated_at), "wake_at": iso(record.wake_at),
            "flow_version": record.flow_version}


def last_error(pending: list[dict]) -> dict | None:
    """While a failed action waits for its next attempt: that attempt's error."""
    found = None
    for wait in pending:
        if wait.get("retry") and isinstance(wait.get("error"), dict):
            found = {"type": wait["error"].get("type"), "message": wait["error"].get("message"),
                     "attempt": wait.get("attempt"), "next_attempt_at": iso(wait.get("resumeAfter"))}
    return found


def clock_offset(cache: dict) -> float:
    """Seconds the workflow's own clock runs ahead of the wall clock (after "advance")."""
    offset = cache.get(CLOCK_OFFSET, 0) if isinstance(cache, dict) else 0
    return float(offset) / 1000 if isinstance(offset, (int, float)) else 0.0


def document(record: store.Record, logs: list) -> dict:
    """The snapshot document a record holds, with the audit log ``logs`` the caller read.
    A record that does not hold readable JSON -> Broken."""
    try:
        doc = {"step": record.step, "state": rules.loads(record.state),
               "cache": json.loads(record.cache), "system": json.loads(record.system),
               "logs": logs, "status": record.status}
        if record.inbox:
            doc["inbox"] = json.loads(record.inbox)
        if record.error:
            doc["error"] = json.loads(record.error)
    except (ValueError, TypeError, RecursionError) as error:
        raise broken(record.id, error) from None
    return doc


def entry(log_row, n: bool = False) -> dict:
    """A log row as a snapshot entry ``{type, values, _at, _step}`` (``n`` first if asked)."""
    try:
        values = json.loads(log_row.values_json)
    except ValueError as error:
        raise broken(log_row.workflow_id, error) from None
    item = {"type": log_row.type, "values": values, "_at": log_row.at, "_step": log_row.step}
    return {"n": log_row.n, **item} if n else item


class LogCache:
    """The audit logs read lately, parsed. Entries are appended and never rewritten, so a log
    read again (a page that polls a long history, its diagram) only reads and parses the
    entries written since. Keyed by id and creation time (an id used again after a delete
    starts afresh); at most ``size`` entries are kept, the least recently read dropped first."""

    def __init__(self, size: int = 50_000):
        self.size = size
        self._logs: dict[tuple, list[dict]] = {}    # in order of use, the latest last
        self._kept = 0
        self._lock = threading.Lock()

    def entries(self, db: store.Store, record: store.Record) -> list[dict]:
        """The whole log of ``record`` (read just now, so its log_count is current)."""
        key = (record.id, record.created_at)
        with self._lock:
            entries = self._logs.pop(key, [])
            self._kept -= len(entries)
        if len(entries) < record.log_count:         # a new list: other readers keep theirs
            entries = entries + [entry(r) for r in db.log_rows(record.id, after=len(entries))]
        with self._lock:
            if key not in self._logs:
                self._logs[key] = entries
                self._kept += len(entries)
            while self._kept > self.size and len(self._logs) > 1:
                oldest = next(iter(self._logs))
                self._kept -= len(self._logs.pop(oldest))
        return list(entries)
