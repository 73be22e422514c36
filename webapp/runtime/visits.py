"""History: the state each step visit began with, what changed between visits, and fork.

The runtime records a visit (``workflow_visit``: seq, step, when, the audit-log entry that
began it, the state) at each transition checkpoint of the engine, and writes it in the commit
the job makes anyway (no extra commit per step). A visit's state is stored only when it
differs from the previous visit's (else NULL: "as before"), so a step that changes nothing
costs a row of a few dozen bytes. Imported snapshots get one row per visit their log shows,
marked ``unknown``. ``TINYFLOW_HISTORY`` off: no visits are recorded (a fork still records
its first one, which names its origin), and fork works from the current visit only.

A fork is a new workflow that begins at visit k's step with the state it had then (or a given
one) and nothing cached, so that visit's actions run again; its log begins with
``forked {"from": <id>, "seq": k}`` and the original is not touched.
"""
from __future__ import annotations

import json
import uuid

from .. import store as storage
from . import answers, rules
from .errors import Conflict, Invalid, NotFound
from .unit import public

MAX_SEQ = 2 ** 62


class HistoryOff(Conflict):
    """Fork from a visit before the current one with TINYFLOW_HISTORY off (409)."""

    code = "history_off"


class StateUnknown(Conflict):
    """Fork from a visit whose state was never recorded (an imported snapshot's) (409)."""

    code = "state_unknown"


_unit = public      # see unit.public


def diff(old, new, path: tuple = ()) -> list[dict]:
    """What changed from ``old`` to ``new`` (JSON values): ``[{"path": [keys...], "change":
    "added" | "removed" | "changed", "old"?, "new"?}]``, into nested objects; a list or a
    value that differs is one change."""
    if isinstance(old, dict) and isinstance(new, dict):
        changes = []
        for key, value in old.items():
            if key not in new:
                changes.append({"path": [*path, key], "change": "removed", "old": value})
        for key, value in new.items():
            if key not in old:
                changes.append({"path": [*path, key], "change": "added", "new": value})
            else:
                changes += diff(old[key], value, (*path, key))
        return changes
    if type(old) is not type(new) or old != new:
        return [{"path": list(path), "change": "changed", "old": old, "new": new}]
    return []


def visits_of_log(id: str, entries) -> list[dict]:
    """Visit rows (state unknown) for the visits an audit log shows: its ``init`` (seq 0),
    each ``transition`` (its ``stepSeq``) and a ``forked`` start."""
    found: dict[int, dict] = {}
    last = -1
    for n, entry in enumerate(entries, 1):
        kind, values = entry.get("type"), entry.get("values") or {}
        if kind == "init":
            seq, step = 0, values.get("defaultStep") or entry.get("_step")
        elif kind == "transition":
            seq, step = values.get("stepSeq"), values.get("to")
        elif kind == "forked":
            seq, step = values.get("seq"), entry.get("_step")
        else:
            continue
        if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < MAX_SEQ:
            seq = last + 1
        if not isinstance(step, str) or not step or len(step) > rules.MAX_ID:
            continue
        last = seq
        found[seq] = storage.visit_params(id, seq, step, entry.get("_at"), n, None,
                                          unknown=True)
    return [found[seq] for seq in sorted(found)]


class HistoryCommands:
    """The runtime's history commands (mixed into ``Commands``)."""

    @property
    def history_on(self) -> bool:
        return bool(self.settings["TINYFLOW_HISTORY"])

    # -- reading ----------------------------------------------------------------------------

    def _items(self, id: str, rows) -> list[dict]:
        """Visit rows as answers, each state resolved (a NULL one is the last stored)."""
        items = []
        carry: object = _UNREAD
        for row in rows:
            if row.unknown:
                text = None
            elif row.state_json is not None:
                text = row.state_json
            else:
                if carry is _UNREAD:
                    before = self.store.state_before(id, row.seq)
                    carry = None if before is None or before.unknown else before.state_json
                text = carry
            carry = text
            items.append({"seq": row.seq, "step": row.step, "at": answers.iso(row.at),
                          "state": None if text is None else json.loads(text),
                          "state_known": text is not None, "log_n": row.log_n,
                          **({"forked_from": row.forked_from, "forked_seq": row.forked_seq}
                             if row.forked_from else {})})
        return items

    @_unit
    def history(self, id: str, cursor: str | None = None, limit: int = 100) -> dict:
        """``{"items": [{"seq", "step", "at", "state", "state_known", "log_n"}],
        "next_cursor", "recording"}``: the visits oldest first, each with the state it began
        with (``state`` null and ``state_known`` false where it was never recorded)."""
        limit = rules.limit(limit, 1000)
        after = rules.decode_cursor(cursor) if cursor else -1
        if isinstance(after, bool) or not isinstance(after, int):
            raise Invalid("the cursor is not one this server gave out")
        self._get(id)
        rows = self.store.visits(id, after, limit + 1)
        more = len(rows) > limit
        items = self._items(id, rows[:limit])
        return {"items": items,
                "next_cursor": rules.encode_cursor(items[-1]["seq"]) if more else None,
                "recording": self.history_on}

    @_unit
    def visit(self, id: str, seq: int) -> dict:
        """One visit with the one before it and the diff between their states:
        ``{**item, "previous": item | None, "diff": [...] | None, "current": bool}``."""
        record = self._get(id)
        row = self.store.visit(id, seq)
        current = self._current_seq(record)
        if row is None and seq == current:    # not recorded (history off): the current one
            return {"seq": seq, "step": record.step, "at": None, "state": None,
                    "state_known": False, "log_n": None, "previous": None, "diff": None,
                    "current": True}
        if row is None:
            raise NotFound(f"workflow {id!r} has no recorded visit {seq}")
        before = self.store.visits_before(id, seq)
        items = self._items(id, ([before] if before is not None else []) + [row])
        item, previous = items[-1], (items[0] if before is not None else None)
        changes = None
        if previous is not None and previous["state_known"] and item["state_known"]:
            changes = diff(previous["state"], item["state"])
        return {**item, "previous": previous, "diff": changes, "current": seq == current}

    @_unit
    def visit_at(self, id: str, n: int) -> dict | None:
        """The visit audit-log entry ``n`` belongs to (as ``history``'s items), or None."""
        self._get(id)
        row = self.store.visit_at_log(id, n)
        return None if row is None else self._items(id, [row])[0]

    @_unit
    def forks(self, id: str) -> dict:
        """``{"origin": {"id", "seq"} | None, "forks": [{"id", "seq", "at"}]}``."""
        self._get(id)
        first = self.store.origin(id)          # a fork's first visit names its origin
        origin = None if first is None else {"id": first.forked_from, "seq": first.forked_seq}
        return {"origin": origin,
                "forks": [{"id": row.workflow_id, "seq": row.forked_seq,
                           "at": answers.iso(row.at)} for row in self.store.forks(id)]}

    @staticmethod
    def _current_seq(record: storage.Record) -> int:
        try:
            seq = json.loads(record.cache).get("_seq", 0)
        except (ValueError, AttributeError):
            return 0
        return seq if isinstance(seq, int) else 0

    # -- fork -------------------------------------------------------------------------------

    @_unit
    def fork(self, id: str, seq, new_id: str | None = None, state: dict | None = None,
             now=None):
        """A new workflow from visit ``seq`` of ``id``: at its step, with the state it began
        with (or ``state``), run like any start; its record. Unknown visit -> NotFound; a
        visit before the current one with history off -> HistoryOff; a visit whose state was
        never recorded (and no ``state`` given) -> StateUnknown; id taken -> Conflict."""
        if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < MAX_SEQ:
            raise Invalid("seq must be a visit's number (a whole number from 0)")
        state = rules.state(state, int(self.settings["TINYFLOW_MAX_DEPTH"]))
        record = self._get(id)
        current = self._current_seq(record)
        cls = self.flow_class(record.flow)
        row = self.store.visit(id, seq) if self.history_on else None
        item = self._items(id, [row])[0] if row is not None else None
        if item is not None and (item["state_known"] or state is not None):
            step, base = item["step"], item["state"]
        elif seq == current:
            # Its state when it began is not known (history off, or an imported snapshot):
            # the current visit starts again from the workflow's state now.
            step, base = record.step, answers.document(record, [])["state"]
        elif seq > current:
            raise NotFound(f"workflow {id!r} has no visit {seq} (its current visit is "
                           f"{current})")
        elif not self.history_on:
            raise HistoryOff(f"history is off (TINYFLOW_HISTORY): workflow {id!r} can be "
                             f"forked from its current visit ({current}) only")
        elif item is None:
            raise NotFound(f"workflow {id!r} has no recorded visit {seq}")
        else:
            raise StateUnknown(f"the state visit {seq} of workflow {id!r} began with was "
                               "never recorded (an imported snapshot): fork from the current "
                               f"visit ({current}), or give the state")
        if step not in cls.__workflow__.steps:
            raise Conflict(f"the flow {record.flow!r} has no step {step!r} any more")
        if new_id is None:
            new_id = uuid.uuid4().hex[:16]
        elif rules.check_id(new_id, error=Invalid) or self.store.exists([new_id]):
            raise Conflict(f"workflow {new_id!r} already exists")
        now = self._now(now)
        start_state = state if state is not None else base
        wf = cls._forked(step, start_state, seq, now, **{"from": id, "seq": seq})
        job = self._new_job(wf, new_id, record.flow, now)
        job.record_visit(seq, step, wf.to_json()["logs"][0]["_at"], 1, start_state,
                         forked_from=id, forked_seq=seq)
        return self._launch(job, now)


_UNREAD = object()
