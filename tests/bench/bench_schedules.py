"""Benchmark: schedules. 10,000 schedules due at once on a SQLite file (WAL,
synchronous=FULL), fired by one real ``tiny-workflow worker --exit-when-idle`` process: how
fast it fires them (and runs the workflows they start), each exactly once. Also the fires
alone, in-process (``Runtime.fire_due_schedules`` until none is due).

    python tests/bench/bench_schedules.py [--json] [--quick]
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from common import Figure  # noqa: E402

from webapp import store  # noqa: E402
from webapp.runtime import Runtime, schedules  # noqa: E402

FIRES_PER_S = 1_000.0
N = 10_000
FLOWS = "flows,schedule_flows"
WORKER = "from webapp.cli import main; main()"
TESTS = common.ROOT / "tests"


def new_year() -> float:
    now = datetime.now(timezone.utc)
    return datetime(now.year, 1, 1, tzinfo=timezone.utc).timestamp()


def make_db(path: Path, n: int) -> None:
    """``n`` schedules of the ``tick`` flow, each with its 1 January fire due (catch-up: a
    year), written in one transaction."""
    sys.path.insert(0, str(TESTS))
    rt = Runtime(f"sqlite:///{path}", flows=FLOWS.split(","))
    now = int(time.time() * 1000)
    due = int(new_year() * 1000)
    rows = [{"id": f"bench-{i:05}", "flow": "tick", "cron": "0 0 1 1 *", "timezone": "UTC",
             "state": '{"i": %d}' % i, "overlap": "skip", "catchup": schedules.MAX_CATCHUP,
             "paused": False, "next_at": due, "last_at": None, "last_workflow_id": None,
             "version": 1, "created_at": now, "updated_at": now} for i in range(n)]
    rt.store.transaction(lambda: rt.store.session.execute(store.insert(store.SCHEDULE), rows))
    rt.store.dispose()


def check_once(path: Path, n: int) -> None:
    """Every schedule started exactly its one workflow, and none is due any more."""
    fire = schedules.fire_iso(new_year())
    with sqlite3.connect(path) as conn:
        ids = [row[0] for row in conn.execute("SELECT id FROM workflow")]
        due = conn.execute("SELECT count(*) FROM workflow_schedule WHERE next_at <= ?",
                           (int(time.time() * 1000),)).fetchone()[0]
        last = conn.execute("SELECT count(*) FROM workflow_schedule WHERE last_workflow_id "
                            "= id || '@' || ?", (fire,)).fetchone()[0]
    assert sorted(ids) == [f"bench-{i:05}@{fire}" for i in range(n)], "each fire exactly once"
    assert due == 0, f"{due} schedules are still due"
    assert last == n


def run_worker(db: Path, instance: Path, n: int) -> tuple[float, float]:
    """One worker until idle: seconds from its first line until every schedule had fired
    (its workflow committed; read by polling the file), and until its last line (every
    workflow also run)."""
    env = {**os.environ, "TINYFLOW_DATABASE_URL": f"sqlite:///{db}",
           "TINYFLOW_INSTANCE": str(instance), "PYTHONUNBUFFERED": "1",
           "TINYFLOW_FLOWS": FLOWS,
           "PYTHONPATH": os.pathsep.join([str(common.ROOT), str(TESTS)])}
    child = subprocess.Popen([sys.executable, "-c", WORKER, "worker", "--exit-when-idle"],
                             cwd=common.ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    first = child.stdout.readline()
    started = time.perf_counter()
    fired_at = None
    due = int(new_year() * 1000)
    with sqlite3.connect(db, timeout=30) as conn:
        while child.poll() is None and fired_at is None:
            count = conn.execute("SELECT count(*) FROM workflow_schedule WHERE next_at > ?",
                                 (due,)).fetchone()[0]
            conn.rollback()
            if count == n:
                fired_at = time.perf_counter()
            else:
                time.sleep(0.005)
    lines = [first.strip()] + [line.strip() for line in child.stdout]
    ended = time.perf_counter()
    errors = child.stderr.read()
    child.wait()
    child.stdout.close()
    child.stderr.close()
    if child.returncode or len(lines) < 2 or lines[-1] != "worker stopped":
        raise RuntimeError(f"the worker failed ({child.returncode}): {lines} {errors[-2000:]}")
    return (fired_at or ended) - started, ended - started


def fire_in_process(db: Path) -> float:
    """Seconds for ``fire_due_schedules`` to fire every due schedule (the runs not included)."""
    rt = Runtime(f"sqlite:///{db}", flows=FLOWS.split(","))
    started = time.perf_counter()
    while rt.fire_due_schedules(limit=200):
        pass
    seconds = time.perf_counter() - started
    rt.store.dispose()
    return seconds


def measure(quick: bool = False) -> list[Figure]:
    runs = 2 if quick else 3
    n = 2_000 if quick else N
    tmp = Path(tempfile_dir())
    worker_rates, drain_rates, fire_rates = [], [], []
    try:
        for r in range(runs):
            common.progress(f"schedules: run {r + 1}/{runs}")
            db = tmp / f"schedules-{r}.sqlite"
            make_db(db, n)
            fired, drained = run_worker(db, tmp / "instance", n)
            worker_rates.append(n / fired)
            drain_rates.append(n / drained)
            check_once(db, n)
            db2 = tmp / f"schedules-{r}-fires.sqlite"
            make_db(db2, n)
            fire_rates.append(n / fire_in_process(db2))
            with sqlite3.connect(db2) as conn:
                assert conn.execute("SELECT count(DISTINCT id) FROM workflow").fetchone()[0] == n
            for path in tmp.glob("schedules-*"):
                path.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    detail = f"median of {runs} runs"
    return [
        Figure("schedules", f"{n:,} schedules due at once, fired by one worker",
               statistics.median(worker_rates), "fires/s", at_least=FIRES_PER_S,
               detail=f"{detail}; tiny-workflow worker --exit-when-idle; each exactly once"),
        Figure("schedules", f"{n:,} schedules due at once, fired and their workflows run",
               statistics.median(drain_rates), "fires/s",
               detail=f"{detail}; until the worker is idle (a commit per run)"),
        Figure("schedules", f"{n:,} due schedules fired in-process (runs not included)",
               statistics.median(fire_rates), "fires/s", at_least=FIRES_PER_S,
               detail=f"{detail}; Runtime.fire_due_schedules, 200 per transaction"),
    ]


def tempfile_dir() -> str:
    import tempfile
    return tempfile.mkdtemp(prefix="tw-bench-schedules-")


if __name__ == "__main__":
    common.main(measure, __doc__)
