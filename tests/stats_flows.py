"""A flow for the statistics tests: every path kind (branches, revisits, failures, cancels,
waits), chosen by the events sent."""
from __future__ import annotations

from webapp.engine import Retry, Workflow, step


def boom(what: str) -> str:
    raise RuntimeError(what)


class Branchy(Workflow):
    """step_start waits for `go`: "a" sleeps in step_a then ends, "b" ends through step_b,
    "again" visits step_start again, "fail" fails in step_b's action."""

    name = "branchy"
    first_step = "step_start"

    @step
    def step_start(self):
        choice = yield self.wait_event("go")
        self.state["choice"] = choice
        if choice == "again":
            return "step_start"
        if choice == "a":
            return "step_a"
        return "step_b"

    @step
    def step_a(self):
        yield self.sleep("rest", 60)
        return "step_end"

    @step
    def step_b(self):
        if self.state.get("choice") == "fail":
            yield self.action("break", boom, "no", retry=Retry(maximum_attempts=1))
        return "step_end"

    @step
    def step_end(self):
        return None
