"""Pages for batches: the confirmation a list's batch form leads to, the batch's own page with
its live progress, and the recent batches.

The list's form is a GET to ``/batches/new`` (the confirmation changes nothing); the
confirmation is a real POST to ``/batches`` that redirects (303) to the batch's page, or
answers the confirmation again with the message (422, 409). The batch's page polls its
progress block with htmx while the batch runs (and refreshes itself without JavaScript).
"""
from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for

from .. import runtime
from ..runtime import RuntimeProblem, rules
from . import web

bp = Blueprint("batches", __name__)
bp.record_once(lambda state: web.init_app(state.app))
bp.after_request(web.vary)

# The list's filters a batch takes from a form or a query string: these names (repeatable),
# ``q``, and ``state.<path>`` (the search attributes, as typed). The API's filter has the same
# names (``rules.LIST_FILTERS``).
FILTER_FIELDS = ("flow", "status", "version", "step")
ITEMS_SHOWN = 100            # skipped and failed items listed on the batch's page (each)

WHAT_HAPPENS = {
    "cancel": ("Cancel {n}", "Each one that is running, waiting or failed is cancelled (its "
               "open waits are closed); one that is finished or cancelled already is skipped."),
    "retry": ("Retry {n}", "Each failed one gets a fresh set of attempts for its failed action "
              "and runs again; one that has not failed is skipped."),
    "send": ("Send an event to {n}", "Each one gets the event once (a second delivery is "
             "refused by its idempotency key); a finished, failed or cancelled one is skipped."),
}


@bp.errorhandler(RuntimeProblem)
def runtime_problem(error: RuntimeProblem):
    return web.error_page(error.status, str(error))


def workflows(n: int) -> str:
    return f"{n:,} workflow" + ("" if n == 1 else "s")


def is_filter_field(name: str) -> bool:
    """Whether a query string's ``name`` is one of the list's filters a batch takes."""
    return name in FILTER_FIELDS or name == "q" or name.startswith("state.")


def chosen(form) -> tuple[list[str] | None, dict | None]:
    """The selection a form names: ``(ids, None)`` for "the selected", ``(None, filter)`` for
    "all matching" (the list's filters, as the form carries them: the API's filter)."""
    if form.get("scope") == "matching":
        found = {name: [v for v in form.getlist(name) if v.strip()] for name in FILTER_FIELDS}
        found["q"] = form.get("q", "").strip() or None
        found["state"] = rules.state_query(form.items(multi=True))
        return None, found
    return [v for v in form.getlist("id") if v], None


def filter_fields(form) -> list[tuple[str, str]]:
    """The form's filter fields as it has them (``state.<path>`` as typed), for the
    confirmation's hidden inputs."""
    return [(name, value) for name, value in form.items(multi=True)
            if is_filter_field(name) and value.strip()]


def describe_filter(filter: dict) -> list[str]:
    """The filter in words, one part per filter: "flow guess_game or simple", "userEmail
    “ada@example.com”"."""
    parts = []
    for name in FILTER_FIELDS:
        names = filter.get(name)
        if names:                # a list (a batch made before filters were kept as lists: a name)
            parts.append(f"{name} {' or '.join([names] if isinstance(names, str) else names)}")
    for path, value in (filter.get("state") or {}).items():
        shown = f"“{value}”" if isinstance(value, str) else rules.dumps(value)
        parts.append(f"{path} {shown}")
    if filter.get("q"):
        parts.append(f"id containing “{filter['q']}”")
    return parts


def render_confirm(status: int = 200, message: str | None = None):
    """The confirmation page: exactly what will happen to how many workflows."""
    form = request.values
    rt = runtime.current()
    action = form.get("action", "")
    try:
        ids, filter = chosen(form)
        rules.batch_action(action)
        n = rt.count_batch(ids, filter)
    except RuntimeProblem as error:
        return web.error_page(error.status, str(error))
    headline, detail = WHAT_HAPPENS[action]
    back: dict = {}                  # the list the form came from, its filters as typed
    for name, value in filter_fields(form):
        back.setdefault(name, []).append(value)
    most = int(rt.settings["TINYFLOW_BATCH_CONFIRM_OVER"])
    return render_template(
        "batches/confirm.html", action=action, n=n, ids=ids, filter=filter,
        headline=headline.format(n=workflows(n)), detail=detail,
        filter_words=describe_filter(filter) if filter else [],
        fields=filter_fields(form) if filter else [],
        over=n > most, most=most, message=message, values=form,
        back=url_for("workflows.index", **back)), status


@bp.get("/batches/new")
def new():
    """The confirmation of a batch the list's form asks for."""
    return render_confirm()


@bp.post("/batches")
def create():
    form = request.form
    action = form.get("action", "")
    try:
        ids, filter = chosen(form)
        event = None
        if action == "send":
            name = form.get("event_name", "").strip()
            event = {"name": name, "payload": web.parse_value(form.get("event_value"))} \
                if name else {}
        record = runtime.current().create_batch(
            action, ids=ids, filter=filter, event=event,
            reason=(form.get("reason", "").strip() or None) if action == "cancel" else None,
            confirm=form.get("confirm") == "yes")
    except RuntimeProblem as error:
        return render_confirm(error.status, str(error))
    return redirect(url_for("batches.show", id=record.id), 303)


def batch_context(id: str) -> dict:
    rt = runtime.current()
    batch = rt.batch_answer(rt.batch(id))
    settled = batch["done"] + batch["skipped"] + batch["failed"]
    skipped, more_skipped = rt.batch_items(id, "skipped", limit=ITEMS_SHOWN)
    failed, more_failed = rt.batch_items(id, "failed", limit=ITEMS_SHOWN)
    return {"batch": batch, "settled": settled, "running": batch["status"] == "running",
            "skipped_items": skipped, "more_skipped": bool(more_skipped),
            "failed_items": failed, "more_failed": bool(more_failed),
            "filter_words": describe_filter(batch["filter"] or {}),
            "headline": WHAT_HAPPENS[batch["action"]][0].format(n=workflows(batch["total"]))}


@bp.get("/batches/<id>")
def show(id: str):
    """The batch's page (or, for htmx, its progress block)."""
    ctx = batch_context(id)
    template = "batches/_progress.html" if web.is_htmx() else "batches/detail.html"
    return render_template(template, **ctx)


@bp.get("/batches")
def index():
    rt = runtime.current()
    records, next_cursor = rt.batches(cursor=request.args.get("cursor") or None, limit=50)
    return render_template("batches/list.html", items=[rt.batch_answer(r) for r in records],
                           next_cursor=next_cursor, cursor=request.args.get("cursor"))
