"""Issue 11 under attack, the web side: strict input (NaN, Infinity, 1e400, lone surrogates,
NUL, cursors, long searches), the Host check (DNS rebinding), ids that work through every door,
sessions revoked at Log out and failed logins slowed, bad import files, and database errors
that answer a documented status. Each test failed before its fix."""
from __future__ import annotations

import base64
import json
from urllib.parse import quote, unquote

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import exc, update

from webapp import create_app, runtime, store
from webapp.runtime import rules
from webapp.cli import main
from webapp.store import WorkflowRow, db

TOKEN = "correct-horse-battery-staple-42"


def page(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def csrf(client, url="/workflows") -> str:
    return json.loads(page(client.get(url)).body["hx-headers"])["X-CSRFToken"]


def error_of(response, status, code) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json, response.get_data(as_text=True)
    assert response.json["error"]["code"] == code, response.json
    return response.json["error"]["message"]


def strict_json(response):
    """The body parses as strict JSON (no NaN or Infinity)."""
    return rules.loads(response.get_data(as_text=True))


def cursor(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def stored(app, id):
    with app.app_context():
        db.session.rollback()
        row = runtime.current().store.load(id)
        return None if row is None else (row.version, row.state, row.inbox, row.log_count)


def count(app) -> int:
    with app.app_context():
        db.session.rollback()
        return sum(runtime.status_counts().values())


# --- 1. input: strict JSON, clean text, cursors and q ---------------------------------------

NOT_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"]


@pytest.mark.parametrize("number", NOT_NUMBERS)
def test_nan_infinity_and_overflow_are_refused_in_every_body(client, number):
    client.post("/api/workflows", json={"flow": "guess_game", "id": "g"})
    before = stored(client.application, "g")
    for url, body in (("/api/workflows", f'{{"flow": "simple", "state": {{"x": {number}}}}}'),
                      ("/api/workflows/g/events", f'{{"name": "event_ask_0", "payload": {number}}}'),
                      ("/api/workflows/g/events",
                       f'{{"name": "event_ask_0", "payload": {{"deep": [{number}]}}}}')):
        response = client.post(url, data=body, content_type="application/json")
        assert "JSON number" in error_of(response, 422, "invalid") or "too large" in \
            response.json["error"]["message"]
    assert stored(client.application, "g") == before and count(client.application) == 1


@pytest.mark.parametrize("number", NOT_NUMBERS)
def test_nan_infinity_and_overflow_are_refused_in_the_page_forms(client, number):
    client.post("/api/workflows", json={"flow": "guess_game", "id": "g"})
    before = stored(client.application, "g")
    response = client.post("/workflows", data={"csrf_token": csrf(client), "flow": "simple",
                                               "state": f'{{"x": {number}}}'})
    assert response.status_code == 422
    assert page(response).select_one("#start-form-error").text
    response = client.post("/workflows/g/events", data={
        "csrf_token": csrf(client), "name": "event_ask_0", "value": number,
        "form": "send-event-form"})
    assert response.status_code == 422
    assert number in page(response).select_one("#send-event-form").text
    assert stored(client.application, "g") == before and count(client.application) == 1


def test_nothing_not_strict_json_is_served_back(app, client):
    """A row written before these rules (NaN in its state) is shown as broken, in valid JSON."""
    client.post("/api/workflows", json={"flow": "guess_game", "id": "g"})
    with app.app_context():
        db.session.execute(update(WorkflowRow).where(WorkflowRow.id == "g")
                           .values(state='{"x": NaN}'))
        db.session.commit()
    for url in ("/api/workflows/g", "/api/workflows", "/api/workflows/g/logs"):
        response = client.get(url)
        assert response.status_code in (200, 409), url
        strict_json(response)
    assert client.get("/workflows/g").status_code == 200          # the broken page
    assert client.get("/workflows").status_code == 200


HOSTILE_TEXT = {"surrogate": "\ud800", "nul": "a\x00b"}


@pytest.mark.parametrize("kind", HOSTILE_TEXT)
def test_lone_surrogates_and_nul_are_refused_before_the_database(any_db_app, kind):
    client = any_db_app.test_client()
    client.post("/api/workflows", json={"flow": "guess_game", "id": "g"})
    bad = HOSTILE_TEXT[kind]
    escaped = json.dumps(bad)                  # "\ud800" / "a\u0000b": valid JSON text
    before = stored(any_db_app, "g")
    bodies = [
        ("/api/workflows", f'{{"flow": "simple", "state": {{"k": {escaped}}}}}'),
        ("/api/workflows", f'{{"flow": "simple", "state": {{{escaped}: 1}}}}'),
        ("/api/workflows", f'{{"flow": "simple", "id": {escaped}}}'),
        ("/api/workflows/g/events", f'{{"name": {escaped}}}'),
        ("/api/workflows/g/events", f'{{"name": "event_ask_0", "payload": {escaped}}}'),
        ("/api/workflows/g/events",
         f'{{"name": "event_ask_0", "payload": 1, "idempotency_key": {escaped}}}'),
        ("/api/workflows/g/cancel", f'{{"reason": {escaped}}}'),
    ]
    for url, body in bodies:
        response = client.post(url, data=body, content_type="application/json")
        error_of(response, 422, "invalid")
    assert stored(any_db_app, "g") == before and count(any_db_app) == 1
    with any_db_app.app_context():         # the runtime itself, for Python callers
        for call in (lambda: runtime.start("simple", state={"k": bad}),
                     lambda: runtime.start("simple", id=bad),
                     lambda: runtime.send("g", bad),
                     lambda: runtime.send("g", "event_ask_0", [bad]),
                     lambda: runtime.cancel("g", reason=bad)):
            with pytest.raises(runtime.Invalid):
                call()


def test_nul_in_filters_ids_and_forms_is_refused_before_the_database(any_db_app):
    client = any_db_app.test_client()
    client.post("/api/workflows", json={"flow": "guess_game", "id": "g"})
    for url in ("/api/workflows?flow=a%00b", "/api/workflows?q=a%00b",
                "/api/workflows/g%00", "/api/workflows/g/logs?type=a%00",
                "/api/workflows/g/logs?step=a%00"):
        error_of(client.get(url), 422, "invalid")
    for url in ("/workflows?q=a%00b", "/workflows/g%00", "/workflows/g?type=a%00"):
        response = client.get(url)
        assert response.status_code == 422, url
        assert "NUL" in page(response).select_one(".problem-message").text
    response = client.post("/workflows/g/events", data={
        "csrf_token": csrf(client), "name": "event_ask_0", "value": "a\x00b",
        "form": "send-event-form"})
    assert response.status_code == 422 and "NUL" in response.get_data(as_text=True)
    response = client.post("/workflows/g/cancel", data={"csrf_token": csrf(client),
                                                        "reason": "a\x00b"})
    assert response.status_code == 422
    assert client.get("/api/workflows/g").json["status"] == "waiting"


BAD_CURSORS = {
    "huge integer": [10 ** 30, "x"], "negative": [-1, "x"], "surrogate": [1, "\ud800"],
    "nul": [1, "a\x00"], "float": [1.5, "x"], "nan": [float("nan"), "x"],
    "nested": [[1], "x"], "bool": [True, "x"],
}
BAD_LOG_CURSORS = {"huge integer": 10 ** 30, "negative": -5, "surrogate": "\ud800",
                   "float": 2.5, "list": [1]}


def encode(value) -> str:
    text = json.dumps(value)      # NaN as NaN, "\ud800" escaped: what an attacker can send
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize("kind", BAD_CURSORS)
def test_list_cursors_that_are_not_ours_are_422_on_the_api_and_a_clear_page(any_db_app, kind):
    client = any_db_app.test_client()
    value = encode(BAD_CURSORS[kind])
    assert "cursor" in error_of(client.get(f"/api/workflows?cursor={value}"), 422, "invalid")
    response = client.get(f"/workflows?cursor={value}")
    assert response.status_code == 422
    assert "cursor" in page(response).select_one(".problem-message").text


@pytest.mark.parametrize("kind", BAD_LOG_CURSORS)
def test_log_cursors_that_are_not_ours_are_422_on_the_api_and_a_clear_page(any_db_app, kind):
    client = any_db_app.test_client()
    client.post("/api/workflows", json={"flow": "simple", "id": "s"})
    value = encode(BAD_LOG_CURSORS[kind])
    error_of(client.get(f"/api/workflows/s/logs?cursor={value}"), 422, "invalid")
    response = client.get(f"/workflows/s?cursor={value}")
    assert response.status_code == 422
    assert "cursor" in page(response).select_one(".problem-message").text


def test_a_long_search_is_422_on_the_api_and_a_clear_page(client):
    client.post("/api/workflows", json={"flow": "simple", "id": "s"})
    assert client.get("/api/workflows?q=" + "s" * 200).status_code == 200   # the limit: fine
    message = error_of(client.get("/api/workflows?q=" + "%" * 100_000), 422, "invalid")
    assert "200" in message
    response = client.get("/workflows?q=" + "x" * 201)
    assert response.status_code == 422
    assert "200 characters" in page(response).select_one(".problem-message").text


def test_the_cli_refuses_a_payload_json_cannot_hold(app):
    cli = app.test_cli_runner()
    with app.app_context():
        runtime.start("guess_game", id="g")
    for payload in ("1e400", "NaN", '"\\ud800"', '{"a": Infinity}'):
        result = cli.invoke(main, ["send", "g", "event_ask_0", payload])
        assert result.exit_code == 2 and "PAYLOAD" in result.output, result.output
    with app.app_context():
        assert runtime.get("g").log_count == stored(app, "g")[3]
        assert runtime.describe(runtime.get("g"))["status"] == "waiting"


# --- 2. hosts: DNS rebinding ---------------------------------------------------------------

@pytest.mark.parametrize("host", ["localhost", "localhost:5000", "127.0.0.1", "127.0.0.1:8080",
                                  "[::1]", "[::1]:5000"])
def test_this_machines_own_names_are_served(client, host):
    assert client.get("/workflows", headers={"Host": host}).status_code == 200
    assert client.get("/api/workflows", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:5000", "127.0.0.1.evil.example",
                                  "localhost.evil.example"])
def test_a_request_for_another_host_is_400_and_changes_nothing(client, host):
    headers = {"Host": host, "Origin": f"http://{host}"}     # a rebound page: same origin
    message = error_of(client.post("/api/workflows", json={"flow": "simple"}, headers=headers),
                       400, "bad_request")
    assert "TINYFLOW_ALLOWED_HOSTS" in message
    response = client.get("/workflows", headers=headers)
    assert response.status_code == 400 and "TINYFLOW_ALLOWED_HOSTS" in response.text
    assert client.post("/workflows", data={"flow": "simple"}, headers=headers).status_code == 400
    assert count(client.application) == 0


def test_allowed_hosts_come_from_the_environment(make_app, monkeypatch):
    monkeypatch.setenv("TINYFLOW_ALLOWED_HOSTS", "dash.example.com, .corp.example")
    client = make_app().test_client()
    for host in ("dash.example.com", "dash.example.com:443", "ops.corp.example", "localhost"):
        assert client.get("/api/workflows", headers={"Host": host}).status_code == 200, host
    assert client.get("/api/workflows", headers={"Host": "evil.example"}).status_code == 400


def test_the_config_wins_over_the_environment_and_a_star_allows_any(make_app, monkeypatch):
    monkeypatch.setenv("TINYFLOW_ALLOWED_HOSTS", "dash.example.com")
    client = make_app(TINYFLOW_ALLOWED_HOSTS="other.example").test_client()
    assert client.get("/api/workflows", headers={"Host": "other.example"}).status_code == 200
    assert client.get("/api/workflows", headers={"Host": "dash.example.com"}).status_code == 400
    anyone = make_app(TINYFLOW_ALLOWED_HOSTS="*").test_client()
    assert anyone.get("/api/workflows", headers={"Host": "what.ever"}).status_code == 200


@pytest.fixture
def served(app, monkeypatch):
    import waitress

    calls = {}
    monkeypatch.setattr(waitress, "serve", lambda app, **kw: calls.setdefault("serve", kw))
    monkeypatch.setattr(runtime, "start_runner", lambda app, **kw: None)

    def serve(*args):
        result = app.test_cli_runner().invoke(main, args=["serve", *args])
        assert result.exit_code == 0, result.output
        return result
    return serve


def test_serve_serves_the_host_it_binds_to(app, served):
    served("--host", "10.1.2.3")
    client = app.test_client()
    assert client.get("/api/workflows", headers={"Host": "10.1.2.3:5000"}).status_code == 200
    assert client.get("/api/workflows", headers={"Host": "evil.example"}).status_code == 400


def test_serve_on_every_interface_says_which_hosts_are_served(app, served):
    result = served("--host", "0.0.0.0")
    assert "TINYFLOW_ALLOWED_HOSTS" in result.stderr
    assert app.test_client().get("/api/workflows", headers={"Host": "0.0.0.0"}).status_code == 400


# --- 3. ids: any accepted id works everywhere; the others are refused saying why -------------

ODD_IDS = ["заказ-1", "snapshot", "logs", "events", "x.json", "a b", "100%", "q?x=1#frag",
           "<b>&amp;\"'", "emoji-🎉", "a;b,c"]
REFUSED_IDS = {"a/snapshot": "'/'", "/lead": "'/'", "x/logs": "'/'", " pad": "white space",
               "pad ": "white space", "tab\tid": "control", "line\nbreak": "control",
               "nul\x00": "NUL", ".": "'.'", "..": "'.'", "": "'id'", "x" * 201: "200"}


@pytest.mark.parametrize("wf_id", ODD_IDS)
def test_an_accepted_id_works_through_every_door(app, client, wf_id):
    assert client.post("/api/workflows", json={"flow": "guess_game", "id": wf_id}
                       ).status_code == 201
    url = quote(wf_id, safe="")
    assert client.get(f"/api/workflows/{url}").json["id"] == wf_id
    assert client.get(f"/api/workflows/{url}/logs").json["items"]
    snap = client.get(f"/api/workflows/{url}/snapshot?download=1")
    assert snap.status_code == 200 and snap.json["status"] == "waiting"
    disposition = snap.headers["Content-Disposition"]
    disposition.encode("latin-1")                            # a header that can be sent
    if not wf_id.isascii():
        assert f"filename*=UTF-8''{quote(wf_id + '.json', safe='')}" in disposition
    html = page(client.get("/workflows"))
    link = html.select_one(f"tr[data-id='{wf_id}'] .col-id a") if "'" not in wf_id else None
    assert link is None or unquote(link["href"]) == f"/workflows/{wf_id}"
    shown = page(client.get(f"/workflows/{url}"))
    assert shown.select_one("#wf-status .badge").text == "waiting"
    download = client.get(shown.select_one("#download-snapshot")["href"])
    assert download.status_code == 200 and download.json["step"] == snap.json["step"]
    assert client.get(f"/workflows/{url}/diagram.svg").status_code == 200
    assert client.get(f"/workflows/{url}/diagram.dot").status_code == 200
    result = app.test_cli_runner().invoke(main, ["export", wf_id])
    assert result.exit_code == 0 and json.loads(result.output)["status"] == "waiting"
    result = app.test_cli_runner().invoke(main, ["send", wf_id, "event_ask_0", "50"])
    assert result.exit_code == 0, result.output
    response = client.post(f"/workflows/{url}/cancel", data={"csrf_token": csrf(client)})
    assert response.status_code == 303
    assert unquote(response.headers["Location"]) == f"/workflows/{wf_id}"
    assert client.get(f"/api/workflows/{url}").json["status"] == "cancelled"


@pytest.mark.parametrize("wf_id", REFUSED_IDS)
def test_an_id_that_cannot_work_everywhere_is_refused_at_start_saying_why(app, client, wf_id):
    why = REFUSED_IDS[wf_id]
    message = error_of(client.post("/api/workflows", json={"flow": "simple", "id": wf_id}),
                       422, "invalid")
    assert why in message
    if wf_id == wf_id.strip() and wf_id:       # the page's form strips what is typed
        response = client.post("/workflows", data={"csrf_token": csrf(client), "flow": "simple",
                                                   "id": wf_id})
        assert response.status_code == 422
        assert why in page(response).select_one("#start-form-error").text
    with app.app_context():
        with pytest.raises(runtime.Invalid, match="1 to 200" if not wf_id else "run id"):
            runtime.import_snapshots([[wf_id, {"step": "step_end", "state": {}, "cache": {},
                                               "system": {}}]], "simple")
    assert count(app) == 0


# --- 4. sessions: Log out revokes; failed logins slowed -------------------------------------

def login(client, token=TOKEN, **kw):
    return client.post("/login", data={"csrf_token": csrf(client, "/login"), "token": token,
                                       "next": "/workflows"}, **kw)


def test_a_copy_of_the_cookie_taken_before_log_out_no_longer_works(make_app, any_db_url):
    app = make_app(any_db_url, TINYFLOW_AUTH_TOKEN=TOKEN)
    with app.app_context():
        runtime.start("guess_game", id="g")
    browser, thief = app.test_client(), app.test_client()
    assert login(browser).status_code == 303
    thief.set_cookie("session", browser.get_cookie("session").value)   # the copy
    sent = thief.post("/workflows/g/events", data={"csrf_token": csrf(thief),
                                                   "name": "event_ask_0", "value": "1"})
    assert sent.status_code == 303 and sent.headers["Location"] == "/workflows/g"  # it works
    thief.set_cookie("session", browser.get_cookie("session").value)
    assert browser.post("/logout", data={"csrf_token": csrf(browser)}).status_code == 303
    before = stored(app, "g")
    refused = thief.post("/workflows/g/events", data={"csrf_token": csrf(thief),
                                                      "name": "event_ask_1", "value": "2"})
    assert refused.status_code == 303 and refused.headers["Location"].startswith("/login")
    assert not page(thief.get("/workflows/g")).select("form[method=post]:not(#logout-form)")
    assert stored(app, "g") == before
    assert login(browser).status_code == 303                 # logging in again works


def test_failed_logins_are_slowed_per_address(make_app, clock):
    app = make_app(TINYFLOW_AUTH_TOKEN=TOKEN)
    client = app.test_client()
    for _ in range(10):
        assert login(client, token="guess").status_code == 401
    for token in ("guess", TOKEN):                            # even the right one, for now
        response = login(client, token=token)
        assert response.status_code == 429
        assert int(response.headers["Retry-After"]) == 60
        assert "Too many failed logins" in page(response).select_one("#login-error").text
    other = app.test_client()
    assert login(other, environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code == 303
    clock.advance(30)
    assert login(client).headers["Retry-After"] == "30"
    clock.advance(30)
    assert login(client).status_code == 303                   # the minute has passed


def test_wrong_bearer_tokens_are_slowed_per_address(make_app, clock):
    client = make_app(TINYFLOW_AUTH_TOKEN=TOKEN).test_client()
    for _ in range(10):
        response = client.post("/api/workflows", json={"flow": "simple"},
                               headers={"Authorization": "Bearer guess"})
        error_of(response, 401, "unauthorized")
    response = client.post("/api/workflows", json={"flow": "simple"},
                           headers={"Authorization": f"Bearer {TOKEN}"})
    error_of(response, 429, "too_many_requests")
    assert response.headers["Retry-After"] == "60"
    clock.advance(61)
    assert client.post("/api/workflows", json={"flow": "simple"},
                       headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 201


# --- 5. import: every bad file is a one-line error, and stores nothing ----------------------

def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


GOOD = '{"step": "step_end", "state": {}, "cache": {}, "system": {}}'
BAD_FILES = {
    "nested 900 deep": nested(900),
    "nested 900 deep in a state": f'[["a", {GOOD}], ["b", {{"step": "step_end", "state": '
                                  f'{{"x": {nested(900)}}}, "cache": {{}}, "system": {{}}}}]]',
    "nested 100000 deep": nested(100_000),
    "lone surrogate": f'[["a", {GOOD}], ["b", {{"step": "step_end", "state": {{"x": '
                      '"\\ud800"}, "cache": {}, "system": {}}]]',
    "surrogate id": f'[["\\udc00", {GOOD}]]',
    "NaN": f'[["a", {GOOD}], ["b", {{"step": "step_end", "state": {{"x": NaN}}, '
           '"cache": {}, "system": {}}]]',
    "1e400 time": f'[["a", {GOOD}], ["b", {{"step": "step_end", "state": {{}}, "cache": {{}}, '
                  '"system": {}, "logs": [{"type": "x", "_at": 1e400}]}]]',
    "NUL": f'[["a", {GOOD}], ["b\\u0000", {GOOD}]]',
    "id with a slash": f'[["a", {GOOD}], ["b/snapshot", {GOOD}]]',
    "truncated": f'[["a", {GOOD}',
    "not UTF-8": b'[["a", {"step": "\xff\xfe"}]]',
}


@pytest.mark.parametrize("kind", BAD_FILES)
def test_a_bad_import_file_is_a_one_line_error_and_stores_nothing(app, tmp_path, kind):
    path = tmp_path / "bad.json"
    content = BAD_FILES[kind]
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    result = app.test_cli_runner().invoke(main, ["import", str(path), "--flow", "simple"])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception   # no traceback
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    assert count(app) == 0


# --- 6. answers: database errors and the unexpected -----------------------------------------

def boom(error):
    def fail(*args, **kwargs):
        raise error
    return fail


LOCKED = exc.OperationalError("SELECT", {}, Exception("disk I/O error"))


def test_a_database_error_is_503_with_retry_after(any_db_app, monkeypatch):
    client = any_db_app.test_client()
    client.post("/api/workflows", json={"flow": "guess_game", "id": "g"})
    monkeypatch.setattr(store.Store, "load", boom(LOCKED))
    monkeypatch.setattr(store.Store, "page", boom(LOCKED))
    for url in ("/api/workflows/g", "/api/workflows"):
        response = client.get(url)
        error_of(response, 503, "unavailable")
        assert response.headers["Retry-After"]
    response = client.post("/api/workflows/g/events", json={"name": "event_ask_0"})
    error_of(response, 503, "unavailable")
    for url in ("/workflows/g", "/workflows"):
        response = client.get(url)
        assert response.status_code == 503 and response.headers["Retry-After"]
        assert "not available" in page(response).select_one(".problem-message").text
    monkeypatch.undo()
    assert client.get("/api/workflows/g").json["status"] == "waiting"


def test_a_value_the_database_refuses_is_422_and_a_constraint_409(client, monkeypatch):
    monkeypatch.setattr(store.Store, "page", boom(exc.DataError("SELECT", {}, Exception("bad"))))
    error_of(client.get("/api/workflows"), 422, "invalid")
    monkeypatch.setattr(store.Store, "page", boom(exc.IntegrityError("INSERT", {}, Exception("dup"))))
    error_of(client.get("/api/workflows"), 409, "conflict")


def test_an_unexpected_error_is_json_500_under_the_api_and_a_page_elsewhere(client, monkeypatch):
    monkeypatch.setattr(store.Store, "page", boom(ZeroDivisionError("oops")))
    message = error_of(client.get("/api/workflows"), 500, "internal")
    assert "oops" not in message                        # nothing of the inside leaks out
    response = client.get("/workflows")
    assert response.status_code == 500
    assert page(response).select_one(".problem-message")     # our page, not a bare 500


def test_runtime_unavailable_outside_the_blueprints_is_503(client, monkeypatch):
    from webapp.views import access

    monkeypatch.setattr(access, "read_only", boom(runtime.Unavailable("busy")))
    response = client.post("/api/workflows", json={"flow": "simple"})
    error_of(response, 503, "unavailable")
    assert response.headers["Retry-After"]


# --- 7. CSRF by Flask-WTF -------------------------------------------------------------------

def test_the_csrf_token_is_taken_as_a_field_or_a_header_and_needed(client):
    token = csrf(client)
    refused = client.post("/workflows", data={"flow": "simple"})
    assert refused.status_code == 400 and "security token" in refused.text
    htmx = client.post("/workflows", data={"flow": "simple"}, headers={"HX-Request": "true"})
    assert htmx.status_code == 400 and "security token" in htmx.text
    assert client.post("/workflows", data={"flow": "simple", "csrf_token": token}
                       ).status_code == 303
    assert client.post("/workflows", data={"flow": "simple"},
                       headers={"X-CSRFToken": token}).status_code == 303
    assert client.post("/api/workflows", json={"flow": "simple"}).status_code == 201  # no token
    assert count(client.application) == 3


def test_a_csrf_token_lasts_the_browser_session(client, clock, monkeypatch):
    token = csrf(client)
    import time

    later = time.time() + 86_400                        # a day later, as Flask-WTF sees it
    monkeypatch.setattr(time, "time", lambda: later)
    assert client.post("/workflows", data={"flow": "simple", "csrf_token": token}
                       ).status_code == 303


def test_an_app_made_outside_a_test_still_has_the_rules(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYFLOW_INSTANCE", str(tmp_path))
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.sqlite'}"})
    assert app.config["TRUSTED_HOSTS"] == ["localhost", "127.0.0.1", "[::1]"]
    assert app.config["WTF_CSRF_TIME_LIMIT"] is None
    with app.app_context():
        for engine in db.engines.values():
            engine.dispose()
