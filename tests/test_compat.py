"""Snapshots written by the original TypeScript library load, round-trip and resume here.

They are read in place from ../shared/compat (never copied into the project): state.json is
a guess_game, state_2.json a guess_game_2, and the two db files are lists of [runId, snapshot]
for user_onboarding and interval_payment.
"""
import json

import pytest

from engine_helpers import COMPAT, T0, log_types
from flows.guess_game import GuessGame
from flows.guess_game_2 import GuessGame2
from flows.interval_payment import IntervalPayment
from flows.user_onboarding import UserOnboarding

pytestmark = pytest.mark.skipif(
    not COMPAT.is_dir(), reason=f"the original's snapshots are not here: {COMPAT} is absent")


def documents():
    """(test id, flow class, snapshot) for every snapshot in the compat folder."""
    if not COMPAT.is_dir():
        return []
    found = [("state.json", GuessGame, json.loads((COMPAT / "state.json").read_text())),
             ("state_2.json", GuessGame2, json.loads((COMPAT / "state_2.json").read_text()))]
    for file, cls in [("userOnboarding_db.json", UserOnboarding),
                      ("intervalPayment_db.json", IntervalPayment)]:
        for run_id, snapshot in json.loads((COMPAT / file).read_text()):
            found.append((f"{file}:{run_id}", cls, snapshot))
    return found


DOCUMENTS = documents()
CASES = [pytest.param(cls, snap, id=name) for name, cls, snap in DOCUMENTS]


def test_every_snapshot_is_found():
    assert len(DOCUMENTS) == 2 + 10 + 1


@pytest.mark.parametrize("cls, original", CASES)
def test_snapshot_loads_key_for_key_and_round_trips_unchanged(cls, original):
    text = json.dumps(original)
    wf = cls.from_json(json.loads(text))
    assert wf.status == "running"        # no `status` key: written by the original
    doc = wf.to_json()
    assert doc.pop("status") == "running"
    assert json.dumps(doc) == text       # nothing lost, renamed or reordered

    saved = json.dumps(wf.to_json())
    assert json.dumps(cls.from_json(json.loads(saved)).to_json()) == saved


@pytest.mark.parametrize("name", ["state.json", "state_2.json"])
def test_a_guess_game_waiting_for_its_congratulation_resumes_to_the_end(name):
    _, cls, original = next(d for d in DOCUMENTS if d[0] == name)
    wf = cls.from_json(json.loads(json.dumps(original)))
    pending_key = next(k for k, v in original["system"].items() if not v["isDone"])
    resume_id = original["system"][pending_key]["resumeId"]

    assert wf.run(T0) == "waiting"
    # The original's pending event is the one still open: not registered again.
    [asked] = wf.pending()
    assert asked["resumeId"] == resume_id and asked["key"] == "event_congratulation"
    rounds, number = len(original["state"]["answer"]), original["state"]["number"]
    assert asked["requestPayload"] == {
        "question": f"You need {rounds} rounds to guess the number {number}. Congratulation!"}
    new_logs = log_types(wf)[len(original["logs"]):]
    assert "interrupt_begin" not in new_logs

    assert wf.send("event_congratulation", now=T0) == "wait"
    assert wf.run(T0) == "finished"
    assert wf.to_json()["system"][pending_key]["isDone"] is True
    assert wf.state == original["state"]
    assert log_types(wf)[len(original["logs"]):] == ["event_received", "interrupt_end",
                                                     "finished"]


@pytest.mark.parametrize("cls, original", [
    c for c in CASES if c.values[0] in (UserOnboarding, IntervalPayment)])
def test_a_finished_looking_snapshot_runs_to_finished_without_redoing_anything(cls, original):
    wf = cls.from_json(json.loads(json.dumps(original)))
    assert wf.run(T0) == "finished"
    doc = wf.to_json()
    # Only the end is new: no action ran again, no wait was registered, nothing else changed.
    assert log_types(wf)[len(original["logs"]):] == ["finished"]
    for part in ("step", "state", "cache", "system"):
        assert doc[part] == original[part]
    assert wf.pending() == []
