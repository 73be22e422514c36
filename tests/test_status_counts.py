"""The per-status counts the list page shows: on SQLite kept by triggers in workflow_count (a
lookup, not a scan of every workflow), and always equal to counting the rows themselves."""
import json

import pytest
from sqlalchemy import text

from webapp import runtime
from webapp.store import db


def counted_live(flows=()) -> dict[str, int]:
    """The counts made the slow way: one pass over the workflow table."""
    where = f"WHERE flow IN ({', '.join(repr(f) for f in flows)})" if flows else ""
    return dict(db.session.execute(text(
        f"SELECT status, count(*) FROM workflow {where} GROUP BY status")).all())


def make_every_status() -> None:
    runtime.start("simple", id="done")                                   # finished
    runtime.start("guess_game", id="asks")                               # waiting
    runtime.start("guess_game", id="gone")
    runtime.cancel("gone")                                               # cancelled
    runtime.import_snapshots({"step": "step_begin", "state": {}, "cache": {}, "system": {},
                              "logs": []}, flow="simple")               # running (no status)


def test_counts_follow_every_change_and_match_the_rows(any_db_app, capsys):
    with any_db_app.app_context():
        make_every_status()
        wf = runtime.get("asks")
        number = json.loads(wf.state)["number"]
        runtime.send("asks", "event_ask_0", number)                      # still waiting
        runtime.send("asks", "event_congratulation", "thanks")           # now finished
        assert runtime.status_counts() == counted_live() == {
            "finished": 2, "cancelled": 1, "running": 1}
        assert runtime.status_counts(flows=["guess_game"]) == counted_live(["guess_game"]) \
            == {"finished": 1, "cancelled": 1}
        assert runtime.status_counts(q="gon") == {"cancelled": 1}


def test_rows_written_around_the_runtime_are_counted_too(app, capsys):
    with app.app_context():
        make_every_status()
        db.session.execute(text("DELETE FROM workflow_log WHERE workflow_id = 'done'"))
        db.session.execute(text("DELETE FROM workflow WHERE id = 'done'"))
        db.session.execute(text("UPDATE workflow SET status = 'failed' WHERE id = 'asks'"))
        db.session.commit()
        assert runtime.status_counts() == counted_live() == {
            "failed": 1, "cancelled": 1, "running": 1}


@pytest.mark.parametrize("damage", [
    "DROP TRIGGER workflow_count_insert",
    "DROP TRIGGER workflow_count_update; DROP TRIGGER workflow_count_delete",
])
def test_a_database_without_the_triggers_gets_them_and_its_counts_on_start(
        make_app, tmp_path, capsys, damage):
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    with make_app(url).app_context():
        make_every_status()
        for statement in damage.split(";"):
            db.session.execute(text(statement))
        db.session.execute(text("DELETE FROM workflow_count"))
        db.session.commit()
        db.engine.dispose()
    with make_app(url).app_context():
        assert runtime.status_counts() == counted_live() == {
            "finished": 1, "waiting": 1, "cancelled": 1, "running": 1}
        runtime.start("simple")
        assert runtime.current().store.count_by_status()["finished"] == 2
