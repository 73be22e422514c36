"""Flows the history tests run: one whose state changes in every step (nested too), one that
fails after a first step, and a loop for the benchmark."""
from webapp.engine import Retry, Workflow, step


def charge(amount, broken):
    if broken:
        raise RuntimeError(f"the card was declined for {amount}")
    return {"charged": amount}


class Changing(Workflow):
    """Every step changes the state: adds, changes and removes keys, some of them nested."""

    name = "changing"

    @step
    def step_one(self):
        self.state["n"] = 1
        self.state["profile"] = {"name": "Ada", "tags": ["a"]}
        return "step_two"

    @step
    def step_two(self):
        self.state["n"] += 1
        self.state["profile"]["name"] = "Grace"
        self.state["temp"] = True
        return "step_three"

    @step
    def step_three(self):
        self.state["n"] += 1
        del self.state["temp"]
        self.state["profile"]["tags"].append("b")
        self.state["profile"]["address"] = {"city": "Paris"}
        return "step_four"

    @step
    def step_four(self):
        self.state["n"] += 1
        del self.state["profile"]["address"]
        self.state["done"] = "yes"
        return "step_same"

    @step
    def step_same(self):             # changes nothing: its successor begins with the same state
        return "step_end"

    @step
    def step_end(self):
        yield self.wait_event("event_finish")
        return None


class Failing(Workflow):
    """Prepares an order, then charges it: the charge fails while ``broken`` is set."""

    name = "failing"

    @step
    def step_prepare(self):
        self.state["prepared"] = True
        return "step_charge"

    @step
    def step_charge(self):
        self.state["receipt"] = yield self.action(
            "charge", charge, self.state.get("amount", 10), self.state.get("broken", False),
            retry=Retry(maximum_attempts=1))
        return "step_done"

    @step
    def step_done(self):
        self.state["thanks"] = True
        return None


class Looping(Workflow):
    """Visits ``step_a`` and ``step_b`` by turns ``state["n"]`` times, counting in the state."""

    name = "looping"

    @step
    def step_a(self):
        self.state["i"] = self.state.get("i", 0) + 1
        return "step_b" if self.state["i"] < self.state.get("n", 1) else None

    @step
    def step_b(self):
        self.state["b"] = self.state.get("b", 0) + 1
        return "step_a"
