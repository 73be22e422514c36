"""``Schedule``: a flow's own calendar, declared on its class.

    class DailyReport(Workflow):
        schedules = [Schedule("0 9 * * *", id="daily-report", state={"to": "ops"})]

Pure data (the engine knows no time zones or databases): the runtime checks each declaration
when the flows load and creates or updates its schedule (``webapp.runtime.schedules``).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Schedule:
    """Start a workflow of the class it is declared on at each time ``cron`` names.

    ``cron``: five fields (minute hour day-of-month month day-of-week); ``id``: the schedule's
    id (its workflows are ``<id>@<fire time>``); ``state``: their initial state;
    ``timezone``: an IANA name the cron's times are in; ``overlap``: ``"skip"`` (no fire
    while its last workflow is still running or waiting) or ``"allow"``; ``catchup``: how old
    (seconds) a missed fire may be and still run once.
    """

    cron: str
    id: str
    state: dict = field(default_factory=dict)
    timezone: str = "UTC"
    overlap: str = "skip"
    catchup: int = 60
