"""What the benchmarks share: an app on a SQLite file, a WSGI call, percentiles, medians of
batches, and the table (or JSON) every script prints.

Each ``bench_*.py`` has ``measure(quick=False) -> list[Figure]`` and runs on its own
(``python tests/bench/bench_engine.py [--json] [--quick]``); ``run_all.py`` runs them all.
"""
from __future__ import annotations

import argparse
import atexit
import contextlib
import inspect
import io
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: The peer benchmark (DBOS), when the shared folder is there.
PEER_SCRIPT = ROOT.parent / "shared" / "bench" / "peer-dbos.sh"
#: Where generated databases are kept between runs.
CACHE_DIR = Path(os.environ.get("TINYFLOW_BENCH_CACHE", Path(tempfile.gettempdir())
                                / "tiny-workflow-bench"))


@dataclass
class Figure:
    """One measured figure, and the bound it must meet (``at_least`` or ``at_most``)."""

    group: str
    name: str
    value: float
    unit: str
    at_least: float | None = None
    at_most: float | None = None
    detail: str = ""

    @property
    def ok(self) -> bool | None:
        if self.at_least is not None and self.value < self.at_least:
            return False
        if self.at_most is not None and self.value > self.at_most:
            return False
        return None if self.at_least is None and self.at_most is None else True

    @property
    def target(self) -> str:
        if self.at_least is not None:
            return f">= {_number(self.at_least)}"
        if self.at_most is not None:
            return f"<= {_number(self.at_most)}"
        return ""

    def as_dict(self) -> dict:
        return {**asdict(self), "target": self.target, "ok": self.ok}


# --- an app on a SQLite file -------------------------------------------------------------------

def scratch(prefix: str) -> Path:
    """A temporary folder, removed when the benchmark's process ends."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def make_app(db_path: Path, **config):
    """The real app (``create_app``) on the SQLite file ``db_path``: WAL, synchronous=FULL
    unless ``config`` says otherwise; no background runner."""
    os.environ.setdefault("TINYFLOW_INSTANCE", str(scratch("tw-bench-instance-")))
    from webapp import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{db_path}",
                       "TINYFLOW_RUNNER": False, **config})


@dataclass
class Cost:
    """What a setting costs the ``simple`` flow: both rates (wf/s), and the cost in % of
    the rate without it."""

    rate_on: float
    rate_off: float
    percent: float
    slices: int
    size: int


def setting_cost(on, off, slices: int = 200, size: int = 10) -> Cost:
    """The cost of what app ``on`` does and app ``off`` does not, to ``simple`` workflows
    started through the runtime: ``slices`` turns of ``size`` workflows on each, in turns
    (who goes first alternates), timed by the wall clock and summed per app. Slices this
    short share the machine's slow and busy moments between both apps, which batches of
    hundreds did not on a shared machine (their ratios spread over +-30 %)."""
    from webapp import runtime

    spent = {id(on): 0.0, id(off): 0.0}
    for app in (on, off):                        # warm: statement caches, the first pages
        with app.app_context(), quiet():
            for _ in range(50):
                runtime.start("simple")
    for i in range(slices):
        for app in ((on, off) if i % 2 == 0 else (off, on)):
            with app.app_context(), quiet():
                started = time.perf_counter()
                for _ in range(size):
                    runtime.start("simple")
                spent[id(app)] += time.perf_counter() - started
    rate_on, rate_off = slices * size / spent[id(on)], slices * size / spent[id(off)]
    return Cost(rate_on, rate_off, (1 - rate_on / rate_off) * 100, slices, size)


def instructions_per_simple(settings: dict[str, str], count: int = 400) -> float | None:
    """CPU instructions per ``simple`` workflow through the runtime with app ``settings``
    (``{"TINYFLOW_HISTORY": "off"}``), counted by valgrind's callgrind: the difference of
    runs of ``count`` and of 0 workflows (after the same warm-up), divided by ``count``. The
    count does not depend on what else the machine runs, unlike a time; None without
    valgrind. Fsync waits are not instructions: a cost measured so is a cost in CPU."""
    if shutil.which("valgrind") is None:
        return None
    child = Path(__file__).resolve().parent / "simple_child.py"
    totals = []
    for n in (0, count):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "callgrind.out"
            done = subprocess.run(
                ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                 sys.executable, str(child), str(n),
                 *(f"{name}={value}" for name, value in settings.items())],
                capture_output=True, text=True, check=True)
        found = re.search(r"Collected : (\d+)", done.stderr)
        totals.append(int(found.group(1)))
    return (totals[1] - totals[0]) / count


def sqlite_durability(app) -> str:
    """``journal_mode=wal, synchronous=FULL`` as the app's connections really have them."""
    from webapp.store import db

    with app.app_context():
        journal = db.session.execute(db.text("PRAGMA journal_mode")).scalar()
        sync = db.session.execute(db.text("PRAGMA synchronous")).scalar()
        db.session.remove()
    sync = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[sync]
    return f"journal_mode={journal}, synchronous={sync}"


class CommitCounter:
    """Counts the commits an app's database engine makes (SQLAlchemy's ``commit`` event)."""

    def __init__(self, app):
        from sqlalchemy import event

        from webapp.store import db

        self.count = 0
        with app.app_context():
            event.listen(db.engine, "commit", self._seen)

    def _seen(self, _conn) -> None:
        self.count += 1


@contextlib.contextmanager
def quiet():
    """Swallow what the example flows print (``simple`` prints from its action)."""
    with contextlib.redirect_stdout(io.StringIO()) as sink:
        yield
        sink.truncate(0)


def wsgi(app, method: str, path: str, body: dict | None = None) -> tuple[int, dict | bytes]:
    """One whole request through the WSGI app, as a server makes it: the status and the
    answer (JSON decoded when it is JSON)."""
    from werkzeug.test import EnvironBuilder

    data = None if body is None else json.dumps(body)
    builder = EnvironBuilder(path=path, method=method, data=data,
                             content_type="application/json" if body is not None else None)
    environ = builder.get_environ()
    builder.close()
    status: list[str] = []
    headers: list = []

    def start_response(line, response_headers, exc_info=None):
        status.append(line)
        headers.extend(response_headers)

    answer = app(environ, start_response)
    try:
        raw = b"".join(answer)
    finally:
        getattr(answer, "close", lambda: None)()
    code = int(status[0].split()[0])
    if dict(headers).get("Content-Type", "").startswith("application/json"):
        return code, json.loads(raw)
    return code, raw


# --- timing ----------------------------------------------------------------------------------

def timed(fn, repeat: int) -> list[float]:
    """``fn()`` ``repeat`` times: each call's milliseconds."""
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def percentile(values, p: float) -> float:
    """The ``p``-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))   # ceil
    return ordered[int(rank) - 1]


def median_of(batches: list[list[float]], p: float) -> float:
    """The median over batches of each batch's ``p``-th percentile."""
    return statistics.median(percentile(batch, p) for batch in batches)


# --- the table -------------------------------------------------------------------------------

def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{os.cpu_count()} CPU ({cpu}), Python {platform.python_version()}, "
            f"SQLite {__import__('sqlite3').sqlite_version}, {platform.system()} "
            f"{platform.release()}")


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def table(figures: list[Figure]) -> str:
    """The figures as a Markdown table: group, figure, value, target, whether it is met."""
    rows = [("", "figure", "value", "target", "")]
    for f in figures:
        mark = {True: "ok", False: "MISSED", None: ""}[f.ok]
        rows.append((f.group, f.name + (f" ({f.detail})" if f.detail else ""),
                     f"{_number(f.value)} {f.unit}", f.target, mark))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def report(figures: list[Figure], as_json: bool) -> int:
    """Print the figures; the exit status says whether every target was met."""
    missed = [f for f in figures if f.ok is False]
    if as_json:
        print(json.dumps({"machine": machine(), "figures": [f.as_dict() for f in figures],
                          "all_met": not missed}, indent=1))
    else:
        print(f"Machine: {machine()}\n")
        print(table(figures))
        print("\nEvery target met." if not missed else
              f"\nMissed: {', '.join(f.group + ' ' + f.name for f in missed)}.")
    return 1 if missed else 0


def main(measure, doc: str | None = None) -> None:
    """The command line of one benchmark script: ``--json``, ``--quick``, and ``--workflows
    N`` when ``measure`` takes ``workflows`` (the size of its database)."""
    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--quick", action="store_true", help="fewer and smaller batches")
    sized = "workflows" in inspect.signature(measure).parameters
    if sized:
        parser.add_argument("--workflows", type=int, help="workflows in the database")
    args = parser.parse_args()
    options = {"workflows": args.workflows} if sized else {}
    sys.exit(report(measure(quick=args.quick, **options), args.json))


def progress(message: str) -> None:
    """A line on stderr, so a long run says what it is doing (stdout stays the table)."""
    print(message, file=sys.stderr, flush=True)
