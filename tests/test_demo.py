"""`tiny-workflow demo` fills a fresh database with workflows in every state; `serve` runs the
dashboard with waitress and the runner on."""
from __future__ import annotations

import pytest

from webapp.cli import main


@pytest.fixture
def demo(runner, client):
    result = runner.invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    items = client.get("/api/workflows?limit=500").json["items"]
    return result, {item["id"]: client.get(f"/api/workflows/{item['id']}").json
                    for item in items}


def test_demo_has_workflows_in_every_state(demo, clock):
    result, workflows = demo
    statuses = {wf["status"] for wf in workflows.values()}
    assert statuses == {"finished", "waiting", "failed", "cancelled"}
    assert "demo workflows" in result.output and "tiny-workflow serve" in result.output

    waiting_for = {w["type"] for wf in workflows.values() for w in wf["pending"]}
    assert waiting_for == {"event", "timer"}
    questions = [w["requestPayload"]["question"] for wf in workflows.values()
                 for w in wf["pending"] if w["type"] == "event"]
    assert any("number between 0-100" in q for q in questions)
    # a timer a newcomer can watch: still due in the future when the dashboard opens
    billing = workflows["demo-billing-1"]
    assert billing["status"] == "waiting" and billing["state"]["currentUsages"]
    assert billing["pending"][0]["resumeAfter"] / 1000 > clock.now + 60

    # issue 12: the onboarding asleep on a timer is still asleep at a first look (a long timer)
    onboarding = workflows["demo-onboarding-2"]
    assert onboarding["status"] == "waiting"
    assert onboarding["pending"][0]["resumeAfter"] / 1000 > clock.now + 12 * 3600
    # ... and `demo` does not echo the flows' own prints (simple's "... do heavy computed ...")
    assert "heavy computed" not in result.output

    failed = [wf for wf in workflows.values() if wf["status"] == "failed"]
    assert failed and failed[0]["error"]["type"] == "ProviderDown"
    assert {wf["flow"] for wf in workflows.values()} >= {
        "simple", "guess_game", "guess_game_2", "user_onboarding", "interval_payment"}


def test_demo_times_tell_a_story_in_the_past(demo, client, clock):
    _, workflows = demo
    times = sorted(wf["created_at"] for wf in workflows.values())
    assert times[0] < times[-1]                     # spread out, not all "just now"
    log = client.get("/api/workflows/demo-simple-1/logs").json["items"]
    assert log[0]["_at"] < clock.now * 1000 - 3600 * 1000


def test_demo_twice_adds_nothing(demo, runner, client):
    _, workflows = demo
    again = runner.invoke(main, ["demo"])
    assert again.exit_code == 0 and "already there" in again.output
    assert len(client.get("/api/workflows?limit=500").json["items"]) == len(workflows)


def test_the_demo_pages_render(demo, client):
    _, workflows = demo
    assert client.get("/workflows").status_code == 200
    for wf_id in workflows:
        assert client.get(f"/workflows/{wf_id}").status_code == 200, wf_id


def test_serve_runs_waitress_with_the_runner_on(runner, app, monkeypatch):
    import waitress

    served = {}

    def serve(wsgi, **kw):      # while waitress serves, the runner runs
        served.update(app=wsgi, runner_alive=app.extensions["tinyflow.runner"].is_alive(), **kw)
    monkeypatch.setattr(waitress, "serve", serve)
    result = runner.invoke(main, ["serve", "--port", "5099"])
    assert result.exit_code == 0, result.output
    assert served["app"] is app and served["port"] == 5099 and served["host"] == "127.0.0.1"
    assert app.config["TINYFLOW_RUNNER"] is True
    assert served["runner_alive"]
    # once waitress returns, serve stops its runner and says so
    assert not app.extensions["tinyflow.runner"].is_alive()
    assert result.output.rstrip().endswith("tiny-workflow stopped")
    assert "http://127.0.0.1:5099/workflows" in result.output
