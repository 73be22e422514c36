"""Benchmark: flow statistics (issue 13) at 1,000,000 workflows, and what keeping them costs.

- ``GET /api/flows/guess_game_2/stats``, ``.../activity``, the flow page ``/flows/guess_game_2``
  and the overview ``/``, each request whole through the WSGI app, on a SQLite file holding
  N workflows of guess_game_2 (default 1,000,000) created over 30 days, with their counters.
  The rows are generated, not run: 100 template workflows really run through the runtime on
  every path (won at once, after wrong guesses, waiting, cancelled, with times in step), then
  cloned with new ids, shifted by whole days; their counters are the templates' (computed by
  ``counters.deltas``, as commits do) shifted the same way. The clones' audit-log rows are not
  written (they would take minutes and gigabytes, and no figure measured here reads them).
- The throughput of the ``simple`` flow (start to end, two commits each, synchronous=FULL)
  with TINYFLOW_STATS on and off, in short slices taking turns (``common.setting_cost``;
  the machine is shared), and the same in CPU instructions (callgrind) when valgrind is there.

    python tests/bench/bench_stats.py [--json] [--quick] [--workflows N]
"""
from __future__ import annotations

import random
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # tests/: fakeclock

import common  # noqa: E402
from common import Figure  # noqa: E402

P95_MS = 50.0
MAX_COST = 0.10                # keeping the statistics: at most 10 % of the throughput
DAYS = 30
TEMPLATES = 100
GENERATOR = 3                  # bump when what is generated changes
T0 = 1_764_547_200.0           # 2025-12-01T00:00:00Z: the first workflow's creation


def _templates(tmp: Path):
    """Run TEMPLATES guess_game_2 workflows on every path; their rows and counter rows."""
    from fakeclock import FakeClock
    from webapp.runtime import Runtime
    from webapp.runtime.counters import Recount

    clock = FakeClock(T0)
    rt = Runtime(f"sqlite:///{tmp / 'templates.sqlite'}", flows=["flows"], clock=clock)
    rng = random.Random(13)
    for i in range(TEMPLATES):
        id = f"t{i}"
        number = rt.start("guess_game_2", id=id)["state"]["number"]
        for _ in range(i % 5):
            clock.advance(rng.uniform(1, 600))
            rt.send(id, "event_ask", (number + 1 + rng.randrange(99)) % 101)
        clock.advance(rng.uniform(1, 300))
        if i % 7 == 3:
            continue                               # still waiting for a guess
        if i % 11 == 5:
            rt.cancel(id, "gave up")
            continue
        rt.send(id, "event_ask", number)
    from webapp.store import LOG, WORKFLOW
    with rt.context():
        session = rt.store.session
        rows = [dict(r._mapping) for r in session.execute(WORKFLOW.select())]
        logs: dict[str, list] = {}
        for r in session.execute(LOG.select().order_by(LOG.c.workflow_id, LOG.c.n)):
            logs.setdefault(r.workflow_id, []).append(r)
        rt.store.end()
    counted = {}
    for row in rows:
        recount = Recount()
        recount(row["flow"], row["created_at"], row["status"], row["step"],
                logs.get(row["id"], []), row["flow_version"])
        counted[row["id"]] = recount.rows()
    rt.store.dispose()
    return rows, counted


def dataset(n: int) -> Path:
    """A SQLite file of ``n`` generated guess_game_2 workflows and their counters (kept)."""
    from webapp import store
    from webapp.runtime.counters import ALL, DAY_MS

    target = common.CACHE_DIR / f"stats-{n}-schema{store.SCHEMA_VERSION}-gen{GENERATOR}.sqlite"
    if target.exists():
        return target
    common.CACHE_DIR.mkdir(parents=True, exist_ok=True)
    common.progress(f"making {target} (once; kept for the next runs)")
    started = time.perf_counter()
    tmp = common.scratch("tw-bench-stats-")
    with common.quiet():
        rows, counted = _templates(tmp)
    building = target.with_name(target.stem + ".building")
    building.unlink(missing_ok=True)
    app = common.make_app(building, TINYFLOW_SQLITE_SYNCHRONOUS="OFF")
    with app.app_context():
        store.db.session.remove()
        store.db.engine.dispose()                  # the tables made, by the app
    rng = random.Random(1)
    combos: dict[tuple[int, int], int] = {}
    columns = list(rows[0])
    conn = sqlite3.connect(building)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    insert = (f"INSERT INTO workflow ({', '.join(columns)}) "
              f"VALUES ({', '.join('?' for _ in columns)})")
    batch = []
    for i in range(n):
        t, shift = i % len(rows), rng.randrange(DAYS)
        combos[(t, shift)] = combos.get((t, shift), 0) + 1
        row = rows[t]
        moved = shift * DAY_MS
        batch.append([f"w{i:07d}" if name == "id" else
                      row[name] + moved if name in ("created_at", "updated_at") else
                      row[name] + moved if name == "wake_at" and row[name] else row[name]
                      for name in columns])
        if len(batch) == 20_000:
            conn.executemany(insert, batch)
            batch = []
    if batch:
        conn.executemany(insert, batch)
    totals: dict[tuple, list[int]] = {}
    for (t, shift), times in combos.items():
        for c in counted[rows[t]["id"]]:
            period = (c["period"] if c["period"] == ALL else
                      c["period"] + shift * (24 if c["kind"] == "act" else 1))
            key = (c["flow"], c["kind"], period, c["a"], c["b"])
            found = totals.setdefault(key, [0, 0])
            found[0] += c["n"] * times
            found[1] += c["v"] * times
    conn.executemany("INSERT INTO flow_stat (flow, kind, period, a, b, n, v) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)",
                     [(*key, n_, v) for key, (n_, v) in totals.items()])
    conn.commit()
    conn.close()
    building.rename(target)
    common.progress(f"made in {time.perf_counter() - started:.0f} s "
                    f"({len(totals):,} counter rows)")
    return target


def measure(quick: bool = False, workflows: int | None = None) -> list[Figure]:
    from webapp import diagram

    n = workflows or (100_000 if quick else 1_000_000)
    batches, per_batch = (3, 10) if quick else (5, 30)
    app = common.make_app(dataset(n), TINYFLOW_CLOCK=lambda: T0 + DAYS * 86400)
    diagram.warm_up()
    figures = []
    for name, url, marker in [
            ("GET /api/flows/<name>/stats", "/api/flows/guess_game_2/stats", None),
            ("GET /api/flows/<name>/stats?since= (7 days)",
             "/api/flows/guess_game_2/stats?since=2025-12-24T00:00Z", None),
            ("GET /api/flows/<name>/activity", "/api/flows/guess_game_2/activity", None),
            ("the flow page /flows/<name>", "/flows/guess_game_2", b'id="fleet-steps"'),
            ("the overview /", "/", b'id="overview"')]:
        def get(url=url, marker=marker):
            status, body = common.wsgi(app, "GET", url)
            assert status == 200, (url, status)
            assert marker is None or marker in body, url
        get()                                       # warm: templates, statement caches
        runs = [common.timed(get, per_batch) for _ in range(batches)]
        figures.append(Figure("stats", f"{name} p95", common.median_of(runs, 95), "ms",
                              at_most=P95_MS,
                              detail=f"{n:,} workflows; median of {batches} batches of "
                                     f"{per_batch}"))
    with app.app_context():
        from webapp import runtime
        answer = runtime.current().flow_stats("guess_game_2")
        versions = runtime.current().version_counts("guess_game_2")
    assert answer["workflows"] == n, answer["workflows"]
    assert sum(versions.values()) == n, versions        # the flow page's versions table
    tmp = common.scratch("tw-bench-stats-rate-")
    slices = 60 if quick else 300
    common.progress(f"stats: {slices} slices of 10 simple workflows, on and off in turns")
    cost = common.setting_cost(common.make_app(tmp / "on.sqlite", TINYFLOW_STATS=True),
                               common.make_app(tmp / "off.sqlite", TINYFLOW_STATS=False),
                               slices)
    detail = f"{cost.slices} slices of {cost.size} in turns, summed"
    figures += [
        Figure("stats", "simple flow with TINYFLOW_STATS on", cost.rate_on, "wf/s",
               detail=detail),
        Figure("stats", "simple flow with TINYFLOW_STATS off", cost.rate_off, "wf/s",
               detail=detail),
        Figure("stats", "cost of keeping the statistics", cost.percent, "%",
               at_most=MAX_COST * 100, detail="1 - on / off, " + detail),
    ]
    count = 100 if quick else 400
    on = common.instructions_per_simple({"TINYFLOW_STATS": "on"}, count)
    off = common.instructions_per_simple({"TINYFLOW_STATS": "off"}, count)
    if on is not None and off is not None:      # callgrind: the same whatever the load
        detail = f"callgrind, {count} workflows after 100 of warm-up"
        figures += [
            Figure("stats", "instructions per simple workflow, statistics on", on / 1e6, "M",
                   detail=detail),
            Figure("stats", "instructions per simple workflow, statistics off", off / 1e6,
                   "M", detail=detail),
            Figure("stats", "cost of keeping the statistics, in CPU instructions",
                   (on - off) / off * 100, "%",
                   detail="(on - off) / off; user-space CPU only (no fsync wait, no "
                          "kernel time): steadier than the rate, but not the target"),
        ]
    return figures


if __name__ == "__main__":
    common.main(measure, __doc__)
