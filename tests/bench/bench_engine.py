"""Benchmark: ``simple`` workflows started and run to their end, on a SQLite file (WAL,
synchronous=FULL), through the runtime and through the WSGI app (POST /api/workflows), beside
the peer (DBOS running the same three steps) in the same run.

Rounds alternate the peer's two modes and our two paths, so that a noisy minute hits them all;
each figure is the median over the rounds.

    python tests/bench/bench_engine.py [--json] [--quick]
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from common import Figure  # noqa: E402

RUNTIME_X_PEER = 10.0        # through the runtime, times DBOS as shipped
RUNTIME_X_PEER_WAL = 5.0     # through the runtime, times DBOS on WAL
WSGI_X_PEER = 8.0            # through POST /api/workflows, times DBOS as shipped
MAX_COMMITS = 2.0            # DESIGN.md's durability: a simple flow costs at most two commits


def peer(n: int, mode: str, threads: int = 1, pg_url: str | None = None) -> dict | None:
    """One run of the peer benchmark (``{"wf_per_s", "commits_per_wf", ...}``) with ``n``
    workflows from ``threads`` threads (mode ``postgres``: on the database ``pg_url``), or
    None when it is not there or fails."""
    if not common.PEER_SCRIPT.exists():
        return None
    env = {**os.environ, **({"DBOS_PEER_PG_URL": pg_url} if pg_url else {})}
    done = subprocess.run(["bash", str(common.PEER_SCRIPT), str(n), mode, str(threads)],
                          capture_output=True, text=True, timeout=900, check=False, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        common.progress(f"peer {mode} failed: {done.stderr.strip()[-500:]}")
        return None
    return json.loads(lines[-1])


def through_runtime(app, commits, n: int) -> tuple[float, list[float], float]:
    """``n`` simple workflows with ``runtime.start``: (workflows/s, ms of each, commits each)."""
    from webapp import runtime

    latencies = []
    with app.app_context(), common.quiet():
        before = commits.count
        start = time.perf_counter()
        for _ in range(n):
            t = time.perf_counter()
            row = runtime.start("simple")
            latencies.append((time.perf_counter() - t) * 1000)
        elapsed = time.perf_counter() - start
        assert row.status == "finished", row.status
        made = commits.count - before
    return n / elapsed, latencies, made / n


def through_wsgi(app, n: int) -> tuple[float, list[float]]:
    """``n`` whole POST /api/workflows requests: (workflows/s, ms of each)."""
    latencies = []
    with common.quiet():
        start = time.perf_counter()
        for _ in range(n):
            t = time.perf_counter()
            status, answer = common.wsgi(app, "POST", "/api/workflows", {"flow": "simple"})
            latencies.append((time.perf_counter() - t) * 1000)
        elapsed = time.perf_counter() - start
    assert status == 201 and answer["status"] == "finished", (status, answer)
    return n / elapsed, latencies


def measure(quick: bool = False) -> list[Figure]:
    rounds, n, peer_n = (2, 200, 200) if quick else (5, 500, 200)
    tmp = common.scratch("tw-bench-engine-")
    app = common.make_app(tmp / "engine.sqlite")
    durability = common.sqlite_durability(app)
    commits = common.CommitCounter(app)
    through_runtime(app, commits, 50)          # warm: imports, statement caches, the file
    through_wsgi(app, 50)

    ours, wsgi_rates, per_wf, lat = [], [], [], []
    peers: dict[str, list[dict]] = {"default": [], "wal_full": []}
    for r in range(rounds):
        common.progress(f"engine: round {r + 1}/{rounds}")
        for mode in peers:
            found = peer(peer_n, mode)
            if found:
                peers[mode].append(found)
        rate, latencies, each = through_runtime(app, commits, n)
        ours.append(rate)
        lat.append(latencies)
        per_wf.append(each)
        wsgi_rates.append(through_wsgi(app, n)[0])

    runtime_rate = statistics.median(ours)
    wsgi_rate = statistics.median(wsgi_rates)
    detail = f"median of {rounds} batches of {n}"
    figures = [
        Figure("engine", "simple workflows through the runtime", runtime_rate, "wf/s",
               detail=f"{detail}; {durability}"),
        Figure("engine", "commits per simple workflow", max(per_wf), "",
               at_most=MAX_COMMITS),
        Figure("engine", "p50 per workflow", common.median_of(lat, 50), "ms", detail=detail),
        Figure("engine", "p99 per workflow", common.median_of(lat, 99), "ms", detail=detail),
        Figure("engine", "through POST /api/workflows (whole WSGI request)", wsgi_rate, "wf/s",
               detail=detail),
    ]
    if not peers["default"] or not peers["wal_full"]:
        common.progress("the peer benchmark is not there: no ratios")
        return figures
    shipped = statistics.median(p["wf_per_s"] for p in peers["default"])
    wal = statistics.median(p["wf_per_s"] for p in peers["wal_full"])
    peer_detail = f"median of {len(peers['default'])} runs of {peer_n}"
    figures += [
        Figure("peer", "DBOS as shipped (rollback journal, synchronous=FULL)", shipped, "wf/s",
               detail=f"{peer_detail}; "
                      f"{statistics.median(p['commits_per_wf'] for p in peers['default']):.0f}"
                      " commits/wf"),
        Figure("peer", "DBOS on WAL, synchronous=FULL", wal, "wf/s",
               detail=f"{peer_detail}; "
                      f"{statistics.median(p['commits_per_wf'] for p in peers['wal_full']):.0f}"
                      " commits/wf"),
        Figure("ratio", "runtime / DBOS as shipped", runtime_rate / shipped, "x",
               at_least=RUNTIME_X_PEER),
        Figure("ratio", "runtime / DBOS on WAL", runtime_rate / wal, "x",
               at_least=RUNTIME_X_PEER_WAL),
        Figure("ratio", "POST /api/workflows / DBOS as shipped", wsgi_rate / shipped, "x",
               at_least=WSGI_X_PEER),
    ]
    return figures


if __name__ == "__main__":
    common.main(measure, __doc__)
