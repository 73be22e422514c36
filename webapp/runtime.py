"""Many workflows at once: start, run, deliver events, fire timers, leases.

CONTRACT STUB — being implemented. Every function runs inside a Flask app context
(flask-sqlalchemy's ``db.session``). Times given as ``now`` are epoch seconds; ``None``
means the runtime's clock (``current_app.config["TINYFLOW_CLOCK"]``, default ``time.time``).
"""
from __future__ import annotations


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


# ---------------------------------------------------------------------------------------------
# The API below is the contract the views, the CLI and the tests share. Signatures are fixed;
# bodies are being written. "Workflow dict" means ``describe(row)`` (the API's one-workflow
# answer: id, flow, status, step, state, pending, error, created_at, updated_at, wake_at,
# log_count; times ISO 8601 UTC strings, wake_at None when nothing is due).
# ---------------------------------------------------------------------------------------------

def registry() -> dict:
    """``{name: WorkflowClass}`` of the flows loaded from ``TINYFLOW_FLOWS`` (cached on the app)."""
    raise NotImplementedError


def start(flow: str, state: dict | None = None, id: str | None = None, now=None):
    """Create a workflow of ``flow`` and run it until it waits or ends. Returns the row.
    Unknown flow -> NotFound; id taken -> Conflict; state not a dict -> Invalid."""
    raise NotImplementedError


def send(id: str, name: str, payload=None, idempotency_key: str | None = None, now=None):
    """Deliver event ``name`` (wf.send) then run. Same idempotency key twice: delivered once,
    the second call returns the row unchanged. Returns the row."""
    raise NotImplementedError


def resolve(id: str, resume_id: str, payload=None, now=None):
    """Resolve one open wait by resumeId, then run. Unknown resumeId -> NotFound."""
    raise NotImplementedError


def fire_timer(id: str, resume_id: str, now=None):
    """Fire the open timer ``resume_id`` now, then run. Not an open timer -> NotFound."""
    raise NotImplementedError


def advance(id: str, seconds: float, now=None):
    """Run the workflow as if ``seconds`` had passed: timers and deadlines due by now+seconds fire."""
    raise NotImplementedError


def cancel(id: str, reason: str | None = None, now=None):
    """Cancel (closed workflow -> Conflict)."""
    raise NotImplementedError


def retry(id: str, now=None):
    """Retry a failed workflow and run it (not failed -> Conflict)."""
    raise NotImplementedError


def run_due(now=None, limit: int = 100, owner: str | None = None) -> int:
    """Claim (lease) and run workflows whose wake_at is due or that are ``running``; return how many ran."""
    raise NotImplementedError


def get(id: str):
    """The row of workflow ``id`` -> NotFound."""
    raise NotImplementedError


def describe(row) -> dict:
    """The API's one-workflow dict for a row (no audit log)."""
    raise NotImplementedError


def summary(row) -> dict:
    """The API's list item: id, flow, status, step, created_at, updated_at, wake_at."""
    raise NotImplementedError


def list_workflows(flows=(), statuses=(), q: str | None = None, cursor: str | None = None,
                   limit: int = 50) -> tuple[list, str | None]:
    """Rows newest-updated first with keyset pagination: (rows, next_cursor or None)."""
    raise NotImplementedError


def status_counts(flows=(), q: str | None = None) -> dict[str, int]:
    """``{status: count}`` over the rows matching the flow filter and id search."""
    raise NotImplementedError


def logs(id: str, type: str | None = None, step: str | None = None, cursor: str | None = None,
         limit: int = 100) -> tuple[list[dict], str | None]:
    """Audit-log entries oldest first, each ``{"n", "type", "values", "_at", "_step"}``
    (``n`` is its 1-based position in the workflow's log, stable, used for ``#log-N``)."""
    raise NotImplementedError


def all_logs(id: str) -> list[dict]:
    """The whole audit log as snapshot entries ``{type, values, _at, _step}`` (for the diagram)."""
    raise NotImplementedError


def snapshot(id: str) -> dict:
    """The whole snapshot document (engine format, audit log included)."""
    raise NotImplementedError


def import_snapshots(data, flow: str | None = None) -> list[str]:
    """A snapshot, or a list of ``[runId, snapshot]`` pairs; returns the ids stored."""
    raise NotImplementedError
