"""Schedules: start workflows on a calendar, each fire exactly once. (Over 400 lines: the
calendar, the input rules of a schedule and its commands belong together.)

A schedule names a flow, an initial state and a cron expression (five fields, read by
croniter, described in words by cron-descriptor) in an IANA time zone (``zoneinfo``). Runners
fire what is due (``Runtime.fire_due_schedules``, from each pass of the ``Runner``):

- **Exactly once.** A fire starts the workflow ``<schedule id>@<fire time>`` (ISO 8601 UTC to
  the second). The schedule row is advanced (version-checked) and that workflow's first row
  inserted in one transaction, so a fire happens whole or not at all: two workers, a crash in
  the middle, or a restart cannot start it twice, and a fire that did not commit is still due.
  The started workflow is ``running`` and due at once; the runner's next claim runs it.
- **Catch-up, never a backlog.** Of the fires that came due and have not run, the latest
  runs once if it is at most ``catchup`` seconds old; the others are skipped.
- **Overlap.** ``"skip"`` (the default): no fire while the schedule's last workflow is still
  running or waiting (the fire is skipped, not queued); ``"allow"``: fire regardless.
- **Daylight saving.** A cron with a fixed hour ("30 2 * * *") fires once a day: a time that
  does not exist that day (spring forward) fires when the clocks have moved on (03:30 for
  02:30), a time that comes twice (fall back) fires at its first occurrence. A cron that fires
  every hour ("0 * * * *", "*/15 * * * *") fires at every real hour that matches: 23 of them on
  the spring day, 25 in the autumn.

Declared schedules (``schedules = [Schedule(...)]`` on a flow class) are created or updated
when the flows load; they can be paused but not deleted (409). A schedule whose flow is not
loaded is kept, shown as such, and does not fire.
"""
from __future__ import annotations

import functools
import json
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, croniter
from cron_descriptor import ExpressionDescriptor, Options

from .. import store as storage
from ..engine import Schedule, Status
from . import answers, rules
from .errors import Conflict, Invalid, NotFound, Unavailable
from .registry import FlowsError
from .unit import Job, ms, public

log = logging.getLogger("webapp.runtime")

OVERLAPS = ("skip", "allow")
DEFAULT_CATCHUP = 60
MAX_CATCHUP = 366 * 86400          # a year: fires older than that are never worth running
FIRE_SUFFIX = len("@2024-01-01T00:00:00Z")
MAX_SCHEDULE_ID = rules.MAX_ID - FIRE_SUFFIX   # its workflows' ids are at most MAX_ID long
_ACTIVE = (Status.RUNNING, Status.WAITING)
_UTC = timezone.utc


# --- time: the cron in its time zone ---------------------------------------------------------

def fire_iso(at: float) -> str:
    """A fire time as workflow ids carry it: ISO 8601 UTC to the second."""
    return datetime.fromtimestamp(int(at), _UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def workflow_id(schedule_id: str, at: float) -> str:
    """The workflow a fire at ``at`` starts: ``<schedule id>@<fire time>``."""
    return f"{schedule_id}@{fire_iso(at)}"


def schedule_of(workflow_id: str) -> tuple[str, float] | None:
    """``(schedule id, fire time)`` for a workflow id a schedule made, else None."""
    head, at, tail = workflow_id.rpartition("@")
    if not at or not head:
        return None
    try:
        moment = datetime.strptime(tail, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_UTC)
    except ValueError:
        return None
    return head, moment.timestamp()


class Cron:
    """A cron expression in a time zone: its fires, as epoch seconds."""

    def __init__(self, expression: str, tz: str):
        self.expression, self.tz_name = expression, tz
        self.tz = ZoneInfo(tz)
        self.every_hour = croniter(expression).expanded[1] == ["*"]
        self._local = threading.local()      # a croniter per thread, moved with set_current

    def _iter(self, start: datetime) -> croniter:
        found = getattr(self._local, "iter", None)
        if found is None:
            found = self._local.iter = croniter(self.expression, start)
        else:
            found.set_current(start, force=True)
        return found

    def next_after(self, after: float) -> float:
        """The first fire strictly after ``after``."""
        if self.every_hour:
            # croniter on aware times walks real time: every matching hour fires, the repeated
            # one twice, the skipped one not at all.
            start = datetime.fromtimestamp(after, self.tz)
            return self._iter(start).get_next(float)
        # A fixed hour: walk the wall clock, and put each wall time on the time line (fold=0:
        # the first of a repeated time; a missing time moves on by the gap).
        it = self._iter(datetime.fromtimestamp(after, self.tz).replace(tzinfo=None))
        for _ in range(1000):
            naive = it.get_next(datetime)
            at = naive.replace(tzinfo=self.tz).timestamp()
            if at > after:
                break
        else:                                   # pragma: no cover - a wall clock gone wild
            raise CroniterBadDateError("no fire found")
        if self.tz.utcoffset(naive - timedelta(hours=3)) != self.tz.utcoffset(
                naive + timedelta(hours=3)):
            # Near a change, a later wall time may come earlier on the time line (02:45 moved
            # to 03:45 comes after 03:15): take the earliest of the next few.
            limit = naive + timedelta(hours=3)
            while True:
                later = it.get_next(datetime)
                if later > limit:
                    break
                moment = later.replace(tzinfo=self.tz).timestamp()
                if after < moment < at:
                    at = moment
        return at

    def upcoming(self, after: float, n: int = 5) -> list[float]:
        fires = []
        for _ in range(n):
            after = self.next_after(after)
            fires.append(after)
        return fires

    def latest_in(self, lo: float, hi: float) -> float | None:
        """The latest fire ``t`` with ``lo <= t <= hi``, or None."""
        window = 60.0
        while True:
            start = max(lo, hi - window)
            first = self.next_after(start - 0.001)
            if first <= hi:
                while (later := self.next_after(first)) <= hi:
                    first = later
                return first
            if start <= lo:
                return None
            window *= 8

    @functools.cached_property
    def description(self) -> str:
        options = Options()
        options.use_24hour_time_format = True
        return ExpressionDescriptor(self.expression, options).get_description()


@functools.lru_cache(maxsize=4096)
def cron(expression: str, tz: str) -> Cron:
    """The Cron of an expression and zone, checked (``Invalid`` saying why), kept for reuse."""
    if not isinstance(expression, str) or not expression.strip():
        raise Invalid("'cron' must be a cron expression, like \"0 9 * * *\"")
    rules.check_text(expression, "'cron'", most=200, error=Invalid)
    if len(expression.split()) != 5:
        raise Invalid(f"'cron' {expression!r} must have five fields: minute hour "
                      "day-of-month month day-of-week (like \"0 9 * * *\")")
    if not isinstance(tz, str) or not tz:
        raise Invalid("'timezone' must be an IANA time zone name, like \"Europe/Berlin\"")
    rules.check_text(tz, "'timezone'", most=100, error=Invalid)
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise Invalid(f"'timezone' {tz!r} is not a known IANA time zone "
                      "(like \"UTC\" or \"Europe/Berlin\")") from None
    del zone
    try:
        made = Cron(expression, tz)
        made.next_after(0)
        made.next_after(datetime(2024, 1, 1, tzinfo=_UTC).timestamp())
    except (CroniterBadCronError, CroniterBadDateError, ValueError, KeyError,
            IndexError, TypeError) as error:
        why = str(error) or type(error).__name__
        if isinstance(error, CroniterBadDateError):
            why = "it never fires"
        raise Invalid(f"'cron' {expression!r} is not a valid cron expression: {why}") from None
    try:
        made.description
    except Exception as error:        # cron-descriptor's own refusal
        raise Invalid(f"'cron' {expression!r} is not a valid cron expression: {error}") from None
    return made


# --- input -----------------------------------------------------------------------------------

@dataclass
class Spec:
    """A schedule's settings, checked."""

    id: str
    flow: str
    cron: str
    state: dict
    timezone: str
    overlap: str
    catchup: int


def check(id, flow, cron_text, state=None, timezone="UTC", overlap="skip",
          catchup=DEFAULT_CATCHUP, *, flows, max_depth: int) -> Spec:
    """Every field of a new schedule, or ``Invalid`` saying which and why."""
    rules.check_id(id, "'id'", error=Invalid)
    if len(id) > MAX_SCHEDULE_ID:
        raise Invalid(f"'id' is at most {MAX_SCHEDULE_ID} characters (its workflows add "
                      "'@' and the fire time)")
    if "@" in id:
        raise Invalid("'id' cannot contain '@' (its workflows are '<id>@<fire time>')")
    if not isinstance(flow, str) or not flow:
        raise Invalid("'flow' must be the name of a flow")
    rules.check_text(flow, "'flow'", most=rules.MAX_ID, error=Invalid)
    if flow not in flows:
        raise Invalid(f"'flow' {flow!r} is not a loaded flow (known: {', '.join(sorted(flows))})")
    timezone = "UTC" if timezone is None else timezone
    cron(cron_text, timezone)
    overlap = "skip" if overlap is None else overlap
    if overlap not in OVERLAPS:
        raise Invalid(f"'overlap' must be \"skip\" or \"allow\", not {overlap!r}")
    catchup = DEFAULT_CATCHUP if catchup is None else catchup
    if isinstance(catchup, str):
        try:
            catchup = int(catchup.strip())
        except ValueError:
            raise Invalid("'catchup' must be a whole number of seconds") from None
    if (isinstance(catchup, bool) or not isinstance(catchup, int)
            or not 0 <= catchup <= MAX_CATCHUP):
        raise Invalid(f"'catchup' must be a whole number of seconds from 0 to {MAX_CATCHUP}")
    state = rules.state({} if state is None else state, max_depth)
    return Spec(id, flow, cron_text, state, timezone, overlap, catchup)


def _declared(flows: dict[str, type]) -> dict[str, tuple[str, Schedule]]:
    """``{schedule id: (flow, Schedule)}`` of the flows' ``schedules = [...]``; a bad one ->
    FlowsError (one line, at load)."""
    found: dict[str, tuple[str, Schedule]] = {}
    for name, cls in sorted(flows.items()):
        for item in getattr(cls, "schedules", None) or ():
            where = f"{cls.__module__}.{cls.__qualname__}.schedules"
            if not isinstance(item, Schedule):
                raise FlowsError(f"{where}: {item!r} is not a Schedule")
            if item.id in found:
                raise FlowsError(f"{where}: two schedules are called {item.id!r}")
            try:
                check(item.id, name, item.cron, item.state, item.timezone, item.overlap,
                      item.catchup, flows=flows, max_depth=64)
            except Invalid as error:
                raise FlowsError(f"{where}: schedule {item.id!r}: {error}") from None
            found[item.id] = (name, item)
    return found


# --- the runtime's commands ------------------------------------------------------------------

_unit = public      # see unit.public


def _busy(call, *args):
    try:
        return call(*args)
    except storage.Busy as error:
        raise Unavailable(str(error)) from None


class ScheduleCommands:
    """The Runtime's schedule methods (mixed into ``Runtime``)."""

    @functools.cached_property
    def declared_schedules(self) -> dict[str, tuple[str, Schedule]]:
        """``{schedule id: (flow, Schedule)}`` declared by the loaded flows."""
        return _declared(self.flows)

    def schedule_answer(self, record: storage.ScheduleRecord) -> dict:
        """The API's dict of a schedule."""
        return {
            "id": record.id, "flow": record.flow, "cron": record.cron,
            "description": cron(record.cron, record.timezone).description,
            "timezone": record.timezone, "overlap": record.overlap,
            "catchup": record.catchup, "paused": record.paused,
            "next_at": answers.iso(record.next_at), "last_at": answers.iso(record.last_at),
            "last_workflow_id": record.last_workflow_id,
            "state": json.loads(record.state),
            "declared": record.id in self.declared_schedules,
            "flow_loaded": record.flow in self.flows,
        }

    def upcoming_fires(self, record: storage.ScheduleRecord, n: int = 5) -> list[str]:
        """The next ``n`` fires (ISO) of a schedule that is not paused."""
        if record.paused or record.next_at is None:
            return []
        first = record.next_at / 1000
        return [answers.iso(ms(at)) for at in [first, *cron(record.cron, record.timezone)
                                               .upcoming(first, n - 1)]]

    def _schedule(self, id: str) -> storage.ScheduleRecord:
        return rules.found("schedule", id, self.store.schedule)

    @_unit
    def schedule(self, id: str) -> storage.ScheduleRecord:
        """The schedule ``id`` -> NotFound."""
        return self._schedule(id)

    @_unit
    def schedules(self, flow: str | None = None) -> list[storage.ScheduleRecord]:
        """Every schedule (or ``flow``'s), by id."""
        return self.store.schedules(flow)

    @_unit
    def add_schedule(self, id, flow, cron, state=None, timezone="UTC", overlap="skip",
                     catchup=DEFAULT_CATCHUP, now=None) -> storage.ScheduleRecord:
        """Make a schedule; its record. A bad field -> Invalid (422); id taken -> Conflict."""
        spec = check(id, flow, cron, state, timezone, overlap, catchup, flows=self.flows,
                     max_depth=int(self.settings["TINYFLOW_MAX_DEPTH"]))
        now = self._now(now)
        if self.store.schedule(spec.id) is not None:
            raise Conflict(f"schedule {spec.id!r} already exists")
        values = self._values(spec, now)
        try:
            _busy(self.store.add_schedule, values)
        except storage.Duplicate:
            raise Conflict(f"schedule {spec.id!r} already exists") from None
        return storage.ScheduleRecord(**values)

    def _values(self, spec: Spec, now: float, paused: bool = False) -> dict:
        at = ms(now)
        return {"id": spec.id, "flow": spec.flow, "cron": spec.cron,
                "timezone": spec.timezone, "state": storage.dumps(spec.state),
                "overlap": spec.overlap, "catchup": spec.catchup, "paused": paused,
                "next_at": None if paused else ms(cron(spec.cron, spec.timezone)
                                                  .next_after(now)),
                "last_at": None, "last_workflow_id": None, "version": 1,
                "created_at": at, "updated_at": at}

    def _change_schedule(self, id: str, change, now=None) -> storage.ScheduleRecord:
        """Apply ``change(record, now)`` -> values (or None: nothing to do), version-checked,
        redone on a fresh read when someone else wrote in between."""
        now = self._now(now)
        for _ in range(5):
            record = self._schedule(id)
            values = change(record, now)
            if values is None:
                return record
            values["updated_at"] = ms(now)
            try:
                _busy(self.store.change_schedule, id, record.version, values)
            except storage.Stale:
                self.store.fresh()
                continue
            return record.changed(**values, version=record.version + 1)
        raise Unavailable(f"schedule {id!r} kept changing; try again")

    @_unit
    def pause_schedule(self, id: str, now=None) -> storage.ScheduleRecord:
        """Stop firing (no next fire) until resumed."""
        return self._change_schedule(id, lambda record, now: None if record.paused else {
            "paused": True, "next_at": None}, now)

    @_unit
    def resume_schedule(self, id: str, now=None) -> storage.ScheduleRecord:
        """Fire again, from the next fire after now (what was missed while paused is
        skipped)."""
        return self._change_schedule(id, lambda record, now: None if not record.paused else {
            "paused": False,
            "next_at": ms(cron(record.cron, record.timezone).next_after(now))}, now)

    @_unit
    def delete_schedule(self, id: str) -> None:
        """Delete a schedule made through the API or the CLI (the workflows it started stay);
        a declared one -> Conflict (pause it instead, or remove it from its flow's code)."""
        record = self._schedule(id)
        if record.id in self.declared_schedules:
            raise Conflict(f"schedule {id!r} is declared by the flow {record.flow!r} in its "
                           "code: it can be paused, not deleted")
        if not _busy(self.store.delete_schedule, id):
            raise NotFound(f"no schedule {id!r}")

    @_unit
    def trigger_schedule(self, id: str, now=None):
        """Start the schedule's workflow now (``<id>@<now>``), whatever its calendar and
        overlap say; the workflow's record. A trigger in the same second as another fire ->
        Conflict. Its flow not loaded here -> Conflict."""
        record = self._schedule(id)
        if record.flow not in self.flows:
            raise Conflict(f"schedule {id!r}'s flow {record.flow!r} is not loaded here")
        now = self._now(now)
        wid = workflow_id(record.id, now)
        started = self._start(record.flow, json.loads(record.state), wid, now)

        def remember(record, now):
            if record.last_at is not None and record.last_at > ms(int(now)):
                return None
            return {"last_at": ms(int(now)), "last_workflow_id": wid}
        self._change_schedule(id, remember, now)
        return started

    @_unit
    def fire_due_schedules(self, now=None, limit: int = 200) -> int:
        """One pass over the due schedules (up to ``limit``) of the loaded flows: each is
        advanced past ``now``, and the latest fire it missed, if at most ``catchup`` seconds
        old (and its overlap policy lets it), starts its workflow, all in one transaction. How
        many schedules were advanced (fired or skipped)."""
        now = self._now(now)
        now_ms = ms(now)
        if not self.flows:
            return 0

        calendars: dict[tuple, tuple] = {}     # many schedules share a calendar and a due

        def when(record):
            """(next fire after now in ms, the latest due fire within catch-up or None)."""
            key = (record.cron, record.timezone, record.next_at, record.catchup)
            found = calendars.get(key)
            if found is None:
                calendar = cron(record.cron, record.timezone)
                found = calendars[key] = (
                    ms(calendar.next_after(now)),
                    calendar.latest_in(max(record.next_at / 1000, now - record.catchup), now))
            return found

        def plan(record, last_status):
            try:
                next_at, due = when(record)
            except Invalid as error:     # a row edited by hand: pause it, say why
                log.error("schedule %s cannot fire: %s", record.id, error)
                return {"next_at": None, "paused": True, "updated_at": now_ms}, None
            values = {"next_at": next_at, "last_at": record.last_at,
                      "last_workflow_id": record.last_workflow_id, "updated_at": now_ms}
            if due is None:
                return values, None                  # missed by more than catchup: skipped
            wid = workflow_id(record.id, due)
            if wid == record.last_workflow_id:
                return values, None
            if record.overlap == "skip" and last_status in _ACTIVE:
                return values, None                  # its last run is still going: skipped
            values.update(last_at=ms(due), last_workflow_id=wid)
            return values, self._first_row(record, wid, now)

        try:
            done = self.store.fire_schedules(now_ms, list(self.flows), limit, plan)
        except storage.Busy as error:
            raise Unavailable(f"database busy: {error}") from None
        except storage.Duplicate:
            # A trigger started one of these ids in this very moment (PostgreSQL): the next
            # pass sees it and moves on.
            log.info("a scheduled workflow was started meanwhile; firing again next pass")
            return 0
        for record, started in done:
            if started:
                log.info("schedule %s started workflow %s", record.id, started)
        return len(done)

    def _first_row(self, record: storage.ScheduleRecord, wid: str, now: float):
        """The row (log rows, first visit, counter deltas, search-attribute rows) of a new,
        not yet run workflow of the schedule: ``running`` and due now, so a runner's next
        claim runs it."""
        cls = self.flows[record.flow]
        wf = cls(state=json.loads(record.state), now=now)
        job = Job(wf, id=wid, flow=record.flow, owner="", version=None, log_count=0,
                  flow_version=cls.version, created_at=ms(now), store=self.store, now=now,
                  clock=self.clock, lease_ms=self.lease_ms, history=self.history_on,
                  stats=self.stats_on)
        if job.history:          # its first visit, as a start records it
            job.record_visit(0, wf.step, wf.to_json()["logs"][0]["_at"], 1, wf.state)
        values, new = job.values(lease=False)
        return ({"id": wid, **values}, storage.log_params(wid, 1, new), job.visits,
                job.stat_rows(values, new)[0], job.attrs(values))

    @_unit
    def sync_declared_schedules(self, now=None) -> list[str]:
        """Create or update the schedules the loaded flows declare (their pause and last run
        are kept); the ids written."""
        declared = self.declared_schedules
        if not declared:
            return []
        now = self._now(now)
        written = []
        for id, (flow, item) in declared.items():
            spec = check(id, flow, item.cron, item.state, item.timezone, item.overlap,
                         item.catchup, flows=self.flows, max_depth=64)
            for _ in range(5):
                record = self.store.schedule(id)
                if record is None:
                    try:
                        _busy(self.store.add_schedule, self._values(spec, now))
                    except storage.Duplicate:     # another process made it just now
                        self.store.fresh()
                        continue
                    written.append(id)
                    break
                want = {"flow": spec.flow, "cron": spec.cron, "timezone": spec.timezone,
                        "state": storage.dumps(spec.state), "overlap": spec.overlap,
                        "catchup": spec.catchup}
                if all(getattr(record, k) == v for k, v in want.items()):
                    break
                if (record.cron, record.timezone) != (spec.cron, spec.timezone) and (
                        not record.paused):
                    want["next_at"] = ms(cron(spec.cron, spec.timezone).next_after(now))
                want["updated_at"] = ms(now)
                try:
                    _busy(self.store.change_schedule, id, record.version, want)
                except storage.Stale:
                    self.store.fresh()
                    continue
                written.append(id)
                break
        return written
