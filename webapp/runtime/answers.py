"""What the runtime answers with: the API's dicts for a workflow, and audit-log entries."""
from __future__ import annotations

import json
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
