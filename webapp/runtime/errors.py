"""The runtime's problems: each carries the HTTP status and code the API answers with."""
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


class Broken(RuntimeProblem):
    """The stored snapshot of a workflow cannot be read (409): that workflow cannot be shown
    in full or changed; every other one works as before."""

    status = 409
    code = "broken"


def broken(id: str, error: Exception) -> Broken:
    return Broken(f"workflow {id!r} is broken: its stored snapshot cannot be read "
                  f"({type(error).__name__}: {error})")


class VersionMismatch(Conflict):
    """The workflow started on a version of its flow that the loaded code does not accept
    (409): it is held until compatible code is loaded or it is migrated (it can be
    cancelled)."""

    code = "version_mismatch"


class ConfirmNeeded(Conflict):
    """A batch over ``TINYFLOW_BATCH_CONFIRM_OVER`` workflows that was not confirmed (409):
    send it again with ``"confirm": true``."""

    code = "confirm_needed"
