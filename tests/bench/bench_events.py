"""Benchmark: an event's round trip through the WSGI app. POST an answer to a guess game that
waits for it, and get back the workflow moved on (the next question asked), on a SQLite file
(WAL, synchronous=FULL).

    python tests/bench/bench_events.py [--json] [--quick]
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from common import Figure  # noqa: E402

P95_MS = 10.0
GAMES = 20


def wrong_answer(number: int) -> int:
    return number + 1 if number < 100 else number - 1


def measure(quick: bool = False) -> list[Figure]:
    batches, per_batch = (3, 100) if quick else (5, 300)
    tmp = common.scratch("tw-bench-events-")
    app = common.make_app(tmp / "events.sqlite")
    durability = common.sqlite_durability(app)
    games = []
    for _ in range(GAMES):
        status, wf = common.wsgi(app, "POST", "/api/workflows", {"flow": "guess_game_2"})
        assert status == 201 and wf["status"] == "waiting", (status, wf)
        games.append((wf["id"], wrong_answer(wf["state"]["number"])))

    def round_trip(i: int) -> None:
        wf_id, answer = games[i % GAMES]
        status, wf = common.wsgi(app, "POST", f"/api/workflows/{wf_id}/events",
                                 {"name": "event_ask", "payload": answer})
        # Moved on: the answer was checked and the game asks again, with a hint.
        assert status == 200 and wf["status"] == "waiting", (status, wf)
        assert wf["state"]["answer"][-1] == answer
        assert wf["pending"][0]["requestPayload"]["question"].startswith("value "), wf

    for i in range(GAMES):                      # warm: every game answered once
        round_trip(i)
    ms = []
    for b in range(batches):
        common.progress(f"events: batch {b + 1}/{batches}")
        ms.append(common.timed(lambda it=iter(range(per_batch)): round_trip(next(it)),
                               per_batch))
    detail = f"median of {batches} batches of {per_batch}; {durability}"
    return [
        Figure("events", "round trip p50 (POST /api/workflows/<id>/events)",
               common.median_of(ms, 50), "ms", detail=detail),
        Figure("events", "round trip p95", common.median_of(ms, 95), "ms", at_most=P95_MS),
    ]


if __name__ == "__main__":
    common.main(measure, __doc__)
