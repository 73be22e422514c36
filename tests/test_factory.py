"""The app factory's defaults, and the app the ``tiny-workflow`` commands build."""
from webapp import create_app
from webapp.cli import cli_app

EXAMPLES = {"simple", "guess_game", "guess_game_2", "user_onboarding", "interval_payment"}


def test_the_factory_loads_the_example_flows_into_a_sqlite_file_in_the_instance_folder(
        tmp_path, monkeypatch):
    monkeypatch.setenv("TINYFLOW_INSTANCE", str(tmp_path))
    monkeypatch.delenv("TINYFLOW_FLOWS", raising=False)
    monkeypatch.delenv("TINYFLOW_DATABASE_URL", raising=False)
    app = create_app({"TESTING": True})
    assert app.config["TINYFLOW_FLOWS"] == ["flows"]
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'tiny-workflow.sqlite'}"
    assert {f["name"] for f in app.test_client().get("/api/flows").json} == EXAMPLES


def test_the_commands_also_load_the_demo_flow_unless_told_otherwise(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYFLOW_INSTANCE", str(tmp_path))
    monkeypatch.delenv("TINYFLOW_FLOWS", raising=False)
    names = {f["name"] for f in cli_app().test_client().get("/api/flows").json}
    assert names == EXAMPLES | {"flaky_payment"}
    monkeypatch.setenv("TINYFLOW_FLOWS", "flows")
    assert {f["name"] for f in cli_app().test_client().get("/api/flows").json} == EXAMPLES
