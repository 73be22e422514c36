"""The original library's test cases (reference §4), ported with the same assertions.

Each test keeps the original's name and its test-variant flow class. Where the port differs
from the original by design (DESIGN.md), the port's behaviour is asserted and a comment says so:
a finished workflow logs ``finished``; transitions are checkpoints; a pending wait is registered
once; a move to the same step is a new visit. No live generator is kept between runs, so the
original's "one generator" tests run one instance, run again after each answer.

Test 9 (``astFunctionScan``: action keys found by scanning a method) maps to ``FlowSpec.keys``.
Test 10 (``astJsonSchema``: the JSON schema of a TypeScript state *type*) has no Python
counterpart: a flow's state is a plain dict with no declared type to convert, so it is left out.
"""
import math

import pytest

from engine_helpers import T0, T0_MS, logs_without_at, log_types, mock_resume_ids, \
    only_pending, reload
from webapp.engine import Checkpoint, Workflow, step

PI = math.pi


# -- durableState.test.ts ---------------------------------------------------------------------

class SampleState(Workflow):
    """The README example with its audit log on (tests 1)."""

    name = "test_sample_state"
    first_step = "step_begin"

    @step
    def step_begin(self):
        self.state["startHit"] = True
        self.log("start_hit")
        return "step_compute"

    @step
    def step_compute(self):
        value = yield self.action("cache_computed", lambda: PI)
        self.log("computed_hit", actionValue=value)
        self.state["computed"] = value
        return "step_end"

    @step
    def step_end(self):
        self.state["endHit"] = True
        self.log("end_hit")
        return None


class StepState(SampleState):
    """Three actions in one step, each its own checkpoint (test 2)."""

    name = "test_step_state"

    @step
    def step_compute(self):
        total = 0
        for i in range(3):
            value = yield self.action(f"cache_computed_{i}", lambda: PI)
            total += value
        self.state["computed"] = total
        self.log("computed_hit", actionValue=total)
        return "step_end"


class WaitMsState(Workflow):
    """A durable one-second timer (test 3)."""

    name = "test_wait_ms_state"
    first_step = "step_begin"

    @step
    def step_begin(self):
        self.state["startHit"] = True
        yield self.sleep("wait_for_1sec", 1)
        self.log("log", msg="after 1 sec")
        return "step_end"

    @step
    def step_end(self):
        self.state["endHit"] = True
        return None


class WaitEventState(Workflow):
    """One question asked to the outside (test 4)."""

    name = "test_wait_event_state"
    first_step = "step_begin"

    @step
    def step_begin(self):
        self.state["startHit"] = True
        answer = yield self.wait_event("event_01", {"question": "hey human. 1 + 1 = ?"})
        self.state["eventResponse"] = answer
        self.log("log", msg="event_01 resolved with value", answer=answer)
        return "step_end"

    @step
    def step_end(self):
        self.state["endHit"] = True
        return None


def fresh(cls, state):
    """Built like the original's tests: ``fromJSON`` without logs, so there is no ``init``."""
    return cls.from_json({"step": "step_begin", "state": state})


def test_simple_durable_state():
    wf = fresh(SampleState, {"computed": 0})
    assert wf.run(T0) == "finished"
    assert wf.state == {"computed": PI, "endHit": True, "startHit": True}
    assert logs_without_at(wf) == [
        {"type": "start_hit", "values": {}, "_step": "step_begin"},
        {"type": "transition", "values": {"from": "step_begin", "to": "step_compute", "stepSeq": 1},
         "_step": "step_compute"},
        {"type": "cache", "values": {"key": "1:step_compute:cache_computed"},
         "_step": "step_compute"},
        {"type": "computed_hit", "values": {"actionValue": PI}, "_step": "step_compute"},
        {"type": "transition", "values": {"from": "step_compute", "to": "step_end", "stepSeq": 2},
         "_step": "step_end"},
        {"type": "end_hit", "values": {}, "_step": "step_end"},
        # The port records the end (the original wrote nothing).
        {"type": "finished", "values": {}, "_step": "step_end"},
    ]
    assert {entry["_at"] for entry in wf.to_json()["logs"]} == {T0_MS}


def test_step_durable_state():
    wf = fresh(StepState, {"computed": 0})
    run = wf.exec(T0)
    # The port yields a checkpoint at each transition too (the original did not), so the first
    # action's checkpoint is the second one.
    assert next(run) == Checkpoint("transition", "step_compute")
    assert next(run) == Checkpoint("action", "step_compute", "cache_computed_0")
    part_1 = wf.to_json()
    assert part_1["step"] == "step_compute"
    assert part_1["state"] == {"computed": 0, "startHit": True}
    assert part_1["cache"] == {"_seq": 1, "1:step_compute:cache_computed_0": PI}
    assert log_types(wf) == ["start_hit", "transition", "cache"]

    # One checkpoint per new action, and the generator resumes in place.
    assert list(run) == [
        Checkpoint("action", "step_compute", "cache_computed_1"),
        Checkpoint("action", "step_compute", "cache_computed_2"),
        Checkpoint("transition", "step_end"),
    ]
    part_2 = wf.to_json()
    assert part_2["cache"] == {"_seq": 2, "1:step_compute:cache_computed_0": PI,
                               "1:step_compute:cache_computed_1": PI,
                               "1:step_compute:cache_computed_2": PI}
    assert part_2["state"] == {"computed": 9.42477796076938, "startHit": True, "endHit": True}
    # The original's 8 entries (3 of them `cache`), plus the port's `finished`.
    assert log_types(wf) == ["start_hit", "transition", "cache", "cache", "cache",
                             "computed_hit", "transition", "end_hit", "finished"]
    assert wf.status == "finished"


def test_wait_ms_durable_state(monkeypatch):
    monkeypatch.setattr(WaitMsState, "_resume_id", lambda self, key: f"{key}-1")
    wf = fresh(WaitMsState, {})
    assert list(wf.exec(T0)) == [Checkpoint("wait", "step_begin", "wait_for_1sec")]
    assert wf.status == "waiting"
    assert wf.pending() == [{"resumeId": "wait_for_1sec-1", "type": "timer",
                             "key": "wait_for_1sec", "resumeAfter": T0_MS + 1000}]

    # No time passes: the timer is resolved by hand, as in the original.
    wf.resolve("wait_for_1sec-1", {}, now=T0)
    assert wf.run(T0) == "finished"
    snap = wf.to_json()
    assert snap["cache"] == {"_seq": 1}
    assert snap["state"] == {"startHit": True, "endHit": True}
    assert [(e["type"], e["values"]) for e in snap["logs"]] == [
        ("interrupt_begin", {"type": "time", "resumeId": "wait_for_1sec-1"}),
        ("interrupt_end", {"resumeId": "wait_for_1sec-1"}),
        ("log", {"msg": "after 1 sec"}),
        ("transition", {"from": "step_begin", "to": "step_end", "stepSeq": 1}),
        ("finished", {}),   # the port's addition
    ]
    assert snap["system"] == {"0:step_begin:timer:wait_for_1sec": {
        "type": "timer", "isDone": True, "resumeId": "wait_for_1sec-1",
        "resumeAfter": T0_MS + 1000, "responsePayload": {}}}


def test_wait_event_durable_state(monkeypatch):
    monkeypatch.setattr(WaitEventState, "_resume_id", lambda self, key: f"{key}-1")
    wf = fresh(WaitEventState, {})
    assert list(wf.exec(T0)) == [Checkpoint("wait", "step_begin", "event_01")]
    assert wf.pending() == [{"resumeId": "event_01-1", "type": "event", "key": "event_01",
                             "requestPayload": {"question": "hey human. 1 + 1 = ?"},
                             "timeoutAt": None}]

    wf.resolve("event_01-1", 2, now=T0)
    assert wf.run(T0) == "finished"
    snap = wf.to_json()
    assert snap["state"] == {"startHit": True, "eventResponse": 2, "endHit": True}
    assert [(e["type"], e["values"]) for e in snap["logs"]] == [
        ("interrupt_begin", {"type": "event", "resumeId": "event_01-1"}),
        ("interrupt_end", {"resumeId": "event_01-1"}),
        ("log", {"msg": "event_01 resolved with value", "answer": 2}),
        ("transition", {"from": "step_begin", "to": "step_end", "stepSeq": 1}),
        ("finished", {}),   # the port's addition
    ]
    assert snap["system"] == {"0:step_begin:event:event_01": {
        "type": "event", "isDone": True, "resumeId": "event_01-1",
        "requestPayload": {"question": "hey human. 1 + 1 = ?"}, "responsePayload": 2}}


# -- guessGame.test.ts ------------------------------------------------------------------------

class GuessGameState(Workflow):
    """The test variant: the number is given, step_begin goes straight to play, step_end ends."""

    name = "test_guess_game_state"
    first_step = "step_begin"

    @step
    def step_begin(self):
        return "step_play"

    @step
    def step_play(self):
        guess_num = self.state["number"]
        question = "number between 0-100"
        answer = []
        count = 0
        while True:
            last = yield self.wait_event(f"event_ask_{count}", {"question": question})
            count += 1
            answer.append(last)
            if last == guess_num:
                break
            if last < guess_num:
                question = f"{last} lesser than the answer - number between 0-100"
            else:
                question = f"{last} gretter than the answer - number between 0-100"
        self.state["answer"] = answer
        return "step_end"

    @step
    def step_end(self):
        return None


def answer_round(wf, answer) -> dict:
    """The original's ``testHelperResolveEvent``: what was asked, then the answer."""
    asked = only_pending(wf)
    wf.resolve(asked["resumeId"], answer, now=T0)
    return {"resumeId": asked["resumeId"], "question": asked["requestPayload"]["question"]}


GUESS_15_ROUNDS = [
    {"resumeId": "event_ask_0-0", "question": "number between 0-100"},
    {"resumeId": "event_ask_1-1", "question": "5 lesser than the answer - number between 0-100"},
    {"resumeId": "event_ask_2-2", "question": "20 gretter than the answer - number between 0-100"},
    {"resumeId": "event_ask_3-3", "question": "10 lesser than the answer - number between 0-100"},
]


def test_guess_game_one_run(monkeypatch):
    mock_resume_ids(monkeypatch, GuessGameState)
    wf = fresh(GuessGameState, {"number": 15})
    rounds = []
    for answer in [5, 20, 10, 15]:
        assert wf.run(T0) == "waiting"
        rounds.append(answer_round(wf, answer))
    assert wf.run(T0) == "finished"

    assert rounds == GUESS_15_ROUNDS
    snap = wf.to_json()
    assert snap["cache"] == {"_seq": 2}
    assert snap["state"] == {"number": 15, "answer": [5, 20, 10, 15]}
    assert list(snap["system"]) == [f"1:step_play:event:event_ask_{i}" for i in range(4)]
    assert log_types(wf) == (["transition"] + ["interrupt_begin", "interrupt_end"] * 4
                             + ["transition", "finished"])   # `finished`: the port's addition


def test_guess_game_save_load_run(monkeypatch):
    mock_resume_ids(monkeypatch, GuessGameState)
    wf = fresh(GuessGameState, {"number": 95})
    # Round 1 starts the game: its transition is a checkpoint in the port.
    assert [c.kind for c in wf.exec(T0)] == ["transition", "wait"]
    answers = [5, 45, 75, 99]
    for i, answer in enumerate(answers, start=1):
        answer_round(wf, answer)
        wf = reload(wf)
        # Replaying the resolved events yields nothing: one checkpoint, the next new wait.
        # (The original asserted one iteration for rounds 3 to 5; here it holds from round 2.)
        assert list(wf.exec(T0)) == [Checkpoint("wait", "step_play", f"event_ask_{i}")]
    answer_round(wf, 95)
    assert wf.run(T0) == "finished"

    snap = wf.to_json()
    assert [e["resumeId"] for e in snap["system"].values()] == [
        f"event_ask_{i}-{i}" for i in range(5)]
    assert snap["state"] == {"number": 95, "answer": [5, 45, 75, 99, 95]}
    assert snap["cache"] == {"_seq": 2}
    # The same structure as one run: replay wrote no duplicate entries.
    assert log_types(wf) == (["transition"] + ["interrupt_begin", "interrupt_end"] * 5
                             + ["transition", "finished"])


# -- guessGame2.test.ts -----------------------------------------------------------------------

class GuessGame2State(Workflow):
    """The test variant: the number is given, and step_end clears the hint and ends."""

    name = "test_guess_game_2_state"
    first_step = "step_begin"

    @step
    def step_begin(self):
        self.state["hint"] = "number between 0-100"
        return "step_ask"

    @step
    def step_ask(self):
        answer = self.state.get("answer", [])
        value = yield self.wait_event("event_ask", {"question": self.state["hint"]})
        answer.append(value)
        self.state["answer"] = answer
        return "step_check"

    @step
    def step_check(self):
        last = self.state["answer"][-1]
        if not last:
            raise ValueError("OoO last_answer should not null")
        number = self.state["number"]
        if last == number:
            return "step_end"
        sign = "<" if last < number else ">"
        self.state["hint"] = f"value {last} is {sign} than the answer - number between 0-100"
        return "step_ask"

    @step
    def step_end(self):
        self.state["hint"] = ""
        return None


def ask_check_transitions(wf) -> list[tuple]:
    return [(e["values"]["from"], e["values"]["to"], e["values"]["stepSeq"])
            for e in wf.to_json()["logs"] if e["type"] == "transition"]


def test_guess_game_2_revisit_step_one_run(monkeypatch):
    mock_resume_ids(monkeypatch, GuessGame2State)
    wf = fresh(GuessGame2State, {"number": 15})
    rounds = []
    for answer in [5, 20, 10, 15]:
        assert wf.run(T0) == "waiting"
        rounds.append(answer_round(wf, answer))
    assert wf.run(T0) == "finished"

    hint = "value {} is {} than the answer - number between 0-100"
    assert rounds == [
        {"resumeId": "event_ask-0", "question": "number between 0-100"},
        {"resumeId": "event_ask-1", "question": hint.format(5, "<")},
        {"resumeId": "event_ask-2", "question": hint.format(20, ">")},
        {"resumeId": "event_ask-3", "question": hint.format(10, "<")},
    ]
    snap = wf.to_json()
    assert snap["cache"] == {"_seq": 9}
    assert list(snap["system"]) == [f"{n}:step_ask:event:event_ask" for n in (1, 3, 5, 7)]
    assert snap["state"] == {"number": 15, "hint": "", "answer": [5, 20, 10, 15]}
    assert ask_check_transitions(wf) == (
        [("step_begin", "step_ask", 1)]
        + [t for n in (2, 4, 6) for t in (("step_ask", "step_check", n),
                                         ("step_check", "step_ask", n + 1))]
        + [("step_ask", "step_check", 8), ("step_check", "step_end", 9)])


def test_guess_game_2_revisit_step_save_load_run(monkeypatch):
    mock_resume_ids(monkeypatch, GuessGame2State)
    wf = fresh(GuessGame2State, {"number": 95})
    assert [c.kind for c in wf.exec(T0)] == ["transition", "wait"]
    for answer in [5, 45, 75, 99]:
        answer_round(wf, answer)
        wf = reload(wf)
        # The resolved event is not registered again: the only new wait is the next visit's.
        # (Transitions are checkpoints in the port; the original counted one iteration.)
        assert [c.kind for c in wf.exec(T0)] == ["transition", "transition", "wait"]
    answer_round(wf, 95)
    assert wf.run(T0) == "finished"

    snap = wf.to_json()
    assert snap["cache"] == {"_seq": 11}
    assert list(snap["system"]) == [f"{n}:step_ask:event:event_ask" for n in (1, 3, 5, 7, 9)]
    assert [e["resumeId"] for e in snap["system"].values()] == [f"event_ask-{i}" for i in range(5)]
    assert snap["state"] == {"number": 95, "hint": "", "answer": [5, 45, 75, 99, 95]}
    # The original's 21 entries, plus the port's `finished`.
    assert log_types(wf) == (["transition"]
                             + ["interrupt_begin", "interrupt_end", "transition", "transition"] * 5
                             + ["finished"])


# -- astFunctionScan.test.ts ------------------------------------------------------------------

class A(Workflow):
    """Only read, never run: its one step's action keys are found in its source."""

    name = "test_ast_scan"

    def with_no_action(self, key, fn):
        return fn

    @step
    def fun_1(self):
        yield self.action("k1", lambda: 1)
        self.with_no_action("k2", lambda: 2)
        yield self.action("k3", lambda: 3)
        return None


def test_ast_function_scan():
    assert A.__workflow__.keys["fun_1"]["action"] == ["k1", "k3"]


def test_ast_function_scan_reads_every_command_and_template_keys():
    # The original scanner also read waitForMs / waitForEvent keys, template literals raw.
    class Scan(Workflow):
        name = "test_ast_scan_all"

        @step
        def only(self):
            count = 0
            yield self.sleep("nap", 1)
            yield self.sleep_until("alarm", 0)
            yield self.wait_event(f"event_ask_{count}")
            return None

    assert Scan.__workflow__.keys["only"] == {
        "action": [], "sleep": ["nap", "alarm"], "wait_event": ["event_ask_{count}"]}


@pytest.mark.parametrize("cls", [SampleState, StepState, WaitMsState, WaitEventState,
                                 GuessGameState, GuessGame2State])
def test_variants_transitions_are_read_statically(cls):
    transitions = cls.__workflow__.transitions
    assert set(transitions) == set(cls.__workflow__.steps)
    if cls is GuessGame2State:
        assert transitions["step_check"] == ["step_end", "step_ask"]
    assert transitions["step_end"] == []
