"""Long histories cost what they show (issue 11): the workflow page, a log page and the
diagram read a bounded number of audit-log rows however long the log is; a diagram too large
to draw is drawn as a summary; the inbox of events nothing waits for is bounded."""
from __future__ import annotations

from xml.etree import ElementTree

import pytest
from sqlalchemy import insert, update

from webapp import store
from webapp.store import LOG, WORKFLOW, db
from webapp.views import workflows as pages

SVG = "{http://www.w3.org/2000/svg}svg"


def append_log(app, id: str, entries: list[dict]) -> None:
    """Append audit-log entries to a stored workflow, as many commits would have."""
    with app.app_context():
        row = db.session.execute(db.select(WORKFLOW.c.log_count).where(
            WORKFLOW.c.id == id)).scalar_one()
        params = store.log_params(id, row + 1, entries)
        for i in range(0, len(params), 5000):
            db.session.execute(insert(LOG), params[i:i + 5000])
        db.session.execute(update(WORKFLOW).where(WORKFLOW.c.id == id).values(
            log_count=row + len(entries)))
        db.session.commit()


@pytest.fixture
def rows_read(monkeypatch):
    """How many audit-log rows the store has read since the last ``clear()``."""
    read = []
    real = store.Store.log_rows

    def log_rows(self, *args, **kwargs):
        rows = real(self, *args, **kwargs)
        read.append(len(rows))
        return rows
    monkeypatch.setattr(store.Store, "log_rows", log_rows)
    return read


def test_the_page_log_and_diagram_of_a_long_history_read_only_what_they_show(
        make_app, any_db_url, rows_read):
    app = make_app(any_db_url)
    client = app.test_client()
    client.post("/api/workflows", json={"flow": "guess_game_2", "id": "long"})
    total = 3 * pages.DIAGRAM_ENTRIES
    append_log(app, "long", [{"type": "note", "values": {"i": i}, "_at": 1_723_991_733_500 + i,
                              "_step": "step_ask"} for i in range(total)])
    for url, most in (("/workflows/long", pages.DIAGRAM_ENTRIES + pages.LOG_PAGE_SIZE + 1),
                      ("/workflows/long/diagram.svg", pages.DIAGRAM_ENTRIES),
                      ("/workflows/long/diagram.dot", pages.DIAGRAM_ENTRIES),
                      ("/api/workflows/long/logs?limit=100", 101),
                      ("/api/workflows/long", 0)):
        rows_read.clear()
        answer = client.get(url)
        assert answer.status_code == 200, url
        assert sum(rows_read) <= most < total, (url, sum(rows_read))
    count = client.get("/api/workflows/long").json["log_count"]
    assert count > total
    page = client.get("/workflows/long").get_data(as_text=True)
    assert f"Drawn from the last {pages.DIAGRAM_ENTRIES:,} of {count:,} audit-log entries" in page


def test_a_diagram_too_large_to_draw_is_a_summary(make_app, any_db_url):
    app = make_app(any_db_url)
    client = app.test_client()
    client.post("/api/workflows", json={"flow": "guess_game_2", "id": "wide"})
    steps = [f"s{i}" for i in range(400)]
    append_log(app, "wide", [
        {"type": "transition", "values": {"from": a, "to": b}, "_at": 1_723_991_733_600,
         "_step": b} for a, b in zip(steps, steps[1:])])
    answer = client.get("/workflows/wide/diagram.svg")
    assert answer.status_code == 200 and answer.mimetype == "image/svg+xml"
    svg = ElementTree.fromstring(answer.data)
    assert svg.tag == SVG and "diagram-summary" in svg.get("class", "")
    assert "too large to draw" in answer.get_data(as_text=True)
    assert client.get("/workflows/wide").status_code == 200


def test_the_inbox_is_bounded_by_TINYFLOW_MAX_INBOX(make_app, any_db_url, monkeypatch):
    monkeypatch.setenv("TINYFLOW_MAX_INBOX", "3")
    app = make_app(any_db_url)
    assert app.extensions["tinyflow"].settings["TINYFLOW_MAX_INBOX"] == 3
    client = app.test_client()
    client.post("/api/workflows", json={"flow": "guess_game_2", "id": "g"})
    for n in range(3):
        assert client.post("/api/workflows/g/events",
                           json={"name": f"later_{n}"}).status_code == 200
    before = client.get("/api/workflows/g").json
    full = client.post("/api/workflows/g/events", json={"name": "later_3", "payload": "x"})
    assert full.status_code == 422 and full.json["error"]["code"] == "invalid"
    assert "TINYFLOW_MAX_INBOX" in full.json["error"]["message"]
    assert client.get("/api/workflows/g").json == before
    # an event a step waits for is still delivered: only the unclaimed ones are bounded
    assert client.post("/api/workflows/g/events",
                       json={"name": "event_ask", "payload": 1}).status_code == 200


def test_the_inbox_holds_100_by_default(make_app):
    app = make_app()
    assert app.extensions["tinyflow"].settings["TINYFLOW_MAX_INBOX"] == 100
