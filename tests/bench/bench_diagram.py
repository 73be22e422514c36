"""Benchmark: the diagram of a workflow with 1,000+ audit-log entries, and the page showing it.

Run ``python tests/bench/bench_diagram.py`` for the figures: building and rendering the
diagram (the SVG cache emptied each time, so Graphviz really runs; the target is under 10 ms
once the renderer is warm) and the whole workflow page, database included.
"""
from __future__ import annotations

import json
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from flows.guess_game_2 import GuessGame2  # noqa: E402
from webapp import diagram  # noqa: E402

from common import timed  # noqa: E402

T0 = 1_723_991_733


def long_game(min_entries: int = 1000) -> GuessGame2:
    """A guess game answered wrongly until its audit log has ``min_entries`` entries."""
    random.seed(3)
    g = GuessGame2(now=T0)
    g.run(now=T0)
    wrong = g.state["number"] + 1 if g.state["number"] < 100 else g.state["number"] - 1
    t = T0
    while len(g.to_json()["logs"]) < min_entries:
        t += 7
        g.send("event_ask", wrong, now=t)
        g.run(now=t)
    return g



def summary(ms: list[float]) -> str:
    ms = sorted(ms)
    return (f"median {statistics.median(ms):.2f} ms, p95 {ms[int(len(ms) * 0.95) - 1]:.2f} ms, "
            f"max {ms[-1]:.2f} ms")


def measure_diagram(repeat: int = 200) -> dict[str, list[float]]:
    g = long_game()
    data = json.loads(json.dumps(g.to_json()))
    pending = g.pending()

    def build():
        return diagram.build(GuessGame2, data["logs"], status=g.status, step=g.step,
                             pending=pending, link=lambda s: f"?log_step={s}#log")

    def build_and_render():
        diagram.renderer.cache.clear()         # a real Graphviz render every time
        build().svg()

    start = time.perf_counter()
    diagram.warm_up()
    first = (time.perf_counter() - start) * 1000
    build_and_render()
    return {"entries": [len(data["logs"])], "first render (load WebAssembly)": [first],
            "build only": timed(build, repeat),
            "build + render (no cache)": timed(build_and_render, repeat),
            "build + render (cached SVG)": timed(lambda: build().svg(), repeat)}


def measure_page(tmp: Path, repeat: int = 50) -> list[float]:
    import os

    os.environ.setdefault("TINYFLOW_INSTANCE", str(tmp / "instance"))
    from webapp import create_app, runtime

    g = long_game()
    app = create_app({"TESTING": True, "TINYFLOW_CLOCK": lambda: T0 + 10_000,
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp / 'bench.sqlite'}"})
    with app.app_context():
        [wf_id] = runtime.import_snapshots(json.loads(json.dumps(g.to_json())),
                                           flow="guess_game_2")
    client = app.test_client()
    page = client.get(f"/workflows/{wf_id}")
    assert page.status_code == 200, page.status_code
    assert b'id="step&#45;step_ask"' in page.data
    return timed(lambda: client.get(f"/workflows/{wf_id}"), repeat)


if __name__ == "__main__":
    import tempfile

    for name, ms in measure_diagram().items():
        print(f"{name:32} {ms[0]:.0f}" if len(ms) == 1 else f"{name:32} {summary(ms)}")
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'workflow page (GET)':32} {summary(measure_page(Path(tmp)))}")
