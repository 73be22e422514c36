"""Issue 16: changing a flow's code under running workflows (DESIGN.md "Versions").

The same stored workflows are loaded by several variants of one flow, ``order``, each an app
on the same database with its own TINYFLOW_FLOWS module (made here, in ``sys.modules``):

- ``v1``: version "1"; a workflow charges, acknowledges, then waits for ``shipped`` and emails;
- ``v1_again``: the same version, the code between the commands rewritten;
- ``v2``: compatible ("1" in ``compatible_versions``): a step added after the wait;
- ``v3``: incompatible: the waiting step renamed and its ``ack`` action's key changed;
- ``v4``: v3 with ``migrate(snapshot, from_version)`` that moves a version "1" snapshot over.
"""
from __future__ import annotations

import re
import sqlite3
import sys
import types

import pytest

from webapp.cli import main
from webapp.engine import Workflow, step
from webapp.store import SCHEMA_VERSION, SchemaTooNew, Store

class Cli:
    """``tiny-workflow`` run against a test app."""

    def __init__(self, app):
        self.runner = app.test_cli_runner()

    def invoke(self, args):
        return self.runner.invoke(main, args=args)


CALLS: list[str] = []      # every action that really ran, by name


def act(name: str, value=None):
    CALLS.append(name)
    return value if value is not None else name


class OrderV1(Workflow):
    name = "order"
    version = "1"

    @step
    def charge(self):
        yield self.action("charge", act, "charge")
        return "wait_ship"

    @step
    def wait_ship(self):
        yield self.action("ack", act, "ack")
        parcel = yield self.wait_event("shipped")
        yield self.action("email", act, "email", parcel)
        return None


class OrderV1Again(Workflow):
    """The same version: only the code around the commands changed."""

    name = "order"
    version = "1"

    @step
    def charge(self):
        amount = self.state.get("amount", 0) * 1
        self.state["amount"] = amount
        yield self.action("charge", act, "charge")
        return "wait_ship"

    @step
    def wait_ship(self):
        yield self.action("ack", act, "ack")
        parcel = yield self.wait_event("shipped")
        yield self.action("email", act, "email", parcel)
        return None


class OrderV2(Workflow):
    """Compatible: a step added after the wait (the workflows waiting in it go on to it)."""

    name = "order"
    version = "2"
    compatible_versions = ("1",)

    @step
    def charge(self):
        yield self.action("charge", act, "charge")
        return "wait_ship"

    @step
    def wait_ship(self):
        yield self.action("ack", act, "ack")
        parcel = yield self.wait_event("shipped")
        yield self.action("email", act, "email", parcel)
        return "thank"

    @step
    def thank(self):
        yield self.action("thanks", act, "thanks")
        return None


class OrderV3(Workflow):
    """Incompatible: ``wait_ship`` renamed, and its ``ack`` action's key changed (run on a
    version "1" snapshot, the ack would be sent again)."""

    name = "order"
    version = "3"

    @step
    def charge(self):
        yield self.action("charge", act, "charge")
        return "await_shipping"

    @step
    def await_shipping(self):
        yield self.action("acknowledge", act, "ack")
        parcel = yield self.wait_event("shipped")
        yield self.action("email", act, "email", parcel)
        return None


class OrderV4(OrderV3):
    """v3, with a migration from version "1" (and a refusal of anything else)."""

    name = "order"
    version = "4"

    @classmethod
    def migrate(cls, snapshot, from_version):
        if from_version != "1":
            raise ValueError(f"cannot migrate from version {from_version}")
        if snapshot["state"].get("poison"):
            raise ValueError("this one cannot be migrated")

        def moved(key):
            seq, step_name, rest = key.split(":", 2)
            if step_name == "wait_ship":
                step_name = "await_shipping"
                rest = "acknowledge" if rest == "ack" else rest
            return f"{seq}:{step_name}:{rest}"
        snapshot["cache"] = {k if k == "_seq" else moved(k): v
                             for k, v in snapshot["cache"].items()}
        snapshot["system"] = {moved(k): v for k, v in snapshot["system"].items()}
        if snapshot["step"] == "wait_ship":
            snapshot["step"] = "await_shipping"
        return snapshot


VARIANTS = {"v1": OrderV1, "v1_again": OrderV1Again, "v2": OrderV2, "v3": OrderV3,
            "v4": OrderV4}


@pytest.fixture(autouse=True)
def variant_modules(monkeypatch):
    """A module ``tw_order_<variant>`` per variant, for TINYFLOW_FLOWS."""
    CALLS.clear()
    for key, cls in VARIANTS.items():
        module = types.ModuleType(f"tw_order_{key}")
        module.Order = cls
        monkeypatch.setitem(sys.modules, module.__name__, module)


@pytest.fixture
def apps(make_app, any_db_url):
    """``apps("v1")``: an app on the test's one database with that variant loaded."""
    made = {}

    def app_of(key):
        if key not in made:
            made[key] = make_app(any_db_url, TINYFLOW_FLOWS=[f"tw_order_{key}"])
        return made[key]
    return app_of


def rt(app):
    return app.extensions["tinyflow"]


def waiting_order(apps, id="o1", **state):
    """A version "1" workflow waiting for ``shipped`` (charged and acknowledged)."""
    answer = rt(apps("v1")).start("order", state, id=id)
    assert answer["status"] == "waiting" and answer["step"] == "wait_ship"
    assert answer["flow_version"] == "1" and answer["held"] is None
    return answer


# --- versions ----------------------------------------------------------------------------

class Mail(Workflow):
    name = "mail"

    @step
    def one(self):
        yield self.action("send", act, "mail")
        yield self.wait_event("go")
        return None


class MailReworded(Workflow):
    """The same definition: other words, other code between the commands."""

    name = "mail"

    @step
    def one(self):
        self.state["tries"] = self.state.get("tries", 0)
        yield self.action("send", act, "mail")
        yield self.wait_event("go")
        return None


class MailRekeyed(Workflow):
    name = "mail"

    @step
    def one(self):
        yield self.action("send_mail", act, "mail")
        yield self.wait_event("go")
        return None


def test_a_flow_without_a_declared_version_has_a_hash_of_its_definition():
    assert len(Mail.version) == 8 and Mail.version == MailReworded.version
    assert MailRekeyed.version != Mail.version                  # an action's key counts
    assert OrderV1.version == "1" and OrderV4.version == "4"    # declared ones are kept
    assert OrderV4.compatible_versions == ()                     # not inherited


def test_api_flows_and_workflows_carry_their_versions(apps):
    client = apps("v1").test_client()
    flows = client.get("/api/flows").get_json()
    assert [(f["name"], f["version"], f["compatible_versions"]) for f in flows] == [
        ("order", "1", [])]
    answer = client.post("/api/workflows", json={"flow": "order", "id": "o1"}).get_json()
    assert answer["flow_version"] == "1" and answer["held"] is None
    item = client.get("/api/workflows").get_json()["items"][0]
    assert item["flow_version"] == "1"
    assert apps("v2").test_client().get("/api/flows").get_json()[0]["compatible_versions"] == [
        "1"]


# --- the same stored workflows, loaded by each variant -----------------------------------

def test_the_same_version_runs_them_on(apps, clock):
    waiting_order(apps)
    answer = rt(apps("v1_again")).send("o1", "shipped", "parcel-1")
    assert answer["status"] == "finished" and answer["held"] is None
    assert CALLS == ["charge", "ack", "email"]


def test_compatible_code_runs_them_on_and_keeps_the_version_they_started_on(apps):
    waiting_order(apps)
    answer = rt(apps("v2")).send("o1", "shipped", "parcel-1")
    assert answer["status"] == "finished" and answer["flow_version"] == "1"
    assert CALLS == ["charge", "ack", "email", "thanks"]
    assert rt(apps("v2")).start("order", id="o2")["flow_version"] == "2"


def test_incompatible_code_holds_them_runners_leave_them_and_the_api_refuses(apps, clock):
    waiting_order(apps)
    rt(apps("v1")).start("order", id="due")                       # waiting too
    v3 = apps("v3")
    client = v3.test_client()
    answer = client.get("/api/workflows/o1").get_json()
    assert answer["status"] == "waiting" and answer["flow_version"] == "1"
    assert "version 1" in answer["held"] and "version 3" in answer["held"]
    for path, body in [("/api/workflows/o1/events", {"name": "shipped"}),
                       ("/api/workflows/o1/timers/advance", {"seconds": 10}),
                       ("/api/workflows/o1/retry", {})]:
        response = client.post(path, json=body)
        assert response.status_code == 409, path
        assert response.get_json()["error"]["code"] == "version_mismatch", path
    # Runners do not claim it, even when it is due (and a compatible one of the same
    # database is claimed as usual).
    with v3.app_context():
        from webapp.store import WORKFLOW, db
        db.session.execute(WORKFLOW.update().where(WORKFLOW.c.status == "waiting")
                           .values(wake_at=0))
        db.session.commit()
    assert rt(v3).run_due(now=clock() + 100) == 0
    row = rt(v3).get("o1")
    assert row["status"] == "waiting" and row["log_count"] == answer["log_count"]
    assert CALLS == ["charge", "ack", "charge", "ack"]          # nothing ran again
    # Held is neither broken nor failed: the list shows it, and v1 code runs it on.
    assert rt(apps("v1")).run_due(now=clock() + 100) == 2       # due again (wake_at 0)
    assert rt(apps("v1")).send("o1", "shipped", "p")["status"] == "finished"
    assert CALLS[-1] == "email"
    # Cancel works on a held workflow, even one waiting in a step v3 no longer has.
    cancelled = client.post("/api/workflows/due/cancel", json={"reason": "old code"})
    assert cancelled.status_code == 200, cancelled.get_json()
    assert cancelled.get_json()["status"] == "cancelled"
    assert cancelled.get_json()["held"] is None and cancelled.get_json()["step"] == "wait_ship"


def test_a_changed_action_key_without_a_declared_version_is_held_not_run_again(
        make_app, tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'mail.sqlite'}"
    for n, cls in enumerate((Mail, MailRekeyed)):
        module = types.ModuleType(f"tw_mail_{n}")
        module.Mail = cls
        monkeypatch.setitem(sys.modules, module.__name__, module)
    old = make_app(url, TINYFLOW_FLOWS=["tw_mail_0"])
    new = make_app(url, TINYFLOW_FLOWS=["tw_mail_1"])
    rt(old).start("mail", id="m")
    answer = new.test_client().post("/api/workflows/m/events", json={"name": "go"})
    assert answer.status_code == 409 and answer.get_json()["error"]["code"] == "version_mismatch"
    assert CALLS == ["mail"]


def test_migrate_moves_them_on_without_running_an_action_again(apps):
    waiting_order(apps)
    v4 = rt(apps("v4"))
    # migrate() is there: not held, migrated when it is next run.
    assert v4.get("o1")["held"] is None
    answer = v4.send("o1", "shipped", "parcel-1")
    assert answer["status"] == "finished" and answer["flow_version"] == "4"
    assert CALLS == ["charge", "ack", "email"]          # the ack was not sent again
    types_logged = [e["type"] for e in v4.logs("o1", limit=100)["items"]]
    assert "migrated" in types_logged


def make_due(app):
    """Every waiting workflow due now (as if a timer fell due), for the runners."""
    with app.app_context():
        from webapp.store import WORKFLOW, db
        db.session.execute(WORKFLOW.update().where(WORKFLOW.c.status == "waiting")
                           .values(wake_at=0))
        db.session.commit()


def test_runners_of_old_and_new_code_side_by_side_each_run_only_theirs(apps, clock):
    waiting_order(apps, id="old")
    assert rt(apps("v3")).start("order", id="new")["flow_version"] == "3"
    make_due(apps("v1"))
    ran = []
    for key in ("v1", "v3"):
        app = apps(key)
        with app.app_context():
            ran.append(rt(app).run_due(now=clock() + 10))
    assert ran == [1, 1]
    assert CALLS == ["charge", "ack", "charge", "ack"]


def test_a_runner_migrates_what_it_claims_and_holds_what_fails(apps, clock):
    waiting_order(apps, id="fine")
    waiting_order(apps, id="bad", poison=True)
    v4 = apps("v4")
    make_due(v4)
    assert rt(v4).run_due(now=clock() + 10) == 1          # the failed one is not counted
    fine, bad = rt(v4).get("fine"), rt(v4).get("bad")
    assert fine["flow_version"] == "4" and fine["step"] == "await_shipping"
    assert fine["status"] == "waiting" and fine["held"] is None
    assert bad["flow_version"] == "1" and "cannot be migrated" in bad["held"]
    make_due(v4)
    assert rt(v4).run_due(now=clock() + 20) == 1          # "fine" again; "bad" not claimed
    assert rt(v4).get("bad")["log_count"] == bad["log_count"]
    assert CALLS == ["charge", "ack", "charge", "ack"]
    # Code that accepts version 1 runs the held one on, and its kept error is gone.
    assert rt(apps("v1")).send("bad", "shipped", "p")["status"] == "finished"
    assert rt(apps("v1")).get("bad")["migrate_error"] is None


def test_a_failed_migration_holds_it_with_the_error_kept(apps, clock):
    waiting_order(apps, id="bad", poison=True)
    v4 = apps("v4")
    response = v4.test_client().post("/api/workflows/bad/events", json={"name": "shipped"})
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "version_mismatch"
    answer = rt(v4).get("bad")
    assert "cannot be migrated" in answer["migrate_error"] and answer["held"]
    assert answer["status"] == "waiting"
    page = v4.test_client().get("/workflows/bad").get_data(as_text=True)
    assert 'id="wf-held"' in page and "cannot be migrated" in page
    assert "tiny-workflow migrate order" in page


def test_migrate_command_and_its_dry_run(apps, clock):
    for n in range(5):
        waiting_order(apps, id=f"o{n}")
    waiting_order(apps, id="poison", poison=True)
    rt(apps("v1")).start("order", id="done")
    rt(apps("v1")).send("done", "shipped", "p")                # finished: not migrated
    v4 = apps("v4")
    cli = Cli(v4)
    result = cli.invoke(args=["migrate", "order", "--dry-run", "--batch", "2"])
    assert result.exit_code == 1, result.output
    assert "would move 5 workflow(s) to version 4; 1 failed" in result.output
    assert "failed poison (version 1): ValueError: this one cannot be migrated" in result.output
    assert rt(v4).get("o0")["flow_version"] == "1"              # nothing was stored
    assert rt(v4).get("poison")["migrate_error"] is None
    result = cli.invoke(args=["migrate", "order", "--from", "1", "--batch", "2"])
    assert result.exit_code == 1
    assert "moved 5 workflow(s) to version 4; 1 failed" in result.output
    assert {rt(v4).get(f"o{n}")["flow_version"] for n in range(5)} == {"4"}
    assert rt(v4).get("done")["flow_version"] == "1"
    poisoned = rt(v4).get("poison")
    assert poisoned["held"] and "cannot be migrated" in poisoned["migrate_error"]
    # Runners leave the failed one, run the moved ones on; nothing ran twice.
    before = list(CALLS)
    with v4.app_context():
        from webapp.store import WORKFLOW, db
        db.session.execute(WORKFLOW.update().where(WORKFLOW.c.status == "waiting")
                           .values(wake_at=0))
        db.session.commit()
    assert rt(v4).run_due(now=clock() + 10) == 5
    assert CALLS == before
    result = cli.invoke(args=["migrate", "order"])
    assert "moved 0 workflow(s)" in result.output and "failed poison" in result.output
    # Code without migrate() is refused, with a one-line reason.
    result = Cli(apps("v3")).invoke(args=["migrate", "order"])
    assert result.exit_code == 2 and "has no migrate()" in result.output


def test_the_list_filters_by_version_and_shows_it(apps):
    waiting_order(apps, id="old")
    rt(apps("v2")).start("order", id="new")
    client = apps("v3").test_client()
    items = client.get("/api/workflows?version=1").get_json()["items"]
    assert [i["id"] for i in items] == ["old"] and "version 3" in items[0]["held"]
    assert rt(apps("v2")).list(version="2")["items"][0]["held"] is None
    items = client.get("/api/workflows?version=1&version=2").get_json()["items"]
    assert sorted(i["id"] for i in items) == ["new", "old"]
    page = client.get("/workflows?version=2").get_data(as_text=True)
    assert 'data-id="new"' in page and 'data-id="old"' not in page
    assert 'class="col-version"' in page and "held" in page
    flow_page = client.get("/flows/order").get_data(as_text=True)
    assert 'id="flow-versions"' in flow_page and 'data-version="1"' in flow_page
    assert 'data-version="2"' in flow_page and "held" in flow_page
    detail = client.get("/workflows/old").get_data(as_text=True)
    assert 'id="wf-held"' in detail and 'id="held-from">1<' in detail
    assert 'id="held-loaded">3<' in detail and 'id="send-event-form"' not in detail
    assert "cancel-form" in detail


def kept_and_counted(app) -> tuple[dict, dict]:
    """The flow page's version counts as kept (flow statistics) and as a count of the rows."""
    store = rt(app).store
    with rt(app).context():
        found = store.stat_versions("order"), store.count_by_version("order")
        store.end()
    return found


def test_the_flow_page_counts_versions_as_commits_keep_them(apps, clock):
    """The versions table reads counters kept at each commit (a lookup, at any number of
    workflows): they follow starts, imports, migrations (by command or when run), failed
    migrations, and equal both a count of the rows and a recount."""
    for id in ("a", "b", "c"):
        waiting_order(apps, id=id)
    waiting_order(apps, id="poison", poison=True)
    rt(apps("v2")).start("order", id="new")
    rt(apps("v2")).import_snapshots([["copy", rt(apps("v1")).snapshot("a")]])
    v4 = apps("v4")
    assert rt(v4).send("c", "shipped", "p")["flow_version"] == "4"    # migrated as it ran
    assert kept_and_counted(v4)[0] == {"1": 3, "2": 2, "4": 1}
    result = Cli(v4).invoke(args=["migrate", "order", "--from", "1"])
    assert "moved 2 workflow(s) to version 4; 1 failed" in result.output
    kept, counted = kept_and_counted(v4)
    assert kept == counted == {"1": 1, "2": 2, "4": 3}
    rt(v4).rebuild_stats()
    assert kept_and_counted(v4)[0] == kept
    page = v4.test_client().get("/flows/order").get_data(as_text=True)
    rows = re.findall(r'<tr data-version="(\w+)">.*?version=\w+">(\d+)</a>', page, re.S)
    assert dict(rows) == {"1": "1", "2": "2", "4": "3"}


def test_with_statistics_off_the_flow_page_counts_versions(make_app, any_db_url):
    app = make_app(any_db_url, TINYFLOW_FLOWS=["tw_order_v1"], TINYFLOW_STATS=False)
    rt(app).start("order", id="a")
    kept, counted = kept_and_counted(app)
    assert kept == {} and counted == {"1": 1}
    assert rt(app).version_counts("order") == {"1": 1}


def test_a_schema_3_database_gets_its_version_counters(apps, any_db_url, make_app):
    waiting_order(apps, id="a")
    rt(apps("v2")).start("order", id="b")
    with apps("v2").app_context():       # as a schema 3 database was: no version counters
        from webapp.store import STAT, Meta, db
        db.session.execute(STAT.delete().where(STAT.c.kind == "version"))
        db.session.execute(Meta.__table__.update().where(Meta.key == "schema_version")
                           .values(value="3"))
        db.session.commit()
    again = make_app(any_db_url, TINYFLOW_FLOWS=["tw_order_v2"])
    kept, counted = kept_and_counted(again)
    assert kept == counted == {"1": 1, "2": 1}


def test_an_imported_snapshot_records_the_version_that_loaded_it(apps):
    doc = rt(apps("v1")).start("order", id="src")
    snapshot = rt(apps("v1")).snapshot("src")
    ids = rt(apps("v2")).import_snapshots([["copy", snapshot]])
    assert ids == ["copy"] and rt(apps("v2")).get("copy")["flow_version"] == "2"
    assert doc["flow_version"] == "1"


# --- the schema upgrade ------------------------------------------------------------------

OLD_SCHEMA = """
CREATE TABLE workflow (id VARCHAR(200) PRIMARY KEY, flow VARCHAR(200), step VARCHAR(200),
  status VARCHAR(16), state TEXT, cache TEXT, system TEXT, inbox TEXT, error TEXT,
  wake_at BIGINT, lease_owner VARCHAR(200), lease_expires BIGINT, version INTEGER,
  log_count INTEGER, created_at BIGINT, updated_at BIGINT);
CREATE TABLE tinyflow_meta (key VARCHAR(100) PRIMARY KEY, value VARCHAR(200));
INSERT INTO tinyflow_meta VALUES ('schema_version', '1');
INSERT INTO workflow VALUES ('old', 'order', 'wait_ship', 'waiting', '{}',
  '{"_seq": 1, "0:charge:charge": "charge", "1:wait_ship:ack": "ack"}',
  '{"1:wait_ship:event:shipped": {"type": "event", "isDone": false, "resumeId": "r1"}}',
  NULL, NULL, NULL, NULL, NULL, 1, 0, 1000, 1000);
"""


def test_a_schema_1_database_gets_the_version_columns(make_app, tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_SCHEMA)
    app = make_app(f"sqlite:///{path}", TINYFLOW_FLOWS=["tw_order_v3"])
    with sqlite3.connect(path) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(workflow)")}
        assert {"flow_version", "migrate_error"} <= columns
        assert conn.execute("SELECT value FROM tinyflow_meta").fetchone() == (
            str(SCHEMA_VERSION),)
    # A row from before versions has none recorded: unknown, and run by any version
    # (here v3 cannot load its step: it is broken, as before, not held).
    answer = app.test_client().get("/api/workflows/old")
    assert answer.status_code == 409 and answer.get_json()["error"]["code"] == "broken"
    v1 = make_app(f"sqlite:///{path}", TINYFLOW_FLOWS=["tw_order_v1"])
    assert rt(v1).send("old", "shipped", "p")["status"] == "finished"
    assert rt(v1).get("old")["flow_version"] is None and CALLS == ["email"]


@pytest.mark.postgres
def test_a_schema_1_postgresql_database_gets_them_too(postgres_server, make_app):
    import psycopg
    url = postgres_server.create_database()
    dsn = url.replace("postgresql+psycopg://tw@/", "")
    name, host = dsn.split("?host=")
    with psycopg.connect(host=host, user="tw", dbname=name, autocommit=True) as conn:
        for statement in OLD_SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
    app = make_app(url, TINYFLOW_FLOWS=["tw_order_v1"])
    assert rt(app).send("old", "shipped", "p")["status"] == "finished"
    with psycopg.connect(host=host, user="tw", dbname=name) as conn:
        assert conn.execute("SELECT value FROM tinyflow_meta").fetchone() == (
            str(SCHEMA_VERSION),)


def test_a_newer_schema_is_still_refused(tmp_path):
    path = tmp_path / "new.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_SCHEMA.replace("'schema_version', '1'",
                                              f"'schema_version', '{SCHEMA_VERSION + 1}'"))
    with pytest.raises(SchemaTooNew):
        Store.connect(f"sqlite:///{path}", {"TINYFLOW_SQLITE_SYNCHRONOUS": "NORMAL",
                                            "TINYFLOW_SQLITE_BUSY_MS": 1000})
    with sqlite3.connect(path) as conn:          # and left as it was
        columns = {row[1] for row in conn.execute("PRAGMA table_info(workflow)")}
        assert "flow_version" not in columns

