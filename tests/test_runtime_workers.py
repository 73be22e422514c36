"""`tiny-workflow worker` processes on a shared database (SQLite file, PostgreSQL): a worker
killed mid-workflow, and two workers sharing 200 workflows.

The test app's fake clock is in 2024, so the workflows it starts (each waits 1 s first) are
long due by a worker's real clock. The tests wait only for observable states, with a timeout.
"""
import collections
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from webapp import runtime
from webapp.store import db

ROOT = Path(__file__).resolve().parent.parent
FLOWS = ["flows", "runtime_flows"]


def start_worker(url: str, tmp_path: Path, *args: str, **env: str) -> subprocess.Popen:
    n = len(list(tmp_path.glob("worker-*.log")))
    with open(tmp_path / f"worker-{n}.log", "w") as log:   # the child keeps its own copy
        return subprocess.Popen(
            [sys.executable, "-c", "from webapp.cli import main; main()", "worker",
             "--poll", "0.05", *args],
            cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
                 "TINYFLOW_DATABASE_URL": url, "TINYFLOW_FLOWS": ",".join(FLOWS),
                 "TINYFLOW_INSTANCE": str(tmp_path / "instance"), "PYTHONUNBUFFERED": "1", **env})


def worker_logs(tmp_path: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(tmp_path.glob("worker-*.log")))


def effects(tmp_path: Path) -> list[tuple[str, int]]:
    """What the actions did, in order: (what, pid of the process that did it)."""
    path = tmp_path / "effects"
    if not path.exists():
        return []
    lines = [line.rsplit(" ", 1) for line in path.read_text().splitlines()]
    return [(what, int(pid)) for what, pid in lines]


def wait_until(predicate, tmp_path, timeout=120.0):
    tick = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        tick.wait(0.02)
    raise AssertionError(f"timed out; worker output:\n{worker_logs(tmp_path)}")


def finish(proc: subprocess.Popen, tmp_path: Path, timeout=300):
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"worker did not finish:\n{worker_logs(tmp_path)}") from None
    assert code == 0, worker_logs(tmp_path)
    assert "Traceback" not in worker_logs(tmp_path), worker_logs(tmp_path)


def test_a_killed_worker_loses_no_committed_action(make_app, any_db_url, tmp_path):
    app = make_app(any_db_url, TINYFLOW_FLOWS=FLOWS)
    with app.app_context():
        runtime.start("blocking", {"dir": str(tmp_path)}, id="b")
    first = start_worker(any_db_url, tmp_path)
    try:
        # `block` runs after `write_a`'s result was committed, and blocks.
        wait_until(lambda: ("block", first.pid) in effects(tmp_path), tmp_path)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    with app.app_context():
        row = runtime.get("b")
        assert row.status == "running" and row.lease_owner.startswith("worker:")
        assert "0:step_one:write_a" in runtime.snapshot("b")["cache"]

    (tmp_path / "release").touch()
    # A new worker whose clock is past the dead worker's lease takes the workflow over.
    second = start_worker(any_db_url, tmp_path, "--exit-when-idle",
                          TINYFLOW_CLOCK_OFFSET="120")
    finish(second, tmp_path)
    done = [what for what, _ in effects(tmp_path)]
    assert done == ["a", "block", "block", "b"]      # `a` was committed: it never ran again
    with app.app_context():
        db.session.rollback()
        row = runtime.get("b")
        assert row.status == "finished" and row.lease_owner is None
        types = [e["type"] for e in runtime.all_logs("b")]
        assert types.count("cache") == 3


def test_two_workers_finish_200_workflows_running_no_visit_twice(make_app, any_db_url,
                                                                 tmp_path):
    app = make_app(any_db_url, TINYFLOW_FLOWS=FLOWS)
    with app.app_context():
        for i in range(200):
            runtime.start("counted", {"dir": str(tmp_path), "tag": f"t{i}"}, id=f"c{i:03}")
    workers = [start_worker(any_db_url, tmp_path, "--exit-when-idle", "--batch", "5")
               for _ in range(2)]
    try:
        # Each worker's first action waits for `go`: both are busy at once before it comes.
        wait_until(lambda: len({pid for _, pid in effects(tmp_path)}) == 2, tmp_path)
        (tmp_path / "go").touch()
        for worker in workers:
            finish(worker, tmp_path)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    visits = collections.Counter(what for what, _ in effects(tmp_path))
    assert len(visits) == 400 and set(visits.values()) == {1}
    assert {pid for _, pid in effects(tmp_path)} == {w.pid for w in workers}
    with app.app_context():
        db.session.rollback()
        assert runtime.status_counts() == {"finished": 200}
        for id in ("c000", "c099", "c199"):
            types = [e["type"] for e in runtime.all_logs(id)]
            assert types.count("cache") == 2 and types.count("transition") == 1


def test_sigterm_stops_a_worker_cleanly(any_db_url, make_app, tmp_path):
    make_app(any_db_url)                     # the tables exist before the worker starts
    worker = start_worker(any_db_url, tmp_path)
    try:
        wait_until(lambda: "worker worker:" in worker_logs(tmp_path), tmp_path)
        worker.send_signal(signal.SIGTERM)
        finish(worker, tmp_path, timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker_logs(tmp_path).rstrip().endswith("worker stopped")


# -- SIGTERM: stop claiming, finish the action in flight, give every other lease back ---------

def _slow_workflows(app, tmp_path, n: int, seconds: float) -> None:
    with app.app_context():
        for i in range(n):
            runtime.start("slow", {"dir": str(tmp_path), "tag": f"s{i}", "seconds": seconds},
                          id=f"s{i}")


def _rows(app) -> dict:
    with app.app_context():
        db.session.rollback()
        return {row.id: row for row in runtime.list_workflows(limit=100)[0]}


def test_sigterm_finishes_the_action_in_flight_and_gives_the_batch_back(make_app, any_db_url,
                                                                        tmp_path):
    """A worker has claimed three workflows of one 2 s action each. SIGTERM during the first
    action: that action finishes and is committed, the two rows not run yet are given back at
    once (no lease held), and the worker exits within the action's time, not the batch's."""
    app = make_app(any_db_url, TINYFLOW_FLOWS=FLOWS)
    _slow_workflows(app, tmp_path, 3, 2.0)
    worker = start_worker(any_db_url, tmp_path, "--batch", "20")
    try:
        wait_until(lambda: len(effects(tmp_path)) == 1, tmp_path)
        asked = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        finish(worker, tmp_path, timeout=30)
        took = time.monotonic() - asked
    finally:
        if worker.poll() is None:
            worker.kill()
    assert took < 2.0 + 2.5, took          # the action in flight (2 s), not the batch (6 s)
    assert worker_logs(tmp_path).rstrip().endswith("worker stopped")
    rows = _rows(app)
    ran = effects(tmp_path)[0][0]
    assert rows[ran].status == "finished"
    for id, row in rows.items():
        assert row.lease_owner is None and row.lease_expires is None, id
    # Given back, not left to expire: a new worker (same clock) takes them at once.
    second = start_worker(any_db_url, tmp_path, "--exit-when-idle")
    finish(second, tmp_path)
    assert sorted(what for what, _ in effects(tmp_path)) == ["s0", "s1", "s2"]


def _free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_sigterm_stops_serve_after_its_action_in_flight_leaving_no_lease(make_app, any_db_url,
                                                                         tmp_path):
    app = make_app(any_db_url, TINYFLOW_FLOWS=FLOWS)
    _slow_workflows(app, tmp_path, 2, 2.0)
    with open(tmp_path / "worker-serve.log", "w") as log:
        serve = subprocess.Popen(
            [sys.executable, "-c", "from webapp.cli import main; main()", "serve",
             "--port", str(_free_port())],
            cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ,
                 "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
                 "TINYFLOW_DATABASE_URL": any_db_url, "TINYFLOW_FLOWS": ",".join(FLOWS),
                 "TINYFLOW_INSTANCE": str(tmp_path / "instance"), "PYTHONUNBUFFERED": "1"})
    try:
        wait_until(lambda: len(effects(tmp_path)) == 1, tmp_path)
        asked = time.monotonic()
        serve.send_signal(signal.SIGTERM)
        code = serve.wait(timeout=30)
        took = time.monotonic() - asked
    finally:
        if serve.poll() is None:
            serve.kill()
    output = worker_logs(tmp_path)
    assert code == 0 and "Traceback" not in output, output
    # It waited for the action in flight, then stopped without starting the other one (its
    # action records itself when it starts). Not a bound on the exit's wall time: under load
    # the process's exit alone took 4-6 s here.
    assert took > 1.0, took
    assert len(effects(tmp_path)) == 1, effects(tmp_path)
    rows = _rows(app)
    assert rows[effects(tmp_path)[0][0]].status == "finished"   # the action was not cut off
    for id, row in rows.items():
        assert row.lease_owner is None, (id, row.lease_owner)
