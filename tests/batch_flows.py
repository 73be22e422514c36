"""A flow for the batch tests: it counts the pings it gets, each one a new wait."""
from webapp.engine import Workflow, step


class Tally(Workflow):
    """Waits for `ping`, counts it, waits again."""

    name = "tally"

    @step
    def step_wait(self):
        yield self.wait_event("ping")
        self.state["pings"] = self.state.get("pings", 0) + 1
        return "step_wait"
