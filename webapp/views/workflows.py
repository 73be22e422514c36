"""Pages for workflows: the list with its filters and start form, and one workflow's page.

Every form is a real POST that redirects (303) back to the page; with htmx the same route
answers the fragment it changed, so the page and the fragment come from one template.

It is longer than the other blueprints because a workflow's page gathers everything one
workflow has (summary, diagram, waits, forms, state, log); its parts share one context.
"""
from __future__ import annotations

import hashlib
import json
import secrets

from flask import (Blueprint, abort, current_app, flash, get_flashed_messages, make_response,
                   redirect, render_template, request, url_for)

from .. import diagram, runtime
from ..engine.workflow import ACTIVE
from ..runtime import RuntimeProblem, rules
from . import access, batches, web

bp = Blueprint("workflows", __name__)
bp.record_once(lambda state: web.init_app(state.app))
bp.after_request(web.vary)

STATUSES = web.STATUSES
LIVE = frozenset(ACTIVE)        # the statuses that change by themselves
PAGE_SIZE = 50
LOG_PAGE_SIZE = 100
# A workflow's diagram is drawn from at most its last this many audit-log entries, so a page
# costs what it shows whatever the history's length (the diagram says so when it is partial).
DIAGRAM_ENTRIES = 2000


class FormError(Exception):
    """A form value the user must fix (shown beside the form, 422); ``field`` names it."""

    status = 422

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


@bp.errorhandler(RuntimeProblem)
def runtime_problem(error: RuntimeProblem):
    return web.error_page(error.status, str(error))


# --- the list --------------------------------------------------------------------------------

def list_filters() -> dict:
    """The list's filters from the query string: flow, status, version and step repeatable,
    q, cursor, and ``state.<path>`` (the search attributes, as typed: ``state``)."""
    args = request.args
    return {
        "flow": [f for f in args.getlist("flow") if f],
        "status": [s for s in args.getlist("status") if s in STATUSES],
        "version": [v.strip() for v in args.getlist("version") if v.strip()],
        "step": [s for s in args.getlist("step") if s],
        "q": args.get("q", "").strip(),
        "cursor": args.get("cursor") or None,
        "state": {name[len("state."):]: text for name, text in args.items(multi=True)
                  if name.startswith("state.") and text.strip()},
    }


def query_of(filters: dict) -> dict:
    """The query string of ``filters`` (for links), the search attributes as ``state.<path>``."""
    query = {k: v for k, v in filters.items() if v and k != "state"}
    query.update({f"state.{path}": text for path, text in filters["state"].items()})
    return query


def filter_choices(filters: dict) -> dict:
    """What the filter form offers beyond flow and status: the steps of the selected flows
    (with the steps asked for), the search attributes they declare (every loaded flow's when
    none is selected; with the paths asked for), and the attribute columns (one flow chosen)."""
    flows = runtime.registry()
    chosen = [flows[name] for name in filters["flow"] if name in flows]
    declaring = chosen if filters["flow"] else [flows[name] for name in sorted(flows)]
    steps = [s for cls in chosen for s in cls.__workflow__.steps]
    paths = [p for cls in declaring for p in cls.search_attributes]
    one = chosen[0] if len(filters["flow"]) == 1 and chosen else None
    return {"steps": list(dict.fromkeys([*steps, *filters["step"]])),
            "search_paths": list(dict.fromkeys([*paths, *filters["state"]])),
            "columns": list(one.search_attributes) if one else []}


def list_item(row) -> dict:
    """A list row: the API's list item plus its open waits (for the "waiting for" column)."""
    item = {**runtime.summary(row), "attributes": runtime.current().attributes(row)}
    try:
        described = runtime.describe(row)
        item["pending"], item["held"] = described["pending"], described["held"]
    except runtime.Broken as error:     # shown as broken; the other rows are unaffected
        item["pending"], item["broken"] = [], str(error)
    return item


def digest(*parts) -> str:
    """A short fingerprint of what a fragment shows, so a poll can answer 204 when unchanged."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def list_context(start_form: dict | None = None) -> dict:
    """The list page's context; a filter the rules refuse (an unknown step, an undeclared
    search attribute) gives no rows and ``filter_error`` saying why (answered with 422)."""
    filters = list_filters()
    filter_error, state = None, {}
    try:
        state = rules.state_query(request.args.items(multi=True))
        rows, next_cursor = runtime.list_workflows(
            flows=filters["flow"], statuses=filters["status"], q=filters["q"] or None,
            cursor=filters["cursor"], limit=PAGE_SIZE, versions=filters["version"],
            steps=filters["step"], state=state)
        counts = runtime.status_counts(flows=filters["flow"], q=filters["q"] or None,
                                       versions=filters["version"], steps=filters["step"],
                                       state=state)
    except runtime.Invalid as error:
        filter_error, rows, next_cursor, counts = str(error), [], None, {}
    items = [list_item(row) for row in rows]
    live = any(item["status"] in LIVE for item in items)
    query = query_of(filters)
    # "For all N matching": the list's filters as a batch takes them (all of them, search
    # attributes too), and how many match.
    batch_filter = {k: v for k, v in query.items() if batches.is_filter_field(k)}
    matching = (sum(counts.get(s, 0) for s in filters["status"]) if filters["status"]
                else sum(counts.values()))
    return {
        **filter_choices(filters),
        "filter_error": filter_error,
        "filters": filters,
        "query": query,
        "items": items,
        "next_cursor": next_cursor,
        "counts": counts,
        "total": sum(counts.values()),
        "live": live,
        # The minute is part of it, so "due in 3 min" is redrawn as time passes (the block
        # holds no inputs that a redraw could reset).
        "version": digest(items, counts, next_cursor, int(web.now() // 60)),
        "flows": sorted(runtime.registry()),
        "loaded_versions": sorted({cls.version for cls in runtime.registry().values()}),
        "statuses": STATUSES,
        "start_form": start_form or {},
        "batch_filter": batch_filter,
        "matching": matching,
    }


@bp.route("/workflows", methods=("GET", "POST"))
def index():
    """The list (GET) and the start form (POST)."""
    if request.method == "POST":
        return start()
    ctx = list_context(start_form={"values": {"flow": request.args.get("start", "")}})
    status = 422 if ctx["filter_error"] else 200
    if web.is_htmx():
        if request.args.get("v") == ctx["version"]:
            return "", 204           # the poll found nothing new: keep the block as it is
        # A poll redraws the rows only; a change of the filters also redraws the filters
        # that depend on the chosen flows (steps, search attributes), out of band.
        return render_template("workflows/_results.html", oob=not request.args.get("v"),
                               **ctx), status
    return render_template("workflows/list.html", **ctx), status


def start():
    form = request.form
    try:
        flow = form.get("flow", "").strip()
        if not flow:
            raise FormError("Choose a flow to start.", "flow")
        state = parse_state(form.get("state", ""))
        wf_id = form.get("id", "").strip() or None
        row = runtime.start(flow, state=state, id=wf_id)
    except (FormError, RuntimeProblem) as error:
        # The field to fix gets the focus, so a page reloaded without JavaScript scrolls to it.
        field = getattr(error, "field", None) or (
            "flow" if isinstance(error, runtime.NotFound) else "id")
        start_form = {"values": form.to_dict(), "message": str(error), "field": field}
        if web.is_htmx():
            html = render_template("workflows/_start_form.html", start_form=start_form,
                                   flows=sorted(runtime.registry()))
        else:
            html = render_template("workflows/list.html", **list_context(start_form))
        return html, error.status
    info = runtime.summary(row)
    target = url_for("workflows.show", id=info["id"])
    flash(f"Started {info['flow']} workflow {info['id']}: it is {info['status']}.")
    if web.is_htmx():
        return "", 200, {"HX-Redirect": target}
    return redirect(target, 303)


def parse_state(text: str) -> dict:
    """The start form's initial state: a JSON object (empty means ``{}``)."""
    if not text.strip():
        return {}
    try:
        state = rules.loads(text, "The initial state",
                            error=lambda message: FormError(message, "state"))
    except rules.NotJSON as error:
        raise FormError(f"The initial state is not valid JSON: {error.detail}.", "state") from None
    if not isinstance(state, dict):
        raise FormError('The initial state must be a JSON object, like {"name": "Ada"}.',
                        "state")
    return state


# --- one workflow ----------------------------------------------------------------------------

def log_filters() -> dict:
    args = request.args
    return {"type": args.get("type") or None, "step": args.get("step") or None,
            "cursor": args.get("cursor") or None,
            "page": "last" if args.get("page") == "last" else None,
            "at": args.get("at", type=int) if (args.get("at") or "").isdigit() else None}


def detail_context(wf_id: str, failed: dict | None = None, notice: str | None = None,
                   preserve: bool = False) -> dict:
    """Everything the workflow page shows; ``failed`` is the form to show again with its error;
    ``preserve`` (a poll's answer) keeps the fields as the person left them (hx-preserve)."""
    row = runtime.get(wf_id)
    wf = runtime.describe(row)
    flow_cls = runtime.registry().get(wf["flow"])
    spec = getattr(flow_cls, "__workflow__", None)
    filters = log_filters()
    history, total = runtime.recent_logs(wf_id, DIAGRAM_ENTRIES)
    if filters["page"] == "last":
        entries, next_log_cursor = runtime.logs(wf_id, type=filters["type"],
                                                step=filters["step"], limit=LOG_PAGE_SIZE,
                                                newest=True), None
    else:
        entries, next_log_cursor = runtime.logs(wf_id, type=filters["type"],
                                                step=filters["step"], cursor=filters["cursor"],
                                                limit=LOG_PAGE_SIZE)
    # The workflow's own clock: the wall clock, plus what "Advance the clock" added.
    workflow_now = web.now() + wf["clock_offset"]
    picture = None
    if flow_cls is not None:
        picture = diagram.build(flow_cls, history, status=wf["status"], step=wf["step"],
                                pending=wf["pending"], error=wf["error"], of_entries=total,
                                now_ms=workflow_now * 1000,
                                link=lambda step: url_for("workflows.show", id=wf_id, step=step,
                                                          _anchor="audit-log"))
    as_of = None
    if filters["at"] and flow_cls is not None:
        as_of, picture_then = as_of_entry(wf_id, flow_cls, filters["at"], total)
        if picture_then is not None:
            picture = picture_then
    timers = [w for w in wf["pending"] if w.get("type") == "timer"]
    events = [w for w in wf["pending"] if w.get("type") == "event"]
    deadlines = [w for w in events if w.get("timeoutAt")]
    live = wf["status"] in LIVE
    changeable = access.can_change()       # read-only mode, or not logged in: no forms
    can_cancel = (live or wf["status"] == "failed") and changeable
    if wf["held"]:      # another version of its flow: nothing may run its code, but cancel
        changeable = False
    handlers = sorted(spec.handlers) if spec and live and changeable else []
    can_retry = wf["status"] == "failed" and changeable
    # The forms this rendering shows: a refused form that is gone (its wait closed meanwhile)
    # gets its message at the top instead.
    rendered_forms = {
        *(f"event-form-{web.slug(w['key'])}" for w in events if changeable),
        *(f"fire-{web.slug(w['resumeId'])}" for w in timers if changeable),
        *(f"handler-form-{web.slug(name)}" for name in handlers),
        *(["advance-form"] if (timers or deadlines) and changeable else []),
        *(["send-event-form"] if live and changeable else []),
        *(["cancel-form"] if can_cancel else []),
        *(["retry-form"] if can_retry else []),
    }
    log_query = {k: v for k, v in filters.items() if v}
    examples = dict(spec.examples or {}) if spec else {}
    return {
        "wf": wf,
        "as_of": as_of,
        "visit_seq": visit_seq,
        "lineage": runtime.forks(wf_id),
        "schedule_id": scheduled_by(wf_id),
        "examples": examples,
        "clock_offset": wf["clock_offset"],
        "preserve": preserve,
        "last_log_page": filters["page"] == "last",
        "has_more_logs": wf["log_count"] > LOG_PAGE_SIZE,
        "spec": spec,
        "flow_cls": flow_cls,
        "diagram": picture,
        "timers": timers,
        "events": events,
        "deadlines": deadlines,
        "handlers": handlers,
        "live": live,
        "changeable": changeable,
        "can_cancel": can_cancel,
        "can_retry": can_retry,
        "rendered_forms": rendered_forms,
        "entries": entries,
        "next_log_cursor": next_log_cursor,
        "log_filters": filters,
        "log_query": log_query,
        "log_types": sorted({entry["type"] for entry in history}),
        "log_steps": list(spec.steps) if spec else sorted({e.get("_step") for e in history
                                                           if e.get("_step")}),
        "version": version_of(wf),
        "failed": failed or {},
        "notices": [notice] if notice else get_flashed_messages(),
        # A fresh idempotency key per rendering (each form adds its own suffix): a form
        # submitted twice, by a double click or a resent page, is delivered once.
        "idempotency_key": secrets.token_urlsafe(12),
    }


AS_OF_ENTRIES = 1000      # the "as of entry n" diagram is drawn from at most this many


def as_of_entry(wf_id: str, flow_cls, at: int, total: int):
    """``?at=n``: (what the page says about entry n: the entry, the visit it belongs to and
    the state that visit began with; the diagram of the path up to it)."""
    at = max(1, min(at, total))
    first = max(0, at - AS_OF_ENTRIES)
    entries, _ = runtime.logs(wf_id, cursor=rules.encode_cursor(first) if first else None,
                              limit=at - first)
    if not entries:
        return None, None
    last = entries[-1]
    status = last["type"] if last["type"] in ("finished", "failed", "cancelled") else "running"
    picture = diagram.build(flow_cls, entries, status=status, step=last["_step"],
                            of_entries=at,
                            link=lambda step: url_for("workflows.show", id=wf_id, step=step,
                                                      _anchor="audit-log"))
    return {"n": at, "of": total, "entry": last, "visit": runtime.visit_at(wf_id, at)}, picture


def visit_seq(entry: dict) -> int | None:
    """The visit an audit-log entry begins (``init``: 0, ``transition``, ``forked``), or
    None."""
    values = entry.get("values") or {}
    seq = {"init": 0, "transition": values.get("stepSeq"),
           "forked": values.get("seq")}.get(entry.get("type"))
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None


def version_of(wf: dict) -> str:
    """What a poll compares: the workflow's answer, less what reading it adds."""
    return digest({k: v for k, v in wf.items() if k not in web.ANSWER_EXTRAS})


def scheduled_by(wf_id: str) -> str | None:
    """The id of the schedule that started this workflow (``<schedule id>@<fire time>``), if
    it is still there."""
    from ..runtime.schedules import schedule_of
    found = schedule_of(wf_id)
    if found is None:
        return None
    try:
        return runtime.current().schedule(found[0]).id
    except RuntimeProblem:
        return None


def render_detail(wf_id: str, status: int = 200, **kwargs):
    """The page (or, for htmx, its live block)."""
    try:
        ctx = detail_context(wf_id, **kwargs)
    except runtime.Broken as error:
        return render_broken(wf_id, error, status)
    template = "workflows/_live.html" if web.is_htmx() else "workflows/detail.html"
    return render_template(template, **ctx), status


@bp.get("/workflows/<id>")
def show(id: str):
    if web.is_htmx() and request.args.get("v"):
        # A poll: answer 204 while nothing changed, so typed form values are kept.
        try:
            if request.args["v"] == version_of(runtime.describe(runtime.get(id))):
                return "", 204
        except runtime.Broken as error:
            return render_broken(id, error)
        # Something changed: the fresh block keeps what the person is typing (hx-preserve).
        return render_detail(id, preserve=True)
    return render_detail(id)


# A form refused without JavaScript answers at its own address (POST .../events); opened
# again (reload, a bookmark, the address bar), that address shows the workflow's page.
@bp.get("/workflows/<path:id>/events")
@bp.get("/workflows/<path:id>/timers/advance")
@bp.get("/workflows/<path:id>/timers/<resume_id>/fire")
@bp.get("/workflows/<path:id>/cancel")
@bp.get("/workflows/<path:id>/retry")
def form_address(id: str, resume_id: str | None = None):
    whole = request.path.removeprefix("/workflows/")
    try:
        runtime.get(whole)               # a workflow whose id itself ends like that
    except runtime.NotFound:
        runtime.get(id)
        return redirect(url_for("workflows.show", id=id), 303)
    return show(whole)


def render_broken(wf_id: str, error: runtime.Broken, status: int = 200):
    """The page of a workflow whose stored snapshot cannot be read: what the row still says,
    and why it cannot be shown in full."""
    template = "workflows/_broken.html" if web.is_htmx() else "workflows/detail.html"
    return render_template(template, wf=runtime.summary(runtime.get(wf_id)), broken=True,
                           message=str(error)), status


def act(wf_id: str, form_id: str, action, done: str):
    """Run one form's action; on success redirect (or the fresh fragment), else show the form
    again with the message and what was typed."""
    try:
        action()
    except (FormError, RuntimeProblem) as error:
        failed = {"id": form_id, "message": str(error), "values": request.form.to_dict()}
        return render_detail(wf_id, status=error.status, failed=failed)
    done = done() if callable(done) else done
    if web.is_htmx():
        return render_detail(wf_id, notice=done)
    flash(done)
    return redirect(url_for("workflows.show", id=wf_id), 303)


@bp.post("/workflows/<id>/events")
def send_event(id: str):
    form = request.form
    name = form.get("name", "").strip()
    form_id = form.get("form") or "send-event-form"

    outcome: dict = {}

    def deliver():
        if not name:
            raise FormError("Give the event a name.")
        runtime.send(id, name, web.parse_value(form.get("value")),
                     idempotency_key=form.get("idempotency_key") or None, outcome=outcome)

    def done():
        if outcome.get("delivered") == "inbox":
            return (f"Event “{name}” kept in the inbox: nothing waits for it now; a step that "
                    "waits for it later gets it.")
        if not outcome:
            return f"Event “{name}” was sent before: it is not delivered twice."
        return f"Event “{name}” sent."

    return act(id, form_id, deliver, done)


@bp.post("/workflows/<id>/timers/<resume_id>/fire")
def fire_timer(id: str, resume_id: str):
    return act(id, f"fire-{web.slug(resume_id)}", lambda: runtime.fire_timer(id, resume_id),
               "Timer fired.")


@bp.post("/workflows/<id>/timers/advance")
def advance(id: str):
    text = request.form.get("seconds", "").strip()

    def run():
        runtime.advance(id, rules.seconds_text(text, error=FormError))

    def done():
        offset = runtime.describe(runtime.get(id))["clock_offset"]
        ahead = (f" The workflow's clock is now {web.duration(offset)} ahead of the wall clock."
                 if offset >= 1 else "")
        return f"Advanced by {text} s.{ahead}"

    return act(id, "advance-form", run, done)


@bp.post("/workflows/<id>/cancel")
def cancel(id: str):
    reason = request.form.get("reason", "").strip() or None
    return act(id, "cancel-form", lambda: runtime.cancel(id, reason=reason),
               "Workflow cancelled.")


@bp.post("/workflows/<id>/retry")
def retry(id: str):
    return act(id, "retry-form", lambda: runtime.retry(id), "Retrying the failed action.")


# --- history: one visit, and fork --------------------------------------------------------------

def render_visit(wf_id: str, seq: int, failed: dict | None = None, status: int = 200):
    wf = runtime.describe(runtime.get(wf_id))
    visit = runtime.visit(wf_id, seq)
    rt = runtime.current()
    known = visit["state_known"]
    why_not = None
    if not rt.history_on and not visit["current"]:
        why_not = ("History is off (TINYFLOW_HISTORY): a workflow can be forked from its "
                   "current visit only.")
    start_state = (visit["state"] if known else wf["state"] if visit["current"] else None)
    return render_template(
        "workflows/visit.html", wf=wf, visit=visit, why_not=why_not,
        changeable=access.can_change() and wf["flow"] in runtime.registry(),
        start_state=start_state, failed=failed or {}), status


@bp.get("/workflows/<id>/visits/<int:seq>")
def visit_page(id: str, seq: int):
    return render_visit(id, seq)


@bp.post("/workflows/<id>/fork")
def fork(id: str):
    form = request.form
    text = form.get("seq", "").strip()
    if not text.isdigit():
        abort(422, "Say which visit to fork from.")
    seq = int(text)
    try:
        state = parse_state(form.get("state", "")) if form.get("state", "").strip() else None
        row = runtime.fork(id, seq, new_id=form.get("id", "").strip() or None, state=state)
    except (FormError, RuntimeProblem) as error:
        if isinstance(error, runtime.NotFound) and "visit" not in str(error):
            raise
        failed = {"id": "fork-form", "message": str(error), "values": form.to_dict()}
        return render_visit(id, seq, failed=failed, status=error.status)
    info = runtime.summary(row)
    flash(f"Forked {id} from visit {seq}: the new workflow {info['id']} is {info['status']}.")
    return redirect(url_for("workflows.show", id=info["id"]), 303)


@bp.get("/workflows/<id>/snapshot.json")
def download(id: str):
    """The whole snapshot as a file (the API's /snapshot, behind the page's own login when
    reads are guarded, TINYFLOW_AUTH_READS)."""
    response = current_app.json.response(runtime.snapshot(id))
    web.attachment(response, f"{id}.json")
    return response


# --- the diagram alone -----------------------------------------------------------------------

def workflow_diagram(wf_id: str):
    wf = runtime.describe(runtime.get(wf_id))
    flow_cls = runtime.registry().get(wf["flow"])
    if flow_cls is None:
        abort(404, f"The flow {wf['flow']!r} is not registered, so it has no diagram.")
    history, total = runtime.recent_logs(wf_id, DIAGRAM_ENTRIES)
    return diagram.build(flow_cls, history, status=wf["status"], step=wf["step"],
                         pending=wf["pending"], error=wf["error"], of_entries=total)


@bp.get("/workflows/<id>/diagram.svg")
def diagram_svg(id: str):
    picture = workflow_diagram(id)
    response = make_response(picture.svg_or_none() or picture.summary_svg())
    response.mimetype = "image/svg+xml"
    return response


@bp.get("/workflows/<id>/diagram.dot")
def diagram_dot(id: str):
    response = make_response(workflow_diagram(id).dot)
    response.mimetype = "text/vnd.graphviz"
    return response
