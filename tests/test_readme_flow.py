"""The README's "Write your own flow": its flow module and its Runtime script work as written,
and `tiny-workflow start` does what it says."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from webapp.cli import main
from webapp.runtime import Runtime

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
SECTION = README[README.index("## Write your own flow"):README.index("## Settings")]
BLOCKS = re.findall(r"```python\n(.*?)```", SECTION, re.S)
FLOW_MODULE = next(block for block in BLOCKS if block.startswith("# approvals.py"))
SCRIPT = next(block for block in BLOCKS if "Runtime(" in block)


@pytest.fixture
def approvals(tmp_path, monkeypatch):
    """The README's module, importable as ``approvals``."""
    (tmp_path / "approvals.py").write_text(FLOW_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("approvals", None)
    yield tmp_path
    sys.modules.pop("approvals", None)


@pytest.fixture
def rt(approvals, clock):
    made = Runtime(f"sqlite:///{approvals / 'a.sqlite'}", flows=["approvals"], clock=clock)
    yield made
    made.store.dispose()


def test_the_runtime_script_runs_as_written(approvals):
    # Each line that shows what it gives ("# ..." after it) is checked.
    checked = []
    for line in SCRIPT.splitlines():
        code, _, shown = line.partition("  # ")
        shown = shown.strip()
        if code.startswith("wf[") or code.startswith("rt.get("):
            checked.append(f"assert ({code.strip()}) == ({shown}), {code.strip()!r}")
        else:
            checked.append(code)
    done = subprocess.run([sys.executable, "-c", "\n".join(checked)], cwd=approvals,
                          capture_output=True, text=True,
                          env={"PYTHONPATH": f"{ROOT}:{approvals}", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert len([line for line in checked if line.startswith("assert")]) == 2


def test_an_unanswered_decision_reminds_after_a_day_and_expires_after_two(rt, clock):
    rt.start("expense_approval", {"manager": "ada@example.com", "amount": 5}, id="e")
    clock.advance(24 * 3600)
    assert rt.run_due() == 1
    assert rt.get("e")["step"] == "step_remind"
    clock.advance(24 * 3600)
    assert rt.run_due() == 1
    done = rt.get("e")
    assert done["status"] == "finished" and done["state"]["outcome"] == "expired"
    import approvals
    assert [text for _, text in approvals.SENT] == ["Approve 5?", "Reminder"]


def test_a_non_retryable_error_fails_at_once_and_a_comment_lands_any_time(rt):
    rt.start("expense_approval", {"manager": "ada@example.com", "amount": 0}, id="z")
    assert rt.send("z", "comment", "why zero?")["delivered"] == "handler"
    failed = rt.send("z", "decision", {"approved": True})
    assert failed["status"] == "failed" and failed["error"]["type"] == "ValueError"
    assert failed["state"]["comments"] == ["why zero?"]


def test_start_prints_the_workflow_as_the_api_answers(approvals, monkeypatch):
    monkeypatch.setenv("TINYFLOW_INSTANCE", str(approvals / "instance"))
    monkeypatch.setenv("TINYFLOW_FLOWS", "approvals,flows")
    result = CliRunner().invoke(main, ["start", "expense_approval",
                                       '{"manager": "ada@example.com", "amount": 120}',
                                       "--id", "exp-1"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["id"] == "exp-1" and answer["status"] == "waiting"
    assert answer["pending"][0]["key"] == "decision"


@pytest.mark.parametrize("args, message", [
    (["start", "no_such_flow"], "Error: no flow named 'no_such_flow'"),
    (["start", "simple", "{not json"], "Error: STATE is not JSON"),
    (["start", "simple", "[1]"], "Error: state must be a JSON object"),
])
def test_start_refuses_in_one_line_with_status_2(tmp_path, monkeypatch, args, message):
    monkeypatch.setenv("TINYFLOW_INSTANCE", str(tmp_path))
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    [line] = result.output.strip().splitlines()
    assert line.startswith(message)
