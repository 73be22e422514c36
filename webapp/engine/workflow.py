"""The ``Workflow`` base class: runs steps, caches actions, keeps waits, writes the audit log.

Over 400 lines because replay is one mechanism: the step runner, the action cache, the waits,
retries and the clock all read and write the same snapshot, and splitting them would spread
one invariant (a replay yields what the first run did) over several modules.
"""
from __future__ import annotations

import copy
import inspect
import math
import json
import time
from datetime import datetime
from enum import StrEnum
from typing import Iterator

from .commands import (DEFAULT_RETRY, Action, Checkpoint, EventTimeout, NonJSONResult, Retry,
                       Sleep, WaitEvent, WorkflowClosed)
from .spec import FlowSpec, build_spec


class Status(StrEnum):
    RUNNING = "running"
    WAITING = "waiting"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE = (Status.RUNNING, Status.WAITING)
_PLAIN = (str, int, float, bool, type(None))
_B32 = "0123456789abcdefghijklmnopqrstuv"
# Cache keys of the workflow's own clock (no step name, so they never clash with action keys):
# how far its clock runs ahead of the caller's after "advance", and the target of an advance
# under way (kept so a run interrupted half-way goes on to the same target).
CLOCK_OFFSET = "_clockOffsetMs"
ADVANCE_TO = "_advanceToMs"


def to_seconds(now) -> float:
    """Epoch seconds from ``None`` (the real clock), a number, or an aware ``datetime``."""
    if now is None:
        return time.time()
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise ValueError("a datetime given as now must be timezone-aware")
        return now.timestamp()
    if isinstance(now, bool) or not isinstance(now, (int, float)):
        raise TypeError(f"now must be epoch seconds or an aware datetime, not {now!r}")
    return float(now)


# The latest time a timer or deadline may be due: the end of year 9999, the last moment a
# datetime (so every page and answer that shows it) can hold.
MAX_TIME_MS = 253_402_300_799_999


def _ms_offset(seconds: float, what: str) -> int:
    try:
        return int(round(seconds * 1000))
    except (OverflowError, ValueError):   # inf, nan
        raise ValueError(f"{what} is set {seconds!r} seconds from now: not a time") from None


def _check_time(at_ms: int, what: str) -> int:
    """``at_ms`` if a calendar can hold it; else ValueError (thrown into the step)."""
    if not isinstance(at_ms, int) or not 0 <= at_ms <= MAX_TIME_MS:
        raise ValueError(f"{what} would be due at {at_ms} ms, outside the years 1970 to "
                         "9999 that a time can be stored and shown in")
    return at_ms


def _base32(n: int) -> str:
    digits = ""
    while True:
        n, r = divmod(n, 32)
        digits = _B32[r] + digits
        if not n:
            return digits


def _through_json(key: str, value):
    """The value as it will read back from the snapshot (a tuple becomes a list)."""
    if type(value) in _PLAIN and value == value and value not in (float("inf"), float("-inf")):
        return value
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise NonJSONResult(
            f"the result of action {key!r} cannot be stored as JSON: {exc}") from None


class _Pause(Exception):
    """Internal: the step reached a wait that is still open."""


class _Engine:
    """Everything the engine keeps per instance, under one attribute so flows cannot clash."""

    __slots__ = ("step", "state", "cache", "system", "logs", "status", "inbox", "error", "now",
                 "open")

    def __init__(self, step, state, cache, system, logs, status, inbox, error):
        self.step = step
        self.state = state
        self.cache = cache
        self.system = system
        self.logs = logs
        self.status = status
        self.inbox = inbox
        self.error = error
        self.now = time.time()
        # Keys of the waits still open: kept so pending(), wake_at() and transitions never scan
        # a long history.
        self.open = {k for k, v in system.items() if isinstance(v, dict) and not v.get("isDone")}

    @property
    def now_ms(self) -> int:
        return int(round(self.now * 1000))


class Workflow:
    """Base class of workflows: subclass it and mark methods with ``@step``.

    Class attributes: ``name`` (registry name, default the snake_case class name),
    ``first_step`` (default the first step defined) and ``search_attributes`` (dotted paths
    into the state whose values the runtime indexes for search).
    """

    __workflow__: FlowSpec
    _tw: _Engine
    # The engine's own methods are name-mangled (``__x``), so a flow's helpers cannot override
    # them; ``_resume_id`` alone is meant to be overridden (tests make resumeIds predictable).

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.__workflow__ = build_spec(cls)
        cls.name = cls.__workflow__.name
        cls.first_step = cls.__workflow__.first_step
        # A flow's version: its own ``version`` attribute, else a hash of its definition
        # (DESIGN.md "Versions"); ``compatible_versions``: the older ones it runs as they are.
        declared = vars(cls).get("version")
        cls.version = str(declared) if declared is not None else cls.__workflow__.version
        cls.compatible_versions = tuple(str(v) for v in vars(cls).get("compatible_versions", ()))
        cls.search_attributes = cls.__workflow__.search_attributes

    def __init__(self, state: dict | None = None, now=None):
        if state is not None and not isinstance(state, dict):
            raise TypeError("a workflow's state must be a dict")
        first = self.__workflow__.first_step
        self._tw = _Engine(first, state if state is not None else {}, {}, {}, [],
                           Status.RUNNING, [], None)
        self._tw.now = to_seconds(now)
        self.log("init", defaultStep=first)

    @classmethod
    def _forked(cls, step: str, state: dict, seq: int, now=None, /, **values):
        """(The runtime's fork; underscored so no flow's own names can clash.) A new, running
        workflow that begins at visit ``seq`` of ``step`` with ``state`` and nothing cached
        (so its actions run again); its log begins with ``forked`` carrying ``values``."""
        if step not in cls.__workflow__.steps:
            raise ValueError(f"{cls.__name__} has no step {step!r}")
        if not isinstance(state, dict):
            raise TypeError("a workflow's state must be a dict")
        wf = cls.__new__(cls)
        wf._tw = _Engine(step, state, {"_seq": seq} if seq else {}, {}, [], Status.RUNNING,
                         [], None)
        wf._tw.now = to_seconds(now)
        wf.log("forked", **values)
        return wf

    # -- the state, read by anyone ------------------------------------------------------------

    @property
    def step(self) -> str:
        return self._tw.step

    @property
    def state(self) -> dict:
        return self._tw.state

    @state.setter
    def state(self, value: dict):
        if not isinstance(value, dict):
            raise TypeError("a workflow's state must be a dict")
        self._tw.state = value

    @property
    def status(self) -> Status:
        return self._tw.status

    def now(self) -> float:
        """The workflow's clock in epoch seconds: the ``now`` of the current run or event
        (plus what ``advance`` added to this workflow's clock)."""
        return self._tw.now

    def _clock_offset(self) -> float:
        """Seconds this workflow's clock runs ahead of the caller's (0 until ``advance``)."""
        return self._tw.cache.get(CLOCK_OFFSET, 0) / 1000

    def __set_now(self, now) -> float:
        """Set the workflow's clock from the caller's ``now``; returns the caller's seconds."""
        base = to_seconds(now)
        self._tw.now = base + self._clock_offset()
        return base

    def log(self, type: str, /, **values) -> None:
        """Append an entry to the audit log."""
        tw = self._tw
        tw.logs.append({"type": type, "values": values, "_at": tw.now_ms, "_step": tw.step})

    # -- commands, yielded by steps -----------------------------------------------------------

    def action(self, key: str, fn, *args, retry: Retry | None = None, **kwargs) -> Action:
        """Run ``fn(*args, **kwargs)`` once per step visit; its JSON result is cached."""
        return Action(key, fn, args, kwargs, retry)

    def sleep(self, key: str, seconds: float) -> Sleep:
        """Pause for ``seconds`` (a durable timer)."""
        return Sleep(key, seconds=float(seconds))

    def sleep_until(self, key: str, when) -> Sleep:
        """Pause until ``when`` (epoch seconds or an aware datetime)."""
        seconds = to_seconds(when)
        if not math.isfinite(seconds):
            raise ValueError(f"the timer {key!r} is set to {when!r}: not a time")
        return Sleep(key, until_ms=int(round(seconds * 1000)))

    def wait_event(self, key: str, request=None, timeout: float | None = None,
                   example=None) -> WaitEvent:
        """Pause until an event named ``key`` arrives; its payload is the yield's value.
        ``example`` (JSON) is a payload the step accepts, shown to whoever sends it."""
        return WaitEvent(key, request, timeout, example)

    # -- running ------------------------------------------------------------------------------

    def run(self, now=None) -> Status:
        """Fire what is due by ``now``, then run until the workflow waits, ends or fails."""
        for _ in self.exec(now):
            pass
        return self._tw.status

    def exec(self, now=None, *, before_actions: bool = False) -> Iterator[Checkpoint]:
        """Like ``run``, yielding a ``Checkpoint`` after each new action result, transition
        and new wait.

        With ``before_actions``, it also yields ``Checkpoint("before_action", ...)`` just
        before an action runs: a runtime that commits there (and at every pause and end)
        keeps every result durable before the next side effect with fewer commits.
        """
        tw = self._tw
        base = self.__set_now(now)
        if tw.status not in ACTIVE:
            return
        try:
            yield from self.__exec(before_actions, base)
        finally:
            self.__end_advance(base)

    def __exec(self, before_actions: bool, base: float):
        tw = self._tw
        while True:
            self.__fire_due()
            if tw.status is Status.WAITING:
                if self.__advance_to_next():
                    continue
                return
            outcome = yield from self.__visit(before_actions)
            if outcome is _Pause:
                tw.status = Status.WAITING
                if self.__advance_to_next():
                    continue          # an advance under way goes on to the next due wait
                return
            if tw.status is Status.FAILED:
                return
            target = outcome
            old = tw.step
            if target is None:
                self.__close_open("finished")
                tw.status = Status.FINISHED
                self.log("finished")
                return
            if not isinstance(target, str) or target not in self.__workflow__.steps:
                self.__fail(ValueError(
                    f"step {old!r} returned {target!r}, which is not a step of "
                    f"{type(self).__name__}"), None)
                return
            self.__close_open("step moved on")
            seq = tw.cache.get("_seq", 0) + 1
            tw.cache["_seq"] = seq
            tw.step = target
            self.log("transition", **{"from": old, "to": target, "stepSeq": seq})
            yield Checkpoint("transition", target)

    def __visit(self, before_actions: bool):
        """Run the current step once from its top; return its next step, ``_Pause`` or None
        after a failure (status says which)."""
        tw = self._tw
        name = tw.step
        if name not in self.__workflow__.steps:
            self.__fail(ValueError(f"{type(self).__name__} has no step {name!r}"), None)
            return None
        prefix = f"{tw.cache.get('_seq', 0)}:{name}:"
        try:
            gen = getattr(self, name)()
        except Exception as exc:
            self.__fail(exc, None)
            return None
        if not inspect.isgenerator(gen):
            return gen
        value = error = None
        try:
            while True:
                try:
                    cmd = gen.throw(error) if error is not None else gen.send(value)
                except StopIteration as stop:
                    return stop.value
                except Exception as exc:
                    self.__fail(exc, None)
                    return None
                value = error = None
                kind = type(cmd)
                if kind is Action:
                    key = prefix + cmd.key
                    if key in tw.cache:
                        value = tw.cache[key]
                        continue
                    if before_actions:
                        yield Checkpoint("before_action", name, cmd.key)
                    done, value = self.__act(cmd, key, prefix)
                    if done is None:
                        return None
                    if done is _Pause:      # its retry timer was open already: nothing new
                        return _Pause
                    yield Checkpoint("action" if done else "wait", name, cmd.key)
                    if not done:
                        return _Pause
                elif kind is Sleep:
                    try:
                        value, new = self.__timer(cmd, prefix + "timer:" + cmd.key)
                    except ValueError as exc:   # a due time no calendar can hold
                        error = exc
                        continue
                    if new:
                        yield Checkpoint("wait", name, cmd.key)
                    if value is _Pause:
                        return _Pause
                elif kind is WaitEvent:
                    try:
                        value, error, new = self.__event(cmd, prefix + "event:" + cmd.key)
                    except ValueError as exc:   # a deadline no calendar can hold
                        error = exc
                        continue
                    if new:
                        yield Checkpoint("wait", name, cmd.key)
                    if value is _Pause:
                        return _Pause
                else:
                    error = TypeError(f"step {name!r} yielded {cmd!r}; yield self.action(...), "
                                      "self.sleep(...) or self.wait_event(...)")
        finally:
            gen.close()

    def __act(self, cmd: Action, key: str, prefix: str):
        """Run an uncached action: (True, result), (False, None) when a new retry timer waits,
        (_Pause, None) when its open retry timer is not due, or (None, None) when the workflow
        failed."""
        tw = self._tw
        policy = cmd.retry or DEFAULT_RETRY
        last = self.__last_retry(prefix, cmd.key)
        if last is not None and not last[1].get("isDone"):
            entry = last[1]
            if entry["resumeAfter"] > tw.now_ms:
                return _Pause, None
            self.__resolve_entry(last[0], entry, None)
        attempt = last[1]["attempt"] + 1 if last is not None else 1
        try:
            result = _through_json(cmd.key, cmd.fn(*cmd.args, **cmd.kwargs))
        except Exception as exc:
            retryable = not isinstance(exc, NonJSONResult) and policy.retryable(exc)
            more = retryable and attempt < policy.maximum_attempts
            next_at = tw.now_ms + int(round(policy.delay(attempt) * 1000)) if more else None
            self.log("action_error", key=cmd.key, attempt=attempt,
                     maximumAttempts=policy.maximum_attempts, errorType=type(exc).__name__,
                     errorMessage=str(exc), nextAttemptAt=next_at)
            if not more:
                self.__fail(exc, cmd.key)
                return None, None
            n = last[0].rsplit("#", 1)[1] if last is not None else "0"
            self.__register(f"{prefix}retry:{cmd.key}#{int(n) + 1}", {
                "type": "timer", "isDone": False, "resumeId": self._resume_id(cmd.key),
                "resumeAfter": next_at, "retry": True, "key": cmd.key, "attempt": attempt,
                "error": {"type": type(exc).__name__, "message": str(exc)},
            }, "time")
            return False, None
        tw.cache[key] = result
        self.log("cache", key=key)
        return True, result

    def __last_retry(self, prefix: str, key: str):
        """The newest retry timer of action ``key`` in this visit, as (system key, entry)."""
        system = self._tw.system
        base = f"{prefix}retry:{key}#"
        n, found = 1, None
        while base + str(n) in system:
            found = base + str(n)
            n += 1
        return (found, system[found]) if found else None

    def __timer(self, cmd: Sleep, skey: str):
        tw = self._tw
        entry = tw.system.get(skey)
        if entry is None:
            due = cmd.until_ms
            if due is None:
                due = tw.now_ms + _ms_offset(cmd.seconds, f"the timer {cmd.key!r}")
            _check_time(due, f"the timer {cmd.key!r}")
            entry = {"type": "timer", "isDone": False, "resumeId": self._resume_id(cmd.key),
                     "resumeAfter": due}
            self.__register(skey, entry, "time")
            if due <= tw.now_ms:
                self.__resolve_entry(skey, entry, None)
                return None, True
            return _Pause, True
        if entry.get("isDone"):
            return entry.get("responsePayload"), False
        if entry["resumeAfter"] <= tw.now_ms:
            self.__resolve_entry(skey, entry, None)
            return None, False
        return _Pause, False

    def __event(self, cmd: WaitEvent, skey: str):
        """(value, error to throw, newly registered)."""
        tw = self._tw
        entry = tw.system.get(skey)
        new = entry is None
        if new:
            entry = {"type": "event", "isDone": False, "resumeId": self._resume_id(cmd.key),
                     "requestPayload": cmd.request, "responsePayload": None}
            if cmd.example is not None:
                entry["example"] = cmd.example
            if cmd.timeout is not None:
                entry["timeoutAt"] = _check_time(
                    tw.now_ms + _ms_offset(cmd.timeout, f"the deadline of {cmd.key!r}"),
                    f"the deadline of {cmd.key!r}")
            self.__register(skey, entry, "event")
            for i, item in enumerate(tw.inbox):
                if item["name"] == cmd.key:
                    del tw.inbox[i]
                    self.__resolve_entry(skey, entry, item.get("payload"))
                    break
        if entry.get("isDone"):
            if entry.get("timedOut"):
                return None, EventTimeout(cmd.key, entry["timeoutAt"]), new
            return entry.get("responsePayload"), None, new
        deadline = entry.get("timeoutAt")
        if deadline is not None and tw.now_ms >= deadline:
            self.__time_out(skey, entry)
            return None, EventTimeout(cmd.key, deadline), new
        return _Pause, None, new

    # -- waits --------------------------------------------------------------------------------

    def _resume_id(self, key: str) -> str:
        """``<key>-<now in base 32>`` as the original, made unique within this workflow."""
        taken = {v.get("resumeId") for v in self._tw.system.values() if isinstance(v, dict)}
        ms = self._tw.now_ms
        while f"{key}-{_base32(ms)}" in taken:
            ms += 1
        return f"{key}-{_base32(ms)}"

    def __register(self, skey: str, entry: dict, kind: str):
        self._tw.system[skey] = entry
        self._tw.open.add(skey)
        self.log("interrupt_begin", type=kind, resumeId=entry["resumeId"])

    def __resolve_entry(self, skey: str, entry: dict, payload):
        entry["isDone"] = True
        if payload is not None or entry["type"] == "event":
            entry["responsePayload"] = payload
        self._tw.open.discard(skey)
        self.log("interrupt_end", resumeId=entry["resumeId"])

    def __time_out(self, skey: str, entry: dict):
        entry["isDone"] = True
        entry["timedOut"] = True
        self._tw.open.discard(skey)
        self.log("interrupt_end", resumeId=entry["resumeId"], timedOut=True)

    def __close_open(self, why: str):
        tw = self._tw
        for skey in sorted(tw.open):
            entry = tw.system[skey]
            entry["isDone"] = True
            entry["closed"] = why
            self.log("interrupt_end", resumeId=entry["resumeId"], closed=why)
        tw.open.clear()

    def __fire_due(self):
        tw = self._tw
        for skey in sorted(tw.open):
            entry = tw.system[skey]
            if entry["type"] == "timer" and entry["resumeAfter"] <= tw.now_ms:
                self.__resolve_entry(skey, entry, None)
                tw.status = Status.RUNNING
            elif entry.get("timeoutAt") is not None and tw.now_ms >= entry["timeoutAt"]:
                self.__time_out(skey, entry)
                tw.status = Status.RUNNING

    def __fail(self, exc: BaseException, key: str | None):
        tw = self._tw
        tw.status = Status.FAILED
        tw.error = {"type": type(exc).__name__, "message": str(exc), "step": tw.step, "key": key}
        self.log("failed", **tw.error)

    def _advance_clock(self, seconds: float, now=None) -> None:
        """(The runtime's "advance"; underscored so no flow's own names can clash.) Move this
        workflow's clock ``seconds`` ahead of the caller's ``now``: the next
        ``run``/``exec`` fires, one after the other and each at its own due time, every timer
        and event deadline that falls due within those seconds (a timer a step sets while
        doing so fires too, if due in time); the workflow's clock then stays that far ahead."""
        self.__require_open("advance the clock of")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not (
                0 <= seconds < 1e10):
            raise ValueError("seconds must be a number from 0 up")
        tw = self._tw
        self.__set_now(now)
        tw.cache[ADVANCE_TO] = tw.now_ms + int(round(seconds * 1000))
        self.log("clock_advanced", seconds=seconds, toAt=tw.cache[ADVANCE_TO])

    def __advance_to_next(self) -> bool:
        """During an advance: move the clock to the next open wait due by its target."""
        tw = self._tw
        target = tw.cache.get(ADVANCE_TO)
        if target is None:
            return False
        due = self.__next_due_ms()
        if due is None or due > target:
            return False
        tw.now = max(tw.now, due / 1000)
        return True

    def __end_advance(self, base: float) -> None:
        tw = self._tw
        target = tw.cache.pop(ADVANCE_TO, None)
        if target is None:
            return
        tw.now = max(tw.now, target / 1000)
        offset = target - int(round(base * 1000))
        if offset:
            tw.cache[CLOCK_OFFSET] = offset
        else:
            tw.cache.pop(CLOCK_OFFSET, None)

    def __next_due_ms(self):
        tw = self._tw
        times = [t for t in (tw.system[k].get("resumeAfter") if tw.system[k]["type"] == "timer"
                             else tw.system[k].get("timeoutAt") for k in tw.open) if t is not None]
        return min(times) if times else None

    def pending(self) -> list[dict]:
        """The open waits (empty unless running or waiting)."""
        tw = self._tw
        if tw.status not in ACTIVE:
            return []
        out = []
        for skey in sorted(tw.open, key=lambda k: (tw.system[k].get("resumeAfter")
                                                    or tw.system[k].get("timeoutAt") or 0, k)):
            entry = tw.system[skey]
            if entry.get("retry"):
                item = {"resumeId": entry["resumeId"], "type": "timer", "key": entry["key"],
                        "resumeAfter": entry["resumeAfter"], "retry": True,
                        "attempt": entry["attempt"]}
                if entry.get("error"):
                    item["error"] = entry["error"]
                out.append(item)
            elif entry["type"] == "timer":
                out.append({"resumeId": entry["resumeId"], "type": "timer",
                            "key": skey.split(":timer:", 1)[1],
                            "resumeAfter": entry["resumeAfter"]})
            else:
                item = {"resumeId": entry["resumeId"], "type": "event",
                        "key": skey.split(":event:", 1)[1],
                        "requestPayload": entry.get("requestPayload"),
                        "timeoutAt": entry.get("timeoutAt")}
                if entry.get("example") is not None:
                    item["example"] = entry["example"]
                out.append(item)
        return out

    def wake_at(self) -> float | None:
        """Epoch seconds of the earliest open timer or event deadline, or None (on the
        caller's clock: less this workflow's clock offset)."""
        if self._tw.status not in ACTIVE:
            return None
        due = self.__next_due_ms()
        return None if due is None else due / 1000 - self._clock_offset()

    # -- from outside -------------------------------------------------------------------------

    def __require_open(self, action: str):
        if self._tw.status not in ACTIVE:
            raise WorkflowClosed(f"cannot {action} a {self._tw.status} workflow")

    def resolve(self, resume_id: str, payload=None, now=None) -> None:
        """Resolve the open wait ``resume_id`` (KeyError if none is open)."""
        self.__require_open("resolve a wait of")
        tw = self._tw
        self.__set_now(now)
        for skey in tw.open:
            if tw.system[skey]["resumeId"] == resume_id:
                self.__resolve_entry(skey, tw.system[skey], payload)
                tw.status = Status.RUNNING
                return
        raise KeyError(resume_id)

    def send(self, name: str, payload=None, now=None) -> str:
        """Deliver event ``name``: to its open wait, else its handler, else the inbox.
        Returns how it was handled: "wait", "handler" or "inbox"."""
        self.__require_open("send an event to")
        tw = self._tw
        self.__set_now(now)
        suffix = ":event:" + name
        for skey in sorted(tw.open):
            if skey.endswith(suffix) and tw.system[skey]["type"] == "event":
                self.log("event_received", name=name, handledBy="wait")
                self.__resolve_entry(skey, tw.system[skey], payload)
                tw.status = Status.RUNNING
                return "wait"
        method = self.__workflow__.handlers.get(name)
        if method is None:
            self.log("event_received", name=name, handledBy="inbox")
            tw.inbox.append({"name": name, "payload": payload, "_at": tw.now_ms})
            return "inbox"
        state = tw.state
        saved = copy.deepcopy(state), len(tw.logs)
        try:
            self.log("event_received", name=name, handledBy="handler")
            getattr(self, method)(payload)
        except BaseException:
            # Restored in place: the live document (to_json, from_json's data) is unchanged too.
            state.clear()
            state.update(saved[0])
            tw.state = state
            del tw.logs[saved[1]:]
            raise
        tw.status = Status.RUNNING
        return "handler"

    def cancel(self, reason: str | None = None, now=None) -> None:
        """Cancel: close the open waits; status ``cancelled``."""
        tw = self._tw
        if tw.status in (Status.FINISHED, Status.CANCELLED):
            raise WorkflowClosed(f"cannot cancel a {tw.status} workflow")
        self.__set_now(now)
        self.__close_open("cancelled")
        tw.status = Status.CANCELLED
        self.log("cancelled", reason=reason)

    def retry(self, now=None) -> None:
        """Give a failed workflow's failed action a fresh set of attempts; status ``running``."""
        tw = self._tw
        if tw.status is not Status.FAILED:
            raise ValueError(f"only a failed workflow can be retried; this one is {tw.status}")
        self.__set_now(now)
        key = (tw.error or {}).get("key")
        if key is not None:
            prefix = f"{tw.cache.get('_seq', 0)}:{tw.step}:"
            last = self.__last_retry(prefix, key)
            n = int(last[0].rsplit("#", 1)[1]) + 1 if last else 1
            # A closed marker: attempts count again from 1 after it.
            tw.system[f"{prefix}retry:{key}#{n}"] = {
                "type": "timer", "isDone": True, "resumeId": self._resume_id(key),
                "resumeAfter": tw.now_ms, "retry": True, "key": key, "attempt": 0,
                "closed": "retried"}
        tw.error = None
        tw.status = Status.RUNNING
        self.log("retried")

    # -- the document -------------------------------------------------------------------------

    def to_json(self) -> dict:
        """The snapshot (its parts are the live objects: serialise it, do not mutate it)."""
        tw = self._tw
        doc = {"step": tw.step, "state": tw.state, "cache": tw.cache, "system": tw.system,
               "logs": tw.logs, "status": str(tw.status)}
        if tw.inbox:
            doc["inbox"] = tw.inbox
        if tw.error is not None:
            doc["error"] = tw.error
        return doc

    @classmethod
    def from_json(cls, data: dict):
        """An instance from a snapshot (adopts its parts by reference; ``logs`` may be absent)."""
        if not isinstance(data, dict):
            raise ValueError("a snapshot must be a JSON object")
        step_name = data.get("step")
        if step_name not in cls.__workflow__.steps:
            raise ValueError(f"snapshot step {step_name!r} is not a step of {cls.__name__}")
        parts = {}
        for part, kind in (("state", dict), ("cache", dict), ("system", dict), ("logs", list),
                           ("inbox", list)):
            value = data.get(part)
            if value is None:
                value = kind()
            if not isinstance(value, kind):
                raise ValueError(f"snapshot {part!r} must be a JSON {kind.__name__}")
            parts[part] = value
        for skey, entry in parts["system"].items():
            if (not isinstance(entry, dict) or entry.get("type") not in ("timer", "event")
                    or not isinstance(entry.get("resumeId"), str)):
                raise ValueError(f"snapshot system entry {skey!r} is not a timer or event wait")
            if entry["type"] == "timer" and not isinstance(entry.get("resumeAfter"), (int, float)):
                raise ValueError(f"snapshot timer {skey!r} has no resumeAfter time")
            if entry.get("retry"):
                if not isinstance(entry.get("key"), str) or not isinstance(
                        entry.get("attempt"), int):
                    raise ValueError(f"snapshot retry timer {skey!r} has no action key or attempt")
            elif f":{entry['type']}:" not in skey:
                raise ValueError(f"snapshot system key {skey!r} is not '<seq>:<step>:"
                                 f"{entry['type']}:<key>'")
            for name in ("resumeAfter", "timeoutAt"):    # compared with numbers and each other
                when = entry.get(name)
                if when is not None and (isinstance(when, bool)
                                         or not isinstance(when, (int, float))):
                    raise ValueError(f"snapshot wait {skey!r}: {name} is not a time")
            if entry.get("timedOut") and entry.get("timeoutAt") is None:
                raise ValueError(f"snapshot wait {skey!r} timed out but has no timeoutAt")
        if not all(isinstance(item, dict) and isinstance(item.get("name"), str)
                   for item in parts["inbox"]):
            raise ValueError("snapshot 'inbox' must hold events, each with a 'name'")
        if not isinstance(parts["cache"].get("_seq", 0), int):
            raise ValueError("snapshot cache '_seq' must be an integer")
        try:
            status = Status(data.get("status") or Status.RUNNING)
        except ValueError:
            raise ValueError(f"snapshot status {data.get('status')!r} is unknown") from None
        error = data.get("error")
        if error is not None and not isinstance(error, dict):
            raise ValueError("snapshot 'error' must be a JSON object")
        wf = cls.__new__(cls)
        wf._tw = _Engine(step_name, parts["state"], parts["cache"], parts["system"],
                         parts["logs"], status, parts["inbox"], error)
        return wf
