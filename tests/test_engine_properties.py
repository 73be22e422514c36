"""Durability, as properties: stopping at any checkpoints changes nothing.

A workflow driven by a generated schedule of events, handler calls, cancels, retries and clock
advances is run twice: once without stopping, and once saved and loaded (through JSON text, now
and then without its audit log, as a runtime that stores log rows apart) at a generated subset of
its ``exec()`` checkpoints and between runs. Both must end in the same document, audit log
included, and no action may run twice.
"""
import json

from hypothesis import HealthCheck, given, settings, strategies as st

from engine_helpers import T0
from flows.interval_payment import IntervalPayment
from webapp.engine import EventTimeout, Retry, Workflow, WorkflowClosed, on_event, step

# Every action call of the current run, in order: names are unique per step visit, so a name
# seen twice is an action that ran twice.
EFFECTS: list[str] = []


def record(name, *args):
    EFFECTS.append(name)
    return [name, *args]


def flaky(name, failures):
    """Fails on its first ``failures`` calls."""
    attempt = sum(1 for e in EFFECTS if e.startswith(name + "#")) + 1
    EFFECTS.append(f"{name}#{attempt}")
    if attempt <= failures:
        raise RuntimeError(f"{name} attempt {attempt} failed")
    return attempt


class Chores(Workflow):
    """Several actions, flaky ones (one retried with backoff, one that takes a retry()), timers
    (one of 0 s), an event with a deadline, and a loop that revisits one step both directly and
    through another step."""

    name = "prop_chores"
    first_step = "step_begin"

    @on_event("bump")
    def on_bump(self, payload):
        self.state["bumps"] = self.state.get("bumps", 0) + 1

    @step
    def step_begin(self):
        first = yield self.action("first", record, "first")
        second = yield self.action("second", record, "second", first)
        yield self.sleep("blink", 0)
        self.state["begin"] = [first, second]
        return "step_nap"

    @step
    def step_nap(self):
        yield self.sleep("nap", 1)
        attempts = yield self.action("flaky", flaky, "flaky", 2,
                                     retry=Retry(maximum_attempts=3, initial_interval=1))
        self.state["flaky"] = attempts
        return "step_round"

    @step
    def step_round(self):
        n = self.state.get("round", 0)
        tick = yield self.action("tick", record, f"tick{n}")
        try:
            answer = yield self.wait_event("go", {"round": n}, timeout=30)
        except EventTimeout:
            answer = "late"
        self.state.setdefault("answers", []).append([tick, answer])
        self.state["round"] = n + 1
        if n + 1 >= 4:
            return "step_end"
        return "step_rest" if n % 2 else "step_round"

    @step
    def step_rest(self):
        n = self.state["round"]
        yield self.sleep("rest", 2)
        yield self.action("stretch", record, f"stretch{n}", self.state.get("bumps", 0))
        return "step_round"

    @step
    def step_end(self):
        if self.state.get("bumps", 0) % 2:
            yield self.action("odd", record, "odd")
        yield self.sleep_until("closing", self.now() + 1)
        self.state["done"] = yield self.action("last", flaky, "last", 1,
                                               retry=Retry(maximum_attempts=1))
        return None


class CountedPayment(IntervalPayment):
    """interval_payment, counting its bills."""

    name = "prop_counted_payment"

    def _send_bill(self, receipt: dict) -> str:
        EFFECTS.append(f"bill{receipt['cycle']}")
        return super()._send_bill(receipt)


def weighted(*choices):
    """Pick among ``(weight, strategy)`` pairs: ops that move the flow on come often, a cancel
    rarely, so that schedules reach the deep steps."""
    return st.sampled_from([s for weight, s in choices for _ in range(weight)]).flatmap(
        lambda strategy: strategy)


CHORE_OPS = weighted(
    (8, st.tuples(st.just("advance"), st.sampled_from([0.5, 1, 2, 5, 31]))),
    (3, st.tuples(st.just("send"), st.just("go"), st.integers(0, 9))),
    (2, st.tuples(st.just("send"), st.sampled_from(["bump", "stray"]), st.none())),
    (3, st.tuples(st.just("retry"))),
)

PAYMENT_OPS = weighted(
    (12, st.tuples(st.just("advance"), st.sampled_from([1, 4, 10]))),
    (8, st.tuples(st.just("send"), st.just("add_usage"),
                  st.fixed_dictionaries({"item": st.sampled_from(["a", "b"]),
                                         "amount": st.integers(0, 5)}))),
)

# Where a cancel goes in the schedule, if anywhere (drawn apart: in the list it ends too much).
CANCEL_AT = st.none() | st.integers(0, 40)


def with_cancel(ops, at, op):
    return ops if at is None else ops[:at] + [op] + ops[at:]


def apply(wf, op, now) -> str:
    """Do one scheduled operation; its outcome (how it was handled, or the error's name)."""
    try:
        if op[0] == "send":
            return wf.send(op[1], op[2], now=now)
        if op[0] == "cancel":
            wf.cancel("scheduled", now=now)
        elif op[0] == "retry":
            wf.retry(now=now)
        return op[0]
    except (WorkflowClosed, ValueError) as exc:
        return type(exc).__name__


class Stored:
    """A workflow that is saved and loaded whenever hypothesis says so."""

    def __init__(self, wf, data):
        self.wf, self.data = wf, data
        self.old_logs: list = []     # entries already stored apart, when the log was dropped

    def reload(self):
        snapshot = json.loads(json.dumps(self.wf.to_json()))
        if self.data.draw(st.booleans(), label="drop logs"):
            self.old_logs += snapshot["logs"]
            snapshot["logs"] = []
        self.wf = type(self.wf).from_json(snapshot)

    def run(self, now):
        while True:
            run = self.wf.exec(now)
            for _ in run:
                if self.data.draw(st.booleans(), label="stop at checkpoint"):
                    self.reload()     # the abandoned generator is closed only after the save
                    run.close()
                    break
            else:
                return

    def document(self) -> str:
        doc = dict(self.wf.to_json())
        doc["logs"] = self.old_logs + doc["logs"]
        return json.dumps(doc)


def both_ways(cls, state, ops, data):
    """Run ``ops`` straight through, then with saves and loads; return both (document,
    outcomes, effects)."""
    results = []
    for stopping in (False, True):
        EFFECTS.clear()
        now = T0
        wf = cls(state=json.loads(json.dumps(state)), now=now)
        stored = Stored(wf, data) if stopping else None
        outcomes = []
        wf.run(now) if not stopping else stored.run(now)
        for op in ops:
            if op[0] == "advance":
                now += op[1]
            target = stored.wf if stopping else wf
            outcomes.append(apply(target, op, now))
            if stopping:
                stored.run(now)
                if data.draw(st.booleans(), label="reload between runs"):
                    stored.reload()
            else:
                wf.run(now)
        document = stored.document() if stopping else json.dumps(wf.to_json())
        results.append((document, outcomes, list(EFFECTS)))
    return results


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(CHORE_OPS, min_size=12, max_size=40), cancel_at=CANCEL_AT, data=st.data())
def test_stopping_at_any_checkpoint_changes_nothing(ops, cancel_at, data):
    ops = with_cancel(ops, cancel_at, ("cancel",))
    (straight, outcomes, effects), (stopped, outcomes_2, effects_2) = both_ways(
        Chores, {}, ops, data)
    assert stopped == straight
    assert outcomes_2 == outcomes
    assert effects_2 == effects
    assert len(effects) == len(set(effects)), "an action ran twice"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(PAYMENT_OPS, min_size=8, max_size=40), cancel_at=CANCEL_AT,
       data=st.data())
def test_interval_payment_stopping_at_any_checkpoint_changes_nothing(ops, cancel_at, data):
    ops = with_cancel(ops, cancel_at, ("send", "cancel", None))
    state = {"userEmail": "info@company.com", "paymentIntervalMs": 10_000}
    (straight, outcomes, effects), (stopped, outcomes_2, effects_2) = both_ways(
        CountedPayment, state, ops, data)
    assert stopped == straight
    assert outcomes_2 == outcomes
    assert effects_2 == effects
    assert len(effects) == len(set(effects)), "a bill was sent twice"
    receipts = json.loads(straight)["state"].get("receipts", [])
    assert len(effects) >= len(receipts) - 1   # every receipt but one just made is billed


def test_the_chores_flow_reaches_every_step():
    """The property's flow is worth testing: a schedule that visits every step exists."""
    ops = [("advance", 1), ("advance", 1), ("advance", 2), ("send", "go", 1),
           ("send", "bump", None), ("send", "go", 2), ("advance", 2), ("send", "go", 3),
           ("advance", 31), ("advance", 2), ("retry",), ("advance", 1)]

    class AllStops:
        def draw(self, strategy, label=None):
            return True          # stop at every checkpoint, drop the log at every reload

    (straight, _, effects), (stopped, _, _) = both_ways(Chores, {}, ops, AllStops())
    assert stopped == straight
    doc = json.loads(straight)
    assert doc["status"] == "finished"
    visited = {e["_step"] for e in doc["logs"]}
    assert visited == set(Chores.__workflow__.steps)
    assert doc["state"]["answers"][-1][1] == "late"
    assert effects == ["first", "second", "flaky#1", "flaky#2", "flaky#3", "tick0", "tick1",
                       "stretch2", "tick2", "tick3", "odd", "last#1", "last#2"]
    assert "retried" in [e["type"] for e in doc["logs"]]
