"""The runtime's terminal commands: import (the original's files), export, list, send, worker."""
import json
from pathlib import Path

import pytest

from webapp import runtime
from webapp.cli import main
from webapp.store import db

ROOT = Path(__file__).resolve().parent.parent
COMPAT = next((p for p in (ROOT.parent / "shared" / "compat", Path("/work/shared/compat"))
               if p.is_dir()), None)
needs_compat = pytest.mark.skipif(
    COMPAT is None, reason="the original's snapshots (shared/compat/*.json) are not here")


class Cli:
    """``tiny-workflow`` run against a test app: ``cli.invoke(args=[...])``."""

    def __init__(self, app):
        self.runner = app.test_cli_runner()

    def invoke(self, args):
        return self.runner.invoke(main, args=args)   # the test app reaches main's commands


@pytest.fixture
def cli(any_db_app):
    return Cli(any_db_app)


def original(name: str):
    return json.loads((COMPAT / name).read_text())


@needs_compat
@pytest.mark.parametrize("file, flow, ids", [
    ("userOnboarding_db.json", "user_onboarding", [f"r_{i}" for i in range(10)]),
    ("intervalPayment_db.json", "interval_payment", ["run_info@company.com"]),
    ("state.json", "guess_game", None),
    ("state_2.json", "guess_game_2", None),
])
def test_import_tells_the_flow_and_keeps_the_run_ids(cli, any_db_app, file, flow, ids):
    result = cli.invoke(args=["import", str(COMPAT / file)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"imported {len(ids or [1])} workflow(s): ")
    stored = result.output.split(": ", 1)[1].strip().split(", ")
    if ids:
        assert stored == ids
    data = original(file)
    pairs = data if isinstance(data, list) else [[stored[0], data]]
    with any_db_app.app_context():
        for id, snap in pairs:
            assert runtime.get(id).flow == flow
            exported = json.loads(cli.invoke(args=["export", id]).output)
            assert exported.pop("status") == "running"     # the original wrote no status
            assert exported == snap


@needs_compat
def test_imported_onboarding_runs_end_under_a_worker(cli, any_db_app):
    cli.invoke(args=["import", str(COMPAT / "userOnboarding_db.json")])
    result = cli.invoke(args=["worker", "--exit-when-idle"])
    assert result.exit_code == 0, result.output
    with any_db_app.app_context():
        assert runtime.status_counts() == {"finished": 10}
        assert runtime.snapshot("r_3")["logs"][-1]["type"] == "finished"


def test_import_with_flow_and_refusals(cli, tmp_path):
    snap = {"step": "step_begin", "state": {}, "cache": {}, "system": {}, "logs": []}
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps(snap))
    result = cli.invoke(args=["import", str(path)])
    assert result.exit_code == 1 and "several flows fit" in result.output
    assert "--flow" in result.output
    result = cli.invoke(args=["import", str(path), "--flow", "simple"])
    assert result.exit_code == 0, result.output

    path.write_text(json.dumps([["a", snap], ["a", snap]]))
    result = cli.invoke(args=["import", str(path), "--flow", "simple"])
    assert result.exit_code == 1 and "appears twice" in result.output

    path.write_text(json.dumps([["a", {**snap, "step": "step_nowhere"}]]))
    result = cli.invoke(args=["import", str(path), "--flow", "simple"])
    assert result.exit_code == 1 and "step_nowhere" in result.output

    path.write_text("{not json")
    result = cli.invoke(args=["import", str(path)])
    assert result.exit_code == 1 and "is not JSON" in result.output

    result = cli.invoke(args=["import", str(path), "--flow", "nope"])
    assert result.exit_code == 1


def test_an_import_is_all_or_nothing(cli, any_db_app, tmp_path):
    good = {"step": "step_end", "state": {}, "cache": {}, "system": {}}
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps([["ok", good], ["bad", {**good, "cache": []}]]))
    result = cli.invoke(args=["import", str(path), "--flow", "simple"])
    assert result.exit_code == 1 and "bad" in result.output
    with any_db_app.app_context():
        assert runtime.status_counts() == {}


def test_export_pair_imports_back_with_its_id(cli, any_db_app, make_app, tmp_path):
    with any_db_app.app_context():
        runtime.start("simple", id="s1")
    out = cli.invoke(args=["export", "s1", "--pair"]).output
    (tmp_path / "s1.json").write_text(out)
    other = make_app(f"sqlite:///{tmp_path / 'other.sqlite'}")
    result = Cli(other).invoke(args=["import", str(tmp_path / "s1.json")])
    assert result.output.strip() == "imported 1 workflow(s): s1"
    with other.app_context():
        assert runtime.get("s1").status == "finished" and runtime.get("s1").flow == "simple"
        assert runtime.snapshot("s1") == json.loads(out)[0][1]


def test_export_of_an_unknown_id_fails(cli):
    result = cli.invoke(args=["export", "nope"])
    assert result.exit_code == 1 and "no workflow 'nope'" in result.output


def test_list_shows_the_workflows_and_filters(cli, any_db_app, clock):
    with any_db_app.app_context():
        runtime.start("simple", id="done-1")
        clock.advance(1)
        runtime.start("guess_game", id="game-1")
    lines = cli.invoke(args=["list"]).output.splitlines()
    assert lines[0].split() == ["ID", "FLOW", "STATUS", "STEP", "UPDATED", "WAKES"]
    assert [line.split()[0] for line in lines[1:]] == ["game-1", "done-1"]
    assert lines[1].split()[:4] == ["game-1", "guess_game", "waiting", "step_play"]
    lines = cli.invoke(args=["list", "--status", "finished"]).output.splitlines()
    assert [line.split()[0] for line in lines[1:]] == ["done-1"]
    lines = cli.invoke(args=["list", "--limit", "1"]).output.splitlines()
    assert lines[-1].startswith("(more")


def test_send_parses_json_payloads_and_reports_errors(cli, any_db_app):
    with any_db_app.app_context():
        runtime.start("interval_payment", {"userEmail": "a@b.c"}, id="p")
    result = cli.invoke(args=["send", "p", "add_usage", '{"item": "id_1", "amount": 4}'])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["state"]["currentUsages"] == [{"item": "id_1", "amount": 4}]

    result = cli.invoke(args=["send", "p", "add_usage", "not json"])
    assert result.exit_code == 1 and "(invalid)" in result.output
    result = cli.invoke(args=["send", "nope", "cancel"])
    assert result.exit_code == 1 and "(not_found)" in result.output
    result = cli.invoke(args=["send", "p", "cancel"])
    assert json.loads(result.output)["state"]["status"] == "cancel"


def test_send_text_and_idempotency_key(cli, any_db_app):
    with any_db_app.app_context():
        runtime.start("guess_game", id="g")
    for _ in range(2):
        result = cli.invoke(args=["send", "g", "event_ask_0", "fifty", "--key", "k"])
        assert result.exit_code == 0, result.output
    with any_db_app.app_context():
        db.session.rollback()
        snap = runtime.snapshot("g")
        [entry] = [e for k, e in snap["system"].items() if k.endswith("event_ask_0")]
        assert entry["responsePayload"] == "fifty"
        assert [e["type"] for e in snap["logs"]].count("event_received") == 1
