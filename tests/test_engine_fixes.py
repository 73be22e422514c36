"""The original's bugs that the port fixes (DESIGN.md "Unlike the original"; reference
§1.3-1.5, §7).

Each test states the user-visible fix: falsy results cached, a move to the same step as a new
visit, pending waits registered once, a recorded end, real retries with backoff, unique
resumeIds, and action results that always read back as their JSON.
"""
import re

import pytest

from engine_helpers import T0, T0_MS, log_types, logs_of, only_pending, reload, resume_ids
from webapp.engine import Retry, Workflow, on_event, step


# -- falsy results are cached (the original re-ran the action on every replay: §1.4) ------------

class FalsyResult(Workflow):
    """An action whose result is set per test, then a wait that forces a replay."""

    name = "test_falsy_result"
    calls: list = []
    result = None

    @step
    def only(self):
        value = yield self.action("compute", self._compute)
        yield self.wait_event("go")
        self.state["value"] = value
        return None

    def _compute(self):
        self.calls.append(1)
        return self.result


@pytest.mark.parametrize("falsy", [0, "", False, None, [], {}, 0.0])
def test_falsy_result_is_cached_and_never_recomputed(monkeypatch, falsy):
    monkeypatch.setattr(FalsyResult, "calls", [])
    monkeypatch.setattr(FalsyResult, "result", falsy)
    wf = FalsyResult(now=T0)
    assert wf.run(T0) == "waiting"
    for _ in range(3):          # replays, in-process and after reloads
        wf = reload(wf)
        assert wf.run(T0) == "waiting"
    wf.send("go", now=T0)
    assert wf.run(T0) == "finished"

    assert FalsyResult.calls == [1]
    assert wf.to_json()["cache"]["0:only:compute"] == falsy
    assert type(wf.state["value"]) is type(falsy) and wf.state["value"] == falsy
    assert log_types(wf).count("cache") == 1


# -- a move to the same step is a new visit (the original reused the keys: §1.3) ----------------

class SelfLoop(Workflow):
    """Visits ``loop`` three times by returning its own name."""

    name = "test_self_loop"

    @step
    def loop(self):
        n = self.state.get("n", 0)
        value = yield self.action("draw", lambda: f"draw-{n}")
        answer = yield self.wait_event("answer", {"round": n})
        self.state.setdefault("seen", {})[str(n)] = [value, answer]
        self.state["n"] = n + 1
        return "loop" if n < 2 else None


def test_move_to_the_same_step_is_a_new_visit_with_fresh_keys():
    wf = SelfLoop(now=T0)
    for n in range(3):
        assert wf.run(T0) == "waiting"
        assert only_pending(wf)["requestPayload"] == {"round": n}
        wf.send("answer", n * 10, now=T0)
    assert wf.run(T0) == "finished"

    snap = wf.to_json()
    assert snap["state"]["seen"] == {"0": ["draw-0", 0], "1": ["draw-1", 10], "2": ["draw-2", 20]}
    assert snap["cache"] == {"_seq": 2, "0:loop:draw": "draw-0", "1:loop:draw": "draw-1",
                             "2:loop:draw": "draw-2"}
    assert list(snap["system"]) == [f"{n}:loop:event:answer" for n in range(3)]
    assert len(set(resume_ids(wf))) == 3
    assert logs_of(wf, "transition") == [{"from": "loop", "to": "loop", "stepSeq": 1},
                                         {"from": "loop", "to": "loop", "stepSeq": 2}]


# -- a pending wait is registered once (the original re-registered it on replay: §1.5, §7.7) ----

class Patient(Workflow):
    """A timer then an event, with a handler that makes the step replay."""

    name = "test_patient"

    @on_event("poke")
    def on_poke(self, payload):
        self.state["pokes"] = self.state.get("pokes", 0) + 1

    @step
    def only(self):
        yield self.sleep("nap", 60)
        answer = yield self.wait_event("answer", {"q": "?"}, timeout=600)
        self.state["answer"] = answer
        return None


@pytest.mark.parametrize("reload_between", [False, True])
def test_pending_wait_is_registered_once_across_many_replays(reload_between):
    wf = Patient(now=T0)
    assert wf.run(T0) == "waiting"
    first = only_pending(wf)
    for i in range(1, 6):   # five replays before the timer is due, each later than the last
        wf.send("poke", now=T0 + i)
        assert wf.run(T0 + i) == "waiting"
        wf = reload(wf) if reload_between else wf
        assert only_pending(wf) == first
    assert first["resumeAfter"] == T0_MS + 60_000
    assert wf.state["pokes"] == 5

    assert wf.run(T0 + 60) == "waiting"
    asked = only_pending(wf)
    assert asked["timeoutAt"] == T0_MS + 660_000
    for i in range(1, 4):
        wf.send("poke", now=T0 + 60 + i)
        assert wf.run(T0 + 60 + i) == "waiting"
        wf = reload(wf) if reload_between else wf
        assert only_pending(wf) == asked

    wf.send("answer", "yes", now=T0 + 100)
    assert wf.run(T0 + 100) == "finished"
    assert [v["resumeId"] for v in logs_of(wf, "interrupt_begin")] == [
        first["resumeId"], asked["resumeId"]]
    assert wf.to_json()["system"]["0:only:timer:nap"]["resumeAfter"] == T0_MS + 60_000


# -- the end is recorded, and a finished workflow stays finished (§1.3, §7.3) --------------------

class Ends(Workflow):
    """Counts how often its last step runs."""

    name = "test_ends"
    runs: list = []

    @step
    def step_begin(self):
        return "step_end"

    @step
    def step_end(self):
        self.runs.append("step_end")
        return None


def test_finished_is_recorded_and_running_it_again_does_nothing(monkeypatch):
    monkeypatch.setattr(Ends, "runs", [])
    wf = Ends(now=T0)
    assert wf.run(T0) == "finished"
    assert reload(wf).to_json()["status"] == "finished"
    assert log_types(wf)[-1] == "finished"
    before = list(wf.to_json()["logs"])

    assert list(wf.exec(T0 + 1)) == []
    assert wf.run(T0 + 2) == "finished"
    again = reload(wf)
    assert again.status == "finished"
    assert again.run(T0 + 3) == "finished"

    assert Ends.runs == ["step_end"]
    assert wf.to_json()["logs"] == before and again.to_json()["logs"] == before
    assert wf.pending() == [] and wf.wake_at() is None


# -- retries really re-run the action, with backoff (the original half-did it: §1.4, §7.6) ------

class Flaky(Workflow):
    """One action that fails ``fail_times`` times (class attributes set per test)."""

    name = "test_flaky"
    calls: list = []
    fail_times = 0
    error = RuntimeError
    policy = None

    @step
    def only(self):
        value = yield self.action("charge", self._charge, retry=self.policy)
        self.state["value"] = value
        return None

    def _charge(self):
        self.calls.append(len(self.calls) + 1)
        if len(self.calls) <= self.fail_times:
            raise self.error(f"attempt {len(self.calls)} failed")
        return "charged"


@pytest.fixture
def flaky(monkeypatch):
    """Configure ``Flaky``: ``flaky(fail_times, error=..., policy=...)``."""
    monkeypatch.setattr(Flaky, "calls", [])

    def configure(fail_times, error=RuntimeError, policy=None):
        monkeypatch.setattr(Flaky, "fail_times", fail_times)
        monkeypatch.setattr(Flaky, "error", error)
        monkeypatch.setattr(Flaky, "policy", policy)
        return Flaky
    return configure


def test_retry_reruns_the_action_with_exponential_backoff(flaky):
    flaky(2)   # the default policy: 3 attempts, 1 s then 2 s
    wf = Flaky(now=T0)
    assert wf.run(T0) == "waiting"
    assert Flaky.calls == [1]
    timer = only_pending(wf)
    assert timer["type"] == "timer" and timer["retry"] is True and timer["key"] == "charge"
    assert timer["resumeAfter"] == T0_MS + 1000
    assert wf.wake_at() == T0 + 1

    assert wf.run(T0 + 0.999) == "waiting"      # not due yet: nothing runs
    assert Flaky.calls == [1]
    wf = reload(wf)
    assert wf.run(T0 + 1) == "waiting"          # attempt 2, from the failing run's now
    assert Flaky.calls == [1, 2]
    assert only_pending(wf)["resumeAfter"] == T0_MS + 1000 + 2000
    assert wf.run(T0 + 3) == "finished"         # attempt 3 succeeds
    assert Flaky.calls == [1, 2, 3]
    assert wf.state == {"value": "charged"}

    assert logs_of(wf, "action_error") == [
        {"key": "charge", "attempt": 1, "maximumAttempts": 3, "errorType": "RuntimeError",
         "errorMessage": "attempt 1 failed", "nextAttemptAt": T0_MS + 1000},
        {"key": "charge", "attempt": 2, "maximumAttempts": 3, "errorType": "RuntimeError",
         "errorMessage": "attempt 2 failed", "nextAttemptAt": T0_MS + 3000},
    ]
    assert wf.to_json()["cache"]["0:only:charge"] == "charged"


def test_retry_backoff_is_capped_by_maximum_interval(flaky):
    flaky(10, policy=Retry(maximum_attempts=5, initial_interval=2, backoff_coefficient=3,
                           maximum_interval=10))
    wf = Flaky(now=T0)
    now = T0
    wf.run(now)
    while wf.status == "waiting":
        now = only_pending(wf)["resumeAfter"] / 1000
        wf.run(now)
    errors = [e for e in wf.to_json()["logs"] if e["type"] == "action_error"]
    assert [e["values"]["nextAttemptAt"] - e["_at"] for e in errors[:-1]] == [
        2000, 6000, 10_000, 10_000]
    assert errors[-1]["values"]["nextAttemptAt"] is None
    assert wf.status == "failed"
    assert len(Flaky.calls) == 5


def test_failed_after_the_last_attempt_with_the_error_recorded(flaky):
    flaky(99)
    wf = Flaky(now=T0)
    wf.run(T0)
    wf.run(T0 + 1)
    assert wf.run(T0 + 3) == "failed"
    assert Flaky.calls == [1, 2, 3]
    error = {"type": "RuntimeError", "message": "attempt 3 failed", "step": "only",
             "key": "charge"}
    assert wf.to_json()["error"] == error
    assert reload(wf).to_json()["error"] == error
    assert logs_of(wf, "failed") == [error]
    assert [e["nextAttemptAt"] for e in logs_of(wf, "action_error")] == [
        T0_MS + 1000, T0_MS + 3000, None]
    assert wf.pending() == [] and wf.wake_at() is None
    assert wf.run(T0 + 100) == "failed" and Flaky.calls == [1, 2, 3]


class Unicodeish(ValueError):
    """A subclass, to show that ``non_retryable`` matches subclasses."""


@pytest.mark.parametrize("non_retryable, error", [
    ((ValueError,), ValueError),
    (("ValueError",), ValueError),
    ((ValueError,), Unicodeish),
    (("ValueError",), Unicodeish),
    ((KeyError, "LookupError"), IndexError),
])
def test_non_retryable_errors_fail_at_once(flaky, non_retryable, error):
    flaky(99, error=error, policy=Retry(non_retryable=non_retryable))
    wf = Flaky(now=T0)
    assert wf.run(T0) == "failed"
    assert Flaky.calls == [1]
    assert wf.to_json()["error"]["type"] == error.__name__
    assert wf.to_json()["error"]["key"] == "charge"
    assert logs_of(wf, "action_error")[0]["nextAttemptAt"] is None


def test_other_errors_are_still_retried(flaky):
    flaky(99, error=RuntimeError, policy=Retry(non_retryable=(ValueError, "KeyError")))
    wf = Flaky(now=T0)
    assert wf.run(T0) == "waiting"
    assert only_pending(wf)["retry"] is True


def test_one_attempt_means_no_retry(flaky):
    flaky(1, policy=Retry(maximum_attempts=1))
    wf = Flaky(now=T0)
    assert wf.run(T0) == "failed"
    assert Flaky.calls == [1]


def test_retry_gives_fresh_attempts_and_never_reuses_timer_keys_or_resume_ids(flaky):
    flaky(5)   # 3 attempts fail, retry(), 2 more fail, the 6th call succeeds
    wf = Flaky(now=T0)
    wf.run(T0)
    wf.run(T0 + 1)
    assert wf.run(T0 + 3) == "failed"
    keys_before = set(wf.to_json()["system"])
    ids_before = set(resume_ids(wf))

    wf = reload(wf)
    wf.retry(now=T0 + 10)
    assert wf.status == "running"
    assert "error" not in wf.to_json()
    assert log_types(wf)[-1] == "retried"
    assert wf.run(T0 + 10) == "waiting"          # attempt 1 of the new set ran at once
    assert Flaky.calls == [1, 2, 3, 4]
    assert logs_of(wf, "action_error")[-1]["attempt"] == 1
    assert only_pending(wf)["resumeAfter"] == T0_MS + 11_000
    wf.run(T0 + 11)
    assert wf.run(T0 + 13) == "finished"
    assert Flaky.calls == [1, 2, 3, 4, 5, 6]

    system = wf.to_json()["system"]
    new_keys = set(system) - keys_before
    assert new_keys and not new_keys & keys_before
    ids = resume_ids(wf)
    assert len(ids) == len(set(ids)) and ids_before < set(ids)
    # Retry timers cannot clash with a user's own timer key.
    assert all(":timer:" not in key for key in system)


def test_retry_of_a_step_code_failure_replays_the_step():
    class Fragile(Workflow):
        name = "test_fragile"

        @step
        def only(self):
            if not self.state.get("fixed"):
                raise RuntimeError("not fixed")
            return None

    wf = Fragile(now=T0)
    assert wf.run(T0) == "failed"
    assert wf.to_json()["error"] == {"type": "RuntimeError", "message": "not fixed",
                                     "step": "only", "key": None}
    wf.state["fixed"] = True
    wf.retry(now=T0)
    assert wf.run(T0) == "finished"


# -- resumeIds are unique within a workflow (the original could collide: §1.5, §7.9) ------------

def test_resume_ids_are_unique_even_at_the_same_millisecond():
    wf = SelfLoop(now=T0)   # three waits with the same key, all at the same now
    for n in range(3):
        wf.run(T0)
        wf = reload(wf)
        wf.send("answer", n, now=T0)
    wf.run(T0)
    ids = resume_ids(wf)
    assert len(ids) == 3 and len(set(ids)) == 3
    # The original's format: <key>-<milliseconds in base 32>.
    assert all(re.fullmatch(r"answer-[0-9a-v]+", i) for i in ids)
    assert ids[0] == "answer-" + to_base32(T0_MS)


def to_base32(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuv"
    out = ""
    while True:
        n, r = divmod(n, 32)
        out = digits[r] + out
        if not n:
            return out


# -- action results always read back as their JSON --------------------------------------------

class Result(Workflow):
    """Stores what an action gave back, before and after a replay."""

    name = "test_result"
    result = None
    calls: list = []

    @step
    def only(self):
        value = yield self.action("make", self._make)
        self.state.setdefault("seen", []).append([type(value).__name__, value])
        yield self.wait_event("go")
        return None

    def _make(self):
        self.calls.append(1)
        return self.result


@pytest.mark.parametrize("bad", [object(), {1, 2}, float("nan"), b"bytes", {"a": object()}])
def test_a_non_json_result_fails_the_workflow_naming_the_key(monkeypatch, bad):
    monkeypatch.setattr(Result, "calls", [])
    monkeypatch.setattr(Result, "result", bad)
    wf = Result(now=T0)
    assert wf.run(T0) == "failed"     # non-retryable: no retry timer, one call
    assert Result.calls == [1]
    error = wf.to_json()["error"]
    assert error["key"] == "make" and "'make'" in error["message"]
    assert error["step"] == "only"
    assert "0:only:make" not in wf.to_json()["cache"]


def test_a_tuple_result_reads_back_as_a_list_in_process_and_after_reload(monkeypatch):
    monkeypatch.setattr(Result, "calls", [])
    monkeypatch.setattr(Result, "result", (1, ("a", 2)))
    wf = Result(now=T0)
    assert wf.run(T0) == "waiting"
    wf = reload(wf)
    wf.send("go", now=T0)
    assert wf.run(T0) == "finished"
    assert wf.state["seen"] == [["list", [1, ["a", 2]]], ["list", [1, ["a", 2]]]]
    assert Result.calls == [1]


def test_firing_a_retry_timer_early_runs_the_next_attempt_at_once(flaky):
    # The dashboard's "fire timer" resolves a wait by its resumeId, retry timers included.
    flaky(1)
    wf = Flaky(now=T0)
    wf.run(T0)
    wf.resolve(only_pending(wf)["resumeId"], now=T0 + 0.1)
    assert wf.run(T0 + 0.1) == "finished"
    assert Flaky.calls == [1, 2]
