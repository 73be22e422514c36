"""Benchmark: history (issue 15). What recording each step visit's state costs, what the
history API answers in for a long life, and what a visit costs on disk.

    python tests/bench/bench_history_api.py [--json] [--quick]

- ``simple`` workflows through the runtime with TINYFLOW_HISTORY on and off, on two SQLite
  files (WAL, synchronous=FULL), rounds alternating: the cost of recording (target <= 10 %);
- ``GET /api/workflows/<id>/history`` (whole WSGI requests) for a workflow with 10,000 visits:
  the first page, pages at random cursors, the last page (target p95 <= 20 ms);
- bytes per visit in ``workflow_visit`` (SQLite's dbstat: the table's pages, which hold its
  primary key) for the 10,000 visits whose state changes every time, and for visits that
  begin with the state before (stored as NULL), with the audit log's bytes per visit beside.
"""
from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))            # tests/: history_flows

import common  # noqa: E402
from common import Figure  # noqa: E402

MAX_OVERHEAD = 10.0          # % of the simple-flow throughput
MAX_P95_MS = 20.0
VISITS = 10_000
FLOWS = ["flows", "history_flows"]


CPU_MS: dict[str, list[float]] = {"on": [], "off": []}


def simple_rate(app, n: int, mode: str | None = None) -> float:
    """``n`` simple workflows through the runtime: workflows per second (wall clock); the
    process's CPU milliseconds per workflow go to ``CPU_MS[mode]``."""
    from webapp import runtime

    with app.app_context(), common.quiet():
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(n):
            row = runtime.start("simple")
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert row.status == "finished"
    if mode:
        CPU_MS[mode].append(cpu * 1000 / n)
    return n / elapsed


def table_bytes(app, *names: str) -> int:
    from webapp.store import db

    with app.app_context():
        marks = ",".join(f"'{name}'" for name in names)
        found = db.session.execute(db.text(
            f"SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name IN ({marks})")).scalar()
        db.session.remove()
    return int(found)


def measure(quick: bool = False) -> list[Figure]:
    rounds, n = (6, 150) if quick else (15, 250)
    tmp = common.scratch("tw-bench-history-")
    on = common.make_app(tmp / "on.sqlite", TINYFLOW_HISTORY=True, TINYFLOW_FLOWS=FLOWS)
    off = common.make_app(tmp / "off.sqlite", TINYFLOW_HISTORY=False, TINYFLOW_FLOWS=FLOWS)
    simple_rate(on, 50)
    simple_rate(off, 50)
    rates: dict[str, list[float]] = {"on": [], "off": []}
    for r in range(rounds):
        common.progress(f"history: throughput round {r + 1}/{rounds}")
        order = (("on", on), ("off", off)) if r % 2 == 0 else (("off", off), ("on", on))
        for name, app in order:
            rates[name].append(simple_rate(app, n, name))
    rate_on, rate_off = statistics.median(rates["on"]), statistics.median(rates["off"])
    # Each round runs both back to back (in turns first), so a noisy moment on a shared
    # machine hits both: the cost is the median of the rounds' own ratios.
    overhead = statistics.median((off_r - on_r) / off_r * 100
                                 for on_r, off_r in zip(rates["on"], rates["off"]))
    simple_visits = 3 * (50 + rounds * n)
    simple_bytes = table_bytes(on, "workflow_visit") / simple_visits

    # One workflow with 10,000 visits, its state changing in each (looping counts in it).
    big = common.make_app(tmp / "big.sqlite", TINYFLOW_FLOWS=FLOWS)
    from webapp import runtime

    with big.app_context():
        runtime.start("looping", {"n": VISITS // 2 + 1}, id="long")
        found = runtime.current().history("long", limit=1)
    assert found["items"][0]["seq"] == 0
    visit_bytes = table_bytes(big, "workflow_visit") / (VISITS + 1)
    log_bytes = table_bytes(big, "workflow_log") / (VISITS + 1)

    # The same 10,000 visits whose state does not change: each row's state is NULL.
    same = common.make_app(tmp / "same.sqlite", TINYFLOW_FLOWS=FLOWS)
    from webapp import store as storage

    with same.app_context():
        runtime.start("simple", id="s")
        rows = [storage.visit_params("s", seq, "step_end", 1_723_991_733_000 + seq, seq + 8,
                                     None) for seq in range(3, 3 + VISITS)]
        storage.db.session.execute(storage.insert(storage.VISIT), rows)
        storage.db.session.commit()
    same_bytes = (table_bytes(same, "workflow_visit") - 4096) / VISITS

    cursors = []
    with big.app_context():
        cursor = None
        while True:
            page = runtime.current().history("long", cursor=cursor, limit=100)
            cursor = page["next_cursor"]
            if not cursor:
                break
            cursors.append(cursor)
    common.wsgi(big, "GET", "/api/workflows/long/history")        # warm
    repeat = 100 if quick else 300
    first = common.timed(lambda: common.wsgi(big, "GET", "/api/workflows/long/history"), repeat)
    rng = random.Random(15)
    anywhere = common.timed(lambda: common.wsgi(
        big, "GET", f"/api/workflows/long/history?cursor={rng.choice(cursors)}"), repeat)
    last = common.timed(lambda: common.wsgi(
        big, "GET", f"/api/workflows/long/history?cursor={cursors[-1]}"), repeat)
    status, answer = common.wsgi(big, "GET", f"/api/workflows/long/history?cursor={cursors[-1]}")
    assert status == 200 and answer["items"][-1]["seq"] == VISITS, answer["items"][-1]
    one = common.timed(lambda: common.wsgi(big, "GET", "/api/workflows/long/history/5000"),
                       repeat)

    detail = f"median of {rounds} alternating batches of {n}"
    spread = sorted((off_r - on_r) / off_r * 100 for on_r, off_r in zip(rates["on"], rates["off"]))
    page_detail = f"{VISITS + 1:,} visits, 100 a page, {repeat} requests"
    return [
        Figure("history", "simple workflows, history on", rate_on, "wf/s", detail=detail),
        Figure("history", "simple workflows, history off", rate_off, "wf/s", detail=detail),
        Figure("history", "cost of recording history", overhead, "%", at_most=MAX_OVERHEAD,
               detail=f"median of the {rounds} rounds' ratios; they ranged "
                      f"{spread[0]:.1f} to {spread[-1]:.1f} %"),
        Figure("history", "CPU per simple workflow, history on",
               statistics.median(CPU_MS["on"]), "ms", detail="median over the batches"),
        Figure("history", "CPU per simple workflow, history off",
               statistics.median(CPU_MS["off"]), "ms", detail="median over the batches"),
        Figure("history", "GET history, first page, p95", common.percentile(first, 95), "ms",
               at_most=MAX_P95_MS, detail=page_detail),
        Figure("history", "GET history, a page at a random cursor, p95",
               common.percentile(anywhere, 95), "ms", at_most=MAX_P95_MS, detail=page_detail),
        Figure("history", "GET history, the last page, p95", common.percentile(last, 95), "ms",
               at_most=MAX_P95_MS, detail=page_detail),
        Figure("history", "GET one visit with its diff, p95", common.percentile(one, 95), "ms",
               at_most=MAX_P95_MS),
        Figure("history", "bytes per visit, state changed (small state)", visit_bytes, "B",
               detail=f"audit log beside it: {log_bytes:.0f} B per visit"),
        Figure("history", "bytes per visit, state as before (NULL)", same_bytes, "B"),
        Figure("history", "bytes per visit of a simple workflow", simple_bytes, "B",
               detail="3 visits each, states of 0-60 characters"),
    ]


if __name__ == "__main__":
    common.main(measure, __doc__)
