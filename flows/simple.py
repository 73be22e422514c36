"""The README example: three steps, one cached action."""
import math

from webapp.engine import Workflow, step


def heavy_compute():
    print("\t ... do heavy computed ... ")
    return math.pi


class Simple(Workflow):
    """Computes pi once, even across save and load."""

    name = "simple"
    first_step = "step_begin"

    @step
    def step_begin(self):
        self.state["startHit"] = True
        self.log("start_hit")
        return "step_compute"

    @step
    def step_compute(self):
        value = yield self.action("cache_computed", heavy_compute)
        self.log("computed_hit", actionValue=value)
        self.state["computed"] = value
        return "step_end"

    @step
    def step_end(self):
        self.state["endHit"] = True
        self.log("end_hit")
        return None
