"""tiny-workflow: durable workflows in plain Python, and the Flask dashboard that shows them."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import Flask

PACKAGE = Path(__file__).resolve().parent
ROOT = PACKAGE.parent


def _secret_key(instance: Path) -> str:
    """The session-signing key, made once and kept in the instance folder (not in the code).

    It is written whole to a private file first and then linked into place, so processes
    starting together never read a half-written key, and all end up with the same one. A file
    holding less than 32 characters (cut off by a crash) is replaced.
    """
    path = instance / "secret_key"
    for _ in range(3):
        try:
            key = path.read_text().strip()
        except FileNotFoundError:
            key = ""
        if len(key) >= 32:
            return key
        fresh = instance / f".secret_key.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
            fh.flush()
            os.fsync(fh.fileno())
        try:
            if key or path.exists():
                os.replace(fresh, path)     # an empty or cut key file (a crash): replace it
            else:
                os.link(fresh, path)        # fails if another process got there first
        except FileExistsError:
            pass
        finally:
            fresh.unlink(missing_ok=True)
    raise RuntimeError(f"cannot keep a secret key in {path}")


def _folder(name: str) -> str:
    """``templates`` or ``static``: inside the package when installed, else the checkout's."""
    inside = PACKAGE / name
    return str(inside if inside.is_dir() else ROOT / name)


def create_app(config: dict | None = None) -> Flask:
    """The app factory: settings, database, the app's Runtime, blueprints and the runner.

    Every TINYFLOW_* setting comes from ``config`` if given there, else from the environment
    (``webapp.runtime.settings``); Flask's own keys (SQLALCHEMY_DATABASE_URI, TESTING, ...)
    may be given in ``config`` too.
    """
    from .runtime import Settings, init_app as init_runtime

    config = dict(config or {})
    settings = Settings.load(config)
    app = Flask(__name__, instance_relative_config=True,
                template_folder=_folder("templates"), static_folder=_folder("static"))
    instance = Path(settings["TINYFLOW_INSTANCE"] or app.instance_path)
    app.instance_path = str(instance)
    instance.mkdir(parents=True, exist_ok=True)
    app.config.from_mapping(
        SQLALCHEMY_DATABASE_URI=settings["TINYFLOW_DATABASE_URL"]
        or f"sqlite:///{instance / 'tiny-workflow.sqlite'}",
        SECRET_KEY=settings["TINYFLOW_SECRET_KEY"] or _secret_key(instance),
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=bool(settings["TINYFLOW_SECURE_COOKIES"]),
    )
    app.config.update(settings)
    app.config.update(config)
    app.config["TINYFLOW_DATABASE_URL"] = app.config["SQLALCHEMY_DATABASE_URI"]

    init_runtime(app)           # the app's Runtime: its settings are app.config
    if app.config["TINYFLOW_DOT"]:
        from . import diagram

        diagram.renderer.dot_command = app.config["TINYFLOW_DOT"]   # one renderer a process

    from .views import access, api, batches, flows, schedules, workflows

    app.register_blueprint(workflows.bp)
    app.register_blueprint(flows.bp)
    app.register_blueprint(schedules.bp)
    app.register_blueprint(batches.bp)
    app.register_blueprint(api.bp)
    access.init_app(app)        # the token, read-only mode and the security headers

    if app.config["TINYFLOW_RUNNER"] and not app.config.get("TESTING"):
        from . import runtime

        runtime.start_runner(app)
    return app
