"""What an audit log says: visits and time per step, and the transitions taken with their
counts (or, for a workflow recorded with the audit log off, what its cache and wait keys say)."""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from .words import duration

_VISIT_KEY = re.compile(r"(\d+):([^:]+):")   # "<seq>:<step>:..." in cache and system keys


@dataclass
class StepFacts:
    """What the history says about one step."""

    name: str
    visits: int | None = 0          # None: unknown (recorded with the audit log off)
    total_ms: float | None = 0.0    # None: no times to measure with
    entries: int = 0                # log entries written while at this step
    errors: int = 0                 # failed action attempts (action_error entries)
    in_flow: bool = True

    @property
    def mean_ms(self) -> float | None:
        if not self.visits or self.total_ms is None:
            return None
        return self.total_ms / self.visits

    @property
    def total_text(self) -> str:
        if self.visits is None or self.total_ms is None:
            return "unknown"
        return duration(self.total_ms) if self.visits else "–"

    @property
    def mean_text(self) -> str:
        mean = self.mean_ms
        return self.total_text if mean is None else duration(mean)


@dataclass
class History:
    first: str | None = None
    steps: dict[str, StepFacts] = field(default_factory=dict)        # in order of first visit
    taken: dict[tuple[str, str], int] = field(default_factory=dict)  # in order of first use
    audit_off: bool = False      # no init or transition entry: the path is not in the log
    complete: bool = True        # every transition taken is known (counts are exact)
    cancel_reason: str | None = None


def read_log(logs: Iterable[dict], until_ms: float | None = None) -> History:
    """One pass over the audit log: visits and time per step, transitions and their counts.

    A visit starts at ``init`` (or the first entry) and at each ``transition``; it lasts until
    the next transition, or the last entry for the current visit.
    """
    h = History()
    at_step: str | None = None   # the open visit's step
    since: float | None = None   # when it began (epoch ms)
    last_at: float | None = None
    engine_seen = False          # an init or transition entry: the audit log was on
    by_step: dict[str, StepFacts] = {}   # entries per _step, for every kind of log

    def visit(name: str, when: float | None) -> None:
        nonlocal at_step, since
        _facts(h.steps, name).visits += 1
        at_step, since = name, when

    def close(until: float | None) -> None:
        if at_step is None:
            return
        f = h.steps[at_step]
        if since is None or until is None:
            f.total_ms = None          # an entry without _at: this step's time is unknown
        elif f.total_ms is not None:
            f.total_ms += max(0.0, until - since)

    for entry in logs:
        if not isinstance(entry, dict):
            continue
        kind, where = entry.get("type"), entry.get("_step")
        at = entry.get("_at")
        at = at if isinstance(at, (int, float)) and not isinstance(at, bool) else None
        where = where if isinstance(where, str) else None
        values = entry.get("values")
        values = values if isinstance(values, dict) else {}
        last_at = at if at is not None else last_at
        if where is not None:
            f = _facts(by_step, where)
            f.entries += 1
            f.errors += kind == "action_error"
        if kind == "cancelled":
            h.cancel_reason = None if values.get("reason") is None else str(values["reason"])

        if kind == "transition":
            engine_seen = True
            src, dst = values.get("from"), values.get("to", where)
            if not isinstance(dst, str):
                continue
            src = src if isinstance(src, str) else at_step
            if at_step is None and src is not None:   # the log starts mid-way
                h.first = src
                visit(src, at)
            close(at)
            if src is not None:
                h.taken[(src, dst)] = h.taken.get((src, dst), 0) + 1
            visit(dst, at)
        elif at_step is None and (kind == "init" or where is not None):
            engine_seen = engine_seen or kind == "init"
            first = values.get("defaultStep") if kind == "init" else None
            h.first = first if isinstance(first, str) else where
            if h.first is not None:
                visit(h.first, at)
        elif kind == "init":
            engine_seen = True
    # The open visit lasts until now while the workflow can still move (``until_ms``).
    close(last_at if until_ms is None or last_at is None else max(last_at, until_ms))

    if not engine_seen:
        # The audit log was off: only custom entries (with their _step) remain.
        h = History(audit_off=True, complete=False, cancel_reason=h.cancel_reason,
                     first=next(iter(by_step), None))
        h.steps = {name: StepFacts(name, visits=None, total_ms=None) for name in by_step}
    for name, f in h.steps.items():
        seen = by_step.get(name)
        if seen is not None:
            f.entries, f.errors = seen.entries, seen.errors
    return h


def read_keys(h: History, snapshot: dict, first: str, step: str | None) -> list[int]:
    """Rebuild the path of an audit-off workflow from its snapshot's ``<seq>:<step>:`` keys.

    Visit ``seq`` of the workflow owns the cache and wait keys prefixed ``seq:``; visit 0 is
    its first step and visit ``cache._seq`` its current one. Returns the visits left unknown.
    """
    cache = snapshot.get("cache") if isinstance(snapshot.get("cache"), dict) else {}
    system = snapshot.get("system") if isinstance(snapshot.get("system"), dict) else {}
    last = cache.get("_seq")
    if not isinstance(last, int) or isinstance(last, bool) or last < 0:
        return []
    path: dict[int, str] = {0: first}
    for key in (*cache, *system):
        m = _VISIT_KEY.match(str(key))
        if m and int(m[1]) <= last:
            path[int(m[1])] = m[2]
    if step:
        path[last] = step
    missing = [seq for seq in range(last + 1) if seq not in path]
    h.complete = not missing
    facts = {name: StepFacts(name, visits=0 if h.complete else None, total_ms=None)
             for name in dict.fromkeys(path[seq] for seq in sorted(path))}
    for seq in sorted(path):
        if h.complete:
            facts[path[seq]].visits += 1
        if seq + 1 in path:
            pair = (path[seq], path[seq + 1])
            h.taken[pair] = h.taken.get(pair, 0) + 1
    for name, f in h.steps.items():    # keep what the custom entries said
        facts.setdefault(name, f).entries = f.entries
    h.steps, h.first = facts, first
    return missing


def _facts(table: dict[str, StepFacts], name: str) -> StepFacts:
    found = table.get(name)
    if found is None:
        found = table[name] = StepFacts(name)
    return found
