"""tiny-workflow: durable workflows in plain Python, and the Flask dashboard that shows them."""
from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent


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


def create_app(config: dict | None = None) -> Flask:
    """The app factory: config, database, blueprints and the background runner."""
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    instance = Path(os.environ.get("TINYFLOW_INSTANCE", app.instance_path))
    app.instance_path = str(instance)
    instance.mkdir(parents=True, exist_ok=True)
    app.config.from_mapping(
        SQLALCHEMY_DATABASE_URI=os.environ.get("TINYFLOW_DATABASE_URL")
        or f"sqlite:///{instance / 'tiny-workflow.sqlite'}",
        TINYFLOW_FLOWS=os.environ.get("TINYFLOW_FLOWS", "flows").split(","),
        TINYFLOW_RUNNER=False,
        TINYFLOW_CLOCK=time.time,
        TINYFLOW_MAX_PAYLOAD=int(os.environ.get("TINYFLOW_MAX_PAYLOAD") or 256 * 1024),
        SECRET_KEY=os.environ.get("TINYFLOW_SECRET_KEY") or _secret_key(instance),
        SESSION_COOKIE_SAMESITE="Lax",
    )
    if config:
        app.config.update(config)

    from . import store

    store.init_app(app)

    from .views import access, api, flows, workflows

    app.register_blueprint(workflows.bp)
    app.register_blueprint(flows.bp)
    app.register_blueprint(api.bp)
    access.init_app(app)        # the token, read-only mode and the security headers

    if app.config["TINYFLOW_RUNNER"] and not app.config.get("TESTING"):
        from . import runtime

        runtime.start_runner(app)
    return app
