"""The ``tiny-workflow`` command: serve, worker, demo, play, import, export, list, send."""
from __future__ import annotations

import click
from flask.cli import FlaskGroup

from . import create_app


@click.group(cls=FlaskGroup, create_app=create_app, add_default_commands=False,
             add_version_option=False, load_dotenv=False)
def main():
    """tiny-workflow: durable workflows and their dashboard."""


@main.command(with_appcontext=False)
@click.argument("flow", type=click.Choice(["simple", "guess_game", "guess_game_2"]))
@click.option("--save", type=click.Path(dir_okay=False, writable=True),
              help="Write the final snapshot to this JSON file.")
def play(flow, save):
    """Play an example flow in the terminal (no database)."""
    import importlib
    import json

    from . import play as playing
    from .engine import Workflow

    module = importlib.import_module(f"flows.{flow}")
    cls = next(v for v in vars(module).values()
               if isinstance(v, type) and issubclass(v, Workflow) and v.__module__ == module.__name__)
    wf = playing.play_simple(cls) if flow == "simple" else playing.play_game(cls)
    if save:
        with open(save, "w", encoding="utf-8") as fh:
            json.dump(wf.to_json(), fh, indent=1, ensure_ascii=False)
