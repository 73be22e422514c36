"""Several processes on one database (SQLite file, PostgreSQL): two `tiny-workflow serve`
processes and two `tiny-workflow worker`s at once. Starts and events go to both servers
concurrently (each event to both at the same moment, under one idempotency key); timers are
fired by whichever runner or worker claims them. Every workflow finishes, every action runs
once and every event is applied once.

The actions record their real runs in a file (test_reliability's ``record_effects``, loaded
by every process through ``TINYFLOW_FLOWS``). The test waits only for observable states,
with a deadline.
"""
from __future__ import annotations

import collections
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from test_reliability import FLOWS, RECORD, hash_tag, runs
from test_runtime_workers import _free_port, finish, start_worker, wait_until, worker_logs
from webapp import runtime
from webapp.store import EVENT_KEY, db

ROOT = Path(__file__).resolve().parent.parent


def start_serve(url: str, tmp_path: Path, record: Path) -> tuple[subprocess.Popen, int]:
    """`tiny-workflow serve` on a free port (its log is one of the ``worker-*.log``)."""
    port = _free_port()
    with open(tmp_path / f"worker-serve-{port}.log", "w") as log:   # the child keeps a copy
        proc = subprocess.Popen(
            [sys.executable, "-c", "from webapp.cli import main; main()", "serve",
             "--port", str(port)],
            cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ,
                 "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
                 "TINYFLOW_DATABASE_URL": url, "TINYFLOW_FLOWS": ",".join(FLOWS),
                 "TINYFLOW_INSTANCE": str(tmp_path / "instance"), RECORD: str(record),
                 "PYTHONUNBUFFERED": "1"})
    return proc, port


def call(port: int, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, None if body is None else json.dumps(body),
                     {"Content-Type": "application/json"})
        answer = conn.getresponse()
        return answer.status, json.loads(answer.read() or b"{}")
    except OSError:
        return 0, {}
    finally:
        conn.close()


def send_to_both(ports: list[int], id: str, name: str, payload, key: str) -> list[dict]:
    """The same event, with the same key, POSTed to every server at the same moment (503,
    busy: that client tries again, as a client should); each server's answer."""
    gate = threading.Barrier(len(ports))
    body = {"name": name, "payload": payload, "idempotency_key": key}

    def post(port: int) -> dict:
        gate.wait()
        for _ in range(50):
            status, answer = call(port, "POST", f"/api/workflows/{id}/events", body)
            if status != 503:
                break
        assert status == 200, (status, answer)
        return answer

    with ThreadPoolExecutor(len(ports)) as pool:
        return list(pool.map(post, ports))


def tags(prefix: str, n: int) -> list[str]:
    """``n`` ids whose first action does not fail on purpose (test_reliability fails every
    fifth tag's first attempt): here every action must run exactly once."""
    found, k = [], 0
    while len(found) < n:
        tag = f"{prefix}-{k:03}"
        if hash_tag(tag) % 5:
            found.append(tag)
        k += 1
    return found


def test_two_servers_and_two_workers_run_each_action_and_apply_each_event_once(
        make_app, any_db_url, tmp_path):
    record = tmp_path / "runs"
    app = make_app(any_db_url, TINYFLOW_FLOWS=FLOWS)      # makes the tables before they start
    games, onboardings, simples = tags("game", 12), tags("onboard", 12), tags("simple", 12)
    starts = ([("guess_game_2", id, {}) for id in games]
              + [("user_onboarding", id, {"waitBeforePromotionEmail": 50, "waitBeforeEnd": 50})
                 for id in onboardings]
              + [("simple", id, {}) for id in simples])
    servers = [start_serve(any_db_url, tmp_path, record) for _ in range(2)]
    ports = [port for _, port in servers]
    workers = [start_worker(any_db_url, tmp_path, "--batch", "3",
                            TINYFLOW_FLOWS=",".join(FLOWS), **{RECORD: str(record)})
               for _ in range(2)]
    procs = [proc for proc, _ in servers] + workers
    try:
        wait_until(lambda: all(call(port, "GET", "/api/workflows?limit=1")[0] == 200
                               for port in ports), tmp_path)
        wait_until(lambda: worker_logs(tmp_path).count("worker worker:") == 2, tmp_path)

        def start(n_start):
            n, (flow, id, extra) = n_start
            status, answer = call(ports[n % 2], "POST", "/api/workflows",
                                  {"flow": flow, "id": id, "state": {"tag": id, **extra}})
            assert status == 201, (status, answer)
            return id, answer

        with ThreadPoolExecutor(8) as pool:
            started = dict(pool.map(start, enumerate(starts)))

        def play(id: str) -> list[list[dict]]:
            number = started[id]["state"]["number"]
            wrong = (number + 1) % 101
            return [send_to_both(ports, id, "event_ask", wrong, f"{id}-wrong"),
                    send_to_both(ports, id, "event_ask", number, f"{id}-right"),
                    send_to_both(ports, id, "event_congratulation", "thanks", f"{id}-thanks")]

        with ThreadPoolExecutor(len(games)) as pool:
            played = dict(zip(games, pool.map(play, games)))

        def all_finished() -> bool:
            with app.app_context():
                db.session.rollback()
                return runtime.status_counts() == {"finished": len(starts)}
        wait_until(all_finished, tmp_path)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            finish(proc, tmp_path, timeout=60)

    # Each event: both servers answered 200; exactly one says how it was delivered, the other
    # that it was a duplicate (a commit that lost to the same key delivered nothing).
    for id, pairs in played.items():
        for pair in pairs:
            assert sorted(a["delivered"] == "duplicate" for a in pair) == [False, True], pair
    # Every action ran exactly once, whichever process ran it; the servers both ran starts.
    done = runs(record)
    counts = collections.Counter((tag, key) for tag, key, _ in done)
    assert set(counts.values()) == {1}, [k for k, v in counts.items() if v > 1]
    per_tag = collections.Counter(tag for tag, _ in counts)
    assert per_tag == {**{id: 1 for id in games + simples}, **{id: 2 for id in onboardings}}
    pids = {pid for _, _, pid in done}
    assert pids <= {proc.pid for proc in procs}, pids
    assert {proc.pid for proc, _ in servers} <= pids       # both servers ran actions
    with app.app_context():
        db.session.rollback()
        for id in games:
            doc = runtime.snapshot(id)
            number = doc["state"]["number"]
            assert doc["state"]["answer"] == [(number + 1) % 101, number]
            received = collections.Counter(e["values"]["name"] for e in doc["logs"]
                                           if e["type"] == "event_received")
            assert received == {"event_ask": 2, "event_congratulation": 1}, received
        for id in onboardings:
            doc = runtime.snapshot(id)
            assert sum(1 for e in doc["logs"] if e["type"] == "email_sent") == 2
        keys = db.session.execute(db.select(EVENT_KEY.c.key)).scalars().all()
        rows = runtime.list_workflows(limit=500)[0]
    assert sorted(keys) == sorted(f"{id}-{k}" for id in games
                                  for k in ("wrong", "right", "thanks"))
    assert all(row.lease_owner is None for row in rows)   # every process gave its leases back
