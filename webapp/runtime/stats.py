"""Flow statistics: one graph over every workflow of a flow (``counters`` keeps them at each
commit); reading them back as the API's answers, and the rebuild from the logs."""
from __future__ import annotations

import math

from ..engine import Status
from . import answers, rules
from .counters import DAY_MS, HOUR_MS, Recount, bucket_value, day, hour
from .errors import Invalid
from .unit import ms, public

NOW_STATUSES = (Status.RUNNING, Status.WAITING, Status.FAILED)
ACTIVITY = ("started", "finished", "failed", "cancelled")
MAX_BUCKETS = 2000            # activity buckets answered at most (the newest)


# -- reading the counters back -------------------------------------------------------------

def percentile(histogram: dict[int, int], p: float) -> float | None:
    """The nearest-rank ``p`` percentile (0-1) of a ``{bucket: count}`` histogram, as its
    bucket's middle."""
    total = sum(histogram.values())
    if not total:
        return None
    rank = max(1, math.ceil(p * total))
    seen = 0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= rank:
            return round(bucket_value(index), 1)
    return None  # pragma: no cover - the ranks add up to total


def summarise(flow_cls, rows) -> dict:
    """The stats answer (without ``flow``) from summed counter rows ``(kind, a, b, n, v)``."""
    spec = flow_cls.__workflow__ if flow_cls is not None else None
    statuses = {str(s): 0 for s in Status}
    steps: dict[str, dict] = {}
    histograms: dict[str, dict[int, int]] = {}
    sums: dict[str, list[int]] = {}
    edges: dict[tuple, int] = {}

    def step_entry(name: str) -> dict:
        return steps.setdefault(name, {"visits": 0, "now": 0, "failed": 0,
                                       "time_ms": {"mean": None, "p50": None, "p95": None,
                                                   "count": 0}})

    for name in (spec.steps if spec is not None else ()):
        step_entry(name)
    for kind, a, b, n, v in rows:
        n, v = int(n or 0), int(v or 0)
        if kind == "at":
            statuses[a] = statuses.get(a, 0) + n
            if a in NOW_STATUSES:
                step_entry(b)["now"] += n
            if a == Status.FAILED:
                step_entry(b)["failed"] += n
        elif kind == "enter":
            step_entry(a)["visits"] += n
        elif kind == "edge":
            edges[(a or None, b or None)] = edges.get((a or None, b or None), 0) + n
            if b:
                step_entry(b)["visits"] += n          # each visit begins with its edge
        elif kind == "time":
            histograms.setdefault(a, {})[int(b)] = histograms.setdefault(a, {}).get(
                int(b), 0) + n
            total = sums.setdefault(a, [0, 0])
            total[0] += n
            total[1] += v
    for name, histogram in histograms.items():
        count, spent = sums[name]
        if count:
            step_entry(name)["time_ms"] = {"mean": round(spent / count, 1),
                                           "p50": percentile(histogram, 0.5),
                                           "p95": percentile(histogram, 0.95),
                                           "count": count}
    order = {name: i for i, name in enumerate(spec.steps)} if spec is not None else {}
    transitions = [{"from": a, "to": b, "count": n}
                   for (a, b), n in sorted(edges.items(), key=lambda item: (
                       item[0][0] is not None, order.get(item[0][0], len(order)),
                       item[0][0] or "", item[0][1] is None, order.get(item[0][1], len(order)),
                       item[0][1] or ""))
                   if n]
    return {"workflows": sum(statuses.values()), "statuses": statuses, "steps": steps,
            "transitions": transitions}


def activity_items(rows, bucket_kind: str, since_ms: int | None, now_ms: int) -> list[dict]:
    """Activity answer items from rows ``(hour, what, n)``: every bucket from the first with
    something (or ``since``) to now, oldest first, at most MAX_BUCKETS (the newest)."""
    size = 24 if bucket_kind == "day" else 1
    counts: dict[int, dict] = {}
    for h, what, n in rows:
        found = counts.setdefault(int(h) // size, dict.fromkeys(ACTIVITY, 0))
        if what in found:
            found[what] += int(n or 0)
    if not counts and since_ms is None:
        return []
    last = max([hour(now_ms) // size, *counts])
    first = hour(since_ms) // size if since_ms is not None else min(counts)
    first = max(first, last - MAX_BUCKETS + 1)
    return [{"t": answers.iso(b * size * HOUR_MS).replace(".000Z", "Z"),
             **counts.get(b, dict.fromkeys(ACTIVITY, 0))}
            for b in range(first, last + 1)]


def window(since: str | None, until: str | None) -> tuple[int | None, int | None]:
    """``since``/``until`` (ISO 8601 text) as creation days (UTC): since rounded down, until
    up (exclusive), so that a window is whole days."""
    since_ms = rules.moment(since, "since", error=Invalid) if since else None
    until_ms = rules.moment(until, "until", error=Invalid) if until else None
    if since_ms is not None and until_ms is not None and until_ms < since_ms:
        raise Invalid("'until' must not be before 'since'")
    return (None if since_ms is None else day(since_ms),
            None if until_ms is None else -(-until_ms // DAY_MS))


def iso_day(d: int | None) -> str | None:
    return None if d is None else answers.iso(d * DAY_MS).replace(".000Z", "Z")


class StatsCommands:
    """The runtime's flow statistics (mixed into ``Commands``)."""

    @property
    def stats_on(self) -> bool:
        return bool(self.settings["TINYFLOW_STATS"])

    @public
    def flow_stats(self, name: str, since: str | None = None,
                   until: str | None = None) -> dict:
        """DESIGN.md's stats answer for flow ``name``: workflows created in ``[since,
        until)`` (whole UTC days), their statuses, each step's visits, ``now`` (running,
        waiting or failed there), ``failed`` and ``time_ms``, and the transitions taken.
        Unknown flow -> NotFound; a time that is not ISO 8601 -> Invalid."""
        cls = self.flow_class(name)
        first, last = window(since, until)
        rows = self.store.stat_sums(name, first, last)
        return {"flow": name, **summarise(cls, rows), "since": iso_day(first),
                "until": iso_day(last), "recording": self.stats_on}

    @public
    def flow_activity(self, name: str, bucket: str = "hour", since: str | None = None) -> dict:
        """``{"bucket", "items": [{"t", "started", "finished", "failed", "cancelled"}]}``
        per hour or day, oldest first, up to now."""
        self.flow_class(name)
        if bucket not in ("hour", "day"):
            raise Invalid("'bucket' must be 'hour' or 'day'")
        since_ms = rules.moment(since, "since", error=Invalid) if since else None
        rows = self.store.activity_rows([name], None if since_ms is None else hour(since_ms))
        return {"bucket": bucket,
                "items": activity_items([(h, a, n) for _, h, a, n in rows], bucket, since_ms,
                                        ms(self.clock()))}

    @public
    def overview(self, since_ms: int | None = None) -> list[dict]:
        """Every registered flow (and any other with workflows) with its counts by status
        and its hourly activity since ``since_ms``: ``[{"flow", "statuses", "workflows",
        "activity": [...]}]``, by name."""
        statuses = self.store.stat_statuses()
        activity: dict[str, list] = {}
        for flow, h, what, n in self.store.activity_rows(
                None, None if since_ms is None else hour(since_ms)):
            activity.setdefault(flow, []).append((h, what, n))
        now_ms = ms(self.clock())
        found = []
        for flow in sorted({*self.flows, *statuses}):
            counts = {str(s): 0 for s in Status}
            counts.update(statuses.get(flow, {}))
            found.append({"flow": flow, "statuses": counts, "workflows": sum(counts.values()),
                          "registered": flow in self.flows,
                          "activity": activity_items(activity.get(flow, []), "hour",
                                                     since_ms, now_ms)})
        return found

    @public
    def rebuild_stats(self) -> int:
        """Recount every flow's statistics from the audit logs, in one transaction (what
        the maintained figures must equal); how many workflows were read."""
        return self.store.rebuild_stats(Recount())
