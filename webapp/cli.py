"""The ``tiny-workflow`` command: serve, worker, demo, play, start, import, export, list,
send, migrate, stats, reindex, and the ``schedule`` and ``batch`` groups."""
from __future__ import annotations

import click
from flask.cli import FlaskGroup

from . import create_app
from .engine import Status

# The commands also load the demo's own flow (flaky_payment), so the workflows that
# ``tiny-workflow demo`` makes have their flow wherever they are served or run.
CLI_FLOWS = ["flows", "webapp.demo_flows"]
# On SIGTERM, how long `serve` waits for the runs in progress to finish their action and
# hand their workflow back (a worker waits for its one run: it has no other threads).
STOP_SECONDS = 30.0


def cli_app():
    """The app the commands use: ``TINYFLOW_FLOWS`` if set, else the examples and the demo's.
    A setting that cannot be used is a one-line error."""
    from .runtime import FlowsError, SettingError
    from .runtime.settings import is_set

    try:
        return create_app(None if is_set("TINYFLOW_FLOWS") else {"TINYFLOW_FLOWS": CLI_FLOWS})
    except (FlowsError, SettingError) as error:
        raise click.ClickException(str(error)) from None


@click.group(cls=FlaskGroup, create_app=cli_app, add_default_commands=False,
             add_version_option=False, load_dotenv=False)
def main():
    """tiny-workflow: durable workflows and their dashboard."""


# FlaskGroup's own --app, --env-file and --debug would only mislead here: the app is ours, and
# it is configured by the TINYFLOW_* environment variables.
main.params = [p for p in main.params if p.name not in ("app", "env_file", "debug")]


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
    cls = next(v for v in vars(module).values() if isinstance(v, type)
               and issubclass(v, Workflow) and v.__module__ == module.__name__)
    wf = playing.play_simple(cls) if flow == "simple" else playing.play_game(cls)
    if save:
        with open(save, "w", encoding="utf-8") as fh:
            json.dump(wf.to_json(), fh, indent=1, ensure_ascii=False)


# -- the runtime's commands: worker, import, export, list, send ------------------------------

def _problem(error) -> click.ClickException:
    return click.ClickException(f"{error} ({error.code})")


def _runner_options(command):
    """--batch and --lease-seconds, shared by ``worker`` and ``serve``."""
    command = click.option(
        "--lease-seconds", type=click.FloatRange(min=0.1), default=None,
        help="How long a claim lasts before another worker may take the workflow over "
             "(default: TINYFLOW_LEASE_SECONDS, 60).")(command)
    return click.option("--batch", type=click.IntRange(1), default=20, show_default=True,
                        help="Workflows claimed at a time.")(command)


@main.command()
@click.option("--poll", type=click.FloatRange(0.01), default=1.0, show_default=True,
              help="Seconds to wait before looking again when nothing is due.")
@_runner_options
@click.option("--exit-when-idle", is_flag=True, help="Stop once nothing is due.")
def worker(poll, batch, lease_seconds, exit_when_idle):
    """Run due workflows (timers, retries, runs whose worker died) until stopped."""
    import signal

    from . import runtime

    rt = runtime.current()
    if lease_seconds:
        rt.settings["TINYFLOW_LEASE_SECONDS"] = lease_seconds
    runner = runtime.Runner(rt, interval=poll, batch=batch, owner=runtime.owner_id("worker"))
    click.echo(f"worker {runner.owner} on {rt.store.url}; flows: {', '.join(sorted(rt.flows))}")

    def stop(*_):
        # Claim nothing more; the action in flight finishes and its workflow is handed back
        # before its next action; the claimed rows not run yet are given back at once.
        runner.stopped.set()
        rt.stopping.set()
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        runner.work(burst=exit_when_idle)   # in this thread: the process is the worker
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    click.echo("worker stopped")


class _Refused(click.ClickException):
    """A one-line refusal of the command line's input (exit status 2, as click's own)."""

    exit_code = 2


@main.command()
@click.argument("flow")
@click.argument("state", required=False)
@click.option("--id", "id", help="The new workflow's id (default: a random one).")
def start(flow, state, id):
    """Start a workflow of FLOW with STATE (a JSON object) and print it as the API answers."""
    import json

    from . import runtime

    if state is not None:
        try:
            state = json.loads(state)
        except ValueError as error:
            raise _Refused(f"STATE is not JSON: {error}") from None
    try:
        record = runtime.start(flow, state, id=id)
    except runtime.RuntimeProblem as error:
        if error.status in (404, 422):
            raise _Refused(f"{error} ({error.code})") from None
        raise _problem(error) from None
    click.echo(json.dumps(runtime.describe(record), indent=2, ensure_ascii=False))


@main.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option("--flow", help="The flow of every snapshot (default: told by their steps).")
def import_command(file, flow):
    """Import a snapshot, or a list of [runId, snapshot] pairs (the original's db files).
    A bad file is a one-line error, and nothing of it is stored."""
    from pathlib import Path

    from . import runtime
    from .runtime import rules

    try:   # strict JSON: no NaN, Infinity, 1e400, lone surrogate, NUL; not nested past the parser
        data = rules.loads(file.read(), file.name)
    except UnicodeDecodeError as error:
        raise click.ClickException(f"{file.name} is not UTF-8 text: {error}") from None
    except ValueError as error:                  # rules.NotJSON and rules.Refused
        raise click.ClickException(str(error)) from None
    try:
        ids = runtime.import_snapshots(data, flow, hint=Path(file.name).stem)
    except runtime.RuntimeProblem as error:
        raise _problem(error) from None
    click.echo(f"imported {len(ids)} workflow(s): {', '.join(ids)}")


@main.command()
@click.argument("id")
@click.option("--pair", is_flag=True, help="Print [[id, snapshot]], as `import` keeps the id.")
def export(id, pair):
    """Print the snapshot of workflow ID (audit log included) as JSON."""
    import json

    from . import runtime

    try:
        doc = runtime.snapshot(id)
    except runtime.RuntimeProblem as error:
        raise _problem(error) from None
    click.echo(json.dumps([[id, doc]] if pair else doc, indent=1, ensure_ascii=False))


@main.command()
@click.argument("flow")
@click.option("--from", "from_version", help="Only the workflows that started on this version.")
@click.option("--dry-run", is_flag=True, help="Try migrate() on each and report; store nothing.")
@click.option("--batch", type=click.IntRange(1, 10_000), default=100, show_default=True,
              help="Workflows read (and migrated) at a time.")
def migrate(flow, from_version, dry_run, batch):
    """Apply FLOW's migrate(snapshot, from_version) to each of its open workflows that started
    on a version the loaded code does not accept (held ones), and report how many moved and
    which failed. A failure leaves that workflow held, with its error kept. Exits 1 when any
    failed."""
    from . import runtime

    try:
        report = runtime.migrate(flow, from_version, dry_run=dry_run, batch=batch)
    except runtime.RuntimeProblem as error:
        if error.status in (404, 422):
            raise _Refused(f"{error} ({error.code})") from None
        raise _problem(error) from None
    verb = "would move" if dry_run else "moved"
    click.echo(f"{flow}: {verb} {len(report['moved'])} workflow(s) to version "
               f"{report['version']}; {len(report['failed'])} failed"
               + (" (dry run: nothing was stored)" if dry_run else ""))
    for failure in report["failed"]:
        click.echo(f"  failed {failure['id']} (version {failure['from_version']}): "
                   f"{failure['error']}")
    if report["failed"]:
        raise SystemExit(1)


STATE_HELP = ("whose search attribute PATH is VALUE (JSON if it parses: 3 is the number, "
              "'\"3\"' the text; repeatable: all must match).")


def _state_filter(given) -> dict:
    """``--state PATH=VALUE`` options as the list's search filters (``{path: value}``, by
    ``rules.state_query``, the rule the list's query string goes through)."""
    from .runtime import rules

    pairs = []
    for one in given:
        path, equals, value = one.partition("=")
        if not equals or not path:
            raise _Refused(f"--state takes PATH=VALUE, like userEmail=ada@example.com, "
                           f"not {one!r}")
        pairs.append((f"state.{path}", value))
    return rules.state_query(pairs)


@main.command("list")
@click.option("--flow", multiple=True, help="Only this flow (repeatable).")
@click.option("--status", multiple=True,
              type=click.Choice([status.value for status in Status]),
              help="Only this status (repeatable).")
@click.option("--step", multiple=True, help="Only workflows at this step (repeatable).")
@click.option("--state", "state", multiple=True, metavar="PATH=VALUE",
              help="Only workflows " + STATE_HELP)
@click.option("-q", "--search", help="Only ids containing this text.")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
def list_command(flow, status, step, state, search, limit):
    """List workflows, most recently updated first."""
    import json

    from . import runtime

    try:
        rows, more = runtime.list_workflows(flows=flow, statuses=status, q=search, limit=limit,
                                            steps=step, state=_state_filter(state))
    except runtime.RuntimeProblem as error:
        if error.status == 422:
            raise _Refused(f"{error} ({error.code})") from None
        raise _problem(error) from None
    # One flow chosen: its search attributes are columns too, as on the list page.
    chosen = runtime.registry().get(flow[0]) if len(flow) == 1 else None
    paths = list(chosen.search_attributes) if chosen else []
    lines = [("ID", "FLOW", "STATUS", "STEP", *paths, "UPDATED", "WAKES")]
    rt = runtime.current()
    for row in rows:
        item, attributes = runtime.summary(row), rt.attributes(row)
        shown = [v if isinstance(v := attributes.get(p), str) else
                 "-" if v is None else json.dumps(v, ensure_ascii=False) for p in paths]
        lines.append((item["id"], item["flow"], item["status"], item["step"], *shown,
                      item["updated_at"], item["wake_at"] or "-"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    for line in lines:
        click.echo("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())
    if more:
        click.echo(f"(more: --limit above {limit})")


@main.command()
@click.option("--flow", help="Only this flow's workflows (default: every loaded flow's).")
def reindex(flow):
    """Index every workflow again by the search attributes its flow declares. A start does
    this by itself for a flow whose declared attributes changed; run it after editing rows by
    hand, or to index before starting a server."""
    from . import runtime

    def progress(name, n):
        click.echo(f"{name}: {n} indexed...", err=True)
    try:
        done = runtime.current().reindex(flow, progress=progress)
    except runtime.RuntimeProblem as error:
        if error.status in (404, 422):
            raise _Refused(f"{error} ({error.code})") from None
        raise _problem(error) from None
    for name, n in done.items():
        paths = ", ".join(runtime.registry()[name].search_attributes)
        if paths or flow:
            click.echo(f"{name}: {n} workflow(s) indexed by {paths or 'nothing (none declared)'}")


@main.command()
@click.argument("id")
@click.argument("name")
@click.argument("payload", required=False)
@click.option("--key", "idempotency_key", help="Idempotency key: the same key is delivered once.")
def send(id, name, payload, idempotency_key):
    """Send event NAME to workflow ID. PAYLOAD is JSON (42, "text", {"a": 1}); anything that
    is not JSON is sent as text."""
    import json

    from . import runtime
    from .runtime import rules

    if payload is not None:   # the pages' rule: JSON if it parses, else text; never NaN or 1e400
        payload = rules.value_or_text(payload, "PAYLOAD", error=click.UsageError)
    try:
        row = runtime.send(id, name, payload, idempotency_key=idempotency_key)
    except runtime.RuntimeProblem as error:
        raise _problem(error) from None
    click.echo(json.dumps(runtime.describe(row), indent=2, ensure_ascii=False))


@main.command()
@click.option("--host", default=None,
              help="Address to listen on (default: TINYFLOW_HOST, 127.0.0.1: only this machine; "
                   "0.0.0.0: every interface, then set TINYFLOW_AUTH_TOKEN).")
@click.option("--port", default=5000, show_default=True, type=int, help="Port to listen on.")
@click.option("--threads", default=8, show_default=True, type=int, help="Request threads.")
@_runner_options
def serve(host, port, threads, batch, lease_seconds):
    """Run the dashboard and the API with waitress, and the runner that fires due timers
    (not in read-only mode, TINYFLOW_READ_ONLY, where it only shows what is there)."""
    import ipaddress
    import signal
    import threading

    import waitress
    from flask import current_app

    from . import diagram, runtime

    from .views import access

    app = current_app._get_current_object()
    rt = runtime.current()
    host = host or rt.settings["TINYFLOW_HOST"]
    if lease_seconds:
        rt.settings["TINYFLOW_LEASE_SECONDS"] = lease_seconds
    access.allow_host(app, host)   # requests for the host it binds to are served
    try:
        local = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        local = False
    if host in ("0.0.0.0", "::", "") and app.config.get("TRUSTED_HOSTS") is not None and not (
            app.config.get("TINYFLOW_ALLOWED_HOSTS")):
        click.echo("Note: only requests for localhost, 127.0.0.1 and [::1] are answered; set "
                   "TINYFLOW_ALLOWED_HOSTS to the names and addresses others use to reach "
                   "this machine (a request for another host gets 400).", err=True)
    if not local and not app.config.get("TINYFLOW_AUTH_TOKEN") and not app.config.get(
            "TINYFLOW_READ_ONLY"):
        click.echo(f"Warning: serving on {host} without TINYFLOW_AUTH_TOKEN: anyone who can "
                   "reach it can start, change and cancel workflows.", err=True)
    if app.config.get("TINYFLOW_READ_ONLY"):
        click.echo("Read-only (TINYFLOW_READ_ONLY): no forms, no changes, no runner.")
    else:
        app.config["TINYFLOW_RUNNER"] = True
        runtime.start_runner(app, batch=batch)   # fires due timers, resumes running workflows
    # Load the WebAssembly Graphviz (about a second) now, not on the first page with a diagram.
    threading.Thread(target=diagram.warm_up, name="diagram-warm-up", daemon=True).start()
    click.echo(f"tiny-workflow dashboard on http://{host}:{port}/workflows (Ctrl+C stops it)")

    def stop(*_):
        # Claim nothing more, and make every run in progress (the runner's, a request's)
        # hand its workflow back after the action it is in; then leave waitress's loop.
        rt.stopping.set()
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        waitress.serve(app, host=host, port=port, threads=threads, ident="tiny-workflow")
    except KeyboardInterrupt:      # SIGTERM before waitress's loop began (or Ctrl+C)
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        rt.stopping.set()
        runner = app.extensions.get("tinyflow.runner")
        if runner is not None:
            runner.stop(timeout=STOP_SECONDS)
        if not rt.shutdown(timeout=STOP_SECONDS):
            click.echo("stopped with runs still in progress: their leases expire", err=True)
    click.echo("tiny-workflow stopped")


@main.command()
def demo():
    """Fill the database with example workflows in every state, for a first look."""
    from . import demo as demos

    counts = demos.fill()
    if not counts:
        click.echo("The demo workflows are already there (ids starting with demo-).")
        return
    parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    click.echo(f"Started {sum(counts.values())} demo workflows: {parts}.")
    click.echo("See them: tiny-workflow serve, then open http://127.0.0.1:5000/workflows")


# -- schedules --------------------------------------------------------------------------------

@main.group()
def stats():
    """Flow statistics: show a flow's, or rebuild them all from the audit logs."""


@stats.command("rebuild")
def stats_rebuild():
    """Recount every flow's statistics from the audit logs (one transaction): after a run
    with TINYFLOW_STATS off, or to check the figures."""
    read = _call_runtime("rebuild_stats")
    click.echo(f"recounted the statistics of {read} workflow(s)")


@stats.command("show")
@click.argument("flow")
@click.option("--since", help="Only workflows created from then on (ISO 8601).")
@click.option("--until", help="Only workflows created before then (ISO 8601).")
def stats_show(flow, since, until):
    """Print FLOW's statistics as GET /api/flows/FLOW/stats answers."""
    import json

    click.echo(json.dumps(_call_runtime("flow_stats", flow, since, until), indent=2,
                          ensure_ascii=False))


@main.group()
def schedule():
    """Schedules: start workflows on a calendar (list, add, pause, resume, trigger, delete)."""


def _call_runtime(method: str, *args, **kwargs):
    """Call the app's Runtime; a refusal is one line (exit status 2 for bad input, else 1)."""
    from . import runtime

    try:
        return getattr(runtime.current(), method)(*args, **kwargs)
    except runtime.RuntimeProblem as error:
        if error.status == 422:
            raise _Refused(f"{error} ({error.code})") from None
        raise _problem(error) from None


@schedule.command("list")
def schedule_list():
    """List the schedules: id, flow, cron, time zone, next fire, last run."""
    from . import runtime

    rt = runtime.current()
    lines = [("ID", "FLOW", "CRON", "TIMEZONE", "NEXT", "LAST RUN")]
    for record in rt.schedules():
        item = rt.schedule_answer(record)
        flow = item["flow"] if item["flow_loaded"] else f"{item['flow']} (not loaded)"
        lines.append((item["id"], flow, item["cron"], item["timezone"],
                      "paused" if item["paused"] else item["next_at"] or "-",
                      item["last_workflow_id"] or "-"))
    widths = [max(len(line[i]) for line in lines) for i in range(6)]
    for line in lines:
        click.echo("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())


@schedule.command("add")
@click.argument("id")
@click.argument("flow")
@click.argument("cron")
@click.option("--state", help="The workflows' initial state, a JSON object.")
@click.option("--timezone", default="UTC", show_default=True, help="An IANA time zone.")
@click.option("--overlap", type=click.Choice(["skip", "allow"]), default="skip",
              show_default=True, help="skip: no fire while its last run is running or waiting.")
@click.option("--catchup", type=int, default=60, show_default=True,
              help="Seconds a missed fire may be late and still run once.")
def schedule_add(id, flow, cron, state, timezone, overlap, catchup):
    """Add schedule ID: start FLOW at each time CRON names ("0 9 * * *")."""
    import json

    from . import runtime
    from .runtime import rules

    if state is not None:
        try:
            state = rules.loads(state, "--state")
        except ValueError as error:
            raise _Refused(f"--state is not a JSON object: {error}") from None
    record = _call_runtime("add_schedule", id, flow, cron, state=state, timezone=timezone,
                            overlap=overlap, catchup=catchup)
    click.echo(json.dumps(runtime.current().schedule_answer(record), indent=2,
                          ensure_ascii=False))


def _schedule_verb(verb: str, help: str):
    @schedule.command(verb, help=help)
    @click.argument("id")
    def command(id):
        import json

        from . import runtime

        if verb == "delete":
            _call_runtime("delete_schedule", id)
            click.echo(f"deleted schedule {id} (the workflows it started are kept)")
            return
        result = _call_runtime(f"{verb}_schedule", id)
        rt = runtime.current()
        answer = rt.describe(result) if verb == "trigger" else rt.schedule_answer(result)
        click.echo(json.dumps(answer, indent=2, ensure_ascii=False))
    return command


_schedule_verb("pause", "Pause schedule ID: no fires until it is resumed.")
_schedule_verb("resume", "Resume schedule ID from its next fire (what was missed is skipped).")
_schedule_verb("trigger", "Start schedule ID's workflow now; print it as the API answers.")
_schedule_verb("delete", "Delete schedule ID (a declared one cannot be: pause it).")


# -- batches ----------------------------------------------------------------------------------

@main.group()
def batch():
    """Batches: cancel, retry or send an event to many workflows at once (cancel, retry,
    send, show, list)."""


def _batch_options(command):
    """The list's filters (or --id), --yes and --detach, shared by the batch commands."""
    for option in reversed([
        click.option("--id", "ids", multiple=True, help="This workflow (repeatable); instead "
                     "of the filters."),
        click.option("--flow", multiple=True, help="Every workflow of this flow (repeatable)."),
        click.option("--status", multiple=True,
                     type=click.Choice([status.value for status in Status]),
                     help="... in this status (repeatable)."),
        click.option("--version", "versions", multiple=True,
                     help="... that started on this flow version (repeatable)."),
        click.option("--step", "steps", multiple=True,
                     help="... at this step (repeatable)."),
        click.option("--state", "state", multiple=True, metavar="PATH=VALUE",
                     help="... " + STATE_HELP),
        click.option("-q", "--search", help="... whose id contains this text."),
        click.option("--yes", is_flag=True, help="Confirm a batch over "
                     "TINYFLOW_BATCH_CONFIRM_OVER workflows without being asked."),
        click.option("--detach", is_flag=True, help="Make the batch and print its id; the "
                     "runners carry it out (do not wait)."),
    ]):
        command = option(command)
    return command


def _make_batch(action, ids, flow, status, versions, steps, state, search, yes, detach,
                **details):
    """Make the batch (asking to confirm a large one on a terminal), then carry it out here
    (sharing it with any worker) while printing its progress, until it is finished. Exits 1
    when any workflow failed."""
    import sys

    from . import runtime

    rt = runtime.current()
    try:
        choice = {"ids": list(ids)} if ids else {"filter": {
            "flow": list(flow), "status": list(status), "version": list(versions),
            "step": list(steps), "q": search, "state": _state_filter(state)}}
        try:
            record = rt.create_batch(action, **choice, confirm=yes, **details)
        except runtime.RuntimeProblem as error:
            if error.code != "confirm_needed" or not sys.stdin.isatty():
                raise
            click.confirm(f"{error}. Go ahead?", abort=True)
            record = rt.create_batch(action, **choice, confirm=True, **details)
    except runtime.RuntimeProblem as error:
        if error.code == "confirm_needed":
            raise _Refused(f"{error} ({error.code})") from None
        if error.status == 422:
            raise _Refused(f"{error} ({error.code})") from None
        raise _problem(error) from None
    click.echo(f"batch {record.id}: {action} {record.total:,} workflow(s)")
    if detach:
        return
    record = _follow(rt, record)
    click.echo(f"batch {record.id} finished: {record.done:,} done, {record.skipped:,} "
               f"skipped, {record.failed:,} failed")
    for outcome in ("skipped", "failed"):
        items, more = rt.batch_items(record.id, outcome, limit=10)
        for item in items:
            click.echo(f"  {outcome} {item['id']}: {item['message']}")
        if more:
            click.echo(f"  (more {outcome}: tiny-workflow batch show {record.id} --items)")
    if record.failed:
        raise SystemExit(1)


def _follow(rt, record):
    """Settle the batch's chunks here until it is finished, showing its progress: a bar on
    a terminal, else a line at every tenth. While a worker holds it, wait for that one."""
    import sys
    import time

    from . import runtime

    owner = runtime.owner_id("cli")

    def settled(r):
        return r.done + r.skipped + r.failed

    shown = [settled(record)]
    bar = (click.progressbar(length=record.total, label=f"{record.action} {record.id}")
           if sys.stdout.isatty() else None)
    try:
        while record.status != "finished":
            try:
                if not rt.run_batches(owner=owner, only=record.id):
                    time.sleep(0.2)          # another runner holds it: look again shortly
            except runtime.Unavailable:
                time.sleep(0.2)
            record = rt.batch(record.id)
            now = settled(record)
            if bar is not None:
                bar.update(now - shown[0])
            elif now * 10 // max(record.total, 1) > shown[0] * 10 // max(record.total, 1):
                click.echo(f"  {now:,} of {record.total:,} settled ({record.done:,} done, "
                           f"{record.skipped:,} skipped, {record.failed:,} failed)")
            shown[0] = now
    finally:
        if bar is not None:
            bar.render_finish()
        try:
            rt.store.release_batch(record.id, owner)
        except Exception:          # its lease expires: a worker takes it over then
            pass
    return record


@batch.command("cancel")
@_batch_options
@click.option("--reason", help="Why (kept in each workflow's log).")
def batch_cancel(reason, **options):
    """Cancel every workflow the filters (or --id) choose."""
    _make_batch("cancel", reason=reason, **options)


@batch.command("retry")
@_batch_options
def batch_retry(**options):
    """Retry every failed workflow the filters (or --id) choose (others are skipped)."""
    _make_batch("retry", **options)


@batch.command("send")
@click.argument("name")
@click.argument("payload", required=False)
@_batch_options
def batch_send(name, payload, **options):
    """Send event NAME (PAYLOAD: JSON, else text) to every workflow the filters (or --id)
    choose, once each."""
    from .runtime import rules

    if payload is not None:
        payload = rules.value_or_text(payload, "PAYLOAD", error=click.UsageError)
    _make_batch("send", event={"name": name, "payload": payload}, **options)


@batch.command("show")
@click.argument("id")
@click.option("--items", "outcome", flag_value="all", help="List every settled item too.")
def batch_show(id, outcome):
    """Print batch ID as the API answers it (with --items: each workflow's outcome)."""
    import json

    from . import runtime

    rt = runtime.current()
    try:
        answer = rt.batch_answer(rt.batch(id))
    except runtime.RuntimeProblem as error:
        raise _problem(error) from None
    click.echo(json.dumps(answer, indent=2, ensure_ascii=False))
    cursor = None
    while outcome:
        items, cursor = rt.batch_items(id, cursor=cursor, limit=500)
        for item in items:
            click.echo(f"{item['id']}  {item['outcome'] or 'to do'}"
                       + (f"  {item['message']}" if item["message"] else ""))
        if not cursor:
            break


@batch.command("list")
def batch_list():
    """List the recent batches, newest first."""
    from . import runtime

    rt = runtime.current()
    records, _ = rt.batches(limit=50)
    lines = [("ID", "ACTION", "STATUS", "TOTAL", "DONE", "SKIPPED", "FAILED", "CREATED")]
    for record in records:
        item = rt.batch_answer(record)
        lines.append((item["id"], item["action"], item["status"], str(item["total"]),
                      str(item["done"]), str(item["skipped"]), str(item["failed"]),
                      item["created_at"]))
    widths = [max(len(line[i]) for line in lines) for i in range(8)]
    for line in lines:
        click.echo("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())
