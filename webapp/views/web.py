"""What every page shares: CSRF (Flask-WTF), htmx detection, time and JSON filters, the
strict JSON answers, and the error answers (every error is a documented status: JSON under
/api, a page elsewhere; never a bare 500).

``init_app`` runs once when the first blueprint that needs it is registered, so the app
factory stays as it is.
"""
from __future__ import annotations

import json
import logging
import re
import unicodedata
from datetime import datetime, timezone
from urllib.parse import quote

from flask import current_app, render_template, request
from flask.json.provider import DefaultJSONProvider
from flask_wtf.csrf import CSRFError, CSRFProtect
from markupsafe import Markup, escape
from sqlalchemy import exc as db_errors
from werkzeug.exceptions import HTTPException, SecurityError

from ..engine import Status
from ..runtime import Invalid, Unavailable, rules

log = logging.getLogger(__name__)

STATUSES = tuple(status.value for status in Status)   # in the engine's order
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def init_app(app) -> None:
    """Config defaults, template filters and the error pages; safe to call more than once."""
    if app.extensions.get("tinyflow_web"):
        return
    app.extensions["tinyflow_web"] = True
    if app.config.get("MAX_CONTENT_LENGTH") is None:
        app.config["MAX_CONTENT_LENGTH"] = app.config["TINYFLOW_MAX_PAYLOAD"]
    app.jinja_env.filters.update(reltime=reltime, pretty=pretty, compact=compact, slug=slug,
                              reject_keys=reject_keys, inline_code=inline_code,
                              log_times=log_times, duration=duration, ms_text=ms_text)
    app.jinja_env.globals.update(is_htmx=is_htmx, example_text=example_text)
    app.json = StrictJSONProvider(app)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(CSRFError, csrf_error)
    app.register_error_handler(SecurityError, host_refused)
    app.register_error_handler(Unavailable, unavailable)
    app.register_error_handler(db_errors.SQLAlchemyError, database_error)
    app.register_error_handler(Exception, internal_error)


class StrictJSONProvider(DefaultJSONProvider):
    """Flask's JSON, strict: NaN and Infinity are never written as (invalid) JSON."""

    def dumps(self, obj, **kwargs):
        kwargs.setdefault("allow_nan", False)
        return super().dumps(obj, **kwargs)


# --- CSRF ------------------------------------------------------------------------------------

# Flask-WTF's CSRFProtect: every unsafe request to the pages carries the session's token in
# the form field ``csrf_token`` or the ``X-CSRFToken`` header (htmx sends it, from the page's
# ``hx-headers``); without it, 400. The API is exempt (it takes no CSRF token: DESIGN.md).
# ``access.init_app`` starts it, after the cross-site / read-only / login guard.
csrf = CSRFProtect()


def init_csrf(app) -> None:
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)   # valid for the browser session
    csrf.init_app(app)


def csrf_error(error: CSRFError):
    if is_api():
        return api_error(400, "bad_request", error.description)
    return error_page(400, "The form's security token is missing or out of date. "
                           "Reload the page and try again.")


# --- htmx ------------------------------------------------------------------------------------

def is_htmx() -> bool:
    """An htmx request that wants a fragment (a history restore wants the whole page)."""
    return (request.headers.get("HX-Request") == "true"
            and request.headers.get("HX-History-Restore-Request") != "true")


def vary(response):
    """Pages and fragments share URLs, so caches must key on HX-Request."""
    response.vary.add("HX-Request")
    return response


# --- filters ---------------------------------------------------------------------------------

def now() -> float:
    """The app's clock in epoch seconds (its Runtime's: TINYFLOW_CLOCK, offset included)."""
    return current_app.extensions["tinyflow"].clock()


def to_datetime(value) -> datetime | None:
    """An aware UTC datetime from an ISO string, a datetime, or epoch milliseconds."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, timezone.utc)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


_UNITS = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))


def duration(seconds: float) -> str:
    """``"1 h"``, ``"3 min"``, ``"42 s"``: the largest unit that fits twice (or once, within a
    second), rounded to the nearest: a one-day timeout set a moment ago is "1 d", not "23 h",
    and 90 min stays "90 min", not "1 h"."""
    size = abs(seconds)
    for unit, width in _UNITS:
        if size >= width * 2 or abs(size - width) < 1 or unit == "s":
            return f"{round(size / width)} {unit}"
    return f"{round(size)} s"


def ms_text(ms: float | None, empty: str = "–") -> str:
    """A time in step (ms) in words, as the diagrams write it ("812 ms", "3.0 s")."""
    from ..diagram.words import duration as words
    return empty if ms is None else words(ms)


def humanize(seconds: float) -> str:
    """``"3 min ago"`` / ``"in 2 h"`` for a signed offset from now (positive: future)."""
    if abs(seconds) < 1:
        return "now" if seconds >= 0 else "just now"
    amount = duration(seconds)
    return f"in {amount}" if seconds > 0 else f"{amount} ago"


def reltime(value, empty: str = "—", ahead: float = 0.0) -> Markup:
    """``<time datetime=ISO title="exact UTC">3 min ago</time>``, rendered server-side.

    ``ahead``: a time on a workflow's clock, which runs that many seconds ahead of the wall
    clock after "Advance the clock": "3 min ago" is then on the workflow's clock, and the
    tooltip says the wall-clock time too."""
    try:
        moment = to_datetime(value)
    except (ValueError, TypeError, OverflowError, OSError):   # not a time (an odd import)
        return Markup('<span class="muted">{}</span>').format(value)
    if moment is None:
        return Markup('<span class="muted">{}</span>').format(empty)
    moment = moment.astimezone(timezone.utc)
    iso = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    exact = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    label = humanize(moment.timestamp() - now() - (ahead or 0))
    if ahead:
        wall = datetime.fromtimestamp(moment.timestamp() - ahead, timezone.utc)
        exact = (f"{exact} on the workflow's clock "
                 f"({wall:%Y-%m-%d %H:%M:%S} UTC on the wall clock)")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(iso, exact, label)


_EPOCH_MS = (946684800000, 4102444800000)     # 2000-01-01 to 2100-01-01: epoch milliseconds


def log_times(values) -> list[tuple[str, int]]:
    """The values of an audit-log entry that are times (``...At`` names holding epoch ms, such
    as ``nextAttemptAt``), so the log can show them as times beside the raw JSON."""
    if not isinstance(values, dict):
        return []
    return [(key, value) for key, value in values.items()
            if isinstance(key, str) and key.endswith("At") and isinstance(value, (int, float))
            and not isinstance(value, bool) and _EPOCH_MS[0] <= value < _EPOCH_MS[1]]


def pretty(value) -> str:
    """JSON for people: indented, unicode kept; the template's autoescape makes it safe."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


def compact(value, limit: int = 400) -> str:
    """One-line JSON, cut at ``limit`` characters (audit-log values in a table cell)."""
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def inline_code(text: str) -> Markup:
    """Docstring text with its `backticked` words as <code>, the rest escaped."""
    parts = str(text).split("`")
    if len(parts) % 2 == 0:            # an unpaired backtick: show the text as it is
        return Markup("{}").format(text)
    return Markup("").join(Markup("<code>{}</code>").format(part) if i % 2 else escape(part)
                           for i, part in enumerate(parts))


def reject_keys(mapping: dict, *keys) -> dict:
    """The mapping without ``keys`` (query strings for links that change one filter)."""
    return {k: v for k, v in mapping.items() if k not in keys}


def slug(value) -> str:
    """A string safe inside an HTML id (wait keys and resume ids become form ids)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", str(value))


def example_text(example) -> str | None:
    """An event's example payload as one would type it into the form (``None``: no example)."""
    if example is None:
        return None
    if isinstance(example, str):
        # Text that would parse as JSON is typed quoted, so it stays text.
        try:
            json.loads(example)
        except ValueError:
            return example
    return json.dumps(example, ensure_ascii=False, separators=(", ", ": "))


def flow_dict(flow_cls) -> dict:
    """A registered flow as the API lists it (and the flows page shows it)."""
    spec = flow_cls.__workflow__
    return {
        "name": spec.name,
        "doc": spec.doc,
        "steps": list(spec.steps),
        "first_step": spec.first_step,
        # its version (DESIGN.md "Versions"), and the older ones it runs as they are
        "version": flow_cls.version,
        "compatible_versions": list(flow_cls.compatible_versions),
        "migrates": callable(getattr(flow_cls, "migrate", None)),
        "transitions": {name: list(nexts) for name, nexts in spec.transitions.items()},
        # each @on_event handler's event, with the example payload the flow gives (or null)
        "events": {name: {"handler": method, "example": (spec.examples or {}).get(name)}
                   for name, method in sorted(spec.handlers.items())},
    }


# --- one workflow, as the API answers it and the page shows it ------------------------------

ANSWER_EXTRAS = ("cancel_reason", "last_error", "clock_offset")


# --- form values -----------------------------------------------------------------------------

def parse_value(text: str | None):
    """An event form's value: text that parses as JSON is that JSON, anything else a string
    (strict: ``1e400`` or ``NaN`` is refused, 422)."""
    return rules.value_or_text(text, "That value", error=Invalid)


def attachment(response, filename: str):
    """``Content-Disposition: attachment`` for any file name: an ASCII ``filename`` and, when
    the name is not plain ASCII, the exact one as RFC 5987's ``filename*`` (a header is
    Latin-1: ``заказ-1.json`` as such cannot be sent)."""
    if filename.isascii() and filename.isprintable():
        response.headers.set("Content-Disposition", "attachment", filename=filename)
        return response
    simple = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    simple = "".join(c for c in simple if c.isprintable())
    if not simple.removesuffix(".json").strip(" .-_"):
        simple = "workflow.json"
    response.headers.set("Content-Disposition", "attachment", filename=simple,
                         **{"filename*": "UTF-8''" + quote(filename, safe="")})
    return response


# --- errors ----------------------------------------------------------------------------------

def error_page(status: int, message: str):
    """A page (or, for htmx, a fragment) saying what went wrong."""
    template = "_error.html" if is_htmx() else "error.html"
    html = render_template(template, status=status, message=message)
    response = vary(current_app.make_response((html, status)))
    if status == 503:
        response.headers["Retry-After"] = "1"
    return response


def api_error(status: int, code: str, message: str):
    """The API's error answer: ``{"error": {"code", "message"}}``."""
    response = current_app.json.response({"error": {"code": code, "message": message}})
    response.status_code = status
    if status == 503:
        response.headers["Retry-After"] = "1"
    return response


HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 409: "conflict", 413: "too_large",
              415: "bad_request", 422: "invalid", 503: "unavailable"}


def is_api() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def http_error(error: HTTPException):
    """JSON under /api, a page elsewhere."""
    status = error.code or 500
    if is_api():
        response = api_error(status, HTTP_CODES.get(status, "error"), error.description or "")
        headers = dict(error.get_headers())
        for name in ("Allow", "WWW-Authenticate"):
            if name in headers:
                response.headers[name] = headers[name]
        return response
    if status == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        return error_page(413, f"That was too large: the limit is {limit // 1024} KiB.")
    return error_page(status, error.description or error.name)


def host_refused(error: SecurityError):
    """A request for a host this server does not serve (TINYFLOW_ALLOWED_HOSTS; DNS
    rebinding): 400. No URL can be built for such a host, so the page stands alone."""
    host = request.headers.get("Host", "")
    message = (f"This dashboard is not served under the host {host!r}. To serve it there, add "
               "the host to TINYFLOW_ALLOWED_HOSTS (comma-separated).")
    if is_api():
        return api_error(400, "bad_request", message)
    html = Markup('<!doctype html><html lang="en"><meta charset="utf-8"><title>400 Bad Request'
                  '</title><h1>Bad Request</h1><p class="problem-message">{}</p></html>'
                  ).format(message)
    return current_app.response_class(html, 400, mimetype="text/html")


def _rollback() -> None:
    """End the failed transaction, so the error page's own reads can work."""
    from ..store import db
    try:
        db.session.rollback()
    except Exception:                    # the connection itself is gone: nothing to end
        log.debug("rollback after a database error failed", exc_info=True)


def unavailable(error: Exception):
    """503 with Retry-After: the database is busy or away; nothing was applied."""
    message = str(error) or "The database is not available right now; try again."
    if is_api():
        return api_error(503, "unavailable", message)
    return error_page(503, message)


def database_error(error: db_errors.SQLAlchemyError):
    """Every database error is a documented answer: a value the database refused (one the
    input rules did not catch) 422, a constraint 409, anything else (locked, disk full,
    connection lost) 503 with Retry-After."""
    _rollback()
    log.warning("database error on %s %s: %s", request.method, request.path, error)
    if isinstance(error, db_errors.DataError):
        status, code, message = 422, "invalid", "The database refused a value of this request."
    elif isinstance(error, db_errors.IntegrityError):
        status, code, message = 409, "conflict", "This conflicts with what is stored; reload."
    else:
        return unavailable(Unavailable("The database is not available right now "
                                       f"({type(error).__name__}); try again."))
    return api_error(status, code, message) if is_api() else error_page(status, message)


def internal_error(error: Exception):
    """Anything unexpected: logged with its traceback; 500 ``internal`` (JSON under /api, the
    error page elsewhere), never a bare HTML 500."""
    log.exception("unexpected error on %s %s", request.method, request.path)
    _rollback()
    message = "Something went wrong on the server; it has been logged."
    if is_api():
        return api_error(500, "internal", message)
    try:
        return error_page(500, message)
    except Exception:                    # the error page itself failed: the plainest page
        return current_app.response_class(
            "<!doctype html><title>500</title><p>" + message + "</p>", 500, mimetype="text/html")
