"""Flows the runtime's tests run (also inside worker subprocesses, via TINYFLOW_FLOWS).

Their actions leave side effects in files under ``state["dir"]``, so a test can count how
often each one really ran, whichever process ran it.
"""
import os
import time
from pathlib import Path

from webapp.engine import EventTimeout, Retry, Workflow, step

CALLS: dict[str, int] = {}   # in-process action runs, by name


def effect(folder: str, line: str) -> str:
    """Append ``line`` (and who wrote it) to the effects file; atomic for short lines."""
    with open(Path(folder) / "effects", "a", encoding="utf-8") as fh:
        fh.write(f"{line} {os.getpid()}\n")
    return line


def wait_for_file(path: Path, limit: float = 120.0) -> None:
    """Block until ``path`` exists: the test releases a worker by creating it."""
    deadline = time.monotonic() + limit
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.02)


def block(folder: str) -> str:
    effect(folder, "block")
    wait_for_file(Path(folder) / "release")
    return "released"


class Blocking(Workflow):
    """Writes `a`, then blocks in an action until the file `release` appears, then writes `b`."""

    name = "blocking"

    @step
    def step_one(self):
        yield self.sleep("pause", 1)
        yield self.action("write_a", effect, self.state["dir"], "a")
        yield self.action("block", block, self.state["dir"])
        return "step_two"

    @step
    def step_two(self):
        yield self.action("write_b", effect, self.state["dir"], "b")
        return None


def visit(folder: str, tag: str, step_name: str) -> str:
    effect(folder, f"{tag} {step_name}")
    wait_for_file(Path(folder) / "go")   # so both workers are busy at once
    return step_name


class Counted(Workflow):
    """Two steps, each one recorded action; a timer first, so workers pick it up."""

    name = "counted"

    @step
    def step_a(self):
        yield self.sleep("pause", 1)
        yield self.action("visit_a", visit, self.state["dir"], self.state["tag"], "step_a")
        return "step_b"

    @step
    def step_b(self):
        yield self.action("visit_b", visit, self.state["dir"], self.state["tag"], "step_b")
        return None


def _count(name: str) -> int:
    CALLS[name] = CALLS.get(name, 0) + 1
    return CALLS[name]


def crash_once() -> str:
    if _count("crash_once") == 1:
        raise KeyboardInterrupt("the process dies here")   # not an Exception: not caught
    return "survived"


class Crashing(Workflow):
    """Its second action kills the run the first time (as a crash would), after the first
    action's result was committed."""

    name = "crashing"

    @step
    def step_one(self):
        self.state["first"] = yield self.action("first", _count, "first")
        self.state["second"] = yield self.action("second", crash_once)
        return None


def must_exist(path: str) -> str:
    if not Path(path).exists():
        raise FileNotFoundError(path)
    return "found"


class Flaky(Workflow):
    """Fails (one attempt) until the file `state["path"]` exists."""

    name = "flaky"

    @step
    def step_one(self):
        self.state["result"] = yield self.action(
            "check", must_exist, self.state["path"], retry=Retry(maximum_attempts=1))
        return None


class Deadline(Workflow):
    """Waits 30 s for the event `answer`, then gives up."""

    name = "deadline"

    @step
    def step_one(self):
        try:
            self.state["answer"] = yield self.wait_event("answer", timeout=30)
        except EventTimeout:
            self.state["timedOut"] = True
        return None


STORED_CACHES: list = []


def read_stored_caches() -> int:
    """Record the action-cache keys stored in the database, as another connection sees them."""
    import json

    from webapp.store import WorkflowRow, db
    with db.engine.connect() as conn:
        caches = conn.execute(db.select(WorkflowRow.cache)).scalars().all()
    STORED_CACHES.append([sorted(k for k in json.loads(c) if k != "_seq") for c in caches])
    return len(STORED_CACHES)


class TwoActions(Workflow):
    """Two actions in one step."""

    name = "two_actions"

    @step
    def only(self):
        yield self.action("first", read_stored_caches)
        yield self.action("second", read_stored_caches)
        return None


HOOKS: dict = {}   # name -> callable(tag): what a test makes a hooked action do meanwhile


def hooked(tag: str) -> str:
    """Count the run, then call the test's hook (if any)."""
    _count(f"hooked:{tag}")
    hook = HOOKS.get("hooked")
    if hook is not None:
        hook(tag)
    return tag


class Hooked(Workflow):
    """A timer first (so runners pick it up), then one hooked action."""

    name = "hooked"

    @step
    def only(self):
        yield self.sleep("pause", 1)
        yield self.action("work", hooked, self.state["tag"])
        return None


class HookedAtOnce(Workflow):
    """One hooked action, first thing."""

    name = "hooked_at_once"

    @step
    def only(self):
        yield self.action("work", hooked, self.state["tag"])
        return None


def slow(folder: str, tag: str, seconds: float) -> str:
    """Record the run, then take ``seconds`` (a real action that takes real time)."""
    effect(folder, tag)
    time.sleep(seconds)
    return tag


class Slow(Workflow):
    """A timer first (so workers pick it up), then one action of ``state["seconds"]``."""

    name = "slow"

    @step
    def only(self):
        yield self.sleep("pause", 1)
        yield self.action("work", slow, self.state["dir"], self.state["tag"],
                          self.state["seconds"])
        return None


def slow_timed(folder: str, name: str, seconds: float) -> str:
    """Record ``name@<start time>`` (epoch seconds), then take ``seconds``."""
    effect(folder, f"{name}@{time.time():.6f}")
    time.sleep(seconds)
    return name


class SlowSteps(Workflow):
    """A timer first, then one action per entry of ``state["seconds"]`` (each that long)."""

    name = "slow_steps"

    @step
    def only(self):
        yield self.sleep("pause", 1)
        for n, seconds in enumerate(self.state["seconds"]):
            yield self.action(f"work_{n}", slow_timed, self.state["dir"],
                              f"{self.state['tag']}:work_{n}", seconds)
        return None
