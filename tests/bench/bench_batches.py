"""Benchmark: a batch that cancels 100,000 workflows on a SQLite file (WAL, synchronous=FULL),
carried out by one worker.

- in-process: one runner's passes (``Runtime.run_batches``, what each pass of a worker does
  for batches) until the batch is finished;
- worker: a real ``tiny-workflow worker --exit-when-idle`` process, from its first line to
  its last, its clock set back (``TINYFLOW_CLOCK_OFFSET``) to before the dataset's earliest
  timer, so that it does the batch alone.

The check afterwards makes sure every workflow was cancelled exactly once (one ``cancelled``
audit-log entry each) and the batch counts them all as done.

    python tests/bench/bench_batches.py [--json] [--quick]
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import dataset  # noqa: E402
from common import Figure  # noqa: E402

PER_S = 1_000.0
WORKER = "from webapp.cli import main; main()"


def make_batch(db: Path) -> tuple[str, int]:
    """A cancel batch of every waiting workflow (all of them): its id and size."""
    from webapp.runtime import Runtime
    rt = Runtime(f"sqlite:///{db}", flows=["flows"])
    record = rt.create_batch("cancel", filter={"status": ["waiting"]}, reason="bench",
                             confirm=True)
    rt.store.dispose()
    return record.id, record.total


def in_process(db: Path, batch_id: str) -> float:
    from webapp.runtime import Runtime
    rt = Runtime(f"sqlite:///{db}", flows=["flows"])
    started = time.perf_counter()
    while rt.run_batches(owner="bench"):
        pass
    seconds = time.perf_counter() - started
    assert rt.batch(batch_id).status == "finished"
    rt.store.dispose()
    return seconds


def timed_worker(db: Path, instance: Path) -> float:
    with sqlite3.connect(db) as conn:
        first = conn.execute("SELECT min(wake_at) FROM workflow").fetchone()[0]
    env = {**os.environ, "TINYFLOW_DATABASE_URL": f"sqlite:///{db}",
           "TINYFLOW_INSTANCE": str(instance), "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": str(common.ROOT),
           "TINYFLOW_CLOCK_OFFSET": str(first / 1000 - time.time() - 3600)}
    env.pop("TINYFLOW_FLOWS", None)
    child = subprocess.Popen([sys.executable, "-c", WORKER, "worker", "--exit-when-idle"],
                             cwd=common.ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    stamps = [(time.perf_counter(), line.strip()) for line in child.stdout]
    errors = child.stderr.read()
    child.wait()
    child.stdout.close()
    child.stderr.close()
    if child.returncode or len(stamps) < 2 or stamps[-1][1] != "worker stopped":
        raise RuntimeError(f"the worker failed ({child.returncode}): {stamps} {errors[-2000:]}")
    return stamps[-1][0] - stamps[0][0]


def check(db: Path, batch_id: str, total: int) -> None:
    with sqlite3.connect(db) as conn:
        done, status = conn.execute("SELECT done, status FROM workflow_batch WHERE id = ?",
                                    (batch_id,)).fetchone()
        cancelled = conn.execute("SELECT count(*) FROM workflow WHERE status = 'cancelled'"
                                 ).fetchone()[0]
        entries = conn.execute("SELECT count(*), count(DISTINCT workflow_id) FROM workflow_log "
                               "WHERE type = 'cancelled'").fetchone()
    assert status == "finished" and done == total, (status, done, total)
    assert cancelled == total and entries == (total, total), (cancelled, entries, total)


def measure(quick: bool = False) -> list[Figure]:
    runs = 1 if quick else 3
    source = dataset.runner()
    tmp = Path(tempfile.mkdtemp(prefix="tw-bench-batches-"))
    rates, worker_rates = [], []
    try:
        for r in range(runs):
            db = tmp / f"batches-{r}.sqlite"
            shutil.copyfile(source, db)
            batch_id, total = make_batch(db)
            common.progress(f"batches: in-process run {r + 1}/{runs} ({total:,} workflows)")
            rates.append(total / in_process(db, batch_id))
            check(db, batch_id, total)
            db.unlink()
            shutil.copyfile(source, db)
            batch_id, total = make_batch(db)
            common.progress(f"batches: worker run {r + 1}/{runs}")
            worker_rates.append(total / timed_worker(db, tmp / "instance"))
            check(db, batch_id, total)
            db.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    detail = f"median of {runs} runs; synchronous=FULL; chunks of 500, one transaction each"
    return [
        Figure("batches", "100,000-workflow cancel batch, one runner's passes in-process",
               statistics.median(rates), "wf/s", at_least=PER_S, detail=detail),
        Figure("batches", "100,000-workflow cancel batch, tiny-workflow worker --exit-when-idle",
               statistics.median(worker_rates), "wf/s", at_least=PER_S,
               detail=f"median of {runs} runs; first line to last"),
    ]


if __name__ == "__main__":
    common.main(measure, __doc__)
