"""The JSON API under /api: the twin of the pages, as DESIGN.md's table says.

Errors are ``{"error": {"code", "message"}}``: the runtime's problems carry their status and
code; a body that is not JSON is 400, JSON of the wrong shape 422, a body too large 413.
"""
from __future__ import annotations

from flask import Blueprint, current_app, request, url_for

from .. import runtime
from ..runtime import Invalid, RuntimeProblem, rules
from . import web

bp = Blueprint("api", __name__, url_prefix="/api")
bp.record_once(lambda state: web.init_app(state.app))
web.csrf.exempt(bp)          # the API takes no CSRF token (DESIGN.md); see access.guard

MAX_LIMIT = 500
STATUSES = web.STATUSES


@bp.errorhandler(RuntimeProblem)
def runtime_problem(error: RuntimeProblem):
    return web.api_error(error.status, error.code, str(error))


# --- reading requests ------------------------------------------------------------------------

def body(*fields: str) -> dict:
    """The JSON object sent (an empty body is ``{}``); not JSON -> 400, not an object -> 422,
    a field other than ``fields`` -> 422 naming it (a misspelt "stat" is not ignored)."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    try:                                    # strict: NaN, Infinity, 1e400, "\ud800", NUL -> 422
        data = rules.loads(raw, "The body", error=Invalid)
    except rules.NotJSON as error:          # not UTF-8 is not JSON either
        raise RuntimeProblem(f"{error}.") from None
    if not isinstance(data, dict):
        raise Invalid("The body must be a JSON object.")
    unknown = [name for name in data if name not in fields]
    if unknown:
        takes = f"it takes {', '.join(map(repr, fields))}" if fields else "it takes none"
        raise Invalid(f"Unknown field {unknown[0]!r}: {takes}.")
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
        limit=limit_arg(50), versions=[v for v in request.args.getlist("version") if v],
        steps=[s for s in request.args.getlist("step") if s],
        state=rules.state_query(request.args.items(multi=True)))
    rt = runtime.current()
    return {"items": [{**runtime.summary(row), "held": rt.held(row),
                       "attributes": rt.attributes(row)} for row in rows],
            "next_cursor": next_cursor}


@bp.post("/workflows")
def start():
    data = body("flow", "state", "id")
    flow = text_field(data, "flow", required=True)
    state = data.get("state")
    if state is not None and not isinstance(state, dict):
        raise Invalid("'state' must be a JSON object.")
    row = runtime.start(flow, state=state, id=text_field(data, "id"))
    answer, status = workflow(row, 201)
    return answer, status, {"Location": url_for("api.get_workflow", id=answer["id"])}


@bp.get("/workflows/<id>")
def get_workflow(id: str):
    return workflow(runtime.get(id))


@bp.get("/workflows/<id>/snapshot")
def snapshot(id: str):
    response = current_app.json.response(runtime.snapshot(id))
    if request.args.get("download"):
        web.attachment(response, f"{id}.json")
    return response


@bp.get("/workflows/<id>/logs")
def logs(id: str):
    items, next_cursor = runtime.logs(
        id, type=request.args.get("type") or None, step=request.args.get("step") or None,
        cursor=request.args.get("cursor") or None, limit=limit_arg(100))
    return {"items": items, "next_cursor": next_cursor}


@bp.get("/workflows/<id>/history")
def history(id: str):
    """The state each step visit began with, oldest first, a page at a time."""
    return runtime.history(id, cursor=request.args.get("cursor") or None,
                           limit=limit_arg(100))


@bp.get("/workflows/<id>/history/<int:seq>")
def history_visit(id: str, seq: int):
    """One visit: its state, the visit before it and the diff between their states."""
    return runtime.visit(id, seq)


@bp.get("/workflows/<id>/forks")
def forks(id: str):
    return runtime.forks(id)


@bp.post("/workflows/<id>/fork")
def fork(id: str):
    """A new workflow from visit ``seq``: 201 with it (as POST /api/workflows)."""
    data = body("seq", "id", "state")
    if "seq" not in data:
        raise Invalid("'seq' (the visit to fork from) is required.")
    state = data.get("state")
    if state is not None and not isinstance(state, dict):
        raise Invalid("'state' must be a JSON object.")
    row = runtime.fork(id, data["seq"], new_id=text_field(data, "id"), state=state)
    answer, status = workflow(row, 201)
    return answer, status, {"Location": url_for("api.get_workflow", id=answer["id"])}


@bp.post("/workflows/<id>/events")
def send_event(id: str):
    data = body("name", "payload", "idempotency_key")
    outcome: dict = {}
    row = runtime.send(id, text_field(data, "name", required=True), data.get("payload"),
                       idempotency_key=text_field(data, "idempotency_key"), outcome=outcome)
    answer, status = workflow(row)
    # How it was delivered: "wait" (a step was waiting for it), "handler" (its @on_event
    # handler), "inbox" (kept until a step waits for it: nothing was waiting), or "duplicate"
    # (its idempotency key was seen before: nothing was done again).
    answer["delivered"] = outcome.get("delivered", "duplicate")
    return answer, status


@bp.post("/workflows/<id>/timers/<resume_id>/fire")
def fire_timer(id: str, resume_id: str):
    body()                                  # refuse a malformed body even though none is needed
    return workflow(runtime.fire_timer(id, resume_id))


@bp.post("/workflows/<id>/timers/advance")
def advance(id: str):
    return workflow(runtime.advance(id, body("seconds").get("seconds")))   # rules.seconds


@bp.post("/workflows/<id>/cancel")
def cancel(id: str):
    return workflow(runtime.cancel(id, reason=text_field(body("reason"), "reason")))


@bp.post("/workflows/<id>/retry")
def retry(id: str):
    body()
    return workflow(runtime.retry(id))


# --- flows -----------------------------------------------------------------------------------

@bp.get("/flows")
def list_flows():
    return [web.flow_dict(cls) for _, cls in sorted(runtime.registry().items())]


@bp.get("/flows/<name>/stats")
def flow_stats(name: str):
    """One graph over every workflow of the flow (created in ``since``/``until``)."""
    return runtime.current().flow_stats(name, request.args.get("since"),
                                        request.args.get("until"))


@bp.get("/flows/<name>/activity")
def flow_activity(name: str):
    """Started, finished, failed and cancelled per ``bucket`` (hour, day), oldest first."""
    return runtime.current().flow_activity(name, request.args.get("bucket", "hour"),
                                           request.args.get("since"))


# --- schedules -------------------------------------------------------------------------------

def schedule(record, status: int = 200):
    return runtime.current().schedule_answer(record), status


@bp.get("/schedules")
def list_schedules():
    rt = runtime.current()
    return {"items": [rt.schedule_answer(record) for record in rt.schedules()]}


@bp.post("/schedules")
def add_schedule():
    data = body("id", "flow", "cron", "state", "timezone", "overlap", "catchup")
    state = data.get("state")
    if state is not None and not isinstance(state, dict):
        raise Invalid("'state' must be a JSON object.")
    catchup = data.get("catchup")
    if catchup is not None and (isinstance(catchup, bool) or not isinstance(catchup, int)):
        raise Invalid("'catchup' must be a whole number of seconds.")
    record = runtime.current().add_schedule(
        text_field(data, "id", required=True), text_field(data, "flow", required=True),
        text_field(data, "cron", required=True), state=state,
        timezone=text_field(data, "timezone"), overlap=text_field(data, "overlap"),
        catchup=catchup)
    answer, status = schedule(record, 201)
    return answer, status, {"Location": url_for("api.get_schedule", id=answer["id"])}


@bp.get("/schedules/<id>")
def get_schedule(id: str):
    return schedule(runtime.current().schedule(id))


@bp.delete("/schedules/<id>")
def delete_schedule(id: str):
    runtime.current().delete_schedule(id)
    return "", 204


@bp.post("/schedules/<id>/pause")
def pause_schedule(id: str):
    body()
    return schedule(runtime.current().pause_schedule(id))


@bp.post("/schedules/<id>/resume")
def resume_schedule(id: str):
    body()
    return schedule(runtime.current().resume_schedule(id))


@bp.post("/schedules/<id>/trigger")
def trigger_schedule(id: str):
    """Start the schedule's workflow now: 201 with that workflow (as POST /api/workflows)."""
    body()
    answer, status = workflow(runtime.current().trigger_schedule(id), 201)
    return answer, status, {"Location": url_for("api.get_workflow", id=answer["id"])}


# --- batches ---------------------------------------------------------------------------------

@bp.post("/batches")
def add_batch():
    """202 with the batch (runners carry it out): ``{"action", "ids" | "filter", "event"?,
    "reason"?, "confirm"?}`` (``filter``: the list's, ``{"flow", "status", "version", "step",
    "q", "state"}``). Over TINYFLOW_BATCH_CONFIRM_OVER workflows: 409
    ``confirm_needed`` until sent with ``"confirm": true``."""
    data = body("action", "ids", "filter", "event", "reason", "confirm")
    confirm = data.get("confirm", False)
    if not isinstance(confirm, bool):
        raise Invalid("'confirm' must be true or false.")
    rt = runtime.current()
    record = rt.create_batch(data.get("action"), ids=data.get("ids"), filter=data.get("filter"),
                             event=data.get("event"), reason=text_field(data, "reason"),
                             confirm=confirm)
    return rt.batch_answer(record), 202, {"Location": url_for("api.get_batch", id=record.id)}


@bp.get("/batches")
def list_batches():
    rt = runtime.current()
    records, next_cursor = rt.batches(cursor=request.args.get("cursor") or None,
                                      limit=limit_arg(50))
    return {"items": [rt.batch_answer(r) for r in records], "next_cursor": next_cursor}


@bp.get("/batches/<id>")
def get_batch(id: str):
    rt = runtime.current()
    return rt.batch_answer(rt.batch(id))


@bp.get("/batches/<id>/items")
def batch_items(id: str):
    items, next_cursor = runtime.current().batch_items(
        id, outcome=request.args.get("outcome") or None,
        cursor=request.args.get("cursor") or None, limit=limit_arg(100))
    return {"items": items, "next_cursor": next_cursor}
