"""Times from outside are bounded where they enter, and one row's time never takes a list,
a page or an answer down (issue 11), on SQLite and PostgreSQL."""
from __future__ import annotations

from sqlalchemy import update

from webapp.engine import Workflow, step
from webapp.store import WORKFLOW, db

PAGES = ["/workflows", "/workflows?status=waiting", "/api/workflows",
         "/api/workflows?status=waiting"]


def test_a_wake_time_past_year_9999_is_never_stored(any_db_app):
    client = any_db_app.test_client()
    answer = client.post("/api/workflows", json={
        "flow": "interval_payment", "id": "far", "state": {"paymentIntervalMs": 1e15}})
    assert answer.status_code in (201, 422), answer.json
    if answer.status_code == 201:      # stored as failed, with a clear error, nothing due
        assert answer.json["status"] == "failed" and answer.json["wake_at"] is None
        assert "9999" in answer.json["error"]["message"]
    with any_db_app.app_context():
        wakes = db.session.execute(db.select(WORKFLOW.c.wake_at)).scalars().all()
    assert all(w is None or w <= 253_402_300_799_999 for w in wakes)
    ok = client.post("/api/workflows", json={"flow": "interval_payment", "id": "near"})
    assert ok.status_code == 201
    for page in PAGES:
        assert client.get(page).status_code == 200, page


class FarAway(Workflow):
    name = "far_away"

    @step
    def step_one(self):
        yield self.wait_event("answer", timeout=self.state["timeout"])
        return None


def test_a_deadline_or_timer_no_calendar_holds_fails_the_workflow():
    for timeout in (1e20, float("inf")):
        wf = FarAway(state={"timeout": timeout}, now=1_700_000_000)
        assert wf.run(now=1_700_000_000) == "failed"
        assert wf.wake_at() is None and wf.pending() == []
        assert wf.to_json()["error"]["type"] == "ValueError"


def test_a_stored_row_with_a_time_out_of_range_is_listed_without_a_500(any_db_app):
    """A row written before the bound (an old import, a corrupted row): every list, page and
    answer still works; its times show as unknown."""
    client = any_db_app.test_client()
    for id in ("bad", "good"):
        assert client.post("/api/workflows", json={"flow": "interval_payment",
                                                   "id": id}).status_code == 201
    with any_db_app.app_context():
        db.session.execute(update(WORKFLOW).where(WORKFLOW.c.id == "bad").values(
            wake_at=10 ** 18, updated_at=10 ** 18, created_at=-10 ** 18))
        db.session.commit()
    for page in [*PAGES, "/workflows/bad", "/api/workflows/bad", "/workflows/good"]:
        assert client.get(page).status_code == 200, page
    items = {i["id"]: i for i in client.get("/api/workflows").json["items"]}
    assert set(items) == {"bad", "good"}
    assert items["bad"]["wake_at"] is None and items["good"]["wake_at"] is not None
