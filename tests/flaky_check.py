"""Find the tests that fail by chance: run the whole suite many times, with a different
Hypothesis seed each time, and some of the runs two at a time (load on a small machine).

    python tests/flaky_check.py --runs 20 --parallel 2 --parallel-runs 10

It prints each run's result and, at the end, every test that failed in any run with how often.
A flaky test is a bug: fix its cause (an injected clock, an event to wait for instead of a
sleep, a bound that holds on a slow machine), never retry it. Exit status 1 if any run failed.
Extra arguments after ``--`` go to pytest (e.g. ``-- -m "not e2e"``).
"""
from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_suite(n: int, work: Path, extra: list[str]) -> tuple[int, float, list[str]]:
    """Run the suite once (seed ``n``); (exit status, seconds, ids of the failed tests)."""
    report = work / f"run-{n}.xml"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               f"--hypothesis-seed={n}", f"--basetemp={work / f'tmp-{n}'}",
               f"--junitxml={report}", *extra]
    started = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.monotonic() - started
    (work / f"run-{n}.log").write_text(done.stdout + done.stderr)
    failed = []
    if report.exists():
        for case in ET.parse(report).iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                failed.append(f"{case.get('classname')}::{case.get('name')}")
    return done.returncode, seconds, failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="whole-suite runs in all")
    parser.add_argument("--parallel", type=int, default=2, help="suites at once, for the "
                        "runs under load")
    parser.add_argument("--parallel-runs", type=int, default=10,
                        help="how many of the runs go two (--parallel) at a time")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to pytest")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tinyflow-flaky-"))
    print(f"logs and reports in {work}", flush=True)
    failures: collections.Counter[str] = collections.Counter()
    bad_runs = 0
    alone = list(range(args.runs - args.parallel_runs))
    loaded = list(range(len(alone), args.runs))

    def record(n, result, how):
        nonlocal bad_runs
        status, seconds, failed = result
        bad_runs += status != 0
        failures.update(failed)
        print(f"run {n + 1:2d} ({how}, seed {n}): exit {status}, {seconds:.0f} s"
              + (f", failed: {', '.join(failed)}" if failed else ""), flush=True)

    for n in alone:
        record(n, run_suite(n, work, args.pytest_args), "alone")
    for i in range(0, len(loaded), args.parallel):
        group = loaded[i:i + args.parallel]
        with ThreadPoolExecutor(len(group)) as pool:
            results = list(pool.map(lambda n: run_suite(n, work, args.pytest_args), group))
        for n, result in zip(group, results, strict=True):
            record(n, result, f"{len(group)} at once")
    print(f"\n{args.runs - bad_runs} of {args.runs} runs passed")
    for test, count in failures.most_common():
        print(f"  {count} x {test}")
    return 1 if bad_runs else 0


if __name__ == "__main__":
    sys.exit(main())
