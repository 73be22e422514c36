"""Benchmark: the dashboard and the API list at 1,000,000 workflows (100,000 with --quick;
every flow and state, about 20 audit-log entries each, one with 1,000+): the list page
(default, filtered, searched, a deep page), the workflow page with its diagram, the diagram
alone, and GET /api/workflows.

Each request goes whole through the WSGI app; each figure is the median over batches of the
batch's percentile. The database is made once (tests/bench/dataset.py) and kept.

    python tests/bench/bench_dashboard.py [--json] [--quick] [--workflows N]
"""
from __future__ import annotations

import statistics
import sys
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import dataset  # noqa: E402
from common import Figure  # noqa: E402

LIST_P95_MS = 50.0
DETAIL_P95_MS = 50.0
DIAGRAM_MS = 10.0
DEEP = 0.9             # the deep page starts after this share of the workflows


def deep_cursor(app, query: str, skip: int) -> str:
    """The cursor a client reaches by paging ``query`` 500 at a time past ``skip`` rows."""
    cursor, seen = None, 0
    while seen < skip:
        url = f"/api/workflows?limit=500{query}" + (f"&cursor={cursor}" if cursor else "")
        status, page = common.wsgi(app, "GET", url)
        assert status == 200 and page["next_cursor"], (status, url)
        cursor, seen = page["next_cursor"], seen + len(page["items"])
    return cursor


def get(app, url: str, *, marker: bytes | None = None) -> None:
    status, body = common.wsgi(app, "GET", url)
    assert status == 200, (url, status, body[:300] if isinstance(body, bytes) else body)
    assert marker is None or marker in body, (url, marker)


def measure(quick: bool = False, workflows: int | None = None) -> list[Figure]:
    from webapp import diagram

    import bench_diagram

    n = workflows or (100_000 if quick else 1_000_000)
    batches, per_batch = (3, 10) if quick else (5, 30)
    path = dataset.dashboard(n)
    app = common.make_app(path)
    with app.app_context():
        from webapp import runtime

        typical = runtime.list_workflows(flows=["guess_game"], statuses=["waiting"],
                                         limit=1)[0][0].id
    diagram.warm_up()
    common.progress("dashboard: paging to the deep cursors")
    skip = int(n * DEEP) // 500 * 500
    deep = quote(deep_cursor(app, "", skip))
    deep_waiting = quote(deep_cursor(app, "&status=waiting", skip // 2))

    cases = [
        ("list", "list page, default", "/workflows", None),
        ("list", "list page, status=waiting", "/workflows?status=waiting", None),
        ("list", "list page, status=failed", "/workflows?status=failed", None),
        ("list", "list page, flow=simple&status=finished",
         "/workflows?flow=simple&status=finished", None),
        ("list", "list page, two flows, two statuses",
         "/workflows?flow=guess_game&flow=simple&status=cancelled&status=failed", None),
        ("list", "list page, id search q=ab", "/workflows?q=ab", None),
        ("list", "list page, id search matching none (q=zz: every id read)", "/workflows?q=zz",
         None),
        ("list", f"list page, deep (after {skip:,})", f"/workflows?cursor={deep}", None),
        ("list", f"list page, status=waiting, deep (after {skip // 2:,})",
         f"/workflows?status=waiting&cursor={deep_waiting}", None),
        ("api", "GET /api/workflows", "/api/workflows", None),
        ("api", "GET /api/workflows?status=failed", "/api/workflows?status=failed", None),
        ("api", "GET /api/workflows?flow=guess_game&status=waiting",
         "/api/workflows?flow=guess_game&status=waiting", None),
        ("api", "GET /api/workflows?q=ab", "/api/workflows?q=ab", None),
        ("api", "GET /api/workflows?q=zz (matches none)", "/api/workflows?q=zz", None),
        ("api", f"GET /api/workflows deep (after {skip:,})", f"/api/workflows?cursor={deep}",
         None),
        ("api", "GET /api/workflows?limit=500", "/api/workflows?limit=500", None),
        ("detail", "workflow page (waiting guess game, diagram)", f"/workflows/{typical}",
         b"<svg"),
        ("detail", f"workflow page ({dataset.LONG_ID}: 1,000+ entries, diagram)",
         f"/workflows/{dataset.LONG_ID}", b"<svg"),
        ("diagram", f"GET diagram.svg of {dataset.LONG_ID}",
         f"/workflows/{dataset.LONG_ID}/diagram.svg", b"<svg"),
    ]
    figures = []
    for group, name, url, marker in cases:
        common.progress(f"dashboard: {name}")
        get(app, url, marker=marker)                 # warm
        ms = [common.timed(lambda: get(app, url), per_batch) for _ in range(batches)]
        p95 = common.median_of(ms, 95)
        bound = {"list": LIST_P95_MS, "api": LIST_P95_MS, "detail": DETAIL_P95_MS,
                 "diagram": DIAGRAM_MS}[group]
        figures.append(Figure(group, name + " p95", p95, "ms", at_most=bound,
                              detail=f"{n:,} workflows; p50 {common.median_of(ms, 50):.1f} ms"))

    def first_view():
        diagram.renderer.cache.clear()                        # the rendered SVGs
        get(app, f"/workflows/{dataset.LONG_ID}")

    ms = [common.timed(first_view, per_batch) for _ in range(batches)]
    figures.append(Figure("detail", f"workflow page ({dataset.LONG_ID}), first view p95",
                          common.median_of(ms, 95), "ms", at_most=DETAIL_P95_MS,
                          detail=f"p50 {common.median_of(ms, 50):.1f} ms; log read and "
                                 "diagram drawn afresh"))

    common.progress("dashboard: diagram build + render")
    drawn = bench_diagram.measure_diagram(repeat=50 if quick else 200)
    no_cache = drawn["build + render (no cache)"]
    figures.append(Figure(
        "diagram", f"build + render, SVG cache off ({drawn['entries'][0]} entries) p50",
        statistics.median(no_cache), "ms", at_most=DIAGRAM_MS,
        detail=f"p95 {common.percentile(no_cache, 95):.1f} ms; bench_diagram.py"))
    return figures


if __name__ == "__main__":
    common.main(measure, __doc__)
