"""Storage: the tables (flask-sqlalchemy models) and ``Store``, the queries the runtime makes.

One row per workflow, its JSON parts as text; one row per audit-log entry, appended and never
rewritten. Times in the tables are epoch milliseconds (UTC). Every write is a version-checked
statement, so two writers never overwrite each other: the loser gets ``Stale`` and redoes.

A ``Store`` works on a SQLAlchemy scoped session: flask-sqlalchemy's ``db.session`` inside the
Flask app, or one of its own (``Store.connect(url)``) for a script with no Flask app.

Over 400 lines because every table and every statement the runtime makes live here, so that
nothing else writes SQL; each part (workflows, logs, counts, leases, schedules, logins) is a
section of its own.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, fields, replace

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import (BigInteger, Boolean, ForeignKey, Index, Insert, String, Text,
                        and_, bindparam, create_engine, delete, event, exc, exists, func,
                        insert, inspect, literal, or_, select, text, tuple_, update)
from sqlalchemy.dialects import postgresql as postgresql_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, scoped_session, sessionmaker

SCHEMA_VERSION = 4          # 2: workflow.flow_version and workflow.migrate_error; 3: workflow_attr;
                            # 4: flow_stat's version counters (counted once at the upgrade),
                            # workflow_attr_count (SQLite: made and counted as workflow_count)
_LOCK_RETRIES = 4  # a commit that finds SQLite locked past its busy timeout is tried again


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class WorkflowRow(db.Model):
    """One workflow: where it is (step, status), its JSON parts, when to wake it, who runs it."""

    __tablename__ = "workflow"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    flow: Mapped[str] = mapped_column(String(200))
    step: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(Text)   # JSON text, as are cache, system, inbox, error
    cache: Mapped[str] = mapped_column(Text)
    system: Mapped[str] = mapped_column(Text)
    inbox: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    # When a runner should look at it: the earliest open timer or event deadline of a waiting
    # workflow, the commit time of a running one (due at once if its runner dies), else NULL.
    wake_at: Mapped[int | None] = mapped_column(BigInteger)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires: Mapped[int | None] = mapped_column(BigInteger)
    version: Mapped[int]
    log_count: Mapped[int]
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    # The version of its flow it started on (NULL: unknown, a row older than versions), and
    # why its last migration to the loaded version failed (it stays held until one works).
    flow_version: Mapped[str | None] = mapped_column(String(64))
    migrate_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_workflow_updated", "updated_at", "id"),
        # Filtered by flow and status, either index serves (newest first), the other filter
        # read in the index itself; no index of its own, as every index holding updated_at is
        # rewritten at every commit (each adds two or three pages to every commit's write).
        Index("ix_workflow_status_updated", "status", "updated_at", "id", "flow"),
        Index("ix_workflow_flow_updated", "flow", "updated_at", "id", "status"),
        Index("ix_workflow_wake", "wake_at", sqlite_where=text("wake_at IS NOT NULL"),
              postgresql_where=text("wake_at IS NOT NULL")),
    )


class LogRow(db.Model):
    """One audit-log entry: the ``n``-th (from 1) of its workflow."""

    __tablename__ = "workflow_log"

    workflow_id: Mapped[str] = mapped_column(String(200), ForeignKey("workflow.id"),
                                             primary_key=True)
    n: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(200))
    step: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[int | None] = mapped_column(BigInteger)
    values_json: Mapped[str] = mapped_column(Text)

    __table_args__ = ({"sqlite_with_rowid": False},)


class EventKey(db.Model):
    """An idempotency key already delivered to a workflow."""

    __tablename__ = "workflow_event_key"

    workflow_id: Mapped[str] = mapped_column(String(200), ForeignKey("workflow.id"),
                                             primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    created_at: Mapped[int] = mapped_column(BigInteger)


class VisitRow(db.Model):
    """One step visit of a workflow (``seq`` is its ``_seq``): the step, when it began, the
    audit-log entry that began it (``log_n``), and the state it began with. ``state_json`` is
    NULL when the state was the previous visit's (stored once, when it changes), and
    ``unknown`` marks a visit whose state was never recorded (an imported snapshot's). A
    fork's first visit names its origin (``forked_from``, ``forked_seq``)."""

    __tablename__ = "workflow_visit"

    workflow_id: Mapped[str] = mapped_column(String(200), ForeignKey("workflow.id"),
                                             primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    step: Mapped[str] = mapped_column(String(200))
    at: Mapped[int | None] = mapped_column(BigInteger)
    log_n: Mapped[int | None] = mapped_column(BigInteger)
    state_json: Mapped[str | None] = mapped_column(Text)
    unknown: Mapped[bool] = mapped_column(Boolean, default=False)
    forked_from: Mapped[str | None] = mapped_column(String(200))
    forked_seq: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        Index("ix_visit_forked_from", "forked_from",
              sqlite_where=text("forked_from IS NOT NULL"),
              postgresql_where=text("forked_from IS NOT NULL")),
        {"sqlite_with_rowid": False},
    )


class AttrRow(db.Model):
    """One search attribute of a workflow: the value at ``path`` in its state as of its last
    commit, as a key (``search.key``: JSON text for text, numbers and booleans, so 3 and "3"
    differ; a digest for long text; NULL when the path holds nothing searchable). It carries
    the workflow's ``updated_at`` and ``status``, rewritten at every commit, so that a
    filtered list is read from this index newest first, as the unfiltered list is read from
    the workflow's, and its status counts are counted in the index alone."""

    __tablename__ = "workflow_attr"

    workflow_id: Mapped[str] = mapped_column(String(200), ForeignKey("workflow.id"),
                                             primary_key=True)
    path: Mapped[str] = mapped_column(String(200), primary_key=True)
    flow: Mapped[str] = mapped_column(String(200))
    value: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))

    __table_args__ = (
        # The one index: every commit rewrites its entries (updated_at changes), so status
        # rides along at no extra write instead of in an index of its own.
        Index("ix_attr_match", "flow", "path", "value", "updated_at", "workflow_id", "status"),
        {"sqlite_with_rowid": False},
    )


class AttrCount(db.Model):
    """How many workflows of a flow hold a search-attribute value, by status. On SQLite,
    triggers keep it as workflow_attr changes (whoever writes), so the list's status counts
    under one search-attribute filter are a lookup instead of a count of every match (a
    common value matches hundreds of thousands); elsewhere it stays empty and they are
    counted, as ``workflow_count``. Rows left at 0 are kept (a value moves between
    statuses)."""

    __tablename__ = "workflow_attr_count"

    flow: Mapped[str] = mapped_column(String(200), primary_key=True)
    path: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(Text, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    n: Mapped[int]

    __table_args__ = ({"sqlite_with_rowid": False},)


class AttrIndexRow(db.Model):
    """Which paths each flow's workflows are indexed by (a JSON list): a start whose flows
    declare other ones indexes their workflows again (``SearchCommands.sync_search_index``)."""

    __tablename__ = "workflow_attr_index"

    flow: Mapped[str] = mapped_column(String(200), primary_key=True)
    paths: Mapped[str] = mapped_column(Text)


class Meta(db.Model):
    """Facts about the database itself, such as its schema version."""

    __tablename__ = "tinyflow_meta"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


class StatusCount(db.Model):
    """How many workflows of a flow are in a status. On SQLite, triggers keep it as the workflow
    table changes (whoever writes), so the dashboard's counts are a lookup instead of a scan of
    every workflow; elsewhere it stays empty and the counts are counted."""

    __tablename__ = "workflow_count"

    flow: Mapped[str] = mapped_column(String(200), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    n: Mapped[int]


class FlowStat(db.Model):
    """One counter of a flow's statistics (webapp.runtime.stats says what each ``kind``
    counts): ``n`` and a sum ``v``, by ``period`` (epoch hours, epoch days, or -1: all time)
    and up to two names (``""``: none). Commits add to them in their own transaction, so they are never recounted per
    read."""

    __tablename__ = "flow_stat"

    flow: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    period: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    a: Mapped[str] = mapped_column(String(200), primary_key=True)
    b: Mapped[str] = mapped_column(String(200), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)
    v: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = ({"sqlite_with_rowid": False},)


class ScheduleRow(db.Model):
    """A schedule: start a workflow of ``flow`` with ``state`` at each time ``cron`` names (in
    ``timezone``). ``next_at`` is its next fire (NULL while paused); ``last_at`` the fire time
    of the last workflow it started, ``last_workflow_id`` that workflow."""

    __tablename__ = "workflow_schedule"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    flow: Mapped[str] = mapped_column(String(200))
    cron: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(Text)            # JSON text
    overlap: Mapped[str] = mapped_column(String(16))
    catchup: Mapped[int] = mapped_column(BigInteger)    # seconds
    paused: Mapped[bool] = mapped_column(Boolean)
    next_at: Mapped[int | None] = mapped_column(BigInteger)
    last_at: Mapped[int | None] = mapped_column(BigInteger)
    last_workflow_id: Mapped[str | None] = mapped_column(String(200))
    version: Mapped[int]
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        Index("ix_schedule_next", "next_at", sqlite_where=text("next_at IS NOT NULL"),
              postgresql_where=text("next_at IS NOT NULL")),
        Index("ix_schedule_flow", "flow", "id"),
    )


class BatchRow(db.Model):
    """A batch: one action (cancel, retry, send) over a set of workflows fixed when it was
    made (its items). ``params`` holds the action's details (reason, event) and how the set
    was chosen, as JSON; ``done``, ``skipped`` and ``failed`` count its settled items. A
    runner carries it out under a lease, as it runs a workflow."""

    __tablename__ = "workflow_batch"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    action: Mapped[str] = mapped_column(String(16))
    params: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))      # running | finished
    total: Mapped[int] = mapped_column(BigInteger)
    done: Mapped[int] = mapped_column(BigInteger)
    skipped: Mapped[int] = mapped_column(BigInteger)
    failed: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)
    finished_at: Mapped[int | None] = mapped_column(BigInteger)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_batch_created", "created_at", "id"),)


class BatchItemRow(db.Model):
    """One workflow of a batch: its ``outcome`` (NULL until settled: ``done``, ``skipped``,
    ``failed``) and why it was skipped or failed."""

    __tablename__ = "workflow_batch_item"

    batch_id: Mapped[str] = mapped_column(String(32), ForeignKey("workflow_batch.id"),
                                          primary_key=True)
    workflow_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    outcome: Mapped[str | None] = mapped_column(String(16))
    message: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        # The items still to do, in id order: a chunk is the first few of this index, which
        # holds only those (a settled item leaves it), however far the batch has got.
        Index("ix_batch_item_pending", "batch_id", "workflow_id",
              sqlite_where=text("outcome IS NULL"), postgresql_where=text("outcome IS NULL")),
        {"sqlite_with_rowid": False},
    )


@dataclass(slots=True)
class Record:
    """A workflow as the runtime and the views see it: the columns of its row, detached (the
    store maps every read to one and every write from one; no ORM object travels)."""

    id: str
    flow: str
    step: str
    status: str
    state: str
    cache: str
    system: str
    inbox: str | None
    error: str | None
    wake_at: int | None
    lease_owner: str | None
    lease_expires: int | None
    version: int
    log_count: int
    created_at: int
    updated_at: int
    flow_version: str | None = None
    migrate_error: str | None = None
    # Not a column: what the runtime has to say about a change it answers with (it was
    # committed, but the run after it could not finish: a runner finishes it).
    note: str | None = field(default=None, compare=False)

    @classmethod
    def of(cls, row) -> Record:
        """The record of a database row (a Core row with the workflow table's columns)."""
        return cls(*row)

    def changed(self, **values) -> Record:
        return replace(self, **values)


@dataclass(slots=True)
class ScheduleRecord:
    """A schedule as the runtime sees it: the columns of its row, detached."""

    id: str
    flow: str
    cron: str
    timezone: str
    state: str
    overlap: str
    catchup: int
    paused: bool
    next_at: int | None
    last_at: int | None
    last_workflow_id: str | None
    version: int
    created_at: int
    updated_at: int

    @classmethod
    def of(cls, row) -> ScheduleRecord:
        return cls(*row)

    def changed(self, **values) -> ScheduleRecord:
        return replace(self, **values)


@dataclass(slots=True)
class BatchRecord:
    """A batch as the runtime sees it: the columns of its row, detached."""

    id: str
    action: str
    params: str
    status: str
    total: int
    done: int
    skipped: int
    failed: int
    created_at: int
    finished_at: int | None
    lease_owner: str | None
    lease_expires: int | None

    @classmethod
    def of(cls, row) -> BatchRecord:
        return cls(*row)


_COLUMNS = tuple(f.name for f in fields(Record) if f.name != "note")


WORKFLOW = WorkflowRow.__table__
LOG = LogRow.__table__
EVENT_KEY = EventKey.__table__
COUNT = StatusCount.__table__
SCHEDULE = ScheduleRow.__table__
VISIT = VisitRow.__table__
VISIT_COLUMNS = tuple(VISIT.c.keys())
STAT = FlowStat.__table__
ATTR = AttrRow.__table__
ATTR_INDEX = AttrIndexRow.__table__
ATTR_COUNT = AttrCount.__table__
BATCH = BatchRow.__table__
BATCH_ITEM = BatchItemRow.__table__


class Stale(Exception):
    """The row changed (or vanished) since it was read: reload and redo."""


class Duplicate(Exception):
    """The id, or the idempotency key, is already taken."""


class Busy(Exception):
    """The database stayed locked past the retries."""


class SchemaTooNew(RuntimeError):
    """The database was written by a newer tiny-workflow."""


dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


assert tuple(WORKFLOW.c.keys()) == _COLUMNS, "Record's fields are the workflow table's columns"
assert tuple(SCHEDULE.c.keys()) == tuple(f.name for f in fields(ScheduleRecord))
assert tuple(BATCH.c.keys()) == tuple(f.name for f in fields(BatchRecord))


# -- setup ------------------------------------------------------------------------------------

def init_app(app, settings) -> Store:
    """Bind flask-sqlalchemy's ``db`` to ``app``, tune SQLite, create the tables on first start
    (refusing a schema newer than this code); the app's Store, on ``db.session``."""
    db.init_app(app)
    with app.app_context():
        for engine in db.engines.values():
            _tune(engine, settings)
        store = Store(db.session)
        store.create_schema()
    return store


def _tune(engine, settings) -> None:
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas(settings["TINYFLOW_SQLITE_SYNCHRONOUS"],
                                                        settings["TINYFLOW_SQLITE_BUSY_MS"]))


def _sqlite_pragmas(synchronous: str, busy_ms: int):
    def on_connect(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        cursor.close()
    return on_connect


_COUNT_TRIGGERS = {
    "workflow_count_insert": "AFTER INSERT ON workflow BEGIN {add_new} END",
    "workflow_count_update": "AFTER UPDATE OF flow, status ON workflow WHEN old.flow IS NOT "
                             "new.flow OR old.status IS NOT new.status BEGIN "
                             "{take_old} {add_new} END",
    "workflow_count_delete": "AFTER DELETE ON workflow BEGIN {take_old} END",
}
_ADD_NEW = ("INSERT INTO workflow_count (flow, status, n) VALUES (new.flow, new.status, 1) "
            "ON CONFLICT (flow, status) DO UPDATE SET n = n + 1;")
_TAKE_OLD = "UPDATE workflow_count SET n = n - 1 WHERE flow = old.flow AND status = old.status;"
# workflow_attr_count, the same way (a NULL value: nothing searchable, not counted).
_ATTR_COUNT_TRIGGERS = {
    "workflow_attr_count_insert": "AFTER INSERT ON workflow_attr BEGIN {add_new} END",
    "workflow_attr_count_update": "AFTER UPDATE OF flow, path, value, status ON workflow_attr "
                                  "WHEN old.flow IS NOT new.flow OR old.path IS NOT new.path "
                                  "OR old.value IS NOT new.value OR old.status IS NOT "
                                  "new.status BEGIN {take_old} {add_new} END",
    "workflow_attr_count_delete": "AFTER DELETE ON workflow_attr BEGIN {take_old} END",
}
_ATTR_ADD_NEW = ("INSERT INTO workflow_attr_count (flow, path, value, status, n) SELECT "
                 "new.flow, new.path, new.value, new.status, 1 WHERE new.value IS NOT NULL "
                 "ON CONFLICT (flow, path, value, status) DO UPDATE SET n = n + 1;")
_ATTR_TAKE_OLD = ("UPDATE workflow_attr_count SET n = n - 1 WHERE flow = old.flow AND "
                  "path = old.path AND value = old.value AND status = old.status;")


# Rows of one multi-row VALUES statement at most (7 columns: 700 parameters, under SQLite's
# and PostgreSQL's limits).
VALUES_ROWS = 100


class _Prepared:
    """A write compiled once per dialect and set of columns, run on the session's own DBAPI
    connection (in the session's transaction).

    Every commit of a workflow makes these writes, and SQLAlchemy's work per call (statement
    cache key, parameter processing, result set-up) cost more than SQLite's. The tables'
    columns are text and integers, which no dialect converts, so the parameters go to the
    driver as they are. Driver errors come out as SQLAlchemy's (``exc.IntegrityError``, ...).
    """

    def __init__(self, statement):
        self.statement = statement
        self._values = isinstance(statement, Insert)   # many rows: one VALUES statement
        self._compiled: dict[tuple, tuple[str, list[str] | None]] = {}

    def run(self, connection, params: dict | list[dict]) -> int:
        """Execute on ``connection`` (the session's: ``session.connection()``) with one row
        of ``params`` (a dict) or many (a list of dicts with the same keys); returns the
        driver's rowcount. Many rows of an insert go as one multi-row ``VALUES`` statement
        per ``VALUES_ROWS`` (a third of the driver's time of ``executemany``, which binds
        and steps each row apart); their keys must be distinct, as PostgreSQL's
        ``ON CONFLICT`` allows a row to be changed once per statement."""
        many = isinstance(params, list)
        if many and self._values:
            return sum(self._run(connection, params[i:i + VALUES_ROWS], False)
                       for i in range(0, len(params), VALUES_ROWS))
        return self._run(connection, params, many)

    def _run(self, connection, params: dict | list[dict], many: bool) -> int:
        rows = len(params) if isinstance(params, list) and not many else 0
        keys = tuple(params[0] if isinstance(params, list) else params)
        dialect = connection.dialect
        cache_key = (type(dialect), dialect.paramstyle, keys, rows)
        found = self._compiled.get(cache_key)
        if found is None:
            if rows:
                statement = self.statement.values(
                    [{k: bindparam(f"{k}_{i}") for k in keys} for i in range(rows)])
                compiled = statement.compile(dialect=dialect)
            else:
                compiled = self.statement.compile(dialect=dialect, column_keys=list(keys))
            found = self._compiled[cache_key] = (str(compiled), compiled.positiontup)
        sql, order = found
        if rows:                  # one statement of many rows: flat positional, or named
            params = ([row[k] for row in params for k in keys] if order is not None
                      else {f"{k}_{i}": row[k] for i, row in enumerate(params) for k in keys})
        elif order is not None:   # a positional paramstyle (SQLite's "?")
            params = ([[row[k] for k in order] for row in params] if many
                      else [params[k] for k in order])
        cursor = connection.connection.cursor()
        try:
            if many:
                cursor.executemany(sql, params)
            else:
                cursor.execute(sql, params)
            return cursor.rowcount
        except dialect.loaded_dbapi.Error as error:
            raise exc.DBAPIError.instance(sql, params, error, dialect.loaded_dbapi.Error,
                                          dialect=dialect) from error
        finally:
            cursor.close()


_INSERT_WORKFLOW = _Prepared(insert(WORKFLOW))
_UPDATE_WORKFLOW = _Prepared(update(WORKFLOW).where(
    WORKFLOW.c.id == bindparam("where_id"), WORKFLOW.c.version == bindparam("where_version")))
_INSERT_LOG = _Prepared(insert(LOG))


def _upsert_visit(module):
    statement = module.insert(VISIT)
    return _Prepared(statement.on_conflict_do_update(
        index_elements=[VISIT.c.workflow_id, VISIT.c.seq],
        set_={name: statement.excluded[name] for name in VISIT_COLUMNS[2:]}))


# A visit whose seq a row holds already (one an imported log showed, or one a run that was
# taken over wrote) is replaced: recording history never fails a commit.
_INSERT_VISIT = {"sqlite": _upsert_visit(sqlite_dialect),
                 "postgresql": _upsert_visit(postgresql_dialect)}


def _add_stats(module):
    statement = module.insert(STAT)
    return _Prepared(statement.on_conflict_do_update(
        index_elements=[STAT.c.flow, STAT.c.kind, STAT.c.period, STAT.c.a, STAT.c.b],
        set_={"n": STAT.c.n + statement.excluded.n, "v": STAT.c.v + statement.excluded.v}))


def merge_stats(rows: list[dict]) -> list[dict]:
    """Counter deltas of several workflows summed by key, sorted (one lock order)."""
    summed: dict[tuple, dict] = {}
    for row in rows:
        key = (row["flow"], row["kind"], row["period"], row["a"], row["b"])
        if key in summed:
            summed[key] = {**summed[key], "n": summed[key]["n"] + row["n"],
                           "v": summed[key]["v"] + row["v"]}
        else:
            summed[key] = row
    return [summed[key] for key in sorted(summed, key=repr)]


# Counter deltas (rows sorted by key by their maker: writers lock them in one order).
_ADD_STATS = {"sqlite": _add_stats(sqlite_dialect), "postgresql": _add_stats(postgresql_dialect)}


def _upsert_attr(module):
    statement = module.insert(ATTR)
    return _Prepared(statement.on_conflict_do_update(
        index_elements=[ATTR.c.workflow_id, ATTR.c.path],
        set_={name: statement.excluded[name] for name in ("value", "updated_at", "status")}))


# A commit writes one row per declared path (its value, or NULL): new or replaced in place.
_UPSERT_ATTR = {"sqlite": _upsert_attr(sqlite_dialect),
                "postgresql": _upsert_attr(postgresql_dialect)}
_LOAD = select(WORKFLOW).where(WORKFLOW.c.id == bindparam("id"))
_SETTLE_ITEM = _Prepared(update(BATCH_ITEM).where(
    BATCH_ITEM.c.batch_id == bindparam("where_batch"),
    BATCH_ITEM.c.workflow_id == bindparam("where_id"), BATCH_ITEM.c.outcome.is_(None)))
OUTCOMES = ("done", "skipped", "failed")
_UPDATE_SCHEDULE = _Prepared(update(SCHEDULE).where(
    SCHEDULE.c.id == bindparam("where_id"), SCHEDULE.c.version == bindparam("where_version")))


def log_params(id: str, first_n: int, entries) -> list[dict]:
    """Rows for audit-log ``entries`` (engine format), numbered from ``first_n``."""
    return [{"workflow_id": id, "n": first_n + i, "type": e["type"], "step": e.get("_step"),
             "at": e.get("_at"), "values_json": dumps(e.get("values") or {})}
            for i, e in enumerate(entries)]


def visit_params(id: str, seq: int, step: str, at: int | None, log_n: int | None,
                 state_json: str | None, *, unknown: bool = False,
                 forked_from: str | None = None, forked_seq: int | None = None) -> dict:
    """A ``workflow_visit`` row (``state_json`` None: the previous visit's state)."""
    return {"workflow_id": id, "seq": seq, "step": step, "at": at, "log_n": log_n,
            "state_json": state_json, "unknown": unknown, "forked_from": forked_from,
            "forked_seq": forked_seq}


def attr_params(id: str, flow: str, keys, updated_at: int, status: str) -> list[dict]:
    """``workflow_attr`` rows of a commit: ``keys`` is ``[(path, key or None)]``."""
    return [{"workflow_id": id, "path": path, "flow": flow, "value": key,
             "updated_at": updated_at, "status": status} for path, key in keys]


def _attr_match(attr, term):
    """``term`` is ``(flows, path, key)``: the path's value is ``key`` in one of ``flows``."""
    flows, path, key = term
    return and_(attr.c.flow.in_(list(flows)), attr.c.path == path, attr.c.value == key)


def _filters(stmt, flows=(), statuses=(), q=None, versions=(), steps=(), state=()):
    """``stmt`` (a select from the workflow table) narrowed by the list's filters; ``state``
    holds ``(flows, path, key)`` terms, each a search attribute that must match (AND)."""
    if flows:
        stmt = stmt.where(WORKFLOW.c.flow.in_(list(flows)))
    if versions:
        stmt = stmt.where(WORKFLOW.c.flow_version.in_(list(versions)))
    if statuses:
        stmt = stmt.where(WORKFLOW.c.status.in_(list(statuses)))
    if steps:
        stmt = stmt.where(WORKFLOW.c.step.in_(list(steps)))
    if q:
        stmt = stmt.where(WORKFLOW.c.id.contains(q, autoescape=True))
    for term in state:
        attr = ATTR.alias()
        stmt = stmt.where(select(attr.c.workflow_id).where(
            attr.c.workflow_id == WORKFLOW.c.id, _attr_match(attr, term)).exists())
    return stmt


def _searched(columns, state):
    """``select(*columns)`` from the workflows the first of the ``state`` terms matches,
    read from that attribute's index (newest updated first: its order), and the index's
    alias; the remaining terms for ``_filters``."""
    lead = ATTR.alias("lead")
    stmt = (select(*columns).select_from(lead)
            .join(WORKFLOW, WORKFLOW.c.id == lead.c.workflow_id)
            .where(_attr_match(lead, state[0])))
    return stmt, lead, list(state[1:])


def _began(workflow_id):
    """When the open visit of the workflow ``workflow_id`` (a column or a literal) began: its
    last recorded visit's time, else its last log entry that begins one (``Store.visit_began``)."""
    visit = (select(VISIT.c.at).where(VISIT.c.workflow_id == workflow_id)
             .order_by(VISIT.c.seq.desc()).limit(1).scalar_subquery())
    logged = (select(LOG.c.at).where(LOG.c.workflow_id == workflow_id,
                                     LOG.c.type.in_(["init", "transition", "forked"]))
              .order_by(LOG.c.n.desc()).limit(1).scalar_subquery())
    return func.coalesce(visit, logged)


def _locked(error: exc.OperationalError) -> bool:
    text = str(error.orig).lower()
    return "locked" in text or "busy" in text


class Store:
    """The runtime's queries and writes, on one scoped session (one session per thread)."""

    def __init__(self, session: scoped_session, *, owned: bool = False):
        self.session = session
        self.owned = owned          # a session of our own: ``end()`` closes it after each call

    @classmethod
    def connect(cls, url: str, settings) -> Store:
        """A Store with an engine and sessions of its own (no Flask app), its tables made."""
        options = {}
        if url.startswith("sqlite") and ":memory:" in url:
            from sqlalchemy.pool import StaticPool
            options = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
        engine = create_engine(url, **options)
        _tune(engine, settings)
        store = cls(scoped_session(sessionmaker(bind=engine)), owned=True)
        store.create_schema()
        store.end()
        return store

    @property
    def url(self) -> str:
        return self.session.get_bind().url.render_as_string(hide_password=True)

    def end(self) -> None:
        """End this thread's session if it is our own (its connection goes back to the pool)."""
        if self.owned:
            self.session.remove()

    def dispose(self) -> None:
        self.session.remove()
        self.session.get_bind().dispose()

    # -- schema ---------------------------------------------------------------------------

    def create_schema(self) -> None:
        """Create the tables on first start; refuse a schema newer than this code."""
        session = self.session
        for attempt in range(3):
            try:
                Base.metadata.create_all(session.get_bind())
                found = session.execute(
                    select(Meta.value).where(Meta.key == "schema_version")).scalar()
                if found is None:
                    session.execute(insert(Meta).values(key="schema_version",
                                                        value=str(SCHEMA_VERSION)))
                    session.commit()
                elif int(found) < SCHEMA_VERSION:
                    self._upgrade()
                    found = str(SCHEMA_VERSION)
                self._keep_counts()
                break
            except (exc.OperationalError, exc.ProgrammingError, exc.IntegrityError):
                # Another process is creating the same tables right now: look again.
                session.rollback()
                if attempt == 2:
                    raise
                time.sleep(0.2)
        url = self.url
        session.remove()
        if int(found or SCHEMA_VERSION) > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"the database {url} has schema version {found}, newer than this tiny-workflow "
                f"understands ({SCHEMA_VERSION}); upgrade tiny-workflow or use another database "
                "(TINYFLOW_DATABASE_URL)")

    def _upgrade(self) -> None:
        """Bring a database made by an older schema up to this one, in one transaction:
        add the workflow columns it lacks (1 -> 2: flow_version, migrate_error). 2 -> 3 adds
        tables only (create_all made them); the runtime indexes the workflows at its start
        (``SearchCommands.sync_search_index``), as it knows the flows' attributes. 3 -> 4
        counts the workflows of each flow version once into flow_stat (``version``
        counters, which commits keep from then on)."""
        session = self.session
        have = {c["name"] for c in inspect(session.connection()).get_columns("workflow")}
        for column in ("flow_version", "migrate_error"):
            if column not in have:
                kind = WORKFLOW.c[column].type.compile(dialect=session.get_bind().dialect)
                session.execute(text(f"ALTER TABLE workflow ADD COLUMN {column} {kind}"))
        session.execute(delete(STAT).where(STAT.c.kind == "version"))
        session.execute(insert(STAT).from_select(
            ["flow", "kind", "period", "a", "b", "n", "v"],
            select(WORKFLOW.c.flow, literal("version"), literal(-1),
                   func.coalesce(WORKFLOW.c.flow_version, ""), literal(""), func.count(),
                   literal(0))
            .group_by(WORKFLOW.c.flow, WORKFLOW.c.flow_version)))
        session.execute(update(Meta).where(Meta.key == "schema_version")
                        .values(value=str(SCHEMA_VERSION)))
        session.commit()

    def _counted(self) -> bool:
        """Whether workflow_count and workflow_attr_count hold the counts (SQLite)."""
        return self.session.get_bind().dialect.name == "sqlite"

    def _keep_counts(self) -> None:
        """SQLite: make the triggers that keep workflow_count and workflow_attr_count where
        they are missing (a database made before them), and count every workflow (every
        attribute row) once, in the same transaction."""
        if not self._counted():
            return
        session = self.session
        have = set(session.execute(
            text("SELECT name FROM sqlite_master WHERE type = 'trigger'")).scalars())
        kept = [(COUNT, _COUNT_TRIGGERS, _ADD_NEW, _TAKE_OLD,
                 select(WORKFLOW.c.flow, WORKFLOW.c.status, func.count())
                 .group_by(WORKFLOW.c.flow, WORKFLOW.c.status)),
                (ATTR_COUNT, _ATTR_COUNT_TRIGGERS, _ATTR_ADD_NEW, _ATTR_TAKE_OLD,
                 select(ATTR.c.flow, ATTR.c.path, ATTR.c.value, ATTR.c.status, func.count())
                 .where(ATTR.c.value.is_not(None))
                 .group_by(ATTR.c.flow, ATTR.c.path, ATTR.c.value, ATTR.c.status))]
        missing = [k for k in kept if not have.issuperset(k[1])]
        if not missing:
            return
        for table, triggers, add_new, take_old, counted in missing:
            session.execute(table.delete())   # opens the transaction the triggers are made in
            for name, body in triggers.items():
                body = body.format(add_new=add_new, take_old=take_old)
                session.execute(text(f"CREATE TRIGGER IF NOT EXISTS {name} {body}"))
            session.execute(insert(table).from_select(
                [c.name for c in table.c], counted))
        session.commit()

    # -- reading ----------------------------------------------------------------------------

    def load(self, id: str) -> Record | None:
        """The workflow as it is in the database now."""
        row = self.session.execute(_LOAD, {"id": id}).first()
        return None if row is None else Record.of(row)

    def fresh(self) -> None:
        """End the current read, so the next one sees what others committed since."""
        self.session.rollback()

    def exists(self, ids) -> set[str]:
        """Which of ``ids`` are taken."""
        ids = list(ids)
        found: set[str] = set()
        for i in range(0, len(ids), 500):
            found.update(self.session.execute(
                select(WORKFLOW.c.id).where(WORKFLOW.c.id.in_(ids[i:i + 500]))).scalars())
        return found

    def has_event_key(self, id: str, key: str) -> bool:
        return self.session.execute(select(EVENT_KEY.c.key).where(
            EVENT_KEY.c.workflow_id == id, EVENT_KEY.c.key == key)).first() is not None

    def page(self, flows=(), statuses=(), q=None, after: tuple[int, str] | None = None,
             limit: int = 50, versions=(), steps=(), state=()) -> list[Record]:
        """Up to ``limit`` workflows, newest updated first, after the keyset position
        ``after`` (``versions``: only those that started on one of them; ``steps``: only
        those at one of them; ``state``: ``(flows, path, key)`` terms that all match)."""
        if state:       # read from the first attribute's index, in its (the list's) order
            stmt, lead, state = _searched([WORKFLOW], state)
            order = (lead.c.updated_at, lead.c.workflow_id)
            if statuses:           # the same as the workflow's: pruned in the index
                stmt = stmt.where(lead.c.status.in_(list(statuses)))
        else:
            stmt, order = select(WORKFLOW), (WORKFLOW.c.updated_at, WORKFLOW.c.id)
        stmt = _filters(stmt, flows, statuses, q, versions, steps, state)
        if after is not None:
            stmt = stmt.where(tuple_(*order) < tuple_(*after))
        stmt = stmt.order_by(order[0].desc(), order[1].desc()).limit(limit)
        return [Record.of(row) for row in self.session.execute(stmt)]

    def count_by_status(self, flows=(), q=None, versions=(), steps=(),
                        state=()) -> dict[str, int]:
        """``{status: count}`` of the workflows of ``flows`` (all when empty) whose id contains
        ``q`` (and that started on one of ``versions``, are at one of ``steps``, match the
        ``state`` terms); statuses without any are left out. Without ``q``, ``versions``,
        ``steps`` nor ``state``, or with one ``state`` term alone, SQLite's are looked up
        (workflow_count, workflow_attr_count)."""
        if not q and not versions and not steps and not state and self._counted():
            stmt = select(COUNT.c.status, func.sum(COUNT.c.n)).group_by(COUNT.c.status)
            if flows:
                stmt = stmt.where(COUNT.c.flow.in_(list(flows)))
            return {status: int(n) for status, n in self.session.execute(stmt) if n}
        if len(state) == 1 and not q and not versions and not steps and self._counted():
            stmt = select(ATTR_COUNT.c.status, func.sum(ATTR_COUNT.c.n)).where(
                _attr_match(ATTR_COUNT, state[0])).group_by(ATTR_COUNT.c.status)
            return {status: int(n) for status, n in self.session.execute(stmt) if n}
        if len(state) == 1 and not q and not versions and not steps:
            lead = ATTR.alias("lead")           # counted in the attribute's index alone
            stmt = select(lead.c.status, func.count()).where(_attr_match(lead, state[0]))
            return dict(self.session.execute(stmt.group_by(lead.c.status)).all())
        columns = (WORKFLOW.c.status, func.count())
        if state:
            stmt, _, state = _searched(columns, state)
        else:
            stmt = select(*columns)
        stmt = _filters(stmt, flows, (), q, versions, steps, state)
        return dict(self.session.execute(stmt.group_by(WORKFLOW.c.status)).all())

    def log_rows(self, id: str, type=None, step=None, after: int = 0,
                 limit: int | None = None, newest: bool = False):
        """Audit-log rows of workflow ``id`` with n > ``after``, oldest first (``newest``:
        the last ``limit`` of them, still oldest first)."""
        stmt = select(LOG).where(LOG.c.workflow_id == id, LOG.c.n > after)
        if type:
            stmt = stmt.where(LOG.c.type == type)
        if step:
            stmt = stmt.where(LOG.c.step == step)
        stmt = stmt.order_by(LOG.c.n.desc() if newest else LOG.c.n)
        if limit is not None:
            stmt = stmt.limit(limit)
        rows = self.session.execute(stmt).all()
        return rows[::-1] if newest else rows

    # -- step visits (webapp.runtime.history) --------------------------------------------

    def visits(self, id: str, after: int = -1, limit: int = 100) -> list:
        """Visit rows of workflow ``id`` with seq > ``after``, oldest first."""
        return self.session.execute(
            select(VISIT).where(VISIT.c.workflow_id == id, VISIT.c.seq > after)
            .order_by(VISIT.c.seq).limit(limit)).all()

    def visit(self, id: str, seq: int):
        return self.session.execute(select(VISIT).where(
            VISIT.c.workflow_id == id, VISIT.c.seq == seq)).first()

    def visits_before(self, id: str, seq: int):
        """The visit just before ``seq``, or None."""
        return self.session.execute(
            select(VISIT).where(VISIT.c.workflow_id == id, VISIT.c.seq < seq)
            .order_by(VISIT.c.seq.desc()).limit(1)).first()

    def visit_at_log(self, id: str, n: int):
        """The visit audit-log entry ``n`` belongs to: the last one begun at or before it."""
        return self.session.execute(
            select(VISIT).where(VISIT.c.workflow_id == id, VISIT.c.log_n <= n)
            .order_by(VISIT.c.seq.desc()).limit(1)).first()

    def state_before(self, id: str, seq: int):
        """The last visit before ``seq`` that says what its state was (stored, or unknown):
        the row whose state a visit with NULL ``state_json`` carries on; None if none."""
        return self.session.execute(
            select(VISIT).where(VISIT.c.workflow_id == id, VISIT.c.seq < seq,
                                or_(VISIT.c.state_json.is_not(None), VISIT.c.unknown))
            .order_by(VISIT.c.seq.desc()).limit(1)).first()

    def origin(self, id: str):
        """The first visit of a fork (naming what it was forked from), or None."""
        first = self.session.execute(
            select(VISIT).where(VISIT.c.workflow_id == id).order_by(VISIT.c.seq)
            .limit(1)).first()                 # a fork's first visit is its lowest
        return first if first is not None and first.forked_from is not None else None

    def forks(self, id: str, limit: int = 100) -> list:
        """First visits of the workflows forked from ``id``."""
        return self.session.execute(
            select(VISIT).where(VISIT.c.forked_from == id)
            .order_by(VISIT.c.at, VISIT.c.workflow_id).limit(limit)).all()

    # -- writing ----------------------------------------------------------------------------

    def write(self, id: str, version: int | None, values: dict, logs: list[dict],
              event_key: str | None = None, visits: list[dict] | None = None,
              stats: list[dict] | None = None, attrs: list[dict] | None = None) -> None:
        """Insert (``version`` None) or version-checked update of one workflow row, with its
        new log rows (and an idempotency key, and the step visits begun since the last
        write: ``visit_params``, the flow statistics' counter deltas: ``stats``, and its
        search attributes: ``attr_params``), in one
        transaction, committed.

        Raises Stale when the row is not at ``version`` any more, Duplicate when the id or the
        key is taken, Busy when SQLite stays locked.
        """
        def statements():
            connection = self.session.connection()
            if version is None:
                _INSERT_WORKFLOW.run(connection, {"id": id, **values})
            elif _UPDATE_WORKFLOW.run(connection,
                                      {**values, "where_id": id, "where_version": version}) != 1:
                raise Stale(id)
            if logs:
                _INSERT_LOG.run(connection, logs)
            if visits:
                _INSERT_VISIT[connection.dialect.name].run(connection, visits)
            if attrs:
                _UPSERT_ATTR[connection.dialect.name].run(connection, attrs)
            if event_key is not None:
                self.session.execute(insert(EVENT_KEY), {"workflow_id": id, "key": event_key,
                                                         "created_at": values["updated_at"]})
            if stats:
                _ADD_STATS[connection.dialect.name].run(connection, stats)
        self.transaction(statements)

    def insert_many(self, rows: list[dict], logs: list[dict],
                    visits: list[dict] | None = None, stats: list[dict] | None = None,
                    attrs: list[dict] | None = None) -> None:
        """Insert whole workflows (an import) in one transaction, with their counter deltas
        and search attributes."""
        def statements():
            self.session.execute(insert(WORKFLOW), rows)
            for i in range(0, len(logs), 5000):
                self.session.execute(insert(LOG), logs[i:i + 5000])
            for i in range(0, len(visits or ()), 5000):
                self.session.execute(insert(VISIT), visits[i:i + 5000])
            if stats:
                connection = self.session.connection()
                _ADD_STATS[connection.dialect.name].run(connection, stats)
            for i in range(0, len(attrs or ()), 5000):
                self.session.execute(insert(ATTR), attrs[i:i + 5000])
        self.transaction(statements)

    # -- flow statistics (webapp.runtime.stats) -------------------------------------------

    def stat_sums(self, flow: str, first_day: int | None = None,
                  last_day: int | None = None) -> list:
        """``(kind, a, b, n, v)`` of ``flow``'s counters of workflows created in days
        ``[first_day, last_day)`` (both None: the all-time counters), summed over those
        days (activity left out)."""
        stmt = (select(STAT.c.kind, STAT.c.a, STAT.c.b, func.sum(STAT.c.n), func.sum(STAT.c.v))
                .where(STAT.c.flow == flow, STAT.c.kind.in_(["at", "edge", "time", "enter"])))
        if first_day is None and last_day is None:
            stmt = stmt.where(STAT.c.period == -1)
        else:
            stmt = stmt.where(STAT.c.period >= max(0, first_day or 0))
            if last_day is not None:
                stmt = stmt.where(STAT.c.period < last_day)
        return self.session.execute(stmt.group_by(STAT.c.kind, STAT.c.a, STAT.c.b)).all()

    def activity_rows(self, flows=None, since_hour: int | None = None) -> list:
        """``(flow, hour, what, n)`` of the activity counters of ``flows`` (None: all)."""
        stmt = select(STAT.c.flow, STAT.c.period, STAT.c.a, STAT.c.n).where(
            STAT.c.kind == "act")
        if flows is not None:
            stmt = stmt.where(STAT.c.flow.in_(list(flows)))
        if since_hour is not None:
            stmt = stmt.where(STAT.c.period >= since_hour)
        return self.session.execute(stmt.order_by(STAT.c.flow, STAT.c.period)).all()

    def stat_statuses(self) -> dict[str, dict[str, int]]:
        """``{flow: {status: count}}`` from the all-time counters, every flow that has any."""
        found: dict[str, dict[str, int]] = {}
        for flow, status, n in self.session.execute(
                select(STAT.c.flow, STAT.c.a, func.sum(STAT.c.n))
                .where(STAT.c.kind == "at", STAT.c.period == -1)
                .group_by(STAT.c.flow, STAT.c.a)):
            found.setdefault(flow, {})[status] = int(n)
        return found

    def stat_versions(self, flow: str) -> dict[str | None, int]:
        """``{flow_version: count}`` of ``flow``'s workflows from its version counters (None:
        unknown); versions with none left out."""
        return {a or None: int(n) for a, n in self.session.execute(
            select(STAT.c.a, STAT.c.n).where(STAT.c.flow == flow, STAT.c.kind == "version",
                                             STAT.c.period == -1)) if n}

    def visit_began(self, id: str) -> int | None:
        """When the open visit of workflow ``id`` began: the time of its last log entry that
        begins one (init, transition, forked). Its recorded visit (history) when there is one,
        so a run reads no audit-log row; the log only where no visit was recorded."""
        # Two reads, not _began's one statement: the run path's SQL names no log table.
        began = self.session.execute(
            select(VISIT.c.at).where(VISIT.c.workflow_id == id)
            .order_by(VISIT.c.seq.desc()).limit(1)).scalar()
        if began is not None:
            return began
        return self.session.execute(
            select(LOG.c.at).where(LOG.c.workflow_id == id,
                                   LOG.c.type.in_(["init", "transition", "forked"]))
            .order_by(LOG.c.n.desc()).limit(1)).scalar()

    def visits_began(self, ids) -> dict[str, int | None]:
        """``visit_began`` of each of the workflows ``ids`` that exist, in one statement per
        500 (a batch's chunk): ``{id: ms or None}``."""
        ids = list(ids)
        found: dict[str, int | None] = {}
        for i in range(0, len(ids), 500):
            found.update(self.session.execute(
                select(WORKFLOW.c.id, _began(WORKFLOW.c.id))
                .where(WORKFLOW.c.id.in_(ids[i:i + 500]))).all())
        return found

    def rebuild_stats(self, recount, chunk: int = 500) -> int:
        """Replace every counter with a recount, in one transaction: ``recount(flow,
        created_at, status, step, log rows)`` is called for each workflow, then
        ``recount.rows()`` gives the counter rows to store. Returns how many workflows were
        read."""
        session = self.session

        def statements():
            session.execute(delete(STAT))
            read, after = 0, None
            while True:
                stmt = select(WORKFLOW.c.id, WORKFLOW.c.flow, WORKFLOW.c.created_at,
                              WORKFLOW.c.status, WORKFLOW.c.step, WORKFLOW.c.flow_version
                              ).order_by(WORKFLOW.c.id)
                if after is not None:
                    stmt = stmt.where(WORKFLOW.c.id > after)
                batch = session.execute(stmt.limit(chunk)).all()
                if not batch:
                    break
                logs: dict[str, list] = {}
                for row in session.execute(
                        select(LOG.c.workflow_id, LOG.c.type, LOG.c.step, LOG.c.at,
                               LOG.c.values_json)
                        .where(LOG.c.workflow_id.in_([w.id for w in batch]))
                        .order_by(LOG.c.workflow_id, LOG.c.n)):
                    logs.setdefault(row.workflow_id, []).append(row)
                for w in batch:
                    recount(w.flow, w.created_at, w.status, w.step, logs.get(w.id, []),
                            w.flow_version)
                read += len(batch)
                after = batch[-1].id
            rows = recount.rows()
            if rows:
                connection = session.connection()
                _ADD_STATS[connection.dialect.name].run(connection, rows)
            return read
        return self.transaction(statements)

    def claim_due(self, now_ms: int, flows, owner: str, lease_ms: int,
                  limit: int) -> list[Record]:
        """Lease up to ``limit`` workflows of ``flows`` that are due by ``now_ms`` and not
        leased (or whose lease expired: their runner died). Returns them, as leased.

        ``flows`` may map each name to ``(versions, migrates)``: then only its workflows of
        those versions (or of none recorded) are claimed, and, if ``migrates``, those of other
        versions whose migration has not failed: a held workflow is never claimed."""
        session = self.session
        if isinstance(flows, dict):
            which = or_(*[and_((WORKFLOW.c.flow + "") == name, or_(
                WORKFLOW.c.flow_version.is_(None), WORKFLOW.c.flow_version.in_(list(versions)),
                *([WORKFLOW.c.migrate_error.is_(None)] if migrates else [])))
                for name, (versions, migrates) in flows.items()])
        else:
            which = (WORKFLOW.c.flow + "").in_(list(flows))

        def statements():
            # Another worker that read the same candidates may lease them all first (on
            # SQLite, the version check is what keeps workers apart): then read again, past
            # its leases.
            for _ in range(5):
                claimed, candidates = attempt()
                if claimed or not candidates:
                    break
            return claimed

        def attempt():
            # "flow || ''" keeps SQLite from choosing a flow index for "flow IN (...)", which
            # would visit every workflow of those flows; the wake index visits only the due.
            candidates = session.execute(
                select(WORKFLOW)
                .where(WORKFLOW.c.wake_at <= now_ms, which,
                       or_(WORKFLOW.c.lease_expires.is_(None),
                           WORKFLOW.c.lease_expires < now_ms))
                .order_by(WORKFLOW.c.wake_at).limit(limit)
                .with_for_update(skip_locked=True)).all()   # PostgreSQL; SQLite ignores it
            claimed = []
            connection = session.connection()
            for row in candidates:
                done = _UPDATE_WORKFLOW.run(connection, {
                    "lease_owner": owner, "lease_expires": now_ms + lease_ms,
                    "version": row.version + 1, "where_id": row.id,
                    "where_version": row.version})
                if done == 1:
                    claimed.append(Record.of(row).changed(
                        lease_owner=owner, lease_expires=now_ms + lease_ms,
                        version=row.version + 1))
            return claimed, candidates
        return self.transaction(statements)

    def renew(self, id: str, version: int, owner: str, expires: int) -> None:
        """Extend ``owner``'s lease of a row at ``version`` to ``expires`` (ms), and nothing
        else: the row's data stay as the last commit wrote them. Bumps the version, so a runner
        that read the row before cannot claim it after; Stale if it changed meanwhile."""
        def statements():
            done = _UPDATE_WORKFLOW.run(self.session.connection(), {
                "lease_owner": owner, "lease_expires": expires, "version": version + 1,
                "where_id": id, "where_version": version})
            if done != 1:
                raise Stale(id)
        self.transaction(statements)

    def release(self, id: str, version: int, owner: str) -> bool:
        """Give back ``owner``'s lease of a row still at ``version`` (a claimed row not run:
        due at once for the next runner); whether it was given back."""
        def statements():
            done = self.session.execute(
                update(WORKFLOW).where(WORKFLOW.c.id == id, WORKFLOW.c.version == version,
                                       WORKFLOW.c.lease_owner == owner),
                {"lease_owner": None, "lease_expires": None, "version": version + 1})
            return done.rowcount == 1
        return self.transaction(statements)

    def park(self, id: str, version: int) -> None:
        """Take a row out of the runners' way (no wake time, no lease) without touching its
        data: for a broken snapshot, which running again cannot repair. Stale if it changed
        meanwhile."""
        def statements():
            done = self.session.execute(
                update(WORKFLOW).where(WORKFLOW.c.id == id, WORKFLOW.c.version == version),
                {"wake_at": None, "lease_owner": None, "lease_expires": None,
                 "version": version + 1})
            if done.rowcount != 1:
                raise Stale(id)
        self.transaction(statements)

    def hold(self, id: str, version: int, error: str) -> None:
        """Keep why a workflow's migration failed (it stays held: runners leave it) and give
        its lease back, its data untouched. Stale if it changed meanwhile."""
        def statements():
            done = self.session.execute(
                update(WORKFLOW).where(WORKFLOW.c.id == id, WORKFLOW.c.version == version),
                {"migrate_error": error, "lease_owner": None, "lease_expires": None,
                 "version": version + 1})
            if done.rowcount != 1:
                raise Stale(id)
        self.transaction(statements)

    def count_by_version(self, flow: str) -> dict[str | None, int]:
        """``{flow_version: count}`` of the workflows of ``flow`` (None: unknown), counted:
        a read of every one of them (``stat_versions`` is the kept figure)."""
        return dict(self.session.execute(
            select(WORKFLOW.c.flow_version, func.count()).where(WORKFLOW.c.flow == flow)
            .group_by(WORKFLOW.c.flow_version)).all())

    def not_of(self, flow: str, versions, after: str = "", limit: int = 100,
               only: str | None = None) -> list[Record]:
        """Up to ``limit`` workflows of ``flow`` by id after ``after`` that started on a
        version not in ``versions`` (none recorded: not listed), or on ``only``; open ones
        only (not finished nor cancelled)."""
        stmt = select(WORKFLOW).where(WORKFLOW.c.flow == flow, WORKFLOW.c.id > after,
                                      WORKFLOW.c.status.not_in(["finished", "cancelled"]),
                                      WORKFLOW.c.flow_version.is_not(None),
                                      WORKFLOW.c.flow_version.not_in(list(versions)))
        if only is not None:
            stmt = stmt.where(WORKFLOW.c.flow_version == only)
        return [Record.of(row) for row in self.session.execute(
            stmt.order_by(WORKFLOW.c.id).limit(limit))]

    # -- search attributes (webapp.runtime.search) ---------------------------------------

    def indexed_paths(self) -> dict[str, list[str]]:
        """``{flow: [paths]}``: what each flow's workflows are indexed by."""
        return {flow: json.loads(paths) for flow, paths in self.session.execute(
            select(ATTR_INDEX.c.flow, ATTR_INDEX.c.paths))}

    def reindex(self, flow: str, paths, keys, after: str = "", limit: int = 1000) -> str | None:
        """Index up to ``limit`` workflows of ``flow`` by id after ``after``, in one
        transaction: their rows of paths not in ``paths`` go, and ``keys(state_text)``
        (``[(path, key)]``) is written for each. The rows are read in the transaction that
        writes them (locked on PostgreSQL; on SQLite the write comes first, so the read is
        under the write lock), so a commit meanwhile is not overwritten with older values.
        ``(the last id indexed, how many)``."""
        session = self.session
        paths = list(paths)

        def statements():
            connection = session.connection()
            ids = select(WORKFLOW.c.id).where(WORKFLOW.c.flow == flow, WORKFLOW.c.id > after
                                              ).order_by(WORKFLOW.c.id).limit(limit)
            session.execute(delete(ATTR).where(ATTR.c.workflow_id.in_(ids),
                                               ATTR.c.path.not_in(paths)))
            rows = session.execute(
                select(WORKFLOW.c.id, WORKFLOW.c.state, WORKFLOW.c.updated_at,
                       WORKFLOW.c.status)
                .where(WORKFLOW.c.flow == flow, WORKFLOW.c.id > after)
                .order_by(WORKFLOW.c.id).limit(limit).with_for_update()).all()
            found = [row for id, state, updated, status in rows
                     for row in attr_params(id, flow, keys(state), updated, status)]
            if found:
                _UPSERT_ATTR[connection.dialect.name].run(connection, found)
            return (rows[-1].id if rows else after), len(rows)
        return self.transaction(statements)

    def set_indexed(self, flow: str, paths) -> None:
        """Note that ``flow``'s workflows are indexed by ``paths`` (none: forget the flow)."""
        def statements():
            self.session.execute(delete(ATTR_INDEX).where(ATTR_INDEX.c.flow == flow))
            if paths:
                self.session.execute(insert(ATTR_INDEX), {"flow": flow,
                                                          "paths": dumps(list(paths))})
            else:
                self.session.execute(delete(ATTR).where(ATTR.c.flow == flow))
        self.transaction(statements)

    # -- schedules (webapp.runtime.schedules) -------------------------------------------------

    def schedule(self, id: str) -> ScheduleRecord | None:
        row = self.session.execute(select(SCHEDULE).where(SCHEDULE.c.id == id)).first()
        return None if row is None else ScheduleRecord.of(row)

    def schedules(self, flow: str | None = None) -> list[ScheduleRecord]:
        """Every schedule (or those of ``flow``), by id."""
        stmt = select(SCHEDULE).order_by(SCHEDULE.c.id)
        if flow is not None:
            stmt = stmt.where(SCHEDULE.c.flow == flow)
        return [ScheduleRecord.of(row) for row in self.session.execute(stmt)]

    def add_schedule(self, values: dict) -> None:
        """Insert a schedule (``values``: every column); Duplicate when its id is taken."""
        self.transaction(lambda: self.session.execute(insert(SCHEDULE), values))

    def change_schedule(self, id: str, version: int, values: dict) -> None:
        """Version-checked update of a schedule (``values`` get version + 1); Stale if it
        changed or vanished since it was read at ``version``."""
        def statements():
            done = self.session.execute(
                update(SCHEDULE).where(SCHEDULE.c.id == id, SCHEDULE.c.version == version),
                {**values, "version": version + 1})
            if done.rowcount != 1:
                raise Stale(id)
        self.transaction(statements)

    def delete_schedule(self, id: str) -> bool:
        """Delete a schedule (the workflows it started stay); whether it was there."""
        return self.transaction(lambda: self.session.execute(
            delete(SCHEDULE).where(SCHEDULE.c.id == id)).rowcount == 1)

    def fire_schedules(self, now_ms: int, flows, limit: int, plan) -> list:
        """One transaction: read up to ``limit`` schedules of ``flows`` due by ``now_ms``
        (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so workers share them), and for each one
        ``plan(record, last_status)`` -> ``(values, start)`` or None (leave it): the
        schedule's new values, and the workflow to start (``(row values, log rows, visit rows)`` or None).
        ``last_status`` is the status of its last workflow. Each schedule is advanced
        version-checked and its workflow inserted in the same transaction, so a fire happens
        once or not at all (a crash rolls both back); a workflow whose id is taken already (a
        trigger in that second) is not inserted again. Returns ``[(record, started workflow
        id or None)]``."""
        session = self.session

        def statements():
            rows = session.execute(
                select(SCHEDULE)
                .where(SCHEDULE.c.next_at <= now_ms, (SCHEDULE.c.flow + "").in_(list(flows)))
                .order_by(SCHEDULE.c.next_at).limit(limit)
                .with_for_update(skip_locked=True)).all()
            records = [ScheduleRecord.of(row) for row in rows]
            last = [r.last_workflow_id for r in records if r.last_workflow_id]
            statuses = dict(session.execute(
                select(WORKFLOW.c.id, WORKFLOW.c.status).where(WORKFLOW.c.id.in_(last))).all()
                ) if last else {}
            planned = [(record, plan(record, statuses.get(record.last_workflow_id)))
                       for record in records]
            taken = self.exists(start[0]["id"] for _, p in planned if p
                                for start in [p[1]] if start)
            connection = session.connection()
            done = []
            for record, found in planned:
                if found is None:
                    continue
                values, start = found
                changed = _UPDATE_SCHEDULE.run(connection, {
                    **values, "version": record.version + 1, "where_id": record.id,
                    "where_version": record.version})
                if changed != 1:
                    continue          # another worker advanced it first: its fire, not ours
                started = None
                if start is not None and start[0]["id"] not in taken:
                    row, logs, visits, stats, attrs = start
                    _INSERT_WORKFLOW.run(connection, row)
                    if logs:
                        _INSERT_LOG.run(connection, logs)
                    if visits:
                        _INSERT_VISIT[connection.dialect.name].run(connection, visits)
                    if stats:
                        _ADD_STATS[connection.dialect.name].run(connection, stats)
                    if attrs:
                        _UPSERT_ATTR[connection.dialect.name].run(connection, attrs)
                    started = row["id"]
                done.append((record, started))
            return done
        return self.transaction(statements)

    # -- batches (webapp.runtime.batches) -----------------------------------------------------

    def count_matching(self, filters: dict) -> int:
        """How many workflows the list's filters (``_filters``' keywords) match."""
        stmt = _filters(select(func.count()).select_from(WORKFLOW), **filters)
        return int(self.session.execute(stmt).scalar())

    def add_batch(self, values: dict, *, ids=None, filters: dict | None = None,
                  check=None) -> int:
        """Insert a batch (``values``: its columns but the counts) and its items, in one
        transaction: the workflows ``ids`` (unique), or every workflow the list's
        ``filters`` match now (one INSERT ... SELECT). ``check(total)`` may refuse (raise)
        before it is committed. Returns the number of items."""
        session = self.session
        batch_id = values["id"]

        def statements():
            session.execute(insert(BATCH), {**values, "total": 0, "done": 0, "skipped": 0,
                                            "failed": 0, "finished_at": None,
                                            "lease_owner": None, "lease_expires": None})
            if ids is not None:
                for i in range(0, len(ids), 5000):
                    session.execute(insert(BATCH_ITEM), [
                        {"batch_id": batch_id, "workflow_id": id, "outcome": None,
                         "message": None} for id in ids[i:i + 5000]])
                total = len(ids)
            else:
                chosen = _filters(select(literal(batch_id, String), WORKFLOW.c.id), **filters)
                session.execute(insert(BATCH_ITEM).from_select(["batch_id", "workflow_id"],
                                                               chosen))
                # counted, not the driver's rowcount (psycopg gives none for INSERT ... SELECT)
                total = session.execute(select(func.count()).select_from(BATCH_ITEM).where(
                    BATCH_ITEM.c.batch_id == batch_id)).scalar()
            if check is not None:
                check(total)
            session.execute(update(BATCH).where(BATCH.c.id == batch_id).values(total=total))
            return total
        return self.transaction(statements)

    def batch(self, id: str) -> BatchRecord | None:
        row = self.session.execute(select(BATCH).where(BATCH.c.id == id)).first()
        return None if row is None else BatchRecord.of(row)

    def batches(self, after: tuple[int, str] | None = None, limit: int = 50) -> list:
        """Up to ``limit`` batches, newest first, after the keyset position ``after``."""
        stmt = select(BATCH)
        if after is not None:
            stmt = stmt.where(tuple_(BATCH.c.created_at, BATCH.c.id) < tuple_(*after))
        stmt = stmt.order_by(BATCH.c.created_at.desc(), BATCH.c.id.desc()).limit(limit)
        return [BatchRecord.of(row) for row in self.session.execute(stmt)]

    def batch_items(self, id: str, outcome: str | None = None, after: str = "",
                    limit: int = 100) -> list:
        """Up to ``limit`` items of batch ``id`` (of that ``outcome``), by workflow id after
        ``after``: rows of (workflow_id, outcome, message)."""
        stmt = select(BATCH_ITEM.c.workflow_id, BATCH_ITEM.c.outcome, BATCH_ITEM.c.message
                      ).where(BATCH_ITEM.c.batch_id == id, BATCH_ITEM.c.workflow_id > after)
        if outcome is not None:
            stmt = stmt.where(BATCH_ITEM.c.outcome == outcome)
        return self.session.execute(stmt.order_by(BATCH_ITEM.c.workflow_id).limit(limit)).all()

    def claim_batch(self, owner: str, now_ms: int, lease_ms: int,
                    only: str | None = None) -> BatchRecord | None:
        """Lease the oldest unfinished batch (or ``only`` that one) that nobody else holds
        (or whose lease expired: its runner died) to ``owner`` until ``now_ms + lease_ms``;
        None when there is none. The lease is taken by an UPDATE whose WHERE says it is
        free, so two runners never both get it."""
        session = self.session
        free = and_(BATCH.c.status == "running",
                    or_(BATCH.c.lease_owner.is_(None), BATCH.c.lease_owner == owner,
                        BATCH.c.lease_expires < now_ms))
        if only is not None:
            free = and_(free, BATCH.c.id == only)

        def statements():
            ids = session.execute(
                select(BATCH.c.id).where(free).order_by(BATCH.c.created_at).limit(5)
                .with_for_update(skip_locked=True)).scalars().all()
            for id in ids:
                if session.execute(update(BATCH).where(BATCH.c.id == id, free).values(
                        lease_owner=owner, lease_expires=now_ms + lease_ms)).rowcount == 1:
                    return self.batch(id)
            return None
        return self.transaction(statements)

    def release_batch(self, id: str, owner: str) -> None:
        """Give back ``owner``'s lease of batch ``id`` (a runner that stops)."""
        self.transaction(lambda: self.session.execute(
            update(BATCH).where(BATCH.c.id == id, BATCH.c.lease_owner == owner).values(
                lease_owner=None, lease_expires=None)))

    def pending_items(self, id: str, limit: int) -> list[str]:
        """The first ``limit`` workflow ids of batch ``id`` not settled yet, by id."""
        return list(self.session.execute(
            select(BATCH_ITEM.c.workflow_id).where(BATCH_ITEM.c.batch_id == id,
                                                   BATCH_ITEM.c.outcome.is_(None))
            .order_by(BATCH_ITEM.c.workflow_id).limit(limit)).scalars())

    def keyed(self, key: str, ids) -> set[str]:
        """Which of the workflows ``ids`` hold the idempotency key ``key`` (a change that
        carried it was committed)."""
        ids = list(ids)
        found: set[str] = set()
        for i in range(0, len(ids), 500):
            found.update(self.session.execute(
                select(EVENT_KEY.c.workflow_id).where(EVENT_KEY.c.workflow_id.in_(
                    ids[i:i + 500]), EVENT_KEY.c.key == key)).scalars())
        return found

    def load_many(self, ids) -> dict[str, Record]:
        """``{id: record}`` of those of ``ids`` that exist."""
        ids = list(ids)
        found = {}
        for i in range(0, len(ids), 500):
            for row in self.session.execute(
                    select(WORKFLOW).where(WORKFLOW.c.id.in_(ids[i:i + 500]))):
                found[row.id] = Record.of(row)
        return found

    def settle(self, id: str, outcomes: dict, *, owner: str, lease_expires: int, now_ms: int,
               changes=()) -> set[str]:
        """One transaction: write ``changes`` (``(workflow id, version, row values, log
        rows, counter deltas, search-attribute rows)``, each version-checked as ``write`` does), record the ``outcomes`` of batch
        ``id``'s items (``{workflow id: (outcome, message)}``; an item settled already, by
        another runner, is left as it is, and so are the workflows whose change lost its
        race), count them in the batch, extend ``owner``'s lease to ``lease_expires``, and
        finish the batch once no item is left. Returns the ids whose change was stale (their
        items stay to do)."""
        session = self.session

        def statements():
            connection = session.connection()
            stale: set[str] = set()
            logs: list[dict] = []
            stats: list[dict] = []
            attrs: list[dict] = []
            for workflow_id, version, values, log_rows, stat_rows, attr_rows in changes:
                if _UPDATE_WORKFLOW.run(connection, {**values, "where_id": workflow_id,
                                                     "where_version": version}) != 1:
                    stale.add(workflow_id)
                else:
                    logs.extend(log_rows)
                    stats.extend(stat_rows)
                    attrs.extend(attr_rows)
            if logs:
                _INSERT_LOG.run(connection, logs)
            if attrs:
                _UPSERT_ATTR[connection.dialect.name].run(connection, attrs)
            if stats:
                _ADD_STATS[connection.dialect.name].run(connection, merge_stats(stats))
            counts = dict.fromkeys(OUTCOMES, 0)
            for workflow_id, (outcome, message) in outcomes.items():
                if workflow_id not in stale and _SETTLE_ITEM.run(connection, {
                        "outcome": outcome, "message": message, "where_batch": id,
                        "where_id": workflow_id}) == 1:
                    counts[outcome] += 1
            session.execute(update(BATCH).where(BATCH.c.id == id).values(
                **{name: BATCH.c[name] + n for name, n in counts.items()}))
            session.execute(update(BATCH).where(BATCH.c.id == id, BATCH.c.lease_owner == owner)
                            .values(lease_expires=lease_expires))
            session.execute(update(BATCH).where(
                BATCH.c.id == id, BATCH.c.status == "running",
                ~exists().where(BATCH_ITEM.c.batch_id == id, BATCH_ITEM.c.outcome.is_(None)))
                .values(status="finished", finished_at=now_ms, lease_owner=None,
                        lease_expires=None))
            return stale
        return self.transaction(statements)

    # -- login sessions (webapp.views.access) ----------------------------------------------

    def add_login(self, id: str, at_ms: int) -> None:
        self.transaction(lambda: self.session.execute(
            insert(LoginSession.__table__), {"id": id, "created_at": at_ms}))

    def login_is_live(self, id: str) -> bool:
        return self.session.execute(select(LoginSession.id).where(
            LoginSession.id == id)).first() is not None

    def end_login(self, id: str) -> None:
        self.transaction(lambda: self.session.execute(
            LoginSession.__table__.delete().where(LoginSession.id == id)))

    def transaction(self, statements):
        """Run ``statements()`` and commit; roll back on any error. A locked SQLite database
        is tried again a few times, then Busy."""
        session = self.session
        for attempt in range(_LOCK_RETRIES):
            try:
                result = statements()
                session.commit()
                return result
            except exc.IntegrityError as error:
                session.rollback()
                raise Duplicate(str(error.orig)) from None
            except exc.OperationalError as error:
                session.rollback()
                if not _locked(error):
                    raise
                if attempt == _LOCK_RETRIES - 1:
                    raise Busy("the database stayed locked; try again") from error
                time.sleep(0.05 * (attempt + 1))
            except BaseException:
                session.rollback()
                raise


# -- login sessions (webapp.views.access) -----------------------------------------------------

class LoginSession(db.Model):
    """A live login to the pages: a hash of the random id its session cookie holds. Log out
    deletes it, so a copy of the cookie taken before no longer counts."""

    __tablename__ = "tinyflow_login"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
