"""Many workflows: settings, flow registry, the unit of work, commands, runner, import.

``Runtime`` is its public face, for any Python program::

    from webapp.runtime import Runtime
    rt = Runtime("sqlite:///app.sqlite", flows=["myflows"])
    rt.start("guess_game_2", id="g1"); rt.send("g1", "event_ask", 50)

The package's modules: ``settings`` (every TINYFLOW_* setting), ``registry`` (loading flows),
``rules`` (one rule per input), ``unit`` (one workflow's commits), ``core`` (``Runtime``),
``answers`` (the API's dicts, log entries), ``runner`` (the loop that runs what is due),
``importer`` and ``errors``.

Inside the Flask app, ``current()`` is the app's Runtime, and the functions below (``start``,
``send``, ``get``, ...) call its record-level commands (``Commands``): the views and the tests
use them.
"""
from __future__ import annotations

from .core import Commands, Runtime, owner_id
from .errors import Broken, Conflict, Invalid, NotFound, RuntimeProblem, Unavailable
from .registry import FlowsError, load_flows
from .runner import Runner
from .settings import SETTINGS, Settings, SettingError

__all__ = ["Runtime", "Commands", "Runner", "Settings", "SETTINGS", "SettingError", "FlowsError",
           "RuntimeProblem", "NotFound", "Conflict", "Invalid", "Unavailable", "Broken",
           "owner_id", "load_flows", "current", "init_app", "start_runner"]

EXTENSION = "tinyflow"


def init_app(app) -> Runtime:
    """Make the Flask app's Runtime, on the app's database session; ``app.config`` (holding
    every TINYFLOW_* setting) is its settings."""
    from flask import current_app, has_app_context

    from .. import store

    def context():
        if has_app_context() and current_app._get_current_object() is app:
            return _NO_CONTEXT
        return app.app_context()

    rt = Runtime(settings=app.config, store=store.init_app(app, app.config), context=context)
    app.extensions[EXTENSION] = rt
    return rt


class _NoContext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


_NO_CONTEXT = _NoContext()


def current() -> Runtime:
    """The current Flask app's Runtime."""
    from flask import current_app
    return current_app.extensions[EXTENSION]


def start_runner(app, **options) -> Runner:
    """Start the app's background runner thread (once per app); returns it."""
    runner = app.extensions.get("tinyflow.runner")
    if runner is None or not runner.is_alive():
        runner = app.extensions["tinyflow.runner"] = Runner(
            app.extensions[EXTENSION], **options).start()
    return runner


def _calls(name: str):
    method = getattr(Commands, name)      # the record-level command, not Runtime's dict one

    def call(*args, **kwargs):
        return method(current(), *args, **kwargs)
    call.__name__ = call.__qualname__ = name
    call.__doc__ = method.__doc__
    return call


start = _calls("start")
send = _calls("send")
resolve = _calls("resolve")
fire_timer = _calls("fire_timer")
advance = _calls("advance")
cancel = _calls("cancel")
retry = _calls("retry")
run_due = _calls("run_due")
get = _calls("get")
describe = _calls("describe")
status_counts = _calls("status_counts")
version_counts = _calls("version_counts")
migrate = _calls("migrate")
held = Commands.held
logs = _calls("logs")
all_logs = _calls("all_logs")
recent_logs = _calls("recent_logs")
snapshot = _calls("snapshot")
import_snapshots = _calls("import_snapshots")
history = _calls("history")
visit = _calls("visit")
visit_at = _calls("visit_at")
forks = _calls("forks")
fork = _calls("fork")
summary = Runtime.summary


def list_workflows(flows=(), statuses=(), q=None, cursor=None, limit=50, versions=(),
                   steps=(), state=None):
    """``Commands.list`` with the list page's names for its filters."""
    return Commands.list(current(), flow=flows, status=statuses, q=q, cursor=cursor,
                         limit=limit, version=versions, step=steps, state=state)


def registry() -> dict:
    """``{name: WorkflowClass}`` of the app's flows."""
    return current().flows
