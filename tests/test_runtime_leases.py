"""Leases, claims and answers under attack (issue 11), on SQLite and PostgreSQL:

- a runner holds a live lease on a workflow whenever one of its actions starts, and starts no
  action on a row another runner took over (claimed batches, long actions: heartbeats);
- concurrent starts with one id run the first action once;
- a change that was committed answers 2xx (202 with a note) even when the run after it fails.
"""
from __future__ import annotations

import collections
import signal
import threading

import pytest
import runtime_flows
from sqlalchemy import exc, select

from test_runtime_workers import effects, finish, start_worker, wait_until
from webapp import runtime, store
from webapp.store import WORKFLOW, db

FLOWS = ["flows", "runtime_flows"]


@pytest.fixture
def hooks():
    runtime_flows.HOOKS.clear()
    runtime_flows.CALLS.clear()
    yield runtime_flows.HOOKS
    runtime_flows.HOOKS.clear()


def stored_lease(id: str) -> tuple[str | None, int | None]:
    """(lease owner, lease expiry in ms) as another connection sees the row now."""
    with db.engine.connect() as conn:
        return tuple(conn.execute(select(WORKFLOW.c.lease_owner, WORKFLOW.c.lease_expires)
                                  .where(WORKFLOW.c.id == id)).one())


def test_each_action_of_a_claimed_batch_starts_under_a_live_lease_and_never_twice(
        make_app, any_db_url, clock, hooks):
    """Runner A claims three rows (lease 60 s). Its first action takes 70 s (of the app's
    clock): the batch's leases expire meanwhile. A renews the second row's lease before
    starting its action; while that one runs, runner B takes the third row (expired) and runs
    it; A then finds the third row lost and does not start its action again."""
    app = make_app(any_db_url, TINYFLOW_FLOWS=FLOWS, TINYFLOW_LEASE_SECONDS=60)
    rt = app.extensions["tinyflow"]
    for i in range(3):
        rt.start("hooked", {"tag": f"h{i}"}, id=f"h{i}")
        clock.advance(0.001)            # claimed oldest first: h0, h1, h2
    clock.advance(2)
    seen = []                           # (tag, runner, lease owner and expiry at its start)

    def hook(tag):
        owner, expires = stored_lease(tag)
        seen.append((tag, threading.current_thread().name, owner, expires, clock() * 1000))
        if tag == "h0":
            clock.advance(70)           # longer than the batch's leases
        elif tag == "h1":               # meanwhile another runner takes what expired
            other = threading.Thread(target=rt.run_due, kwargs={"owner": "runner:B"},
                                     name="B")
            other.start()
            other.join()
    hooks["hooked"] = hook
    threading.current_thread().name = "A"
    try:
        assert rt.run_due(owner="runner:A") == 2
    finally:
        threading.current_thread().name = "MainThread"
    assert [(tag, who) for tag, who, *_ in seen] == [("h0", "A"), ("h1", "A"), ("h2", "B")]
    for tag, who, owner, expires, at in seen:      # each started under its runner's live lease
        assert owner == f"runner:{who}" and expires > at, (tag, owner, expires, at)
    assert collections.Counter(runtime_flows.CALLS) == {
        "hooked:h0": 1, "hooked:h1": 1, "hooked:h2": 1}
    with app.app_context():
        assert runtime.status_counts() == {"finished": 3}


def test_a_renewal_writes_the_lease_alone(make_app, any_db_url, clock, hooks):
    """The lease renewed before an action commits nothing else: an earlier action's result
    that is not committed yet stays uncommitted (and the version check stays right)."""
    app = make_app(any_db_url, TINYFLOW_FLOWS=FLOWS, TINYFLOW_LEASE_SECONDS=60)
    rt = app.extensions["tinyflow"]
    with app.app_context():
        row = runtime.start("hooked", {"tag": "r"}, id="r")        # records, not answers
        job = rt._job(rt._engine(row), row, "runner:x", clock())
        job.commit(lease=True)
        before = runtime.get("r")
        clock.advance(45)                 # less than half the lease is left
        job.keep_lease()
        after = runtime.get("r")
    assert after.version == before.version + 1 and after.lease_owner == "runner:x"
    assert after.lease_expires == round((clock() + 60) * 1000) > before.lease_expires
    assert (after.state, after.cache, after.system, after.log_count, after.updated_at) == (
        before.state, before.cache, before.system, before.log_count, before.updated_at)
    with app.app_context():
        job.commit(lease=False)           # its own version is the row's: no Stale
        assert runtime.get("r").version == after.version + 1


def test_concurrent_starts_with_one_id_run_the_first_action_once(make_app, any_db_url,
                                                                 hooks):
    app = make_app(any_db_url, TINYFLOW_FLOWS=FLOWS)
    refused = threading.Semaphore(0)

    def hook(tag):
        # The winner's action waits for the seven others to be refused: before the id was
        # claimed ahead of the first action, each of them ran it too.
        for _ in range(7):
            refused.acquire(timeout=10)
    hooks["hooked"] = hook
    answers = collections.Counter()
    gate = threading.Barrier(8)

    def post():
        client = app.test_client()
        gate.wait()
        answer = client.post("/api/workflows", json={
            "flow": "hooked_at_once", "id": "same", "state": {"tag": "same"}})
        answers[answer.status_code] += 1
        if answer.status_code == 409:
            refused.release()
    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert answers == {201: 1, 409: 7}
    assert runtime_flows.CALLS == {"hooked:same": 1}
    again = app.test_client().post("/api/workflows", json={
        "flow": "hooked_at_once", "id": "same", "state": {"tag": "same"}})
    assert again.status_code == 409 and runtime_flows.CALLS == {"hooked:same": 1}


def failing_write(monkeypatch, nth: int):
    """Make the ``nth`` call of Store.write from now on fail as a full disk does."""
    real = store.Store.write
    calls = []

    def write(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == nth:
            raise exc.OperationalError("INSERT ...", {}, Exception("disk I/O error"))
        return real(self, *args, **kwargs)
    monkeypatch.setattr(store.Store, "write", write)
    return calls


def test_an_event_committed_before_the_run_fails_answers_202_and_is_applied_once(
        make_app, any_db_url, clock, monkeypatch):
    app = make_app(any_db_url)
    client = app.test_client()
    assert client.post("/api/workflows", json={"flow": "guess_game_2", "id": "g"}
                       ).status_code == 201
    before = client.get("/api/workflows/g").json
    failing_write(monkeypatch, 2)          # the event's commit works, the run's fails
    answer = client.post("/api/workflows/g/events", json={"name": "event_ask", "payload": 1})
    assert answer.status_code == 202, answer.json
    assert "committed" in answer.json["note"] and "disk I/O error" in answer.json["note"]
    monkeypatch.undo()
    # A runner finishes the run once the answer's lease expires; the event is in once.
    clock.advance(61)
    with app.app_context():
        assert runtime.run_due() == 1
        logs = runtime.snapshot("g")["logs"]
    delivered = [e for e in logs if e["type"] == "event_received"]
    assert len(delivered) == 1
    after = client.get("/api/workflows/g").json
    assert after["status"] == "waiting" and after["log_count"] > before["log_count"]
    assert after["state"]["answer"] == [1]


def test_a_change_whose_commit_fails_answers_5xx_and_applies_nothing(make_app, any_db_url,
                                                                     monkeypatch):
    app = make_app(any_db_url, PROPAGATE_EXCEPTIONS=False)   # answer 500 as served
    client = app.test_client()
    client.post("/api/workflows", json={"flow": "guess_game_2", "id": "g"})
    before = client.get("/api/workflows/g").json
    failing_write(monkeypatch, 1)
    answer = client.post("/api/workflows/g/events", json={"name": "event_ask", "payload": 1})
    assert answer.status_code >= 500
    monkeypatch.undo()
    assert client.get("/api/workflows/g").json == before


def test_a_start_committed_before_its_run_fails_answers_202(make_app, any_db_url, monkeypatch):
    app = make_app(any_db_url, TINYFLOW_FLOWS=FLOWS)
    failing_write(monkeypatch, 2)          # the claim of the id works, the end's commit fails
    answer = app.test_client().post("/api/workflows", json={"flow": "simple", "id": "s"})
    assert answer.status_code == 202 and "a runner finishes it" in answer.json["note"]
    assert answer.json["status"] == "running"


# -- real workers and real time ---------------------------------------------------------------

def test_two_workers_run_each_action_shorter_than_the_lease_once(make_app, any_db_url,
                                                                 tmp_path):
    """Two workers, batch 20, lease 2 s, twelve 0.5 s actions: a worker's batch takes longer
    than a lease, so the rows it has not reached yet expire. Each still runs once; and one
    action of 3 s (longer than the lease) is kept by its worker's heartbeat."""
    app = make_app(any_db_url, TINYFLOW_FLOWS=FLOWS)
    with app.app_context():
        for i in range(12):
            runtime.start("slow", {"dir": str(tmp_path), "tag": f"s{i}", "seconds": 0.5},
                          id=f"s{i:02}")
        runtime.start("slow", {"dir": str(tmp_path), "tag": "long", "seconds": 3},
                      id="long")
    workers = [start_worker(any_db_url, tmp_path, "--batch", "20", "--lease-seconds", "2",
                            TINYFLOW_FLOWS=",".join(FLOWS))
               for _ in range(2)]

    def all_finished() -> bool:
        with app.app_context():
            db.session.rollback()
            return runtime.status_counts() == {"finished": 13}
    try:
        wait_until(all_finished, tmp_path)
        for proc in workers:
            proc.send_signal(signal.SIGTERM)
        for proc in workers:
            finish(proc, tmp_path, timeout=30)
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
    runs = collections.Counter(what for what, _ in effects(tmp_path))
    assert runs == {**{f"s{i}": 1 for i in range(12)}, "long": 1}, runs
    with app.app_context():
        db.session.rollback()
        assert runtime.status_counts() == {"finished": 13}
