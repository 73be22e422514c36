"""Storage: the tables (flask-sqlalchemy models) and the queries the runtime makes.

One row per workflow, its JSON parts as text; one row per audit-log entry, appended and never
rewritten. Times in the tables are epoch milliseconds (UTC). Every write is a version-checked
statement, so two writers never overwrite each other: the loser gets ``Stale`` and redoes.
"""
from __future__ import annotations

import json
import time

from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import (BigInteger, ForeignKey, Index, String, Text, event, exc, insert, or_,
                        select, text, tuple_, update)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA_VERSION = 1
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

    __table_args__ = (
        Index("ix_workflow_updated", "updated_at", "id"),
        Index("ix_workflow_status_updated", "status", "updated_at", "id"),
        Index("ix_workflow_flow_updated", "flow", "updated_at", "id"),
        Index("ix_workflow_flow_status_updated", "flow", "status", "updated_at", "id"),
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


class Meta(db.Model):
    """Facts about the database itself, such as its schema version."""

    __tablename__ = "tinyflow_meta"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


WORKFLOW = WorkflowRow.__table__
LOG = LogRow.__table__
EVENT_KEY = EventKey.__table__


class Stale(Exception):
    """The row changed (or vanished) since it was read: reload and redo."""


class Duplicate(Exception):
    """The id, or the idempotency key, is already taken."""


class Busy(Exception):
    """The database stayed locked past the retries."""


class SchemaTooNew(RuntimeError):
    """The database was written by a newer tiny-workflow."""


dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


# -- setup ------------------------------------------------------------------------------------

def init_app(app: Flask) -> None:
    """Bind the database to ``app``, tune SQLite, create the tables on first start and refuse
    a schema newer than this code."""
    db.init_app(app)
    with app.app_context():
        for engine in db.engines.values():
            if engine.dialect.name == "sqlite":
                event.listen(engine, "connect", _sqlite_pragmas(app.config))
        _create_schema(app)


def _sqlite_pragmas(config):
    synchronous = config.get("TINYFLOW_SQLITE_SYNCHRONOUS", "FULL")
    busy_ms = int(config.get("TINYFLOW_SQLITE_BUSY_MS", 5000))

    def on_connect(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.close()
    return on_connect


def _create_schema(app: Flask) -> None:
    for attempt in range(3):
        try:
            db.create_all()
            found = db.session.execute(
                select(Meta.value).where(Meta.key == "schema_version")).scalar()
            if found is None:
                db.session.execute(insert(Meta).values(key="schema_version",
                                                       value=str(SCHEMA_VERSION)))
                db.session.commit()
            break
        except (exc.OperationalError, exc.ProgrammingError, exc.IntegrityError):
            # Another process is creating the same tables right now: look again.
            db.session.rollback()
            if attempt == 2:
                raise
            time.sleep(0.2)
    db.session.remove()
    if int(found or SCHEMA_VERSION) > SCHEMA_VERSION:
        url = db.engine.url.render_as_string(hide_password=True)
        raise SchemaTooNew(
            f"the database {url} has schema version {found}, newer than this tiny-workflow "
            f"understands ({SCHEMA_VERSION}); upgrade tiny-workflow or use another database "
            "(TINYFLOW_DATABASE_URL)")


# -- reading ----------------------------------------------------------------------------------

def load(id: str) -> WorkflowRow | None:
    """The workflow row as it is in the database now (not a cached copy)."""
    return db.session.execute(
        select(WorkflowRow).where(WorkflowRow.id == id)
        .execution_options(populate_existing=True)).scalar_one_or_none()


def exists(ids) -> set[str]:
    """Which of ``ids`` are taken."""
    ids = list(ids)
    found: set[str] = set()
    for i in range(0, len(ids), 500):
        found.update(db.session.execute(
            select(WORKFLOW.c.id).where(WORKFLOW.c.id.in_(ids[i:i + 500]))).scalars())
    return found


def has_event_key(id: str, key: str) -> bool:
    return db.session.execute(select(EVENT_KEY.c.key).where(
        EVENT_KEY.c.workflow_id == id, EVENT_KEY.c.key == key)).first() is not None


def _filters(stmt, flows=(), statuses=(), q=None):
    if flows:
        stmt = stmt.where(WORKFLOW.c.flow.in_(list(flows)))
    if statuses:
        stmt = stmt.where(WORKFLOW.c.status.in_(list(statuses)))
    if q:
        stmt = stmt.where(WORKFLOW.c.id.contains(q, autoescape=True))
    return stmt


def page(flows=(), statuses=(), q=None, after: tuple[int, str] | None = None,
         limit: int = 50) -> list[WorkflowRow]:
    """Up to ``limit`` rows, newest updated first, after the keyset position ``after``."""
    stmt = _filters(select(WorkflowRow), flows, statuses, q)
    if after is not None:
        stmt = stmt.where(tuple_(WorkflowRow.updated_at, WorkflowRow.id) < tuple_(*after))
    stmt = stmt.order_by(WorkflowRow.updated_at.desc(), WorkflowRow.id.desc()).limit(limit)
    return list(db.session.execute(stmt.execution_options(populate_existing=True)).scalars())


def count_by_status(flows=(), q=None) -> dict[str, int]:
    stmt = _filters(select(WORKFLOW.c.status, db.func.count()), flows, (), q)
    return dict(db.session.execute(stmt.group_by(WORKFLOW.c.status)).all())


def log_rows(id: str, type=None, step=None, after: int = 0, limit: int | None = None):
    """Audit-log rows of workflow ``id`` with n > ``after``, oldest first."""
    stmt = select(LOG).where(LOG.c.workflow_id == id, LOG.c.n > after)
    if type:
        stmt = stmt.where(LOG.c.type == type)
    if step:
        stmt = stmt.where(LOG.c.step == step)
    stmt = stmt.order_by(LOG.c.n)
    if limit is not None:
        stmt = stmt.limit(limit)
    return db.session.execute(stmt).all()


# -- writing ----------------------------------------------------------------------------------

def log_params(id: str, first_n: int, entries) -> list[dict]:
    """Rows for audit-log ``entries`` (engine format), numbered from ``first_n``."""
    return [{"workflow_id": id, "n": first_n + i, "type": e["type"], "step": e.get("_step"),
             "at": e.get("_at"), "values_json": dumps(e.get("values") or {})}
            for i, e in enumerate(entries)]


def write(id: str, version: int | None, values: dict, logs: list[dict],
          event_key: str | None = None) -> None:
    """Insert (``version`` None) or version-checked update of one workflow row, with its new
    log rows (and an idempotency key), in one transaction, committed.

    Raises Stale when the row is not at ``version`` any more, Duplicate when the id or the key
    is taken, Busy when SQLite stays locked.
    """
    def statements():
        if version is None:
            db.session.execute(insert(WORKFLOW), {"id": id, **values})
        else:
            done = db.session.execute(
                update(WORKFLOW).where(WORKFLOW.c.id == id, WORKFLOW.c.version == version),
                values)
            if done.rowcount != 1:
                raise Stale(id)
        if logs:
            db.session.execute(insert(LOG), logs)
        if event_key is not None:
            db.session.execute(insert(EVENT_KEY), {"workflow_id": id, "key": event_key,
                                                   "created_at": values["updated_at"]})
    transaction(statements)


def insert_many(rows: list[dict], logs: list[dict]) -> None:
    """Insert whole workflows (an import) in one transaction."""
    def statements():
        db.session.execute(insert(WORKFLOW), rows)
        for i in range(0, len(logs), 5000):
            db.session.execute(insert(LOG), logs[i:i + 5000])
    transaction(statements)


def claim_due(now_ms: int, flows, owner: str, lease_ms: int, limit: int) -> list:
    """Lease up to ``limit`` workflows of ``flows`` that are due by ``now_ms`` and not leased
    (or whose lease expired: their runner died). Returns their rows, as leased."""
    def statements():
        candidates = db.session.execute(
            select(WORKFLOW)
            .where(WORKFLOW.c.wake_at <= now_ms, WORKFLOW.c.flow.in_(list(flows)),
                   or_(WORKFLOW.c.lease_expires.is_(None), WORKFLOW.c.lease_expires < now_ms))
            .order_by(WORKFLOW.c.wake_at).limit(limit)
            .with_for_update(skip_locked=True)).all()   # PostgreSQL; SQLite ignores it
        claimed = []
        for row in candidates:
            # The version check is what keeps two SQLite workers apart.
            done = db.session.execute(
                update(WORKFLOW).where(WORKFLOW.c.id == row.id, WORKFLOW.c.version == row.version),
                {"lease_owner": owner, "lease_expires": now_ms + lease_ms,
                 "version": row.version + 1})
            if done.rowcount == 1:
                claimed.append(WorkflowRow(**{
                    **row._mapping, "lease_owner": owner, "lease_expires": now_ms + lease_ms,
                    "version": row.version + 1}))
        return claimed
    return transaction(statements)


def transaction(statements):
    """Run ``statements()`` and commit; roll back on any error. A locked SQLite database is
    tried again a few times, then Busy."""
    for attempt in range(_LOCK_RETRIES):
        try:
            result = statements()
            db.session.commit()
            return result
        except exc.IntegrityError as error:
            db.session.rollback()
            raise Duplicate(str(error.orig)) from None
        except exc.OperationalError as error:
            db.session.rollback()
            if not _locked(error):
                raise
            if attempt == _LOCK_RETRIES - 1:
                raise Busy("the database stayed locked; try again") from error
            time.sleep(0.05 * (attempt + 1))
        except BaseException:
            db.session.rollback()
            raise


def _locked(error: exc.OperationalError) -> bool:
    text = str(error.orig).lower()
    return "locked" in text or "busy" in text
