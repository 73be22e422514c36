"""Benchmark: the real server (``tiny-workflow serve``, waitress) under load, on a SQLite file
(WAL, synchronous=FULL) and on PostgreSQL (a throwaway server with fsync on), beside what
bounds it and what it is measured against, all in the same run:

- the load: 1, 16 and 64 clients, each a thread of this process on its own keep-alive
  connection (http.client), POSTing ``{"flow": "simple"}`` to /api/workflows for a fixed
  number of requests in all: workflows/s, p50, p99, errors (any answer but 201);
- the raw commit limit: one small insert per commit for 2 s (plain sqlite3, WAL,
  synchronous=FULL; plain psycopg on PostgreSQL);
- the drain rate of one ``tiny-workflow worker`` (``bench_runner``), and on PostgreSQL of 1, 2
  and 4 workers at once on the same due timers;
- DBOS (``../shared/bench/peer-dbos.sh``) with 1 and 16 threads.

Rounds take turns through all of them, so a noisy minute hits them all; each figure is the
median over the rounds. The server runs as ``serve`` does by default (127.0.0.1, 8 threads,
no token): the host check passes for 127.0.0.1, and no token is needed.

    python tests/bench/bench_server.py [--json] [--quick]
"""
from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_engine  # noqa: E402
import bench_runner  # noqa: E402
import common  # noqa: E402
import dataset  # noqa: E402
from common import Figure  # noqa: E402

CLIENTS = (1, 16, 64)
TARGET_CLIENTS = 16
PEER_THREADS = (1, 16)
WORKERS = (1, 2, 4)
RAW_SECONDS = 2.0
X_PEER = 15.0                # 16 clients, times DBOS from 16 threads (issue 18)
X_RAW = 0.35                 # 16 clients, times the raw commit limit
P99_MS = 50.0
DRAIN_X_RAW = 1.0            # one worker's drain, times the raw commit limit
CLI = "from webapp.cli import main; main()"
BODY = json.dumps({"flow": "simple"}).encode()


# --- what bounds it: the raw commit limit ------------------------------------------------------

def raw_sqlite_commits(folder: Path, seconds: float = RAW_SECONDS) -> float:
    """Commits/s of one small insert per commit, plain sqlite3, WAL, synchronous=FULL."""
    path = folder / "raw.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
        return _commits(lambda: conn.execute("INSERT INTO t (v) VALUES ('x')"),
                        lambda: conn.execute("BEGIN"), lambda: conn.execute("COMMIT"), seconds)
    finally:
        conn.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def raw_pg_commits(server, seconds: float = RAW_SECONDS) -> float:
    """Commits/s of one small insert per commit, plain psycopg, on ``server``."""
    import psycopg

    url = server.create_database()
    name = url.split("/")[3].split("?")[0]
    with psycopg.connect(host=str(server.dir), user="tw", dbname=name) as conn:
        conn.execute("CREATE TABLE t (id serial PRIMARY KEY, v text)")
        conn.commit()
        return _commits(lambda: conn.execute("INSERT INTO t (v) VALUES ('x')"),
                        lambda: None, conn.commit, seconds)


def _commits(insert, begin, commit, seconds: float) -> float:
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        begin()
        insert()
        commit()
        n += 1
    return n / (time.perf_counter() - start)


# --- the real server ---------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(url: str, instance: Path) -> dict:
    """This environment without any TINYFLOW_* setting (no token, no read-only), on ``url``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TINYFLOW_")}
    return {**env, "TINYFLOW_DATABASE_URL": url, "TINYFLOW_INSTANCE": str(instance),
            "PYTHONUNBUFFERED": "1"}


class Server:
    """``tiny-workflow serve --port P`` on ``url``, in a process of its own, until stopped."""

    def __init__(self, url: str, folder: Path):
        self.port = free_port()
        self.log = folder / f"serve-{self.port}.log"
        with open(self.log, "w") as log:        # the child keeps its own copy
            self.proc = subprocess.Popen([sys.executable, "-c", CLI, "serve", "--port",
                                          str(self.port)], cwd=common.ROOT,
                                         env=_env(url, folder / "instance"), stdout=log,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"serve did not start: {self.log.read_text()[-2000:]}")
            threading.Event().wait(0.1)

    def _answers(self) -> bool:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            conn.request("GET", "/api/workflows?limit=1")
            ok = conn.getresponse().status == 200
            conn.close()
            return ok
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def load(port: int, clients: int, total: int) -> dict:
    """``total`` POSTs of ``{"flow": "simple"}`` to /api/workflows from ``clients`` threads,
    each on its own keep-alive connection: ``{"rate": wf/s, "ms": [...], "errors": n}``."""
    share = [total // clients + (1 if i < total % clients else 0) for i in range(clients)]
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    gate = threading.Barrier(clients + 1)

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Content-Type": "application/json"}
        gate.wait()
        for _ in range(share[i]):
            started = time.perf_counter()
            try:
                conn.request("POST", "/api/workflows", BODY, headers)
                answer = conn.getresponse()
                answer.read()
                if answer.status != 201:
                    errors[i] += 1
            except (OSError, http.client.HTTPException):
                errors[i] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            latencies[i].append((time.perf_counter() - started) * 1000)
        conn.close()

    pool = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in pool:
        thread.start()
    gate.wait()
    started = time.perf_counter()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - started
    return {"rate": total / elapsed, "ms": [ms for each in latencies for ms in each],
            "errors": sum(errors)}


# --- PostgreSQL --------------------------------------------------------------------------------

def postgres():
    """A started throwaway PostgreSQL server with fsync on (tests/conftest.py's), or None
    where its binaries are missing."""
    sys.path.insert(0, str(common.ROOT / "tests"))
    from conftest import PostgresServer

    try:
        server = PostgresServer()
    except RuntimeError as error:
        common.progress(f"server: no PostgreSQL ({error})")
        return None
    try:
        server.start(durable=True)
    except subprocess.CalledProcessError as error:
        server.stop()
        common.progress(f"server: PostgreSQL did not start: {error.stderr or error.stdout}")
        return None
    return server


def due_timers(url: str, n: int) -> None:
    """``n`` billing workflows on the database ``url``, each started through the runtime two
    hours ago and waiting for its hourly timer, due an hour ago (as ``dataset.runner()``'s)."""
    from webapp import create_app, runtime
    from webapp.store import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TINYFLOW_RUNNER": False})
    ago = time.time() - 7_200
    with app.app_context(), common.quiet():
        for i in range(n):
            runtime.start("interval_payment", {"userEmail": f"due-{i}@example.com",
                                               "paymentIntervalMs": 3_600_000}, now=ago)
        db.session.remove()
        db.engine.dispose()         # a database copied from must have no one connected


def drain_with_workers(url: str, workers: int, n: int, folder: Path) -> float:
    """Timers/s of ``workers`` ``tiny-workflow worker --exit-when-idle`` processes at once
    on ``n`` due timers: from the first one's first line to the last one's last line;
    checked (none still due, every one moved on)."""
    since = int(time.time() * 1000)
    found: list[dict] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            found.append(bench_runner.run_worker(url, folder / "instance"))
        except BaseException as error:     # noqa: BLE001 -- reported below
            failed.append(error)

    pool = [threading.Thread(target=run) for _ in range(workers)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    if failed:
        raise failed[0]
    moved = bench_runner.check_drained(url, since, int(time.time() * 1000))
    assert moved == n, (moved, n)
    return n / (max(f["last"] for f in found) - min(f["first"] for f in found))


# --- the run -----------------------------------------------------------------------------------

def measure(quick: bool = False) -> list[Figure]:
    rounds, total, peer_n, due_n = (1, 200, 100, 1_000) if quick else (3, 1_500, 300, 6_000)
    folder = common.scratch("tw-bench-server-")
    loads = [os.getloadavg()[0]]
    pg = postgres()
    urls = {"SQLite": f"sqlite:///{folder / 'server.sqlite'}"}
    if pg is not None:
        urls["PostgreSQL"] = pg.create_database()
    source = dataset.runner()
    if pg is not None:
        due_source = pg.create_database()
        common.progress(f"server: {due_n:,} due timers on PostgreSQL (once)")
        due_timers(due_source, due_n)
    servers: dict[str, Server] = {}
    found: dict[tuple, list] = {}

    def keep(key, value) -> None:
        found.setdefault(key, []).append(value)

    try:
        for db_name, url in urls.items():
            servers[db_name] = Server(url, folder)
            load(servers[db_name].port, 4, 100)           # warm: imports, caches, pages
        for r in range(rounds):
            common.progress(f"server: round {r + 1}/{rounds}")
            keep(("raw", "SQLite"), raw_sqlite_commits(folder))
            if pg is not None:
                keep(("raw", "PostgreSQL"), raw_pg_commits(pg))
            for db_name, server in servers.items():
                for clients in CLIENTS:
                    keep(("load", db_name, clients), load(server.port, clients, total))
            for threads in PEER_THREADS:
                keep(("peer", "SQLite", threads),
                     bench_engine.peer(peer_n, "default", threads))
                if pg is not None:
                    keep(("peer", "PostgreSQL", threads), bench_engine.peer(
                        peer_n, "postgres", threads,
                        pg_url=f"postgresql://tw@/dbos_peer?host={pg.dir}"))
            keep(("drain", "SQLite"), bench_runner.drain_once(source, folder)["rate"])
            if pg is not None:
                for workers in WORKERS:
                    url = pg.create_database(copy_of=due_source)
                    keep(("drain", "PostgreSQL", workers),
                         drain_with_workers(url, workers, due_n, folder))
            loads.append(os.getloadavg()[0])
    finally:
        for server in servers.values():
            server.stop()
        if pg is not None:
            pg.stop()
    return figures(found, rounds, total, peer_n, due_n, loads)


def figures(found: dict, rounds: int, total: int, peer_n: int, due_n: int,
            loads: list[float]) -> list[Figure]:
    med = statistics.median
    out = [Figure("server", "machine load, 1-minute average (max over the run)", max(loads),
                  "", detail=f"{os.cpu_count()} cores; at the start {loads[0]:.2f}")]
    for db_name in ("SQLite", "PostgreSQL"):
        if ("raw", db_name) not in found:
            continue
        raw = med(found[("raw", db_name)])
        how = ("plain sqlite3, WAL, synchronous=FULL" if db_name == "SQLite"
               else "plain psycopg, fsync on")
        out.append(Figure(f"server {db_name}", "raw commit limit, one small insert per commit",
                          raw, "commits/s",
                          detail=f"{how}; median of {rounds} runs of {RAW_SECONDS:.0f} s"))
        detail = f"median of {rounds} runs of {total} requests; tiny-workflow serve, 8 threads"
        rates = {}
        for clients in CLIENTS:
            runs = found[("load", db_name, clients)]
            rates[clients] = med(run["rate"] for run in runs)
            target = clients == TARGET_CLIENTS
            out += [
                Figure(f"server {db_name}", f"POST /api/workflows, {clients} clients",
                       rates[clients], "wf/s", detail=detail),
                Figure(f"server {db_name}", f"{clients} clients p50",
                       common.median_of([run["ms"] for run in runs], 50), "ms"),
                Figure(f"server {db_name}", f"{clients} clients p99",
                       common.median_of([run["ms"] for run in runs], 99), "ms",
                       at_most=P99_MS if target else None),
                Figure(f"server {db_name}", f"{clients} clients errors (answers but 201)",
                       sum(run["errors"] for run in runs), "", at_most=0),
            ]
        out.append(Figure(f"server {db_name}", f"{TARGET_CLIENTS} clients / raw commit limit",
                          rates[TARGET_CLIENTS] / raw, "x", at_least=X_RAW))
        peers = {t: [p for p in found.get(("peer", db_name, t), []) if p]
                 for t in PEER_THREADS}
        if all(peers.values()):
            mode = "as shipped" if db_name == "SQLite" else "postgres"
            for threads, runs in peers.items():
                out.append(Figure(f"server {db_name}", f"DBOS ({mode}), {threads} threads",
                                  med(p["wf_per_s"] for p in runs), "wf/s",
                                  detail=f"median of {len(runs)} runs of {peer_n}"))
            out.append(Figure(f"server {db_name}",
                              f"{TARGET_CLIENTS} clients / DBOS {TARGET_CLIENTS} threads",
                              rates[TARGET_CLIENTS] / med(p["wf_per_s"]
                                                          for p in peers[TARGET_CLIENTS]),
                              "x", at_least=X_PEER))
        else:
            common.progress(f"server: no DBOS figures on {db_name}")
        if db_name == "SQLite":
            drain = med(found[("drain", "SQLite")])
            out += [Figure("server SQLite", f"one worker drains {dataset.DUE:,} due timers",
                           drain, "timers/s",
                           detail=f"median of {rounds} runs; bench_runner's worker run"),
                    Figure("server SQLite", "one worker's drain / raw commit limit",
                           drain / raw, "x", at_least=DRAIN_X_RAW)]
        else:
            one = med(found[("drain", db_name, 1)])
            for workers in WORKERS:
                rate = med(found[("drain", db_name, workers)])
                out.append(Figure(f"server {db_name}",
                                  f"{workers} worker(s) drain {due_n:,} due timers", rate,
                                  "timers/s", detail=f"median of {rounds} runs; "
                                  f"{rate / one:.2f}x one worker"))
    return out


if __name__ == "__main__":
    common.main(measure, __doc__)
