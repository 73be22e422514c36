"""The schedules page: every schedule with its calendar in words, its time zone, its next
five fires and its last run, the pause / resume / trigger / delete forms, and a form to add one.

Every form is a real POST that redirects (303) back to the page; a refused one answers the
page again (422, 409 or 404) with the message beside the form and what was typed.
"""
from __future__ import annotations

from flask import Blueprint, flash, get_flashed_messages, redirect, render_template, request, url_for

from .. import runtime
from ..runtime import Invalid, RuntimeProblem, rules
from ..runtime.schedules import DEFAULT_CATCHUP, OVERLAPS
from . import web

bp = Blueprint("schedules", __name__)
bp.record_once(lambda state: web.init_app(state.app))
bp.after_request(web.vary)


def in_zone(iso: str, tz: str) -> str:
    """An ISO UTC time on the schedule's own wall clock: ``2024-08-19 09:00 CEST``."""
    from zoneinfo import ZoneInfo
    return web.to_datetime(iso).astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M %Z")


bp.record_once(lambda state: state.app.jinja_env.filters.setdefault("in_zone", in_zone))

ADD_FORM = "add-schedule-form"


def schedule_view(record) -> dict:
    """A schedule as the page shows it: the API's dict and its next five fires."""
    rt = runtime.current()
    return {**rt.schedule_answer(record), "upcoming": rt.upcoming_fires(record, 5)}


def schedules_of(flow: str) -> list[dict]:
    """The schedules of one flow (for the flow's page)."""
    return [schedule_view(record) for record in runtime.current().schedules(flow)]


def render_page(status: int = 200, failed: dict | None = None):
    rt = runtime.current()
    items = [schedule_view(record) for record in rt.schedules()]
    html = render_template(
        "schedules/list.html", items=items, flows=sorted(rt.flows), overlaps=OVERLAPS,
        failed=failed or {}, notices=get_flashed_messages(), default_catchup=DEFAULT_CATCHUP,
        add_values=(failed or {}).get("values") if (failed or {}).get("id") == ADD_FORM else {})
    return html, status


@bp.get("/schedules")
def index():
    return render_page()


def act(form_id: str, action, done):
    """Run one form's action: redirect back with ``done`` said, or the page again with the
    message beside the form."""
    try:
        result = action()
    except RuntimeProblem as error:
        return render_page(error.status, {"id": form_id, "message": str(error),
                                          "values": request.form.to_dict()})
    flash(done(result) if callable(done) else done)
    return redirect(url_for("schedules.index"), 303)


@bp.post("/schedules")
def add():
    form = request.form

    def make():
        state = form.get("state", "").strip()
        if state:
            try:
                state = rules.loads(state, "The state", error=Invalid)
            except rules.NotJSON as error:
                raise Invalid(f"The state is not valid JSON: {error.detail}.") from None
            if not isinstance(state, dict):
                raise Invalid('The state must be a JSON object, like {"to": "ops"}.')
        return runtime.current().add_schedule(
            form.get("id", "").strip(), form.get("flow", "").strip(),
            form.get("cron", "").strip(), state=state or None,
            timezone=form.get("timezone", "").strip() or "UTC",
            overlap=form.get("overlap", "").strip() or "skip",
            catchup=form.get("catchup", "").strip() or DEFAULT_CATCHUP)

    return act(ADD_FORM, make, lambda record: f"Schedule {record.id} added.")


@bp.post("/schedules/<id>/pause")
def pause(id: str):
    return act(f"pause-{web.slug(id)}", lambda: runtime.current().pause_schedule(id),
               f"Schedule {id} paused.")


@bp.post("/schedules/<id>/resume")
def resume(id: str):
    return act(f"resume-{web.slug(id)}", lambda: runtime.current().resume_schedule(id),
               f"Schedule {id} resumed.")


@bp.post("/schedules/<id>/trigger")
def trigger(id: str):
    return act(f"trigger-{web.slug(id)}", lambda: runtime.current().trigger_schedule(id),
               lambda record: f"Schedule {id} started workflow {record.id}: it is "
                              f"{record.status}.")


@bp.post("/schedules/<id>/delete")
def delete(id: str):
    return act(f"delete-{web.slug(id)}", lambda: runtime.current().delete_schedule(id),
               f"Schedule {id} deleted (the workflows it started are kept).")


# A refused form answers at its own address; opened again, that address shows the page.
@bp.get("/schedules/<id>/pause")
@bp.get("/schedules/<id>/resume")
@bp.get("/schedules/<id>/trigger")
@bp.get("/schedules/<id>/delete")
def form_address(id: str):
    return redirect(url_for("schedules.index", _anchor=f"schedule-{web.slug(id)}"), 303)
