"""Every ``TINYFLOW_*`` setting: its default, how its text is read, and what it means.

A setting comes from ``create_app(config)`` (or ``Runtime(..., settings=...)``) if given there,
else from the environment, else its default. Nothing else in the package reads the
environment; the README's settings table is this list.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

TRUE = frozenset({"1", "true", "yes", "on"})


def _flag(text: str) -> bool:
    return text.strip().lower() in TRUE


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _text_or_none(text: str) -> str | None:
    return text.strip() or None


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    parse: Callable[[str], Any]
    meaning: str
    env: bool = True            # False: config only (a Python object, such as the clock)


SETTINGS: tuple[Setting, ...] = (
    Setting("TINYFLOW_DATABASE_URL", None, _text_or_none,
            "SQLAlchemy URL of the database; default a SQLite file in the instance folder "
            "(`postgresql+psycopg://...` for PostgreSQL)."),
    Setting("TINYFLOW_INSTANCE", None, _text_or_none,
            "The instance folder: the default SQLite file and the secret key live there."),
    Setting("TINYFLOW_FLOWS", ["flows"], _names,
            "Comma-separated modules (or packages) to load workflow classes from; replaces "
            "the default."),
    Setting("TINYFLOW_RUNNER", False, _flag,
            "Start the background runner in the web app (`serve` turns it on)."),
    Setting("TINYFLOW_LEASE_SECONDS", 60.0, float,
            "How long a runner's claim on a workflow lasts before another may take it over."),
    Setting("TINYFLOW_SCHEDULE_BATCH", 200, int,
            "How many due schedules a runner fires in one transaction (each pass)."),
    Setting("TINYFLOW_BATCH_CONFIRM_OVER", 1000, int,
            "A batch over this many workflows must be confirmed (the API answers 409 "
            "`confirm_needed` until it is sent with `\"confirm\": true`; pages and the CLI ask)."),
    Setting("TINYFLOW_BATCH_CHUNK", 500, int,
            "How many workflows of a batch a runner settles in one pass (one transaction for "
            "a cancel)."),
    Setting("TINYFLOW_BUSY_WAIT", 10.0, float,
            "Seconds a call waits for a workflow another runner holds before answering 503."),
    Setting("TINYFLOW_SQLITE_BUSY_MS", 5000, int,
            "SQLite's busy timeout (ms) for a locked database."),
    Setting("TINYFLOW_SQLITE_SYNCHRONOUS", "FULL", lambda text: text.strip().upper(),
            "SQLite's `synchronous` pragma (`FULL`: a commit survives a power cut)."),
    Setting("TINYFLOW_MAX_DEPTH", 64, int,
            "How deeply JSON from outside (state, payloads) may nest."),
    Setting("TINYFLOW_MAX_PAYLOAD", 256 * 1024, int,
            "Largest request body in bytes (413 above it)."),
    Setting("TINYFLOW_MAX_INBOX", 100, int,
            "How many events nothing waits for yet a workflow's inbox holds; one more is "
            "refused with 422."),
    Setting("TINYFLOW_HISTORY", True, _flag,
            "Record the state each step visit began with (the history, and fork from any "
            "visit); off: fork works from the current visit only."),
    Setting("TINYFLOW_STATS", True, _flag,
            "Keep each flow's statistics (the flow page's graph, `/api/flows/<name>/stats`) "
            "at every commit; off: they stop changing (`tiny-workflow stats rebuild` recounts "
            "them)."),
    Setting("TINYFLOW_CLOCK", time.time, None,
            "Config only: a callable returning epoch seconds, the runtime's clock (tests "
            "inject one).", env=False),
    Setting("TINYFLOW_CLOCK_OFFSET", 0.0, float,
            "Seconds added to the clock (drills and tests: a worker that lives in the future)."),
    Setting("TINYFLOW_SECRET_KEY", None, _text_or_none,
            "Key that signs session cookies; default a random key kept in the instance folder."),
    Setting("TINYFLOW_AUTH_TOKEN", None, _text_or_none,
            "Access token: every change needs it (pages ask once, the API takes "
            "`Authorization: Bearer`)."),
    Setting("TINYFLOW_AUTH_READS", False, _flag, "Reading needs the token too."),
    Setting("TINYFLOW_READ_ONLY", False, _flag,
            "Nothing can be changed (403), the pages show no forms, `serve` runs no runner."),
    Setting("TINYFLOW_SECURE_COOKIES", False, _flag,
            "Session cookies only over HTTPS."),
    Setting("TINYFLOW_HTMX_URL", "https://unpkg.com/htmx.org@2.0.4/dist/htmx.min.js",
            _text_or_none, "Where pages load htmx from (empty: no htmx)."),
    Setting("TINYFLOW_HTMX_SRI",
            "sha384-HGfztofotfshcF7+8n44JQL2oJmowVChPTg48S+jvZoztPfvwD79OC/LTtG6dMp+",
            _text_or_none, "The Subresource Integrity hash of that htmx file."),
    Setting("TINYFLOW_DOT", None, _text_or_none,
            "Path of a Graphviz `dot` to draw with, instead of the built-in WebAssembly one."),
    Setting("TINYFLOW_HOST", "127.0.0.1", str, "The address `serve` listens on."),
    Setting("TINYFLOW_ALLOWED_HOSTS", [], _names,
            "Host names (comma-separated) served besides `localhost`, `127.0.0.1`, `[::1]` and "
            "the one `serve` binds to; `.example.com` takes its subdomains, `*` any host. A "
            "request for another host gets 400 (DNS rebinding)."),
)
BY_NAME = {setting.name: setting for setting in SETTINGS}


def is_set(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether the environment gives setting ``name`` a value."""
    return bool((os.environ if environ is None else environ).get(name, "").strip())


class SettingError(ValueError):
    """A setting whose text cannot be read; the message names it."""


class Settings(dict):
    """The settings in force, by name: ``settings["TINYFLOW_LEASE_SECONDS"]``."""

    @classmethod
    def load(cls, config: Mapping | None = None,
             environ: Mapping[str, str] | None = None) -> Settings:
        config = config or {}
        environ = os.environ if environ is None else environ
        found = cls()
        for setting in SETTINGS:
            if setting.name in config:
                found[setting.name] = config[setting.name]
            elif setting.env and environ.get(setting.name, "").strip():
                try:
                    found[setting.name] = setting.parse(environ[setting.name])
                except ValueError:
                    raise SettingError(f"{setting.name}={environ[setting.name]!r} cannot be "
                                       f"read: {setting.meaning}") from None
            else:
                found[setting.name] = setting.default
        if isinstance(found["TINYFLOW_FLOWS"], str):
            found["TINYFLOW_FLOWS"] = _names(found["TINYFLOW_FLOWS"])
        return found
