"""Flows the schedule tests fire (also inside worker subprocesses, via TINYFLOW_FLOWS)."""
from pathlib import Path

from runtime_flows import effect, wait_for_file
from webapp.engine import Workflow, step


def probe_action(folder: str, tag: str) -> str:
    effect(folder, f"ran {tag}")
    if Path(folder, "hold").exists():       # the test holds the workers here, then kills one
        wait_for_file(Path(folder) / "go")
    return tag


class Probe(Workflow):
    """One action that records which workflow ran it (and may wait for the file `go`)."""

    name = "probe"

    @step
    def step_one(self):
        self.state["ran"] = yield self.action("probe", probe_action, self.state["dir"],
                                              self.state["tag"])
        return None


class Waiter(Workflow):
    """Waits for the event `done`: a run that stays "waiting" (for overlap)."""

    name = "waiter"

    @step
    def step_one(self):
        self.state["got"] = yield self.wait_event("done")
        return None


class Tick(Workflow):
    """One step that notes it ran: the schedule benchmark's flow."""

    name = "tick"

    @step
    def step_one(self):
        self.state["ticked"] = True
        return None
