"""Storage: where the database lives, how SQLite is tuned, the schema version, version-checked
writes, and the indexes the dashboard's and the runner's queries use."""
import sqlite3

import pytest
from sqlalchemy import event, inspect, text, update

from webapp import create_app, runtime, store
from webapp.store import db


def test_the_database_lives_in_the_instance_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYFLOW_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.delenv("TINYFLOW_DATABASE_URL", raising=False)
    app = create_app({"TESTING": True})
    with app.app_context():
        assert db.engine.url.database == str(tmp_path / "instance" / "tiny-workflow.sqlite")
        db.engine.dispose()
    assert (tmp_path / "instance" / "tiny-workflow.sqlite").exists()


def test_tinyflow_database_url_says_otherwise(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYFLOW_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.setenv("TINYFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    app = create_app({"TESTING": True})
    with app.app_context():
        db.engine.dispose()
    assert (tmp_path / "elsewhere.db").exists()
    assert not (tmp_path / "instance" / "tiny-workflow.sqlite").exists()


def test_tables_are_created_on_first_start(any_db_app):
    with any_db_app.app_context():
        tables = set(inspect(db.engine).get_table_names())
        assert {"workflow", "workflow_log", "workflow_event_key", "tinyflow_meta"} <= tables
        version = db.session.execute(text(
            "SELECT value FROM tinyflow_meta WHERE key = 'schema_version'")).scalar()
        assert version == str(store.SCHEMA_VERSION)
        indexes = {i["name"] for i in inspect(db.engine).get_indexes("workflow")}
        assert {"ix_workflow_status_updated", "ix_workflow_flow_updated",
                "ix_workflow_wake"} <= indexes


def test_sqlite_runs_wal_with_full_sync_and_a_busy_timeout(app):
    with app.app_context():
        def pragma(name):
            return db.session.execute(text(f"PRAGMA {name}")).scalar()
        assert pragma("journal_mode") == "wal"
        assert pragma("synchronous") == 2          # FULL
        assert pragma("busy_timeout") == 5000


def test_a_newer_schema_is_refused_with_a_clear_message(make_app, any_db_url):
    app = make_app(any_db_url)
    with app.app_context():
        db.session.execute(text(
            "UPDATE tinyflow_meta SET value = '99' WHERE key = 'schema_version'"))
        db.session.commit()
        db.engine.dispose()
    with pytest.raises(store.SchemaTooNew, match="schema version 99, newer than this"):
        make_app(any_db_url)


def test_a_second_start_keeps_the_data(make_app, any_db_url):
    with make_app(any_db_url).app_context():
        runtime.start("simple", id="kept")
    with make_app(any_db_url).app_context():
        assert runtime.get("kept").status == "finished"


def test_writes_are_version_checked(any_db_app):
    with any_db_app.app_context():
        row = runtime.start("guess_game", id="g")
        values = {"step": row.step, "version": row.version + 1, "updated_at": row.updated_at}
        with pytest.raises(store.Stale):
            runtime.current().store.write("g", row.version - 1, values, [])
        with pytest.raises(store.Stale):
            runtime.current().store.write("missing", 1, values, [])
        runtime.current().store.write("g", row.version, values, [])
        assert runtime.get("g").version == row.version + 1


def test_an_insert_of_a_taken_id_is_a_duplicate_and_writes_nothing(any_db_app):
    with any_db_app.app_context():
        row = runtime.start("simple", id="s")
        values = {c: getattr(row, c) for c in store.WORKFLOW.c.keys() if c != "id"}
        logs = store.log_params("s", row.log_count + 1, [{"type": "x", "values": {}}])
        with pytest.raises(store.Duplicate):
            runtime.current().store.write("s", None, values, logs)
        assert len(runtime.all_logs("s")) == row.log_count


def test_a_locked_sqlite_database_is_retried_then_unavailable(make_app, tmp_path):
    app = make_app(TINYFLOW_SQLITE_BUSY_MS=20)
    with app.app_context():
        db.engine.dispose()
        holder = sqlite3.connect(tmp_path / "tiny-workflow.sqlite", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")             # another process holds the write lock
        try:
            with pytest.raises(runtime.Unavailable, match="locked"):
                runtime.start("simple", id="s")
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        with pytest.raises(runtime.NotFound):
            runtime.get("s")                          # nothing half-written
        assert runtime.start("simple", id="s").status == "finished"


def query_plan(app, call) -> str:
    """SQLite's plan for the last SELECT that ``call()`` runs."""
    seen = []
    def listener(conn, cursor, sql, params, context, many):
        seen.append((sql, params))
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        call()
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    sql, params = [s for s in seen if s[0].lstrip().upper().startswith("SELECT")][-1]
    rows = db.session.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params).all()
    return " | ".join(r[-1] for r in rows)


def test_the_list_and_the_runner_queries_use_indexes(app, clock):
    with app.app_context():
        rows = [{"id": f"w{i}", "flow": "simple", "step": "step_end", "status": "finished",
                 "state": "{}", "cache": "{}", "system": "{}", "inbox": None, "error": None,
                 "wake_at": None, "lease_owner": None, "lease_expires": None, "version": 1,
                 "log_count": 0, "created_at": i, "updated_at": i} for i in range(2000)]
        runtime.current().store.insert_many(rows, [])
        db.session.execute(text("ANALYZE"))
        plans = {
            "page": query_plan(app, lambda: runtime.list_workflows(limit=50)),
            "status": query_plan(app, lambda: runtime.list_workflows(statuses=["waiting"])),
            "flow": query_plan(app, lambda: runtime.list_workflows(flows=["simple"])),
            "both": query_plan(app, lambda: runtime.list_workflows(
                flows=["simple"], statuses=["failed"])),
            "claim": query_plan(app, runtime.run_due),
        }
    assert "ix_workflow_updated" in plans["page"]
    assert "ix_workflow_status_updated" in plans["status"]
    assert "ix_workflow_flow_updated" in plans["flow"]
    assert ("ix_workflow_flow_updated" in plans["both"]      # either: each index holds the
            or "ix_workflow_status_updated" in plans["both"])  # other filter's column too
    assert "ix_workflow_wake" in plans["claim"]
    assert not [name for name, plan in plans.items() if "TEMP B-TREE" in plan], plans


def test_lease_columns_are_set_while_running_and_cleared_after(any_db_app, clock):
    with any_db_app.app_context():
        runtime.start("guess_game", id="g")
        row = runtime.get("g")
        assert row.lease_owner is None and row.lease_expires is None
        version = row.version
        db.session.execute(update(store.WORKFLOW).where(store.WORKFLOW.c.id == "g")
                           .values(wake_at=0))
        db.session.commit()
        [claimed] = runtime.current().store.claim_due(round(clock() * 1000), ["guess_game"], "me", 1000, 10)
        assert claimed.lease_owner == "me" and claimed.version == version + 1
        assert runtime.current().store.claim_due(round(clock() * 1000), ["guess_game"], "other", 1000, 10) == []
        later = round(clock() * 1000) + 1001                      # the lease ran out
        [taken] = runtime.current().store.claim_due(later, ["guess_game"], "other", 1000, 10)
        assert taken.lease_owner == "other"


def test_claims_lock_rows_with_skip_locked_on_postgresql(any_db_app, clock):
    with any_db_app.app_context():
        runtime.start("user_onboarding", {"userEmail": "a@b.c"}, id="u")
        seen = []
        def listener(conn, cursor, sql, *args):
            seen.append(sql)
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            clock.advance(10)
            assert runtime.run_due() == 1
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        [claim] = [s for s in seen if "FROM workflow" in s and "wake_at <=" in s]
        if db.engine.dialect.name == "postgresql":
            assert "FOR UPDATE SKIP LOCKED" in claim


def test_a_claim_whose_candidates_another_worker_leased_first_reads_again(app, clock,
                                                                          monkeypatch):
    """Two SQLite workers can read the same due rows; the one that loses every version check
    must lease other due rows, not report "nothing due" (and stop, with --exit-when-idle)."""
    path = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    with app.app_context():
        for i in range(4):
            runtime.start("user_onboarding", id=f"u{i}")
    clock.advance(10)
    real_run = store._UPDATE_WORKFLOW.run
    raced = []

    def run_after_the_other_worker(connection, params):
        if not raced:      # the other worker leases this row first, from its own connection
            other = sqlite3.connect(path, isolation_level=None)
            other.execute("UPDATE workflow SET lease_owner='other', lease_expires=?, "
                          "version=version+1 WHERE id=?",
                          (params["lease_expires"], params["where_id"]))
            other.close()
            raced.append(params["where_id"])
        return real_run(connection, params)

    monkeypatch.setattr(store._UPDATE_WORKFLOW, "run", run_after_the_other_worker)
    with app.app_context():
        rows = runtime.current().store.claim_due(int(clock() * 1000), ["user_onboarding"], "me", 60_000, 1)
    assert [row.id for row in rows] != raced and len(rows) == 1
    assert rows[0].lease_owner == "me"
