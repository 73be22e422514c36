"""``Runtime`` in a plain program: no Flask app, answers as the JSON API's, one clock, and safe
to share between threads."""
from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from flask import has_app_context

from webapp.runtime import Conflict, Invalid, NotFound, Runtime, Unavailable
from webapp.store import Record

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def rt(tmp_path, clock):
    made = Runtime(f"sqlite:///{tmp_path / 'plain.sqlite'}", flows=["flows"], clock=clock)
    yield made
    made.store.dispose()


def test_a_script_starts_and_drives_a_workflow_without_a_flask_app(rt):
    assert not has_app_context()
    game = rt.start("guess_game_2", id="g1")
    assert game["id"] == "g1" and game["status"] == "waiting"
    assert [wait["key"] for wait in game["pending"]] == ["event_ask"]
    number = game["state"]["number"]
    answer = rt.send("g1", "event_ask", number)
    assert answer["delivered"] == "wait"
    assert answer["pending"][0]["key"] == "event_congratulation"
    assert rt.get("g1")["state"]["answer"] == [number]
    listed = rt.list(flow="guess_game_2")
    assert [item["id"] for item in listed["items"]] == ["g1"] and listed["next_cursor"] is None
    assert rt.logs("g1", type="event_received")["items"][0]["values"]["name"] == "event_ask"


def test_its_commands_answer_like_the_api(rt, make_app, any_db_url, clock):
    client = make_app().test_client()
    api = client.post("/api/workflows", json={"flow": "simple", "id": "s"}).json
    mine = rt.start("simple", id="s")
    assert set(mine) == set(api)
    assert {k: v for k, v in mine.items() if k != "log_count"} == {
        k: v for k, v in api.items() if k != "log_count"}


def test_row_times_and_leases_follow_the_clock_it_runs_on(rt, clock):
    made = rt.start("user_onboarding", id="u", now=clock() - 3600)
    assert made["created_at"] == "2024-08-18T13:35:33.500Z"      # an hour before the clock
    rt.advance("u", 0)
    assert rt.get("u")["updated_at"] == "2024-08-18T14:35:33.500Z"
    clock.advance(30)
    assert rt.run_due() == 1
    assert rt.get("u")["status"] == "finished"


def test_errors_carry_the_status_and_code_the_api_answers(rt):
    rt.start("simple", id="s")
    cases = [(lambda: rt.get("nope"), NotFound, 404, "not_found"),
             (lambda: rt.start("simple", id="s"), Conflict, 409, "conflict"),
             (lambda: rt.start("simple", state=[1]), Invalid, 422, "invalid"),
             (lambda: rt.send("s", "x"), Conflict, 409, "conflict")]
    for call, kind, status, code in cases:
        with pytest.raises(kind) as raised:
            call()
        assert (raised.value.status, raised.value.code) == (status, code)
    assert (Unavailable.status, Unavailable.code) == (503, "unavailable")


def test_many_threads_share_one_runtime(rt):
    ids = [f"t{n}" for n in range(40)]
    errors: list[BaseException] = []

    def play(chunk):
        try:
            for id in chunk:
                game = rt.start("guess_game_2", id=id)
                rt.send(id, "event_ask", game["state"]["number"], idempotency_key="k")
                rt.send(id, "event_ask", game["state"]["number"], idempotency_key="k")
        except BaseException as error:      # reported below
            errors.append(error)
    threads = [threading.Thread(target=play, args=(ids[n::8],)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert rt.status_counts() == {"waiting": 40}
    for id in ids:
        assert len(rt.get(id)["state"]["answer"]) == 1          # each key delivered once


def test_the_record_level_commands_answer_records(rt):
    record = super(Runtime, rt).start("simple", id="r")
    assert isinstance(record, Record) and record.status == "finished"


def test_a_plain_python_process_needs_nothing_but_the_url(tmp_path):
    script = (
        "from webapp.runtime import Runtime\n"
        f"rt = Runtime('sqlite:///{tmp_path / 'p.sqlite'}', flows=['flows'])\n"
        "print(rt.start('simple', id='one')['status'])\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "finished"
