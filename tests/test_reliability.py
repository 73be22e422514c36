"""Crashes and races lose nothing.

- The torture test: at least 200 workflows of the example flows, run by `tiny-workflow worker`
  processes that are killed with SIGKILL at random moments and started again until every
  workflow has ended. Every action's real runs are recorded in a file; the counts are printed.
- Events sent through the API in parallel with two workers, on SQLite and on PostgreSQL: no
  accepted event lost or applied twice, no step visit run twice, idempotency keys honoured.

This module is also loaded by the worker processes (``TINYFLOW_FLOWS`` names it): with
``TINYFLOW_RECORD_EFFECTS`` set, it makes the example flows' actions append a line to that file
each time they really run, so a test can count runs whichever process made them.
"""
from __future__ import annotations

import collections
import functools
import json
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path


import flows.guess_game
import flows.guess_game_2
import flows.simple
from flows.interval_payment import IntervalPayment
from flows.user_onboarding import UserOnboarding
from test_runtime_workers import effects, finish, start_worker, wait_until, worker_logs
from webapp import runtime
from webapp.engine import Workflow
from webapp.store import EVENT_KEY, db

RECORD = "TINYFLOW_RECORD_EFFECTS"
FLOWS = ["flows", __name__]
START = 1_723_991_733.5

# -- recording the actions' real runs ---------------------------------------------------------


def _running_action() -> tuple[str, str]:
    """(the workflow's tag, the action's cache key) of the action running now, read from the
    engine's frame that called it (the action functions of the example flows get neither)."""
    frame = sys._getframe(2)
    while frame is not None:
        owner, key = frame.f_locals.get("self"), frame.f_locals.get("key")
        if isinstance(owner, Workflow) and isinstance(key, str) and "cmd" in frame.f_locals:
            return str(owner.state.get("tag", "?")), key
        frame = frame.f_back
    raise AssertionError("an action ran outside the engine")


def _first_attempt_fails(tag: str, key: str, path: str) -> bool:
    """Every fifth workflow's first action fails on its first attempt (a retry is logged)."""
    if not key.endswith(("generate_num", "cache_computed")) or hash_tag(tag) % 5:
        return False
    lines = Path(path).read_text().splitlines() if Path(path).exists() else []
    return not any(line.startswith(f"{tag} {key} ") for line in lines)


def hash_tag(tag: str) -> int:
    return sum(tag.encode())


class FirstAttemptFailed(RuntimeError):
    """The injected failure of a first attempt."""


FAILED = "!failed"


def _recorded(fn, path: str):
    @functools.wraps(fn)
    def run(*args, **kwargs):
        tag, key = _running_action()
        result = fn(*args, **kwargs)
        failing = _first_attempt_fails(tag, key, path)
        with open(path, "a", encoding="utf-8") as fh:    # the side effect: one atomic append
            fh.write(f"{tag} {key} {os.getpid()} {json.dumps(FAILED if failing else result)}\n")
        if failing:
            raise FirstAttemptFailed(f"{tag}: {key} fails on its first attempt")
        return result
    return run


def record_effects(path: str, patch=setattr) -> None:
    """Make the example flows' actions append ``<tag> <cache key> <pid> <result as JSON>`` to
    ``path`` whenever they really run (``patch`` is ``setattr``, or a monkeypatch's, to be
    undone)."""
    for owner, name in ((flows.simple, "heavy_compute"), (flows.guess_game, "generate_num"),
                        (flows.guess_game_2, "generate_num"), (UserOnboarding, "_send_email"),
                        (IntervalPayment, "_send_bill")):
        patch(owner, name, _recorded(getattr(owner, name), path))


if os.environ.get(RECORD):                 # a worker process started by these tests
    record_effects(os.environ[RECORD])


def runs(path: Path, results: bool = False) -> list[tuple]:
    """The recorded runs, in order: (tag, cache key, pid[, result])."""
    if not path.exists():
        return []
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        tag, key, pid, result = line.split(" ", 3)
        found.append((tag, key, int(pid), json.loads(result)) if results
                     else (tag, key, int(pid)))
    return found


def worker(url, tmp_path, generation: int, *args: str):
    """A worker whose clock is ``generation`` × 120 s ahead: past every lease (60 s) and every
    timer the workflows set in an earlier generation."""
    return start_worker(url, tmp_path, "--batch", "3", *args,
                        TINYFLOW_FLOWS=",".join(FLOWS),
                        TINYFLOW_RECORD_EFFECTS=str(tmp_path / "runs"),
                        TINYFLOW_CLOCK_OFFSET=str(120 * generation))


# -- the torture test -------------------------------------------------------------------------

TORTURE_FLOWS = ("simple", "user_onboarding", "guess_game", "guess_game_2")


def torture_snapshot(cls, name: str, tag: str) -> dict:
    """A new workflow, not run yet; a guess game gets every answer 0..100 in its inbox."""
    wf = cls(state={"tag": tag, "userEmail": f"{tag}@example.com"}, now=START)
    if name == "guess_game":
        for n in range(101):
            wf.send(f"event_ask_{n}", n, now=START)
    elif name == "guess_game_2":
        for n in range(101):
            wf.send("event_ask", n, now=START)
    if name.startswith("guess_game"):
        wf.send("event_congratulation", "thanks", now=START)
    return json.loads(json.dumps(wf.to_json()))


def test_killed_workers_lose_nothing_and_repeat_only_what_a_kill_interrupted(
        make_app, tmp_path, capsys, request):
    """TINYFLOW_TORTURE_WORKFLOWS (200), TINYFLOW_TORTURE_KILL_SECONDS (25),
    TINYFLOW_TORTURE_SEED and TINYFLOW_TORTURE_DB=postgresql make a longer or other run."""
    total = int(os.environ.get("TINYFLOW_TORTURE_WORKFLOWS", "200"))
    rng = random.Random(os.environ.get("TINYFLOW_TORTURE_SEED"))
    url = f"sqlite:///{tmp_path / 'tiny-workflow.sqlite'}"
    if os.environ.get("TINYFLOW_TORTURE_DB") == "postgresql":
        url = request.getfixturevalue("postgres_server").create_database()
    app = make_app(url, TINYFLOW_FLOWS=FLOWS)
    with app.app_context():
        registry = runtime.registry()
        for i, name in enumerate(TORTURE_FLOWS):
            tags = [f"{name}-{n:04}" for n in range(i, total, len(TORTURE_FLOWS))]
            runtime.import_snapshots([[tag, torture_snapshot(registry[name], name, tag)]
                                      for tag in tags], flow=name)
    path = tmp_path / "runs"
    killed: set[int] = set()
    started = time.monotonic()

    def unfinished() -> int:
        with app.app_context():
            db.session.rollback()
            counts = runtime.status_counts()
        return total - counts.get("finished", 0)

    # Kill phase: two workers at a time, each killed with SIGKILL once it has run a random
    # number of actions, or at a random moment within its first seconds (it starts in about
    # one), whichever comes first; then a random few milliseconds later still.
    generation = 0
    budget = float(os.environ.get("TINYFLOW_TORTURE_KILL_SECONDS", "25"))
    tick = threading.Event()
    while time.monotonic() - started < budget and unfinished():
        generation += 1
        pair = [worker(url, tmp_path, generation) for _ in range(2)]
        done_before = len(runs(path))
        targets = {p.pid: (done_before + rng.randint(1, 15),
                           time.monotonic() + rng.uniform(0.6, 3.0)) for p in pair}
        alive = list(pair)
        while alive:
            count = len(runs(path))
            for proc in list(alive):
                at_count, at_time = targets[proc.pid]
                if proc.poll() is None and count < at_count and time.monotonic() < at_time:
                    continue
                tick.wait(rng.uniform(0, 0.02))
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                killed.add(proc.pid)
                alive.remove(proc)
            tick.wait(0.005)

    # Recovery: workers that are left alone, until every workflow has ended.
    restarts = 0
    while unfinished():
        assert restarts < 10, worker_logs(tmp_path)
        generation += 1
        restarts += 1
        pair = [worker(url, tmp_path, generation, "--exit-when-idle") for _ in range(2)]
        for proc in pair:
            finish(proc, tmp_path, timeout=120)
    elapsed = time.monotonic() - started

    # What really ran, against what each workflow committed: its cached results, and the
    # failed attempts its audit log counts.
    done = runs(path, results=True)
    history = collections.defaultdict(list)          # action -> its runs, in order
    for tag, key, pid, result in done:
        history[(tag, key)].append((pid, result))
    cached, failures = {}, collections.Counter()
    finished_games = 0
    with app.app_context():
        db.session.rollback()
        assert runtime.status_counts() == {"finished": total}
        for n in range(total):
            tag = f"{TORTURE_FLOWS[n % len(TORTURE_FLOWS)]}-{n:04}"
            doc = runtime.snapshot(tag)
            cached.update({(tag, key): value for key, value in doc["cache"].items()
                           if key != "_seq"})
            for entry in doc["logs"]:
                if entry["type"] == "action_error":
                    failures[(tag, entry["_step"], entry["values"]["key"])] += 1
            if tag.startswith("guess_game"):
                number = doc["state"]["number"]
                assert doc["state"]["answer"] == list(range(number + 1))   # no event lost
                finished_games += 1
    assert set(history) == set(cached)             # every action that ran was committed
    interrupted = collections.Counter()            # killed pid -> runs it left uncommitted
    exactly_once = retried = repeated = 0
    for action, seq in history.items():
        tag, key = action
        _, step_name, short = key.split(":", 2)
        last_pid, last_result = seq[-1]
        # The committed result is the last run's: nothing ran after it was committed.
        assert last_result == cached[action], (action, seq)
        logged_failures = failures[(tag, step_name, short)]
        earlier = seq[:-1]
        # Every run before it is a failed attempt the log counts, or a run a kill cut off
        # before its result was committed: never more runs than logged attempts otherwise.
        cut_off = len(earlier) - logged_failures
        assert cut_off >= 0, (action, seq)
        assert sum(1 for pid, r in earlier if pid not in killed and r != FAILED) == 0, seq
        assert sum(1 for pid, _ in earlier if pid not in killed) <= logged_failures, seq
        if cut_off:
            repeated += 1
            for pid, result in earlier:
                if pid in killed and result != FAILED:
                    interrupted[pid] += 1
        elif logged_failures:
            retried += 1
        else:
            exactly_once += 1
    # A worker commits an action's result before its next action runs, so a killed worker
    # leaves at most one result uncommitted.
    assert all(n == 1 for n in interrupted.values()), interrupted
    cut_offs = len(done) - len(cached) - sum(failures.values())
    assert 0 <= cut_offs <= len(killed)
    summary = (
        f"\ntorture: {total} workflows ({', '.join(TORTURE_FLOWS)}); {len(killed)} workers "
        f"killed with SIGKILL at random moments over {generation - restarts} generations of "
        f"two, then {restarts} restart(s) to finish; {elapsed:.1f} s\n"
        f"torture: all {total} finished; the {finished_games} guess games took each answer "
        f"from their inbox once\n"
        f"torture: {len(done)} real action runs = {len(cached)} committed results + "
        f"{sum(failures.values())} failed attempts logged + {cut_offs} runs cut off by a kill "
        f"before their result was committed\n"
        f"torture: of the {len(cached)} committed actions, {exactly_once} ran exactly once, "
        f"{retried} once per logged attempt (a first attempt failed on purpose), {repeated} "
        f"again after a kill cut them off (at-least-once; at most one per killed worker), "
        f"0 after their result was committed\n")
    with capsys.disabled():
        print(summary)
    (tmp_path / "summary.txt").write_text(summary)
    assert len(killed) >= 10, "too few kills to tell anything"


# -- events in parallel with two workers ------------------------------------------------------

_APP_LAG = 10.0     # seconds; far shorter than the 60 s lease


def test_events_sent_in_parallel_with_two_workers_are_applied_exactly_once(
        make_app, any_db_url, tmp_path, monkeypatch):
    """Interval payments billed every 300 ms, their `add_usage` events posted by six threads
    (each event with an idempotency key is posted twice, by two threads at once), while two
    workers fire their timers.

    The app's clock runs ``_APP_LAG`` seconds behind the workers' real one (well inside a
    lease, so the two still respect each other's leases): a timer a worker set is never due
    for the app, so every bill after the first cycle is the workers' to make. That is work
    only they can do, and the check that they did it cannot fail by chance."""
    path = tmp_path / "runs"
    record_effects(str(path), monkeypatch.setattr)
    app = make_app(any_db_url, TINYFLOW_FLOWS=FLOWS,
                   TINYFLOW_CLOCK=lambda: time.time() - _APP_LAG)
    client = app.test_client()
    ids = [f"pay-{n}" for n in range(6)]
    for id in ids:
        answer = client.post("/api/workflows", json={
            "flow": "interval_payment", "id": id,
            "state": {"tag": id, "paymentIntervalMs": 300}})
        assert answer.status_code == 201 and answer.json["status"] == "waiting"
    workers = [start_worker(any_db_url, tmp_path, "--batch", "2",
                            TINYFLOW_FLOWS=",".join(FLOWS), TINYFLOW_RECORD_EFFECTS=str(path))
               for _ in range(2)]
    rng = random.Random(7)
    events = [{"id": rng.choice(ids), "item": f"u{n}", "key": f"k{n}" if n % 4 else None}
              for n in range(120)]
    threads_n = 6
    plans = [[] for _ in range(threads_n)]
    for n, event in enumerate(events):
        plans[n % threads_n].append(event)
        if event["key"]:                        # a retry of the same call, racing the first
            plans[(n + 1) % threads_n].append(event)
    accepted: list[tuple[str, str]] = []
    answers = collections.Counter()
    lock = threading.Lock()

    def post(plan):
        local = app.test_client()
        for event in rng.sample(plan, len(plan)):
            body = {"name": "add_usage", "payload": {"item": event["item"], "amount": 1}}
            if event["key"]:
                body["idempotency_key"] = event["key"]
            for _ in range(20):                # 503 (busy): the client tries again
                response = local.post(f"/api/workflows/{event['id']}/events", json=body)
                if response.status_code != 503 or not event["key"]:
                    break
            with lock:
                answers[response.status_code] += 1
                if response.status_code == 200:
                    accepted.append((event["id"], event["item"]))

    try:
        wait_until(lambda: worker_logs(tmp_path).count("worker worker:") == 2, tmp_path)
        pool = [threading.Thread(target=post, args=(plan,)) for plan in plans]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join(120)
        assert set(answers) == {200}, answers

        def on_workers_time() -> bool:
            # A worker has run a cycle of each: its next bill is due on the workers' clock.
            with app.app_context():
                db.session.rollback()
                due = [runtime.describe(runtime.get(id))["state"]["_nextPaymentAt"] / 1000
                       for id in ids]
            return all(at > time.time() - _APP_LAG + 1 for at in due)
        wait_until(on_workers_time, tmp_path)
        for id in ids:               # usage that only a worker can bill (at its next cycle)
            event = {"id": id, "item": f"last-{id}", "key": None}
            events.append(event)
            answer = client.post(f"/api/workflows/{id}/events", json={
                "name": "add_usage", "payload": {"item": event["item"], "amount": 1}})
            assert answer.status_code == 200, answer.json
            accepted.append((id, event["item"]))

        def all_billed() -> bool:
            with app.app_context():
                db.session.rollback()
                return all(not runtime.describe(runtime.get(id))["state"]["currentUsages"]
                           for id in ids)
        wait_until(all_billed, tmp_path)
        for id in ids:               # a cancel bills what is left at once: nothing is
            answer = client.post(f"/api/workflows/{id}/events",
                                 json={"name": "cancel", "idempotency_key": "stop"})
            assert answer.status_code == 200, answer.json
        deadline = time.monotonic() + 60
        tick = threading.Event()
        while time.monotonic() < deadline:
            with app.app_context():
                db.session.rollback()
                if runtime.status_counts() == {"finished": len(ids)}:
                    break
            tick.wait(0.05)
    finally:
        for proc in workers:
            proc.send_signal(signal.SIGTERM)
        for proc in workers:
            finish(proc, tmp_path, timeout=30)

    billed = collections.Counter()
    last_bills: dict[str, str] = {}
    with app.app_context():
        db.session.rollback()
        assert runtime.status_counts() == {"finished": len(ids)}
        for id in ids:
            doc = runtime.snapshot(id)
            assert doc["state"]["currentUsages"] == []
            for receipt in doc["state"]["receipts"]:
                billed.update((id, usage["item"]) for usage in receipt["usages"])
                if any(usage["item"] == f"last-{id}" for usage in receipt["usages"]):
                    last_bills[id] = f":send_receipt_email_{receipt['cycle']}"
            delivered = [e for e in doc["logs"] if e["type"] == "event_received"
                         and e["values"]["name"] == "add_usage"]
            assert len(delivered) == sum(1 for wf, _ in set(accepted) if wf == id)
        keys = db.session.execute(db.select(EVENT_KEY.c.workflow_id, EVENT_KEY.c.key)).all()
    unique = {(e["id"], e["item"]) for e in events}
    assert collections.Counter(accepted) == collections.Counter(
        {(e["id"], e["item"]): 2 if e["key"] else 1 for e in events})  # every call answered 200
    assert billed == collections.Counter(unique)        # each accepted event billed exactly once
    assert sorted(k for _, k in keys if k != "stop") == sorted(e["key"] for e in events
                                                               if e["key"])
    visits = collections.Counter((tag, key) for tag, key, _ in runs(path))
    assert visits and set(visits.values()) == {1}        # no bill (no step visit) ran twice
    # Each workflow's last usage came after a worker had taken its cycle onto the workers'
    # clock, so only a worker could bill it.
    by_worker = {(tag, key) for tag, key, pid in runs(path) if pid != os.getpid()}
    assert sorted(last_bills) == sorted(ids)
    for id, key_end in last_bills.items():
        assert any(tag == id and key.endswith(key_end) for tag, key in by_worker), id
    bills = sum(1 for (tag, key) in visits if ":step_send_receipt:" in key)
    with app.app_context():
        receipts = sum(len(runtime.snapshot(id)["state"]["receipts"]) for id in ids)
    assert bills == receipts


# -- slow actions: leases kept by live workers, taken over only from dead ones ----------------

def test_slow_actions_under_kills_never_run_twice_while_their_worker_lives(
        make_app, tmp_path, capsys, request):
    """Workflows of one or two actions of 1-3 s each; two workers with lease 5 s and batch 20
    (so a worker's claimed batch outlasts its leases), one of them killed with SIGKILL at a
    random moment and replaced, again and again. An action may run again only after the
    worker that ran it before was killed: never while that worker lived.

    TINYFLOW_TORTURE_SLOW_WORKFLOWS (10), TINYFLOW_TORTURE_SLOW_KILL_SECONDS (12),
    TINYFLOW_TORTURE_SEED and TINYFLOW_TORTURE_DB=postgresql make a longer or other run."""
    total = int(os.environ.get("TINYFLOW_TORTURE_SLOW_WORKFLOWS", "10"))
    budget = float(os.environ.get("TINYFLOW_TORTURE_SLOW_KILL_SECONDS", "12"))
    rng = random.Random(os.environ.get("TINYFLOW_TORTURE_SEED"))
    url = f"sqlite:///{tmp_path / 'tiny-workflow.sqlite'}"
    if os.environ.get("TINYFLOW_TORTURE_DB") == "postgresql":
        url = request.getfixturevalue("postgres_server").create_database()
    flows = ["flows", "runtime_flows"]
    app = make_app(url, TINYFLOW_FLOWS=flows)
    with app.app_context():
        for n in range(total):
            seconds = [round(rng.uniform(1, 3), 2) for _ in range(1 + (n % 3 == 0))]
            runtime.start("slow_steps", {"dir": str(tmp_path), "tag": f"w{n}",
                                         "seconds": seconds}, id=f"w{n:03}")

    def spawn():
        return start_worker(url, tmp_path, "--batch", "20", "--lease-seconds", "5",
                            TINYFLOW_FLOWS=",".join(flows))

    def unfinished() -> int:
        with app.app_context():
            db.session.rollback()
            return total - runtime.status_counts().get("finished", 0)

    killed: dict[int, float] = {}        # pid -> when SIGKILL was sent (epoch seconds)
    started = time.monotonic()
    workers = {}
    tick = threading.Event()
    try:
        while time.monotonic() - started < budget and unfinished():
            while len(workers) < 2:
                proc = spawn()
                workers[proc] = time.monotonic() + rng.uniform(0.8, 6.0)
            for proc, deadline in list(workers.items()):
                if time.monotonic() >= deadline:
                    killed[proc.pid] = time.time()
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    del workers[proc]
            tick.wait(0.02)
        while len(workers) < 2:           # then two workers left alone finish the rest
            workers[spawn()] = None
        wait_until(lambda: not unfinished(), tmp_path, timeout=180)
    finally:
        for proc in workers:
            proc.send_signal(signal.SIGTERM)
        for proc in workers:
            finish(proc, tmp_path, timeout=60)
    elapsed = time.monotonic() - started

    runs = collections.defaultdict(list)   # action -> [(start time, pid)], in order
    for what, pid in effects(tmp_path):
        name, at = what.rsplit("@", 1)
        runs[name].append((float(at), pid))
    with app.app_context():
        db.session.rollback()
        assert runtime.status_counts() == {"finished": total}
        committed = {f"{doc['state']['tag']}:{key.split(':')[-1]}"
                     for doc in (runtime.snapshot(f"w{n:03}") for n in range(total))
                     for key in doc["cache"] if key != "_seq"}
    assert set(runs) == committed
    once = again = 0
    for name, seq in runs.items():
        seq.sort()
        for (_, pid), (next_at, _) in zip(seq, seq[1:]):
            # Run again only once the worker that ran it before was dead (killed before the
            # next run began): never while it lived and held its lease.
            assert pid in killed and killed[pid] <= next_at, (name, seq, killed.get(pid))
        once += len(seq) == 1
        again += len(seq) > 1
    actions = sum(len(seq) for seq in runs.values())
    summary = (f"\ntorture (slow actions): {total} workflows, {len(runs)} actions of 1-3 s, "
               f"lease 5 s, batch 20, two workers; {len(killed)} killed with SIGKILL at random "
               f"moments; {elapsed:.1f} s\n"
               f"torture (slow actions): {actions} real runs: {once} actions ran once, "
               f"{again} again after a kill cut them off, 0 twice while their worker lived\n")
    with capsys.disabled():
        print(summary)
    (tmp_path / "summary.txt").write_text(summary)
    assert killed, "no worker was killed"
