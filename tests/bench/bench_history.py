"""Benchmark: one workflow with a 1,000,000-entry audit log (issue 11, long histories).

Run ``python tests/bench/bench_history.py [--entries N] [--json]``. It stores a guess game
and appends N audit-log entries to it (visits of its step, as a long-running game writes),
then measures, in this process, with the server's memory (VmRSS) read before and after:

- the workflow page's first view and its p50 / p95 over later views (targets: 100 ms);
- ``diagram.svg``, a page of ``/logs`` and ``GET /api/workflows/<id>``;
- the memory the server grew by over all of it (target: 50 MB);
- ``diagram.svg`` of a workflow whose history names 2,000 steps (a summary, not a 500).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, update  # noqa: E402

from webapp import create_app, diagram, store  # noqa: E402
from webapp.store import LOG, WORKFLOW, db  # noqa: E402

T0 = 1_723_991_733


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def append(app, id: str, count: int, make) -> None:
    with app.app_context():
        first = db.session.execute(db.select(WORKFLOW.c.log_count).where(
            WORKFLOW.c.id == id)).scalar_one() + 1
        for start in range(0, count, 20_000):
            entries = [make(i) for i in range(start, min(count, start + 20_000))]
            db.session.execute(insert(LOG), store.log_params(id, first + start, entries))
        db.session.execute(update(WORKFLOW).where(WORKFLOW.c.id == id).values(
            log_count=first - 1 + count))
        db.session.commit()


def timed_get(client, url: str) -> tuple[float, int]:
    start = time.perf_counter()
    answer = client.get(url)
    return (time.perf_counter() - start) * 1000, answer.status_code


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tw-history-"))
    app = create_app({"TESTING": True, "TINYFLOW_INSTANCE": str(tmp / "instance"),
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp / 'history.sqlite'}",
                      "TINYFLOW_CLOCK": lambda: T0})
    client = app.test_client()
    client.post("/api/workflows", json={"flow": "guess_game_2", "id": "long"})
    client.post("/api/workflows", json={"flow": "guess_game_2", "id": "wide"})
    started = time.perf_counter()
    append(app, "long", args.entries, lambda i: {
        "type": "transition" if i % 4 == 0 else "note", "_at": T0 * 1000 + i,
        "_step": "step_ask", "values": {"from": "step_ask", "to": "step_ask", "stepSeq": i}
        if i % 4 == 0 else {"i": i}})
    steps = [f"s{i}" for i in range(2001)]
    append(app, "wide", 2000, lambda i: {"type": "transition", "_at": T0 * 1000 + i,
                                         "_step": steps[i + 1],
                                         "values": {"from": steps[i], "to": steps[i + 1]}})
    setup_s = time.perf_counter() - started

    figures = {"entries": args.entries, "setup_s (direct inserts)": round(setup_s, 1)}
    diagram.warm_up()            # as `serve` does at start: the WebAssembly Graphviz loaded
    client.get("/workflows/wide")   # and one page drawn (templates compiled)
    before = rss_mb()
    first_ms, status = timed_get(client, "/workflows/long")
    assert status == 200, status
    figures["page first view ms"] = round(first_ms, 1)
    views = [timed_get(client, "/workflows/long")[0] for _ in range(args.repeat)]
    figures["page p50 ms"] = round(statistics.median(views), 1)
    figures["page p95 ms"] = round(sorted(views)[int(len(views) * 0.95) - 1], 1)
    for name, url in (("diagram.svg", "/workflows/long/diagram.svg"),
                      ("logs page (100)", "/api/workflows/long/logs?limit=100"),
                      ("GET /api/workflows/<id>", "/api/workflows/long")):
        ms = [timed_get(client, url) for _ in range(args.repeat)]
        assert all(code == 200 for _, code in ms), (url, ms)
        figures[f"{name} p50 ms"] = round(statistics.median(t for t, _ in ms), 1)
    figures["server memory growth MB"] = round(rss_mb() - before, 1)
    diagram._cache.clear()
    wide_ms, wide_status = timed_get(client, "/workflows/wide/diagram.svg")
    figures["2,000-step diagram.svg"] = f"{wide_status} in {wide_ms:.0f} ms"
    figures["targets met"] = (figures["page first view ms"] <= 100
                              and figures["page p95 ms"] <= 100
                              and figures["server memory growth MB"] <= 50
                              and wide_status == 200)
    if args.json:
        print(json.dumps(figures))
    else:
        for name, value in figures.items():
            print(f"{name:32} {value}")


if __name__ == "__main__":
    main()
