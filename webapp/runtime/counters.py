"""Flow statistics' counters: what each commit adds, and the recount from the logs.

Pure Python. Each commit adds counter deltas (``deltas``) to the ``flow_stat`` table in the
transaction that writes the workflow, so the figures are a sum over a few rows, never a scan
of the logs.
Counters are keyed by the flow, a kind, a period and up to two names:

- ``at``    (status, step): workflows in that status at that step
- ``edge``  (from, to): transitions; ``""`` is the start (``from``) or the end (``to``). A
  step's visits are the edges into it: each visit begins with one (``init`` and ``forked``
  from the start), so they are not counted apart
- ``enter`` (step): the visits begun by a transition whose step before is unknown (an
  imported log that does not begin at its start): the only visits without an edge
- ``time``  (step, bucket): visits ended, by log-scale bucket of their length, and their sum
- ``act``   (started | finished | failed | cancelled): by the hour (epoch hours) it happened
- ``version`` (flow version; ``""``: unknown): workflows that started on it (or were migrated
  to it), for all time only (the flow page's versions table, read in one lookup instead of a
  count over every workflow of the flow)

The first four are kept twice: by the day (epoch days, UTC) each workflow was created, and
for all time (period ``ALL``), so the whole flow is a read of a few hundred rows at any age
and a window a sum over its days.

A visit ends at the next transition, or when the workflow finishes or is cancelled; a failed
workflow's visit stays open (a retry goes on with it). ``since``/``until`` select workflows by
creation day, so a window is whole days. ``rebuild`` recounts everything from the audit
logs with the same ``deltas`` (a whole log read as one commit from nothing), which is what the
maintained figures must equal.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
ALL = -1                      # the period of the all-time counters
# Buckets grow by RATIO: a visit's time is known to within sqrt(RATIO) - 1 (under 4 %) of
# the bucket's middle, so p50 and p95 are within 5 % of the exact ones.
RATIO = 1.08
_LOG_RATIO = math.log(RATIO)


def bucket(ms: float) -> int:
    """The histogram bucket of a visit ``ms`` long: 0 under 1 ms, else 1 + floor(log_r ms)."""
    if ms < 1:
        return 0
    return 1 + int(math.floor(math.log(ms) / _LOG_RATIO + 1e-9))


def bucket_value(index: int) -> float:
    """The middle (geometric) of bucket ``index``, in ms."""
    return 0.0 if index <= 0 else RATIO ** (index - 1 + 0.5)


def hour(ms: int) -> int:
    return int(ms) // HOUR_MS


def day(ms: int) -> int:
    return int(ms) // DAY_MS


def _at(entry: dict) -> int | None:
    at = entry.get("_at")
    return int(at) if isinstance(at, (int, float)) and not isinstance(at, bool) else None


def _name(value) -> str | None:
    return value if isinstance(value, str) and value else None


class Tally:
    """Counter deltas of one commit (or of a recount), merged by key."""

    def __init__(self, flow: str):
        self.flow = flow
        self.counts: dict[tuple, list[int]] = {}

    def add(self, kind: str, period: int, a: str, b: str = "", n: int = 1, v: int = 0) -> None:
        found = self.counts.setdefault((kind, period, a, b), [0, 0])
        found[0] += n
        found[1] += v

    def both(self, kind: str, born: int, a: str, b: str = "", n: int = 1, v: int = 0) -> None:
        """Add to the creation day ``born`` and to all time."""
        self.add(kind, born, a, b, n, v)
        self.add(kind, ALL, a, b, n, v)

    def rows(self) -> list[dict]:
        """The store's parameters, sorted by key (concurrent writers on PostgreSQL then lock
        counter rows in one order: no deadlock), without the deltas that cancel out."""
        return [{"flow": self.flow, "kind": k, "period": p, "a": a, "b": b, "n": n, "v": v}
                for (k, p, a, b), (n, v) in sorted(self.counts.items()) if n or v]


def deltas(tally: Tally, created_at: int, was: tuple[str, str] | None,
           now: tuple[str, str], entries: Iterable[dict], began,
           versions: tuple[str | None, str | None] = (None, None)) -> int | None:
    """Add to ``tally`` what a commit changes: the workflow created at ``created_at`` (ms)
    goes from ``was`` (status, step; None: a new workflow) to ``now`` and appends ``entries``,
    and from flow version ``versions[0]`` to ``versions[1]`` (the first unread when new).
    ``began`` is when its open visit began (ms), or a callable that looks it up (only called
    when an entry ends a visit begun before these entries). Returns when the open visit
    began, after them."""
    born = day(created_at)
    before, after = versions
    if was is None:
        tally.add("act", hour(created_at), "started")
        tally.add("version", ALL, after or "")
    elif before != after:                           # migrated
        tally.add("version", ALL, before or "", n=-1)
        tally.add("version", ALL, after or "")
    if was != now:
        if was is not None:
            tally.both("at", born, was[0], was[1], -1)
        tally.both("at", born, now[0], now[1])
    open_at, looked_up = began, not callable(began)
    at_step: str | None = was[1] if was is not None else None

    def close(step: str | None, at: int | None) -> None:
        nonlocal open_at, looked_up
        if not looked_up:
            open_at, looked_up = open_at(), True
        if step is not None and at is not None and open_at is not None:
            spent = max(0, at - open_at)
            tally.both("time", born, step, str(bucket(spent)), 1, spent)

    for entry in entries:
        kind, at = entry.get("type"), _at(entry)
        values = entry.get("values") if isinstance(entry.get("values"), dict) else {}
        step = _name(entry.get("_step"))
        if kind == "init" or kind == "forked":
            first = _name(values.get("defaultStep")) if kind == "init" else None
            at_step = first or step
            if at_step is not None:
                tally.both("edge", born, "", at_step)
            open_at, looked_up = at, True
        elif kind == "transition":
            src, dst = _name(values.get("from")) or at_step, _name(values.get("to")) or step
            if dst is None:
                continue
            close(src, at)
            if src is not None:
                tally.both("edge", born, src, dst)
            else:
                tally.both("enter", born, dst)
            at_step, open_at, looked_up = dst, at, True
        elif kind == "finished" or kind == "cancelled":
            where = step or at_step
            close(where, at)
            if kind == "finished" and where is not None:
                tally.both("edge", born, where, "")
            open_at, looked_up = None, True
            if at is not None:
                tally.add("act", hour(at), kind)
        elif kind == "failed" and at is not None:
            tally.add("act", hour(at), "failed")
    return open_at if looked_up else began


def merged(rows: list[dict]) -> list[dict]:
    """Counter rows of several workflows (an import) summed by key, sorted."""
    tallies: dict[str, Tally] = {}
    for row in rows:
        tally = tallies.get(row["flow"]) or tallies.setdefault(row["flow"], Tally(row["flow"]))
        tally.add(row["kind"], row["period"], row["a"], row["b"], row["n"], row["v"])
    return [row for flow in sorted(tallies) for row in tallies[flow].rows()]


class Recount:
    """Every counter, from the audit logs: each workflow's whole log read as one commit from
    nothing (``store.rebuild_stats`` calls it per workflow, then takes its ``rows()``)."""

    def __init__(self):
        self.tallies: dict[str, Tally] = {}

    def __call__(self, flow: str, created_at: int, status: str, step: str, rows,
                 flow_version: str | None = None) -> None:
        tally = self.tallies.get(flow) or self.tallies.setdefault(flow, Tally(flow))
        deltas(tally, created_at, None, (status, step), _entries(rows), None,
               (None, flow_version))

    def rows(self) -> list[dict]:
        return [row for flow in sorted(self.tallies) for row in self.tallies[flow].rows()]


def _entries(rows):
    for row in rows:
        # Only the entries that begin a visit need their values read.
        values = (json.loads(row.values_json) if row.type in ("init", "transition")
                  else None)
        yield {"type": row.type, "values": values, "_at": row.at, "_step": row.step}
