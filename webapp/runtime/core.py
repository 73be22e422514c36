"""``Runtime``: many workflows in one database — start, run, deliver events, fire timers.

It carries its settings, its store and its clock, so a script, a task queue or another web
framework can use it with no Flask app (the Flask app keeps one in ``app.extensions``). It is
safe to share between threads: each thread gets its own database session. ``now`` arguments
are epoch seconds; ``None`` means the runtime's clock.

Over 400 lines because every command shares one unit of work (``_change``: load, lease,
commit, run, redo on a lost race) and one shutdown and heartbeat; the rules, answers, commits
and the runner loop live in modules of their own.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from contextlib import nullcontext

from .. import store as storage
from ..engine import Status, Workflow, WorkflowClosed
from ..engine.workflow import ACTIVE as _ACTIVE
from ..engine.workflow import to_seconds
from . import answers, rules, versions
from .errors import (Broken, Conflict, Invalid, NotFound, Unavailable, VersionMismatch,
                     broken)
from .registry import load_flows
from .batches import BatchCommands
from .visits import HistoryCommands
from .schedules import ScheduleCommands
from .stats import StatsCommands
from .search import SearchCommands, attributes
from .settings import SETTINGS, Settings
from .unit import Heartbeat, Job, Stopping, ms, public

log = logging.getLogger("webapp.runtime")

_REDO = 5                 # version misses tolerated before giving up
_STATUSES = frozenset(Status)


def owner_id(kind: str = "call") -> str:
    """A lease owner name that says who holds it: kind, host, process, and a unique tail."""
    return f"{kind}:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


_unit = public      # see unit.public


class Commands(ScheduleCommands, HistoryCommands, StatsCommands, SearchCommands,
               BatchCommands):
    """The runtime's commands and reads on ``store.Record``s (``describe(record)`` is the
    API's dict): what the views and the runner use. ``Runtime`` is the same, answering with
    the API's dicts. Errors are the RuntimeProblem subclasses, each with the ``status`` and
    ``code`` the API answers."""

    def __init__(self, database_url: str | None = None, flows=None, clock=None, *,
                 settings=None, store: storage.Store | None = None, context=None):
        """``settings``: a mapping of TINYFLOW_* names to values; missing ones come from the
        environment or their defaults. A full mapping (the Flask app's config) is used as it
        is, so changing it later takes effect."""
        if settings is None or not all(s.name in settings for s in SETTINGS):
            settings = Settings.load(settings)
        if flows is not None:
            settings["TINYFLOW_FLOWS"] = [flows] if isinstance(flows, str) else list(flows)
        if clock is not None:
            settings["TINYFLOW_CLOCK"] = clock
        if database_url is not None:
            settings["TINYFLOW_DATABASE_URL"] = database_url
        self.settings = settings
        if store is None:
            url = settings["TINYFLOW_DATABASE_URL"]
            if not url:
                raise ValueError("Runtime needs a database URL (or TINYFLOW_DATABASE_URL)")
            store = storage.Store.connect(url, settings)
        self.store = store
        self.context = context or nullcontext   # the Flask app's app_context, in the app
        self.flows: dict[str, type] = load_flows(settings["TINYFLOW_FLOWS"])
        # Set by shutdown(): runs hand their workflow back before their next action, and
        # runners claim nothing more.
        self.stopping = threading.Event()
        self.heartbeat = Heartbeat(self.context)
        self._active = 0                  # runs in progress (jobs between their commits)
        self._active_lock = threading.Condition()
        if not settings["TINYFLOW_READ_ONLY"]:
            self.sync_declared_schedules()     # the flows' own ``schedules = [...]``
            self.sync_search_index()           # workflows not indexed by what flows declare

    # -- the clock and the flows ---------------------------------------------------------

    def clock(self) -> float:
        """The runtime's time now, in epoch seconds."""
        settings = self.settings
        return float(settings["TINYFLOW_CLOCK"]()) + float(settings["TINYFLOW_CLOCK_OFFSET"])

    def _now(self, now=None) -> float:
        if now is None:
            return self.clock()
        try:
            return to_seconds(now)
        except (TypeError, ValueError) as error:
            raise Invalid(str(error)) from None

    @property
    def lease_ms(self) -> int:
        return ms(float(self.settings["TINYFLOW_LEASE_SECONDS"]))

    def flow_class(self, name: str) -> type:
        cls = self.flows.get(name)
        if cls is None:
            raise NotFound(f"no flow named {name!r} (known: {', '.join(sorted(self.flows))})")
        return cls

    def check_json(self, value, what: str) -> None:
        rules.check_json(value, what, int(self.settings["TINYFLOW_MAX_DEPTH"]))

    def _job(self, wf: Workflow, record: storage.Record, owner: str, now: float) -> Job:
        return Job.of(wf, record, owner, store=self.store, now=now, lease_ms=self.lease_ms,
                      heartbeat=self.heartbeat, stopping=self.stopping,
                      clock=self.clock, history=self.history_on, stats=self.stats_on)

    def _new_job(self, wf: Workflow, id: str, flow: str, now: float) -> Job:
        """The job of a new workflow (its row not inserted yet)."""
        return Job(wf, id=id, flow=flow, owner=owner_id(), version=None, log_count=0,
                   created_at=ms(now), store=self.store, now=now, lease_ms=self.lease_ms,
                   heartbeat=self.heartbeat, stopping=self.stopping, clock=self.clock,
                   history=self.history_on, flow_version=type(wf).version,
                   stats=self.stats_on)

    def _running(self, job: Job, now: float) -> None:
        """``job.run(now)``, counted as a run in progress (``shutdown`` waits for them)."""
        with self._active_lock:
            self._active += 1
        try:
            job.run(now)
        finally:
            with self._active_lock:
                self._active -= 1
                self._active_lock.notify_all()

    def shutdown(self, timeout: float | None = None) -> bool:
        """Stop: runners claim nothing more and give back what they claimed and have not run;
        each run in progress finishes the action it is in, commits it and hands its workflow
        back (unleased, due at once) before its next action. Waits up to ``timeout`` seconds
        for the runs in progress; whether they all ended."""
        self.stopping.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._active_lock:
            while self._active:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._active_lock.wait(left)
        return True

    @staticmethod
    def _noted(job: Job, error: BaseException) -> storage.Record:
        """The record of a change that was committed, with a note saying that the run after
        it could not finish (a runner finishes it once the lease expires)."""
        if isinstance(error, Stopping):
            why = "the server is stopping"
        else:
            why = f"{type(error).__name__}: {error}"
        log.warning("workflow %s: committed, but the run after it could not finish (%s); "
                    "a runner finishes it", job.id, why)
        return job.written.changed(note=(
            f"The change was committed, but the run after it could not finish ({why}); "
            "a runner finishes it."))

    def _engine(self, record: storage.Record) -> Workflow:
        """The engine instance of a record, without its audit log (only new entries get
        appended). A record that does not hold a snapshot its flow can load -> Broken."""
        cls = self.flow_class(record.flow)
        doc = answers.document(record, [])
        try:
            return cls.from_json(doc)
        except (ValueError, TypeError) as error:
            raise broken(record.id, error) from None

    # -- versions (see ``versions``) ----------------------------------------------------------

    def held(self, record: storage.Record) -> str | None:
        """Why the loaded code holds ``record`` (None: it is not held). A closed workflow
        (finished, cancelled) runs no code again: never held."""
        if record.status in (Status.FINISHED, Status.CANCELLED):
            return None
        return versions.held(self.flows.get(record.flow), record)

    def _loaded(self, record: storage.Record, now: float):
        """``(engine instance, the flow version it runs on)`` for a record the loaded code
        accepts, migrating its snapshot if it must (the migration is logged). Held ->
        VersionMismatch; a migration that fails -> versions.MigrateFailed."""
        cls = self.flow_class(record.flow)
        found = record.flow_version
        if found is None or found in versions.accepted(cls):
            return self._engine(record), found
        if record.migrate_error is None and versions.migrates(cls):
            wf = versions.migrated(cls, answers.document(record, []), found)
            versions.note(wf, found, cls.version, now)
            return wf, cls.version
        raise versions.mismatch(cls, record)

    def _keep_failure(self, record: storage.Record, error: Exception) -> storage.Record:
        """Keep why ``record``'s migration failed (it is held from now on)."""
        log.error("workflow %s: migrate() failed, it is held: %s", record.id, error)
        try:
            self.store.hold(record.id, record.version, str(error))
        except (storage.Busy, storage.Stale):
            pass                      # the next runner or command tries (and keeps) it again
        return record.changed(migrate_error=str(error))

    def _held_engine(self, record: storage.Record) -> Workflow:
        """The engine instance of a held workflow, to cancel it: its snapshot as it is, even
        where it sits in a step the loaded code no longer has."""
        try:
            return self._engine(record)
        except Broken:
            cls = self.flow_class(record.flow)
            doc = answers.document(record, [])
            try:
                wf = cls.from_json({**doc, "step": cls.first_step})
            except (ValueError, TypeError) as error:
                raise broken(record.id, error) from None
            wf._tw.step = doc["step"]
            return wf

    @_unit
    def migrate(self, flow: str, from_version: str | None = None, *, dry_run: bool = False,
                batch: int = 100, now=None) -> dict:
        """Apply ``migrate()`` of the loaded ``flow`` to each of its open workflows that
        started on a version it does not accept (``from_version``: only those), ``batch``
        at a time: ``{"flow", "version", "moved": [ids], "failed": [{"id",
        "from_version", "error"}], "dry_run"}``. A failure keeps its error on the workflow
        (held); ``dry_run`` changes nothing."""
        cls = self.flow_class(flow)
        if not versions.migrates(cls):
            raise Invalid(f"flow {flow!r} (version {cls.version}) has no migrate() classmethod")
        now = self._now(now)
        moved: list[str] = []
        failed: list[dict] = []
        after = ""
        while True:
            records = self.store.not_of(flow, versions.accepted(cls), after, batch,
                                        from_version)
            self.store.fresh()
            if not records:
                break
            after = records[-1].id
            for record in records:
                problem = self._migrate_one(cls, record, now, dry_run)
                if problem is None:
                    moved.append(record.id)
                else:
                    failed.append({"id": record.id, "from_version": record.flow_version,
                                   "error": problem})
        return {"flow": flow, "version": cls.version, "moved": moved, "failed": failed,
                "dry_run": dry_run}

    def _migrate_one(self, cls, record: storage.Record, now: float, dry_run: bool):
        """Migrate one workflow; None, or why it could not be."""
        try:
            wf = versions.migrated(cls, answers.document(record, []), record.flow_version)
        except versions.MigrateFailed as error:
            if not dry_run:
                self._keep_failure(record, error)
            return str(error)
        except Broken as error:
            return str(error)
        if dry_run:
            return None
        versions.note(wf, record.flow_version, cls.version, now)
        job = self._job(wf, record, owner_id("migrate"), now)
        job.flow_version = cls.version
        if (record.lease_owner is not None and record.lease_expires is not None
                and record.lease_expires >= ms(now)):
            return f"it is being run by {record.lease_owner}; run migrate again"
        try:
            job.commit(lease=False)
        except storage.Stale:
            return "it changed while it was migrated; run migrate again"
        except Unavailable as error:
            return str(error)
        return None

    # -- commands ---------------------------------------------------------------------------

    @_unit
    def start(self, flow: str, state: dict | None = None, id: str | None = None, now=None):
        """Create a workflow of ``flow`` and run it until it waits or ends; its record.
        Unknown flow -> NotFound; id taken -> Conflict; state not a dict -> Invalid."""
        return self._start(flow, state, id, now)

    def _start(self, flow: str, state: dict | None, id: str | None, now):
        cls = self.flow_class(flow)
        state = rules.state(state, int(self.settings["TINYFLOW_MAX_DEPTH"]))
        if id is None:
            id = uuid.uuid4().hex[:16]
        elif rules.check_id(id, error=Invalid) or self.store.exists([id]):  # None or raises
            raise Conflict(f"workflow {id!r} already exists")
        now = self._now(now)
        wf = cls(state=state, now=now)
        job = self._new_job(wf, id, flow, now)
        if job.history:          # the first visit: seq 0, begun by the log's "init"
            job.record_visit(0, wf.step, wf.to_json()["logs"][0]["_at"], 1, wf.state)
        return self._launch(job, now)

    def _launch(self, job: Job, now: float):
        """Run a new workflow's job (its first commit inserts the row); its record."""
        id = job.id
        try:
            # Its first commit inserts the row: before its first action runs (the id is
            # claimed, leased, so a concurrent start with the same id gets Conflict before
            # running anything), or at its pause or end if it has no action before those.
            self._running(job, now)
        except storage.Duplicate:
            if job.version is None:
                raise Conflict(f"workflow {id!r} already exists") from None
            return self._noted(job, Conflict("an idempotency clash"))
        except storage.Stale:
            return self._get(id)
        except Exception as error:
            if job.version is None:        # nothing was stored: the caller may simply retry
                raise
            return self._noted(job, error)
        return job.written

    @_unit
    def send(self, id: str, name: str, payload=None, idempotency_key: str | None = None,
             now=None, outcome: dict | None = None):
        """Deliver event ``name`` (wf.send) then run. Same idempotency key twice: delivered
        once, the second call returns the record unchanged. ``outcome`` (a dict), when given,
        gets ``"delivered"``: ``"wait"``, ``"handler"`` or ``"inbox"`` (none when the key was
        seen before)."""
        rules.event_name(name)
        self.check_json(payload, "the event's payload")
        rules.idempotency_key(idempotency_key)

        most = int(self.settings["TINYFLOW_MAX_INBOX"])

        def mutate(wf, now):
            try:
                delivered = wf.send(name, payload, now=now)
            except WorkflowClosed as error:
                raise Conflict(str(error)) from None
            except Exception as error:    # the flow's handler refused it
                raise Invalid(str(error) or type(error).__name__) from error
            if delivered == "inbox" and len(wf.to_json().get("inbox") or ()) > most:
                raise Invalid(f"workflow {id!r} already holds {most} events that nothing "
                              f"waits for (TINYFLOW_MAX_INBOX); event {name!r} was not "
                              "delivered")
            attempt["delivered"] = delivered
        # How it was delivered is said only once this call's commit holds it: a commit that
        # lost to the same key sent elsewhere delivered nothing (the answer: "duplicate").
        attempt: dict = {}
        return self._change(id, mutate, now, event_key=idempotency_key,
                            committed=(None if outcome is None
                                       else lambda: outcome.update(attempt)))

    @_unit
    def resolve(self, id: str, resume_id: str, payload=None, now=None):
        """Resolve one open wait by resumeId, then run. Unknown resumeId -> NotFound."""
        self.check_json(payload, "the payload")

        def mutate(wf, now):
            try:
                wf.resolve(resume_id, payload, now=now)
            except WorkflowClosed as error:
                raise Conflict(str(error)) from None
            except KeyError:
                raise NotFound(f"workflow {id!r} has no open wait {resume_id!r}") from None
        return self._change(id, mutate, now)

    @_unit
    def fire_timer(self, id: str, resume_id: str, now=None):
        """Fire the open timer ``resume_id`` now, then run. Not an open timer -> NotFound."""
        def mutate(wf, now):
            if not any(p["resumeId"] == resume_id and p["type"] == "timer"
                       for p in wf.pending()):
                raise NotFound(f"workflow {id!r} has no open timer {resume_id!r}")
            wf.resolve(resume_id, None, now=now)
        return self._change(id, mutate, now)

    @_unit
    def advance(self, id: str, seconds: float, now=None):
        """Run the workflow as if ``seconds`` had passed: every timer and deadline that falls
        due within them fires, each at its own due time, and its clock stays that far
        ahead."""
        seconds = rules.seconds(seconds)

        def mutate(wf, now):
            if wf.status not in _ACTIVE:
                raise Conflict(f"cannot advance the timers of a {wf.status} workflow")
            # The engine fires each wait due within the seconds at its own due time, one
            # after the other, and keeps the workflow's clock that far ahead.
            wf._advance_clock(seconds, now=now)
        return self._change(id, mutate, now)

    @_unit
    def cancel(self, id: str, reason: str | None = None, now=None, *,
               idempotency_key: str | None = None):
        """Cancel (closed workflow -> Conflict). ``idempotency_key`` (a batch's): kept with
        the change; a workflow that holds it already is answered as it is."""
        rules.check_text(reason, "the reason", error=Invalid)
        rules.idempotency_key(idempotency_key)

        def mutate(wf, now):
            try:
                wf.cancel(reason, now=now)
            except WorkflowClosed as error:
                raise Conflict(str(error)) from None
        return self._change(id, mutate, now, run=False, held_ok=True,
                            event_key=idempotency_key)

    @_unit
    def retry(self, id: str, now=None, *, idempotency_key: str | None = None):
        """Retry a failed workflow and run it (not failed -> Conflict); ``idempotency_key``
        as for ``cancel``."""
        rules.idempotency_key(idempotency_key)

        def mutate(wf, now):
            try:
                wf.retry(now=now)
            except ValueError as error:
                raise Conflict(str(error)) from None
        return self._change(id, mutate, now, event_key=idempotency_key)

    def _change(self, id: str, mutate, now=None, *, run: bool = True,
                event_key: str | None = None, held_ok: bool = False, committed=None):
        """Load workflow ``id``, apply ``mutate(wf, now)`` (which may return the time to run
        at), commit that together with a lease, run and commit; redo from a fresh load when
        someone else wrote the row in between. Nothing is committed when ``mutate`` raises.
        ``committed()`` is called once this call's change is committed (not when another
        writer's change with the same idempotency key won).
        A held workflow (see ``versions``) -> VersionMismatch, unless ``held_ok`` (cancel)."""
        now = self._now(now)
        owner = owner_id()
        for _ in range(_REDO):
            record = self._unleased(id, owner, now)
            if event_key is not None and self.store.has_event_key(id, event_key):
                return record
            try:
                wf, flow_version = self._loaded(record, now)
            except (VersionMismatch, versions.MigrateFailed) as error:
                if isinstance(error, versions.MigrateFailed):
                    record = self._keep_failure(record, error)
                    error = versions.mismatch(self.flow_class(record.flow), record)
                if not held_ok:
                    raise error from None
                wf, flow_version = self._held_engine(record), record.flow_version
            run_at = mutate(wf, now)
            job = self._job(wf, record, owner, now)
            job.flow_version = flow_version
            try:
                job.commit(lease=run, event_key=event_key)
            except storage.Stale:
                continue
            except storage.Duplicate:     # the same idempotency key, delivered meanwhile
                return self._get(id)
            if committed is not None:
                committed()
            if run:
                try:
                    self._running(job, now if run_at is None else run_at)
                except storage.Stale:     # our lease expired and another runner took over
                    return self._get(id)
                except Exception as error:
                    # The change itself was committed (accepted): whatever stopped the run
                    # after it (a locked or full disk, a bug), the answer says so and a runner
                    # finishes the run once our lease expires. Answering 5xx would invite a
                    # retry that applies it twice.
                    return self._noted(job, error)
            return job.written
        raise Unavailable(f"workflow {id!r} kept changing; try again")

    def _unleased(self, id: str, owner: str, now: float) -> storage.Record:
        """The record, once no other live runner holds its lease (waits a little, then
        Unavailable)."""
        patience = float(self.settings["TINYFLOW_BUSY_WAIT"])
        started, clock_then = time.monotonic(), self.clock()
        while True:
            record = self._get(id)
            at = now + (self.clock() - clock_then)      # the operation's clock, as a Job's
            if (record.lease_owner in (None, owner) or record.lease_expires is None
                    or record.lease_expires < ms(at)):
                return record
            if time.monotonic() - started >= patience:
                raise Unavailable(f"workflow {id!r} is being run by {record.lease_owner}; "
                                  "try again")
            self.store.fresh()     # end the read, so the next one sees new commits
            time.sleep(0.02)

    @_unit
    def run_due(self, limit: int = 100, now=None, owner: str | None = None) -> int:
        """One pass of a worker: claim (lease) and run workflows whose wake_at is due or that
        are ``running``; how many ran. A database too busy to claim or run any ->
        Unavailable (not "idle")."""
        given = now is not None
        now = self._now(now)
        owner = owner or owner_id("runner")
        if self.stopping.is_set():
            return 0
        try:
            records = self.store.claim_due(ms(now), versions.claim_spec(self.flows), owner,
                                           self.lease_ms, limit)
        except storage.Busy as error:
            raise Unavailable(f"database busy: {error}") from None
        ran = 0
        began = time.monotonic()
        for n, record in enumerate(records):
            if self.stopping.is_set():
                self._release(records[n:], owner)
                break
            # Each row runs at the operation's clock now, not the claim's: its lease is
            # checked (and renewed when old) against the time it really starts.
            at = now + (time.monotonic() - began) if given else self.clock()
            try:
                try:
                    wf, flow_version = self._loaded(record, at)
                except VersionMismatch:       # claimed by an older claim rule: leave it
                    self._release([record], owner)
                    continue
                except versions.MigrateFailed as error:
                    self._keep_failure(record, error)
                    continue
                job = self._job(wf, record, owner, at)
                job.flow_version = flow_version
                self._running(job, at)
                ran += 1
            except Stopping:
                ran += 1
                self._release(records[n + 1:], owner)
                break
            except Broken as error:
                # Retrying cannot help: park it (no wake time, no lease) and keep it as it is.
                log.error("%s; runners leave it alone until it is repaired", error)
                try:
                    self.store.park(record.id, record.version)
                except (storage.Busy, storage.Stale):
                    pass              # its lease expires; the next runner parks it
            except storage.Stale:
                log.info("workflow %s was taken over by another runner", record.id)
            except Unavailable:
                log.warning("database busy; workflow %s is left to a later run", record.id)
                if ran == 0:
                    raise
                break
            except Exception:
                # A bug in a flow or the engine: the lease is kept, so this workflow is tried
                # again only once it expires, not in a tight loop.
                log.exception("running workflow %s failed", record.id)
        return ran

    def _release(self, records, owner: str) -> None:
        """Give back the leases of claimed rows that will not be run here (shutting down)."""
        for record in records:
            try:
                self.store.release(record.id, record.version, owner)
            except Exception:        # its lease expires: the next runner takes it then
                log.warning("could not give back the lease of workflow %s", record.id,
                            exc_info=True)

    # -- reading ----------------------------------------------------------------------------

    def _get(self, id: str) -> storage.Record:
        return rules.found("workflow", id, self.store.load)

    @_unit
    def get(self, id: str) -> storage.Record:
        """The record of workflow ``id`` -> NotFound."""
        return self._get(id)

    @_unit
    def describe(self, record: storage.Record | str) -> dict:
        """The API's one-workflow dict (no audit log) for a record (or an id): the summary,
        ``state``, ``pending`` (as ``wf.pending()``), ``error``, ``log_count``, and what a
        reader needs at a glance: ``cancel_reason`` (why a cancelled workflow was cancelled),
        ``last_error`` (while a failed action waits for its next attempt, the last attempt's
        ``{"type", "message", "attempt", "next_attempt_at"}``) and ``clock_offset`` (seconds
        the workflow's own clock runs ahead after "advance"; its log and due times are on
        that clock)."""
        if isinstance(record, str):
            record = self._get(record)
        held = self.held(record)
        try:   # a closed workflow has no open waits: no need to load it
            pending = self._engine(record).pending() if record.status in _ACTIVE else []
        except NotFound:           # its flow is not loaded here: its waits cannot be read
            pending = []
        except Broken:
            if not held and not (record.flow_version is not None and record.flow_version
                                 not in versions.accepted(self.flows[record.flow])):
                raise
            pending = []           # a snapshot of another version: read it as it is
        if record.status not in _STATUSES:
            raise broken(record.id, ValueError(f"unknown status {record.status!r}"))
        doc = answers.document(record, [])
        reason = None
        if record.status == Status.CANCELLED:
            rows = self.store.log_rows(record.id, type="cancelled", limit=1, newest=True)
            if rows:
                reason = answers.entry(rows[-1])["values"].get("reason")
        found = {**answers.summary(record), "state": doc["state"], "pending": pending,
                 "error": doc.get("error"), "log_count": record.log_count,
                 "cancel_reason": reason, "last_error": answers.last_error(pending),
                 "clock_offset": answers.clock_offset(doc["cache"]), "held": held,
                 "migrate_error": record.migrate_error}
        if record.note:            # committed, but the run after it could not finish
            found["note"] = record.note
        return found

    summary = staticmethod(answers.summary)

    def where(self, flow=(), status=(), q: str | None = None, version=(), step=(),
              state=None) -> dict:
        """The list's filters checked (``rules.filters``) and in the store's terms: the
        keyword arguments of ``store.page``, ``store.count_by_status`` and ``store._filters``
        (``flows``, ``statuses``, ``q``, ``versions``, ``steps``, ``state``). Each of
        ``flow``, ``status``, ``version`` and ``step`` is a name or several; ``state`` is
        ``{path: value}`` of search attributes that must all match."""
        def names(value):
            return [value] if isinstance(value, str) else list(value or ())
        flows, statuses, versions, steps = names(flow), names(status), names(version), names(step)
        terms = rules.filters(versions, statuses, q, flows=flows, steps=steps, state=state,
                              known=self.flows)
        return {"flows": flows, "statuses": statuses, "q": q, "versions": versions,
                "steps": steps, "state": terms}

    def attributes(self, record: storage.Record) -> dict:
        """A list item's ``attributes``: ``{path: value}`` of its flow's declared paths."""
        return attributes(self.flows.get(record.flow), record.state)

    @_unit
    def list(self, flow=(), status=(), q: str | None = None, cursor: str | None = None,
             limit: int = 50, version=(), step=(),
             state=None) -> tuple[list[storage.Record], str | None]:
        """Workflows newest-updated first with keyset pagination: (records, next_cursor or
        None). ``flow``, ``status``, ``version`` (the flow version they started on) and
        ``step`` are a name or several; ``state`` is ``{path: value}`` of search attributes
        (exact matches, all of them)."""
        where = self.where(flow, status, q, version, step, state)
        limit = rules.limit(limit)
        after = rules.keyset_cursor(cursor)
        records = self.store.page(after=after, limit=limit + 1,
                                  **where)
        more = len(records) > limit
        records = records[:limit]
        return records, (rules.encode_cursor([records[-1].updated_at, records[-1].id])
                         if more else None)

    @_unit
    def status_counts(self, flows=(), q: str | None = None, versions=(), steps=(),
                      state=None) -> dict[str, int]:
        """``{status: count}`` over the workflows matching the flow filter and id search (and
        the version, step and search-attribute filters)."""
        where = self.where(flows, (), q, versions, steps, state)
        del where["statuses"]
        return self.store.count_by_status(**where)

    @_unit
    def version_counts(self, flow: str) -> dict[str | None, int]:
        """``{flow_version: count}`` of the workflows of ``flow`` (None: unknown): the flow
        statistics' version counters (a lookup at any size) while they are kept
        (TINYFLOW_STATS), else counted."""
        if self.stats_on:
            return self.store.stat_versions(flow)
        return self.store.count_by_version(flow)

    @_unit
    def logs(self, id: str, type: str | None = None, step: str | None = None,
             cursor: str | None = None, limit: int = 100,
             newest: bool = False) -> tuple[list[dict], str | None]:
        """Audit-log entries oldest first, each ``{"n", "type", "values", "_at", "_step"}``
        (``n`` is its 1-based position in the workflow's log, stable, used for ``#log-N``).
        ``newest``: the last ``limit`` entries that match (then no cursor)."""
        limit = rules.limit(limit, 1000)
        rules.filters((type or "", step or ""))
        after = rules.decode_cursor(cursor) if cursor else 0
        if isinstance(after, bool) or not isinstance(after, int):
            raise Invalid("the cursor is not one this server gave out")
        self._get(id)
        if newest:
            rows = self.store.log_rows(id, type, step, limit=limit, newest=True)
            return [answers.entry(r, n=True) for r in rows], None
        rows = self.store.log_rows(id, type, step, after, limit + 1)
        more = len(rows) > limit
        items = [answers.entry(r, n=True) for r in rows[:limit]]
        return items, rules.encode_cursor(items[-1]["n"]) if more else None

    @_unit
    def all_logs(self, id: str) -> list[dict]:
        """The whole audit log as snapshot entries ``{type, values, _at, _step}`` (an export;
        pages read ``recent_logs``, which costs what they show)."""
        self._get(id)
        return self._whole_log(id)

    def _whole_log(self, id: str) -> list[dict]:
        return [answers.entry(r) for r in self.store.log_rows(id)]

    @_unit
    def recent_logs(self, id: str, limit: int = 1000) -> tuple[list[dict], int]:
        """The last ``limit`` audit-log entries (snapshot format, oldest first) and how many
        the whole log holds: what a page or a diagram draws, whatever the history's length
        (a read of ``limit`` rows by the log's key, not of the whole log)."""
        record = self._get(id)
        first = max(0, record.log_count - limit)
        rows = self.store.log_rows(id, after=first, limit=limit)
        return [answers.entry(r) for r in rows], record.log_count

    @_unit
    def snapshot(self, id: str) -> dict:
        """The whole snapshot document (engine format, audit log included)."""
        record = self._get(id)
        return answers.document(record, self._whole_log(id))

    @_unit
    def import_snapshots(self, data, flow: str | None = None, *,
                         hint: str | None = None) -> list[str]:
        """A snapshot, or a list of ``[runId, snapshot]`` pairs; the ids stored (see
        ``importer``). All or nothing."""
        from .importer import import_snapshots
        return import_snapshots(self, data, flow, hint=hint)


class Runtime(Commands):
    """The runtime for any Python program: ``Runtime("sqlite:///app.sqlite",
    flows=["myflows"])``. Each command answers with the workflow as the JSON API does
    (``describe``); ``list`` and ``logs`` with ``{"items", "next_cursor"}``."""

    def start(self, flow: str, state: dict | None = None, id: str | None = None,
              now=None) -> dict:
        return self.describe(super().start(flow, state, id, now))

    def send(self, id: str, name: str, payload=None, idempotency_key: str | None = None,
             now=None) -> dict:
        outcome: dict = {}
        answer = self.describe(super().send(id, name, payload, idempotency_key, now, outcome))
        return {**answer, "delivered": outcome.get("delivered", "duplicate")}

    def resolve(self, id: str, resume_id: str, payload=None, now=None) -> dict:
        return self.describe(super().resolve(id, resume_id, payload, now))

    def fire_timer(self, id: str, resume_id: str, now=None) -> dict:
        return self.describe(super().fire_timer(id, resume_id, now))

    def advance(self, id: str, seconds: float, now=None) -> dict:
        return self.describe(super().advance(id, seconds, now))

    def cancel(self, id: str, reason: str | None = None, now=None) -> dict:
        return self.describe(super().cancel(id, reason, now))

    def retry(self, id: str, now=None) -> dict:
        return self.describe(super().retry(id, now))

    def get(self, id: str) -> dict:
        return self.describe(id)

    def fork(self, id: str, seq: int, new_id: str | None = None, state: dict | None = None,
             now=None) -> dict:
        return self.describe(super().fork(id, seq, new_id, state, now))

    def list(self, flow=(), status=(), q: str | None = None, cursor: str | None = None,
             limit: int = 50, version=(), step=(), state=None) -> dict:
        records, next_cursor = super().list(flow, status, q, cursor, limit, version, step,
                                            state)
        return {"items": [{**answers.summary(r), "held": self.held(r),
                           "attributes": self.attributes(r)} for r in records],
                "next_cursor": next_cursor}

    def logs(self, id: str, type: str | None = None, step: str | None = None,
             cursor: str | None = None, limit: int = 100) -> dict:
        items, next_cursor = super().logs(id, type, step, cursor, limit)
        return {"items": items, "next_cursor": next_cursor}
