"""Flows for the search-attribute tests (TINYFLOW_FLOWS=["search_flows"])."""
from webapp.engine import Workflow, on_event, step


class Account(Workflow):
    """Waits to be closed; ``set`` merges its payload into the state (a commit)."""

    name = "account"
    search_attributes = ("amount", "plan.tier", "active", "note")

    @on_event("set")
    def on_set(self, payload):
        self.state.update(payload)

    @step
    def step_open(self):
        yield self.wait_event("close")
        return "step_closed"

    @step
    def step_closed(self):
        return None


class Ledger(Workflow):
    """Another flow declaring ``amount``: a filter with no flow chosen searches both."""

    name = "ledger"
    search_attributes = ("amount",)

    @step
    def step_wait(self):
        yield self.wait_event("close")
        return None


class Plain(Workflow):
    """A flow that declares no search attribute."""

    name = "plain"

    @step
    def step_wait(self):
        yield self.wait_event("close")
        return None
