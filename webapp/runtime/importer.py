"""Import: snapshots written elsewhere (the original library's db files among them) stored as
workflows, all or nothing."""
from __future__ import annotations

import copy
import math
import re
import uuid

from .. import store
from .errors import Conflict, Invalid, Unavailable
from .visits import visits_of_log
from . import counters, rules
from .rules import MAX_ID
from .unit import Job, ms


def import_snapshots(rt, data, flow: str | None = None, *, hint: str | None = None) -> list[str]:
    """Store a snapshot, or a list of ``[runId, snapshot]`` pairs, in ``rt``; the ids stored.

    Without ``flow`` each snapshot's flow is the registered one whose steps cover the steps
    the snapshot mentions; ``hint`` (e.g. the file name) settles a tie. All or nothing.
    """
    if isinstance(data, dict):
        pairs = [(uuid.uuid4().hex[:16], data)]
    elif isinstance(data, list) and all(
            isinstance(p, list) and len(p) == 2 and isinstance(p[0], str)
            and isinstance(p[1], dict) for p in data):   # rules.check_id below says what is wrong
        pairs = [tuple(p) for p in data]
    else:
        raise Invalid("expected a snapshot (a JSON object) or a list of [runId, snapshot] pairs")
    ids = [id for id, _ in pairs]
    if len(set(ids)) != len(ids):
        raise Invalid("the same run id appears twice")
    taken = rt.store.exists(ids)
    if taken:
        raise Conflict(f"workflows already exist: {', '.join(sorted(taken)[:10])}")
    at = ms(rt.clock())
    rows, log_rows, visit_rows, stat_rows, attr_rows = [], [], [], [], []
    for id, snap in pairs:
        rules.check_id(id, f"the run id {id!r}", error=Invalid)
        rt.check_json(snap, f"{id}: the snapshot")
        name = flow if flow is not None else _infer_flow(rt.flows, id, snap, hint)
        cls = rt.flow_class(name)
        snap = copy.deepcopy(snap)
        entries = snap.get("logs") or []
        if not isinstance(entries, list) or not all(
                isinstance(e, dict) and isinstance(e.get("type"), str) for e in entries):
            raise Invalid(f"{id}: 'logs' must be a list of entries with a 'type'")
        _check_storable(id, snap, entries)
        try:
            wf = cls.from_json({**snap, "logs": []})
        except ValueError as error:
            raise Invalid(f"{id}: not a {name} snapshot: {error}") from None
        job = Job(wf, id=id, flow=name, owner="", version=None, log_count=len(entries),
                  flow_version=cls.version,   # the code that just loaded it
                  created_at=at, store=rt.store, now=at / 1000, clock=rt.clock,
                  lease_ms=0, stats=rt.stats_on)
        values = job.values(lease=False)[0]
        rows.append({"id": id, **values})
        stat_rows += job.stat_rows(values, entries)[0] or []
        attr_rows += job.attrs(values) or ()
        log_rows += store.log_params(id, 1, entries)
        visit_rows += visits_of_log(id, entries)     # their states were never recorded
    try:
        rt.store.insert_many(rows, log_rows, visit_rows, counters.merged(stat_rows),
                             attr_rows)
    except store.Duplicate as error:
        raise Conflict(f"could not import: {error}") from None
    except store.Busy as error:
        raise Unavailable(str(error)) from None
    return ids


_MAX_MS = 253_402_300_799_999     # the last millisecond of the year 9999: any later is no time


def _is_time(value) -> bool:
    return (value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)
                              and math.isfinite(value) and 0 <= value <= _MAX_MS))


def _check_storable(id: str, snap: dict, entries: list) -> None:
    """Refuse (Invalid) what an imported snapshot would need but the tables cannot hold:
    names longer than their columns, and times that are not times."""
    for n, entry in enumerate(entries, 1):
        step_name, at, values = entry.get("_step"), entry.get("_at"), entry.get("values")
        if len(entry["type"]) > MAX_ID or not (
                step_name is None or isinstance(step_name, str) and len(step_name) <= MAX_ID):
            raise Invalid(f"{id}: log entry {n}: 'type' and '_step' are text of at most "
                          f"{MAX_ID} characters")
        if not (_is_time(at) and (at is None or at == int(at))):
            raise Invalid(f"{id}: log entry {n}: '_at' must be epoch milliseconds")
        if values is not None and not isinstance(values, dict):
            raise Invalid(f"{id}: log entry {n}: 'values' must be a JSON object")
    system = snap.get("system")
    for key, wait in (system.items() if isinstance(system, dict) else ()):
        if isinstance(wait, dict) and not all(_is_time(wait.get(name))
                                              for name in ("resumeAfter", "timeoutAt")):
            raise Invalid(f"{id}: wait {key!r}: its times must be epoch milliseconds")


def _steps_mentioned(snap: dict) -> set[str]:
    found = [snap.get("step")]
    for part in ("cache", "system"):
        value = snap.get(part)
        for key in (value if isinstance(value, dict) else ()):
            bits = key.split(":")
            if len(bits) >= 3:
                found.append(bits[1])
    entries = snap.get("logs")
    for entry in (entries if isinstance(entries, list) else ()):
        if isinstance(entry, dict):
            found.append(entry.get("_step"))
            values = entry.get("values")
            if entry.get("type") == "transition" and isinstance(values, dict):
                found += [values.get("from"), values.get("to")]
    return {name for name in found if isinstance(name, str)}   # what is not text names none


def _infer_flow(flows: dict, id: str, snap: dict, hint: str | None) -> str:
    steps = _steps_mentioned(snap)
    fits = [name for name, cls in flows.items() if steps <= set(cls.__workflow__.steps)]
    if hint and len(fits) > 1:
        squash = re.sub(r"[^a-z0-9]", "", hint.lower())
        named = [n for n in fits if squash.startswith(re.sub(r"[^a-z0-9]", "", n.lower()))]
        if named:
            return max(named, key=len)
    if len(fits) == 1:
        return fits[0]
    which = (f"several flows fit ({', '.join(sorted(fits))})" if fits
             else "no registered flow has them all")
    raise Invalid(f"{id}: cannot tell the flow of a snapshot with steps "
                  f"{', '.join(sorted(steps))}: {which}; name it (--flow)")
