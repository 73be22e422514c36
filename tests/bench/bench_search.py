"""Benchmark: search attributes. A list filtered by one, at 1,000,000 workflows (100,000 with
--quick), through the WSGI app: a rare value (an email: a few workflows), a common one (a
billing status shared by 50,000; the commonest, by 250,000), with a status filter, a deep
page, the list page with its status counts; and what indexing costs on the commit path:
starting ``simple`` (two commits) with and without two declared attributes.

The database is bulk-inserted (workflow rows and their attribute rows, written straight into
the tables as the runtime's commits would leave them) once and kept in ``common.CACHE_DIR``.

    python tests/bench/bench_search.py [--json] [--quick]
"""
from __future__ import annotations

import json
import math
import os
import sqlite3
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from common import Figure  # noqa: E402

from flows.simple import Simple  # noqa: E402

LIST_P95_MS = 50.0
GENERATOR = 3
EMAILS = 250_000            # distinct emails among the onboarding workflows
ACTIVE_EVERY = 6            # one billing workflow in 6 is active (the rest cancelled)
DAY_MS = 86_400_000


class SimpleSearched(Simple):
    """``simple`` with two search attributes, for the commit-path cost."""

    name = "simple_searched"
    search_attributes = ("startHit", "computed")


# --- the database ----------------------------------------------------------------------------

def database(n: int) -> Path:
    """A SQLite file of ``n`` workflows, 70 % user_onboarding (``userEmail``), 30 %
    interval_payment (``status``), with their attribute rows (made once)."""
    from webapp import store

    target = common.CACHE_DIR / f"search-{n}-schema{store.SCHEMA_VERSION}-gen{GENERATOR}.sqlite"
    if target.exists():
        return target
    common.CACHE_DIR.mkdir(parents=True, exist_ok=True)
    building = target.with_name(f"{target.stem}.{os.getpid()}.building")
    app = common.make_app(building)          # the schema, as the app makes it
    with app.app_context():
        from webapp import runtime

        flows = runtime.registry()
        versions = {name: cls.version for name, cls in flows.items()}
        declared = {name: list(cls.search_attributes) for name, cls in flows.items()
                    if cls.search_attributes}
        from webapp.store import db
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()
    started = time.perf_counter()
    connection = sqlite3.connect(building)
    connection.execute("PRAGMA synchronous=OFF")
    columns = list(store.WORKFLOW.c.keys())
    insert_row = (f"INSERT INTO workflow ({', '.join(columns)}) "
                  f"VALUES ({', '.join('?' for _ in columns)})")
    insert_attr = ("INSERT INTO workflow_attr (workflow_id, path, flow, value, updated_at, "
                   "status) VALUES (?, ?, ?, ?, ?, ?)")
    from webapp.runtime.rules import search_key

    base = 1_760_000_000_000
    chunk = 20_000
    for first in range(0, n, chunk):
        rows, attrs = [], []
        for i in range(first, min(n, first + chunk)):
            id, updated = f"w{i:07d}", base + i * 17
            if i % 10 < 7:
                flow, email = "user_onboarding", f"user{i % EMAILS}@example.com"
                state = {"userEmail": email, "waitBeforePromotionEmail": 3000,
                         "waitBeforeEnd": 1000}
                status = "finished" if i % 3 else "waiting"
                step = "step_end" if status == "finished" else "step_process"
                attrs.append((id, "userEmail", flow, search_key(email), updated, status))
            else:
                flow = "interval_payment"
                billing = "active" if (i // 10) % ACTIVE_EVERY == 0 else "cancel"
                state = {"paymentIntervalMs": 10_000, "status": billing, "_cycle": 3,
                         "_nextPaymentAt": updated + 10_000, "currentUsages": [],
                         "receipts": []}
                status = "waiting" if billing == "active" else "finished"
                step = "step_wait" if billing == "active" else "step_end"
                attrs.append((id, "status", flow, search_key(billing), updated, status))
            wake = updated + DAY_MS if status == "waiting" else None
            values = {"id": id, "flow": flow, "step": step, "status": status,
                      "state": json.dumps(state), "cache": "{}", "system": "{}",
                      "inbox": None, "error": None, "wake_at": wake, "lease_owner": None,
                      "lease_expires": None, "version": 3, "log_count": 0,
                      "created_at": updated - 5000, "updated_at": updated,
                      "flow_version": versions[flow], "migrate_error": None}
            rows.append([values[c] for c in columns])
        with connection:
            connection.executemany(insert_row, rows)
            connection.executemany(insert_attr, attrs)
        if first % 200_000 == 0:
            common.progress(f"search: {first + len(rows):,} of {n:,} workflows written")
    with connection:       # indexed by what the flows declare: no reindex at start
        connection.executemany("INSERT OR REPLACE INTO workflow_attr_index (flow, paths) "
                               "VALUES (?, ?)",
                               [(name, json.dumps(paths)) for name, paths in declared.items()])
    connection.close()
    common.progress(f"search: database made in {time.perf_counter() - started:.0f} s")
    building.rename(target)
    return target


# --- the figures -----------------------------------------------------------------------------

def get(app, url: str) -> dict | bytes:
    status, body = common.wsgi(app, "GET", url)
    assert status == 200, (url, status, body[:300] if isinstance(body, bytes) else body)
    return body


def deep_cursor(app, query: str, skip: int) -> str:
    cursor, seen = None, 0
    while seen < skip:
        page = get(app, f"/api/workflows?limit=500{query}" + (f"&cursor={cursor}" if cursor
                                                               else ""))
        cursor, seen = page["next_cursor"], seen + len(page["items"])
    return cursor


def plan(app, url_query: str) -> str:
    """SQLite's plan for the API's list query (which index drives it)."""
    from webapp import runtime
    from webapp.store import WORKFLOW, _filters, _searched, db

    with app.test_request_context():
        where = runtime.current().where(**url_query)
        stmt, lead, rest = _searched([WORKFLOW], where["state"])
        stmt = _filters(stmt, where["flows"], where["statuses"], None, (), (), rest)
        stmt = stmt.order_by(lead.c.updated_at.desc(), lead.c.workflow_id.desc()).limit(51)
        compiled = stmt.compile(dialect=db.engine.dialect,
                                compile_kwargs={"literal_binds": True})
        rows = db.session.execute(db.text(f"EXPLAIN QUERY PLAN {compiled}")).all()
        db.session.remove()
    return "; ".join(row[-1] for row in rows)


def list_figures(quick: bool) -> list[Figure]:
    n = 100_000 if quick else 1_000_000
    batches, per_batch = (3, 20) if quick else (5, 40)
    app = common.make_app(database(n))
    email = quote("user1234@example.com")
    deep = 5_000 if quick else 20_000
    common.progress(f"search: paging {deep:,} rows deep under a filter")
    cursor = quote(deep_cursor(app, "&flow=interval_payment&state.status=%22cancel%22", deep))
    matches = len(get(app, f"/api/workflows?flow=user_onboarding&state.userEmail={email}"
                      )["items"])
    common.progress("search: plan " + plan(app, {"flow": ["interval_payment"],
                                                 "state": {"status": "active"},
                                                 "status": ["waiting"]}))
    cases = [
        ("api", f"rare value: flow=user_onboarding&state.userEmail=… ({matches} match)",
         f"/api/workflows?flow=user_onboarding&state.userEmail={email}"),
        ("api", "rare value, no flow chosen: state.userEmail=…",
         f"/api/workflows?state.userEmail={email}"),
        ("api", f"common value: flow=interval_payment&state.status=active ({n // 20:,}+ match)",
         "/api/workflows?flow=interval_payment&state.status=active"),
        ("api", "common value and status=waiting",
         "/api/workflows?flow=interval_payment&state.status=active&status=waiting"),
        ("api", "common value, limit=500",
         "/api/workflows?flow=interval_payment&state.status=cancel&limit=500"),
        ("api", f"common value, deep page (after {deep:,})",
         f"/api/workflows?flow=interval_payment&state.status=%22cancel%22&cursor={cursor}"),
        ("page", "list page, rare value (with its status counts)",
         f"/workflows?flow=user_onboarding&state.userEmail={email}"),
        ("page", f"list page, common value (counts over its {n // 20:,}+)",
         "/workflows?flow=interval_payment&state.status=active"),
        ("page", f"list page, the commonest value ({n // 4:,} match)",
         "/workflows?flow=interval_payment&state.status=cancel"),
    ]
    for _, _, url in cases:                           # warm the page cache and the app
        get(app, url)
    figures = []
    for group, name, url in cases:
        ms = [common.timed(lambda: get(app, url), per_batch) for _ in range(batches)]
        figures.append(Figure(f"search {group}", f"{name} p95", common.median_of(ms, 95), "ms",
                              # limit=500: ten pages' worth, no target (the list's is 50)
                              at_most=None if "limit=500" in url else LIST_P95_MS,
                              detail=f"{n:,} workflows; p50 {common.median_of(ms, 50):.1f} ms"))
    return figures


def commit_figures(quick: bool) -> list[Figure]:
    """Start ``simple`` and ``simple_searched`` in turns (the same two commits each, one
    indexing two attributes): the time per start of each, and the difference."""
    rounds, per_round = (4, 100) if quick else (8, 250)
    figures = []
    for synchronous in ("FULL", "NORMAL"):
        tmp = common.scratch("tw-bench-search-")
        app = common.make_app(tmp / "commit.sqlite", TINYFLOW_FLOWS=["flows", "bench_search"],
                              TINYFLOW_SQLITE_SYNCHRONOUS=synchronous)
        times: dict[str, list[float]] = {"simple": [], "simple_searched": []}
        with app.app_context():
            from webapp import runtime

            with common.quiet():
                for flow in times:                   # warm
                    for _ in range(20):
                        runtime.start(flow)
                for r in range(rounds):
                    for flow in (times if r % 2 else reversed(list(times))):
                        began = time.perf_counter()
                        for _ in range(per_round):
                            runtime.start(flow)
                        times[flow].append((time.perf_counter() - began) * 1000 / per_round)
            found = runtime.list_workflows(flows=["simple_searched"],
                                           state={"computed": math.pi},
                                           limit=1)[0]
            assert found, "the searched flow's workflows are indexed"
        plain, searched = (statistics.median(times[f]) for f in times)
        overhead = (searched - plain) / plain * 100
        detail = f"synchronous={synchronous}; median of {rounds} rounds of {per_round}"
        figures += [
            Figure("search commit", f"start simple, no attributes ({synchronous})", plain,
                   "ms", detail=detail),
            Figure("search commit", f"start simple, 2 attributes ({synchronous})", searched,
                   "ms", detail=detail),
            Figure("search commit", f"indexing cost per start ({synchronous})", overhead, "%",
                   detail="two commits, each writing 2 attribute rows; no target: "
                          "the issue sets none"),
        ]
    return figures


def measure(quick: bool = False) -> list[Figure]:
    return commit_figures(quick) + list_figures(quick)


if __name__ == "__main__":
    common.main(measure, __doc__)
