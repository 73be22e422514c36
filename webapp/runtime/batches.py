"""Batches: one action (cancel, retry, send an event) over many workflows, carried out by the
runners in chunks, surviving their crashes, acting on each workflow at most once.

- **The set is fixed when the batch is made**: the chosen ids, or every workflow the list's
  filters match then, are its items (inserted with the batch, in one transaction).
- **Runners carry it out** (``run_batches``, from each pass of the ``Runner``): a runner leases
  the batch (as it leases a workflow: another takes over once the lease expires) and settles
  its next chunk of items (``TINYFLOW_BATCH_CHUNK``), then records their outcomes (``done``,
  ``skipped`` with the reason, ``failed`` with the error) and the counts in one transaction.
- **At most once per workflow.** Each change a batch makes carries the idempotency key
  ``batch:<batch id>``, stored with the workflow's change in its commit (the key is kept per
  workflow, so the pair names the batch and the workflow). A runner that finds a workflow
  holding the key (its change was committed, its outcome not yet: the runner before it
  died) records it as done without acting again; an event sent twice is a duplicate. A cancel
  is written in bulk instead: a chunk's cancels (each version-checked, each with its
  ``cancelled`` audit-log entry, as a single cancel writes) and their outcomes are one
  transaction, so they happen together or not at all.
"""
from __future__ import annotations

import json
import logging
import uuid

from .. import store as storage
from ..engine import Status, WorkflowClosed
from . import answers, rules, versions
from .errors import Broken, ConfirmNeeded, Conflict, Invalid, NotFound, RuntimeProblem, Unavailable
from .unit import ms, public

log = logging.getLogger("webapp.runtime")

STATUSES = tuple(status.value for status in Status)


def batch_key(batch_id: str) -> str:
    """The idempotency key a batch's changes carry (stored per workflow)."""
    return f"batch:{batch_id}"


class BatchCommands:
    """The runtime's batch commands (mixed into ``Commands``)."""

    # -- making one -------------------------------------------------------------------------

    @public
    def create_batch(self, action: str, ids=None, filter=None, *, event=None,
                     reason: str | None = None, confirm: bool = False,
                     now=None) -> storage.BatchRecord:
        """Make a batch of ``action`` over the workflows ``ids``, or over every one the
        list's ``filter`` matches now (``{"flow", "status", "version", "step", "q",
        "state"}``, checked by the list's own rule, ``Commands.where``); ``event``
        (``{"name", "payload"?}``) for a send, ``reason`` for a cancel. Empty selection,
        unknown action, a filter on nothing, a send without an event name, a search
        attribute no selected flow declares -> Invalid; over
        ``TINYFLOW_BATCH_CONFIRM_OVER`` workflows without ``confirm`` -> ConfirmNeeded."""
        action = rules.batch_action(action)
        if (ids is None) == (filter is None):
            raise Invalid("choose the workflows either by 'ids' or by 'filter' (one of them)")
        chosen = rules.batch_ids(ids) if ids is not None else None
        filter = rules.batch_filter(filter, STATUSES) if filter is not None else None
        filters = self.where(**filter) if filter is not None else None
        params: dict = {"filter": filter}
        if action == "send":
            params["event"] = self._batch_event(event)
        elif event is not None:
            raise Invalid(f"'event' is for a send, not a {action}")
        if action == "cancel":
            rules.check_text(reason, "the reason", error=Invalid)
            params["reason"] = reason
        elif reason is not None:
            raise Invalid(f"'reason' is for a cancel, not a {action}")
        most = int(self.settings["TINYFLOW_BATCH_CONFIRM_OVER"])

        def check(total: int) -> None:
            if total == 0:
                raise Invalid("the selection is empty: no workflow matches the filter")
            if total > most and not confirm:
                raise ConfirmNeeded(
                    f"this would {action} {total:,} workflows, more than "
                    f"TINYFLOW_BATCH_CONFIRM_OVER ({most:,}): confirm it (\"confirm\": true "
                    "in the API, --yes on the command line)")
        batch_id = uuid.uuid4().hex[:16]
        values = {"id": batch_id, "action": action, "params": storage.dumps(params),
                  "status": "running", "created_at": ms(self._now(now))}
        try:
            self.store.add_batch(values, ids=chosen, filters=filters, check=check)
        except storage.Busy as error:
            raise Unavailable(str(error)) from None
        return self.store.batch(batch_id)

    def _batch_event(self, event) -> dict:
        if not isinstance(event, dict) or not event.get("name"):
            raise Invalid("a send needs an event name: \"event\": {\"name\": ..., "
                          "\"payload\": ...}")
        unknown = [k for k in event if k not in ("name", "payload")]
        if unknown:
            raise Invalid(f"unknown event field {unknown[0]!r}: it takes 'name', 'payload'")
        rules.event_name(event["name"])
        self.check_json(event.get("payload"), "the event's payload")
        return {"name": event["name"], "payload": event.get("payload")}

    @public
    def count_batch(self, ids=None, filter=None) -> int:
        """How many workflows a batch with this choice would hold now (the pages' "N
        matching", the confirmation's count)."""
        if ids is not None:
            return len(rules.batch_ids(ids))
        return self.store.count_matching(self.where(**rules.batch_filter(filter, STATUSES)))

    # -- reading ----------------------------------------------------------------------------

    @public
    def batch(self, id: str) -> storage.BatchRecord:
        """The batch ``id`` -> NotFound."""
        return rules.found("batch", id, self.store.batch)

    @public
    def batches(self, cursor: str | None = None, limit: int = 50):
        """``(batch records newest first, next_cursor or None)``."""
        limit = rules.limit(limit)
        after = rules.keyset_cursor(cursor)
        records = self.store.batches(after, limit + 1)
        more = len(records) > limit
        records = records[:limit]
        return records, (rules.encode_cursor([records[-1].created_at, records[-1].id])
                         if more else None)

    @public
    def batch_items(self, id: str, outcome: str | None = None, cursor: str | None = None,
                    limit: int = 100):
        """``(items [{"id", "outcome", "message"}] by workflow id, next_cursor or None)``;
        ``outcome``: only those (``done``, ``skipped``, ``failed``)."""
        if outcome is not None and outcome not in storage.OUTCOMES:
            raise Invalid(f"unknown outcome {outcome!r}: use one of "
                          f"{', '.join(storage.OUTCOMES)}")
        limit = rules.limit(limit)
        rules.found("batch", id, self.store.batch)
        after = rules.decode_cursor(cursor) if cursor else ""
        if not isinstance(after, str):
            raise Invalid("the cursor is not one this server gave out")
        rows = self.store.batch_items(id, outcome, after, limit + 1)
        more = len(rows) > limit
        items = [{"id": r.workflow_id, "outcome": r.outcome, "message": r.message}
                 for r in rows[:limit]]
        return items, rules.encode_cursor(items[-1]["id"]) if more else None

    @staticmethod
    def batch_answer(record: storage.BatchRecord) -> dict:
        """The API's batch: its progress, and what it does to which workflows."""
        params = json.loads(record.params)
        return {"id": record.id, "action": record.action, "status": record.status,
                "total": record.total, "done": record.done, "skipped": record.skipped,
                "failed": record.failed, "created_at": answers.iso(record.created_at),
                "finished_at": answers.iso(record.finished_at),
                "filter": params.get("filter"), "event": params.get("event"),
                "reason": params.get("reason")}

    # -- carrying them out --------------------------------------------------------------------

    @public
    def run_batches(self, owner: str | None = None, now=None, chunk: int | None = None,
                    only: str | None = None) -> int:
        """One pass of a runner over the batches: lease the oldest unfinished one (``only``:
        that one, if nobody else holds it; a runner keeps the one its ``owner`` holds) and
        settle its next chunk; how many workflows were settled. A batch with none left is
        finished. Busy database -> Unavailable."""
        from .core import owner_id
        if self.stopping.is_set():
            return 0
        keep = owner is not None     # a runner keeps its lease from one pass to the next
        owner = owner or owner_id("batch")
        try:
            record = self.store.claim_batch(owner, ms(self.clock()), self.lease_ms, only)
            if record is None:
                return 0
            try:
                return self._settle_chunk(record, owner, now,
                                          chunk or int(self.settings["TINYFLOW_BATCH_CHUNK"]))
            finally:
                if not keep or self.stopping.is_set():
                    self.store.release_batch(record.id, owner)
        except storage.Busy as error:
            raise Unavailable(f"database busy: {error}") from None

    def _settle_chunk(self, record: storage.BatchRecord, owner: str, now, chunk: int) -> int:
        ids = self.store.pending_items(record.id, chunk)
        key = batch_key(record.id)
        params = json.loads(record.params)
        # Acted on already by a runner that died before it recorded the outcome.
        outcomes = {id: ("done", None) for id in self.store.keyed(key, ids)} if ids else {}
        todo = [id for id in ids if id not in outcomes]
        changes: list = []
        if record.action == "cancel":
            todo = self._bulk_cancel(todo, params.get("reason"), owner, now, outcomes, changes)
        for id in todo:
            if self.stopping.is_set():
                break                 # the rest stay to do: the next runner does them
            outcomes[id] = self._act_one(record.action, id, params, key, now)
        self.store.fresh()
        stale = self.store.settle(record.id, outcomes, owner=owner,
                                  lease_expires=ms(self.clock()) + self.lease_ms,
                                  now_ms=ms(self._now(now)), changes=changes)
        return len(outcomes) - len(stale)

    def _bulk_cancel(self, ids, reason, owner, now, outcomes, changes) -> list[str]:
        """Cancel what can be cancelled in one write: fill ``outcomes`` and ``changes`` (the
        rows ``store.settle`` writes); return the ids left to the one-at-a-time command (a
        workflow a live runner holds, one of another flow version or of a flow not loaded
        here)."""
        records = self.store.load_many(ids)
        now_s = self._now(now)
        lease_now = ms(self.clock())
        slow = []
        # when each one's open visit began (its cancel ends it): one read for the chunk
        began = self.store.visits_began(records) if self.stats_on else {}
        for id in ids:
            record = records.get(id)
            if record is None:
                outcomes[id] = ("skipped", f"no workflow {id!r}")
                continue
            cls = self.flows.get(record.flow)
            if (cls is None or (record.lease_owner is not None and record.lease_expires is not None
                                and record.lease_expires >= lease_now)
                    or (record.flow_version is not None
                        and record.flow_version not in versions.accepted(cls))):
                slow.append(id)
                continue
            try:
                wf = self._engine(record)
                wf.cancel(reason, now=now_s)
            except WorkflowClosed as error:
                outcomes[id] = ("skipped", str(error))
                continue
            except Broken as error:
                outcomes[id] = ("failed", str(error))
                continue
            job = self._job(wf, record, owner, now_s)
            values, new = job.values(lease=False)
            # the same rows a single cancel's commit writes: counters and search attributes
            changes.append((id, record.version, values,
                            storage.log_params(id, record.log_count + 1, new),
                            job.stat_rows(values, new, began=began.get(id))[0] or [],
                            job.attrs(values) or []))
            outcomes[id] = ("done", None)
        return slow

    def _act_one(self, action: str, id: str, params: dict, key: str, now) -> tuple:
        """Act on one workflow through the runtime's own command, the batch's key with it:
        ``(outcome, message)``. Not in a state for the action (closed, not failed, held, not
        there) -> skipped with the reason; refused or broken -> failed with the error."""
        from .core import Commands
        try:
            if action == "cancel":
                Commands.cancel(self, id, params.get("reason"), now=now, idempotency_key=key)
            elif action == "retry":
                Commands.retry(self, id, now=now, idempotency_key=key)
            else:
                event = params["event"]
                Commands.send(self, id, event["name"], event.get("payload"),
                              idempotency_key=key, now=now)
        except (Conflict, NotFound) as error:
            return "skipped", str(error)
        except RuntimeProblem as error:
            return "failed", str(error)
        except Exception as error:          # a bug in a flow or the engine: keep the reason
            log.exception("batch: %s of workflow %s failed", action, id)
            return "failed", f"{type(error).__name__}: {error}"
        return "done", None
