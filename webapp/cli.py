"""The ``tiny-workflow`` command: serve, worker, demo, play, import, export, list, send."""
from __future__ import annotations

import click
from flask.cli import FlaskGroup

from . import create_app


@click.group(cls=FlaskGroup, create_app=create_app, add_default_commands=False,
             add_version_option=False, load_dotenv=False)
def main():
    """tiny-workflow: durable workflows and their dashboard."""
