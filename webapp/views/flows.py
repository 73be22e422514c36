"""Pages for the registered flows: each one's docstring, steps, static graph and start button."""
from __future__ import annotations

from flask import Blueprint, abort, render_template, url_for

from .. import diagram, runtime
from . import web

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
    return render_template("flows/detail.html", flow=flow_view(flow_cls),
                           schedules=schedules_of(name), flow_cls=flow_cls,
                           by_version=by_version)
