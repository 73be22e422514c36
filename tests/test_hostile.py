"""Hostile and broken input: each gets a clear answer, and nothing stored is lost or changed.

Malformed JSON, wrong types, unknown names, bodies over the limit, deep nesting, invalid UTF-8,
action results JSON cannot hold, HTML and script wherever a user's text is shown, a corrupted
stored snapshot, and a locked database.
"""
from __future__ import annotations

import json
import sqlite3
import xml.etree.ElementTree as ET

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import update

from webapp import runtime, store
from webapp.engine import Workflow, step
from webapp.store import WorkflowRow, db

XSS = "<script>alert(1)</script><img src=x onerror=alert(2)>"   # no quote: JSON keeps it as is
XSS_ID = XSS.replace("/", "")   # an id holds no '/' (it would not work in a URL)
FLOWS = ["flows", "webapp.demo_flows", __name__]   # this module's flows too


class NotJSON(Workflow):
    """Its action returns a set, which JSON cannot hold."""

    name = "hostile_not_json"

    @step
    def step_one(self):
        self.state["made"] = yield self.action("make_set", lambda: {1, 2})
        return None


class NotANumber(Workflow):
    """Its action returns NaN, which strict JSON cannot hold."""

    name = "hostile_nan"

    @step
    def step_one(self):
        self.state["made"] = yield self.action("make_nan", lambda: float("nan"))
        return None


class Echo(Workflow):
    """Shows whatever it is sent: the question, the log, the state and an event key are all
    hostile text."""

    name = "hostile_echo"

    @step
    def step_echo(self):
        value = yield self.wait_event("say", {"question": XSS})
        self.log(XSS, **{XSS: value})
        self.state[XSS] = value
        return "step_end"

    @step
    def step_end(self):
        yield self.wait_event(XSS)
        return None


@pytest.fixture
def app(make_app):
    return make_app(TINYFLOW_FLOWS=FLOWS)


def error_of(response, status, code):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json, response.get_data(as_text=True)
    assert response.json["error"]["code"] == code, response.json
    assert response.json["error"]["message"]
    return response.json["error"]["message"]


def html_of(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def csrf(client) -> str:
    return json.loads(html_of(client.get("/flows")).body["hx-headers"])["X-CSRFToken"]


def start(client, flow, id, state=None):
    response = client.post("/api/workflows", json={"flow": flow, "id": id,
                                                   **({"state": state} if state else {})})
    assert response.status_code == 201, response.json
    return response.json


def stored(app, id):
    """The row's stored parts, as another reader sees them."""
    with app.app_context():
        db.session.rollback()
        row = runtime.get(id)
        return (row.version, row.status, row.step, row.state, row.cache, row.system, row.inbox,
                row.log_count)


# --- malformed bodies, wrong types, unknown names --------------------------------------------

POSTS = ["/api/workflows", "/api/workflows/g/events", "/api/workflows/g/timers/advance",
         "/api/workflows/g/timers/x/fire", "/api/workflows/g/cancel", "/api/workflows/g/retry"]


@pytest.mark.parametrize("url", POSTS)
@pytest.mark.parametrize("body", ['{"name": "x"', "{'name': 'x'}", "nul", '{"a": 1} trailing',
                                  "\x00", "[1, 2"])
def test_a_body_that_is_not_json_is_400(client, url, body):
    start(client, "guess_game", "g")
    before = stored(client.application, "g")
    message = error_of(client.post(url, data=body, content_type="application/json"), 400,
                       "bad_request")
    assert "not JSON" in message
    assert stored(client.application, "g") == before


@pytest.mark.parametrize("url, body, says", [
    ("/api/workflows", [], "JSON object"),
    ("/api/workflows", "simple", "JSON object"),
    ("/api/workflows", {"flow": 7}, "'flow'"),
    ("/api/workflows", {"flow": ""}, "'flow'"),
    ("/api/workflows", {"flow": "simple", "state": [1]}, "'state'"),
    ("/api/workflows", {"flow": "simple", "state": "x"}, "'state'"),
    ("/api/workflows", {"flow": "simple", "id": 12}, "'id'"),
    ("/api/workflows", {"flow": "simple", "id": "x" * 201}, "200"),
    ("/api/workflows/g/events", {"payload": 1}, "'name'"),
    ("/api/workflows/g/events", {"name": ["event_ask_0"]}, "'name'"),
    ("/api/workflows/g/events", {"name": "x" * 201}, "200"),
    ("/api/workflows/g/events", {"name": "event_ask_0", "idempotency_key": 5},
     "'idempotency_key'"),
    ("/api/workflows/g/timers/advance", {"seconds": "60"}, "'seconds'"),
    ("/api/workflows/g/timers/advance", {"seconds": -1}, "'seconds'"),
    ("/api/workflows/g/timers/advance", {"seconds": True}, "'seconds'"),
    ("/api/workflows/g/timers/advance", {}, "'seconds'"),
    ("/api/workflows/g/cancel", {"reason": 3}, "'reason'"),
])
def test_json_of_the_wrong_shape_is_422_and_changes_nothing(client, url, body, says):
    start(client, "guess_game", "g")
    before = stored(client.application, "g")
    message = error_of(client.post(url, json=body), 422, "invalid")
    assert says in message
    assert stored(client.application, "g") == before


@pytest.mark.parametrize("query", ["limit=abc", "limit=0", "limit=501", "status=sleeping",
                                   "cursor=!!!", "cursor=bm90IGEgY3Vyc29y", "cursor=WzEsMl0"])
def test_list_arguments_of_the_wrong_shape_are_422(client, query):
    error_of(client.get(f"/api/workflows?{query}"), 422, "invalid")


def test_advancing_by_nan_or_infinity_is_refused(client):
    start(client, "user_onboarding", "u")
    for text in ("NaN", "Infinity", "-Infinity", "1e400"):
        response = client.post("/api/workflows/u/timers/advance", data=f'{{"seconds": {text}}}',
                               content_type="application/json")
        error_of(response, 422, "invalid")


def test_unknown_workflow_flow_and_wait_are_404(client):
    start(client, "user_onboarding", "u")
    error_of(client.get("/api/workflows/nope"), 404, "not_found")
    error_of(client.post("/api/workflows/nope/events", json={"name": "x"}), 404, "not_found")
    error_of(client.post("/api/workflows/nope/cancel"), 404, "not_found")
    error_of(client.get("/api/workflows/nope/logs"), 404, "not_found")
    message = error_of(client.post("/api/workflows", json={"flow": "no_such_flow"}), 404,
                       "not_found")
    assert "simple" in message                     # it says which flows there are
    error_of(client.post("/api/workflows/u/timers/no-such-id/fire"), 404, "not_found")
    assert client.get("/workflows/nope").status_code == 404
    assert client.get("/flows/nope").status_code == 404


def test_an_event_nobody_waits_for_is_kept_and_a_closed_workflow_refuses_it(client):
    start(client, "guess_game", "g")
    answer = client.post("/api/workflows/g/events", json={"name": "no_such_event", "payload": 1})
    assert answer.status_code == 200 and answer.json["status"] == "waiting"
    doc = client.get("/api/workflows/g/snapshot").json
    assert doc["inbox"][0]["name"] == "no_such_event"      # kept in the inbox, not lost
    assert doc["logs"][-1]["values"] == {"name": "no_such_event", "handledBy": "inbox"}
    start(client, "simple", "s")
    message = error_of(client.post("/api/workflows/s/events", json={"name": "x"}), 409,
                       "conflict")
    assert "finished" in message


def test_a_handler_that_refuses_a_payload_is_422_and_keeps_the_workflow(client):
    start(client, "interval_payment", "p")
    before = stored(client.application, "p")
    message = error_of(client.post("/api/workflows/p/events",
                                   json={"name": "add_usage", "payload": {"item": 1}}),
                       422, "invalid")
    assert "add_usage needs" in message
    assert stored(client.application, "p") == before


def test_an_id_taken_is_409(client):
    start(client, "simple", "s")
    error_of(client.post("/api/workflows", json={"flow": "simple", "id": "s"}), 409, "conflict")


# --- size and depth --------------------------------------------------------------------------

def test_the_default_limit_is_256_kib_answered_413(client):
    start(client, "guess_game", "g")
    limit = 256 * 1024
    assert client.application.config["MAX_CONTENT_LENGTH"] == limit

    def body(size):
        text = json.dumps({"name": "event_ask_0", "payload": ""})
        return text.replace('""', json.dumps("x" * (size - len(text))))
    assert len(body(limit)) == limit
    before = stored(client.application, "g")
    error_of(client.post("/api/workflows/g/events", data=body(limit + 1),
                         content_type="application/json"), 413, "too_large")
    page = client.post("/workflows/g/events", data={"csrf_token": csrf(client),
                                                    "name": "x", "value": "x" * limit})
    assert page.status_code == 413 and "256 KiB" in page.get_data(as_text=True)
    assert stored(client.application, "g") == before
    ok = client.post("/api/workflows/g/events", data=body(limit),
                     content_type="application/json")
    assert ok.status_code == 200                     # at the limit: accepted


def test_the_limit_comes_from_the_environment(make_app, monkeypatch):
    monkeypatch.setenv("TINYFLOW_MAX_PAYLOAD", "1000")
    client = make_app().test_client()
    error_of(client.post("/api/workflows", json={"flow": "simple", "state": {"t": "x" * 1000}}),
             413, "too_large")


def nested(depth: int, leaf=1):
    """``depth`` lists, one inside the other."""
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def test_json_nested_past_the_parser_is_refused(client):
    start(client, "guess_game", "g")
    deep = "[" * 100_000 + "]" * 100_000
    message = error_of(client.post("/api/workflows/g/events",
                                   data=f'{{"name": "x", "payload": {deep}}}',
                                   content_type="application/json"), 422, "invalid")
    assert "nested too deeply" in message
    deep = "[" * 20_000 + "]" * 20_000                # a form encodes each bracket in 3 bytes
    form = client.post("/workflows/g/events", data={"csrf_token": csrf(client), "name": "x",
                                                    "value": deep})
    assert form.status_code == 422 and "nested too deeply" in form.get_data(as_text=True)
    state = client.post("/workflows", data={"csrf_token": csrf(client), "flow": "simple",
                                            "state": '{"a": ' + deep + "}"})
    assert state.status_code == 422 and "nested too deeply" in state.get_data(as_text=True)


def test_json_nested_deeper_than_the_limit_is_refused_and_the_limit_is_accepted(client):
    start(client, "guess_game", "g")
    message = error_of(client.post("/api/workflows/g/events",
                                   json={"name": "x", "payload": nested(65)}), 422, "invalid")
    assert "deeper than 64 levels" in message
    error_of(client.post("/api/workflows", json={"flow": "simple", "state": {"a": nested(64)}}),
             422, "invalid")
    assert client.post("/api/workflows/g/events",
                       json={"name": "x", "payload": nested(64)}).status_code == 200
    html = client.get("/workflows/g")                 # and the page shows it
    assert html.status_code == 200


def test_a_python_caller_cannot_store_what_json_cannot_hold(app):
    with app.app_context():
        runtime.start("guess_game", id="g")
        before = runtime.get("g").version
        for payload in ({1, 2}, object(), {"when": __import__("datetime").date.today()}):
            with pytest.raises(runtime.Invalid, match="cannot be stored as JSON"):
                runtime.send("g", "event_ask_0", payload)
        assert runtime.get("g").version == before


# --- invalid UTF-8 ---------------------------------------------------------------------------

def test_invalid_utf8_is_refused_or_replaced_never_a_crash(client):
    start(client, "guess_game", "g")
    before = stored(client.application, "g")
    body = b'{"name": "event_ask_0", "payload": "\xff\xfe"}'
    message = error_of(client.post("/api/workflows/g/events", data=body,
                                   content_type="application/json"), 400, "bad_request")
    assert "not JSON" in message
    assert stored(client.application, "g") == before
    error_of(client.get("/api/workflows/%FF%FE"), 404, "not_found")
    assert client.get("/workflows/%FF").status_code == 404
    assert client.get("/api/workflows?q=%FF&flow=%FE").status_code == 200
    assert client.get("/workflows?q=%FF").status_code == 200
    form = client.post("/workflows/g/events", data=b"csrf_token=" + csrf(client).encode()
                       + b"&name=event_ask_0&value=%FF%FE",
                       content_type="application/x-www-form-urlencoded")
    assert form.status_code == 303                   # undecodable bytes arrive replaced
    pending = client.get("/api/workflows/g").json["pending"]
    assert pending[0]["key"] == "event_ask_1"        # the answer was taken, as text


# --- action results JSON cannot hold ---------------------------------------------------------

@pytest.mark.parametrize("flow, key", [("hostile_not_json", "make_set"),
                                       ("hostile_nan", "make_nan")])
def test_an_action_result_json_cannot_hold_fails_at_once_naming_the_key(client, flow, key):
    wf = start(client, flow, "n")
    assert wf["status"] == "failed"
    assert wf["error"]["key"] == key and wf["error"]["type"] == "NonJSONResult"
    assert key in wf["error"]["message"] and "JSON" in wf["error"]["message"]
    logs = client.get("/api/workflows/n/logs?type=action_error").json["items"]
    assert len(logs) == 1 and logs[0]["values"]["nextAttemptAt"] is None   # not retried
    assert wf["pending"] == []
    page = html_of(client.get("/workflows/n"))
    assert key in page.select_one("#wf-error").text


# --- HTML and script in every user-given text ------------------------------------------------

def hostile_workflows(client):
    """An echo workflow given hostile text everywhere, and one with a hostile id and log."""
    start(client, "hostile_echo", "echo", state={XSS: XSS, "nested": {"k": [XSS]}})
    assert client.post("/api/workflows/echo/events",
                       json={"name": "say", "payload": {XSS: XSS}}).status_code == 200
    assert client.post("/api/workflows/echo/events",
                       json={"name": XSS + "-inbox", "payload": XSS}).status_code == 200
    with client.application.app_context():
        # An imported history names steps that are not in the flow (a diagram's "not in the
        # flow" nodes), with hostile log types, values and step names.
        runtime.import_snapshots([[XSS_ID, {
            "step": "step_echo", "state": {}, "cache": {}, "system": {}, "status": "running",
            "logs": [{"type": "transition", "values": {"from": "step_echo", "to": XSS},
                      "_at": 1, "_step": XSS},
                     {"type": XSS, "values": {XSS: XSS}, "_at": 2, "_step": XSS},
                     {"type": "transition", "values": {"from": XSS, "to": "step_echo"},
                      "_at": 3, "_step": "step_echo"}]}]], flow="hostile_echo")


def assert_no_markup_injected(soup, url):
    htmx = [s for s in soup.find_all("script") if s.get("src", "").startswith("https://unpkg")]
    assert soup.find_all("script") == htmx, url
    assert soup.find_all("img") == [], url
    for tag in soup.find_all(True):
        assert not [a for a in tag.attrs if a.lower().startswith("on")], (url, tag)


def test_hostile_text_is_shown_as_text_in_pages_svg_labels_and_tooltips(client):
    hostile_workflows(client)
    from urllib.parse import quote
    xss_url = "/workflows/" + quote(XSS_ID, safe="")
    for url, shown in (("/workflows", XSS), ("/workflows/echo", XSS), (xss_url, XSS),
                       ("/workflows?q=" + quote(XSS_ID), XSS_ID),
                       ("/workflows/echo?type=" + quote(XSS), XSS),
                       (xss_url + "?step=" + quote(XSS), XSS)):
        response = client.get(url)
        assert response.status_code == 200, url
        soup = html_of(response)
        assert_no_markup_injected(soup, url)
        assert shown in soup.get_text(), url          # shown, as text
    echo = html_of(client.get("/workflows/echo"))
    assert XSS in echo.select_one("#state-json").text
    assert XSS in echo.select_one("#waits h3 code").text            # the hostile event key
    assert echo.select_one("#waits input[name=name]")["value"] == XSS
    assert XSS in echo.select_one("#audit-log").text
    svg_answer = client.get(xss_url + "/diagram.svg")
    assert svg_answer.status_code == 200
    svg = ET.fromstring(svg_answer.get_data(as_text=True))
    names = {el.tag.rsplit("}", 1)[-1] for el in svg.iter()}
    assert names <= {"svg", "g", "title", "text", "a", "polygon", "path", "ellipse", "polyline"}
    for el in svg.iter():
        assert not [a for a in el.attrib if a.rsplit("}", 1)[-1].lower().startswith("on")]
    texts = " ".join(t for el in svg.iter() for t in (el.text or "",)).replace("\n", " ")
    # Tooltips: a link's xlink:title, or (no link: issue 12, no anchor without href) a <title>.
    tooltips = [v for el in svg.iter() for k, v in el.attrib.items() if k.endswith("title")]
    tooltips += [el.text or "" for el in svg.iter() if el.tag.rsplit("}", 1)[-1] == "title"]
    assert "<script>" in texts or any("<script>" in t for t in tooltips)   # the label, as text
    assert any(XSS[:30] in t for t in tooltips)
    inline = html_of(client.get(xss_url)).select_one(".diagram-svg svg")
    assert inline is not None and not inline.find_all(["script", "img", "foreignobject"])


def test_hostile_text_in_the_api_is_plain_json(client):
    hostile_workflows(client)
    answer = client.get("/api/workflows/echo")
    assert answer.mimetype == "application/json"
    assert answer.json["state"][XSS] == {XSS: XSS}


# --- a corrupted stored snapshot -------------------------------------------------------------

CORRUPTIONS = {
    "state-not-json": {"state": "{not json <b>"},
    "unknown-step": {"step": XSS},
    "system-not-object": {"system": "[1, 2]"},
    "unknown-status": {"status": "exploded"},
    "error-not-json": {"status": "failed", "error": "{oops"},
}


def corrupt(app, id, **values):
    with app.app_context():
        db.session.execute(update(WorkflowRow).where(WorkflowRow.id == id).values(**values))
        db.session.commit()


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_a_corrupted_snapshot_shows_as_broken_and_everything_else_works(client, kind):
    app = client.application
    start(client, "guess_game", "bad")
    start(client, "guess_game", "good")
    corrupt(app, "bad", **CORRUPTIONS[kind])

    listing = client.get("/workflows")
    assert listing.status_code == 200
    rows = {tr["data-id"]: tr for tr in html_of(listing).select("tr.workflow-row")}
    assert rows["bad"].get("data-broken") == "true"
    assert rows["bad"].select_one(".badge").text == "broken"
    assert rows["good"].get("data-broken") is None
    assert client.get("/api/workflows").status_code == 200

    detail = client.get("/workflows/bad")
    assert detail.status_code == 200
    soup = html_of(detail)
    assert_no_markup_injected(soup, "/workflows/bad")
    message = soup.select_one("#broken-message").text
    assert "broken" in message and "bad" in message
    if kind == "unknown-step":
        assert XSS in message                           # the raw error, escaped
    htmx_poll = client.get("/workflows/bad?v=x", headers={"HX-Request": "true"})
    assert htmx_poll.status_code == 200 and "broken-message" in htmx_poll.get_data(as_text=True)

    for response in (client.get("/api/workflows/bad"),
                     client.post("/api/workflows/bad/events", json={"name": "event_ask_0"}),
                     client.post("/api/workflows/bad/cancel")):
        assert "broken" in error_of(response, 409, "broken")
    # The snapshot is the row as stored, for repair: 409 only where its JSON cannot be read.
    snapshot = client.get("/api/workflows/bad/snapshot")
    if kind.endswith("not-json"):
        error_of(snapshot, 409, "broken")
    else:
        assert snapshot.status_code == 200 and snapshot.json["step"] in ("step_play", XSS)
    form = client.post("/workflows/bad/cancel", data={"csrf_token": csrf(client)})
    assert form.status_code == 409 and "broken" in form.get_data(as_text=True)
    assert client.get("/workflows/bad/diagram.svg").status_code == 409

    assert client.post("/api/workflows/good/events",
                       json={"name": "event_ask_0", "payload": 1}).status_code == 200
    assert client.get("/workflows/good").status_code == 200


def test_a_corrupted_log_entry_shows_as_broken(client):
    start(client, "guess_game", "bad")
    with client.application.app_context():
        db.session.execute(update(store.LogRow).where(store.LogRow.workflow_id == "bad",
                                                      store.LogRow.n == 1)
                           .values(values_json="{nope"))
        db.session.commit()
    error_of(client.get("/api/workflows/bad/logs"), 409, "broken")
    assert client.get("/workflows/bad").status_code == 200
    assert client.get("/api/workflows/bad").status_code == 200     # the row itself is fine


def test_runners_park_a_broken_workflow_and_run_the_others(app, clock):
    with app.app_context():
        runtime.start("user_onboarding", id="bad")     # both wait on a timer, due soon
        runtime.start("user_onboarding", id="good")
    corrupt(app, "bad", state="<not json>", wake_at=1)    # the first one a runner claims
    clock.advance(10)
    with app.app_context():
        assert runtime.run_due() == 1                  # only the good one ran
        db.session.rollback()
        bad = runtime.get("bad")
        assert bad.wake_at is None and bad.lease_owner is None   # parked, not retried for ever
        assert bad.state == "<not json>"                         # and kept as it was
        assert runtime.get("good").step == "step_process"
        clock.advance(10)
        runtime.run_due()
        assert runtime.get("good").status == "finished"
        assert runtime.run_due() == 0


# --- a locked database -----------------------------------------------------------------------

@pytest.fixture
def locked(make_app, tmp_path, monkeypatch):
    """An app with a short busy timeout, and ``lock()`` / ``unlock()`` holding SQLite's write
    lock from another connection (as another process would). Retries are counted."""
    app = make_app(TINYFLOW_FLOWS=FLOWS, TINYFLOW_SQLITE_BUSY_MS=50)
    holder = sqlite3.connect(tmp_path / "tiny-workflow.sqlite", isolation_level=None)
    retries = []

    class Time:      # store's pauses between retries, counted (and how a test may act then)
        on_retry = None

        @staticmethod
        def sleep(seconds):
            retries.append(seconds)
            if Time.on_retry:
                Time.on_retry()

        def __getattr__(self, name):
            return getattr(__import__("time"), name)

    monkeypatch.setattr(store, "time", Time())

    class Lock:
        def lock(self):
            holder.execute("BEGIN IMMEDIATE")

        def unlock(self):
            if holder.in_transaction:
                holder.execute("ROLLBACK")
    lock = Lock()
    lock.app, lock.retries, lock.time = app, retries, Time
    yield lock
    lock.unlock()
    holder.close()


def test_a_locked_database_waits_retries_then_answers_503_and_loses_nothing(locked):
    client = locked.app.test_client()
    start(client, "guess_game", "g")
    before = stored(locked.app, "g")
    locked.lock()
    event = {"name": "event_ask_0", "payload": -1, "idempotency_key": "k1"}
    response = client.post("/api/workflows/g/events", json=event)
    message = error_of(response, 503, "unavailable")
    assert "locked" in message and response.headers["Retry-After"] == "1"
    assert len(locked.retries) == store._LOCK_RETRIES - 1     # waited, retried, gave up
    assert client.get("/api/workflows/g").status_code == 200   # reading still works
    page = client.post("/workflows/g/events", data={"csrf_token": csrf(client),
                                                    "name": "event_ask_0", "value": "1"})
    assert page.status_code == 503 and "try again" in page.get_data(as_text=True).lower()
    error_of(client.post("/api/workflows", json={"flow": "simple"}), 503, "unavailable")
    locked.unlock()
    assert stored(locked.app, "g") == before                   # nothing half-written
    again = client.post("/api/workflows/g/events", json=event)  # the client tries again
    assert again.status_code == 200 and again.json["pending"][0]["key"] == "event_ask_1"
    twice = client.post("/api/workflows/g/events", json=event)
    # The same key: delivered once (the workflow is as it was), and the answer says so.
    assert twice.json["delivered"] == "duplicate" and again.json["delivered"] == "wait"
    assert {**twice.json, "delivered": "wait"} == again.json
    with locked.app.app_context():
        assert runtime.status_counts() == {"waiting": 1}


def test_a_worker_told_to_exit_when_idle_waits_out_a_locked_database(locked, clock):
    with locked.app.app_context():
        runtime.start("user_onboarding", id="u")
    clock.advance(10)                                    # its first timer is due
    locked.lock()
    with locked.app.app_context():
        with pytest.raises(runtime.Unavailable):         # busy is not "nothing is due"
            runtime.run_due()
    runner = runtime.Runner(locked.app.extensions["tinyflow"], interval=0)
    passes, tick = [], runner.tick

    def counted_tick():
        passes.append(len(passes) + 1)
        if len(passes) == 2:
            locked.unlock()                              # the other writer is done
        return tick()
    runner.tick = counted_tick
    assert runner.work(burst=True) == 1
    assert passes == [1, 2, 3]                           # busy, ran the workflow, idle
    with locked.app.app_context():
        [wait] = runtime.describe(runtime.get("u"))["pending"]
        assert wait["key"] == "wait_before_end"          # it moved on to its second timer


def test_a_lock_released_while_retrying_lets_the_request_through(locked):
    client = locked.app.test_client()
    start(client, "guess_game", "g")
    locked.lock()
    locked.time.on_retry = locked.unlock                 # the other writer finishes meanwhile
    response = client.post("/api/workflows/g/events", json={"name": "event_ask_0",
                                                            "payload": -1})
    assert response.status_code == 200 and len(locked.retries) == 1
    assert response.json["pending"][0]["key"] == "event_ask_1"


def test_an_event_committed_before_the_lock_came_is_answered_as_accepted(locked):
    client = locked.app.test_client()
    start(client, "guess_game", "g")
    locked.time.on_retry = None
    commits = []
    real_write = store.Store.write

    def write(*args, **kwargs):       # the event's commit passes; the lock comes right after
        commits.append(1)
        if len(commits) == 2:
            locked.lock()
        return real_write(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store.Store, "write", write)
        response = client.post("/api/workflows/g/events", json={"name": "event_ask_0",
                                                                "payload": -1})
    locked.unlock()
    # Not 503: the event is stored, and a client that retried without a key would send it twice.
    # 202: accepted, with a note that the run after it is left to a runner.
    assert response.status_code == 202 and "committed" in response.json["note"]
    assert client.get("/api/workflows/g/snapshot").json["system"]["1:step_play:event:event_ask_0"][
        "responsePayload"] == -1
