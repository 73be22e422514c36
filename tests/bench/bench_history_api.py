"""Benchmark: history (issue 15). What recording each step visit's state costs, what the
history API answers in for a long life, and what a visit costs on disk.

    python tests/bench/bench_history_api.py [--json] [--quick]

- ``simple`` workflows through the runtime with TINYFLOW_HISTORY on and off, on two SQLite
  files (WAL, synchronous=FULL), in short slices taking turns (``common.setting_cost``): the
  cost of recording (target <= 10 %);
- ``GET /api/workflows/<id>/history`` (whole WSGI requests) for a workflow with 10,000 visits:
  the first page, pages at random cursors, the last page (target p95 <= 20 ms);
- the same cost counted in CPU instructions per workflow (valgrind's callgrind, when
  installed), which does not move with the machine's load the way a rate does;
- bytes per visit in ``workflow_visit`` (SQLite's dbstat: the table's pages, which hold its
  primary key) for the 10,000 visits whose state changes every time, and for visits that
  begin with the state before (stored as NULL), with the audit log's bytes per visit beside.
"""
from __future__ import annotations

import random
import sys
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


def table_bytes(app, *names: str) -> int:
    from webapp.store import db

    with app.app_context():
        marks = ",".join(f"'{name}'" for name in names)
        found = db.session.execute(db.text(
            f"SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name IN ({marks})")).scalar()
        db.session.remove()
    return int(found)


def measure(quick: bool = False) -> list[Figure]:
    slices = 60 if quick else 300
    tmp = common.scratch("tw-bench-history-")
    on = common.make_app(tmp / "on.sqlite", TINYFLOW_HISTORY=True, TINYFLOW_FLOWS=FLOWS)
    off = common.make_app(tmp / "off.sqlite", TINYFLOW_HISTORY=False, TINYFLOW_FLOWS=FLOWS)
    common.progress(f"history: {slices} slices of 10 simple workflows, on and off in turns")
    cost = common.setting_cost(on, off, slices)
    simple_visits = 3 * (50 + cost.slices * cost.size)
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

    detail = f"{cost.slices} slices of {cost.size} in turns, summed"
    page_detail = f"{VISITS + 1:,} visits, 100 a page, {repeat} requests"
    return [
        Figure("history", "simple workflows, history on", cost.rate_on, "wf/s", detail=detail),
        Figure("history", "simple workflows, history off", cost.rate_off, "wf/s",
               detail=detail),
        Figure("history", "cost of recording history", cost.percent, "%",
               at_most=MAX_OVERHEAD, detail="1 - on / off, " + detail),
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
        *instruction_figures(quick),
    ]


def instruction_figures(quick: bool) -> list[Figure]:
    """The cost of recording in CPU instructions per simple workflow (callgrind: the same
    count whatever else the machine runs); none without valgrind."""
    count = 100 if quick else 400
    on = common.instructions_per_simple({"TINYFLOW_HISTORY": "on"}, count)
    off = common.instructions_per_simple({"TINYFLOW_HISTORY": "off"}, count)
    if on is None or off is None:
        return []
    detail = f"callgrind, {count} workflows after 100 of warm-up"
    return [
        Figure("history", "instructions per simple workflow, history on", on / 1e6, "M",
               detail=detail),
        Figure("history", "instructions per simple workflow, history off", off / 1e6, "M",
               detail=detail),
        Figure("history", "cost of recording history, in CPU instructions",
               (on - off) / off * 100, "%",
               detail="(on - off) / off; user-space CPU only (no fsync wait, no kernel "
                      "time): steadier than the rate, but not the throughput target"),
    ]


if __name__ == "__main__":
    common.main(measure, __doc__)
