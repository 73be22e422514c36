"""Access: where `serve` listens, the secret key, the access token (pages log in once, the API
takes a bearer token), read-only mode, CSRF on every form, cross-site requests, and the
security headers with a Content-Security-Policy the pages really keep to."""
from __future__ import annotations

import base64
import json
import re
import stat
import zlib
from urllib.parse import urlsplit

import pytest
from bs4 import BeautifulSoup

from webapp import create_app, runtime
from webapp.cli import main
from webapp.views import access

TOKEN = "correct-horse-battery-staple-42"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
HTMX = {"HX-Request": "true"}


def page(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def csrf(client, url="/workflows") -> str:
    """The session's CSRF token, as a page hands it out (every page carries it for htmx)."""
    return json.loads(page(client.get(url)).body["hx-headers"])["X-CSRFToken"]


def same_token(app, one: str, other: str) -> bool:
    """Both are the session's CSRF token (Flask-WTF signs it with the time of the page, so
    two pages carry two spellings of one token)."""
    from itsdangerous import URLSafeTimedSerializer

    signer = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="wtf-csrf-token")
    return signer.loads(one) == signer.loads(other)


def post_forms(html: BeautifulSoup):
    return html.select("form[method=post]")


def login(client, token=TOKEN, next_url="/workflows"):
    return client.post("/login", data={"csrf_token": csrf(client, "/login"), "token": token,
                                       "next": next_url})


@pytest.fixture
def waiting(app):
    """A guess game waiting for its first answer, onboarding waiting on a timer, a failed
    workflow and a finished one."""
    with app.app_context():
        runtime.start("guess_game", id="game")
        runtime.start("user_onboarding", id="onboard")
        runtime.start("simple", id="done")
        runtime.start("flaky_payment", id="flaky", state={"amount": 5})
        for _ in range(3):
            row = runtime.get("flaky")
            for wait in runtime.describe(row)["pending"]:
                runtime.fire_timer("flaky", wait["resumeId"])
        assert runtime.get("flaky").status == "failed"
    return app


# --- serve -----------------------------------------------------------------------------------

@pytest.fixture
def served(app, monkeypatch):
    """`tiny-workflow serve` with waitress and the runner replaced by recorders."""
    import waitress

    calls = {}
    monkeypatch.setattr(waitress, "serve", lambda app, **kw: calls.setdefault("serve", kw))
    monkeypatch.setattr(runtime, "start_runner", lambda app, **kw: calls.setdefault("runner", 1))

    def serve(*args, **config):
        app.config.update(config)
        result = app.test_cli_runner().invoke(main, args=["serve", *args])
        assert result.exit_code == 0, result.output
        return calls, result
    return serve


def test_serve_listens_on_this_machine_only_unless_told(served):
    calls, result = served()
    assert calls["serve"]["host"] == "127.0.0.1" and calls["runner"] == 1
    assert "Warning" not in result.output


def test_serve_on_every_interface_without_a_token_warns(served):
    calls, result = served("--host", "0.0.0.0")
    assert calls["serve"]["host"] == "0.0.0.0"
    assert "without TINYFLOW_AUTH_TOKEN" in result.stderr


def test_serve_on_every_interface_with_a_token_does_not_warn(served):
    _, result = served("--host", "0.0.0.0", TINYFLOW_AUTH_TOKEN=TOKEN)
    assert "Warning" not in result.output


def test_serve_read_only_starts_no_runner(served):
    calls, result = served(TINYFLOW_READ_ONLY=True)
    assert "runner" not in calls and "Read-only" in result.output


# --- the secret key --------------------------------------------------------------------------

def test_the_secret_key_is_made_once_private_and_kept(make_app, tmp_path):
    first = make_app().config["SECRET_KEY"]
    path = tmp_path / "instance" / "secret_key"
    assert path.read_text().strip() == first and len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert make_app().config["SECRET_KEY"] == first            # kept: sessions survive restarts
    assert [p.name for p in path.parent.iterdir() if "secret" in p.name] == ["secret_key"]


def test_an_empty_key_file_left_by_a_crash_is_replaced(make_app, tmp_path):
    path = tmp_path / "instance" / "secret_key"
    path.parent.mkdir(parents=True)
    path.write_text("")
    key = make_app().config["SECRET_KEY"]
    assert len(key) >= 32 and path.read_text().strip() == key


def test_another_instance_folder_has_another_key(tmp_path, monkeypatch):
    keys = []
    for name in ("one", "two"):
        monkeypatch.setenv("TINYFLOW_INSTANCE", str(tmp_path / name))
        keys.append(create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI":
                                f"sqlite:///{tmp_path / name}.sqlite"}).config["SECRET_KEY"])
    assert keys[0] != keys[1]


# --- the access token: the API ---------------------------------------------------------------

@pytest.fixture
def guarded(make_app):
    return make_app(TINYFLOW_AUTH_TOKEN=TOKEN)


def test_the_api_needs_the_bearer_token_for_every_change(guarded):
    client = guarded.test_client()
    with guarded.app_context():
        version = runtime.start("guess_game", id="g").version
    calls = [("/api/workflows", {"flow": "simple"}), ("/api/workflows/g/events",
             {"name": "event_ask_0", "payload": 1}), ("/api/workflows/g/timers/advance",
             {"seconds": 1}), ("/api/workflows/g/timers/nope/fire", None),
             ("/api/workflows/g/retry", None), ("/api/workflows/g/cancel", None)]
    for url, body in calls:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                        {"Authorization": f"Basic {TOKEN}"}):
            response = client.post(url, json=body, headers=headers)
            assert response.status_code == 401, (url, headers)
            assert response.json["error"]["code"] == "unauthorized"
            assert response.headers["WWW-Authenticate"] == "Bearer"
    with guarded.app_context():
        assert runtime.get("g").version == version and runtime.status_counts() == {
            "waiting": 1}
    assert client.post("/api/workflows", json={"flow": "simple"}, headers=BEARER).status_code == 201
    answer = client.post("/api/workflows/g/cancel", json={}, headers=BEARER)
    assert answer.json["status"] == "cancelled"


def test_reading_stays_open_unless_reads_are_guarded_too(make_app):
    open_reads = make_app(TINYFLOW_AUTH_TOKEN=TOKEN).test_client()
    assert open_reads.get("/api/workflows").status_code == 200
    assert open_reads.get("/workflows").status_code == 200
    closed = make_app(TINYFLOW_AUTH_TOKEN=TOKEN, TINYFLOW_AUTH_READS=True).test_client()
    assert closed.get("/api/flows").status_code == 401
    assert closed.get("/api/flows", headers=BEARER).status_code == 200
    response = closed.get("/workflows?flow=simple")
    assert response.status_code == 303
    assert response.headers["Location"] == "/login?next=/workflows?flow%3Dsimple"
    assert closed.get("/static/style.css").status_code == 200
    assert closed.get("/login").status_code == 200
    assert login(closed, next_url="/workflows?flow=simple").headers["Location"] == \
        "/workflows?flow=simple"
    assert closed.get("/workflows").status_code == 200


def test_the_token_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYFLOW_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.setenv("TINYFLOW_AUTH_TOKEN", f" {TOKEN}\n")     # as a shell or a file gives it
    monkeypatch.setenv("TINYFLOW_READ_ONLY", "1")
    monkeypatch.setenv("TINYFLOW_SECURE_COOKIES", "true")
    app = create_app({"TESTING": True,
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'db.sqlite'}"})
    assert app.config["TINYFLOW_AUTH_TOKEN"] == TOKEN and app.config["TINYFLOW_READ_ONLY"]
    assert app.config["SESSION_COOKIE_SECURE"] is True


# --- the access token: the pages -------------------------------------------------------------

def test_pages_hide_their_forms_until_logged_in(guarded):
    client = guarded.test_client()
    with guarded.app_context():
        runtime.start("guess_game", id="g")
    for url in ("/workflows", "/workflows/g", "/flows", "/flows/simple"):
        html = page(client.get(url))
        assert post_forms(html) == [], url
        assert html.select_one("#login-link")["href"].startswith("/login?next=")
        assert html.select_one("#login-banner")
    html = page(client.get("/workflows/g"))
    assert html.select_one("#waits [data-form='event-form-event_ask_0'] h3 code").text == \
        "event_ask_0"                                  # what it waits for is still shown

    assert login(client).status_code == 303
    html = page(client.get("/workflows/g"))
    assert {f["id"] for f in post_forms(html)} >= {"event-form-event_ask_0", "cancel-form",
                                                   "send-event-form", "logout-form"}
    assert html.select_one("#login-banner") is None


def test_a_form_posted_without_logging_in_goes_to_the_login_page(guarded):
    client = guarded.test_client()
    with guarded.app_context():
        runtime.start("guess_game", id="g")
    token = csrf(client)
    response = client.post("/workflows/g/cancel", data={"csrf_token": token},
                           headers={"Referer": "http://localhost/workflows/g"})
    assert response.status_code == 303
    assert response.headers["Location"] == "/login?next=/workflows/g"
    htmx = client.post("/workflows/g/cancel", data={"csrf_token": token}, headers=HTMX)
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"].startswith("/login?next=")
    with guarded.app_context():
        assert runtime.get("g").status == "waiting"


def test_logging_in_once_lasts_the_browser_session_and_logging_out_ends_it(guarded):
    client = guarded.test_client()
    with guarded.app_context():
        runtime.start("guess_game", id="g")
    wrong = login(client, token="guess")
    assert wrong.status_code == 401
    assert page(wrong).select_one("#login-error").text == "That is not the access token."
    response = login(client, next_url="/workflows/g")
    assert response.headers["Location"] == "/workflows/g"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Expires" not in cookie and "Max-Age" not in cookie     # ends with the browser
    assert TOKEN not in session_text(client)                        # never the token itself
    for value in (0, 1):                                            # logged in once: both pass
        answer = client.post("/workflows/g/events", data={
            "csrf_token": csrf(client), "name": f"event_ask_{value}", "value": f"-{value}"})
        assert answer.status_code == 303
    assert client.post("/logout", data={"csrf_token": csrf(client)}).status_code == 303
    assert post_forms(page(client.get("/workflows/g"))) == []
    refused = client.post("/workflows/g/cancel", data={"csrf_token": csrf(client)})
    assert refused.status_code == 303 and refused.headers["Location"].startswith("/login")


def session_text(client) -> str:
    """The session cookie's payload, decoded (it is signed, not encrypted: anyone can read it)."""
    value = client.get_cookie("session").value
    data = value.split(".")[1 if value.startswith(".") else 0]
    raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    return (zlib.decompress(raw) if value.startswith(".") else raw).decode()


def test_a_new_token_logs_every_browser_out(guarded):
    client = guarded.test_client()
    login(client)
    assert post_forms(page(client.get("/workflows")))
    guarded.config["TINYFLOW_AUTH_TOKEN"] = "another-long-token-for-the-test"
    assert not [f for f in post_forms(page(client.get("/workflows"))) if f["id"] != "logout-form"]


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example",
                                    "javascript:alert(1)", "", "/ok\r\nSet-Cookie: x=1"])
def test_login_never_redirects_to_another_site(guarded, target):
    response = login(guarded.test_client(), next_url=target)
    assert response.status_code == 303 and response.headers["Location"] == "/workflows"


def test_the_login_form_needs_its_csrf_token(guarded):
    client = guarded.test_client()
    response = client.post("/login", data={"token": TOKEN})
    assert response.status_code == 400
    assert post_forms(page(client.get("/workflows"))) == []


def test_without_a_token_there_is_no_login(client):
    html = page(client.get("/workflows"))
    assert html.select_one("#login-link") is None and html.select_one("#logout-form") is None
    assert client.get("/login?next=/flows").headers["Location"] == "/flows"


# --- read-only -------------------------------------------------------------------------------

def test_read_only_refuses_every_change_and_shows_no_form(make_app):
    app = make_app()
    with app.app_context():
        runtime.start("guess_game", id="g")
        runtime.start("flaky_payment", id="f", state={"amount": 1})
    app.config["TINYFLOW_READ_ONLY"] = True
    client = app.test_client()
    for url in ("/workflows", "/workflows/g", "/workflows/f", "/flows", "/flows/guess_game"):
        html = page(client.get(url))
        assert post_forms(html) == [], url
        assert html.select_one("#read-only-banner")
    token = csrf(client)
    for url in ("/workflows", "/workflows/g/events", "/workflows/g/cancel",
                "/workflows/g/timers/advance", "/workflows/f/retry"):
        response = client.post(url, data={"csrf_token": token, "flow": "simple", "name": "x"})
        assert response.status_code == 403, url
        assert "read-only" in page(response).select_one(".problem-message").text
    for url in ("/api/workflows", "/api/workflows/g/events", "/api/workflows/g/cancel",
                "/api/workflows/g/retry", "/api/workflows/g/timers/advance"):
        response = client.post(url, json={"flow": "simple", "name": "x", "seconds": 1},
                               headers=BEARER)
        assert response.status_code == 403 and response.json["error"]["code"] == "read_only"
    assert client.get("/api/workflows/g").json["status"] == "waiting"
    with app.app_context():
        assert runtime.status_counts() == {"waiting": 2}


# --- CSRF ------------------------------------------------------------------------------------

def test_every_form_on_every_page_carries_the_csrf_token_and_needs_it(waiting):
    client = waiting.test_client()
    token = csrf(client)
    forms = []
    for url in ("/workflows", "/workflows/game", "/workflows/flaky", "/workflows/done",
                "/workflows/onboard", "/flows", "/flows/guess_game"):
        forms += post_forms(page(client.get(url)))
    actions = {re.sub(r"/timers/[^/]+/fire$", "/timers/<id>/fire", f["action"]) for f in forms}
    assert actions == {"/workflows", "/workflows/game/events", "/workflows/game/cancel",
                       "/workflows/flaky/retry", "/workflows/flaky/cancel",
                       "/workflows/onboard/timers/<id>/fire", "/workflows/onboard/timers/advance",
                       "/workflows/onboard/events", "/workflows/onboard/cancel"}
    for form in forms:
        field = form.select_one("input[name=csrf_token]")
        assert field is not None and same_token(waiting, field["value"], token), form.get("id")
    before = client.get("/api/workflows?limit=500").json
    for form in forms:
        data = {i["name"]: i.get("value", "1") for i in form.select("input[name]")
                if i["name"] != "csrf_token"}
        response = client.post(form["action"], data=data)
        assert response.status_code == 400, form.get("id")
        assert "security token" in response.get_data(as_text=True)
        data["csrf_token"] = "forged"
        assert client.post(form["action"], data=data).status_code == 400
    assert client.get("/api/workflows?limit=500").json == before


# --- cross-site requests ---------------------------------------------------------------------

@pytest.mark.parametrize("headers", [{"Origin": "https://evil.example"}, {"Origin": "null"},
                                     {"Sec-Fetch-Site": "cross-site"},
                                     {"Sec-Fetch-Site": "same-site",
                                      "Origin": "http://localhost"}])
def test_changes_sent_from_another_site_are_refused(client, headers):
    # A page elsewhere can post a text/plain body that parses as JSON, or an empty one: the
    # API takes no CSRF token, so the browser's own headers are what give such a call away.
    with client.application.app_context():
        runtime.start("guess_game", id="g")
    response = client.post("/api/workflows/g/cancel", data="", headers=headers)
    assert response.status_code == 403 and response.json["error"]["code"] == "forbidden"
    forged = client.post("/api/workflows", data='{"flow": "simple", "x": "="}',
                         content_type="text/plain", headers=headers)
    assert forged.status_code == 403
    form = client.post("/workflows/g/cancel", data={"csrf_token": csrf(client)},
                       headers=headers)
    assert form.status_code == 403
    assert client.get("/api/workflows/g").json["status"] == "waiting"
    assert client.get("/api/workflows", headers=headers).status_code == 200   # reading is fine


@pytest.mark.parametrize("headers", [{"Origin": "http://localhost"},
                                     {"Sec-Fetch-Site": "same-origin"}, {}])
def test_changes_from_the_dashboard_itself_and_from_tools_pass(client, headers):
    response = client.post("/api/workflows", json={"flow": "simple"}, headers=headers)
    assert response.status_code == 201


# --- headers and the Content-Security-Policy -------------------------------------------------

CSP_PARTS = {"default-src 'self'", "style-src 'self'", "img-src 'self' data:",
             "object-src 'none'", "base-uri 'none'", "form-action 'self'",
             "frame-ancestors 'none'"}


def test_every_answer_carries_the_security_headers(waiting):
    client = waiting.test_client()
    htmx = waiting.config["TINYFLOW_HTMX_URL"]
    for url in ("/workflows", "/workflows/game", "/api/workflows", "/flows", "/nowhere",
                "/api/nowhere", "/static/style.css", "/workflows/game/diagram.svg", "/login"):
        headers = client.get(url).headers
        policy = {p.strip() for p in headers["Content-Security-Policy"].split(";")}
        assert policy == CSP_PARTS | {f"script-src {htmx}"}, url
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "same-origin"


def test_the_policy_allows_exactly_the_pinned_htmx_file(app):
    with app.test_request_context():
        policy = access.content_security_policy()
    assert "script-src https://unpkg.com/htmx.org@2.0.4/dist/htmx.min.js;" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


def test_the_pages_keep_to_the_policy(waiting):
    """What the policy would block is simply not there: no inline script, style or event
    handler (the inline SVG diagrams included), and the one script is the pinned htmx with
    its integrity hash. htmx is told not to add its own <style> or run inline code."""
    client = waiting.test_client()
    config = waiting.config
    urls = ["/workflows", "/workflows?status=failed", "/workflows/game", "/workflows/flaky",
            "/workflows/done", "/flows", "/flows/interval_payment", "/nowhere", "/login"]
    for url in urls:
        if url == "/login":
            config["TINYFLOW_AUTH_TOKEN"] = TOKEN      # else it only redirects
        response = client.get(url)
        html = page(response)
        scripts = html.find_all("script")
        assert [(s.get("src"), s.get("integrity"), s.text.strip()) for s in scripts] == [
            (config["TINYFLOW_HTMX_URL"], config["TINYFLOW_HTMX_SRI"], "")], url
        assert html.find_all("style") == [], url
        for tag in html.find_all(True):
            assert "style" not in tag.attrs, (url, tag.name)
            assert not [a for a in tag.attrs if a.lower().startswith("on")], (url, tag.name)
            for name in ("href", "src", "action", "xlink:href"):
                assert not str(tag.get(name, "")).strip().lower().startswith("javascript:")
        for link in html.select("link[rel~=stylesheet]"):
            assert urlsplit(link["href"]).netloc == "", url
        for link in html.select("link[href^='data:']"):
            assert link["rel"] == ["icon"]                   # img-src allows data: for it
        settings = json.loads(html.select_one("meta[name=htmx-config]")["content"])
        assert settings["includeIndicatorStyles"] is False and settings["allowEval"] is False
    assert page(client.get("/workflows/game")).select("svg g.node")   # the diagram is inline


def test_the_favicon_and_the_inline_diagram_need_nothing_else(waiting):
    html = page(waiting.test_client().get("/workflows/game"))
    assert html.select_one("link[rel=icon]")["href"].startswith("data:image/svg+xml")
    svg = html.select_one(".diagram-svg svg")
    assert svg is not None and not svg.find_all(["script", "foreignobject", "style"])
    assert not re.search(r"url\(", str(svg))


def test_htmx_served_from_here_is_allowed_as_self(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYFLOW_INSTANCE", str(tmp_path / "i"))
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI":
                      f"sqlite:///{tmp_path / 'db.sqlite'}",
                      "TINYFLOW_HTMX_URL": "/static/htmx.min.js"})
    with app.test_request_context():
        assert "script-src 'self';" in access.content_security_policy()
