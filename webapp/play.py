"""Playing the example flows at the terminal, as the original's examples do (no database)."""
from __future__ import annotations

import json

import click

from .engine import Status, Workflow


def _reload(wf: Workflow) -> Workflow:
    """Save to JSON text and load back: what a restart does to a workflow."""
    return type(wf).from_json(json.loads(json.dumps(wf.to_json())))


def _parse(answer: str):
    """Text that parses as JSON is that value (``42`` is a number); anything else is text."""
    try:
        return json.loads(answer)
    except ValueError:
        return answer


def play_simple(flow: type[Workflow], echo=click.echo) -> Workflow:
    """The README example: run to the first checkpoint, save and load, run to the end."""
    wf = flow()
    echo("begin")
    for checkpoint in wf.exec():
        if checkpoint.kind == "action":
            break
    echo(f"  currentStep= {wf.step} ,currentState= {json.dumps(wf.state)}")
    echo("---------- SAVE/LOAD ---------")
    wf = _reload(wf)
    wf.run()
    echo(f"  currentStep= {wf.step} ,currentState= {json.dumps(wf.state)}")
    echo("end")
    echo("finalWorkflowData: " + json.dumps(wf.to_json(), indent=1))
    return wf


def play_game(flow: type[Workflow], echo=click.echo, prompt=click.prompt) -> Workflow:
    """Answer each event the workflow waits for at the prompt; an empty answer saves the
    workflow to JSON and loads it back before going on."""
    wf = flow()
    echo(f"🤟 Wellcome to {flow.__name__} 🤟")
    first = True
    while wf.run() is Status.WAITING:
        waits = [p for p in wf.pending() if p["type"] == "event"]
        if not waits:
            raise click.ClickException(f"{flow.name} waits for a timer, not for an answer")
        wait = waits[0]
        question = (wait["requestPayload"] or {}).get("question", wait["key"])
        if first:                 # the terminal's own feature, said once, as the original did
            question, first = f"{question}. Empty for simulate save/load", False
        answer = prompt(question, default="", show_default=True)
        if not answer.strip() and wait["key"] != "event_congratulation":
            echo("----- saved -----")
            wf = _reload(wf)
            echo("----- resumed -----")
            continue
        wf.send(wait["key"], _parse(answer))
    echo(f"{wf.status}: {json.dumps(wf.state, ensure_ascii=False)}")
    return wf
