"""The JSON API under /api: the twin of the pages, as DESIGN.md's table says.

Errors are ``{"error": {"code", "message"}}``: the runtime's problems carry their status and
code; a body that is not JSON is 400, JSON of the wrong shape 422, a body too large 413.
"""
from __future__ import annotations

import json
import math

from flask import Blueprint, current_app, request, url_for

from .. import runtime
from ..runtime import Invalid, RuntimeProblem
from . import web

bp = Blueprint("api", __name__, url_prefix="/api")
bp.record_once(lambda state: web.init_app(state.app))

MAX_LIMIT = 500
STATUSES = web.STATUSES


@bp.errorhandler(RuntimeProblem)
def runtime_problem(error: RuntimeProblem):
    return web.api_error(error.status, error.code, str(error))


# --- reading requests ------------------------------------------------------------------------

def body() -> dict:
    """The JSON object sent (an empty body is ``{}``); not JSON -> 400, not an object -> 422."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as error:             # UnicodeDecodeError is a ValueError too
        raise RuntimeProblem(f"The body is not JSON: {error}.") from None
    except RecursionError:
        raise Invalid("The body is JSON nested too deeply.") from None
    if not isinstance(data, dict):
        raise Invalid("The body must be a JSON object.")
    return data


def text_field(data: dict, name: str, required: bool = False) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"{name!r} must be a non-empty string.")
    return value


def limit_arg(default: int) -> int:
    text = request.args.get("limit")
    if text is None:
        return default
    try:
        limit = int(text)
    except ValueError:
        raise Invalid(f"'limit' must be a whole number, not {text!r}.") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"'limit' must be between 1 and {MAX_LIMIT}.")
    return limit


def workflow(row, status: int = 200):
    """The one-workflow answer (no audit log: small whatever the history). A change that was
    committed but whose run after it could not finish answers 202 with its ``note``."""
    answer = runtime.describe(row)
    return answer, 202 if answer.get("note") else status


# --- workflows -------------------------------------------------------------------------------

@bp.get("/workflows")
def list_workflows():
    statuses = request.args.getlist("status")
    unknown = [s for s in statuses if s not in STATUSES]
    if unknown:
        raise Invalid(f"Unknown status {unknown[0]!r}: use one of {', '.join(STATUSES)}.")
    rows, next_cursor = runtime.list_workflows(
        flows=[f for f in request.args.getlist("flow") if f], statuses=statuses,
        q=request.args.get("q") or None, cursor=request.args.get("cursor") or None,
        limit=limit_arg(50))
    return {"items": [runtime.summary(row) for row in rows], "next_cursor": next_cursor}


@bp.post("/workflows")
def start():
    data = body()
    flow = text_field(data, "flow", required=True)
    state = data.get("state")
    if state is not None and not isinstance(state, dict):
        raise Invalid("'state' must be a JSON object.")
    row = runtime.start(flow, state=state, id=text_field(data, "id"))
    answer, status = workflow(row, 201)
    return answer, status, {"Location": url_for("api.get_workflow", id=answer["id"])}


@bp.get("/workflows/<path:id>")
def get_workflow(id: str):
    return workflow(runtime.get(id))


@bp.get("/workflows/<path:id>/snapshot")
def snapshot(id: str):
    response = current_app.json.response(runtime.snapshot(id))
    if request.args.get("download"):
        response.headers.set("Content-Disposition", "attachment", filename=f"{id}.json")
    return response


@bp.get("/workflows/<path:id>/logs")
def logs(id: str):
    items, next_cursor = runtime.logs(
        id, type=request.args.get("type") or None, step=request.args.get("step") or None,
        cursor=request.args.get("cursor") or None, limit=limit_arg(100))
    return {"items": items, "next_cursor": next_cursor}


@bp.post("/workflows/<path:id>/events")
def send_event(id: str):
    data = body()
    row = runtime.send(id, text_field(data, "name", required=True), data.get("payload"),
                       idempotency_key=text_field(data, "idempotency_key"))
    return workflow(row)


@bp.post("/workflows/<path:id>/timers/<resume_id>/fire")
def fire_timer(id: str, resume_id: str):
    body()                                  # refuse a malformed body even though none is needed
    return workflow(runtime.fire_timer(id, resume_id))


@bp.post("/workflows/<path:id>/timers/advance")
def advance(id: str):
    seconds = body().get("seconds")
    if (isinstance(seconds, bool) or not isinstance(seconds, (int, float))
            or not math.isfinite(seconds) or seconds < 0):
        raise Invalid("'seconds' must be a number, zero or more.")
    return workflow(runtime.advance(id, seconds))


@bp.post("/workflows/<path:id>/cancel")
def cancel(id: str):
    return workflow(runtime.cancel(id, reason=text_field(body(), "reason")))


@bp.post("/workflows/<path:id>/retry")
def retry(id: str):
    body()
    return workflow(runtime.retry(id))


# --- flows -----------------------------------------------------------------------------------

@bp.get("/flows")
def list_flows():
    return [web.flow_dict(cls) for _, cls in sorted(runtime.registry().items())]
