"""Databases of 100,000 or 1,000,000 workflows for the benchmarks, made in seconds or minutes
and kept between runs.

A few workflows of each flow and state are really run through the runtime (the demo's, and
some with longer histories); the rest are their clones, with new ids and times, written
straight into the store's tables (executemany of tuples on SQLite's driver, one transaction).
The files are kept in ``common.CACHE_DIR``, named by the schema version and this generator's
version, so a change to either makes new ones.

- ``dashboard()``: every flow and state, about 20 audit-log entries each on average, plus
  ``LONG_ID`` with more than 1,000 entries.
- ``runner()``: 100,000 waiting workflows, ``DUE`` of them with a timer already due.
"""
from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

GENERATOR = 5        # bump when what is generated changes
LONG_ID = "long-history"
DUE = 10_000
DAY_MS = 86_400_000
CHUNK = 10_000       # workflows written per executemany


class Clock:
    """The app's clock while templates are made: each step of a story sets it."""

    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def dashboard(n: int = 100_000) -> Path:
    """The path of a database of ``n`` workflows of every flow and state (made once)."""
    return _cached("dashboard", n, _fill_dashboard)


def runner(n: int = 100_000) -> Path:
    """The path of a database of ``n`` waiting workflows, ``DUE`` of them due now (made once)."""
    return _cached("runner", n, _fill_runner)


def _cached(kind: str, n: int, fill) -> Path:
    from webapp import store

    target = common.CACHE_DIR / f"{kind}-{n}-schema{store.SCHEMA_VERSION}-gen{GENERATOR}.sqlite"
    if target.exists():
        return target
    common.CACHE_DIR.mkdir(parents=True, exist_ok=True)
    building = target.with_name(f"{target.stem}.{os.getpid()}.building")
    common.progress(f"making {target} (once; kept for the next runs)")
    started = time.perf_counter()
    clock = Clock(time.time())
    app = common.make_app(building, TINYFLOW_SQLITE_SYNCHRONOUS="OFF", TINYFLOW_CLOCK=clock)
    with app.app_context(), common.quiet():
        fill(clock, n)
        store.db.session.remove()
        store.db.engine.dispose()          # the last connection folds the WAL into the file
    os.replace(building, target)
    common.progress(f"made in {time.perf_counter() - started:.0f} s")
    return target


# --- templates: real workflows, run through the runtime -------------------------------------

def _wrong(number: int, k: int) -> int:
    guess = (number + 7 * (k + 1)) % 101
    return guess if guess != number else (guess + 1) % 101


def _number(wf_id: str) -> int:
    from webapp import runtime

    return runtime.describe(runtime.get(wf_id))["state"]["number"]


def _long_games(clock: Clock) -> list[str]:
    """Guess games with longer histories than the demo's (each wrong answer adds entries)."""
    from webapp import runtime

    made = []
    for flow, wrong in (("guess_game", 4), ("guess_game", 8), ("guess_game_2", 3),
                        ("guess_game_2", 6)):
        clock.now -= 600
        wf_id = runtime.start(flow, now=clock.now).id
        number = _number(wf_id)
        for k in range(wrong):
            clock.now += 20
            name = f"event_ask_{k}" if flow == "guess_game" else "event_ask"
            runtime.send(wf_id, name, _wrong(number, k), now=clock.now)
        made.append(wf_id)
    return made


def _running(clock: Clock) -> str:
    """A simple workflow whose process stopped between two steps (status running)."""
    from flows.simple import Simple
    from webapp import runtime

    wf = Simple(now=clock.now)
    for checkpoint in wf.exec(clock.now, before_actions=True):
        if checkpoint.kind == "before_action":
            break
    return runtime.import_snapshots(json.loads(json.dumps(wf.to_json())), flow="simple")[0]


def _templates(ids: list[str]) -> list[tuple[dict, list[dict]]]:
    """Each workflow's row and its audit-log rows, as dicts."""
    from webapp.store import LOG, WORKFLOW, db

    out = []
    for wf_id in ids:
        row = dict(db.session.execute(
            db.select(WORKFLOW).where(WORKFLOW.c.id == wf_id)).mappings().one())
        logs = [dict(r) for r in db.session.execute(
            db.select(LOG).where(LOG.c.workflow_id == wf_id).order_by(LOG.c.n)).mappings()]
        out.append((row, logs))
    return out


# --- clones ----------------------------------------------------------------------------------

def _clone(templates, n: int, rng: random.Random, *, spread_ms: int, shift_wake: bool) -> None:
    """Write ``n`` clones of ``templates`` (picked in turn): new ids, creation times spread
    over the ``spread_ms`` before now, every other time moved with them (``wake_at`` too
    when ``shift_wake``, else kept, so that due timers stay due).

    The rows go straight to SQLite's driver (executemany of tuples, in one transaction):
    SQLAlchemy's per-row work took longer than SQLite's, and 1,000,000 workflows (about 20
    million log rows) are made in minutes."""
    from webapp.store import LOG, WORKFLOW, db

    now_ms = int(time.time() * 1000)
    ids = sorted({f"{rng.getrandbits(64):016x}" for _ in range(int(n * 1.01) + 10)})
    rng.shuffle(ids)
    ids = sorted(ids[:n])                  # in key order: the B-trees fill from one end
    columns, log_columns = list(WORKFLOW.c.keys()), list(LOG.c.keys())
    at = {name: i for i, name in enumerate(columns)}
    log_at = {name: i for i, name in enumerate(log_columns)}
    picked = [([row[c] for c in columns], [[e[c] for c in log_columns] for e in entries])
              for row, entries in templates]
    insert_row = (f"INSERT INTO workflow ({', '.join(columns)}) "
                  f"VALUES ({', '.join('?' for _ in columns)})")
    insert_log = (f"INSERT INTO workflow_log ({', '.join(log_columns)}) "
                  f"VALUES ({', '.join('?' for _ in log_columns)})")
    cursor = db.session.connection().connection.driver_connection.cursor()
    for start in range(0, n, CHUNK):
        rows, logs = [], []
        for i in range(start, min(n, start + CHUNK)):
            row, entries = picked[rng.randrange(len(picked))]
            created = now_ms - DAY_MS - rng.randrange(spread_ms)
            shift = created - row[at["created_at"]]
            wake = row[at["wake_at"]]
            row = list(row)
            row[at["id"]], row[at["created_at"]] = ids[i], created
            row[at["updated_at"]] += shift
            if shift_wake and wake is not None:
                row[at["wake_at"]] = wake + shift
            rows.append(row)
            for e in entries:
                e = list(e)
                e[log_at["workflow_id"]] = ids[i]
                if e[log_at["at"]] is not None:
                    e[log_at["at"]] += shift
                logs.append(e)
        cursor.executemany(insert_row, rows)
        cursor.executemany(insert_log, logs)
        if start and start % 200_000 < CHUNK:
            common.progress(f"  {start:,} of {n:,} workflows written")
    cursor.close()
    db.session.commit()


def _weighted(templates, weight) -> list:
    return [t for t in templates for _ in range(weight(t[0]))]


def _fill_dashboard(clock: Clock, n: int) -> None:
    from bench_diagram import long_game
    from webapp import demo, runtime

    demo.fill(now=clock.now)
    ids = [row.id for row in runtime.list_workflows(limit=500)[0]]
    ids += _long_games(clock) + [_running(clock)]
    templates = _templates(ids)
    # Longer histories are picked more often: about 20 entries per workflow on average.
    pool = _weighted(templates, lambda row: 1 + row["log_count"] // 3)
    _clone(pool, n - len(ids) - 1, random.Random(6), spread_ms=30 * DAY_MS, shift_wake=True)
    game = long_game()
    runtime.import_snapshots([[LONG_ID, json.loads(json.dumps(game.to_json()))]],
                             flow="guess_game_2")


def _fill_runner(clock: Clock, n: int) -> None:
    """``DUE`` billing workflows whose cycle timer was due an hour ago (billed hourly, so
    firing one sets a timer an hour ahead), and waiting workflows whose timers are a year
    away or that wait for an event."""
    from webapp import runtime

    year = 365 * 86_400
    due = runtime.start("interval_payment", {"userEmail": "due@example.com",
                                             "paymentIntervalMs": 3_600_000},
                        now=clock.now - 7_200).id
    later = [runtime.start("interval_payment", {"userEmail": "later@example.com",
                                                "paymentIntervalMs": year * 1000},
                           now=clock.now).id,
             runtime.start("user_onboarding", {"userEmail": "later@example.com"},
                           now=clock.now + year).id]
    later += _long_games(clock)
    rng = random.Random(7)
    _clone(_templates([due]), DUE - 1, rng, spread_ms=DAY_MS, shift_wake=False)
    _clone(_templates(later), n - DUE - len(later), rng, spread_ms=30 * DAY_MS,
           shift_wake=False)
