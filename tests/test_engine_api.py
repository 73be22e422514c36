"""The engine's API edges, as DESIGN.md decides them: closed workflows, handlers, waits, time,
class definitions, the inbox and the audit log."""
import json
import textwrap
from datetime import datetime, timedelta, timezone

import pytest

from engine_helpers import T0, T0_MS, dumps, log_types, logs_of, only_pending, reload
from webapp.engine import (Checkpoint, EventTimeout, FlowDefinitionError, Retry, Status,
                           Workflow, WorkflowClosed, on_event, step)
from webapp.engine.spec import RESERVED


class Order(Workflow):
    """Waits for payment (with a handler that may refuse), then ships."""

    name = "test_order"
    first_step = "step_pay"

    @on_event("note")
    def on_note(self, payload):
        if payload == "refuse":
            self.state["notes"].append("half-written")
            self.log("noted", text=payload)
            raise ValueError("notes cannot say refuse")
        self.state.setdefault("notes", []).append(payload)
        self.state["noted_at"] = self.now()

    @on_event("divert")
    def on_divert(self, payload):
        self.state["divert"] = payload

    @step
    def step_pay(self):
        self.state.setdefault("notes", [])
        if self.state.get("divert") == "fail":
            raise RuntimeError("diverted into failure")
        if self.state.get("divert") == "end":
            return None
        if self.state.get("divert") == "skip":
            return "step_ship"
        paid = yield self.wait_event("paid", {"amount": 10})
        self.state["paid"] = paid
        return "step_ship"

    @step
    def step_ship(self):
        yield self.sleep("courier", 30)
        return None


def finished_order():
    wf = Order(now=T0)
    wf.run(T0)
    wf.send("paid", 10, now=T0)
    wf.run(T0)
    wf.run(T0 + 30)
    assert wf.status == "finished"
    return wf


def cancelled_order():
    wf = Order(now=T0)
    wf.run(T0)
    wf.cancel("changed my mind", now=T0)
    return wf


def failed_order():
    wf = Order(now=T0)
    wf.run(T0)
    wf.send("divert", "fail", now=T0)
    assert wf.run(T0) == "failed"
    return wf


# -- closed workflows -----------------------------------------------------------------------

@pytest.mark.parametrize("make", [finished_order, cancelled_order])
def test_send_resolve_cancel_on_a_closed_workflow_raise_workflow_closed(make):
    wf = make()
    before = dumps(wf)
    with pytest.raises(WorkflowClosed):
        wf.send("paid", 10, now=T0)
    with pytest.raises(WorkflowClosed):
        wf.resolve("anything", now=T0)
    with pytest.raises(WorkflowClosed):
        wf.cancel(now=T0)
    assert dumps(wf) == before


def test_send_and_resolve_on_a_failed_workflow_raise_but_cancel_works():
    wf = failed_order()
    resume_id = next(iter(wf.to_json()["system"].values()))["resumeId"]
    with pytest.raises(WorkflowClosed):
        wf.send("paid", 10, now=T0)
    with pytest.raises(WorkflowClosed):
        wf.resolve(resume_id, 10, now=T0)
    wf.cancel("given up", now=T0 + 1)
    assert wf.status == "cancelled"
    assert logs_of(wf, "cancelled") == [{"reason": "given up"}]


def waiting_order():
    wf = Order(now=T0)
    wf.run(T0)
    return wf


@pytest.mark.parametrize("make", [lambda: Order(now=T0), waiting_order, finished_order,
                                  cancelled_order])
def test_retry_on_a_workflow_that_has_not_failed_raises_value_error(make):
    wf = make()
    before = dumps(wf)
    with pytest.raises(ValueError):
        wf.retry(now=T0)
    assert dumps(wf) == before


def test_resolve_an_unknown_or_already_resolved_wait_raises_key_error():
    wf = Order(now=T0)
    wf.run(T0)
    resume_id = only_pending(wf)["resumeId"]
    with pytest.raises(KeyError):
        wf.resolve("no-such-wait", now=T0)
    wf.resolve(resume_id, 10, now=T0)
    with pytest.raises(KeyError):
        wf.resolve(resume_id, 11, now=T0)
    assert wf.run(T0) == "waiting" and wf.state["paid"] == 10


# -- handlers ---------------------------------------------------------------------------------

def test_a_handler_that_raises_propagates_and_changes_nothing():
    wf = Order(now=T0)
    wf.run(T0)
    wf.send("note", "first", now=T0)
    wf.run(T0)
    data = json.loads(dumps(wf))
    wf = Order.from_json(data)          # adopted by reference, as a runtime loads it
    before = json.dumps(data)
    with pytest.raises(ValueError, match="notes cannot say refuse"):
        wf.send("note", "refuse", now=T0 + 5)
    assert dumps(wf) == before
    # The adopted document is the workflow's own: it must not keep the refused change either.
    assert json.dumps(data) == before
    assert wf.status == "waiting"


def test_after_a_handler_the_workflow_runs_again_and_self_now_is_the_send_time():
    wf = Order(now=T0)
    wf.run(T0)
    assert wf.send("note", "hello", now=T0 + 7) == "handler"
    assert wf.status == "running"
    assert wf.state["noted_at"] == T0 + 7
    assert wf.run(T0 + 8) == "waiting"
    assert logs_of(wf, "event_received")[-1] == {"name": "note", "handledBy": "handler"}


# -- waits ------------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [finished_order, cancelled_order, failed_order])
def test_pending_is_empty_unless_running_or_waiting(make):
    wf = make()
    assert wf.pending() == []
    assert wf.wake_at() is None


def test_a_failed_visits_waits_stay_as_they_were():
    wf = Order(now=T0)
    wf.run(T0)
    entry = dict(only_pending(wf))
    wf.send("divert", "fail", now=T0)
    wf.run(T0)
    system = wf.to_json()["system"]["0:step_pay:event:paid"]
    assert system["isDone"] is False and "closed" not in system
    assert system["resumeId"] == entry["resumeId"]


@pytest.mark.parametrize("how, why", [
    ("skip", "step moved on"),
    ("end", "finished"),
    ("cancel", "cancelled"),
])
def test_waits_closed_without_an_answer_say_why(how, why):
    wf = Order(now=T0)
    wf.run(T0)
    resume_id = only_pending(wf)["resumeId"]
    if how == "cancel":
        wf.cancel(now=T0)
    else:
        wf.send("divert", how, now=T0)
        wf.run(T0)
    entry = wf.to_json()["system"]["0:step_pay:event:paid"]
    assert entry["isDone"] is True and entry["closed"] == why
    assert {"resumeId": resume_id, "closed": why} in logs_of(wf, "interrupt_end")
    if how == "end":
        assert wf.status == "finished" and wf.pending() == []


def test_pending_describes_timers_and_events():
    wf = Order(now=T0)
    wf.run(T0)
    paid = only_pending(wf)
    assert paid == {"resumeId": paid["resumeId"], "type": "event", "key": "paid",
                    "requestPayload": {"amount": 10}, "timeoutAt": None}
    assert wf.wake_at() is None
    wf.send("paid", 10, now=T0 + 1)
    wf.run(T0 + 1)
    courier = only_pending(wf)
    assert courier == {"resumeId": courier["resumeId"], "type": "timer", "key": "courier",
                       "resumeAfter": T0_MS + 31_000}
    assert wf.wake_at() == T0 + 31
    assert wf.run(T0 + 30.999) == "waiting"
    assert wf.run(T0 + 31) == "finished"


def test_replaying_into_open_waits_yields_no_checkpoint():
    class Slow(Workflow):
        name = "test_slow"

        @on_event("poke")
        def on_poke(self, payload):
            self.state["pokes"] = self.state.get("pokes", 0) + 1

        @step
        def only(self):
            yield self.action("fails", self._fail_once, retry=Retry(initial_interval=5))
            yield self.sleep("nap", 10)
            return None

        def _fail_once(self):
            if not self.state.get("failed"):
                self.state["failed"] = True
                raise RuntimeError("first attempt")
            return "ok"

    wf = Slow(now=T0)
    assert list(wf.exec(T0)) == [Checkpoint("wait", "only", "fails")]   # the new retry timer
    wf.send("poke", now=T0 + 1)
    assert list(wf.exec(T0 + 1)) == []         # the retry timer is open, not new
    assert wf.status == "waiting"
    assert list(wf.exec(T0 + 5)) == [Checkpoint("action", "only", "fails"),
                                     Checkpoint("wait", "only", "nap")]
    wf.send("poke", now=T0 + 6)
    assert list(wf.exec(T0 + 6)) == []         # the timer is open, not new
    assert wf.status == "waiting"


def test_sleep_zero_fires_in_the_same_run():
    class Nap(Workflow):
        name = "test_nap"

        @step
        def only(self):
            yield self.sleep("blink", 0)
            yield self.sleep_until("past", T0 - 100)
            self.state["woke"] = True
            return None

    wf = Nap(now=T0)
    assert wf.run(T0) == "finished"
    assert wf.state == {"woke": True}
    assert log_types(wf) == ["init", "interrupt_begin", "interrupt_end", "interrupt_begin",
                             "interrupt_end", "finished"]


class Quiz(Workflow):
    """One question with a deadline; answers "timeout" when it passes (or fails if told so)."""

    name = "test_quiz"

    @step
    def only(self):
        try:
            answer = yield self.wait_event("answer", {"q": "2+2"}, timeout=5)
        except EventTimeout as exc:
            if self.state.get("strict"):
                raise
            answer = f"timeout:{exc.key}"
        self.state["answer"] = answer
        return None


def test_event_timeout_is_raised_in_the_step_once_now_reaches_the_deadline():
    wf = Quiz(now=T0)
    assert wf.run(T0) == "waiting"
    asked = only_pending(wf)
    assert asked["timeoutAt"] == T0_MS + 5000
    assert wf.wake_at() == T0 + 5
    assert wf.run(T0 + 4.999) == "waiting"
    wf = reload(wf)
    assert wf.run(T0 + 5) == "finished"
    assert wf.state["answer"] == "timeout:answer"
    entry = wf.to_json()["system"]["0:only:event:answer"]
    assert entry["timedOut"] is True and entry["isDone"] is True
    assert entry["timeoutAt"] == T0_MS + 5000
    assert {"resumeId": asked["resumeId"], "timedOut": True} in logs_of(wf, "interrupt_end")


def test_an_event_before_its_deadline_is_delivered():
    wf = Quiz(now=T0)
    wf.run(T0)
    wf.send("answer", 4, now=T0 + 4.999)
    assert wf.run(T0 + 10) == "finished"
    assert wf.state["answer"] == 4
    assert "timedOut" not in wf.to_json()["system"]["0:only:event:answer"]


def test_an_uncaught_event_timeout_fails_the_workflow():
    wf = Quiz(state={"strict": True}, now=T0)
    wf.run(T0)
    assert wf.run(T0 + 6) == "failed"
    assert wf.to_json()["error"]["type"] == "EventTimeout"
    assert wf.to_json()["error"]["key"] is None


# -- time ---------------------------------------------------------------------------------------

def test_now_may_be_an_aware_datetime():
    class Alarm(Workflow):
        name = "test_alarm"

        @step
        def only(self):
            yield self.sleep_until("ring", datetime.fromtimestamp(T0 + 60, timezone.utc))
            self.state["rang_at"] = self.now()
            return None

    start = datetime.fromtimestamp(T0, timezone.utc)
    wf = Alarm(now=start)
    assert wf.to_json()["logs"][0]["_at"] == T0_MS
    assert wf.run(start) == "waiting"
    assert only_pending(wf)["resumeAfter"] == T0_MS + 60_000
    later = (start + timedelta(seconds=60)).astimezone(timezone(timedelta(hours=-5)))
    assert wf.run(later) == "finished"
    assert wf.state["rang_at"] == T0 + 60


def test_a_naive_datetime_is_refused():
    with pytest.raises(ValueError):
        Order(now=T0).run(datetime(2024, 1, 1))


def test_self_now_in_steps_is_the_run_time():
    class Clock(Workflow):
        name = "test_clock"

        @step
        def only(self):
            self.state.setdefault("times", []).append(self.now())
            yield self.wait_event("tick")
            return None

    wf = Clock(now=T0)
    wf.run(T0 + 1)
    wf.send("tick", now=T0 + 2)
    wf.run(T0 + 3)
    assert wf.state["times"] == [T0 + 1, T0 + 3]


# -- class definitions --------------------------------------------------------------------------

@pytest.mark.parametrize("reserved", sorted(RESERVED))
def test_reserved_names_raise_at_class_definition(reserved):
    with pytest.raises(FlowDefinitionError, match=reserved):
        type("Clash", (Workflow,), {reserved: lambda self: None,
                                    "only": step(lambda self: None)})


def test_a_reserved_name_as_an_attribute_raises_too():
    with pytest.raises(FlowDefinitionError):
        class Clash(Workflow):
            state = {}

            @step
            def only(self):
                return None


def test_reserved_names_are_exactly_the_engine_api():
    assert RESERVED == {"run", "exec", "send", "resolve", "cancel", "retry", "pending", "wake_at",
                        "log", "now", "action", "sleep", "sleep_until", "wait_event", "step",
                        "state", "status", "to_json", "from_json"}


def test_a_returned_name_that_is_not_a_step_raises_at_class_definition():
    with pytest.raises(FlowDefinitionError, match="step_nowhere"):
        class Lost(Workflow):
            @step
            def step_begin(self):
                return "step_nowhere"


def test_a_computed_return_without_next_raises_at_class_definition():
    with pytest.raises(FlowDefinitionError, match="next="):
        class Computed(Workflow):
            @step
            def step_begin(self):
                return self.state["where"]

            @step
            def step_end(self):
                return None


def test_step_next_declares_computed_returns():
    class Computed(Workflow):
        @step(next=["step_a", "step_b"])
        def step_begin(self):
            return self.state["where"]

        @step
        def step_a(self):
            return None

        @step
        def step_b(self):
            return "step_a" if self.state.get("x") else None

    spec = Computed.__workflow__
    assert spec.transitions == {"step_begin": ["step_a", "step_b"], "step_a": [],
                                "step_b": ["step_a"]}
    wf = Computed(state={"where": "step_b"}, now=T0)
    assert wf.run(T0) == "finished"
    assert logs_of(wf, "transition") == [{"from": "step_begin", "to": "step_b", "stepSeq": 1}]


def test_step_next_naming_an_unknown_step_raises():
    with pytest.raises(FlowDefinitionError, match="step_x"):
        class Bad(Workflow):
            @step(next=["step_x"])
            def step_begin(self):
                return self.state["where"]


def test_flow_spec_describes_the_class():
    class HTTPOrderFlow(Workflow):
        """Takes an order.

        Then ships it.
        """

        @on_event("add")
        def on_add(self, payload):
            pass

        @step
        def step_take(self):
            return "step_ship"

        @step
        def step_ship(self):
            return None

    spec = HTTPOrderFlow.__workflow__
    assert spec.name == "http_order_flow" == HTTPOrderFlow.name
    assert spec.first_step == "step_take"
    assert spec.steps == ("step_take", "step_ship")
    assert spec.transitions == {"step_take": ["step_ship"], "step_ship": []}
    assert spec.handlers == {"add": "on_add"}
    assert spec.doc == "Takes an order.\n\nThen ships it."


@pytest.mark.parametrize("cls_name, expected", [("MyFlow", "my_flow"), ("Simple", "simple"),
                                                ("UserOnboardingV2", "user_onboarding_v2")])
def test_default_name_is_the_snake_case_class_name(cls_name, expected):
    cls = type(cls_name, (Workflow,), {"only": step(lambda self: None)})
    assert cls.__workflow__.name == expected


def test_without_source_the_next_step_is_checked_at_run_time():
    namespace = {"Workflow": Workflow, "step": step}
    exec(compile(textwrap.dedent("""
        class Typed(Workflow):
            @step
            def step_begin(self):
                return "step_nowhere"
    """), "<repl>", "exec"), namespace)
    cls = namespace["Typed"]
    assert cls.__workflow__.transitions is None
    wf = cls(now=T0)
    assert wf.run(T0) == "failed"
    assert "step_nowhere" in wf.to_json()["error"]["message"]


def test_helper_methods_cannot_collide_with_the_engine():
    # A flow's own private helpers, named like ones an engine might use internally.
    class Helpers(Workflow):
        name = "test_helpers"

        def _timer(self):
            return "my timer"

        def _event(self):
            return "my event"

        def _act(self):
            return "my act"

        def _register(self):
            return "my register"

        def _fail(self):
            return "my fail"

        def _visit(self):
            return "my visit"

        @step
        def only(self):
            yield self.action("a", lambda: 1)
            yield self.sleep("nap", 0)
            yield self.wait_event("go")
            self.state["helpers"] = [self._timer(), self._event(), self._act(),
                                     self._register(), self._fail(), self._visit()]
            return None

    wf = Helpers(now=T0)
    assert wf.run(T0) == "waiting"
    wf.send("go", now=T0)
    assert wf.run(T0) == "finished"
    assert wf.state["helpers"] == ["my timer", "my event", "my act", "my register", "my fail",
                                   "my visit"]


# -- events: waits, handlers, the inbox ---------------------------------------------------------

def test_an_event_without_a_wait_or_handler_waits_in_the_inbox():
    class Later(Workflow):
        name = "test_later"

        @step
        def step_first(self):
            yield self.sleep("nap", 10)
            return "step_second"

        @step
        def step_second(self):
            self.state["got"] = yield self.wait_event("later")
            return None

    wf = Later(now=T0)
    wf.run(T0)
    assert wf.send("later", {"n": 1}, now=T0 + 1) == "inbox"
    assert wf.status == "waiting"
    assert wf.to_json()["inbox"] == [{"name": "later", "payload": {"n": 1}, "_at": T0_MS + 1000}]
    wf = reload(wf)
    assert wf.run(T0 + 10) == "finished"
    assert wf.state["got"] == {"n": 1}
    assert "inbox" not in wf.to_json()
    assert logs_of(wf, "event_received") == [{"name": "later", "handledBy": "inbox"}]


def test_event_received_says_how_each_event_was_handled():
    wf = Order(now=T0)
    wf.run(T0)
    assert wf.send("note", "a", now=T0) == "handler"
    assert wf.send("unknown", 1, now=T0) == "inbox"
    assert wf.send("paid", 10, now=T0) == "wait"
    assert logs_of(wf, "event_received") == [
        {"name": "note", "handledBy": "handler"},
        {"name": "unknown", "handledBy": "inbox"},
        {"name": "paid", "handledBy": "wait"},
    ]


# -- the audit log and the document -----------------------------------------------------------

def test_log_takes_a_value_called_type():
    wf = Order(now=T0)
    wf.log("x", type=1, values=2)
    assert wf.to_json()["logs"][-1] == {"type": "x", "values": {"type": 1, "values": 2},
                                        "_at": T0_MS, "_step": "step_pay"}


def test_a_new_workflow_starts_at_its_first_step_with_an_init_entry():
    wf = Order(state={"a": 1}, now=T0)
    assert (wf.step, wf.state, wf.status) == ("step_pay", {"a": 1}, Status.RUNNING)
    assert wf.to_json() == {"step": "step_pay", "state": {"a": 1}, "cache": {}, "system": {},
                            "logs": [{"type": "init", "values": {"defaultStep": "step_pay"},
                                      "_at": T0_MS, "_step": "step_pay"}],
                            "status": "running"}
    assert isinstance(wf.status, str) and wf.status == "running"


def test_checkpoints_say_what_happened():
    wf = Order(now=T0)
    assert list(wf.exec(T0)) == [Checkpoint("wait", "step_pay", "paid")]
    wf.send("paid", 1, now=T0)
    assert list(wf.exec(T0)) == [Checkpoint("transition", "step_ship"),
                                 Checkpoint("wait", "step_ship", "courier")]


def test_to_json_round_trips_through_json_text_unchanged():
    wf = Order(now=T0)
    wf.run(T0)
    wf.send("unknown", [1, 2], now=T0)
    text = dumps(wf)
    assert dumps(Order.from_json(json.loads(text))) == text


def test_from_json_adopts_the_document_and_may_omit_the_logs():
    wf = Order(now=T0)
    wf.run(T0)
    data = json.loads(dumps(wf))
    data.pop("logs")
    again = Order.from_json(data)
    again.send("paid", 3, now=T0)
    again.run(T0)
    assert data["state"]["paid"] == 3            # the same objects, no copy
    assert log_types(again) == ["event_received", "interrupt_end", "transition",
                                "interrupt_begin"]


@pytest.mark.parametrize("bad", [
    [],
    {"step": "step_nowhere"},
    {"step": "step_pay", "state": []},
    {"step": "step_pay", "status": "sleeping"},
    {"step": "step_pay", "cache": {"_seq": "1"}},
    {"step": "step_pay", "system": {"x": {"type": "timer", "resumeId": "r"}}},
])
def test_from_json_refuses_a_malformed_snapshot_with_a_clear_error(bad):
    with pytest.raises(ValueError):
        Order.from_json(bad)


def test_a_step_that_yields_something_else_fails_with_a_clear_error():
    class Confused(Workflow):
        name = "test_confused"

        @step
        def only(self):
            yield 42
            return None

    wf = Confused(now=T0)
    assert wf.run(T0) == "failed"
    error = wf.to_json()["error"]
    assert error["type"] == "TypeError" and "self.action" in error["message"]


def test_before_action_checkpoints_come_just_before_each_action_runs():
    ran = []

    class TwoActions(Workflow):
        @step
        def only(self):
            yield self.action("a", lambda: ran.append("a") or 1)
            yield self.action("b", lambda: ran.append("b") or 2)
            return None

    wf = TwoActions(now=0)
    seen = []
    for checkpoint in wf.exec(0, before_actions=True):
        seen.append((checkpoint.kind, checkpoint.key, list(ran)))
    assert seen == [("before_action", "a", []), ("action", "a", ["a"]),
                    ("before_action", "b", ["a"]), ("action", "b", ["a", "b"])]
    assert [c.kind for c in TwoActions(now=0).exec(0)] == ["action", "action"]
