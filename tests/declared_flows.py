"""A flow that declares its own schedules (``schedules = [Schedule(...)]``)."""
from webapp.engine import Schedule, Workflow, step


class DailyReport(Workflow):
    """Writes the day's report."""

    name = "daily_report"
    schedules = [Schedule("0 9 * * *", id="daily-report", state={"to": "ops"},
                          timezone="Europe/Berlin")]

    @step
    def step_one(self):
        self.state["sent"] = True
        return None
