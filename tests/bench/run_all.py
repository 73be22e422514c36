"""Every benchmark in one run, one table: the engine beside DBOS, events, the dashboard at
100,000 workflows, the runner, flow statistics and search attributes at 1,000,000 workflows
(100,000 with --quick), the real server under load (SQLite and PostgreSQL) beside the raw
commit limit and DBOS. Exits 1 when a target is missed.

    python tests/bench/run_all.py            # the full run (about 10 minutes once the
                                             # databases are made; making them: a few more)
    python tests/bench/run_all.py --quick    # fewer, smaller batches and databases
    python tests/bench/run_all.py --json     # the figures as JSON
    python tests/bench/run_all.py --only engine,events
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_batches  # noqa: E402
import bench_dashboard  # noqa: E402
import bench_engine  # noqa: E402
import bench_events  # noqa: E402
import bench_runner  # noqa: E402
import bench_schedules  # noqa: E402
import bench_search  # noqa: E402
import bench_server  # noqa: E402
import bench_stats  # noqa: E402
import common  # noqa: E402

BENCHMARKS = {"engine": bench_engine, "events": bench_events, "dashboard": bench_dashboard,
              "runner": bench_runner, "schedules": bench_schedules, "batches": bench_batches,
              "stats": bench_stats, "search": bench_search, "server": bench_server}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--quick", action="store_true", help="fewer and smaller batches")
    parser.add_argument("--only", help="comma-separated: " + ", ".join(BENCHMARKS))
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}: use {', '.join(BENCHMARKS)}")
    figures = []
    started = time.perf_counter()
    for name in names:
        common.progress(f"== {name}")
        figures += BENCHMARKS[name].measure(quick=args.quick)
    common.progress(f"== done in {time.perf_counter() - started:.0f} s")
    sys.exit(common.report(figures, args.json))


if __name__ == "__main__":
    main()
