"""Every TINYFLOW_* setting is real: set in the *environment*, it takes effect; given to
``create_app(config)`` too, the config wins; the README's table lists every one of them."""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from webapp import create_app, runtime
from webapp.cli import main
from webapp.runtime.settings import SETTINGS, SettingError, Settings
from webapp.store import db

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def env_app(tmp_path, monkeypatch, clock):
    """``env_app(**environment)``: an app made after setting the environment (TINYFLOW_*
    names), with the test's clock and a SQLite file unless the environment names another."""
    monkeypatch.setenv("TINYFLOW_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.setenv("TINYFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'env.sqlite'}")
    made = []

    def make(**environment):
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        app = create_app({"TESTING": True, "TINYFLOW_CLOCK": clock})
        made.append(app)
        return app
    yield make
    for app in made:
        with app.app_context():
            for engine in db.engines.values():
                engine.dispose()


def start(app, flow="simple", **body):
    return app.test_client().post("/api/workflows", json={"flow": flow, **body})


def test_the_database_url(env_app, tmp_path):
    app = env_app(TINYFLOW_DATABASE_URL=f"sqlite:///{tmp_path / 'elsewhere.sqlite'}")
    assert start(app).status_code == 201
    assert (tmp_path / "elsewhere.sqlite").exists()
    assert not (tmp_path / "env.sqlite").exists()


def test_the_instance_folder_keeps_the_secret_key(env_app, tmp_path):
    env_app(TINYFLOW_INSTANCE=str(tmp_path / "mine"))
    assert len((tmp_path / "mine" / "secret_key").read_text()) >= 32


def test_the_flows(env_app):
    app = env_app(TINYFLOW_FLOWS="flows.simple, flows.guess_game")
    with app.app_context():
        assert sorted(runtime.registry()) == ["guess_game", "simple"]
    assert start(app, "user_onboarding").status_code == 404


def test_a_flows_module_that_cannot_be_imported_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYFLOW_INSTANCE", str(tmp_path))
    monkeypatch.setenv("TINYFLOW_FLOWS", "flows,no_such_flows_module")
    from click.testing import CliRunner
    result = CliRunner().invoke(main, ["list"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: TINYFLOW_FLOWS: cannot import 'no_such_flows_module': ModuleNotFoundError: "
        "No module named 'no_such_flows_module'"]


def test_the_runner(env_app, tmp_path, monkeypatch):
    monkeypatch.setenv("TINYFLOW_RUNNER", "yes")
    app = create_app({"TINYFLOW_CLOCK": lambda: 0.0})     # not TESTING: the runner may start
    try:
        assert app.extensions["tinyflow.runner"].is_alive()
    finally:
        app.extensions["tinyflow.runner"].stop(timeout=10)
        with app.app_context():
            db.engine.dispose()


def test_the_lease(env_app, clock):
    app = env_app(TINYFLOW_LEASE_SECONDS="300")
    with app.app_context():
        runtime.start("user_onboarding", id="u")
        rt = runtime.current()
        clock.advance(10)
        [claimed] = rt.store.claim_due(round(clock() * 1000), list(rt.flows), "me",
                                       rt.lease_ms, 1)
    assert claimed.lease_expires - round(clock() * 1000) == 300_000


def test_the_busy_wait(env_app, clock):
    app = env_app(TINYFLOW_BUSY_WAIT="0.05")
    with app.app_context():
        runtime.start("user_onboarding", id="u")
        rt = runtime.current()
        clock.advance(10)
        rt.store.claim_due(round(clock() * 1000), list(rt.flows), "another-runner", 60_000, 1)
    started = time.monotonic()
    answer = app.test_client().post("/api/workflows/u/cancel", json={})
    assert answer.status_code == 503
    assert time.monotonic() - started < 5     # it gave up after 0.05 s, not the default 10 s
    assert "another-runner" in answer.json["error"]["message"]


@pytest.mark.parametrize("name, value, pragma, expected", [
    ("TINYFLOW_SQLITE_BUSY_MS", "1234", "busy_timeout", 1234),
    ("TINYFLOW_SQLITE_SYNCHRONOUS", "normal", "synchronous", 1),
])
def test_the_sqlite_pragmas(env_app, name, value, pragma, expected):
    app = env_app(**{name: value})
    with app.app_context():
        assert db.session.execute(text(f"PRAGMA {pragma}")).scalar() == expected


def test_the_json_depth(env_app):
    app = env_app(TINYFLOW_MAX_DEPTH="3")
    assert start(app, state={"a": {"b": 1}}).status_code == 201
    deep = start(app, state={"a": {"b": {"c": {"d": 1}}}})
    assert deep.status_code == 422 and "3 levels" in deep.json["error"]["message"]


def test_the_payload_limit(env_app):
    app = env_app(TINYFLOW_MAX_PAYLOAD="1000")
    assert start(app, state={"pad": "x" * 2000}).status_code == 413


def test_the_clock_offset(env_app, clock):
    app = env_app(TINYFLOW_CLOCK_OFFSET="3600")
    made = start(app).json
    assert made["created_at"].startswith("2024-08-18T15:35:33")   # the fake clock + 1 h


def test_the_secret_key(env_app, tmp_path):
    app = env_app(TINYFLOW_SECRET_KEY="k" * 40)
    assert app.secret_key == "k" * 40
    assert not (tmp_path / "instance" / "secret_key").exists()


def test_the_access_token_and_reads(env_app):
    app = env_app(TINYFLOW_AUTH_TOKEN="sesame")
    client = app.test_client()
    assert client.post("/api/workflows", json={"flow": "simple"}).status_code == 401
    assert client.get("/api/workflows").status_code == 200
    assert client.post("/api/workflows", json={"flow": "simple"},
                       headers={"Authorization": "Bearer sesame"}).status_code == 201
    app = env_app(TINYFLOW_AUTH_TOKEN="sesame", TINYFLOW_AUTH_READS="1")
    assert app.test_client().get("/api/workflows").status_code == 401


def test_read_only(env_app):
    app = env_app(TINYFLOW_READ_ONLY="true")
    assert start(app).status_code == 403


def test_secure_cookies(env_app):
    app = env_app(TINYFLOW_SECURE_COOKIES="1")
    answer = app.test_client().get("/workflows")
    assert "Secure" in answer.headers["Set-Cookie"]


def test_the_htmx_script(env_app):
    app = env_app(TINYFLOW_HTMX_URL="/static/htmx.min.js", TINYFLOW_HTMX_SRI="sha384-abc")
    page = app.test_client().get("/workflows").get_data(as_text=True)
    assert '<script src="/static/htmx.min.js" integrity="sha384-abc"' in page


def test_the_host_serve_listens_on(env_app, monkeypatch):
    import waitress

    from webapp import runtime as runtime_package
    served = {}
    monkeypatch.setattr(waitress, "serve", lambda app, **kw: served.update(kw))
    monkeypatch.setattr(runtime_package, "start_runner", lambda app, **kw: None)
    app = env_app(TINYFLOW_HOST="127.0.0.2")
    result = app.test_cli_runner().invoke(main, ["serve", "--port", "5999"])
    assert result.exit_code == 0, result.output
    assert served["host"] == "127.0.0.2"


def test_the_batch_confirmation_limit_and_chunk(env_app):
    app = env_app(TINYFLOW_BATCH_CONFIRM_OVER="2", TINYFLOW_BATCH_CHUNK="2")
    client = app.test_client()
    for i in range(3):
        assert start(app, "guess_game_2", id=f"g{i}").status_code == 201
    body = {"action": "cancel", "filter": {"flow": "guess_game_2"}}
    refused = client.post("/api/batches", json=body)
    assert refused.status_code == 409 and refused.json["error"]["code"] == "confirm_needed"
    assert client.post("/api/batches", json={**body, "confirm": True}).status_code == 202
    with app.app_context():
        rt = runtime.current()
        assert [rt.run_batches(owner="r"), rt.run_batches(owner="r")] == [2, 1]


def test_the_config_wins_over_the_environment(env_app, monkeypatch, tmp_path, clock):
    monkeypatch.setenv("TINYFLOW_LEASE_SECONDS", "300")
    monkeypatch.setenv("TINYFLOW_INSTANCE", str(tmp_path / "instance"))
    app = create_app({"TESTING": True, "TINYFLOW_LEASE_SECONDS": 7.0,
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'c.sqlite'}"})
    assert app.extensions["tinyflow"].lease_ms == 7000
    with app.app_context():
        db.engine.dispose()


def test_a_setting_that_cannot_be_read_names_itself():
    with pytest.raises(SettingError, match="TINYFLOW_LEASE_SECONDS='soon'"):
        Settings.load(environ={"TINYFLOW_LEASE_SECONDS": "soon"})


def test_every_setting_is_in_the_readme_table_and_every_name_the_code_reads_is_a_setting():
    readme = (ROOT / "README.md").read_text()
    table = set(re.findall(r"^\| `(TINYFLOW_[A-Z_]+)` \|", readme, re.M))
    names = {setting.name for setting in SETTINGS}
    assert table == names
    code = "\n".join(p.read_text() for p in (ROOT / "webapp").rglob("*.py"))
    assert set(re.findall(r"TINYFLOW_[A-Z_]+[A-Z]", code)) <= names


def test_the_flow_statistics(env_app):
    kept = env_app()
    assert start(kept).status_code == 201
    assert kept.test_client().get("/api/flows/simple/stats").json["workflows"] == 1
    off = env_app(TINYFLOW_STATS="off")
    assert start(off).status_code == 201
    answer = off.test_client().get("/api/flows/simple/stats").json
    assert answer["recording"] is False and answer["workflows"] == 1   # the first one only
