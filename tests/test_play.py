"""``tiny-workflow play``: the original's terminal examples, with no database."""
import json

import pytest
from click.testing import CliRunner

import flows.guess_game
import flows.guess_game_2
from webapp.cli import main


def play(*args, input=None):
    result = CliRunner().invoke(main, ["play", *args], input=input)
    assert result.exit_code == 0, result.output
    return result.output


def test_play_simple_prints_the_readme_run_computing_once_across_save_and_load():
    out = play("simple")
    assert out.index("begin") < out.index("---------- SAVE/LOAD ---------") < out.index("end")
    assert out.count("do heavy computed") == 1          # cached: not run again after the load
    assert "currentStep= step_compute" in out
    assert '"computed": 3.141592653589793' in out
    final = json.loads(out.split("finalWorkflowData: ", 1)[1])
    assert final["status"] == "finished" and final["cache"]["_seq"] == 2


@pytest.mark.parametrize("module", [flows.guess_game, flows.guess_game_2])
def test_play_a_guess_game_with_an_empty_answer_saving_and_loading(module, monkeypatch,
                                                                   tmp_path):
    monkeypatch.setattr(module, "generate_num", lambda: 73)
    saved = tmp_path / "game.json"
    out = play(module.__name__.split(".")[1], "--save", str(saved),
               input="50\n\n75\nseventy\n73\n\n")
    assert out.count("----- saved -----") == 1 and out.count("----- resumed -----") == 1
    assert out.count("Empty for simulate save/load") == 1      # the terminal's own feature
    assert "value 50 is < than the answer" in out
    assert "value 75 is > than the answer" in out
    assert "'seventy' is not a number" in out             # the original crashed here
    assert "You need 4 rounds to guess the number 73. Congratulation!" in out
    doc = json.loads(saved.read_text())
    assert doc["status"] == "finished"
    assert doc["state"]["answer"] == [50, 75, "seventy", 73]
