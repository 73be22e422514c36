"""Benchmark: the runner. A real ``tiny-workflow worker --exit-when-idle`` process on a SQLite
file (WAL, synchronous=FULL) of 1,000,000 waiting workflows (100,000 with --quick), 10,000 of
whose timers are due at once: how fast it drains them, and its peak memory (the kernel's count
for that process).

    python tests/bench/bench_runner.py [--json] [--quick] [--workflows N]
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import dataset  # noqa: E402
from common import Figure  # noqa: E402

DRAIN_PER_S = 1_000.0
MEMORY_MB = 150.0
WORKER = "from webapp.cli import main; main()"


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident memory so far (VmHWM), or None once it has ended."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            kb = next(line.split()[1] for line in fh if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return None
    return int(kb) / 1024


def run_worker(url: str, instance: Path) -> dict:
    """One worker process on the database ``url`` until idle: when its first and last lines
    came (``first``, ``last``: perf_counter seconds; ``seconds`` between them), and its
    peak RSS.

    The peak is the kernel's VmHWM of the worker's own program, read while it runs (the
    rusage of a child also counts this process's memory, which it shares until its exec)."""
    env = {**os.environ, "TINYFLOW_DATABASE_URL": url,
           "TINYFLOW_INSTANCE": str(instance), "PYTHONUNBUFFERED": "1"}
    env.pop("TINYFLOW_FLOWS", None)
    child = subprocess.Popen([sys.executable, "-c", WORKER, "worker", "--exit-when-idle"],
                             cwd=common.ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    peaks = [0.0]
    watcher = threading.Thread(target=watch_memory, args=(child, peaks), daemon=True)
    watcher.start()
    lines = []
    for line in child.stdout:       # "worker ... on ...": it has started; "worker stopped"
        lines.append((time.perf_counter(), line.strip()))
    errors = child.stderr.read()
    child.wait()
    watcher.join()
    child.stdout.close()
    child.stderr.close()
    if child.returncode or len(lines) < 2 or lines[-1][1] != "worker stopped":
        raise RuntimeError(f"the worker failed ({child.returncode}): {lines} {errors[-2000:]}")
    return {"seconds": lines[-1][0] - lines[0][0], "first": lines[0][0], "last": lines[-1][0],
            "peak_mb": peaks[0]}


def watch_memory(child: subprocess.Popen, peaks: list[float]) -> None:
    while child.poll() is None:
        found = peak_rss_mb(child.pid)
        if found is not None:
            peaks[0] = max(peaks[0], found)
        time.sleep(0.02)


def check_drained(url: str, since_ms: int, until_ms: int) -> int:
    """How many workflows the workers moved on (updated while they ran: one template was
    started a year ahead, so its row is newer than any run); none may be due any more, and
    every workflow is still waiting (its next timer set)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            due = conn.execute(sa.text("SELECT count(*) FROM workflow WHERE wake_at <= :t"),
                               {"t": since_ms}).scalar()
            moved = conn.execute(sa.text("SELECT count(*) FROM workflow WHERE updated_at "
                                         "BETWEEN :t AND :u"),
                                 {"t": since_ms, "u": until_ms}).scalar()
            waiting = conn.execute(sa.text("SELECT count(*) FROM workflow "
                                           "WHERE status = 'waiting'")).scalar()
            total = conn.execute(sa.text("SELECT count(*) FROM workflow")).scalar()
    finally:
        engine.dispose()
    assert due == 0, f"{due} workflows are still due"
    assert waiting == total, "every workflow should still be waiting"
    return moved


def drain_once(source: Path, tmp: Path) -> dict:
    """One worker on a fresh copy of ``source`` (``dataset.runner()``) until idle, checked:
    ``{"rate": timers/s, "peak_mb"}``."""
    db = tmp / "runner.sqlite"
    shutil.copyfile(source, db)
    try:
        since = int(time.time() * 1000)
        found = run_worker(f"sqlite:///{db}", tmp / "instance")
        moved = check_drained(f"sqlite:///{db}", since, int(time.time() * 1000))
    finally:
        db.unlink()
    assert moved == dataset.DUE, (moved, dataset.DUE)
    return {"rate": moved / found["seconds"], "peak_mb": found["peak_mb"]}


def measure(quick: bool = False, workflows: int | None = None) -> list[Figure]:
    n = workflows or (100_000 if quick else 1_000_000)
    runs = 2 if quick else 3
    source = dataset.runner(n)
    tmp = Path(tempfile.mkdtemp(prefix="tw-bench-runner-"))
    rates, peaks = [], []
    try:
        for r in range(runs):
            common.progress(f"runner: worker run {r + 1}/{runs}")
            found = drain_once(source, tmp)
            rates.append(found["rate"])
            peaks.append(found["peak_mb"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    detail = f"median of {runs} worker runs"
    return [
        Figure("runner", f"{dataset.DUE:,} timers due at once, drained", statistics.median(rates),
               "timers/s", at_least=DRAIN_PER_S,
               detail=f"{detail}; tiny-workflow worker --exit-when-idle, batch 20"),
        Figure("runner", f"peak memory of the worker ({n:,} waiting workflows)", max(peaks),
               "MB", at_most=MEMORY_MB, detail="the most of the runs; its VmHWM"),
    ]


if __name__ == "__main__":
    common.main(measure, __doc__)
