"""Pages for the flows: the overview (every flow's counts and activity, the dashboard's first
page), the list of registered flows with their static graphs, and each flow's page: one graph
over all its workflows (its statistics), the time in each step, its activity."""
from __future__ import annotations

from flask import Blueprint, abort, render_template, request, url_for

from .. import diagram, runtime
from ..runtime import RuntimeProblem
from . import charts, web

# The overview's activity: the last this many hours.
OVERVIEW_HOURS = 48
# The flow page's activity is drawn by day once it spans more hours than this.
HOURLY_AT_MOST = 96

bp = Blueprint("flows", __name__)
bp.record_once(lambda state: web.init_app(state.app))
bp.after_request(web.vary)


def flow_view(flow_cls) -> dict:
    """What the page shows of one flow: its metadata and its static diagram."""
    spec = flow_cls.__workflow__
    return {
        **web.flow_dict(flow_cls),
        "handlers": sorted(spec.handlers),
        "diagram": diagram.static(flow_cls),
        "workflows_url": url_for("workflows.index", flow=spec.name),
    }


@bp.get("/")
def overview():
    """Every flow with its counts by status and its recent activity, linking to its graph and
    its list: the dashboard's first page."""
    rt = runtime.current()
    since_ms = int((web.now() - OVERVIEW_HOURS * 3600) * 1000)
    flows = []
    for item in rt.overview(since_ms=since_ms):
        totals = {name: sum(i[name] for i in item["activity"]) for name, _ in charts.SERIES}
        words = ", ".join(f"{n:,} {name}" for name, n in totals.items())
        flows.append({**item, "totals": totals, "chart": charts.activity_svg(
            item["activity"], "hour", small=True,
            title=f"{item['flow']} in the last {OVERVIEW_HOURS} hours: {words}")})
    return render_template("flows/overview.html", flows=flows, hours=OVERVIEW_HOURS,
                           statuses=web.STATUSES, recording=rt.stats_on)


@bp.get("/flows")
def index():
    flows = [flow_view(cls) for _, cls in sorted(runtime.registry().items())]
    return render_template("flows/list.html", flows=flows)


@bp.get("/flows/<name>")
def show(name: str):
    flow_cls = runtime.registry().get(name)
    if flow_cls is None:
        abort(404, f"No flow is registered as {name!r}.")
    from .schedules import schedules_of
    from ..runtime import versions
    counts = runtime.version_counts(name)
    accepted = versions.accepted(flow_cls)
    by_version = [{"version": v, "count": n, "loaded": v == flow_cls.version,
                   "runs": v is None or v in accepted or versions.migrates(flow_cls)}
                  for v, n in sorted(counts.items(), key=lambda vn: (vn[0] != flow_cls.version,
                                                                     vn[0] or ""))]
    fleet = fleet_context(name, flow_cls)
    return render_template("flows/detail.html", flow=flow_view(flow_cls),
                           schedules=schedules_of(name), flow_cls=flow_cls,
                           by_version=by_version, **fleet), (
        422 if fleet["window_problem"] else 200)


def fleet_context(name: str, flow_cls) -> dict:
    """The flow page's graph over all its workflows, its steps' table and its activity, for
    the ``since``/``until`` window in the query string (a bad one: said beside the form, and
    the whole history shown: ``window_problem``)."""
    rt = runtime.current()
    window = {"since": request.args.get("since", "").strip(),
              "until": request.args.get("until", "").strip()}
    problem = None
    try:
        stats = rt.flow_stats(name, window["since"] or None, window["until"] or None)
    except RuntimeProblem as error:
        problem = str(error)
        stats = rt.flow_stats(name)

    def link(step: str) -> str:
        return url_for("workflows.index", flow=name, step=step)

    fleet = diagram.fleet(flow_cls, stats, link=link)
    since = stats["since"]
    activity = rt.flow_activity(name, "hour", since)
    if len(activity["items"]) > HOURLY_AT_MOST:
        activity = rt.flow_activity(name, "day", since)
    bucket = activity["bucket"]
    return {"stats": stats, "fleet": fleet, "window": window,
            "window_problem": problem, "link": link,
            "activity": activity, "activity_chart": charts.activity_svg(
                activity["items"], bucket,
                title=f"Workflows of {name} started, finished, failed and cancelled per "
                      f"{bucket}"),
            "heat_shares": diagram.HEAT_SHARES}
