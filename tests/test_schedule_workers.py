"""Schedules fired by real `tiny-workflow worker` processes on a shared database (SQLite file,
PostgreSQL): two workers at once, one killed with SIGKILL in the middle; every fire starts
its workflow exactly once and none inside the catch-up window is skipped.

The schedules fire every 1 January (catch-up: a year), so each has exactly one fire due by the
workers' real clock, whatever minute the test runs in: ``<id>@<this 1 January>``.
"""
import collections
import os
import signal
from datetime import datetime, timezone

from test_runtime_workers import effects, finish, start_worker, wait_until
from webapp import runtime
from webapp.runtime import Settings, schedules

FLOWS = "flows,runtime_flows,schedule_flows"
N = 300


def this_new_year() -> str:
    now = datetime.now(timezone.utc)
    return schedules.fire_iso(datetime(now.year, 1, 1, tzinfo=timezone.utc).timestamp())


def test_two_workers_and_a_kill_fire_every_schedule_exactly_once(make_app, any_db_url,
                                                                tmp_path):
    app = make_app(any_db_url, TINYFLOW_FLOWS=FLOWS.split(","))
    rt = app.extensions["tinyflow"]
    for i in range(N):
        rt.add_schedule(f"s{i:03}", "probe", "0 0 1 1 *", state={"dir": str(tmp_path),
                        "tag": f"s{i:03}"}, catchup=schedules.MAX_CATCHUP)
    (tmp_path / "hold").touch()              # the first runs block until `go`
    env = {"TINYFLOW_FLOWS": FLOWS, "TINYFLOW_SCHEDULE_BATCH": "50"}
    first = start_worker(any_db_url, tmp_path, "--batch", "5", **env)
    try:
        # It fired a batch and is running the first of them: kill it there.
        wait_until(lambda: any(pid == first.pid for _, pid in effects(tmp_path)), tmp_path)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    with app.app_context():
        fired_before = [r for r in rt.schedules() if r.last_workflow_id]
        assert 0 < len(fired_before) < N

    (tmp_path / "go").touch()
    # Two workers whose clocks are past the dead worker's leases share the rest.
    workers = [start_worker(any_db_url, tmp_path, "--exit-when-idle", "--batch", "5",
                            TINYFLOW_CLOCK_OFFSET="120", **env) for _ in range(2)]
    try:
        for worker in workers:
            finish(worker, tmp_path)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    fire = this_new_year()
    with app.app_context():
        rows = rt.list(limit=500)["items"]
        ids = sorted(row["id"] for row in rows)
        assert ids == [f"s{i:03}@{fire}" for i in range(N)]        # each once, none skipped
        assert {row["status"] for row in rows} == {"finished"}
        for record in rt.schedules():
            assert record.last_workflow_id == f"{record.id}@{fire}"
            assert record.next_at > datetime.now(timezone.utc).timestamp() * 1000
    ran = collections.Counter(what for what, _ in effects(tmp_path))
    assert set(ran) == {f"ran s{i:03}" for i in range(N)}
    # Only a run the kill cut off may have run its action again (at least once for those).
    assert sum(ran.values()) - N <= 5
    assert len({pid for _, pid in effects(tmp_path)}) >= 2


def test_the_schedule_batch_is_read_from_the_environment(monkeypatch, make_app):
    monkeypatch.setenv("TINYFLOW_SCHEDULE_BATCH", "7")
    assert Settings.load()["TINYFLOW_SCHEDULE_BATCH"] == 7
    monkeypatch.delenv("TINYFLOW_SCHEDULE_BATCH")
    assert Settings.load()["TINYFLOW_SCHEDULE_BATCH"] == 200
    monkeypatch.setenv("TINYFLOW_SCHEDULE_BATCH", "12")
    app = make_app()
    assert runtime.Runner(app.extensions["tinyflow"]).schedule_batch == 12
    assert os.environ["TINYFLOW_SCHEDULE_BATCH"] == "12"
