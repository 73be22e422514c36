"""Storage: the tables (flask-sqlalchemy models) and the queries the runtime makes.

One row per workflow, its JSON parts as text; one row per audit-log entry, appended and never
rewritten. Times in the tables are epoch milliseconds (UTC). Every write is a version-checked
statement, so two writers never overwrite each other: the loser gets ``Stale`` and redoes.
"""
from __future__ import annotations

import json
import time
from types import SimpleNamespace

from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import (BigInteger, ForeignKey, Index, String, Text, bindparam, event, exc,
                        insert, or_, select, text, tuple_, update)
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


class Record(SimpleNamespace):
    """A workflow row as some write left it, detached: a WorkflowRow's attributes without the
    ORM's per-object bookkeeping (the runtime makes one at every commit)."""


WORKFLOW = WorkflowRow.__table__
LOG = LogRow.__table__
EVENT_KEY = EventKey.__table__
COUNT = StatusCount.__table__


class Stale(Exception):
    """The row changed (or vanished) since it was read: reload and redo."""


class Duplicate(Exception):
    """The id, or the idempotency key, is already taken."""


class Busy(Exception):
    """The database stayed locked past the retries."""


class SchemaTooNew(RuntimeError):
    """The database was written by a newer tiny-workflow."""


dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


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
            _keep_counts()
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


def _add_one(row: str) -> str:
    return (f"INSERT INTO workflow_count (flow, status, n) VALUES ({row}.flow, {row}.status, 1) "
            "ON CONFLICT (flow, status) DO UPDATE SET n = n + 1;")


def _take_one(row: str) -> str:
    return f"UPDATE workflow_count SET n = n - 1 WHERE flow = {row}.flow AND status = {row}.status;"


_COUNT_TRIGGERS = {
    "workflow_count_insert": f"AFTER INSERT ON workflow BEGIN {_add_one('new')} END",
    "workflow_count_update": "AFTER UPDATE OF flow, status ON workflow WHEN old.flow IS NOT "
                             "new.flow OR old.status IS NOT new.status BEGIN "
                             f"{_take_one('old')} {_add_one('new')} END",
    "workflow_count_delete": f"AFTER DELETE ON workflow BEGIN {_take_one('old')} END",
}


def _counted() -> bool:
    """Whether workflow_count holds the counts (SQLite)."""
    return db.session.get_bind().dialect.name == "sqlite"


def _keep_counts() -> None:
    """SQLite: make the triggers that keep workflow_count where they are missing (a database
    made before them), and count every workflow once, in the same transaction."""
    if not _counted():
        return
    have = set(db.session.execute(
        text("SELECT name FROM sqlite_master WHERE type = 'trigger'")).scalars())
    if have.issuperset(_COUNT_TRIGGERS):
        return
    db.session.execute(COUNT.delete())   # opens the transaction the triggers are made in
    for name, body in _COUNT_TRIGGERS.items():
        db.session.execute(text(f"CREATE TRIGGER IF NOT EXISTS {name} {body}"))
    db.session.execute(insert(COUNT).from_select(
        ["flow", "status", "n"],
        select(WORKFLOW.c.flow, WORKFLOW.c.status, db.func.count())
        .group_by(WORKFLOW.c.flow, WORKFLOW.c.status)))
    db.session.commit()


# -- reading ----------------------------------------------------------------------------------

_LOAD = select(WORKFLOW).where(WORKFLOW.c.id == bindparam("id"))


def load(id: str):
    """The workflow row as it is in the database now: a plain row with a WorkflowRow's
    attributes (every call of the API reads one; the ORM's objects cost several times more)."""
    return db.session.execute(_LOAD, {"id": id}).first()


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
         limit: int = 50) -> list:
    """Up to ``limit`` rows (plain rows with a WorkflowRow's attributes: a list has no use for
    the ORM's objects, which cost more to make), newest updated first, after the keyset
    position ``after``."""
    stmt = _filters(select(WORKFLOW), flows, statuses, q)
    if after is not None:
        stmt = stmt.where(tuple_(WORKFLOW.c.updated_at, WORKFLOW.c.id) < tuple_(*after))
    stmt = stmt.order_by(WORKFLOW.c.updated_at.desc(), WORKFLOW.c.id.desc()).limit(limit)
    return db.session.execute(stmt).all()


def count_by_status(flows=(), q=None) -> dict[str, int]:
    """``{status: count}`` of the workflows of ``flows`` (all when empty) whose id contains
    ``q``; statuses without any are left out. Without ``q``, SQLite's are looked up."""
    if not q and _counted():
        stmt = select(COUNT.c.status, db.func.sum(COUNT.c.n)).group_by(COUNT.c.status)
        if flows:
            stmt = stmt.where(COUNT.c.flow.in_(list(flows)))
        return {status: int(n) for status, n in db.session.execute(stmt) if n}
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
        self._compiled: dict[tuple, tuple[str, list[str] | None]] = {}

    def run(self, connection, params: dict | list[dict]) -> int:
        """Execute on ``connection`` (the session's: ``db.session.connection()``) with one row
        of ``params`` (a dict) or many (a list of dicts with the same keys); returns the
        driver's rowcount."""
        many = isinstance(params, list)
        keys = tuple(params[0] if many else params)
        dialect = connection.dialect
        cache_key = (type(dialect), dialect.paramstyle, keys)
        found = self._compiled.get(cache_key)
        if found is None:
            compiled = self.statement.compile(dialect=dialect, column_keys=list(keys))
            found = self._compiled[cache_key] = (str(compiled), compiled.positiontup)
        sql, order = found
        if order is not None:     # a positional paramstyle (SQLite's "?")
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


def write(id: str, version: int | None, values: dict, logs: list[dict],
          event_key: str | None = None) -> None:
    """Insert (``version`` None) or version-checked update of one workflow row, with its new
    log rows (and an idempotency key), in one transaction, committed.

    Raises Stale when the row is not at ``version`` any more, Duplicate when the id or the key
    is taken, Busy when SQLite stays locked.
    """
    def statements():
        connection = db.session.connection()
        if version is None:
            _INSERT_WORKFLOW.run(connection, {"id": id, **values})
        elif _UPDATE_WORKFLOW.run(connection,
                                  {**values, "where_id": id, "where_version": version}) != 1:
            raise Stale(id)
        if logs:
            _INSERT_LOG.run(connection, logs)
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
        # Another worker that read the same candidates may lease them all first (on SQLite,
        # the version check is what keeps workers apart): then read again, past its leases.
        for _ in range(5):
            claimed, candidates = attempt()
            if claimed or not candidates:
                break
        return claimed

    def attempt():
        # "flow || ''" keeps SQLite from choosing a flow index for "flow IN (...)", which
        # would visit every workflow of those flows; the wake index visits only the due ones.
        candidates = db.session.execute(
            select(WORKFLOW)
            .where(WORKFLOW.c.wake_at <= now_ms, (WORKFLOW.c.flow + "").in_(list(flows)),
                   or_(WORKFLOW.c.lease_expires.is_(None), WORKFLOW.c.lease_expires < now_ms))
            .order_by(WORKFLOW.c.wake_at).limit(limit)
            .with_for_update(skip_locked=True)).all()   # PostgreSQL; SQLite ignores it
        claimed = []
        connection = db.session.connection()
        for row in candidates:
            done = _UPDATE_WORKFLOW.run(connection, {
                "lease_owner": owner, "lease_expires": now_ms + lease_ms,
                "version": row.version + 1, "where_id": row.id, "where_version": row.version})
            if done == 1:
                claimed.append(Record(**{
                    **row._mapping, "lease_owner": owner, "lease_expires": now_ms + lease_ms,
                    "version": row.version + 1}))
        return claimed, candidates
    return transaction(statements)


def park(id: str, version: int) -> None:
    """Take a row out of the runners' way (no wake time, no lease) without touching its data:
    for a broken snapshot, which running again cannot repair. Stale if it changed meanwhile."""
    def statements():
        done = db.session.execute(
            update(WORKFLOW).where(WORKFLOW.c.id == id, WORKFLOW.c.version == version),
            {"wake_at": None, "lease_owner": None, "lease_expires": None, "version": version + 1})
        if done.rowcount != 1:
            raise Stale(id)
    transaction(statements)


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


# -- login sessions (webapp.views.access) -----------------------------------------------------

class LoginSession(db.Model):
    """A live login to the pages: a hash of the random id its session cookie holds. Log out
    deletes it, so a copy of the cookie taken before no longer counts."""

    __tablename__ = "tinyflow_login"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[int] = mapped_column(BigInteger)


def add_login(id: str, at_ms: int) -> None:
    db.session.add(LoginSession(id=id, created_at=at_ms))
    db.session.commit()


def login_is_live(id: str) -> bool:
    return db.session.get(LoginSession, id) is not None


def end_login(id: str) -> None:
    db.session.execute(LoginSession.__table__.delete().where(LoginSession.id == id))
    db.session.commit()
